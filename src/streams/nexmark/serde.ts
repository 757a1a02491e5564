// A compact binary serde for Nexmark events: a type byte, numbers as float64 LE, strings as u16 length + latin1
// (the generator only makes ASCII). Several times cheaper than JSON on the hot path of the benchmark.
import { TributaryError } from '../../core/index.ts';
import type { Serde } from '../serdes.ts';
import type { Auction, Bid, NexmarkEvent, Person } from './generator.ts';

function putStr(b: Buffer, off: number, s: string): number {
  b.writeUInt16LE(s.length, off);
  b.write(s, off + 2, 'latin1');
  return off + 2 + s.length;
}

export function encodeEvent(e: NexmarkEvent): Buffer {
  let b: Buffer;
  let o = 1;
  if (e.event_type === 2) {
    const x = e.bid;
    b = Buffer.allocUnsafe(1 + 32 + 6 + x.channel.length + x.url.length + x.extra.length);
    b[0] = 2;
    o = b.writeDoubleLE(x.auction, o);
    o = b.writeDoubleLE(x.bidder, o);
    o = b.writeDoubleLE(x.price, o);
    o = b.writeDoubleLE(x.dateTime, o);
    o = putStr(b, o, x.channel);
    o = putStr(b, o, x.url);
    putStr(b, o, x.extra);
  } else if (e.event_type === 1) {
    const x = e.auction;
    b = Buffer.allocUnsafe(1 + 56 + 6 + x.itemName.length + x.description.length + x.extra.length);
    b[0] = 1;
    o = b.writeDoubleLE(x.id, o);
    o = b.writeDoubleLE(x.initialBid, o);
    o = b.writeDoubleLE(x.reserve, o);
    o = b.writeDoubleLE(x.dateTime, o);
    o = b.writeDoubleLE(x.expires, o);
    o = b.writeDoubleLE(x.seller, o);
    o = b.writeDoubleLE(x.category, o);
    o = putStr(b, o, x.itemName);
    o = putStr(b, o, x.description);
    putStr(b, o, x.extra);
  } else {
    const x = e.person;
    const strs = [x.name, x.emailAddress, x.creditCard, x.city, x.state, x.extra];
    let n = 1 + 16;
    for (const s of strs) n += 2 + s.length;
    b = Buffer.allocUnsafe(n);
    b[0] = 0;
    o = b.writeDoubleLE(x.id, o);
    o = b.writeDoubleLE(x.dateTime, o);
    for (const s of strs) o = putStr(b, o, s);
  }
  return b;
}

type Latin1 = { latin1Slice(start: number, end: number): string };
// Decoding state kept at module level: no closures or cursor objects per event on this hot path.
let buf: Buffer;
let pos = 0;
const num = (): number => {
  const v = buf.readDoubleLE(pos);
  pos += 8;
  return v;
};
const str = (): string => {
  const n = (buf[pos] as number) | ((buf[pos + 1] as number) << 8);
  pos += 2;
  // latin1Slice: Buffer's own decoder without toString's argument handling (several times cheaper per call).
  const s = (buf as unknown as Latin1).latin1Slice(pos, pos + n);
  pos += n;
  return s;
};

export function decodeEvent(b: Buffer): NexmarkEvent {
  buf = b;
  pos = 1;
  switch (b[0]) {
    case 2: {
      const auction = num();
      const bidder = num();
      const price = num();
      const dateTime = num();
      const channel = str();
      const url = str();
      const bid: Bid = { auction, bidder, price, channel, url, dateTime, extra: str() };
      return { event_type: 2, person: null, auction: null, bid };
    }
    case 1: {
      const id = num();
      const initialBid = num();
      const reserve = num();
      const dateTime = num();
      const expires = num();
      const seller = num();
      const category = num();
      const itemName = str();
      const description = str();
      const auction: Auction = {
        id,
        itemName,
        description,
        initialBid,
        reserve,
        dateTime,
        expires,
        seller,
        category,
        extra: str(),
      };
      return { event_type: 1, person: null, auction, bid: null };
    }
    case 0: {
      const id = num();
      const dateTime = num();
      const name = str();
      const emailAddress = str();
      const creditCard = str();
      const city = str();
      const state = str();
      const person: Person = { id, name, emailAddress, creditCard, city, state, dateTime, extra: str() };
      return { event_type: 0, person, auction: null, bid: null };
    }
    default:
      throw new TributaryError('CORRUPT_DATA', `nexmark event: type byte ${b[0]}, expected 0, 1 or 2`);
  }
}

/** Serde of the `nexmark-events` topic. */
export const NexmarkEventSerde: Serde<NexmarkEvent> = {
  serialize: (_topic, v) => (v === null ? null : encodeEvent(v)),
  deserialize: (_topic, b) => (b === null ? null : decodeEvent(b)),
};

// Serdes of one kind of event, for the queries' repartition topics (as a Kafka Streams user passes serdes to
// groupBy): the same binary layout as the event topic, several times cheaper than the JSON default.
const entitySerde = <T>(type: 0 | 1 | 2, field: 'person' | 'auction' | 'bid'): Serde<T> => ({
  serialize: (_topic, v) =>
    v === null
      ? null
      : encodeEvent({
          event_type: type,
          person: null,
          auction: null,
          bid: null,
          [field]: v,
        } as unknown as NexmarkEvent),
  deserialize: (_topic, b) => {
    if (b === null) return null;
    const e = decodeEvent(b);
    if (e.event_type !== type)
      throw new TributaryError('CORRUPT_DATA', `nexmark ${field}: type byte ${e.event_type}, expected ${type}`);
    return e[field] as T;
  },
});
export const BidSerde: Serde<Bid> = entitySerde<Bid>(2, 'bid');
export const AuctionSerde: Serde<Auction> = entitySerde<Auction>(1, 'auction');
export const PersonSerde: Serde<Person> = entitySerde<Person>(0, 'person');
