// Nexmark queries as KafkaStreams jobs over an events topic with 2 partitions: numThreads: 1 versus numThreads: 2
// in the same run. The worker threads reach the embedded log over MessagePorts; for comparison, the same jobs
// also run with their clients speaking the Kafka protocol to a broker on loopback (numThreads 1 and 2), as they
// would against a cluster. Each job starts and takes its partitions first; then the
// events are produced while it consumes, and events/s is events / (first produce .. all input processed). Every
// run's results are checked against the reference evaluator.
// Usage: node bench/nexmark/threads.ts [--events N] [--queries q0,q1,...] [--modes 1,2,3,4]
//        [--guarantee exactly_once|at_least_once]
//        [--max-out-of-orderness 60s]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { quietLogger, remoteClient, startKafkaBroker } from '../../src/kafka/index.ts';
import { embeddedClient, type LogClient, openLog } from '../../src/log/index.ts';
import {
  canonicalRows,
  EVENTS_TOPIC,
  encodeEvent,
  eventTime,
  KafkaStreams,
  NEXMARK_EVENT_TIME,
  NEXMARK_TOPOLOGY_MODULE,
  type NexmarkEvent,
  NexmarkGenerator,
  type NexmarkQuery,
  outputTopic,
  queryOptions,
  RowCollector,
  referenceResults,
} from '../../src/streams/index.ts';

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '200000' },
    queries: { type: 'string', default: 'q0,q1,q2,q3,q4,q5,q7,q8,q11' },
    seed: { type: 'string', default: '1' },
    rate: { type: 'string', default: '10000' },
    guarantee: { type: 'string', default: 'exactly_once' },
    // which modes to run, by number in MODES (1-based), e.g. 1,2
    modes: { type: 'string' },
    // The queries' watermark bound (4s). With 2 partitions a task's repartition input interleaves the records of two
    // upstream tasks, and its per-partition watermark follows the faster one: records of the slower one more than
    // the bound behind are late (counted, dropped), so results depend on timing in every mode. A bound longer than
    // the run's event-time span (200,000 events = 20 s) makes every run exact.
    'max-out-of-orderness': { type: 'string' },
  },
});
const N = Number(values.events);
const PARTITIONS = 2;
const genConfig = { seed: Number(values.seed), eventsPerSecond: Number(values.rate) };
const queries = (values.queries as string).split(',') as NexmarkQuery[];
const guarantee = values.guarantee as 'exactly_once' | 'at_least_once';

type Mode = { name: string; numThreads: number; protocol: boolean };
const MODES: Mode[] = [
  { name: 'numThreads 1 (embedded client)', numThreads: 1, protocol: false },
  { name: 'numThreads 2 (MessagePort)', numThreads: 2, protocol: false },
  { name: 'numThreads 1 (Kafka protocol)', numThreads: 1, protocol: true },
  { name: 'numThreads 2 (Kafka protocol)', numThreads: 2, protocol: true },
];

const selectedModes =
  values.modes === undefined ? MODES : (values.modes as string).split(',').map((n) => MODES[Number(n) - 1] as Mode);
if (selectedModes.some((m) => m === undefined)) throw new Error(`--modes: numbers from 1 to ${MODES.length}`);

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

async function until(cond: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for the job to take its partitions');
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function readRows(client: LogClient, q: NexmarkQuery): Promise<string[]> {
  const rows = new RowCollector(q);
  const c = client.consumer({ isolation: 'read_committed', autoOffsetReset: 'earliest', maxPollRecords: 10_000 });
  c.assign(Array.from({ length: PARTITIONS }, (_, p) => ({ topic: outputTopic(q), partition: p })));
  for (let idle = 0; idle < 3; ) {
    const recs = await c.poll(50);
    idle = recs.length === 0 ? idle + 1 : 0;
    for (const r of recs) rows.add(r.key, r.value);
  }
  await c.close();
  return canonicalRows(rows.result());
}

async function run(
  q: NexmarkQuery,
  mode: Mode,
  events: NexmarkEvent[],
): Promise<{ ms: number; cpu: number; rows: string[]; late: number; dropped: number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-nexmark-threads-'));
  // The remote client sends each send() as one batch per partition (it does not split at max.message.bytes), and
  // a commit flushes q4's join changelogs in one send of a few MiB: the log accepts batches up to 64 MiB.
  const log = await openLog({
    dataDir: path.join(dir, 'log'),
    cleanerIntervalMs: 0,
    defaults: { 'max.message.bytes': 64 * 1024 * 1024 },
  });
  const local = embeddedClient(log);
  const broker = mode.protocol ? await startKafkaBroker({ log, port: 0, logger: quietLogger }) : undefined;
  const remote = broker === undefined ? undefined : { bootstrapBrokers: [`127.0.0.1:${broker.port}`] };
  const client = remote === undefined || mode.numThreads > 1 ? local : remoteClient(remote);
  try {
    const admin = local.admin();
    await admin.createTopic(EVENTS_TOPIC, { partitions: PARTITIONS });
    await admin.createTopic(outputTopic(q), { partitions: PARTITIONS });
    await admin.close();
    // End of input as Flink's bounded sources signal it: the job's clock jumps a day ahead and every window closes.
    let skew = 0;
    const streams = await KafkaStreams.fromModule(
      {
        module: NEXMARK_TOPOLOGY_MODULE,
        export: 'buildNexmarkTopology',
        args: [q, queryOptions(new NexmarkGenerator(genConfig), N)],
      },
      {
        applicationId: `nexmark-${q}`,
        client,
        numThreads: mode.numThreads,
        ...(mode.numThreads > 1 ? { workerLog: remote ?? { log } } : {}),
        processingGuarantee: guarantee,
        commitIntervalMs: 100,
        maxPollRecords: 10_000,
        eventTime: {
          ...NEXMARK_EVENT_TIME,
          ...(values['max-out-of-orderness'] === undefined
            ? {}
            : { maxOutOfOrderness: values['max-out-of-orderness'] }),
        },
        wallClock: () => Date.now() + skew,
      },
    );
    await streams.start();
    await until(() => {
      const m = streams.metrics();
      if (streams.state !== 'RUNNING') return false;
      const threads = m.threads;
      return threads === undefined ? m.partitions.length === PARTITIONS : threads.every((t) => t.partitions.length > 0);
    });
    const encoded = events.map((e, n) => ({
      topic: EVENTS_TOPIC,
      key: null,
      value: encodeEvent(e),
      timestamp: eventTime(e),
      partition: n % PARTITIONS,
    }));
    const producer = local.producer({ lingerMs: 0 });
    const c0 = cpuMs();
    const t0 = performance.now();
    for (let i = 0; i < encoded.length; i += 5_000) await producer.send(encoded.slice(i, i + 5_000));
    await producer.close();
    await streams.waitUntilProcessed(600_000);
    const ms = performance.now() - t0;
    const cpu = cpuMs() - c0;
    skew = 86_400_000;
    await new Promise((r) => setTimeout(r, 1_000));
    await streams.waitUntilProcessed(60_000);
    await new Promise((r) => setTimeout(r, 300)); // the threads' last metrics reports
    const { lateRecords: late, droppedRecords: dropped } = streams.metrics();
    await streams.close();
    return { ms, cpu, rows: await readRows(local, q), late, dropped };
  } finally {
    if (client !== local) await client.close();
    await local.close();
    await broker?.close();
    await log.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const load = () =>
  os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
console.log(
  `Nexmark, ${fmt(N)} events over ${PARTITIONS} partitions, ${guarantee}, watermark bound ` +
    `${values['max-out-of-orderness'] ?? NEXMARK_EVENT_TIME.maxOutOfOrderness}, ${os.cpus().length} cores, load average ${load()}`,
);
let allEqual = true;
let allSame = true;
for (const q of queries) {
  const gen = new NexmarkGenerator(genConfig);
  const events: NexmarkEvent[] = new Array(N);
  for (let n = 0; n < N; n++) events[n] = gen.event(n);
  const ref = canonicalRows(referenceResults(q, events));
  const figures: string[] = [];
  let first: string[] | undefined;
  for (const mode of selectedModes) {
    const r = await run(q, mode, events);
    const same = (a: string[], b: string[]) => a.length === b.length && a.every((x, i) => x === b[i]);
    const equal = same(r.rows, ref);
    allEqual &&= equal;
    // Beside the reference, each run against the first (embedded, one thread): threads must not change results.
    first ??= r.rows;
    const asFirst = same(r.rows, first);
    allSame &&= asFirst;
    figures.push(
      `${mode.name}: ${fmt((N * 1000) / r.ms)} events/s (${fmt((N * 1000) / r.cpu)} per CPU-second)` +
        (equal
          ? ''
          : ` [${r.rows.length} rows != reference ${ref.length}${asFirst ? ', = first run' : ', != first run'}; late ${r.late}, dropped ${r.dropped}]`),
    );
  }
  console.log(`${q}: ${figures.join(' | ')}`);
}
console.log(
  `load average at the end ${load()}; results ${allEqual ? 'all equal the reference' : 'DIFFER from the reference'}; ` +
    `every mode ${allSame ? 'wrote the same results' : 'did NOT write the same results'}`,
);
