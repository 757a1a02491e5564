import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { isTributaryError } from '../../src/core/index.ts';
import { openLog } from '../../src/log/index.ts';
import { batch, freshLog, readAll, tempDir } from './helpers.ts';

const isKafka = (code: number) => (err: unknown) => isTributaryError(err) && err.kafkaErrorCode === code;

test('topics: create, list, describe, add partitions, delete', async () => {
  const log = await freshLog();
  const d = await log.createTopic('orders', { partitions: 3 });
  assert.equal(d.partitions.length, 3);
  assert.deepEqual(d.partitions[0], {
    partition: 0,
    logStartOffset: 0n,
    highWatermark: 0n,
    lastStableOffset: 0n,
    sizeBytes: 0,
    segments: 1,
  });
  await assert.rejects(log.createTopic('orders', { partitions: 1 }), isKafka(36));
  await assert.rejects(log.createTopic('zero', { partitions: 0 }), isKafka(37));
  await log.createPartitions('orders', 5);
  await assert.rejects(log.createPartitions('orders', 5), isKafka(37));
  await log.append('orders', 4, batch(2));
  assert.equal(log.describeTopic('orders')!.partitions[4]!.highWatermark, 2n);
  await log.createTopic('__consumer_offsets', { partitions: 1 });
  assert.deepEqual(
    log.listTopics().map((t) => t.name),
    ['orders'],
  );
  assert.ok(log.listTopics({ includeInternal: true }).some((t) => t.name === '__consumer_offsets' && t.internal));
  await log.deleteTopic('orders');
  assert.equal(log.describeTopic('orders'), undefined);
  assert.ok(!fs.existsSync(path.join(log.dataDir, 'orders-0')));
  await assert.rejects(log.deleteTopic('orders'), isKafka(3));
  await assert.rejects(log.read('orders', 0, 0n, { maxBytes: 1, isolation: 'read_uncommitted' }), isKafka(3));
  // a new topic of the same name starts empty, with a new id
  const again = await log.createTopic('orders', { partitions: 1 });
  assert.notEqual(again.topicId, d.topicId);
  assert.deepEqual(await readAll(log, 'orders'), []);
});

test('topic names follow Kafka rules', async () => {
  const log = await freshLog();
  for (const bad of ['', '.', '..', 'a/b', 'with space', 'ünïcode', 'x'.repeat(250)]) {
    await assert.rejects(log.createTopic(bad, { partitions: 1 }), isKafka(17), JSON.stringify(bad));
  }
  await log.createTopic(`ok.name_with-all${'z'.repeat(230)}`, { partitions: 1 });
});

test('appends to a missing topic create it when autoCreateTopics is on, and fail when it is off', async () => {
  const auto = await freshLog({ defaultPartitions: 3 });
  await auto.append('fresh', 2, batch(1));
  assert.equal(auto.describeTopic('fresh')!.partitions.length, 3);
  const strict = await freshLog({ autoCreateTopics: false });
  await assert.rejects(strict.append('fresh', 0, batch(1)), isKafka(3));
  await assert.rejects(strict.append('bad name', 0, batch(1)), isKafka(3));
  await assert.rejects(auto.append('bad name', 0, batch(1)), isKafka(17));
});

test('waitForData: resolves on append, at once when data is there, on timeout, on abort and on deletion', async () => {
  const log = await freshLog();
  await log.createTopic('w', { partitions: 2 });
  const at = (offset: bigint, partition = 0) => [{ topic: 'w', partition, offset }];

  const started = Date.now();
  const waiting = log.waitForData([...at(0n, 0), ...at(0n, 1)], 5000);
  setTimeout(() => log.append('w', 1, batch(1)), 30);
  await waiting;
  assert.ok(Date.now() - started < 1000);

  const t0 = Date.now();
  await log.waitForData(at(0n, 1), 5000); // partition 1 has data past 0
  assert.ok(Date.now() - t0 < 50);

  const t1 = Date.now();
  await log.waitForData(at(0n), 80);
  assert.ok(Date.now() - t1 >= 70);

  const controller = new AbortController();
  const aborted = log.waitForData(at(0n), 5000, controller.signal);
  controller.abort();
  await aborted;

  const deleted = log.waitForData(at(0n), 5000);
  await log.deleteTopic('w');
  await deleted;
  await log.waitForData([{ topic: 'missing', partition: 0, offset: 0n }], 10); // unknown partitions just time out
});

test('a closed log refuses calls; reopening restores topics and data', async () => {
  const dir = tempDir();
  let log = await openLog({ dataDir: dir, cleanerIntervalMs: 0 });
  await log.createTopic('keep', { partitions: 2 });
  await log.append('keep', 1, batch(3, 'k'));
  await log.close();
  await assert.rejects(log.append('keep', 0, batch(1)), (err) => isTributaryError(err, 'UNAVAILABLE'));
  await log.close(); // twice is fine
  log = await openLog({ dataDir: dir, cleanerIntervalMs: 0 });
  assert.deepEqual(
    (await readAll(log, 'keep', 1)).map((r) => r.value),
    ['k0', 'k1', 'k2'],
  );
  await log.close();
});

test('the cleaner runs by itself every cleanerIntervalMs', async () => {
  const log = await freshLog({ cleanerIntervalMs: 100 });
  await log.createTopic('auto', { partitions: 1, config: { 'retention.ms': 1000 } });
  await log.append('auto', 0, batch(2, 'x', { timestamp: Date.now() - 10_000 }));
  const deadline = Date.now() + 3000;
  while (log.describeTopic('auto')!.partitions[0]!.logStartOffset === 0n && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.equal(log.describeTopic('auto')!.partitions[0]!.logStartOffset, 2n);
});
