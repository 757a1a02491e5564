/** The embedded client's own behaviour (what the conformance suite cannot reach: fault injection, batching). */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { TributaryError } from '../../src/core/index.ts';
import {
  type ConsumedRecord,
  type Consumer,
  decodeRecordBatches,
  embeddedClient,
  encodeRecordBatch,
  type Header,
  type LogService,
  openLog,
  validateBatch,
} from '../../src/log/index.ts';

let dir: string;
let log: LogService;

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-client-'));
  log = await openLog({ dataDir: dir });
});
afterEach(async () => {
  await log.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A LogService whose next `lost` appends are written but answered with a retriable error (a lost ack). */
function losingAcks(inner: LogService, state: { lost: number }): LogService {
  return new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'append') {
        return async (topic: string, partition: number, batches: Buffer) => {
          const result = await target.append(topic, partition, batches);
          if (state.lost > 0) {
            state.lost--;
            throw new TributaryError('UNAVAILABLE', 'the acknowledgement was lost');
          }
          return result;
        };
      }
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

async function readAll(consumer: Consumer, count: number): Promise<ConsumedRecord[]> {
  const out: ConsumedRecord[] = [];
  for (let i = 0; i < 100 && out.length < count; i++) out.push(...(await consumer.poll(100)));
  return out;
}

describe('embedded producer', () => {
  it('sends a record as it was at send(), interleaves calls and partitions, and reports each one where it landed', async () => {
    await log.createTopic('t', { partitions: 2 });
    const client = embeddedClient(log);
    const producer = client.producer({ lingerMs: 20 });
    const value = Buffer.from('before');
    const rec = { topic: 't', partition: 0, value, timestamp: 1000 };
    const first = producer.send([rec, { topic: 't', partition: 1, value: 'p1', timestamp: 1001 }]);
    value.write('BEFORE'); // the bytes were copied at send()
    rec.value = Buffer.from('after');
    const second = producer.send([{ topic: 't', partition: 0, value: 'x', timestamp: 1002 }, rec]);
    const [a, b] = await Promise.all([first, second]);
    assert.deepEqual(
      [...a!, ...b!].map((m) => [m.partition, m.offset, m.timestamp]),
      [
        [0, 0n, 1000n],
        [1, 0n, 1001n],
        [0, 1n, 1002n],
        [0, 2n, 1000n],
      ],
    );
    const consumer = client.consumer({ autoOffsetReset: 'earliest' });
    consumer.assign([{ topic: 't', partition: 0 }]);
    const got = await readAll(consumer, 3);
    assert.deepEqual(
      got.map((r) => r.value?.toString()),
      ['before', 'x', 'after'],
    );
    await client.close();
  });

  it('keeps batches within batchSize: a record that would overflow starts the next batch; a larger one goes alone', async () => {
    await log.createTopic('t', { partitions: 1, config: { 'max.message.bytes': 30_000 } });
    const client = embeddedClient(log);
    const producer = client.producer({ batchSize: 10_000 });
    const records = Array.from({ length: 1000 }, (_, i) => ({
      topic: 't',
      value: Buffer.alloc(100 + (i % 7), i % 256),
    }));
    records.splice(500, 0, { topic: 't', value: Buffer.alloc(20_000, 1) });
    const sent = await producer.send(records);
    assert.deepEqual(
      sent.map((m) => m.offset),
      records.map((_, i) => BigInt(i)),
    );
    const fetched = await log.read('t', 0, 0n, { maxBytes: 10_000_000, isolation: 'read_uncommitted' });
    let pos = 0;
    const sizes: number[] = [];
    while (pos < fetched.records.length) {
      const size = fetched.records.readInt32BE(pos + 8) + 12;
      sizes.push(size);
      pos += size;
    }
    assert.ok(sizes.length > 10, `${sizes.length} batches`);
    assert.equal(sizes.filter((n) => n > 10_000).length, 1, 'only the large record exceeds batchSize, alone');
    await client.close();
  });

  it('writes batches whose CRCs check out (the log takes them without computing the CRC again), compressed or not', async () => {
    await log.createTopic('t', { partitions: 2 });
    const client = embeddedClient(log);
    for (const compression of ['none', 'gzip', 'lz4'] as const) {
      const producer = client.producer({ batchSize: 2_000, compression });
      await producer.send(
        Array.from({ length: 300 }, (_, i) => ({
          topic: 't',
          key: i % 3 === 0 ? null : `k${i}`,
          value: i % 5 === 0 ? null : Buffer.alloc(20 + (i % 50), i),
          headers: i % 4 === 0 ? ([['h', Buffer.from(`v${i}`)]] as Header[]) : undefined,
        })),
      );
      await producer.close();
    }
    let batches = 0;
    for (const partition of [0, 1]) {
      const fetched = await log.read('t', partition, 0n, { maxBytes: 10_000_000, isolation: 'read_uncommitted' });
      for (let pos = 0; pos < fetched.records.length; batches++) pos += validateBatch(fetched.records, pos);
    }
    assert.ok(batches > 6, `${batches} batches`);
    // Anyone else's batch is still checked: one flipped bit is refused.
    const bad = encodeRecordBatch([{ key: null, value: Buffer.from('x') }]);
    bad[bad.length - 1]! ^= 1;
    await assert.rejects(log.append('t', 0, bad), /CRC-32C mismatch/);
    await client.close();
  });

  it('refuses a record with a bad value, key or timestamp by its index, before encoding any of it', async () => {
    await log.createTopic('t', { partitions: 1 });
    const client = embeddedClient(log);
    const producer = client.producer();
    await assert.rejects(
      producer.send([
        { topic: 't', value: 'ok' },
        { topic: 't', value: 42 as never },
      ]),
      {
        field: 'records[1].value',
      },
    );
    await assert.rejects(producer.send([{ topic: 't', key: {} as never, value: 'v' }]), { field: 'records[0].key' });
    await assert.rejects(producer.send([{ topic: 't', value: 'v', timestamp: Number.NaN }]), {
      field: 'records[0].timestamp',
    });
    await producer.flush();
    // The good record before the bad one still went out, whole.
    const consumer = client.consumer({ autoOffsetReset: 'earliest' });
    consumer.assign([{ topic: 't', partition: 0 }]);
    assert.deepEqual(
      (await readAll(consumer, 1)).map((r) => r.value?.toString()),
      ['ok'],
    );
    await client.close();
  });

  it('retries a batch whose acknowledgement was lost; idempotence keeps one copy', async () => {
    await log.createTopic('t', { partitions: 1 });
    const state = { lost: 1 };
    const client = embeddedClient(losingAcks(log, state));
    const producer = client.producer({ idempotent: true });
    const sent = await producer.send(Array.from({ length: 10 }, (_, i) => ({ topic: 't', value: `v${i}` })));
    assert.equal(state.lost, 0, 'the fault fired');
    assert.deepEqual(
      sent.map((m) => m.offset),
      Array.from({ length: 10 }, (_, i) => BigInt(i)),
    );
    assert.equal(log.describeTopic('t')!.partitions[0]!.highWatermark, 10n);
    await client.close();
  });

  it('without idempotence the same fault writes the records twice (the control for the test above)', async () => {
    await log.createTopic('t', { partitions: 1 });
    const client = embeddedClient(losingAcks(log, { lost: 1 }));
    await client.producer({ idempotent: false }).send([{ topic: 't', value: 'once?' }]);
    assert.equal(log.describeTopic('t')!.partitions[0]!.highWatermark, 2n);
    await client.close();
  });

  it('gathers the sends of a linger window into one batch, and splits at batchSize', async () => {
    await log.createTopic('t', { partitions: 1 });
    const client = embeddedClient(log);
    const lingering = client.producer({ lingerMs: 20 });
    await Promise.all([1, 2, 3].map((i) => lingering.send([{ topic: 't', value: `v${i}` }])));
    const small = client.producer({ batchSize: 1000 });
    await small.send(Array.from({ length: 30 }, () => ({ topic: 't', value: Buffer.alloc(100) })));
    const read = await log.read('t', 0, 0n, { maxBytes: 1 << 20, isolation: 'read_uncommitted' });
    const counts = decodeRecordBatches(read.records).map((b) => b.recordCount);
    assert.equal(counts[0], 3, 'three sends, one batch');
    assert.ok(counts.length > 2, `several batches for 30 records over 1000 bytes, got ${counts.join(',')}`);
    assert.equal(
      counts.reduce((a, b) => a + b, 0),
      33,
    );
    await client.close();
  });

  it('rejects unknown topics, bad partitions and sends outside a transaction with precise errors', async () => {
    await log.createTopic('t', { partitions: 2 });
    const client = embeddedClient(log);
    const producer = client.producer();
    await assert.rejects(producer.send([{ topic: 'nope', value: 'x' }]), /records\[0\]\.topic.*"nope"/);
    await assert.rejects(producer.send([{ topic: 't', value: 'x', partition: 2 }]), /records\[0\]\.partition/);
    const txn = client.producer({ transactionalId: 'tx' });
    await assert.rejects(txn.send([{ topic: 't', value: 'x' }]), /beginTransaction/);
    await assert.rejects(txn.commitTransaction(), /no transaction is open/);
    await client.close();
  });
});

describe('embedded consumer', () => {
  it('wakes a waiting poll when data arrives', async () => {
    await log.createTopic('t', { partitions: 1 });
    const client = embeddedClient(log);
    const consumer = client.consumer({ autoOffsetReset: 'latest' });
    consumer.assign([{ topic: 't', partition: 0 }]);
    await consumer.poll(0); // resolves the position to the (empty) end
    const polled = consumer.poll(10_000);
    await new Promise((r) => setTimeout(r, 20));
    await client.producer().send([{ topic: 't', value: 'late' }]);
    const got = await polled;
    assert.deepEqual(
      got.map((r) => r.value?.toString()),
      ['late'],
    );
    await client.close();
  });

  it('resets to the earliest offset when its position fell below the log start', async () => {
    await log.createTopic('t', { partitions: 1 });
    const client = embeddedClient(log);
    await client.producer().send(Array.from({ length: 10 }, (_, i) => ({ topic: 't', value: `v${i}` })));
    await log.deleteRecords('t', 0, 5n);
    const consumer = client.consumer({ autoOffsetReset: 'earliest' });
    consumer.assign([{ topic: 't', partition: 0 }]);
    consumer.seek({ topic: 't', partition: 0 }, 2n);
    const got = await readAll(consumer, 5);
    assert.deepEqual(
      got.map((r) => r.offset),
      [5n, 6n, 7n, 8n, 9n],
    );
    await client.close();
  });

  it('auto-commits its positions when asked to', async () => {
    await log.createTopic('t', { partitions: 1 });
    const client = embeddedClient(log);
    await client.producer().send(Array.from({ length: 3 }, (_, i) => ({ topic: 't', value: `v${i}` })));
    const consumer = client.consumer({ groupId: 'auto', autoCommit: true, autoOffsetReset: 'earliest' });
    consumer.assign([{ topic: 't', partition: 0 }]);
    assert.equal((await readAll(consumer, 3)).length, 3);
    await consumer.close();
    assert.deepEqual(
      (await log.fetchOffsets('auto')).map((o) => o.offset),
      [3n],
    );
    await client.close();
  });

  it('refuses subscribe without a group and seek on an unassigned partition', async () => {
    const client = embeddedClient(log);
    const consumer = client.consumer();
    await assert.rejects(consumer.subscribe(['t']), /groupId/);
    assert.throws(() => consumer.seek({ topic: 't', partition: 0 }, 0n), /not assigned/);
    await client.close();
  });
});

describe('embedded group member', () => {
  it('rebalances when a subscribed topic appears or gains partitions', async () => {
    const client = embeddedClient(log);
    const consumer = client.consumer({ groupId: 'grow', heartbeatIntervalMs: 20, autoOffsetReset: 'earliest' });
    await consumer.subscribe(['later']);
    assert.deepEqual(consumer.assignment(), []);
    await log.createTopic('later', { partitions: 1 });
    const until = async (n: number) => {
      for (let i = 0; i < 200 && consumer.assignment().length !== n; i++) await consumer.poll(20);
      return consumer.assignment().length;
    };
    assert.equal(await until(1), 1);
    await log.createPartitions('later', 3);
    assert.equal(await until(3), 3);
    await client.producer().send([{ topic: 'later', partition: 2, value: 'p2' }]);
    const got: ConsumedRecord[] = [];
    for (let i = 0; i < 50 && got.length === 0; i++) got.push(...(await consumer.poll(50)));
    assert.deepEqual(
      got.map((r) => [r.partition, r.value?.toString()]),
      [[2, 'p2']],
    );
    await client.close();
  });
});

describe('read_committed over interleaved transactions', () => {
  it('sees exactly the committed and non-transactional records, in offset order (property)', async () => {
    const fc = (await import('fast-check')).default;
    const client = embeddedClient(log);
    let run = 0;
    const step = fc.record({
      who: fc.integer({ min: 0, max: 2 }), // 0, 1: transactional producers; 2: plain producer
      action: fc.constantFrom('send', 'send', 'commit', 'abort'),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 20 }), async (steps) => {
        const topic = `rc-${run++}`;
        await log.createTopic(topic, { partitions: 1 });
        const txn = [0, 1].map((i) => client.producer({ transactionalId: `${topic}-tx${i}` }));
        const plain = client.producer();
        const open = [false, false];
        const pending: string[][] = [[], []];
        const expected: string[] = [];
        const all: string[] = [];
        let n = 0;
        const end = async (i: number, commit: boolean) => {
          if (!open[i]) return;
          if (commit) await txn[i]!.commitTransaction();
          else await txn[i]!.abortTransaction();
          if (commit) expected.push(...pending[i]!);
          pending[i] = [];
          open[i] = false;
        };
        for (const s of steps) {
          if (s.who === 2) {
            const v = `p${n++}`;
            await plain.send([{ topic, value: v }]);
            expected.push(v);
            all.push(v);
          } else if (s.action === 'send') {
            if (!open[s.who]) {
              await txn[s.who]!.beginTransaction();
              open[s.who] = true;
            }
            const v = `t${s.who}-${n++}`;
            await txn[s.who]!.send([{ topic, value: v }]);
            pending[s.who]!.push(v);
            all.push(v);
          } else {
            await end(s.who, s.action === 'commit');
          }
        }
        // Close every transaction so the last stable offset reaches the end; abort what is left open.
        await end(0, false);
        await end(1, false);
        const read = async (isolation: 'read_committed' | 'read_uncommitted', count: number) => {
          const c = client.consumer({ autoOffsetReset: 'earliest', isolation, maxPollRecords: 1000 });
          c.assign([{ topic, partition: 0 }]);
          const got: string[] = [];
          for (let i = 0; i < 20 && got.length < count; i++) {
            for (const r of await c.poll(20)) got.push(r.value!.toString());
          }
          // Nothing may follow what we expect.
          for (const r of await c.poll(0)) got.push(r.value!.toString());
          await c.close();
          return got;
        };
        // Committed records appear in offset order: records of a transaction keep their write positions.
        const committed = new Set(expected);
        assert.deepEqual(
          await read('read_committed', expected.length),
          all.filter((v) => committed.has(v)),
        );
        assert.deepEqual(await read('read_uncommitted', all.length), all);
        await Promise.all([...txn, plain].map((p) => p.close()));
      }),
      { numRuns: 25 },
    );
    await client.close();
  });
});
