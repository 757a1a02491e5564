import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { embeddedClient, type LogClient, openLog } from '../../src/log/index.ts';
import {
  EmitStrategy,
  KafkaStreams,
  type KGroupedStream,
  Serdes,
  SessionWindows,
  StreamsBuilder,
  type StreamsState,
  Suppressed,
  TimeWindows,
} from '../../src/streams/index.ts';

const S = Serdes.String();
const L = Serdes.Long();

async function withLog(fn: (client: LogClient, dir: string) => Promise<void>): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'streams-runtime-'));
  const log = await openLog({ dataDir: path.join(dir, 'log'), cleanerIntervalMs: 0 });
  const client = embeddedClient(log);
  try {
    await fn(client, dir);
  } finally {
    await client.close();
    await log.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function wordCount() {
  const b = new StreamsBuilder();
  b.stream<string, string>('lines', { keySerde: S, valueSerde: S })
    .flatMapValues((l) => l.split(' '))
    .groupBy((_k, w) => w)
    .count({ storeName: 'counts' })
    .toStream()
    .to('counts', { keySerde: S, valueSerde: L });
  return b.build();
}

async function readAll(client: LogClient, topic: string, partitions: number) {
  const c = client.consumer({ isolation: 'read_committed', autoOffsetReset: 'earliest' });
  c.assign(Array.from({ length: partitions }, (_, p) => ({ topic, partition: p })));
  const out: { key: string; value: number; partition: number }[] = [];
  for (let idle = 0; idle < 3; ) {
    const recs = await c.poll(30);
    idle = recs.length === 0 ? idle + 1 : 0;
    for (const r of recs)
      out.push({
        key: S.deserialize(topic, r.key) as string,
        value: L.deserialize(topic, r.value) as number,
        partition: r.partition,
      });
  }
  await c.close();
  return out;
}

test('KafkaStreams runs word count exactly-once on the embedded log, with queries and restart', async () => {
  await withLog(async (client, dir) => {
    const admin = client.admin();
    await admin.createTopic('lines', { partitions: 2 });
    await admin.createTopic('counts', { partitions: 2 });
    const p = client.producer();
    await p.send([
      { topic: 'lines', key: 'a', value: 'x y x', partition: 0 },
      { topic: 'lines', key: 'b', value: 'y z', partition: 1 },
    ]);
    const states: StreamsState[] = [];
    const streams = new KafkaStreams(wordCount(), {
      applicationId: 'wc',
      client,
      stateDir: path.join(dir, 'state'),
      commitIntervalMs: 10,
    });
    streams.onStateChange((s) => states.push(s));
    await streams.start();
    await streams.waitUntilProcessed(20_000);
    const m = streams.metrics();
    assert.equal(m.recordsIn, 7, '2 lines + 5 repartitioned words');
    assert.ok(m.commits >= 1 && m.recordsInPerSec >= 0 && m.endToEndLatencyMs.max >= m.endToEndLatencyMs.mean);
    assert.deepEqual(m.partitions, [0, 1]);
    const q = streams.keyValueStore<string, number>('counts');
    assert.equal(q.get('x'), 2);
    assert.deepEqual(q.all(), [
      ['x', 2],
      ['y', 2],
      ['z', 1],
    ]);
    await streams.close();
    assert.deepEqual(states, ['REBALANCING', 'RUNNING', 'PENDING_SHUTDOWN', 'NOT_RUNNING']);

    // More input; a new instance resumes from the committed offsets with the LMDB state.
    await p.send([{ topic: 'lines', key: 'a', value: 'x', partition: 0 }]);
    const again = new KafkaStreams(wordCount(), {
      applicationId: 'wc',
      client,
      stateDir: path.join(dir, 'state'),
      commitIntervalMs: 10,
    });
    await again.start();
    await again.waitUntilProcessed(20_000);
    assert.equal(again.keyValueStore<string, number>('counts').get('x'), 3);
    await again.close();

    // Without local state the stores are rebuilt from the changelog.
    const fresh = new KafkaStreams(wordCount(), { applicationId: 'wc', client, commitIntervalMs: 10 });
    await fresh.start();
    assert.ok(fresh.metrics().restoredRecords > 0);
    assert.equal(fresh.keyValueStore<string, number>('counts').get('x'), 3);
    await fresh.close();

    const out = await readAll(client, 'counts', 2);
    const last = new Map(out.map((r) => [r.key, r.value]));
    assert.deepEqual(Object.fromEntries(last), { x: 3, y: 2, z: 1 });
    assert.equal(out.length, 6, 'x1 y1 x2 y2 z1 then x3: each update once');
    await p.close();
    await admin.close();
  });
});

test('runtime: bad records go to a dead-letter topic; global tables join; at-least-once mode', async () => {
  await withLog(async (client) => {
    const admin = client.admin();
    for (const t of ['orders', 'users', 'enriched', 'dlq']) await admin.createTopic(t, { partitions: 1 });
    const p = client.producer();
    await p.send([
      { topic: 'users', key: 'u1', value: '"Ann"' },
      { topic: 'orders', key: 'o1', value: '{"user":"u1","n":1}' },
      { topic: 'orders', key: 'o2', value: '{not json' },
      { topic: 'orders', key: 'o3', value: '{"user":"u2","n":3}' },
    ]);
    const b = new StreamsBuilder();
    const users = b.globalTable<string, string>('users', { keySerde: S, valueSerde: Serdes.JSON() });
    b.stream<string, { user: string; n: number }>('orders', { keySerde: S, valueSerde: Serdes.JSON() })
      .leftJoin(
        users,
        (_k, v) => v.user,
        (o, name) => `${name ?? '?'}:${o.n}`,
      )
      .to('enriched', { keySerde: S, valueSerde: S });
    const streams = new KafkaStreams(b.build(), {
      applicationId: 'dlq-app',
      client,
      processingGuarantee: 'at_least_once',
      commitIntervalMs: 10,
      deserializationErrors: { deadLetterTopic: 'dlq' },
    });
    await streams.start();
    await streams.waitUntilProcessed(20_000);
    assert.equal(streams.metrics().skippedRecords, 1);
    await streams.close();
    const read = async (topic: string) => {
      const c = client.consumer({ autoOffsetReset: 'earliest' });
      c.assign([{ topic, partition: 0 }]);
      const out = [];
      for (let idle = 0; idle < 3; ) {
        const recs = await c.poll(30);
        idle = recs.length === 0 ? idle + 1 : 0;
        out.push(...recs);
      }
      await c.close();
      return out;
    };
    assert.deepEqual(
      (await read('enriched')).map((r) => `${r.key}=${r.value}`),
      ['o1=Ann:1', 'o3=?:3'],
    );
    const dlq = await read('dlq');
    assert.equal(dlq.length, 1);
    assert.equal(dlq[0]?.value?.toString(), '{not json');
    const h = Object.fromEntries((dlq[0]?.headers ?? []).map(([k, v]) => [k, v.toString()]));
    assert.match(h['tributary.error'] ?? '', /JSON serde/);
    assert.equal(h['tributary.source'], 'orders:0:1');
    await p.close();
    await admin.close();
  });
});

test('runtime: an exception in a processor goes to the handler; SHUTDOWN_CLIENT ends in ERROR, REPLACE_THREAD resumes from the last commit', async () => {
  await withLog(async (client) => {
    const admin = client.admin();
    for (const t of ['in', 'out']) await admin.createTopic(t, { partitions: 1 });
    const p = client.producer();
    await p.send([
      { topic: 'in', key: 'k', value: 'ok1' },
      { topic: 'in', key: 'k', value: 'boom' },
      { topic: 'in', key: 'k', value: 'ok2' },
    ]);
    let failures = 0;
    const build = (failTimes: number) => {
      const b = new StreamsBuilder();
      b.stream<string, string>('in', { keySerde: S, valueSerde: S })
        .peek((_k, v) => {
          if (v === 'boom' && failures < failTimes) {
            failures++;
            throw new Error('processor failed');
          }
        })
        .to('out', { keySerde: S, valueSerde: S });
      return b.build();
    };
    const dead = new KafkaStreams(build(1), { applicationId: 'fail-app', client, commitIntervalMs: 10 });
    const states: StreamsState[] = [];
    dead.onStateChange((s) => states.push(s));
    const seen: unknown[] = [];
    dead.setUncaughtExceptionHandler((err) => {
      seen.push(err);
      return 'SHUTDOWN_CLIENT';
    });
    await dead.start();
    await assert.rejects(dead.waitUntilProcessed(20_000), /stopped with an error/);
    assert.equal(dead.state, 'ERROR');
    assert.equal(seen.length, 1);
    assert.deepEqual(states, ['REBALANCING', 'RUNNING', 'ERROR']);
    await dead.close();

    failures = 0;
    const alive = new KafkaStreams(build(2), { applicationId: 'fail-app2', client, commitIntervalMs: 10 });
    let replaced = 0;
    alive.setUncaughtExceptionHandler(() => {
      replaced++;
      return 'REPLACE_THREAD';
    });
    await alive.start();
    await alive.waitUntilProcessed(20_000);
    assert.equal(replaced, 2);
    await alive.close();
    const c = client.consumer({ isolation: 'read_committed', autoOffsetReset: 'earliest' });
    c.assign([{ topic: 'out', partition: 0 }]);
    const got: string[] = [];
    for (let idle = 0; idle < 3; ) {
      const recs = await c.poll(30);
      idle = recs.length === 0 ? idle + 1 : 0;
      got.push(...recs.map((r) => String(r.value)));
    }
    await c.close();
    // fail-app wrote nothing committed; fail-app2 wrote each record exactly once despite two replacements.
    assert.deepEqual(got, ['ok1', 'boom', 'ok2']);
    await p.close();
    await admin.close();
  });
});

const FIRST_CLICKS = [
  ['k', 10],
  ['k', 20],
  ['j', 120],
  ['k', 150],
] as const;

/** The output of one emit-final instance per step (local state kept, then a new instance without it). */
const EMIT_FINAL_CASES = [
  {
    name: 'time windows',
    windowed: (g: KGroupedStream<string, string>) =>
      g.windowedBy(TimeWindows.ofSizeWithNoGrace(100)).emitStrategy(EmitStrategy.onWindowClose()),
    steps: [
      // Stream time 150 closes [0, 100) only.
      {
        input: FIRST_CLICKS,
        want: ['0=2'],
      },
      // On the local state: [100, 200) counts records from both runs; [0, 100) is not emitted again.
      {
        input: [
          ['k', 160],
          ['k', 250],
        ],
        want: ['100=1', '100=2'],
      },
      // Restored from the changelog, the emitted time included.
      { input: [['k', 420]], want: ['200=1'] },
    ],
  },
  {
    name: 'sessions',
    windowed: (g: KGroupedStream<string, string>) =>
      g.windowedBy(SessionWindows.ofInactivityGapWithNoGrace(30)).emitStrategy(EmitStrategy.onWindowClose()),
    steps: [
      {
        input: FIRST_CLICKS,
        want: ['10=2', '120=1'],
      },
      // k@160 extends the session k@150 opened before the restart.
      {
        input: [
          ['k', 160],
          ['k', 250],
        ],
        want: ['150=2'],
      },
      { input: [['k', 420]], want: ['250=1'] },
    ],
  },
] as const;

for (const { name, windowed, steps } of EMIT_FINAL_CASES)
  test(`runtime: emitStrategy(onWindowClose) on ${name} emits each window once across restarts (local state, then the changelog)`, async () => {
    await withLog(async (client, dir) => {
      const admin = client.admin();
      for (const t of ['clicks', 'final']) await admin.createTopic(t, { partitions: 1 });
      const topology = () => {
        const b = new StreamsBuilder();
        windowed(b.stream<string, string>('clicks', { keySerde: S, valueSerde: S }).groupByKey())
          .count({ storeName: 'clicks-per-window' })
          .toStream()
          .to('final', { keySerde: S, valueSerde: L });
        return b.build();
      };
      const p = client.producer();
      const c = client.consumer({ isolation: 'read_committed', autoOffsetReset: 'earliest' });
      c.assign([{ topic: 'final', partition: 0 }]);
      const stateDir = path.join(dir, 'state');
      for (const [i, step] of steps.entries()) {
        const streams = new KafkaStreams(topology(), {
          applicationId: 'final-app',
          client,
          commitIntervalMs: 10,
          ...(i < 2 ? { stateDir } : {}),
        });
        await streams.start();
        await p.send(step.input.map(([key, timestamp]) => ({ topic: 'clicks', key, value: 'v', timestamp })));
        await streams.waitUntilProcessed(20_000);
        const got: string[] = [];
        const deadline = Date.now() + 20_000;
        while (got.length < step.want.length && Date.now() < deadline)
          for (const r of await c.poll(50))
            got.push(
              `${Serdes.Windowed(S).deserialize('final', r.key)?.window.start}=${L.deserialize('final', r.value)}`,
            );
        // Nothing more arrives: a window emitted twice would show here.
        for (const r of await c.poll(200)) got.push(`extra ${r.offset}`);
        assert.deepEqual(got.toSorted(), [...step.want], `step ${i + 1}`);
        if (i === 2) assert.ok(streams.metrics().restoredRecords > 0, 'restored from the changelog');
        await streams.close();
      }
      await c.close();
      await p.close();
      await admin.close();
    });
  });

test('runtime: in watermark mode windows close on idleness without new records', async () => {
  await withLog(async (client) => {
    const admin = client.admin();
    for (const t of ['clicks', 'final']) await admin.createTopic(t, { partitions: 1 });
    const b = new StreamsBuilder();
    b.stream<string, string>('clicks', { keySerde: S, valueSerde: S })
      .groupByKey()
      .windowedBy(TimeWindows.ofSizeWithNoGrace(100))
      .count()
      .suppress(Suppressed.untilWindowCloses())
      .toStream()
      .to('final', { keySerde: S, valueSerde: L });
    const streams = new KafkaStreams(b.build(), {
      applicationId: 'idle-app',
      client,
      commitIntervalMs: 10,
      eventTime: { maxOutOfOrderness: 0, idleTimeout: 50 },
    });
    await streams.start();
    const p = client.producer();
    await p.send([
      { topic: 'clicks', key: 'k', value: 'a', timestamp: 10 },
      { topic: 'clicks', key: 'k', value: 'b', timestamp: 20 },
    ]);
    const c = client.consumer({ isolation: 'read_committed', autoOffsetReset: 'earliest' });
    c.assign([{ topic: 'final', partition: 0 }]);
    const got: string[] = [];
    const deadline = Date.now() + 20_000;
    while (got.length === 0 && Date.now() < deadline)
      for (const r of await c.poll(50))
        got.push(`${Serdes.Windowed(S).deserialize('final', r.key)?.window.start}=${L.deserialize('final', r.value)}`);
    assert.deepEqual(got, ['0=2'], 'no record after t=20 arrived, yet [0,100) closed');
    await c.close();
    await streams.close();
    await p.close();
    await admin.close();
  });
});

test('runtime: watermarks cross repartition topics as markers (the minimum over upstream tasks): a lagging partition is not late downstream', async () => {
  await withLog(async (client) => {
    const admin = client.admin();
    await admin.createTopic('views', { partitions: 2 });
    await admin.createTopic('per-page', { partitions: 1 });
    const b = new StreamsBuilder();
    b.stream<string, string>('views', { keySerde: S, valueSerde: S })
      .groupBy((_k, page) => page, { keySerde: S, valueSerde: S })
      .windowedBy(TimeWindows.ofSizeWithNoGrace(1_000))
      .count()
      .suppress(Suppressed.untilWindowCloses())
      .toStream()
      .to('per-page', { keySerde: S, valueSerde: L });
    let skew = 0;
    const streams = new KafkaStreams(b.build(), {
      applicationId: 'markers-app',
      client,
      commitIntervalMs: 20,
      eventTime: { maxOutOfOrderness: 100, idleTimeout: 60_000 },
      wallClock: () => Date.now() + skew,
    });
    await streams.start();
    const p = client.producer();
    // Partition 0 runs 20 s of event time ahead of partition 1: a watermark taken from the mixed records of the
    // repartition topic (max - 100 ms) would make nearly all of partition 1's views late there.
    const sent: { topic: string; key: string; value: string; timestamp: number; partition: number }[] = [];
    for (let i = 0; i < 200; i++) {
      sent.push({ topic: 'views', key: `u${i}`, value: `p${i % 3}`, timestamp: 20_000 + i * 50, partition: 0 });
      sent.push({ topic: 'views', key: `v${i}`, value: `p${i % 3}`, timestamp: i * 50, partition: 1 });
    }
    await p.send(sent);
    await streams.waitUntilProcessed(30_000);
    skew = 86_400_000; // end of input: every window closes
    const want = new Map<string, number>();
    for (const r of sent) {
      const k = `${r.value}@${r.timestamp - (r.timestamp % 1_000)}`;
      want.set(k, (want.get(k) ?? 0) + 1);
    }
    const got = new Map<string, number>();
    const c = client.consumer({ isolation: 'read_committed', autoOffsetReset: 'earliest' });
    c.assign([{ topic: 'per-page', partition: 0 }]);
    const deadline = Date.now() + 30_000;
    while (got.size < want.size && Date.now() < deadline)
      for (const r of await c.poll(50)) {
        const w = Serdes.Windowed(S).deserialize('per-page', r.key);
        got.set(`${w?.key}@${w?.window.start}`, L.deserialize('per-page', r.value) as number);
      }
    assert.deepEqual(new Map([...got].sort()), new Map([...want].sort()));
    assert.equal(streams.metrics().lateRecords, 0);
    assert.equal(streams.metrics().droppedRecords, 0);
    await c.close();
    await streams.close();
    await p.close();
    await admin.close();
  });
});

test('runtime: a task whose input stays empty reports itself idle across the repartition, so windows downstream close', async () => {
  await withLog(async (client) => {
    const admin = client.admin();
    await admin.createTopic('clicks2', { partitions: 2 });
    await admin.createTopic('per-user', { partitions: 1 });
    const b = new StreamsBuilder();
    b.stream<string, string>('clicks2', { keySerde: S, valueSerde: S })
      .groupBy((_k, user) => user, { keySerde: S, valueSerde: S })
      .windowedBy(TimeWindows.ofSizeWithNoGrace(100))
      .count()
      .suppress(Suppressed.untilWindowCloses())
      .toStream()
      .to('per-user', { keySerde: S, valueSerde: L });
    const streams = new KafkaStreams(b.build(), {
      applicationId: 'idle-upstream-app',
      client,
      commitIntervalMs: 20,
      eventTime: { maxOutOfOrderness: 0, idleTimeout: 100 },
    });
    await streams.start();
    const p = client.producer();
    // Only partition 0 gets records: the task of partition 1 has no time of its own.
    await p.send([
      { topic: 'clicks2', key: 'a', value: 'u1', timestamp: 10, partition: 0 },
      { topic: 'clicks2', key: 'b', value: 'u1', timestamp: 20, partition: 0 },
      { topic: 'clicks2', key: 'c', value: 'u2', timestamp: 30, partition: 0 },
    ]);
    const c = client.consumer({ isolation: 'read_committed', autoOffsetReset: 'earliest' });
    c.assign([{ topic: 'per-user', partition: 0 }]);
    const got: string[] = [];
    const deadline = Date.now() + 20_000;
    while (got.length < 2 && Date.now() < deadline)
      for (const r of await c.poll(50))
        got.push(`${Serdes.Windowed(S).deserialize('per-user', r.key)?.key}=${L.deserialize('per-user', r.value)}`);
    assert.deepEqual(got.sort(), ['u1=2', 'u2=1'], 'no further record arrived, yet [0,100) closed downstream');
    await c.close();
    await streams.close();
    await p.close();
    await admin.close();
  });
});
