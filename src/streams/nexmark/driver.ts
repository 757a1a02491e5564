// Runs a query over generated events in memory (TopologyTestDriver) and collects its final output rows.
import type { OutRecord } from '../node.ts';
import type { Serde } from '../serdes.ts';
import { TopologyTestDriver } from '../test-driver.ts';
import { type GeneratorConfig, type NexmarkEvent, NexmarkGenerator } from './generator.ts';
import {
  EVENTS_TOPIC,
  isUpdating,
  NEXMARK_EVENT_TIME,
  type NexmarkQuery,
  nexmarkTopology,
  outputTopic,
  type QueryOptions,
  resultSerdes,
} from './queries.ts';
import type { Row } from './reference.ts';
import { encodeEvent } from './serde.ts';

export const eventTime = (e: NexmarkEvent): number =>
  e.event_type === 0 ? e.person.dateTime : e.event_type === 1 ? e.auction.dateTime : e.bid.dateTime;

/** Join horizons of q3/q4 for `events` events of this generator. */
export function queryOptions(gen: NexmarkGenerator, events: number): QueryOptions {
  return { maxAuctionLengthMs: gen.maxAuctionLengthMs(), spanMs: gen.timestamp(events) - gen.timestamp(0) + 1 };
}

/**
 * Folds output records into result rows: append-only queries keep every row; updating ones (q4) keep the latest
 * row per key (null deletes it).
 */
export class RowCollector {
  private readonly rows: Row[] = [];
  private readonly table = new Map<string, Row>();
  private readonly updating: boolean;
  private readonly serde: Serde<Record<string, unknown>>;
  private readonly q: NexmarkQuery;
  constructor(q: NexmarkQuery) {
    this.q = q;
    this.updating = isUpdating(q);
    this.serde = resultSerdes(q).valueSerde;
  }
  add(key: Buffer | null, value: Buffer | null): void {
    // Plain objects (avsc decodes into a class per record type).
    const row = value === null ? null : { ...(this.serde.deserialize(this.q, value) as Row) };
    if (!this.updating) {
      if (row !== null) this.rows.push(row);
      return;
    }
    const k = key === null ? '' : key.toString('utf8');
    if (row === null) this.table.delete(k);
    else this.table.set(k, row);
  }
  addAll(records: OutRecord[]): void {
    for (const r of records) this.add(r.key, r.value);
  }
  result(): Row[] {
    return this.updating ? [...this.table.values()] : this.rows;
  }
}

/** Generates `events` events and runs query `q` on them in a test driver until every window has closed. */
export function runInMemory(
  q: NexmarkQuery,
  events: number,
  config: Partial<GeneratorConfig> = {},
): { rows: Row[]; events: NexmarkEvent[] } {
  const gen = new NexmarkGenerator(config);
  const driver = new TopologyTestDriver(nexmarkTopology(q, queryOptions(gen, events)), {
    eventTime: NEXMARK_EVENT_TIME,
  });
  const out = outputTopic(q);
  const rows = new RowCollector(q);
  const list: NexmarkEvent[] = [];
  // Changelog records pile up in the driver otherwise: only the output topic is kept.
  const drain = () => {
    for (const t of driver.producedTopicNames()) {
      const recs = driver.take(t, Number.MAX_SAFE_INTEGER);
      if (t === out) rows.addAll(recs);
    }
  };
  for (let n = 0; n < events; n++) {
    const e = gen.event(n);
    list.push(e);
    driver.pipeRaw(EVENTS_TOPIC, null, encodeEvent(e), eventTime(e));
    if ((n & 4095) === 4095) drain();
  }
  // Every input idle: event time follows the (mocked) wall clock and the last windows close.
  driver.advanceWallClockTime(86_400_000);
  drain();
  driver.close();
  return { rows: rows.result(), events: list };
}
