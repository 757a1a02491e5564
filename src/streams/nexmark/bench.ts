// Runs a Nexmark query over the embedded log (generator -> event topic -> KafkaStreams job -> output topic) and,
// in the same run, a hand-written loop (the reference evaluator) computing the same result.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { embeddedClient, openLog } from '../../log/index.ts';
import { KafkaStreams } from '../runtime.ts';
import { eventTime, queryOptions, RowCollector } from './driver.ts';
import { type GeneratorConfig, type NexmarkEvent, NexmarkGenerator } from './generator.ts';
import { EVENTS_TOPIC, NEXMARK_EVENT_TIME, type NexmarkQuery, nexmarkTopology, outputTopic } from './queries.ts';
import { canonicalRows, type Row, referenceResults } from './reference.ts';
import { encodeEvent } from './serde.ts';

export interface LogRunResult {
  query: NexmarkQuery;
  events: number;
  /** Generating and producing the events, then processing them to the output topic (until input processed). */
  jobMs: number;
  /** Generating the events and evaluating the query with plain loops (reference evaluator). */
  loopMs: number;
  rows: Row[];
  referenceRows: number;
  equal: boolean;
  /** Records the job dropped: late at a source (watermark) or for a closed window. */
  late: number;
  dropped: number;
}

const SETTLE_MS = 1_000;

export async function runOnLog(
  q: NexmarkQuery,
  events: number,
  config: Partial<GeneratorConfig> = {},
  opts: { onEvent?: (e: NexmarkEvent) => void } = {},
): Promise<LogRunResult> {
  // The loop first: generator + reference evaluation, the same work without the engine and the log.
  const t0 = performance.now();
  const gen0 = new NexmarkGenerator(config);
  const list: NexmarkEvent[] = new Array(events);
  for (let n = 0; n < events; n++) list[n] = gen0.event(n);
  const ref = referenceResults(q, list);
  const loopMs = performance.now() - t0;

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-nexmark-'));
  const log = await openLog({ dataDir: dir, cleanerIntervalMs: 0 });
  const client = embeddedClient(log);
  try {
    const admin = client.admin();
    await admin.createTopic(EVENTS_TOPIC, { partitions: 1 });
    await admin.createTopic(outputTopic(q), { partitions: 1 });
    const gen = new NexmarkGenerator(config);
    // End of input as Flink's bounded sources signal it (a final watermark): once everything is processed the
    // job's clock jumps a day ahead, the idle inputs let event time follow it and every window closes.
    let skew = 0;
    const streams = new KafkaStreams(nexmarkTopology(q, queryOptions(gen, events)), {
      applicationId: `nexmark-${q}`,
      client,
      processingGuarantee: 'at_least_once',
      commitIntervalMs: 100,
      maxPollRecords: 10_000,
      eventTime: NEXMARK_EVENT_TIME,
      wallClock: () => Date.now() + skew,
    });
    const t1 = performance.now();
    await streams.start();
    // The job consumes while the generator produces.
    const producer = client.producer({ lingerMs: 0 });
    const BATCH = 5_000;
    for (let i = 0; i < events; i += BATCH) {
      const batch = [];
      for (let n = i; n < Math.min(events, i + BATCH); n++) {
        const e = gen.event(n);
        opts.onEvent?.(e);
        batch.push({ topic: EVENTS_TOPIC, key: null, value: encodeEvent(e), timestamp: eventTime(e), partition: 0 });
      }
      await producer.send(batch);
    }
    await producer.close();
    await streams.waitUntilProcessed(600_000);
    const jobMs = performance.now() - t1;
    skew = 86_400_000;
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    await streams.waitUntilProcessed(60_000);
    const { lateRecords: late, droppedRecords: dropped } = streams.metrics();
    await streams.close();

    const rows = new RowCollector(q);
    const c = client.consumer({ isolation: 'read_committed', autoOffsetReset: 'earliest' });
    c.assign([{ topic: outputTopic(q), partition: 0 }]);
    for (let idle = 0; idle < 3; ) {
      const recs = await c.poll(50);
      idle = recs.length === 0 ? idle + 1 : 0;
      for (const r of recs) rows.add(r.key, r.value);
    }
    await c.close();
    const got = rows.result();
    const a = canonicalRows(got);
    const b = canonicalRows(ref);
    const equal = a.length === b.length && a.every((x, i) => x === b[i]);
    return { query: q, events, jobMs, loopMs, rows: got, referenceRows: ref.length, equal, late, dropped };
  } finally {
    await client.close();
    await log.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
