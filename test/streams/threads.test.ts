// numThreads > 1: real worker threads over a real log (served to them on MessagePorts, or over the Kafka protocol).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { BroadcastChannel } from 'node:worker_threads';
import { TributaryError } from '../../src/core/index.ts';
import { quietLogger, startKafkaBroker } from '../../src/kafka/index.ts';
import { embeddedClient, type LogClient, type LogService, openLog } from '../../src/log/index.ts';
import {
  KafkaStreams,
  Serdes,
  type StreamsConfig,
  type StreamsState,
  TopologyTestDriver,
} from '../../src/streams/index.ts';
import { EXIT_CODE_ASKED } from '../../src/streams/threads.ts';
import { CRASH_CHANNEL, eosTopology, fmtW, L, perKey, S } from './fixtures/eos-topology.ts';

const PARTITIONS = 4;
const EVENTS = 3000;
const MODULE = { module: new URL('./fixtures/eos-topology.ts', import.meta.url), export: 'eosTopology' };
const CRASHABLE = { ...MODULE, export: 'eosTopologyCrashable' };

/** Makes a worker thread fail (see eosTopologyCrashable). */
function crash(threadId: number, how: 'crash' | 'processor'): void {
  const ch = new BroadcastChannel(CRASH_CHANNEL);
  ch.postMessage({ threadId, how });
  ch.close();
}

const input: [string, string, number][] = [];
for (let i = 0; i < EVENTS; i++) input.push([`u${(i * 7) % 40}`, `e${i}`, i * 10]);
// One far-future event per partition closes every window in every task.
const flush = Array.from({ length: PARTITIONS }, (_, i) => ({
  topic: 'events',
  key: `flush${i}`,
  value: 'f',
  timestamp: EVENTS * 10 + 1_000_000,
  partition: i,
}));

/** The expected output, per key in order (counts) and sorted (final window counts), from the test driver. */
function expected(): { counts: Map<string, number[]>; windows: string[] } {
  const d = new TopologyTestDriver(eosTopology());
  const ti = d.createInputTopic('events', S, S);
  for (const [k, v, ts] of input) ti.pipeInput(k, v, ts);
  for (const f of flush) ti.pipeInput(f.key, f.value, f.timestamp);
  const counts = perKey(d.createOutputTopic('counts-out', S, L).readRecordsToList());
  const windows = d
    .createOutputTopic('windows-out', Serdes.Windowed(S), L)
    .readRecordsToList()
    .map((r) => fmtW(r.key, r.value))
    .sort();
  return { counts, windows };
}

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function withLog(fn: (log: LogService, client: LogClient, dir: string) => Promise<void>): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'streams-threads-'));
  const log = await openLog({ dataDir: path.join(dir, 'log'), cleanerIntervalMs: 0 });
  const client = embeddedClient(log);
  try {
    const admin = client.admin();
    for (const t of ['events', 'counts-out', 'windows-out']) await admin.createTopic(t, { partitions: PARTITIONS });
    await admin.close();
    await fn(log, client, dir);
  } finally {
    await client.close();
    await log.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function produce(client: LogClient, from: number, to: number): Promise<void> {
  const p = client.producer();
  await p.send(input.slice(from, to).map(([k, v, ts]) => ({ topic: 'events', key: k, value: v, timestamp: ts })));
  if (to === input.length) await p.send(flush);
  await p.close();
}

/** Reads a topic read_committed to its end. */
async function read(client: LogClient, topic: string): Promise<{ key: Buffer | null; value: Buffer | null }[]> {
  const admin = client.admin();
  const ends = (await admin.describeTopic(topic)).partitions.map((x) => x.highWatermark);
  await admin.close();
  const c = client.consumer({ isolation: 'read_committed', autoOffsetReset: 'earliest', maxPollRecords: 5000 });
  c.assign(ends.map((_, i) => ({ topic, partition: i })));
  const out: { key: Buffer | null; value: Buffer | null }[] = [];
  const deadline = Date.now() + 30_000;
  while (ends.some((end, i) => (c.position({ topic, partition: i }) ?? 0n) < end)) {
    if (Date.now() > deadline) throw new Error(`read_committed reader of ${topic} stuck before the end`);
    out.push(...(await c.poll(50)));
  }
  await c.close();
  return out;
}

async function outputs(client: LogClient): Promise<{ counts: Map<string, number[]>; windows: string[] }> {
  const counts = perKey(
    (await read(client, 'counts-out')).map((r) => ({
      key: S.deserialize('', r.key),
      value: L.deserialize('', r.value),
    })),
  );
  const W = Serdes.Windowed(S);
  const windows = (await read(client, 'windows-out'))
    .map((r) => fmtW(W.deserialize('', r.key), L.deserialize('', r.value)))
    .sort();
  return { counts, windows };
}

function config(log: LogService, client: LogClient, dir: string, numThreads: number): StreamsConfig {
  return {
    applicationId: 'threads',
    client,
    numThreads,
    workerLog: { log },
    stateDir: path.join(dir, 'state'),
    processingGuarantee: 'exactly_once',
    commitIntervalMs: 50,
    sessionTimeoutMs: 3000,
    transactionTimeoutMs: 3000,
  };
}

test('numThreads > 1 with a plain Topology object is refused with a precise error', () => {
  const log = {} as LogService;
  assert.throws(
    () =>
      new KafkaStreams(eosTopology(), {
        applicationId: 'x',
        client: {} as LogClient,
        numThreads: 2,
        workerLog: { log },
      }),
    (err: unknown) =>
      err instanceof TributaryError &&
      err.code === 'UNSUPPORTED' &&
      err.field === 'numThreads' &&
      /fromModule/.test(err.message) &&
      /fromJobSpec/.test(err.message),
  );
  assert.throws(
    () => new KafkaStreams(eosTopology(), { applicationId: 'x', client: {} as LogClient, numThreads: 0 }),
    (err: unknown) => err instanceof TributaryError && err.field === 'numThreads',
  );
});

test('fromModule checks the module in this thread first; numThreads > 1 needs workerLog and no serde objects', async () => {
  const base = { applicationId: 'x', client: {} as LogClient };
  const field = (f: string) => (err: unknown) => err instanceof TributaryError && err.field === f;
  await assert.rejects(KafkaStreams.fromModule({ ...MODULE, export: 'nope' }, base), field('export'));
  await assert.rejects(KafkaStreams.fromModule({ ...MODULE, export: 'S' }, base), field('export'));
  await assert.rejects(KafkaStreams.fromModule({ module: '/nonexistent/topology.ts' }, base), field('module'));
  await assert.rejects(KafkaStreams.fromModule(MODULE, { ...base, numThreads: 2 }), field('workerLog'));
  await assert.rejects(
    KafkaStreams.fromModule(MODULE, {
      ...base,
      numThreads: 2,
      workerLog: { log: {} as LogService },
      defaultKeySerde: S,
    }),
    field('defaultKeySerde'),
  );
  // One thread: the module's topology runs in this thread as with new KafkaStreams(topology, config).
  const one = await KafkaStreams.fromModule(MODULE, base);
  assert.equal(one.state, 'CREATED');
  assert.deepEqual(one.workerThreads(), []);
});

test('numThreads: 2 over 4 partitions spreads the tasks over 2 threads and writes what numThreads: 1 writes (exactly-once)', async () => {
  const want = expected();
  const results: { counts: Map<string, number[]>; windows: string[] }[] = [];
  for (const numThreads of [1, 2]) {
    await withLog(async (log, client, dir) => {
      await produce(client, 0, input.length);
      const streams = await KafkaStreams.fromModule(MODULE, config(log, client, dir, numThreads));
      const states: StreamsState[] = [];
      streams.onStateChange((s) => states.push(s));
      try {
        await streams.start();
        await streams.waitUntilProcessed(30_000);
        if (numThreads === 2) {
          // Both threads run a share of the partitions (the second one's join moves half of them).
          await until('two threads sharing the partitions', () => {
            const t = streams.metrics().threads ?? [];
            return t.length === 2 && t.every((x) => x.partitions.length > 0);
          });
          const m = streams.metrics();
          const threads = m.threads ?? [];
          assert.deepEqual(
            threads.flatMap((t) => t.partitions).sort(),
            [0, 1, 2, 3],
            `partitions per thread: ${JSON.stringify(threads.map((t) => t.partitions))}`,
          );
          assert.deepEqual(
            threads.map((t) => t.instanceId),
            ['0-t0', '0-t1'],
          );
          assert.deepEqual(m.partitions, [0, 1, 2, 3]);
          assert.equal(streams.workerThreads().length, 2);
          // Interactive queries ask every thread.
          const counts = streams.keyValueStoreAsync<string, number>('counts');
          assert.equal(await counts.get('u0'), want.counts.get('u0')?.at(-1));
          assert.equal((await counts.all()).length, 40 + PARTITIONS);
          assert.throws(() => streams.keyValueStore('counts'), /keyValueStoreAsync/);
        }
        assert.equal(streams.state, 'RUNNING');
      } finally {
        await streams.close();
      }
      assert.equal(streams.state, 'NOT_RUNNING');
      assert.equal(streams.workerThreads().length, 0);
      assert.ok(states.includes('RUNNING'));
      results.push(await outputs(client));
    });
  }
  const [one, two] = results as [(typeof results)[0], (typeof results)[0]];
  assert.ok(want.windows.length > 0);
  assert.deepEqual(one.counts, want.counts);
  assert.deepEqual(one.windows, want.windows);
  assert.deepEqual(two.counts, one.counts);
  assert.deepEqual(two.windows, one.windows);
});

test('numThreads: 2 over a Kafka cluster (workerLog: bootstrap brokers) writes the same results (exactly-once)', async () => {
  const want = expected();
  await withLog(async (log, client, dir) => {
    const broker = await startKafkaBroker({ log, host: '127.0.0.1', port: 0, logger: quietLogger });
    try {
      await produce(client, 0, input.length);
      const streams = await KafkaStreams.fromModule(MODULE, {
        ...config(log, client, dir, 2),
        workerLog: { bootstrapBrokers: [`127.0.0.1:${broker.port}`] },
      });
      try {
        await streams.start();
        await streams.waitUntilProcessed(30_000);
        assert.equal(streams.workerThreads().length, 2);
      } finally {
        await streams.close();
      }
      const got = await outputs(client);
      assert.deepEqual(got.counts, want.counts);
      assert.deepEqual(got.windows, want.windows);
    } finally {
      await broker.close();
    }
  });
});

const failures = {
  crash: /thread 0 \(0-t0\) died: simulated crash/,
  processor: /thread 0 \(0-t0\).*simulated processor failure/,
} as const;
for (const [how, message] of Object.entries(failures) as ['crash' | 'processor', RegExp][]) {
  test(`a worker thread that fails (${how === 'crash' ? 'uncaught exception' : 'processor exception'}) is replaced (REPLACE_THREAD); its tasks restore from the changelog and the results are complete`, async () => {
    const want = expected();
    await withLog(async (log, client, dir) => {
      const third = EVENTS / 3;
      await produce(client, 0, third);
      // No state checkpoint after the restore's during the test: what the thread committed before it failed must be
      // restored from the changelogs by whichever thread takes its tasks.
      const streams = await KafkaStreams.fromModule(CRASHABLE, {
        ...config(log, client, dir, 2),
        maxPollRecords: 50,
        stateCheckpointIntervalMs: 600_000,
      });
      const errors: unknown[] = [];
      streams.setUncaughtExceptionHandler((err) => {
        errors.push(err);
        return 'REPLACE_THREAD';
      });
      try {
        await streams.start();
        await until('two threads sharing the partitions', () =>
          (streams.metrics().threads ?? []).every((x) => x.partitions.length > 0),
        );
        // The thread to fail works on its share of the input when it fails.
        await produce(client, third, 2 * third);
        await until('thread 0 to commit records of its own partitions', async () => {
          const own = streams.metrics().threads?.[0]?.partitions ?? [];
          const committed = await log.fetchOffsets(
            'threads',
            own.map((partition) => ({ topic: 'events', partition })),
          );
          return committed.some((c) => c.offset > 0n);
        });
        const [victim] = streams.workerThreads();
        assert.ok(victim !== undefined);
        const exitCode = new Promise<number>((r) => victim.once('exit', r));
        crash(victim.threadId, how);
        // A processor fails on the next record it gets: the last third comes before the failure, else after it.
        if (how === 'processor') await produce(client, 2 * third, EVENTS);
        await until('the thread to be replaced', () => streams.metrics().threads?.[0]?.replacements === 1);
        if (how === 'crash') await produce(client, 2 * third, EVENTS);
        await streams.waitUntilProcessed(30_000);
        const m = streams.metrics();
        assert.equal(errors.length, 1);
        assert.match(String((errors[0] as Error).message), message);
        // A thread whose processor failed is asked to exit, never terminated (see StreamThreads.stopWorker).
        assert.equal(await exitCode, how === 'crash' ? 1 : EXIT_CODE_ASKED);
        assert.equal(streams.state, 'RUNNING');
        // Whichever threads took the failed one's tasks over rebuilt their stores from the changelogs.
        assert.ok(m.restoredRecords > 0);
        assert.deepEqual((m.threads ?? []).flatMap((t) => t.partitions).sort(), [0, 1, 2, 3]);
      } finally {
        await streams.close();
      }
      assert.equal(streams.state, 'NOT_RUNNING');
      const got = await outputs(client);
      assert.deepEqual(got.counts, want.counts);
      assert.deepEqual(got.windows, want.windows);
    });
  });
}

test('a dead thread under SHUTDOWN_CLIENT (the default) stops the other threads and the instance goes to ERROR', async () => {
  await withLog(async (log, client, dir) => {
    await produce(client, 0, 200);
    const streams = await KafkaStreams.fromModule(CRASHABLE, config(log, client, dir, 2));
    try {
      await streams.start();
      await until('two threads sharing the partitions', () =>
        (streams.metrics().threads ?? []).every((x) => x.partitions.length > 0),
      );
      crash(streams.workerThreads()[1]?.threadId ?? -1, 'crash');
      await until('the instance to stop', () => streams.state === 'ERROR' && streams.workerThreads().length === 0);
      assert.match(String((streams.error as Error).message), /thread 1 \(0-t1\) died: simulated crash/);
      await assert.rejects(streams.waitUntilProcessed(1000), /stopped with an error/);
    } finally {
      await streams.close();
    }
    assert.equal(streams.state, 'ERROR');
  });
});

test('a JSON job spec runs with numThreads: 2 (fromJobSpec)', async () => {
  await withLog(async (log, client, dir) => {
    const admin = client.admin();
    await admin.createTopic('clicks', { partitions: PARTITIONS });
    await admin.createTopic('buys', { partitions: PARTITIONS });
    await admin.close();
    const p = client.producer();
    const records = Array.from({ length: 400 }, (_, i) => ({
      topic: 'clicks',
      key: `u${i % 17}`,
      value: JSON.stringify({ user: `u${i % 17}`, type: i % 3 === 0 ? 'buy' : 'view', n: i }),
      partition: i % PARTITIONS,
    }));
    await p.send(records);
    await p.close();
    const spec = {
      name: 'buys',
      source: { topics: ['clicks'] },
      filter: { field: 'type', op: 'eq', value: 'buy' },
      project: { user: 'user', n: 'n' },
      key: 'user',
      output: { topic: 'buys' },
    };
    const streams = KafkaStreams.fromJobSpec(spec, { ...config(log, client, dir, 2), applicationId: 'spec-job' });
    try {
      await streams.start();
      await streams.waitUntilProcessed(20_000);
    } finally {
      await streams.close();
    }
    const got = (await read(client, 'buys')).map((r) => JSON.parse(String(r.value)) as { n: number }).map((v) => v.n);
    const want = records.map((_, i) => i).filter((i) => i % 3 === 0);
    assert.deepEqual(
      got.sort((a, b) => a - b),
      want,
    );
  });
});
