import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { isTributaryError } from '../../src/core/index.ts';
import {
  BatchField,
  decodeRecordBatch,
  decodeRecordBatches,
  encodeRecordBatch,
  openLog,
  readBatchHeader,
  validateBatch,
} from '../../src/log/index.ts';
import { batch, freshLog, readAll, tempDir } from './helpers.ts';

const isKafka = (code: number) => (err: unknown) => isTributaryError(err) && err.kafkaErrorCode === code;

test('offsets are assigned by patching bytes 0-7; the rest is stored as produced', async () => {
  const log = await freshLog();
  await log.createTopic('t', { partitions: 1 });
  const first = batch(3, 'a', { producerId: -1n, timestamp: 1_000 });
  const second = batch(2, 'b', { timestamp: 2_000 });
  const originals = [Buffer.from(first), Buffer.from(second)];
  assert.equal((await log.append('t', 0, first)).baseOffset, 0n);
  assert.equal((await log.append('t', 0, second)).baseOffset, 3n);
  const stored = (await log.read('t', 0, 0n, { maxBytes: 1 << 20, isolation: 'read_uncommitted' })).records;
  const a = stored.subarray(0, originals[0]!.length);
  const b = stored.subarray(originals[0]!.length);
  assert.deepEqual(a.subarray(8), originals[0]!.subarray(8));
  assert.deepEqual(b.subarray(8), originals[1]!.subarray(8));
  assert.equal(b.readBigInt64BE(0), 3n);
  validateBatch(a);
  validateBatch(b);
  const header = readBatchHeader(b);
  assert.equal(header.maxTimestamp, 2_000n);
  assert.equal(header.lastOffsetDelta, 1);
});

test('several batches in one append get consecutive offsets', async () => {
  const log = await freshLog();
  await log.createTopic('t', { partitions: 1 });
  const r = await log.append('t', 0, Buffer.concat([batch(2, 'a'), batch(3, 'b')]));
  assert.equal(r.baseOffset, 0n);
  const rows = await readAll(log, 't');
  assert.deepEqual(
    rows.map((x) => [x.offset, x.value]),
    [
      [0n, 'a0'],
      [1n, 'a1'],
      [2n, 'b0'],
      [3n, 'b1'],
      [4n, 'b2'],
    ],
  );
});

test('bad batches are refused whole: CRC, truncation, control batches, size, record count', async () => {
  const log = await freshLog();
  await log.createTopic('t', { partitions: 1, config: { 'max.message.bytes': 2000 } });
  const good = batch(1);
  const badCrc = Buffer.from(good);
  badCrc[badCrc.length - 1]! ^= 0xff;
  await assert.rejects(log.append('t', 0, Buffer.concat([good, badCrc])), isKafka(2));
  await assert.rejects(log.append('t', 0, Buffer.concat([good, good.subarray(0, 40)])), isKafka(2));
  await assert.rejects(log.append('t', 0, Buffer.alloc(0)), isKafka(2));
  const control = Buffer.from(good);
  control.writeInt16BE(0x20, BatchField.attributes);
  control.writeUInt32BE(0, BatchField.crc);
  const { updateBatchCrc } = await import('../../src/log/record-batch.ts');
  updateBatchCrc(control);
  await assert.rejects(log.append('t', 0, control), isKafka(87));
  await assert.rejects(log.append('t', 0, encodeRecordBatch([{ value: 'x'.repeat(3000) }])), isKafka(10));
  const miscounted = batch(2);
  miscounted.writeInt32BE(5, BatchField.lastOffsetDelta);
  updateBatchCrc(miscounted);
  await assert.rejects(log.append('t', 0, miscounted), isKafka(87));
  assert.equal(log.describeTopic('t')!.partitions[0]!.highWatermark, 0n);
});

test('segments roll by segment.bytes, with 20-digit names and index files', async () => {
  const dir = tempDir();
  let log = await openLog({ dataDir: dir, cleanerIntervalMs: 0 });
  await log.createTopic('roll', { partitions: 1, config: { 'segment.bytes': 2000, 'index.interval.bytes': 100 } });
  for (let i = 0; i < 60; i++) await log.append('roll', 0, batch(4, `b${i}-`));
  const info = log.describeTopic('roll')!.partitions[0]!;
  assert.ok(info.segments >= 3, `${info.segments} segments`);
  const files = fs.readdirSync(path.join(dir, 'roll-0'));
  const logs = files.filter((f) => f.endsWith('.log'));
  assert.equal(logs.length, info.segments);
  for (const f of logs) assert.match(f, /^\d{20}\.log$/);
  for (const f of logs) assert.ok(fs.statSync(path.join(dir, 'roll-0', f)).size <= 2000);
  // every segment but the active one has its indexes written at roll
  for (const f of logs.slice(0, -1)) {
    const index = fs.statSync(path.join(dir, 'roll-0', f.replace('.log', '.index'))).size;
    assert.ok(index > 0 && index % 8 === 0, `${f} index ${index}`);
    assert.ok(fs.existsSync(path.join(dir, 'roll-0', f.replace('.log', '.timeindex'))));
  }
  const rows = await readAll(log, 'roll', 0, { maxBytes: 700 });
  assert.equal(rows.length, 240);
  assert.deepEqual(
    rows.map((r) => r.offset),
    Array.from({ length: 240 }, (_, i) => BigInt(i)),
  );
  await log.close();
  log = await openLog({ dataDir: dir, cleanerIntervalMs: 0 });
  assert.equal(log.recovery.clean, true);
  assert.equal((await readAll(log, 'roll', 0, { from: 133n })).length, 240 - 133);
  await log.close();
});

test('segments roll by segment.ms, measured in record time as Kafka', async () => {
  const log = await freshLog();
  await log.createTopic('aged', { partitions: 1, config: { 'segment.ms': 1000 } });
  await log.append('aged', 0, batch(1, 'a', { timestamp: 10_000 }));
  await log.append('aged', 0, batch(1, 'b', { timestamp: 10_900 }));
  assert.equal(log.describeTopic('aged')!.partitions[0]!.segments, 1);
  await log.append('aged', 0, batch(1, 'c', { timestamp: 11_001 }));
  assert.equal(log.describeTopic('aged')!.partitions[0]!.segments, 2);
});

test('reads return whole batches up to maxBytes, and at least one batch', async () => {
  const log = await freshLog();
  await log.createTopic('t', { partitions: 1 });
  const sizes: number[] = [];
  for (let i = 0; i < 10; i++) {
    const b = batch(5, `r${i}-`);
    sizes.push(b.length);
    await log.append('t', 0, b);
  }
  const read = (offset: bigint, maxBytes: number) =>
    log.read('t', 0, offset, { maxBytes, isolation: 'read_uncommitted' });
  let r = await read(0n, sizes[0]! + sizes[1]! + 10);
  assert.equal(r.records.length, sizes[0]! + sizes[1]!);
  r = await read(0n, 5);
  assert.equal(r.records.length, sizes[0]!);
  r = await read(12n, 1);
  const batches = decodeRecordBatches(r.records);
  assert.equal(batches.length, 1);
  assert.equal(batches[0]!.baseOffset, 10n); // the batch that contains offset 12
  r = await read(50n, 1000);
  assert.equal(r.records.length, 0);
  assert.equal(r.highWatermark, 50n);
  await assert.rejects(read(51n, 1000), isKafka(1));
  await assert.rejects(read(-1n, 1000), isKafka(1));
  await assert.rejects(log.read('t', 1, 0n, { maxBytes: 1, isolation: 'read_uncommitted' }), isKafka(3));
  await assert.rejects(log.read('missing', 0, 0n, { maxBytes: 1, isolation: 'read_uncommitted' }), isKafka(3));
});

test('the sparse offset index finds every offset', async () => {
  const log = await freshLog();
  await log.createTopic('idx', { partitions: 1, config: { 'index.interval.bytes': 64, 'segment.bytes': 5000 } });
  let next = 0;
  for (let i = 0; i < 120; i++) {
    const n = 1 + (i % 7);
    await log.append('idx', 0, batch(n, `i${i}-`));
    next += n;
  }
  for (let offset = 0; offset < next; offset += 3) {
    const r = await log.read('idx', 0, BigInt(offset), { maxBytes: 1, isolation: 'read_uncommitted' });
    const b = decodeRecordBatch(r.records);
    assert.ok(
      b.baseOffset <= BigInt(offset) && BigInt(offset) <= b.baseOffset + BigInt(b.lastOffsetDelta),
      `offset ${offset}`,
    );
  }
});

test('LogAppendTime topics stamp the batch and keep a valid CRC', async () => {
  const log = await freshLog();
  await log.createTopic('lat', { partitions: 1, config: { 'message.timestamp.type': 'LogAppendTime' } });
  const before = Date.now();
  const r = await log.append('lat', 0, batch(2, 'x', { timestamp: 5 }));
  assert.ok(r.logAppendTime >= BigInt(before));
  const stored = (await log.read('lat', 0, 0n, { maxBytes: 1 << 20, isolation: 'read_uncommitted' })).records;
  validateBatch(stored);
  const decoded = decodeRecordBatch(stored);
  assert.equal(decoded.timestampType, 'LogAppendTime');
  assert.equal(decoded.maxTimestamp, r.logAppendTime);
  assert.equal(decoded.records[1]!.timestamp, r.logAppendTime);
});

test('listOffset: earliest, latest, by timestamp, max timestamp', async () => {
  const log = await freshLog();
  await log.createTopic('ts', { partitions: 1, config: { 'segment.bytes': 300, 'index.interval.bytes': 10 } });
  for (let i = 0; i < 20; i++) {
    await log.append(
      'ts',
      0,
      encodeRecordBatch([
        { value: `a${i}`, timestamp: 1000 + i * 10 },
        { value: `b${i}`, timestamp: 1000 + i * 10 + 5 },
      ]),
    );
  }
  const at = (t: bigint) => log.listOffset('ts', 0, t, 'read_uncommitted');
  assert.deepEqual(await at(-2n), { offset: 0n, timestamp: -1n });
  assert.deepEqual(await at(-1n), { offset: 40n, timestamp: -1n });
  assert.deepEqual(await at(0n), { offset: 0n, timestamp: 1000n });
  assert.deepEqual(await at(1003n), { offset: 1n, timestamp: 1005n });
  assert.deepEqual(await at(1100n), { offset: 20n, timestamp: 1100n });
  assert.deepEqual(await at(1101n), { offset: 21n, timestamp: 1105n });
  assert.deepEqual(await at(1195n), { offset: 39n, timestamp: 1195n });
  assert.deepEqual(await at(5000n), { offset: -1n, timestamp: -1n });
  assert.deepEqual(await at(-3n), { offset: 39n, timestamp: 1195n });
});

test('deleteRecords moves the log start offset and drops whole segments below it', async () => {
  const log = await freshLog();
  await log.createTopic('del', { partitions: 1, config: { 'segment.bytes': 400 } });
  for (let i = 0; i < 30; i++) await log.append('del', 0, batch(2, `d${i}-`));
  const segments = log.describeTopic('del')!.partitions[0]!.segments;
  assert.equal(await log.deleteRecords('del', 0, 25n), 25n);
  const info = log.describeTopic('del')!.partitions[0]!;
  assert.equal(info.logStartOffset, 25n);
  assert.ok(info.segments < segments);
  await assert.rejects(log.read('del', 0, 24n, { maxBytes: 100, isolation: 'read_uncommitted' }), isKafka(1));
  const rows = await readAll(log, 'del');
  assert.equal(rows[0]!.offset, 25n);
  assert.equal(await log.deleteRecords('del', 0, 10n), 25n); // never moves back
  await assert.rejects(log.deleteRecords('del', 0, 61n), isKafka(1));
  assert.equal(await log.deleteRecords('del', 0, -1n), 60n);
});
