import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { isTributaryError } from '../../src/core/index.ts';
import {
  decodeRecordBatches,
  encodeRecordBatch,
  type Log,
  openLog,
  type ProducerIdAndEpoch,
} from '../../src/log/index.ts';
import { freshLog, readAll, tempDir } from './helpers.ts';

const isKafka = (code: number) => (err: unknown) => isTributaryError(err) && err.kafkaErrorCode === code;

/** A transactional producer driving the LogService calls a Kafka client would make. */
class TxnProducer {
  readonly seq = new Map<string, number>();
  readonly log: Log;
  readonly id: string;
  readonly producer: ProducerIdAndEpoch;
  constructor(log: Log, id: string, producer: ProducerIdAndEpoch) {
    this.log = log;
    this.id = id;
    this.producer = producer;
  }
  static async init(log: Log, id: string, timeoutMs = 60_000) {
    return new TxnProducer(log, id, await log.initProducerId(id, timeoutMs));
  }
  async send(topic: string, partition: number, ...values: string[]) {
    await this.log.addPartitionsToTxn(this.id, this.producer, [{ topic, partition }]);
    const key = `${topic}-${partition}`;
    const baseSequence = this.seq.get(key) ?? 0;
    this.seq.set(key, baseSequence + values.length);
    const batch = encodeRecordBatch(
      values.map((value) => ({ value })),
      { ...this.producer, baseSequence, transactional: true },
    );
    return this.log.append(topic, partition, batch);
  }
  commit() {
    return this.log.endTxn(this.id, this.producer, true);
  }
  abort() {
    return this.log.endTxn(this.id, this.producer, false);
  }
}

const values = (rows: { value: string | null }[]) => rows.map((r) => r.value);

test('read_committed stops at the last stable offset until the transaction commits', async () => {
  const log = await freshLog();
  await log.createTopic('t', { partitions: 1 });
  await log.append('t', 0, encodeRecordBatch([{ value: 'plain-0' }]));
  const tx = await TxnProducer.init(log, 'tx1');
  await tx.send('t', 0, 'tx-a', 'tx-b');
  await log.append('t', 0, encodeRecordBatch([{ value: 'plain-1' }]));
  const info = log.describeTopic('t')!.partitions[0]!;
  assert.equal(info.lastStableOffset, 1n);
  assert.equal(info.highWatermark, 4n);
  assert.deepEqual(values(await readAll(log, 't', 0, { isolation: 'read_committed' })), ['plain-0']);
  assert.deepEqual(values(await readAll(log, 't')), ['plain-0', 'tx-a', 'tx-b', 'plain-1']);
  assert.deepEqual(await log.listOffset('t', 0, -1n, 'read_committed'), { offset: 1n, timestamp: -1n });

  await tx.commit();
  assert.equal(log.describeTopic('t')!.partitions[0]!.lastStableOffset, 5n); // past the COMMIT marker
  assert.deepEqual(values(await readAll(log, 't', 0, { isolation: 'read_committed' })), [
    'plain-0',
    'tx-a',
    'tx-b',
    'plain-1',
  ]);
  const r = await log.read('t', 0, 0n, { maxBytes: 1 << 20, isolation: 'read_committed' });
  const marker = decodeRecordBatches(r.records).at(-1)!;
  assert.ok(marker.isControl && marker.isTransactional);
  assert.equal(marker.producerId, tx.producer.producerId);
});

test('aborted transactions are reported to read_committed readers and kept in the .txnindex across restarts', async () => {
  const dir = tempDir();
  let log = await openLog({ dataDir: dir, cleanerIntervalMs: 0 });
  await log.createTopic('t', { partitions: 1, config: { 'segment.bytes': 400 } });
  const tx = await TxnProducer.init(log, 'tx2');
  await tx.send('t', 0, 'kept-1');
  await tx.commit();
  await tx.send('t', 0, 'dropped-1', 'dropped-2');
  await log.append('t', 0, encodeRecordBatch([{ value: 'plain' }]));
  await tx.send('t', 0, 'dropped-3');
  await tx.abort();
  await tx.send('t', 0, 'kept-2');
  await tx.commit();

  const check = async (l: Log) => {
    const r = await l.read('t', 0, 0n, { maxBytes: 1 << 20, isolation: 'read_committed' });
    assert.deepEqual(r.abortedTransactions, [{ producerId: tx.producer.producerId, firstOffset: 2n }]);
    assert.deepEqual(values(await readAll(l, 't', 0, { isolation: 'read_committed', maxBytes: 150 })), [
      'kept-1',
      'plain',
      'kept-2',
    ]);
    const late = await l.read('t', 0, 9n, { maxBytes: 1 << 20, isolation: 'read_committed' });
    assert.deepEqual(late.abortedTransactions, [], 'a fetch after the aborted range does not report it');
    const unc = await l.read('t', 0, 0n, { maxBytes: 1 << 20, isolation: 'read_uncommitted' });
    assert.deepEqual(unc.abortedTransactions, []);
  };
  await check(log);
  await log.close();
  const txnIndexes = fs.readdirSync(path.join(dir, 't-0')).filter((f) => f.endsWith('.txnindex'));
  assert.ok(txnIndexes.some((f) => fs.statSync(path.join(dir, 't-0', f)).size === 34));
  log = await openLog({ dataDir: dir, cleanerIntervalMs: 0 });
  await check(log);
  await log.close();
  // after a crash the txn index is rebuilt from the log
  fs.rmSync(path.join(dir, '.clean-shutdown'));
  for (const f of fs.readdirSync(path.join(dir, 't-0'))) {
    if (/\.(txnindex|snapshot)$/.test(f) || f === 'recovery-point') fs.rmSync(path.join(dir, 't-0', f));
  }
  log = await openLog({ dataDir: dir, cleanerIntervalMs: 0 });
  await check(log);
  await log.close();
});

test('a transaction spans partitions and topics; commit and abort reach every one', async () => {
  const log = await freshLog();
  await log.createTopic('a', { partitions: 2 });
  await log.createTopic('b', { partitions: 1 });
  const tx = await TxnProducer.init(log, 'multi');
  await tx.send('a', 0, 'a0');
  await tx.send('a', 1, 'a1');
  await tx.send('b', 0, 'b0');
  await tx.commit();
  for (const [t, p, v] of [
    ['a', 0, 'a0'],
    ['a', 1, 'a1'],
    ['b', 0, 'b0'],
  ] as const) {
    assert.deepEqual(values(await readAll(log, t, p, { isolation: 'read_committed' })), [v]);
  }
  await tx.send('a', 0, 'x');
  await tx.send('b', 0, 'y');
  await tx.abort();
  assert.deepEqual(values(await readAll(log, 'a', 0, { isolation: 'read_committed' })), ['a0']);
  assert.deepEqual(values(await readAll(log, 'b', 0, { isolation: 'read_committed' })), ['b0']);
  assert.equal(
    log.describeTopic('a')!.partitions[1]!.lastStableOffset,
    2n,
    'a-1 got a marker only for the first transaction',
  );
});

test('re-initialising a transactional id bumps the epoch, aborts its open transaction and fences the old producer', async () => {
  const log = await freshLog();
  await log.createTopic('t', { partitions: 1 });
  const old = await TxnProducer.init(log, 'zombie');
  assert.equal(old.producer.producerEpoch, 0);
  await old.send('t', 0, 'zombie-write');
  const fresh = await TxnProducer.init(log, 'zombie');
  assert.equal(fresh.producer.producerId, old.producer.producerId);
  assert.ok(fresh.producer.producerEpoch > old.producer.producerEpoch);
  assert.equal(log.describeTopic('t')!.partitions[0]!.lastStableOffset, 2n, 'the open transaction was aborted');
  await assert.rejects(old.commit(), isKafka(90));
  await assert.rejects(log.addPartitionsToTxn('zombie', old.producer, [{ topic: 't', partition: 0 }]), isKafka(90));
  const stale = encodeRecordBatch([{ value: 'late' }], { ...old.producer, baseSequence: 1, transactional: true });
  await assert.rejects(log.append('t', 0, stale), isKafka(47));
  await fresh.send('t', 0, 'fresh-write');
  await fresh.commit();
  assert.deepEqual(values(await readAll(log, 't', 0, { isolation: 'read_committed' })), ['fresh-write']);
});

test('transaction timeouts abort and fence the producer', async () => {
  const log = await freshLog();
  await log.createTopic('t', { partitions: 1 });
  const tx = await TxnProducer.init(log, 'slow', 100);
  await tx.send('t', 0, 'too-late');
  assert.deepEqual(await log.expireTransactions(), []);
  await new Promise((resolve) => setTimeout(resolve, 150));
  assert.deepEqual(await log.expireTransactions(), ['slow']);
  assert.equal(log.describeTopic('t')!.partitions[0]!.lastStableOffset, 2n);
  assert.deepEqual(values(await readAll(log, 't', 0, { isolation: 'read_committed' })), []);
  await assert.rejects(tx.commit(), isKafka(90));
});

test('the timer aborts expired transactions without being asked', async () => {
  const log = await freshLog();
  await log.createTopic('t', { partitions: 1 });
  const tx = await TxnProducer.init(log, 'forgotten', 50);
  await tx.send('t', 0, 'x');
  const deadline = Date.now() + 5000;
  while (log.describeTopic('t')!.partitions[0]!.lastStableOffset !== 2n && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.equal(log.describeTopic('t')!.partitions[0]!.lastStableOffset, 2n);
});

test('transactional offset commits become visible only when the transaction commits', async () => {
  const log = await freshLog();
  await log.createTopic('in', { partitions: 1 });
  await log.createTopic('out', { partitions: 1 });
  const tx = await TxnProducer.init(log, 'ctp');
  const offsets = [{ topic: 'in', partition: 0, offset: 42n, leaderEpoch: -1, metadata: '' }];
  await tx.send('out', 0, 'result');
  await log.addOffsetsToTxn('ctp', tx.producer, 'group-1');
  await log.txnOffsetCommit('ctp', 'group-1', tx.producer, offsets);
  const fetched = () => log.fetchOffsets('group-1', [{ topic: 'in', partition: 0 }]);
  assert.equal((await fetched())[0]!.offset, -1n);
  await tx.commit();
  assert.equal((await fetched())[0]!.offset, 42n);

  await tx.send('out', 0, 'result-2');
  await log.txnOffsetCommit('ctp', 'group-1', tx.producer, [{ ...offsets[0]!, offset: 50n }]);
  await tx.abort();
  assert.equal((await fetched())[0]!.offset, 42n);
});

test('coordinator errors: unknown ids, bad timeouts, wrong states, unknown partitions, missing AddPartitions', async () => {
  const log = await freshLog({ maxTransactionTimeoutMs: 60_000 });
  await log.createTopic('t', { partitions: 1 });
  await assert.rejects(log.initProducerId('x', 0), isKafka(50));
  await assert.rejects(log.initProducerId('x', 60_001), isKafka(50));
  const tx = await TxnProducer.init(log, 'states');
  await assert.rejects(log.endTxn('nobody', tx.producer, true), isKafka(49));
  await assert.rejects(log.endTxn('states', { producerId: 999n, producerEpoch: 0 }, true), isKafka(49));
  await assert.rejects(tx.commit(), isKafka(48)); // nothing begun
  await assert.rejects(log.addPartitionsToTxn('states', tx.producer, [{ topic: 't', partition: 5 }]), isKafka(3));
  await assert.rejects(log.txnOffsetCommit('states', 'g', tx.producer, []), isKafka(48));
  // a transactional batch for a partition not added to the transaction
  const batch = encodeRecordBatch([{ value: 'sneaky' }], { ...tx.producer, baseSequence: 0, transactional: true });
  await assert.rejects(log.append('t', 0, batch), isKafka(48));
  await tx.send('t', 0, 'ok');
  // a non-transactional batch from the producer inside its transaction
  const plain = encodeRecordBatch([{ value: 'plain' }], { ...tx.producer, baseSequence: 1 });
  await assert.rejects(log.append('t', 0, plain), isKafka(48));
  await tx.commit();
  await tx.commit(); // a retried EndTxn of a completed commit succeeds
  await assert.rejects(tx.abort(), isKafka(48));
});

test('coordinator state survives restarts; prepared transactions are completed on open', async () => {
  const dir = tempDir();
  let log = await openLog({ dataDir: dir, cleanerIntervalMs: 0 });
  await log.createTopic('t', { partitions: 1 });
  const tx = await TxnProducer.init(log, 'durable');
  await tx.send('t', 0, 'before-restart');
  await log.close();
  log = await openLog({ dataDir: dir, cleanerIntervalMs: 0 });
  // the open transaction is still open after the restart, and its producer can finish it
  assert.equal(log.describeTopic('t')!.partitions[0]!.lastStableOffset, 0n);
  const resumed = new TxnProducer(log, 'durable', tx.producer);
  resumed.seq.set('t-0', 1);
  await resumed.send('t', 0, 'after-restart');
  await resumed.commit();
  assert.deepEqual(values(await readAll(log, 't', 0, { isolation: 'read_committed' })), [
    'before-restart',
    'after-restart',
  ]);
  const again = await log.initProducerId('durable', 60_000);
  assert.deepEqual(again, { producerId: tx.producer.producerId, producerEpoch: 1 });
  await log.close();

  // a crash between the PrepareCommit decision and the markers: the next open writes the markers
  const stateFile = path.join(dir, '__transactions', 'state.jsonl');
  log = await openLog({ dataDir: dir, cleanerIntervalMs: 0 });
  const tx2 = new TxnProducer(log, 'durable', again);
  await tx2.send('t', 0, 'prepared');
  await log.close();
  const lines = fs.readFileSync(stateFile, 'utf8').trim().split('\n');
  const last = JSON.parse(lines.at(-1)!);
  assert.equal(last.state, 'Ongoing');
  fs.appendFileSync(stateFile, `${JSON.stringify({ ...last, state: 'PrepareCommit' })}\n{"torn":`);
  log = await openLog({ dataDir: dir, cleanerIntervalMs: 0 });
  assert.deepEqual(values(await readAll(log, 't', 0, { isolation: 'read_committed' })), [
    'before-restart',
    'after-restart',
    'prepared',
  ]);
  await log.close();
});

test('waitForData with read_committed wakes when the transaction commits, not when it writes', async () => {
  const log = await freshLog();
  await log.createTopic('t', { partitions: 1 });
  const tx = await TxnProducer.init(log, 'waiter');
  await tx.send('t', 0, 'pending');
  let woke = false;
  const waiting = log
    .waitForData([{ topic: 't', partition: 0, offset: 0n, isolation: 'read_committed' }], 5000)
    .then(() => {
      woke = true;
    });
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(woke, false);
  await tx.commit();
  await waiting;
  assert.equal(woke, true);
});

test('a commit in flight is not completed a second time by the timeout sweep', async () => {
  const log = await freshLog();
  await log.createTopic('t', { partitions: 1, config: { 'flush.messages': 1 } });
  const tx = await TxnProducer.init(log, 'racing', 30);
  await tx.send('t', 0, 'x');
  await new Promise((resolve) => setTimeout(resolve, 60)); // past its timeout
  const [, expired] = await Promise.all([tx.commit(), log.expireTransactions()]);
  assert.deepEqual(expired, []);
  const r = await log.read('t', 0, 0n, { maxBytes: 1 << 20, isolation: 'read_committed' });
  const markers = decodeRecordBatches(r.records).filter((b) => b.isControl);
  assert.equal(markers.length, 1);
  assert.deepEqual(values(await readAll(log, 't', 0, { isolation: 'read_committed' })), ['x']);
});
