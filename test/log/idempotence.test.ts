import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { isTributaryError } from '../../src/core/index.ts';
import { encodeRecordBatch, type Log, openLog } from '../../src/log/index.ts';
import { freshLog, readAll, tempDir } from './helpers.ts';

const isKafka = (code: number) => (err: unknown) => isTributaryError(err) && err.kafkaErrorCode === code;

function idempotent(
  producer: { producerId: bigint; producerEpoch: number },
  baseSequence: number,
  count = 2,
  tag = 'v',
) {
  return encodeRecordBatch(
    Array.from({ length: count }, (_, i) => ({ value: `${tag}${baseSequence + i}` })),
    { ...producer, baseSequence },
  );
}

test('a retried batch is acknowledged with its original offsets and stored once', async () => {
  const log = await freshLog();
  await log.createTopic('t', { partitions: 1 });
  const producer = await log.initProducerId(null, 60_000);
  const first = await log.append('t', 0, idempotent(producer, 0));
  const second = await log.append('t', 0, idempotent(producer, 2));
  assert.deepEqual([first.baseOffset, first.duplicate, second.baseOffset], [0n, false, 2n]);
  const retry = await log.append('t', 0, idempotent(producer, 0));
  assert.equal(retry.duplicate, true);
  assert.equal(retry.baseOffset, 0n);
  assert.equal((await log.append('t', 0, idempotent(producer, 2))).baseOffset, 2n);
  assert.equal((await readAll(log, 't')).length, 4);
});

test('only the last five batches are remembered; older retries and gaps are out of order', async () => {
  const log = await freshLog();
  await log.createTopic('t', { partitions: 1 });
  const producer = await log.initProducerId(null, 60_000);
  for (let i = 0; i < 7; i++) await log.append('t', 0, idempotent(producer, i * 2));
  for (let i = 2; i < 7; i++) assert.equal((await log.append('t', 0, idempotent(producer, i * 2))).duplicate, true);
  await assert.rejects(log.append('t', 0, idempotent(producer, 2)), isKafka(45));
  await assert.rejects(log.append('t', 0, idempotent(producer, 16)), isKafka(45)); // 14 expected
  assert.equal((await log.append('t', 0, idempotent(producer, 14, 3))).baseOffset, 14n);
  assert.equal((await readAll(log, 't')).length, 14 + 3);
});

test('epochs: an older epoch is fenced, a newer one must start at sequence 0', async () => {
  const log = await freshLog();
  await log.createTopic('t', { partitions: 1 });
  const { producerId } = await log.initProducerId(null, 60_000);
  await log.append('t', 0, idempotent({ producerId, producerEpoch: 1 }, 0));
  await assert.rejects(log.append('t', 0, idempotent({ producerId, producerEpoch: 0 }, 2)), isKafka(47));
  await assert.rejects(log.append('t', 0, idempotent({ producerId, producerEpoch: 2 }, 5)), isKafka(45));
  await log.append('t', 0, idempotent({ producerId, producerEpoch: 2 }, 0));
  await assert.rejects(log.append('t', 0, idempotent({ producerId, producerEpoch: 1 }, 2)), isKafka(47));
});

test('producers are independent per producer id and per partition', async () => {
  const log = await freshLog();
  await log.createTopic('t', { partitions: 2 });
  const a = await log.initProducerId(null, 60_000);
  const b = await log.initProducerId(null, 60_000);
  assert.notEqual(a.producerId, b.producerId);
  await log.append('t', 0, idempotent(a, 0));
  await log.append('t', 0, idempotent(b, 0));
  await log.append('t', 1, idempotent(a, 0));
  await log.append('t', 0, idempotent(a, 2));
  assert.equal((await log.append('t', 0, idempotent(b, 0))).duplicate, true);
  assert.equal((await log.append('t', 1, idempotent(a, 0))).baseOffset, 0n);
});

test('sequence numbers wrap after 2^31 - 1', async () => {
  const log = await freshLog();
  await log.createTopic('t', { partitions: 1 });
  const producer = await log.initProducerId(null, 60_000);
  await log.append('t', 0, idempotent(producer, 2 ** 31 - 2, 2));
  assert.equal((await log.append('t', 0, idempotent(producer, 0, 1))).baseOffset, 2n);
});

async function reopen(log: Log, dir: string, crash: boolean): Promise<Log> {
  await log.close();
  if (crash) {
    fs.rmSync(path.join(dir, '.clean-shutdown'));
    for (const f of fs.readdirSync(path.join(dir, 't-0'))) {
      if (f.endsWith('.snapshot') || f === 'recovery-point') fs.rmSync(path.join(dir, 't-0', f));
    }
  }
  return openLog({ dataDir: dir, cleanerIntervalMs: 0 });
}

for (const crash of [false, true]) {
  test(`producer state survives a ${crash ? 'restart that must replay the log' : 'clean restart (snapshot)'}`, async () => {
    const dir = tempDir();
    let log = await openLog({ dataDir: dir, cleanerIntervalMs: 0 });
    await log.createTopic('t', { partitions: 1, config: { 'segment.bytes': 300 } });
    const producer = await log.initProducerId(null, 60_000);
    for (let i = 0; i < 12; i++) await log.append('t', 0, idempotent(producer, i * 2));
    log = await reopen(log, dir, crash);
    const retry = await log.append('t', 0, idempotent(producer, 22));
    assert.deepEqual([retry.duplicate, retry.baseOffset], [true, 22n]);
    await assert.rejects(log.append('t', 0, idempotent(producer, 30)), isKafka(45));
    assert.equal((await log.append('t', 0, idempotent(producer, 24))).baseOffset, 24n);
    // producer ids are never handed out twice
    const next = await log.initProducerId(null, 60_000);
    assert.ok(next.producerId > producer.producerId);
    await log.close();
  });
}
