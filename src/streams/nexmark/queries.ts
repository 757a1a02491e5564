// Nexmark queries q0-q5, q7, q8 and q11 written in the streams DSL. Each reads the `datagen`-shaped event topic
// and writes rows with the column names of the query's SQL file (reference/nexmark/queries/qN.sql) as JSON values.
import { TributaryError } from '../../core/index.ts';
import { EmitStrategy, type KStream, StreamsBuilder, Suppressed } from '../dsl.ts';
import { type Serde, Serdes } from '../serdes.ts';
import type { EventTimeConfig } from '../task.ts';
import type { Topology } from '../topology.ts';
import type { StreamRecord, Windowed } from '../types.ts';
import { JoinWindows, SessionWindows, TimeWindows } from '../windows.ts';
import type { Auction, Bid, NexmarkEvent, Person } from './generator.ts';
import { AuctionSerde, BidSerde, NexmarkEventSerde, PersonSerde } from './serde.ts';

export const NEXMARK_QUERIES = ['q0', 'q1', 'q2', 'q3', 'q4', 'q5', 'q7', 'q8', 'q11'] as const;
export type NexmarkQuery = (typeof NEXMARK_QUERIES)[number];
export const EVENTS_TOPIC = 'nexmark-events';
export const outputTopic = (q: NexmarkQuery): string => `nexmark-${q}`;

/**
 * The watermark of ddl_gen.sql (`dateTime - INTERVAL '4' SECOND`). The idle timeout is long so that a stalled
 * input (a repartition topic read behind the others) does not make the others' records late; at the end of
 * input the runners advance the clock by a day, past it, and every window closes.
 */
export const NEXMARK_EVENT_TIME: EventTimeConfig = { maxOutOfOrderness: '4s', idleTimeout: '10s' };

/** Query options: q3/q4 join horizons depend on the generator (auction length, run length). */
export interface QueryOptions {
  /** Upper bound of expires - dateTime of any auction (NexmarkGenerator.maxAuctionLengthMs()). */
  maxAuctionLengthMs: number;
  /** Upper bound of the event-time span of the run: q3 is an unbounded join, kept for this long. */
  spanMs: number;
}

/** Whether a query's output is an updating table (key -> latest row) rather than an append-only stream. */
export const isUpdating = (q: NexmarkQuery): boolean => q === 'q4';

const J = Serdes.JSON();
// Repartition keys (ids) are integers.
const L = Serdes.Long();

type Column = [name: string, type: 'long' | 'double' | 'string'];
const LONGS = (...names: string[]): Column[] => names.map((n) => [n, 'long']);
const BID_ROW: Column[] = [...LONGS('auction', 'bidder', 'price', 'dateTime'), ['extra', 'string']];
/** The columns of each query's SQL file (times as epoch milliseconds), in order. */
const COLUMNS: Record<NexmarkQuery, Column[]> = {
  q0: BID_ROW,
  // DECIMAL(23, 3) travels as the nearest double.
  q1: [...LONGS('auction', 'bidder'), ['price', 'double'], ...LONGS('dateTime'), ['extra', 'string']],
  q2: LONGS('auction', 'price'),
  q3: [
    ['name', 'string'],
    ['city', 'string'],
    ['state', 'string'],
    ['id', 'long'],
  ],
  q4: LONGS('id', 'final'),
  q5: LONGS('auction', 'num', 'starttime', 'endtime'),
  q7: BID_ROW,
  q8: [...LONGS('id'), ['name', 'string'], ...LONGS('stime')],
  q11: LONGS('bidder', 'bid_count', 'starttime', 'endtime'),
};

/** The Avro schema of query `q`'s result rows: a record named after the query with its SQL columns. */
export const resultSchema = (q: NexmarkQuery) => ({
  type: 'record',
  name: `nexmark_${q}`,
  fields: COLUMNS[q].map(([name, type]) => ({ name, type })),
});

/**
 * The serdes of query `q`'s results topic: Avro rows (the format of most Kafka topics, and compact: a q0 row is
 * 83 bytes against 148 as JSON); keys, where a query has them, as JSON.
 */
export function resultSerdes(q: NexmarkQuery): {
  keySerde: Serde<unknown>;
  valueSerde: Serde<Record<string, unknown>>;
} {
  return { keySerde: J, valueSerde: Serdes.Avro<Record<string, unknown>>(resultSchema(q)) };
}
const byType = <T>(s: KStream<unknown, NexmarkEvent>, type: 0 | 1 | 2, pick: (e: NexmarkEvent) => T) =>
  s.filter((_k, e) => e.event_type === type).mapValues(pick);
const isBid = (_k: unknown, e: NexmarkEvent) => e.event_type === 2;
const bids = (s: KStream<unknown, NexmarkEvent>) => byType(s, 2, (e) => e.bid as Bid);
const auctions = (s: KStream<unknown, NexmarkEvent>) => byType(s, 1, (e) => e.auction as Auction);
const persons = (s: KStream<unknown, NexmarkEvent>) => byType(s, 0, (e) => e.person as Person);

const W10 = 10_000;

/** Builds query `q` as a topology reading EVENTS_TOPIC and writing outputTopic(q). */
export function nexmarkTopology(q: NexmarkQuery, opts: QueryOptions): Topology {
  const b = new StreamsBuilder();
  const events = b.stream<unknown, NexmarkEvent>(EVENTS_TOPIC, {
    keySerde: Serdes.Bytes() as never,
    valueSerde: NexmarkEventSerde,
  });
  const out = outputTopic(q);
  const OUT = resultSerdes(q) as { keySerde: never; valueSerde: never };
  switch (q) {
    // The projections read the bid straight off the event: one operator per SQL clause, no intermediate record.
    case 'q0':
      events
        .filter(isBid)
        .mapValues(({ bid: x }) => ({
          auction: x!.auction,
          bidder: x!.bidder,
          price: x!.price,
          dateTime: x!.dateTime,
          extra: x!.extra,
        }))
        .to(out, OUT);
      break;
    case 'q1':
      events
        .filter(isBid)
        .mapValues(({ bid: x }) => ({
          auction: x!.auction,
          bidder: x!.bidder,
          // DECIMAL(23, 3): price * 0.908 is exact in thousandths; this is the double nearest to it.
          price: (x!.price * 908) / 1000,
          dateTime: x!.dateTime,
          extra: x!.extra,
        }))
        .to(out, OUT);
      break;
    case 'q2':
      events
        .filter((_k, e) => e.event_type === 2 && e.bid!.auction % 123 === 0)
        .mapValues(({ bid: x }) => ({ auction: x!.auction, price: x!.price }))
        .to(out, OUT);
      break;
    case 'q3': {
      // A regular (unbounded) join in SQL: a windowed stream-stream join whose window spans the whole run.
      const sellers = persons(events)
        .filter((_k, p) => p.state === 'OR' || p.state === 'ID' || p.state === 'CA')
        .selectKey((_k, p) => p.id)
        .repartition({ keySerde: L, valueSerde: PersonSerde });
      auctions(events)
        .filter((_k, a) => a.category === 10)
        .selectKey((_k, a) => a.seller)
        .repartition({ keySerde: L, valueSerde: AuctionSerde })
        .join(
          sellers,
          (a: Auction, p: Person) => ({ name: p.name, city: p.city, state: p.state, id: a.id }),
          JoinWindows.ofTimeDifferenceWithNoGrace(opts.spanMs),
        )
        .to(out, OUT);
      break;
    }
    case 'q4': {
      // Bids join their auction while it is open; auctions precede their bids by at most the longest auction.
      // Joins repartition both sides by the new key; binary serdes for those topics (as StreamJoined would give).
      const open = auctions(events)
        .selectKey((_k, a) => a.id)
        .repartition({ keySerde: L, valueSerde: AuctionSerde });
      const maxPerAuction = bids(events)
        .selectKey((_k, x) => x.auction)
        .repartition({ keySerde: L, valueSerde: BidSerde })
        .join(
          open,
          (x: Bid, a: Auction) => ({ category: a.category, price: x.price, ok: x.dateTime <= a.expires }),
          JoinWindows.ofTimeDifferenceWithNoGrace(0).before(opts.maxAuctionLengthMs),
        )
        .filter((_k, v) => v?.ok === true)
        .groupByKey()
        .aggregate<{ category: number; final: number }>(
          () => ({ category: 0, final: Number.NEGATIVE_INFINITY }),
          (_k, v, agg) => ({ category: v.category, final: Math.max(agg.final, v.price) }),
        );
      maxPerAuction
        .groupBy((_k, v) => [v.category, v.final], { keySerde: L, valueSerde: L })
        .aggregate<{ sum: number; count: number }>(
          () => ({ sum: 0, count: 0 }),
          (_k, v, agg) => ({ sum: agg.sum + v, count: agg.count + 1 }),
          (_k, v, agg) => ({ sum: agg.sum - v, count: agg.count - 1 }),
        )
        .toStream()
        // AVG of BIGINT is a BIGINT in Flink: the integer part of the mean.
        .mapValues((a, category) =>
          a === null || a.count === 0 ? null : { id: category, final: Math.trunc(a.sum / a.count) },
        )
        .to(out, OUT);
      break;
    }
    case 'q5': {
      bids(events)
        // Only the key crosses the repartition topic (as Flink's planner prunes the shuffled columns): count()
        // needs no value.
        .selectKey((_k, x) => x.auction)
        .mapValues(() => 1)
        .groupByKey({ keySerde: L, valueSerde: L })
        .windowedBy(TimeWindows.ofSizeWithNoGrace(W10).advanceBy(2_000))
        // Final counts only (as suppress(untilWindowCloses()), without a suppression buffer).
        .emitStrategy(EmitStrategy.onWindowClose())
        .count()
        .toStream()
        // All counts of a window meet in one task (keyed by the window's start): its maximum is global.
        .map((k: Windowed<number>, num: number) => [k.window.start, { auction: k.key, num, end: k.window.end }])
        .repartition({ keySerde: L, valueSerde: WindowCountSerde })
        .process<number, { auction: number; num: number; starttime: number; endtime: number }>(hottest, HOTTEST_STORE)
        .to(out, OUT);
      b.addStateStore({ name: HOTTEST_STORE, type: 'keyValue' });
      break;
    }
    case 'q7': {
      // Windows of 10 s + 1 ms every 10 s hold the bids of [start, end] (BETWEEN is inclusive); the maximum
      // is taken over [start, end) only, the tumbling window of the SQL.
      bids(events)
        .groupBy(() => 0, { keySerde: L, valueSerde: BidSerde })
        .windowedBy(TimeWindows.ofSizeWithNoGrace(W10 + 1).advanceBy(W10))
        .aggregate<MaxBids>(
          () => ({ max: -1, best: [], edge: [] }),
          (_k, x, agg) => addBid(agg, x),
        )
        .suppress(Suppressed.untilWindowCloses())
        .toStream()
        .flatMap((k: Windowed<number>, agg: MaxBids) => highest(k.window.start, agg))
        .to(out, OUT);
      break;
    }
    case 'q8': {
      // The engine's KTable-KTable join reads non-windowed stores: both final windowed results are re-keyed by
      // "<id>@<window start>" into plain tables and joined there.
      const inWindow = (k: Windowed<number>) => `${k.key}@${k.window.start}`;
      const people = persons(events)
        .groupBy((_k, p) => p.id, { keySerde: L, valueSerde: PersonSerde })
        .windowedBy(TimeWindows.ofSizeWithNoGrace(W10))
        .reduce((first) => first)
        .suppress(Suppressed.untilWindowCloses())
        .toStream()
        .map((k: Windowed<number>, p: Person) => [inWindow(k), { id: p.id, name: p.name, stime: k.window.start }])
        .toTable();
      const selling = auctions(events)
        .groupBy((_k, a) => a.seller, { keySerde: L, valueSerde: AuctionSerde })
        .windowedBy(TimeWindows.ofSizeWithNoGrace(W10))
        .count()
        .suppress(Suppressed.untilWindowCloses())
        .toStream()
        .selectKey((k: Windowed<number>) => inWindow(k))
        .toTable();
      people
        .join(selling, (p) => p)
        .toStream()
        .filter((_k, p) => p !== null)
        .to(out, OUT);
      break;
    }
    case 'q11': {
      const gap = W10;
      bids(events)
        .selectKey((_k, x) => x.bidder)
        .mapValues(() => 1)
        .groupByKey({ keySerde: L, valueSerde: L })
        .windowedBy(SessionWindows.ofInactivityGapAndGrace(gap, gap))
        // Final counts only (as suppress(untilWindowCloses()), without a suppression buffer).
        .emitStrategy(EmitStrategy.onWindowClose())
        .count()
        .toStream()
        // Grace = gap: a session is emitted only once no later bid can merge into it (at end + grace).
        .filter((_k, n) => n !== null)
        // Flink's SESSION_END is the last event time plus the gap; Kafka's session end is the last event time.
        .map((k: Windowed<number>, n: number) => [
          k.key,
          { bidder: k.key, bid_count: n, starttime: k.window.start, endtime: k.window.end + gap },
        ])
        .to(out, OUT);
      break;
    }
    default:
      throw new TributaryError('INVALID_ARGUMENT', `query: expected one of ${NEXMARK_QUERIES.join(', ')}, got ${q}`);
  }
  return b.build();
}

// ---- q5: the auctions with the most bids per window ----

const HOTTEST_STORE = 'nexmark-q5-hottest';
interface Hottest {
  end: number;
  num: number;
  auctions: number[];
}

/** One window's final count of one auction, keyed by the window's start. */
interface WindowCount {
  auction: number;
  num: number;
  end: number;
}

/** Three float64s: auction, count, window end. */
const WindowCountSerde: Serde<WindowCount> = {
  serialize: (_topic, v) => {
    if (v === null) return null;
    const b = Buffer.allocUnsafe(24);
    b.writeDoubleLE(v.auction, 0);
    b.writeDoubleLE(v.num, 8);
    b.writeDoubleLE(v.end, 16);
    return b;
  },
  deserialize: (_topic, b) =>
    b === null ? null : { auction: b.readDoubleLE(0), num: b.readDoubleLE(8), end: b.readDoubleLE(16) },
};

/**
 * Receives each window's final counts (keyed by window start, from every task) and emits the auctions whose
 * count is the window's maximum once event time reaches the window's end: the watermark markers of every upstream
 * task have passed it by then, so every count of that window has arrived.
 */
function hottest() {
  return {
    process(
      rec: StreamRecord<number, WindowCount>,
      ctx: import('../ops.ts').ProcessorContext<
        number,
        { auction: number; num: number; starttime: number; endtime: number }
      >,
    ) {
      if (rec.value === null) return;
      const store = ctx.getStateStore<import('../stores.ts').KeyValueStore<number, Hottest>>(HOTTEST_STORE);
      const start = rec.key;
      const { auction, num, end } = rec.value;
      const cur = store.get(start);
      if (cur === null || num > cur.num) {
        if (cur === null) ctx.registerEventTimeTimer(end, start);
        store.put(start, { end, num, auctions: [auction] });
      } else if (num === cur.num) store.put(start, { ...cur, auctions: [...cur.auctions, auction] });
    },
    onTimer(
      timer: import('../ops.ts').Timer<unknown>,
      ctx: import('../ops.ts').ProcessorContext<
        number,
        { auction: number; num: number; starttime: number; endtime: number }
      >,
    ) {
      const store = ctx.getStateStore<import('../stores.ts').KeyValueStore<number, Hottest>>(HOTTEST_STORE);
      const start = timer.key as number;
      const h = store.get(start);
      if (h === null) return;
      store.delete(start);
      for (const a of h.auctions)
        ctx.forward({
          key: a,
          value: { auction: a, num: h.num, starttime: start, endtime: h.end },
          timestamp: h.end - 1,
          headers: [],
        });
    },
  };
}

// ---- q7: the highest bids per 10 s window ----

type BidRow = { auction: number; bidder: number; price: number; dateTime: number; extra: string };
interface MaxBids {
  /** Highest price among bids not on a 10 s boundary. */
  max: number;
  /** Bids not on a boundary with price = max. */
  best: BidRow[];
  /** Bids on a 10 s boundary: the window's start (counted in its maximum) or its end (only joined). */
  edge: BidRow[];
}

function addBid(agg: MaxBids, x: Bid): MaxBids {
  const row = { auction: x.auction, bidder: x.bidder, price: x.price, dateTime: x.dateTime, extra: x.extra };
  if (x.dateTime % W10 === 0) return { ...agg, edge: [...agg.edge, row] };
  if (x.price > agg.max) return { ...agg, max: x.price, best: [row] };
  if (x.price === agg.max) return { ...agg, best: [...agg.best, row] };
  return agg;
}

function highest(start: number, agg: MaxBids): [number, Record<string, unknown>][] {
  let max = agg.max;
  for (const r of agg.edge) if (r.dateTime === start && r.price > max) max = r.price;
  const rows = [...agg.best.filter((r) => r.price === max), ...agg.edge.filter((r) => r.price === max)];
  // The SQL selects (auction, price, bidder, ...) into columns (auction, bidder, price, ...): by position.
  return rows.map((r) => [
    r.auction,
    { auction: r.auction, bidder: r.price, price: r.bidder, dateTime: r.dateTime, extra: r.extra },
  ]);
}
