// Records/s of a tumbling-window count per key: the streams engine (in-process task, in-memory stores) beside a
// hand-written loop computing the same counts, in the same run. Optional: end-to-end on the embedded log with
// exactly-once (`--log`). Usage: node bench/streams-throughput.ts [--records N] [--keys K] [--log]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { embeddedClient, openLog } from '../src/log/index.ts';
import { KafkaStreams, Serdes, StreamsBuilder, TimeWindows, TopologyTestDriver } from '../src/streams/index.ts';

const { values } = parseArgs({
  options: {
    records: { type: 'string', default: '500000' },
    keys: { type: 'string', default: '1000' },
    log: { type: 'boolean', default: false },
  },
});
const N = Number(values.records);
const K = Number(values.keys);
const S = Serdes.String();
const WINDOW = 60_000;

const keys = Array.from({ length: K }, (_, i) => `user-${i}`);
const keyBytes = keys.map((k) => Buffer.from(k));
const valueBytes = Buffer.from('click');
const ts = (i: number) => i * 7; // 7 ms apart: 500,000 records span 59 one-minute windows

function topology() {
  const b = new StreamsBuilder();
  b.stream<string, string>('events', { keySerde: S, valueSerde: S })
    .groupByKey()
    .windowedBy(TimeWindows.ofSizeWithNoGrace(WINDOW))
    .count({ storeName: 'counts' })
    .toStream()
    .to('out', { keySerde: S, valueSerde: Serdes.Long() });
  return b.build();
}

function baseline(): { ms: number; check: number } {
  const t0 = performance.now();
  const counts = new Map<string, number>();
  let out = 0;
  for (let i = 0; i < N; i++) {
    const k = keys[i % K] as string;
    void valueBytes.toString(); // the engine deserializes the value too
    const start = ts(i) - (ts(i) % WINDOW);
    const wk = `${k}@${start}`;
    const c = (counts.get(wk) ?? 0) + 1;
    counts.set(wk, c);
    const kb = Buffer.from(k);
    const ob = Buffer.alloc(kb.length + 16 + 8);
    kb.copy(ob);
    ob.writeBigInt64BE(BigInt(c), kb.length + 16);
    out += ob.length;
  }
  return { ms: performance.now() - t0, check: counts.size + (out > 0 ? 0 : 1) };
}

function engine(): { ms: number; check: number } {
  const d = new TopologyTestDriver(topology());
  let produced = 0;
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    d.pipeRaw('events', keyBytes[i % K] as Buffer, valueBytes, ts(i));
    if ((i & 8191) === 0) produced += d.take('out', Number.MAX_SAFE_INTEGER).length; // keep memory flat
  }
  produced += d.take('out', Number.MAX_SAFE_INTEGER).length;
  d.take(`test-app-counts-changelog`, Number.MAX_SAFE_INTEGER);
  const ms = performance.now() - t0;
  if (produced !== N) throw new Error(`expected ${N} updates, got ${produced}`);
  return { ms, check: d.getWindowStore('counts').all().length };
}

const rate = (ms: number) => Math.round((N / ms) * 1000);
// Warm up both paths, then measure.
const saveN = N;
baseline();
engine();
const b = baseline();
const e = engine();
if (b.check !== e.check) throw new Error(`results differ: baseline ${b.check} windows, engine ${e.check}`);
console.log(`windowed count, ${saveN} records, ${K} keys, in-process task (no log):`);
console.log(`  engine        ${rate(e.ms).toLocaleString()} records/s (${e.ms.toFixed(0)} ms)`);
console.log(`  plain loop    ${rate(b.ms).toLocaleString()} records/s (${b.ms.toFixed(0)} ms)`);
console.log(`  engine/loop   ${(b.ms / e.ms).toFixed(3)}`);

if (values.log) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-streams-'));
  const log = await openLog({ dataDir: dir, cleanerIntervalMs: 0 });
  const client = embeddedClient(log);
  const admin = client.admin();
  await admin.createTopic('events', { partitions: 1 });
  await admin.createTopic('out', { partitions: 1 });
  const p = client.producer({ lingerMs: 0 });
  const tp0 = performance.now();
  for (let i = 0; i < N; i += 5000) {
    const batch = [];
    for (let j = i; j < Math.min(N, i + 5000); j++)
      batch.push({
        topic: 'events',
        key: keyBytes[j % K] as Buffer,
        value: valueBytes,
        timestamp: ts(j),
        partition: 0,
      });
    await p.send(batch);
  }
  const produceMs = performance.now() - tp0;
  const streams = new KafkaStreams(topology(), {
    applicationId: 'bench',
    client,
    commitIntervalMs: 100,
    maxPollRecords: 5000,
  });
  const t0 = performance.now();
  await streams.start();
  await streams.waitUntilProcessed(600_000);
  const ms = performance.now() - t0;
  await streams.close();
  console.log(`on the embedded log, exactly-once, 1 partition (input produced first in ${produceMs.toFixed(0)} ms):`);
  console.log(
    `  job           ${rate(ms).toLocaleString()} records/s (${ms.toFixed(0)} ms, ${streams.metrics().commits} commits)`,
  );
  console.log(`  produce only  ${rate(produceMs).toLocaleString()} records/s (baseline: writing the same records)`);
  await p.close();
  await client.close();
  await log.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
