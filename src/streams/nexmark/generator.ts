// Nexmark event generator following Beam's integer model: events are numbered 0, 1, 2, ...; in every block of
// `personProportion + auctionProportion + bidProportion` (1 + 3 + 46 = 50) events the first are people, then
// auctions, then bids, so ids follow from the event number alone (people and auctions from 1000). Each event draws
// its random choices from a PRNG seeded by (seed, event number), so any event can be generated on its own and a
// run is reproducible from its seed.
import { invalidArgument } from '../../core/index.ts';

export interface Person {
  id: number;
  name: string;
  emailAddress: string;
  creditCard: string;
  city: string;
  state: string;
  dateTime: number;
  extra: string;
}

export interface Auction {
  id: number;
  itemName: string;
  description: string;
  initialBid: number;
  reserve: number;
  dateTime: number;
  expires: number;
  seller: number;
  category: number;
  extra: string;
}

export interface Bid {
  auction: number;
  bidder: number;
  price: number;
  channel: string;
  url: string;
  dateTime: number;
  extra: string;
}

/** One row of the `datagen` table (ddl_gen.sql): exactly one of person / auction / bid is set. */
export type NexmarkEvent =
  | { event_type: 0; person: Person; auction: null; bid: null }
  | { event_type: 1; person: null; auction: Auction; bid: null }
  | { event_type: 2; person: null; auction: null; bid: Bid };

export interface GeneratorConfig {
  seed: number;
  /** Events per second of event time (Beam's firstEventRate = nextEventRate; default 10,000). */
  eventsPerSecond: number;
  /** Event time of event 0 (epoch ms). */
  baseTime: number;
  personProportion: number;
  auctionProportion: number;
  bidProportion: number;
  /** Auctions considered open when choosing one at random (Beam's numInFlightAuctions). */
  numInFlightAuctions: number;
  /** People considered active when choosing one at random (Beam's numActivePeople). */
  numActivePeople: number;
  /** 1 in hotAuctionRatio bids goes to a random auction, the others to the hot one. */
  hotAuctionRatio: number;
  hotSellersRatio: number;
  hotBiddersRatio: number;
  avgPersonByteSize: number;
  avgAuctionByteSize: number;
  avgBidByteSize: number;
}

export const DEFAULT_CONFIG: GeneratorConfig = {
  seed: 1,
  eventsPerSecond: 10_000,
  baseTime: Date.UTC(2024, 0, 1),
  personProportion: 1,
  auctionProportion: 3,
  bidProportion: 46,
  numInFlightAuctions: 100,
  numActivePeople: 1000,
  hotAuctionRatio: 2,
  hotSellersRatio: 4,
  hotBiddersRatio: 4,
  avgPersonByteSize: 200,
  avgAuctionByteSize: 500,
  avgBidByteSize: 100,
};

export const FIRST_PERSON_ID = 1000;
export const FIRST_AUCTION_ID = 1000;
export const FIRST_CATEGORY_ID = 10;
const NUM_CATEGORIES = 5;
const PERSON_ID_LEAD = 10;
const AUCTION_ID_LEAD = 10;
// Hot items are the first of a batch of this many recent ids (Beam's HOT_*_RATIO constants).
const HOT_SELLER_BATCH = 100;
const HOT_AUCTION_BATCH = 100;
const HOT_BIDDER_BATCH = 100;
const CHANNELS = 10_000;
const HOT_CHANNELS = ['Google', 'Facebook', 'Baidu', 'Apple'];
const US_STATES = ['AZ', 'CA', 'ID', 'OR', 'WA', 'WY'];
const US_CITIES = [
  'Phoenix',
  'Los Angeles',
  'San Francisco',
  'Boise',
  'Portland',
  'Bend',
  'Redmond',
  'Seattle',
  'Kent',
  'Cheyenne',
];
const FIRST_NAMES = ['Peter', 'Paul', 'Luke', 'John', 'Saul', 'Vicky', 'Kate', 'Julie', 'Sarah', 'Deiter', 'Walter'];
const LAST_NAMES = ['Shultz', 'Abrams', 'Spencer', 'White', 'Bartels', 'Walton', 'Smith', 'Jones', 'Noris'];
const POOL_SIZE = 1 << 16;
/** "0000" to "9999", the groups of a credit card number (formatting them per person cost more than the person). */
const FOUR_DIGITS = Array.from({ length: 10000 }, (_, i) => String(i).padStart(4, '0'));

/** mulberry32 state, reseeded per event. */
class Rng {
  s = 0;
  seed(seed: number, n: number): void {
    // Mix seed and event number (n < 2^53) into 32 bits so neighbouring events get unrelated streams.
    let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(n >>> 0, 0xc2b2ae35);
    h ^= Math.imul(Math.floor(n / 4294967296) | 0, 0x27d4eb2f);
    h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
    h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
    this.s = (h ^ (h >>> 16)) | 0;
  }
  next(): number {
    this.s = (this.s + 0x6d2b79f5) | 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

export class NexmarkGenerator {
  readonly config: GeneratorConfig;
  private readonly rng = new Rng();
  private readonly total: number;
  private readonly delayUs: number;
  /** Random letters with ~1 space in 13 (as Beam's nextString); strings are slices of it, cheap to make. */
  private readonly pool: string;
  private readonly hotUrls: string[];
  // Channel names and urls made on first use, in two flat arrays: a bid reads only the two pointers (a [name, url]
  // pair per channel was a cache miss on every other bid, ~14% of q0's time).
  private readonly channelNames: (string | undefined)[] = new Array(CHANNELS);
  private readonly channelUrls: (string | undefined)[] = new Array(CHANNELS);

  constructor(config: Partial<GeneratorConfig> = {}) {
    const c = { ...DEFAULT_CONFIG, ...config };
    for (const [k, v] of Object.entries(c))
      if (!Number.isFinite(v)) throw invalidArgument(`nexmark.${k}`, 'a finite number', v);
    if (!(c.eventsPerSecond > 0))
      throw invalidArgument('nexmark.eventsPerSecond', 'a positive number', c.eventsPerSecond);
    for (const k of ['personProportion', 'auctionProportion', 'bidProportion'] as const)
      if (!Number.isInteger(c[k]) || c[k] < 1) throw invalidArgument(`nexmark.${k}`, 'a positive integer', c[k]);
    this.config = c;
    this.total = c.personProportion + c.auctionProportion + c.bidProportion;
    this.delayUs = 1_000_000 / c.eventsPerSecond;
    const r = this.rng;
    r.seed(c.seed, -1);
    let pool = '';
    const chunk: string[] = [];
    for (let i = 0; i < POOL_SIZE; i++) {
      chunk.push(r.int(13) === 0 ? ' ' : String.fromCharCode(97 + r.int(26)));
      if (chunk.length === 4096) {
        pool += chunk.join('');
        chunk.length = 0;
      }
    }
    this.pool = pool + chunk.join('');
    this.hotUrls = HOT_CHANNELS.map(() => this.baseUrl());
  }

  /** Event time of event n (epoch ms). */
  timestamp(n: number): number {
    return this.config.baseTime + Math.floor((n * this.delayUs) / 1000);
  }

  /** Upper bound of an auction's length (expires - dateTime), for joins that must keep auctions that long. */
  maxAuctionLengthMs(): number {
    const c = this.config;
    const ahead = Math.floor((c.numInFlightAuctions * this.total) / c.auctionProportion);
    return 2 * (Math.floor((ahead * this.delayUs) / 1000) + 1) + 1;
  }

  /** The n-th event (0-based). */
  event(n: number): NexmarkEvent {
    const r = this.rng;
    r.seed(this.config.seed, n);
    const ts = this.timestamp(n);
    const rem = n % this.total;
    const c = this.config;
    if (rem < c.personProportion) return { event_type: 0, person: this.person(n, ts), auction: null, bid: null };
    if (rem < c.personProportion + c.auctionProportion)
      return { event_type: 1, person: null, auction: this.auction(n, ts), bid: null };
    return { event_type: 2, person: null, auction: null, bid: this.bid(n, ts) };
  }

  *events(count: number, from = 0): Generator<NexmarkEvent> {
    for (let n = from; n < from + count; n++) yield this.event(n);
  }

  private lastPerson(n: number): number {
    const epoch = Math.floor(n / this.total);
    let offset = n % this.total;
    if (offset >= this.config.personProportion) offset = this.config.personProportion - 1;
    return epoch * this.config.personProportion + offset;
  }

  private lastAuction(n: number): number {
    const c = this.config;
    let epoch = Math.floor(n / this.total);
    let offset = n % this.total;
    if (offset < c.personProportion) {
      epoch--;
      offset = c.auctionProportion - 1;
    } else if (offset >= c.personProportion + c.auctionProportion) offset = c.auctionProportion - 1;
    else offset -= c.personProportion;
    return epoch * c.auctionProportion + offset;
  }

  /** A random active person, or one of the next few (so a bid may name a person not yet generated). */
  private randomPerson(n: number): number {
    const people = this.lastPerson(n) + 1;
    const active = Math.min(people, this.config.numActivePeople);
    return people - active + this.rng.int(active + PERSON_ID_LEAD);
  }

  private randomAuction(n: number): number {
    const last = this.lastAuction(n);
    const min = Math.max(last - this.config.numInFlightAuctions, 0);
    return min + this.rng.int(last - min + 1 + AUCTION_ID_LEAD);
  }

  private string(maxLength: number): string {
    return this.exact(3 + this.rng.int(maxLength - 3)).trim();
  }
  private exact(length: number): string {
    const off = this.rng.int(POOL_SIZE - length);
    return this.pool.slice(off, off + length);
  }
  private extra(currentSize: number, avgSize: number): string {
    if (currentSize > avgSize) return '';
    const want = avgSize - currentSize;
    const delta = Math.round(want * 0.2);
    return this.exact(want - delta + (delta === 0 ? 0 : this.rng.int(2 * delta)));
  }
  private price(): number {
    return Math.round(10 ** (this.rng.next() * 6) * 100);
  }
  private baseUrl(): string {
    return `https://www.nexmark.com/${this.string(5)}/${this.string(5)}/${this.string(5)}/item.htm?query=1`;
  }

  private person(n: number, ts: number): Person {
    const r = this.rng;
    const id = this.lastPerson(n) + FIRST_PERSON_ID;
    const name = `${FIRST_NAMES[r.int(FIRST_NAMES.length)]} ${LAST_NAMES[r.int(LAST_NAMES.length)]}`;
    const emailAddress = `${this.string(7)}@${this.string(5)}.com`;
    const d = () => FOUR_DIGITS[r.int(10000)] as string;
    const creditCard = `${d()} ${d()} ${d()} ${d()}`;
    const city = US_CITIES[r.int(US_CITIES.length)] as string;
    const state = US_STATES[r.int(US_STATES.length)] as string;
    const size = 8 + name.length + emailAddress.length + creditCard.length + city.length + state.length;
    const extra = this.extra(size, this.config.avgPersonByteSize);
    return { id, name, emailAddress, creditCard, city, state, dateTime: ts, extra };
  }

  private auction(n: number, ts: number): Auction {
    const r = this.rng;
    const c = this.config;
    const id = this.lastAuction(n) + FIRST_AUCTION_ID;
    const seller =
      (r.int(c.hotSellersRatio) > 0
        ? Math.floor(this.lastPerson(n) / HOT_SELLER_BATCH) * HOT_SELLER_BATCH
        : this.randomPerson(n)) + FIRST_PERSON_ID;
    const category = FIRST_CATEGORY_ID + r.int(NUM_CATEGORIES);
    const initialBid = this.price();
    // Average length: the event time until numInFlightAuctions more auctions have been generated.
    const ahead = Math.floor((c.numInFlightAuctions * this.total) / c.auctionProportion);
    const horizon = this.timestamp(n + ahead) - ts;
    const expires = ts + 1 + Math.floor(r.next() * Math.max(horizon * 2, 1));
    const itemName = this.string(20);
    const description = this.string(100);
    const reserve = initialBid + this.price();
    const extra = this.extra(8 + itemName.length + description.length + 40, c.avgAuctionByteSize);
    return { id, itemName, description, initialBid, reserve, dateTime: ts, expires, seller, category, extra };
  }

  private bid(n: number, ts: number): Bid {
    const r = this.rng;
    const c = this.config;
    const auction =
      (r.int(c.hotAuctionRatio) > 0
        ? Math.floor(this.lastAuction(n) / HOT_AUCTION_BATCH) * HOT_AUCTION_BATCH
        : this.randomAuction(n)) + FIRST_AUCTION_ID;
    const bidder =
      (r.int(c.hotBiddersRatio) > 0
        ? Math.floor(this.lastPerson(n) / HOT_BIDDER_BATCH) * HOT_BIDDER_BATCH + 1
        : this.randomPerson(n)) + FIRST_PERSON_ID;
    const price = this.price();
    let channel: string;
    let url: string;
    if (r.int(2) > 0) {
      const i = r.int(HOT_CHANNELS.length);
      channel = HOT_CHANNELS[i] as string;
      url = this.hotUrls[i] as string;
    } else {
      const i = r.int(CHANNELS);
      let name = this.channelNames[i];
      if (name === undefined) {
        // Channel urls are fixed per channel (drawn from a stream of their own, not the event's).
        const saved = r.s;
        r.seed(this.config.seed ^ 0x5bd1e995, i);
        name = `channel-${i}`;
        this.channelNames[i] = name;
        this.channelUrls[i] = `${this.baseUrl()}&channel_id=${i}`;
        r.s = saved;
      }
      channel = name;
      url = this.channelUrls[i] as string;
    }
    const extra = this.extra(32, c.avgBidByteSize);
    return { auction, bidder, price, channel, url, dateTime: ts, extra };
  }
}
