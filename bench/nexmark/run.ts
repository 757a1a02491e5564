// Events/s of each Nexmark query in-process: the generator feeds the query's task directly (events as objects, no
// input topic), results go to a topic on the embedded log and are read back from it for the comparison. Beside it, in the same run, a hand-written loop
// computing the same result (generator + the reference evaluator's plain loops); the results are compared.
// `--log` also runs each query as a KafkaStreams job over the embedded log (events produced to a topic first).
// Usage: node bench/nexmark/run.ts [--events N] [--queries q0,q1,...] [--rate R] [--warmup N] [--runs N] [--log]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { embeddedClient, openLog } from '../../src/log/index.ts';
import {
  canonicalRows,
  EVENTS_TOPIC,
  eventTime,
  NEXMARK_EVENT_TIME,
  NEXMARK_QUERIES,
  type NexmarkEvent,
  NexmarkGenerator,
  type NexmarkQuery,
  nexmarkTopology,
  type OutRecord,
  outputTopic,
  queryOptions,
  RowCollector,
  referenceResults,
  resultSerdes,
  runOnLog,
  TopologyTestDriver,
} from '../../src/streams/index.ts';

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '1000000' },
    queries: { type: 'string', default: NEXMARK_QUERIES.join(',') },
    rate: { type: 'string', default: '10000' },
    seed: { type: 'string', default: '1' },
    log: { type: 'boolean', default: false },
    // Default: one untimed run of the full size (JIT warm-up; after 100,000 events q0 was still ~10% slower).
    warmup: { type: 'string' },
    runs: { type: 'string', default: '3' },
    // Internal: run one query and print only its lines (the parent runs each query in a process of its own).
    child: { type: 'boolean', default: false },
  },
});
const N = Number(values.events);
const config = { seed: Number(values.seed), eventsPerSecond: Number(values.rate) };
const queries = (values.queries as string).split(',') as NexmarkQuery[];
const WARMUP = values.warmup === undefined ? N : Number(values.warmup);
// Runs of one process vary by ±10-15% here (JIT and GC timing): each figure is the median of RUNS runs.
const RUNS = Math.max(1, Number(values.runs));

// CPU time of this process (all threads), beside wall time: on a shared, loaded machine events per CPU-second is
// the closer measure of what one core does.
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** The hand-written loop: generate the events, evaluate the query with the reference's plain loops. */
function generateAndEvaluate(q: NexmarkQuery): ReturnType<typeof referenceResults> {
  const gen = new NexmarkGenerator(config);
  const list: NexmarkEvent[] = new Array(N);
  for (let n = 0; n < N; n++) list[n] = gen.event(n);
  return referenceResults(q, list);
}

function loop(q: NexmarkQuery): { ms: number; cpu: number; rows: string[] } {
  const c0 = cpuMs();
  const t0 = performance.now();
  const rows = generateAndEvaluate(q);
  const ms = performance.now() - t0;
  return { ms, cpu: cpuMs() - c0, rows: canonicalRows(rows) };
}

/** Rows per producer.send() from the engine and from the loop. */
const SEND_BATCH = 1024;

/** The loop's rows also written to a topic as the engine writes them (Avro rows, SEND_BATCH per send). */
async function loopToTopic(q: NexmarkQuery): Promise<{ ms: number; cpu: number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-nexmark-'));
  const log = await openLog({ dataDir: dir, cleanerIntervalMs: 0 });
  const client = embeddedClient(log);
  const out = outputTopic(q);
  await client.admin().createTopic(out, { partitions: 1 });
  const producer = client.producer({ lingerMs: 0 });
  const c0 = cpuMs();
  const t0 = performance.now();
  const rows = generateAndEvaluate(q);
  const { valueSerde } = resultSerdes(q);
  for (let i = 0; i < rows.length; i += SEND_BATCH)
    await producer.send(
      rows.slice(i, i + SEND_BATCH).map((r) => ({ topic: out, key: null, value: valueSerde.serialize(out, r) })),
    );
  const ms = performance.now() - t0;
  const cpu = cpuMs() - c0;
  await producer.close();
  await client.close();
  await log.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return { ms, cpu };
}

async function inProcess(q: NexmarkQuery, events = N): Promise<{ ms: number; cpu: number; rows: string[] }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-nexmark-'));
  const log = await openLog({ dataDir: dir, cleanerIntervalMs: 0 });
  const client = embeddedClient(log);
  const out = outputTopic(q);
  await client.admin().createTopic(out, { partitions: 1 });
  const producer = client.producer({ lingerMs: 0 });
  const c0 = cpuMs();
  const t0 = performance.now();
  const gen = new NexmarkGenerator(config);
  // The generator is the job's source (as Flink's datagen source): events reach the task as objects. Stores are in
  // memory without changelogs (nothing restores them in-process); results go to the output topic in batches.
  let pending: OutRecord[] = [];
  const driver = new TopologyTestDriver(nexmarkTopology(q, queryOptions(gen, events)), {
    eventTime: NEXMARK_EVENT_TIME,
    changelog: false,
    onOutput: (r) => pending.push(r),
  });
  const send = async () => {
    if (pending.length === 0) return;
    const batch = pending;
    pending = [];
    await producer.send(batch);
  };
  const flush = async () => {
    driver.flushCaches();
    await send();
  };
  for (let n = 0; n < events; n++) {
    const e = gen.event(n);
    driver.pipeValue(EVENTS_TOPIC, null, e, eventTime(e));
    // Caches are flushed every 16,384 events (a commit); results go to the producer every SEND_BATCH rows, as a
    // Kafka producer fills batches. Holding more rows than that makes them outlive young-generation GCs: with
    // 16,384 rows per send q0 ran at ~0.85M events/s against ~1.1M.
    if ((n & 16383) === 16383) await flush();
    else if (pending.length >= SEND_BATCH) await send();
  }
  driver.advanceWallClockTime(86_400_000); // end of input: every window closes
  await flush();
  const ms = performance.now() - t0;
  const cpu = cpuMs() - c0;
  driver.close();
  await producer.close();
  // After the clock: the rows are read back from the output topic for the comparison.
  const rows = new RowCollector(q);
  const consumer = client.consumer({ autoOffsetReset: 'earliest' });
  consumer.assign([{ topic: out, partition: 0 }]);
  for (let idle = 0; idle < 3; ) {
    const recs = await consumer.poll(20);
    idle = recs.length === 0 ? idle + 1 : 0;
    for (const r of recs) rows.add(r.key, r.value);
  }
  await consumer.close();
  await client.close();
  await log.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return { ms, cpu, rows: canonicalRows(rows.result()) };
}

const rate = (ms: number) => Math.round((N / ms) * 1000).toLocaleString('en-US');
const both = (ms: number, cpu: number) => `${rate(ms)} (${rate(cpu)})`.padStart(26);
/** The run of median wall time. */
function median<T extends { ms: number }>(runs: T[]): T {
  return [...runs].sort((a, b) => a.ms - b.ms)[runs.length >> 1]!;
}

/** Runs query q in this process; prints its row, returns the engine's slowest-fastest events/s. */
async function measure(q: NexmarkQuery): Promise<string> {
  if (WARMUP > 0) await inProcess(q, WARMUP);
  const engineRuns: Awaited<ReturnType<typeof inProcess>>[] = [];
  const loopRuns: ReturnType<typeof loop>[] = [];
  const topicRuns: Awaited<ReturnType<typeof loopToTopic>>[] = [];
  // The engine's runs first: the loops leave a large heap of garbage behind them.
  for (let i = 0; i < RUNS; i++) engineRuns.push(await inProcess(q));
  for (let i = 0; i < RUNS; i++) loopRuns.push(loop(q));
  for (let i = 0; i < RUNS; i++) topicRuns.push(await loopToTopic(q));
  const [e, b, t] = [median(engineRuns), median(loopRuns), median(topicRuns)];
  const equal = engineRuns.every((r) => r.rows.length === b.rows.length && r.rows.every((x, i) => x === b.rows[i]));
  console.log(
    `${q.padEnd(6)} ${both(e.ms, e.cpu)}  ${both(b.ms, b.cpu)} ${both(t.ms, t.cpu)}  ${(b.cpu / e.cpu).toFixed(3).padStart(18)}  ${String(e.rows.length).padStart(6)}  ${equal}`,
  );
  if (!equal) process.exitCode = 1;
  const slow = Math.max(...engineRuns.map((r) => r.ms));
  const fast = Math.min(...engineRuns.map((r) => r.ms));
  return `${q} ${rate(slow)}-${rate(fast)}`;
}

if (values.child) {
  console.log(`spread ${await measure(queries[0]!)}`);
  process.exit();
}
console.log(
  `nexmark, ${N.toLocaleString('en-US')} events (seed ${config.seed}, ${config.eventsPerSecond} events/s of event time)`,
);
console.log('events/s by wall clock, and per CPU-second in parentheses (the machine may be shared)');
console.log(
  `each query runs in a process of its own: first ${WARMUP.toLocaleString('en-US')} events untimed (JIT warm-up), then ${RUNS} timed runs of each column (the median is shown); "loop + topic" also writes the loop's rows to the results topic (Avro)`,
);
console.log(
  'query        engine in-process           hand-written loop               loop + topic   engine/loop (cpu)    rows  equal',
);
const spread: string[] = [];
for (const q of queries) {
  // A process per query (as JMH forks per benchmark): one query's garbage and JIT state do not weigh on the next.
  const args = ['--events', String(N), '--rate', String(config.eventsPerSecond), '--seed', String(config.seed)];
  args.push('--warmup', String(WARMUP), '--runs', String(RUNS), '--queries', q, '--child');
  const child = spawnSync(process.execPath, [...process.execArgv, process.argv[1]!, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
  });
  for (const line of child.stdout.split('\n').filter((l) => l !== '')) {
    if (line.startsWith('spread ')) spread.push(line.slice(7));
    else console.log(line);
  }
  if (child.status !== 0) process.exitCode = child.status ?? 1;
}
if (RUNS > 1) console.log(`engine events/s over the ${RUNS} runs (slowest-fastest): ${spread.join(', ')}`);
if (values.log) {
  console.log('on the embedded log (KafkaStreams job, at-least-once, 1 partition; generate + produce + process):');
  for (const q of queries) {
    const r = await runOnLog(q, N, config);
    console.log(
      `${q.padEnd(6)} job ${rate(r.jobMs)} events/s, loop ${rate(r.loopMs)} events/s, ${r.rows.length} rows, equal: ${r.equal}, late ${r.late}, dropped ${r.dropped}`,
    );
    if (!r.equal) process.exitCode = 1;
  }
}
