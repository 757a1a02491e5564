import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { openLog } from '../../src/log/index.ts';
import { batch, freshLog, readAll, tempDir } from './helpers.ts';

const HOUR = 3_600_000;

test('retention.ms deletes whole segments whose newest record is older, and advances the log start offset', async () => {
  const log = await freshLog();
  const now = Date.now();
  await log.createTopic('timed', { partitions: 1, config: { 'retention.ms': HOUR, 'segment.bytes': 500 } });
  for (let i = 0; i < 20; i++) await log.append('timed', 0, batch(2, `old${i}-`, { timestamp: now - 3 * HOUR }));
  const oldEnd = log.describeTopic('timed')!.partitions[0]!.highWatermark;
  for (let i = 0; i < 20; i++) await log.append('timed', 0, batch(2, `new${i}-`, { timestamp: now }));
  const before = log.describeTopic('timed')!.partitions[0]!;
  const report = await log.runCleaner({ now });
  const after = log.describeTopic('timed')!.partitions[0]!;
  assert.ok(report.segmentsDeleted > 0);
  assert.equal(after.segments, before.segments - report.segmentsDeleted);
  assert.ok(after.logStartOffset > 0n && after.logStartOffset <= oldEnd, `${after.logStartOffset} vs ${oldEnd}`);
  const rows = await readAll(log, 'timed');
  assert.ok(rows.every((r) => r.value!.startsWith('new') || r.offset >= after.logStartOffset));
  assert.equal(rows.filter((r) => r.value!.startsWith('new')).length, 40);
});

test('when everything has expired the active segment is rolled and deleted too; offsets continue', async () => {
  const log = await freshLog();
  const now = Date.now();
  await log.createTopic('gone', { partitions: 1, config: { 'retention.ms': 1000 } });
  for (let i = 0; i < 5; i++) await log.append('gone', 0, batch(2, 'x', { timestamp: now - 5000 }));
  await log.runCleaner({ now });
  const info = log.describeTopic('gone')!.partitions[0]!;
  assert.equal(info.logStartOffset, 10n);
  assert.equal(info.highWatermark, 10n);
  assert.equal(info.sizeBytes, 0);
  assert.deepEqual(await readAll(log, 'gone'), []);
  assert.equal((await log.append('gone', 0, batch(1))).baseOffset, 10n);
});

test('retention.bytes deletes the oldest segments while the rest still holds at least the limit (as Kafka)', async () => {
  const log = await freshLog();
  await log.createTopic('sized', { partitions: 1, config: { 'retention.bytes': 2000, 'segment.bytes': 500 } });
  for (let i = 0; i < 60; i++) await log.append('sized', 0, batch(2, `s${i}-`));
  const before = log.describeTopic('sized')!.partitions[0]!;
  assert.ok(before.sizeBytes > 4000);
  await log.runCleaner();
  const after = log.describeTopic('sized')!.partitions[0]!;
  assert.ok(after.sizeBytes >= 2000, `${after.sizeBytes} bytes: never below the limit`);
  assert.ok(after.sizeBytes < 2000 + 500, `${after.sizeBytes} bytes: within one segment of the limit`);
  const rows = await readAll(log, 'sized');
  assert.equal(rows.at(-1)!.offset, 119n);
  assert.equal(rows[0]!.offset, after.logStartOffset);
});

test('retention does nothing under cleanup.policy=compact alone, or with -1 limits', async () => {
  const log = await freshLog();
  const old = Date.now() - 10 * HOUR;
  await log.createTopic('compacted', {
    partitions: 1,
    config: { 'cleanup.policy': 'compact', 'retention.ms': 1, 'segment.bytes': 300 },
  });
  await log.createTopic('forever', {
    partitions: 1,
    config: { 'retention.ms': -1, 'retention.bytes': -1, 'segment.bytes': 300 },
  });
  for (let i = 0; i < 10; i++) {
    await log.append('compacted', 0, batch(1, `c${i}`, { timestamp: old, key: () => `k${i}` }));
    await log.append('forever', 0, batch(1, `f${i}`, { timestamp: old }));
  }
  const report = await log.runCleaner();
  assert.equal(report.segmentsDeleted, 0);
  assert.equal((await readAll(log, 'forever')).length, 10);
  assert.equal((await readAll(log, 'compacted')).length, 10);
});

test('topic configs are validated, persisted with a stable topicId, and altered', async () => {
  const dir = tempDir();
  let log = await openLog({ dataDir: dir, cleanerIntervalMs: 0, defaults: { 'retention.ms': 5000 } });
  const created = await log.createTopic('cfg', {
    partitions: 2,
    config: { 'cleanup.policy': 'compact', 'segment.bytes': 1234, 'min.cleanable.dirty.ratio': 0.1 },
  });
  assert.match(created.topicId, /^[0-9a-f-]{36}$/);
  assert.equal(created.config['retention.ms'], 5000); // the log's default
  assert.equal(created.config['segment.bytes'], 1234);
  assert.equal(created.config['flush.ms'], 1000);
  assert.deepEqual(created.overrides, {
    'cleanup.policy': 'compact',
    'segment.bytes': 1234,
    'min.cleanable.dirty.ratio': 0.1,
  });
  await log.alterTopicConfig('cfg', { 'retention.bytes': 99_999, 'segment.bytes': undefined });
  await log.close();

  log = await openLog({ dataDir: dir, cleanerIntervalMs: 0 });
  const d = log.describeTopic('cfg')!;
  assert.equal(d.topicId, created.topicId);
  assert.equal(d.partitions.length, 2);
  assert.equal(d.config['retention.bytes'], 99_999);
  assert.equal(d.config['segment.bytes'], 1_073_741_824);
  assert.equal(d.config['retention.ms'], 604_800_000); // defaults are the log's, not stored with the topic
  assert.equal(d.config['cleanup.policy'], 'compact');
  const stored = JSON.parse(fs.readFileSync(path.join(dir, '__topics', 'cfg.json'), 'utf8'));
  assert.equal(stored.topicId, created.topicId);

  const isConfigError = (err: unknown) => (err as { kafkaErrorCode?: number }).kafkaErrorCode === 40;
  await assert.rejects(log.alterTopicConfig('cfg', { 'retention.ms': -5 }), isConfigError);
  await assert.rejects(log.alterTopicConfig('cfg', { 'cleanup.policy': 'forever' as never }), isConfigError);
  await assert.rejects(log.alterTopicConfig('cfg', { 'no.such.key': 1 } as never), isConfigError);
  await assert.rejects(
    log.createTopic('bad', { partitions: 1, config: { 'min.cleanable.dirty.ratio': 2 } }),
    isConfigError,
  );
  // Kafka's string forms are accepted: numbers, Long.MAX_VALUE, either order of the policy list
  await log.alterTopicConfig('cfg', {
    'flush.messages': '9223372036854775807',
    'cleanup.policy': 'delete,compact',
  } as never);
  assert.equal(log.describeTopic('cfg')!.config['flush.messages'], Number.MAX_SAFE_INTEGER);
  assert.equal(log.describeTopic('cfg')!.config['cleanup.policy'], 'compact,delete');
  await log.close();
});
