import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import kafkajs from 'kafkajs';
import { startTestBroker, type TestBroker, waitFor } from './helpers.ts';

const { Kafka, logLevel, CompressionTypes } = kafkajs;

let t: TestBroker;
let kafka: InstanceType<typeof Kafka>;

before(async () => {
  t = await startTestBroker();
  kafka = new Kafka({ clientId: 'kafkajs-interop', brokers: [t.bootstrap], logLevel: logLevel.NOTHING });
});

after(async () => {
  await t.close();
});

type Consumer = ReturnType<InstanceType<typeof Kafka>['consumer']>;

async function consumeAll(
  consumer: Consumer,
  topic: string,
  until: (seen: string[]) => boolean,
): Promise<{ values: string[]; keys: string[] }> {
  const values: string[] = [];
  const keys: string[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      values.push(message.value?.toString() ?? '');
      keys.push(message.key?.toString() ?? '');
    },
  });
  await waitFor(`messages from ${topic}`, () => until(values), 40_000);
  return { values, keys };
}

test('kafkajs: produce and consume through a consumer group', async () => {
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: 'kjs-plain', numPartitions: 3 }] });
  await admin.disconnect();
  const producer = kafka.producer();
  await producer.connect();
  const sent: string[] = [];
  for (let batch = 0; batch < 10; batch++) {
    const messages = Array.from({ length: 100 }, (_, i) => ({ key: `key-${i % 7}`, value: `v-${batch}-${i}` }));
    sent.push(...messages.map((m) => m.value));
    await producer.send({
      topic: 'kjs-plain',
      compression: batch % 2 === 0 ? CompressionTypes.GZIP : CompressionTypes.None,
      messages,
    });
  }
  await producer.disconnect();
  const consumer = kafka.consumer({ groupId: 'kjs-group', maxWaitTimeInMs: 100 });
  try {
    const { values } = await consumeAll(consumer, 'kjs-plain', (v) => v.length >= sent.length);
    assert.deepEqual([...values].sort(), [...sent].sort());
  } finally {
    await consumer.disconnect();
  }
});

test('kafkajs: read_committed sees committed transactions and never aborted ones', async () => {
  const topic = 'kjs-txn';
  const producer = kafka.producer({ transactionalId: 'kjs-tx-1', idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const committed: string[] = [];
  for (const [n, outcome] of [
    [1, 'commit'],
    [2, 'abort'],
    [3, 'commit'],
    [4, 'abort'],
  ] as const) {
    const txn = await producer.transaction();
    const messages = Array.from({ length: 5 }, (_, i) => ({ value: `${outcome}-${n}-${i}` }));
    await txn.send({ topic, messages });
    if (outcome === 'commit') {
      await txn.commit();
      committed.push(...messages.map((m) => m.value));
    } else {
      await txn.abort();
    }
  }
  // a plain (non-transactional) message after the transactions marks the end of the stream
  const plain = kafka.producer();
  await plain.connect();
  await plain.send({ topic, messages: [{ value: 'end' }] });
  await plain.disconnect();
  await producer.disconnect();

  const reader = kafka.consumer({ groupId: 'kjs-txn-reader', maxWaitTimeInMs: 100, readUncommitted: false });
  try {
    const { values } = await consumeAll(reader, topic, (v) => v.includes('end'));
    assert.deepEqual(values, [...committed, 'end']);
  } finally {
    await reader.disconnect();
  }
  const dirty = kafka.consumer({ groupId: 'kjs-txn-dirty', maxWaitTimeInMs: 100, readUncommitted: true });
  try {
    const { values } = await consumeAll(dirty, topic, (v) => v.includes('end'));
    assert.equal(values.filter((v) => v.startsWith('abort')).length, 10, 'read_uncommitted sees aborted records');
  } finally {
    await dirty.disconnect();
  }
});

test('kafkajs: consume-transform-produce with sendOffsets commits output and offsets atomically', async () => {
  const input = 'kjs-ctp-in';
  const output = 'kjs-ctp-out';
  const group = 'kjs-ctp';
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: input, numPartitions: 2 }, { topic: output }] });
  const source = kafka.producer();
  await source.connect();
  await source.send({
    topic: input,
    messages: Array.from({ length: 50 }, (_, i) => ({ key: `${i}`, value: `n${i}` })),
  });
  await source.disconnect();

  const producer = kafka.producer({ transactionalId: 'kjs-ctp-tx', idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const consumer = kafka.consumer({ groupId: group, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic: input, fromBeginning: true });
  let processed = 0;
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ topic, partition, message }) => {
      const txn = await producer.transaction();
      try {
        await txn.send({ topic: output, messages: [{ key: message.key, value: `${message.value}`.toUpperCase() }] });
        await txn.sendOffsets({
          consumerGroupId: group,
          topics: [{ topic, partitions: [{ partition, offset: (BigInt(message.offset) + 1n).toString() }] }],
        });
        await txn.commit();
        processed++;
      } catch (err) {
        await txn.abort();
        throw err;
      }
    },
  });
  try {
    await waitFor('50 messages transformed', () => processed >= 50, 40_000);
  } finally {
    await consumer.disconnect();
    await producer.disconnect();
  }
  const offsets = await admin.fetchOffsets({ groupId: group, topics: [input] });
  const ends = await admin.fetchTopicOffsets(input);
  await admin.disconnect();
  for (const p of offsets[0]!.partitions) {
    assert.equal(p.offset, ends.find((e) => e.partition === p.partition)!.offset, `partition ${p.partition} committed`);
  }
  const reader = kafka.consumer({ groupId: 'kjs-ctp-reader', maxWaitTimeInMs: 100 });
  try {
    const { values } = await consumeAll(reader, output, (v) => v.length >= 50);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual([...values].sort(), Array.from({ length: 50 }, (_, i) => `N${i}`).sort());
  } finally {
    await reader.disconnect();
  }
});

for (const mechanism of ['plain', 'scram-sha-256'] as const) {
  test(`kafkajs: SASL ${mechanism} authenticates configured users and rejects wrong passwords`, async () => {
    const secured = await startTestBroker({
      sasl: { mechanisms: ['PLAIN', 'SCRAM-SHA-256'], users: { alice: 'alice-secret' } },
    });
    try {
      const client = (password: string) =>
        new Kafka({
          clientId: 'kafkajs-sasl',
          brokers: [secured.bootstrap],
          logLevel: logLevel.NOTHING,
          sasl:
            mechanism === 'plain'
              ? { mechanism: 'plain', username: 'alice', password }
              : { mechanism: 'scram-sha-256', username: 'alice', password },
          retry: { retries: 0 },
        });
      const producer = client('alice-secret').producer();
      await producer.connect();
      await producer.send({ topic: `sasl-${mechanism}`, messages: [{ value: 'authenticated' }] });
      await producer.disconnect();
      assert.equal(secured.log.describeTopic(`sasl-${mechanism}`)?.partitions[0]?.highWatermark, 1n);
      const intruder = client('wrong').producer();
      await assert.rejects(intruder.connect(), /SASL|authentication/i);
    } finally {
      await secured.close();
    }
  });
}
