import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { embeddedClient, type LogClient, openLog } from '../../src/log/index.ts';
import { KafkaStreams, Serdes, StreamsBuilder, type StreamsState } from '../../src/streams/index.ts';

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
