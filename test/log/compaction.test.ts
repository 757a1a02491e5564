import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { decodeRecordBatches, encodeRecordBatch, openLog, validateBatch } from '../../src/log/index.ts';
import { freshLog, readAll, tempDir } from './helpers.ts';

const DAY = 86_400_000;

let round = 0;

/** Writes every key k0..k9 (except `skip`) `rounds` times, values `r<round>-k<key>`. */
async function fill(log: Awaited<ReturnType<typeof freshLog>>, topic: string, rounds: number, skip?: string) {
  for (let end = round + rounds; round < end; round++) {
    for (let k = 0; k < 10; k++) {
      if (`k${k}` !== skip) await log.append(topic, 0, encodeRecordBatch([{ key: `k${k}`, value: `r${round}-k${k}` }]));
    }
  }
}

function latestPerKey(rows: { key: string | null; value: string | null }[]): Map<string, string | null> {
  const m = new Map<string, string | null>();
  for (const r of rows) m.set(r.key!, r.value);
  return m;
}

test('compaction keeps the latest record per key, keeps offsets, and never touches the active segment', async () => {
  const log = await freshLog();
  await log.createTopic('c', { partitions: 1, config: { 'cleanup.policy': 'compact', 'segment.bytes': 800 } });
  await fill(log, 'c', 6);
  const before = await readAll(log, 'c');
  const activeBase = BigInt(before.length) - 1n; // the last record is in the active segment
  const report = await log.runCleaner({ force: true });
  assert.equal(report.compacted.length, 1);
  const after = await readAll(log, 'c');
  assert.ok(after.length < before.length);
  assert.deepEqual(latestPerKey(after), latestPerKey(before));
  // surviving records keep their original offsets and values
  const byOffset = new Map(before.map((r) => [r.offset, r.value]));
  for (const r of after) assert.equal(byOffset.get(r.offset), r.value);
  assert.equal(after.at(-1)!.offset, activeBase);
  // in the cleaned part each key appears once
  const info = log.describeTopic('c')!.partitions[0]!;
  const cleanedKeys = after.filter((r) => r.offset < info.highWatermark - 10n).map((r) => r.key);
  assert.equal(new Set(cleanedKeys).size, cleanedKeys.length);
  assert.equal(info.highWatermark, 60n);
});

test('tombstones stay for delete.retention.ms, then go with their key', async () => {
  const log = await freshLog();
  await log.createTopic('t', {
    partitions: 1,
    config: { 'cleanup.policy': 'compact', 'segment.bytes': 600, 'delete.retention.ms': DAY },
  });
  await fill(log, 't', 3);
  await log.append('t', 0, encodeRecordBatch([{ key: 'k3', value: null }]));
  await fill(log, 't', 3, 'k3'); // pushes the tombstone out of the active segment
  for (let k = 0; k < 10; k++)
    if (k !== 3) await log.append('t', 0, encodeRecordBatch([{ key: `k${k}`, value: `last-k${k}` }]));
  await log.runCleaner({ force: true });
  let rows = await readAll(log, 't');
  let latest = latestPerKey(rows);
  assert.equal(latest.get('k3'), null);
  assert.equal(rows.filter((r) => r.key === 'k3').length, 1, 'the tombstone is the only k3 record left');
  // a day later the tombstone is collected
  await log.runCleaner({ force: true, now: Date.now() + DAY + 1000 });
  rows = await readAll(log, 't');
  latest = latestPerKey(rows);
  assert.equal(latest.has('k3'), false);
  assert.equal(latest.get('k0'), 'last-k0');
});

test('min.cleanable.dirty.ratio decides when the cleaner runs by itself', async () => {
  const log = await freshLog();
  await log.createTopic('lazy', {
    partitions: 1,
    config: { 'cleanup.policy': 'compact', 'segment.bytes': 500, 'min.cleanable.dirty.ratio': 0.5 },
  });
  await fill(log, 'lazy', 4);
  const first = await log.runCleaner();
  assert.equal(first.compacted.length, 1, 'all dirty: ratio 1 >= 0.5');
  const second = await log.runCleaner();
  assert.equal(second.compacted.length, 0, 'nothing new since: ratio 0');
  await log.alterTopicConfig('lazy', { 'min.cleanable.dirty.ratio': 0 });
  await fill(log, 'lazy', 1);
  assert.equal((await log.runCleaner()).compacted.length, 1);
});

test('compaction drops aborted transactional records and keeps committed ones', async () => {
  const log = await freshLog();
  await log.createTopic('txc', {
    partitions: 1,
    config: { 'cleanup.policy': 'compact', 'segment.bytes': 400, 'delete.retention.ms': DAY },
  });
  const tx = await log.initProducerId('tx-c', 60_000);
  let seq = 0;
  const txBatch = (key: string, value: string) =>
    encodeRecordBatch([{ key, value }], { ...tx, baseSequence: seq++, transactional: true });
  await log.addPartitionsToTxn('tx-c', tx, [{ topic: 'txc', partition: 0 }]);
  await log.append('txc', 0, txBatch('a', 'aborted-a'));
  await log.append('txc', 0, txBatch('z', 'aborted-z'));
  await log.endTxn('tx-c', tx, false);
  await log.addPartitionsToTxn('tx-c', tx, [{ topic: 'txc', partition: 0 }]);
  await log.append('txc', 0, txBatch('b', 'committed-b'));
  await log.endTxn('tx-c', tx, true);
  await fill(log, 'txc', 2);
  const uncommittedBefore = await readAll(log, 'txc');
  assert.ok(uncommittedBefore.some((r) => r.value === 'aborted-z'));
  await log.runCleaner({ force: true });
  const raw = await readAll(log, 'txc');
  assert.ok(!raw.some((r) => r.value?.startsWith('aborted')), 'aborted records are gone even for read_uncommitted');
  assert.ok(raw.some((r) => r.value === 'committed-b'));
  const committed = await readAll(log, 'txc', 0, { isolation: 'read_committed' });
  assert.deepEqual(
    committed.filter((r) => r.key === 'a' || r.key === 'b' || r.key === 'z').map((r) => r.value),
    ['committed-b'],
  );

  // after delete.retention.ms the markers go too, and with them their aborted-transaction index entries
  const markers = async () => {
    let count = 0;
    let aborted = 0;
    for (let offset = 0n; ; ) {
      const r = await log.read('txc', 0, offset, { maxBytes: 1 << 20, isolation: 'read_committed' });
      if (r.records.length === 0) return { count, aborted };
      aborted += r.abortedTransactions.length;
      for (const b of decodeRecordBatches(r.records)) {
        if (b.isControl) count++;
        offset = b.baseOffset + BigInt(b.lastOffsetDelta) + 1n;
      }
    }
  };
  assert.deepEqual(await markers(), { count: 2, aborted: 1 });
  await log.runCleaner({ force: true, now: Date.now() + DAY + 1000 });
  assert.deepEqual(await markers(), { count: 0, aborted: 0 });
  assert.ok((await readAll(log, 'txc', 0, { isolation: 'read_committed' })).some((r) => r.value === 'committed-b'));
});

test('compacted data survives reopening, and an interrupted segment swap is completed on open', async () => {
  const dir = tempDir();
  let log = await openLog({ dataDir: dir, cleanerIntervalMs: 0 });
  await log.createTopic('s', { partitions: 1, config: { 'cleanup.policy': 'compact', 'segment.bytes': 500 } });
  await fill(log, 's', 5);
  await log.runCleaner({ force: true });
  const compacted = await readAll(log, 's');
  await log.close();
  log = await openLog({ dataDir: dir, cleanerIntervalMs: 0 });
  assert.deepEqual(await readAll(log, 's'), compacted);
  await log.close();

  // a crash after the cleaned segment was renamed to .swap and one of the old segments deleted
  const partitionDir = path.join(dir, 's-0');
  const logs = fs
    .readdirSync(partitionDir)
    .filter((f) => f.endsWith('.log'))
    .sort();
  assert.ok(logs.length >= 3);
  const [first, second] = [logs[0]!, logs[1]!];
  const merged = Buffer.concat([
    fs.readFileSync(path.join(partitionDir, first)),
    fs.readFileSync(path.join(partitionDir, second)),
  ]);
  for (let pos = 0; pos < merged.length; ) pos += validateBatch(merged, pos);
  fs.writeFileSync(path.join(partitionDir, `${first}.swap`), merged);
  fs.writeFileSync(
    path.join(partitionDir, 'cleaner-swap.json'),
    JSON.stringify({
      base: Number(first.slice(0, 20)),
      replaced: [Number(first.slice(0, 20)), Number(second.slice(0, 20))],
    }),
  );
  fs.rmSync(path.join(partitionDir, second));
  fs.writeFileSync(path.join(partitionDir, `${logs[2]}.cleaned`), 'half-written output of a later group');
  log = await openLog({ dataDir: dir, cleanerIntervalMs: 0 });
  assert.deepEqual(await readAll(log, 's'), compacted);
  const after = fs.readdirSync(partitionDir);
  assert.ok(!after.some((f) => f.endsWith('.swap') || f.endsWith('.cleaned') || f === 'cleaner-swap.json'));
  await log.close();
});
