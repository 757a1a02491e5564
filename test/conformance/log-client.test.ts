/**
 * One suite, every implementation of `LogClient`: code written against the embedded log must behave the
 * same against a Kafka cluster. Adding an implementation is one entry in `implementations`.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { quietLogger, remoteClient, startKafkaBroker } from '../../src/kafka/index.ts';
import {
  type ConsumedRecord,
  type Consumer,
  embeddedClient,
  type LogClient,
  openLog,
  partitionForKey,
} from '../../src/log/index.ts';
import { startLogThread } from '../log/helpers.ts';

interface Harness {
  client: LogClient;
  teardown(): Promise<void>;
}

interface Implementation {
  name: string;
  /** Starts the implementation (a log, a broker...) and returns a client over it. */
  setup(): Promise<Harness>;
}

const implementations: Implementation[] = [
  {
    name: 'embedded',
    async setup() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-conformance-'));
      const log = await openLog({ dataDir: dir });
      const client = embeddedClient(log);
      return {
        client,
        async teardown() {
          await client.close();
          await log.close();
          fs.rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  },
  {
    // the embedded log in another thread, its producers and consumers here, the LogService calls over a MessagePort
    name: 'embedded in another thread (MessagePort)',
    async setup() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-conformance-port-'));
      const thread = await startLogThread(dir);
      return {
        client: thread.client,
        async teardown() {
          await thread.close();
          fs.rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  },
  {
    // the remote client (@platformatic/kafka) against our own broker over TCP
    name: 'remote (@platformatic/kafka -> tributary broker)',
    async setup() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-conformance-remote-'));
      const log = await openLog({ dataDir: dir });
      const broker = await startKafkaBroker({ log, port: 0, logger: quietLogger });
      const client = remoteClient({ bootstrapBrokers: [`127.0.0.1:${broker.port}`] });
      return {
        client,
        async teardown() {
          await client.close();
          await broker.close();
          await log.close();
          fs.rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  },
];

/** Short group timings so rebalances take a fraction of a second. */
const GROUP = { sessionTimeoutMs: 6_000, heartbeatIntervalMs: 50, rebalanceTimeoutMs: 10_000 };

let topicSeq = 0;
const uniqueTopic = (base: string) => `${base}-${process.pid}-${++topicSeq}`;

/** Polls the consumers until `done` holds over everything received, or fails after `timeoutMs`. */
async function pollUntil(
  consumers: Consumer[],
  done: (received: ConsumedRecord[][]) => boolean,
  timeoutMs = 15_000,
): Promise<ConsumedRecord[][]> {
  const received: ConsumedRecord[][] = consumers.map(() => []);
  const deadline = Date.now() + timeoutMs;
  while (!done(received)) {
    if (Date.now() > deadline) {
      assert.fail(`timed out; received ${received.map((r) => r.length).join(', ')} records`);
    }
    const batches = await Promise.all(consumers.map((c) => c.poll(100)));
    for (const [i, b] of batches.entries()) received[i]!.push(...b);
  }
  return received;
}

const values = (records: ConsumedRecord[]) => records.map((r) => r.value?.toString());

for (const impl of implementations) {
  describe(`LogClient conformance: ${impl.name}`, () => {
    let h: Harness;
    before(async () => {
      h = await impl.setup();
    });
    after(async () => {
      await h?.teardown();
    });

    it('admin errors carry the same codes: existing topic, unknown topic, bad partition count', async () => {
      const topic = uniqueTopic('admin-errors');
      const admin = h.client.admin();
      await admin.createTopic(topic, { partitions: 2 });
      await assert.rejects(admin.createTopic(topic, { partitions: 2 }), { code: 'ALREADY_EXISTS' });
      await assert.rejects(admin.describeTopic(uniqueTopic('missing')), { code: 'NOT_FOUND' });
      await assert.rejects(admin.createPartitions(topic, 1), { code: 'INVALID_ARGUMENT' });
      await admin.deleteTopic(topic);
      assert.ok(!(await admin.listTopics()).includes(topic));
    });

    it('round-trips records with keys, headers and timestamps', async () => {
      const topic = uniqueTopic('roundtrip');
      const admin = h.client.admin();
      await admin.createTopic(topic, { partitions: 2 });
      const producer = h.client.producer();
      const sent = await producer.send([
        {
          topic,
          partition: 0,
          key: 'k1',
          value: 'v1',
          timestamp: 1_700_000_000_000,
          headers: [['h', Buffer.from('x')]],
        },
        { topic, partition: 0, key: null, value: Buffer.from([0, 1, 2]), timestamp: 1_700_000_000_001n },
        { topic, partition: 1, key: Buffer.from('k3'), value: null, timestamp: 1_700_000_000_002 },
      ]);
      assert.deepEqual(
        sent.map((m) => [m.partition, m.offset, m.timestamp]),
        [
          [0, 0n, 1_700_000_000_000n],
          [0, 1n, 1_700_000_000_001n],
          [1, 0n, 1_700_000_000_002n],
        ],
      );
      const consumer = h.client.consumer({ autoOffsetReset: 'earliest' });
      consumer.assign([
        { topic, partition: 0 },
        { topic, partition: 1 },
      ]);
      const [got] = await pollUntil([consumer], (r) => r[0]!.length >= 3);
      const byOffset = got!.sort((a, b) => a.partition - b.partition || Number(a.offset - b.offset));
      assert.deepEqual(
        byOffset.map((r) => [r.partition, r.offset, r.key?.toString() ?? null, r.value, r.timestamp]),
        [
          [0, 0n, 'k1', Buffer.from('v1'), 1_700_000_000_000n],
          [0, 1n, null, Buffer.from([0, 1, 2]), 1_700_000_000_001n],
          [1, 0n, 'k3', null, 1_700_000_000_002n],
        ],
      );
      assert.deepEqual(byOffset[0]!.headers, [['h', Buffer.from('x')]]);
      assert.equal(consumer.position({ topic, partition: 0 }), 2n);
      const described = await admin.describeTopic(topic);
      assert.deepEqual(
        described.partitions.map((p) => p.highWatermark),
        [2n, 1n],
      );
      assert.ok((await admin.listTopics()).includes(topic));
      await consumer.close();
      await producer.close();
    });

    it('round-trips batches compressed with each codec', async () => {
      const topic = uniqueTopic('codecs');
      await h.client.admin().createTopic(topic, { partitions: 1 });
      const codecs = ['gzip', 'snappy', 'lz4', 'zstd'] as const;
      for (const compression of codecs) {
        const producer = h.client.producer({ compression });
        await producer.send(
          Array.from({ length: 50 }, (_, i) => ({
            topic,
            key: `${compression}-${i}`,
            value: `${compression} ${'v'.repeat(i)}`,
          })),
        );
        await producer.close();
      }
      const consumer = h.client.consumer({ autoOffsetReset: 'earliest', maxPollRecords: 1000 });
      consumer.assign([{ topic, partition: 0 }]);
      const [got] = await pollUntil([consumer], (r) => r[0]!.length >= 200);
      const expected = codecs.flatMap((c) => Array.from({ length: 50 }, (_, i) => `${c} ${'v'.repeat(i)}`));
      assert.deepEqual(values(got!), expected);
      assert.deepEqual(
        got!.map((r) => r.offset),
        expected.map((_, i) => BigInt(i)),
      );
      await consumer.close();
    });

    it('places keyed records on the partitions a Java client would', async () => {
      const topic = uniqueTopic('partitioner');
      await h.client.admin().createTopic(topic, { partitions: 7 });
      const producer = h.client.producer();
      const keys = Array.from({ length: 50 }, (_, i) => `key-${i}`);
      const first = await producer.send(keys.map((key) => ({ topic, key, value: 'a' })));
      const second = await producer.send(keys.map((key) => ({ topic, key, value: 'b' })));
      keys.forEach((key, i) => {
        assert.equal(first[i]!.partition, partitionForKey(Buffer.from(key), 7), key);
        assert.equal(second[i]!.partition, first[i]!.partition, key);
      });
      await producer.close();
    });

    it('splits partitions between two group members and rebalances when one leaves', async () => {
      const topic = uniqueTopic('group');
      const groupId = uniqueTopic('group-g');
      await h.client.admin().createTopic(topic, { partitions: 4 });
      const producer = h.client.producer();
      const c1 = h.client.consumer({ groupId, autoOffsetReset: 'earliest', ...GROUP });
      const c2 = h.client.consumer({ groupId, autoOffsetReset: 'earliest', ...GROUP });
      await c1.subscribe([topic]);
      await c2.subscribe([topic]);
      // Both members hold two partitions each once the rebalance settles.
      await pollUntil([c1, c2], () => c1.assignment().length === 2 && c2.assignment().length === 2);
      const owned = [...c1.assignment(), ...c2.assignment()].map((tp) => tp.partition).sort();
      assert.deepEqual(owned, [0, 1, 2, 3]);

      const batch = Array.from({ length: 40 }, (_, i) => ({ topic, partition: i % 4, value: `m${i}` }));
      await producer.send(batch);
      const got = await pollUntil([c1, c2], (r) => r[0]!.length + r[1]!.length >= 40);
      const all = [...values(got[0]!), ...values(got[1]!)].sort();
      assert.deepEqual(all, batch.map((r) => r.value).sort(), 'every record exactly once');
      for (const [i, c] of [c1, c2].entries()) {
        const mine = new Set(c.assignment().map((tp) => tp.partition));
        assert.ok(
          got[i]!.every((r) => mine.has(r.partition)),
          'a member only sees its own partitions',
        );
      }
      await c1.commit();
      await c2.commit();

      await c2.close();
      await pollUntil([c1], () => c1.assignment().length === 4);
      await producer.send(batch.map((r) => ({ ...r, value: `n${r.value}` })));
      const after = await pollUntil([c1], (r) => r[0]!.length >= 40);
      assert.deepEqual(values(after[0]!).sort(), batch.map((r) => `n${r.value}`).sort());
      await c1.close();
      await producer.close();
    });

    it('resumes from committed offsets', async () => {
      const topic = uniqueTopic('resume');
      const groupId = uniqueTopic('resume-g');
      await h.client.admin().createTopic(topic, { partitions: 1 });
      const producer = h.client.producer();
      await producer.send(Array.from({ length: 10 }, (_, i) => ({ topic, value: `r${i}` })));
      const c1 = h.client.consumer({ groupId, autoOffsetReset: 'earliest', maxPollRecords: 4, ...GROUP });
      await c1.subscribe([topic]);
      const [first] = await pollUntil([c1], (r) => r[0]!.length >= 4);
      assert.deepEqual(values(first!), ['r0', 'r1', 'r2', 'r3']);
      await c1.commit();
      await c1.close();
      assert.deepEqual(await h.client.admin().fetchOffsets(groupId), [{ topic, partition: 0, offset: 4n }]);
      assert.ok((await h.client.admin().listGroups()).includes(groupId));

      const c2 = h.client.consumer({ groupId, autoOffsetReset: 'earliest', ...GROUP });
      await c2.subscribe([topic]);
      const [rest] = await pollUntil([c2], (r) => r[0]!.length >= 6);
      assert.deepEqual(values(rest!), ['r4', 'r5', 'r6', 'r7', 'r8', 'r9']);
      await c2.close();
      await producer.close();
    });

    it('one send larger than the default message size limit (3 MB) arrives whole and in order', async () => {
      const topic = uniqueTopic('big-send');
      await h.client.admin().createTopic(topic, { partitions: 1 });
      const producer = h.client.producer();
      const body = 'x'.repeat(1_000);
      const meta = await producer.send(
        Array.from({ length: 3_000 }, (_, i) => ({ topic, partition: 0, value: `${i}:${body}` })),
      );
      assert.deepEqual(
        meta.map((m) => m.offset),
        Array.from({ length: 3_000 }, (_, i) => BigInt(i)),
      );
      const c = h.client.consumer({ autoOffsetReset: 'earliest' });
      c.assign([{ topic, partition: 0 }]);
      const [got] = await pollUntil([c], (r) => r[0]!.length >= 3_000);
      assert.deepEqual(
        values(got!).map((v) => Number(String(v).split(':')[0])),
        Array.from({ length: 3_000 }, (_, i) => i),
      );
      await c.close();
      await producer.close();
    });

    it('a consumer that assigns its partitions commits offsets for its group id (standalone, no membership)', async () => {
      const topic = uniqueTopic('assigned');
      const groupId = uniqueTopic('assigned-g');
      await h.client.admin().createTopic(topic, { partitions: 1 });
      const producer = h.client.producer();
      await producer.send(Array.from({ length: 3 }, (_, i) => ({ topic, value: `a${i}` })));
      const c = h.client.consumer({ groupId, autoOffsetReset: 'earliest' });
      c.assign([{ topic, partition: 0 }]);
      await pollUntil([c], (r) => r[0]!.length >= 3);
      await c.commit();
      assert.deepEqual(await h.client.admin().fetchOffsets(groupId), [{ topic, partition: 0, offset: 3n }]);
      await c.close();
      await producer.close();
    });

    it('an idempotent producer writes each record once, in order, across concurrent sends', async () => {
      const topic = uniqueTopic('idempotent');
      await h.client.admin().createTopic(topic, { partitions: 2 });
      const producer = h.client.producer({ idempotent: true, lingerMs: 5 });
      const sends = Array.from({ length: 20 }, (_, s) =>
        producer.send(Array.from({ length: 25 }, (_, i) => ({ topic, partition: i % 2, value: `${s}-${i}` }))),
      );
      const results = (await Promise.all(sends)).flat();
      for (const p of [0, 1]) {
        const offsets = results
          .filter((m) => m.partition === p)
          .map((m) => m.offset)
          .sort((a, b) => (a < b ? -1 : 1));
        assert.deepEqual(
          offsets,
          offsets.map((_, i) => BigInt(i)),
          'offsets are dense: nothing written twice',
        );
      }
      const consumer = h.client.consumer({ autoOffsetReset: 'earliest', maxPollRecords: 1000 });
      consumer.assign([{ topic, partition: 0 }]);
      const [got] = await pollUntil([consumer], (r) => r[0]!.length >= 250);
      // Per partition, records keep the order of the send calls that carried them.
      const order = values(got!).map((v) => Number(v!.split('-')[0]));
      assert.deepEqual(
        order,
        [...order].sort((a, b) => a - b),
      );
      await consumer.close();
      await producer.close();
    });

    it('transactions: committed records are visible and aborted ones never are under read_committed', async () => {
      const topic = uniqueTopic('txn');
      await h.client.admin().createTopic(topic, { partitions: 2 });
      const producer = h.client.producer({ transactionalId: uniqueTopic('txn-id') });
      if (impl.name === 'embedded') {
        // Empty transactions end as no-ops, as with Kafka's Java client. (@platformatic/kafka sends EndTxn for
        // them, which a Kafka broker refuses with INVALID_TXN_STATE, and so does ours.)
        await producer.beginTransaction();
        await producer.abortTransaction();
        await producer.beginTransaction();
        await producer.commitTransaction();
      }
      await producer.beginTransaction();
      await producer.send([
        { topic, partition: 0, value: 'c1' },
        { topic, partition: 1, value: 'c2' },
      ]);
      await producer.commitTransaction();
      await producer.beginTransaction();
      await producer.send([
        { topic, partition: 0, value: 'a1' },
        { topic, partition: 1, value: 'a2' },
      ]);
      await producer.abortTransaction();
      await producer.beginTransaction();
      await producer.send([{ topic, partition: 0, value: 'c3' }]);
      await producer.commitTransaction();

      const tps = [
        { topic, partition: 0 },
        { topic, partition: 1 },
      ];
      const committed = h.client.consumer({ autoOffsetReset: 'earliest', isolation: 'read_committed' });
      committed.assign(tps);
      const [seen] = await pollUntil([committed], (r) => r[0]!.length >= 3);
      // One more poll: nothing aborted may trail behind.
      seen!.push(...(await committed.poll(200)));
      assert.deepEqual(values(seen!).sort(), ['c1', 'c2', 'c3']);

      const uncommitted = h.client.consumer({ autoOffsetReset: 'earliest', isolation: 'read_uncommitted' });
      uncommitted.assign(tps);
      const [all] = await pollUntil([uncommitted], (r) => r[0]!.length >= 5);
      assert.deepEqual(values(all!).sort(), ['a1', 'a2', 'c1', 'c2', 'c3']);
      await committed.close();
      await uncommitted.close();
      await producer.close();
    });

    it('a second producer with the same transactionalId fences the first', async () => {
      const topic = uniqueTopic('fence');
      await h.client.admin().createTopic(topic, { partitions: 1 });
      const transactionalId = uniqueTopic('fence-id');
      const zombie = h.client.producer({ transactionalId });
      await zombie.beginTransaction();
      await zombie.send([{ topic, value: 'zombie' }]);
      const fresh = h.client.producer({ transactionalId });
      await fresh.beginTransaction();
      await fresh.send([{ topic, value: 'fresh' }]);
      await fresh.commitTransaction();
      await assert.rejects(
        (async () => {
          await zombie.send([{ topic, value: 'zombie-2' }]);
          await zombie.commitTransaction();
        })(),
        'the fenced producer cannot commit',
      );
      const consumer = h.client.consumer({ autoOffsetReset: 'earliest', isolation: 'read_committed' });
      consumer.assign([{ topic, partition: 0 }]);
      const [got] = await pollUntil([consumer], (r) => r[0]!.length >= 1);
      got!.push(...(await consumer.poll(200)));
      assert.deepEqual(values(got!), ['fresh']);
      await consumer.close();
      await fresh.close();
      await zombie.close().catch(() => undefined);
    });

    it('sendOffsetsToTransaction commits consumed offsets with the transaction', async () => {
      const input = uniqueTopic('ctp-in');
      const output = uniqueTopic('ctp-out');
      const groupId = uniqueTopic('ctp-g');
      const admin = h.client.admin();
      await admin.createTopic(input, { partitions: 1 });
      await admin.createTopic(output, { partitions: 1 });
      const plain = h.client.producer();
      await plain.send(Array.from({ length: 6 }, (_, i) => ({ topic: input, value: `in${i}` })));
      const consumer = h.client.consumer({ groupId, autoOffsetReset: 'earliest', maxPollRecords: 3, ...GROUP });
      await consumer.subscribe([input]);
      const producer = h.client.producer({ transactionalId: uniqueTopic('ctp-txn') });

      const [batch1] = await pollUntil([consumer], (r) => r[0]!.length >= 3);
      await producer.beginTransaction();
      await producer.send(batch1!.map((r) => ({ topic: output, value: `out-${r.value}` })));
      await producer.sendOffsetsToTransaction(groupId, [{ topic: input, partition: 0, offset: 3n }]);
      await producer.commitTransaction();
      assert.deepEqual(await admin.fetchOffsets(groupId), [{ topic: input, partition: 0, offset: 3n }]);

      const [batch2] = await pollUntil([consumer], (r) => r[0]!.length >= 3);
      await producer.beginTransaction();
      await producer.send(batch2!.map((r) => ({ topic: output, value: `out-${r.value}` })));
      await producer.sendOffsetsToTransaction(groupId, [{ topic: input, partition: 0, offset: 6n }]);
      await producer.abortTransaction();
      assert.deepEqual(
        await admin.fetchOffsets(groupId),
        [{ topic: input, partition: 0, offset: 3n }],
        'aborted offsets are not committed',
      );

      const reader = h.client.consumer({ autoOffsetReset: 'earliest' });
      reader.assign([{ topic: output, partition: 0 }]);
      const [out] = await pollUntil([reader], (r) => r[0]!.length >= 3);
      out!.push(...(await reader.poll(200)));
      assert.deepEqual(values(out!), ['out-in0', 'out-in1', 'out-in2']);
      await reader.close();
      await consumer.close();
      await producer.close();
      await plain.close();
    });
  });
}
