import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  BatchField,
  batchSizeAt,
  decodeRecordBatches,
  encodeRecordBatch,
  openLog,
  validateBatch,
} from '../../src/log/index.ts';
import { batch, readAll, tempDir } from './helpers.ts';

const root = path.resolve(fileURLToPath(import.meta.url), '../../..');
const nodeBin = path.join(root, 'node_modules/.bin/node');

/** Simulates a crash after the writes: the next open must recover instead of trusting indexes and snapshots. */
function forgetCleanShutdown(dataDir: string, partitionDir?: string): void {
  fs.rmSync(path.join(dataDir, '.clean-shutdown'), { force: true });
  if (partitionDir) {
    fs.rmSync(path.join(partitionDir, 'recovery-point'), { force: true });
    for (const f of fs.readdirSync(partitionDir)) if (f.endsWith('.snapshot')) fs.rmSync(path.join(partitionDir, f));
  }
}

function activeSegment(partitionDir: string): string {
  const logs = fs
    .readdirSync(partitionDir)
    .filter((f) => f.endsWith('.log'))
    .sort();
  return path.join(partitionDir, logs.at(-1)!);
}

test('recovery truncates a torn tail and keeps every whole batch', async () => {
  const dir = tempDir();
  let log = await openLog({ dataDir: dir, cleanerIntervalMs: 0 });
  await log.createTopic('t', { partitions: 1 });
  for (let i = 0; i < 10; i++) await log.append('t', 0, batch(3, `b${i}-`));
  await log.close();
  const file = activeSegment(path.join(dir, 't-0'));
  const whole = fs.statSync(file).size;
  const extra = batch(3, 'torn');
  extra.writeBigInt64BE(30n, 0);
  fs.appendFileSync(file, extra.subarray(0, extra.length - 7)); // a batch cut short by a crash
  forgetCleanShutdown(dir, path.join(dir, 't-0'));

  log = await openLog({ dataDir: dir, cleanerIntervalMs: 0 });
  assert.equal(log.recovery.clean, false);
  assert.equal(log.recovery.bytesTruncated, extra.length - 7);
  assert.equal(fs.statSync(file).size, whole);
  assert.equal(log.describeTopic('t')!.partitions[0]!.highWatermark, 30n);
  assert.equal((await readAll(log, 't')).length, 30);
  assert.equal((await log.append('t', 0, batch(1, 'after'))).baseOffset, 30n);
  await log.close();
});

test('recovery cuts at the first batch whose CRC fails, and drops later segments', async () => {
  const dir = tempDir();
  let log = await openLog({ dataDir: dir, cleanerIntervalMs: 0 });
  await log.createTopic('t', { partitions: 1, config: { 'segment.bytes': 600 } });
  for (let i = 0; i < 20; i++) await log.append('t', 0, batch(2, `c${i}-`));
  await log.close();
  const partitionDir = path.join(dir, 't-0');
  const logs = fs
    .readdirSync(partitionDir)
    .filter((f) => f.endsWith('.log'))
    .sort();
  assert.ok(logs.length >= 3);
  // flip a byte inside the second batch of the second segment
  const victim = path.join(partitionDir, logs[1]!);
  const bytes = fs.readFileSync(victim);
  const second = batchSizeAt(bytes, 0);
  bytes[second + 70]! ^= 0x55;
  fs.writeFileSync(victim, bytes);
  forgetCleanShutdown(dir, partitionDir);

  log = await openLog({ dataDir: dir, cleanerIntervalMs: 0 });
  const firstOffsetOfVictim = BigInt(Number(logs[1]!.slice(0, 20)));
  const rows = await readAll(log, 't');
  assert.equal(BigInt(rows.length), firstOffsetOfVictim + 2n);
  assert.equal(fs.statSync(victim).size, second);
  assert.deepEqual(
    fs.readdirSync(partitionDir).filter((f) => f.endsWith('.log')),
    logs.slice(0, 2),
  );
  await log.close();
});

test('missing or inconsistent index files are rebuilt from the log', async () => {
  const dir = tempDir();
  let log = await openLog({ dataDir: dir, cleanerIntervalMs: 0 });
  await log.createTopic('t', { partitions: 1, config: { 'segment.bytes': 500, 'index.interval.bytes': 50 } });
  for (let i = 0; i < 30; i++) await log.append('t', 0, batch(2, `i${i}-`));
  await log.close();
  const partitionDir = path.join(dir, 't-0');
  const indexes = fs
    .readdirSync(partitionDir)
    .filter((f) => f.endsWith('.index'))
    .sort();
  fs.rmSync(path.join(partitionDir, indexes[0]!));
  fs.writeFileSync(path.join(partitionDir, indexes[1]!), Buffer.alloc(16)); // zeros: not increasing
  log = await openLog({ dataDir: dir, cleanerIntervalMs: 0 });
  assert.equal(log.recovery.clean, true);
  const rows = await readAll(log, 't', 0, { maxBytes: 100 });
  assert.deepEqual(
    rows.map((r) => r.offset),
    Array.from({ length: 60 }, (_, i) => BigInt(i)),
  );
  assert.ok(fs.statSync(path.join(partitionDir, indexes[0]!)).size > 0);
  await log.close();
});

for (const [policy, flushMessages] of [
  ['flush.messages=1 (fsync before each acknowledgement)', '1'],
  ['the default policy (page cache, fsync every flush.ms)', 'default'],
] as const) {
  test(`kill -9 during acknowledged appends loses nothing acknowledged, with ${policy}`, () =>
    killDuringAppends(flushMessages));
}

async function killDuringAppends(flushMessages: string): Promise<void> {
  const dir = tempDir();
  const child = spawn(nodeBin, [path.join(root, 'test/log/fixtures/crash-writer.ts'), dir, flushMessages], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const acks: { id: number; offset: bigint; sequence: number }[] = [];
  let producer = { producerId: -1n, producerEpoch: -1 };
  const lines = createInterface({ input: child.stdout! });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  for await (const line of lines) {
    const [kind, a, b, c] = line.split(' ');
    if (kind === 'producer') producer = { producerId: BigInt(a!), producerEpoch: Number(b) };
    if (kind === 'ack') acks.push({ id: Number(a), offset: BigInt(b!), sequence: Number(c) });
    if (acks.length === 400) child.kill('SIGKILL');
  }
  assert.equal(await exited, 'SIGKILL');
  assert.ok(acks.length >= 400);

  const log = await openLog({ dataDir: dir, cleanerIntervalMs: 0 });
  assert.equal(log.recovery.clean, false);
  const stored = new Map<number, bigint>();
  let offset = 0n;
  let batches = 0;
  for (;;) {
    const r = await log.read('crash', 0, offset, { maxBytes: 1 << 20, isolation: 'read_uncommitted' });
    if (r.records.length === 0) break;
    for (let pos = 0; pos < r.records.length; ) {
      pos += validateBatch(r.records, pos); // every stored batch passes its CRC
      batches++;
    }
    for (const b of decodeRecordBatches(r.records)) {
      const id = Number(b.records[0]!.value!.toString().split('-')[1]);
      assert.ok(!stored.has(id), `batch ${id} stored twice`);
      stored.set(id, b.baseOffset);
      assert.equal(b.records.length, 20);
      offset = b.baseOffset + BigInt(b.lastOffsetDelta) + 1n;
    }
  }
  for (const ack of acks) assert.equal(stored.get(ack.id), ack.offset, `acknowledged batch ${ack.id}`);
  // in order: offsets grow with ids (ids were appended in order)
  const ordered = [...stored.entries()].sort((x, y) => x[0] - y[0]);
  for (let i = 1; i < ordered.length; i++) assert.ok(ordered[i]![1] > ordered[i - 1]![1]);
  assert.equal(batches, stored.size);

  // the producer state came back too: retrying the last acknowledged batch is recognised as a duplicate
  const last = acks.reduce((x, y) => (y.sequence > x.sequence ? y : x));
  const retry = encodeRecordBatch(
    Array.from({ length: 20 }, (_, i) => ({ key: `k${i}`, value: `batch-${last.id}-${i}` })),
    { ...producer, baseSequence: last.sequence },
  );
  const r = await log.append('crash', 0, retry);
  assert.equal(r.duplicate, true);
  assert.equal(r.baseOffset, last.offset);
  await log.close();
}

test('flush.messages=1 acknowledges an append only after its fdatasync completes', async (t) => {
  const dir = tempDir();
  const log = await openLog({ dataDir: dir, cleanerIntervalMs: 0 });
  await log.createTopic('durable', { partitions: 1, config: { 'flush.messages': 1 } });
  await log.createTopic('cached', { partitions: 1, config: { 'flush.ms': 60_000 } });
  const pending: (() => void)[] = [];
  const original = fs.fdatasync;
  t.mock.method(fs, 'fdatasync', (fd: number, callback: (err: NodeJS.ErrnoException | null) => void) => {
    pending.push(() => original(fd, callback));
  });
  let acked = false;
  const append = log.append('durable', 0, batch(1)).then(() => {
    acked = true;
  });
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.equal(pending.length, 1);
  assert.equal(acked, false);
  // appends arriving meanwhile share the next fdatasync
  const more = [log.append('durable', 0, batch(1)), log.append('durable', 0, batch(1))];
  pending.shift()!();
  await append;
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(pending.length, 1);
  pending.shift()!();
  await Promise.all(more);
  // without flush.messages, appends return without any fdatasync
  for (let i = 0; i < 5; i++) await log.append('cached', 0, batch(1));
  assert.equal(pending.length, 0);
  t.mock.restoreAll();
  await log.close();
});

test('flush.ms fsyncs dirty partitions on a timer', async (t) => {
  const dir = tempDir();
  const log = await openLog({ dataDir: dir, cleanerIntervalMs: 0 });
  await log.createTopic('timed', { partitions: 1, config: { 'flush.ms': 50 } });
  const spy = t.mock.method(fs, 'fdatasync');
  await log.append('timed', 0, batch(1));
  assert.equal(spy.mock.callCount(), 0);
  await new Promise((resolve) => setTimeout(resolve, 400));
  assert.ok(spy.mock.callCount() >= 1);
  t.mock.restoreAll();
  await log.close();
});

test('a second open of the same data directory is refused while the first is open', async () => {
  const dir = tempDir();
  const log = await openLog({ dataDir: dir, cleanerIntervalMs: 0 });
  await assert.rejects(openLog({ dataDir: dir }), /already open/);
  await log.close();
  const again = await openLog({ dataDir: dir, cleanerIntervalMs: 0 });
  await again.close();
});

test('batches keep the leader epoch the producer wrote', async () => {
  const dir = tempDir();
  const log = await openLog({ dataDir: dir, cleanerIntervalMs: 0 });
  await log.createTopic('t', { partitions: 1 });
  await log.append('t', 0, batch(1));
  const r = await log.read('t', 0, 0n, { maxBytes: 100, isolation: 'read_uncommitted' });
  assert.equal(r.records.readInt32BE(BatchField.partitionLeaderEpoch), -1);
  await log.close();
});
