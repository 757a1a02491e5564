import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Admin, Consumer, Producer, stringDeserializers, stringSerializers } from '@platformatic/kafka';
import { startTestBroker, type TestBroker, waitFor } from './helpers.ts';

let t: TestBroker;

before(async () => {
  t = await startTestBroker();
});

after(async () => {
  await t.close();
});

function consumer(groupId: string, isolationLevel = 1): Consumer<string, string, string, string> {
  return new Consumer({
    groupId,
    clientId: `pk-${groupId}`,
    bootstrapBrokers: [t.bootstrap],
    deserializers: stringDeserializers,
    maxWaitTime: 100,
    isolationLevel,
    sessionTimeout: 10_000,
    heartbeatInterval: 500,
  });
}

async function collect(
  c: Consumer<string, string, string, string>,
  topic: string,
  until: (values: string[]) => boolean,
): Promise<{ values: string[]; partitions: number[] }> {
  const values: string[] = [];
  const partitions: number[] = [];
  const stream = await c.consume({ topics: [topic], mode: 'earliest', autocommit: 100 });
  stream.on('data', (m) => {
    values.push(m.value);
    partitions.push(m.partition);
  });
  await waitFor(`messages from ${topic}`, () => until(values), 40_000);
  await stream.close();
  return { values, partitions };
}

test('@platformatic/kafka: produce and consume', async () => {
  const admin = new Admin({ clientId: 'pk-admin', bootstrapBrokers: [t.bootstrap] });
  await admin.createTopics({ topics: ['pk-plain'], partitions: 2, replicas: 1 });
  const md = await admin.metadata({ topics: ['pk-plain'] });
  assert.equal(md.topics.get('pk-plain')?.partitionsCount, 2);
  await admin.close();
  const producer = new Producer({ clientId: 'pk-p', bootstrapBrokers: [t.bootstrap], serializers: stringSerializers });
  const sent = Array.from({ length: 200 }, (_, i) => `m${i}`);
  for (let i = 0; i < sent.length; i += 50) {
    await producer.send({
      messages: sent.slice(i, i + 50).map((value, j) => ({ topic: 'pk-plain', key: `k${j}`, value })),
    });
  }
  await producer.close();
  const c = consumer('pk-plain-group');
  try {
    const { values } = await collect(c, 'pk-plain', (v) => v.length >= sent.length);
    assert.deepEqual([...values].sort(), [...sent].sort());
  } finally {
    await c.close(true);
  }
});

test('@platformatic/kafka: two consumers in a group split four partitions', async () => {
  const admin = new Admin({ clientId: 'pk-admin2', bootstrapBrokers: [t.bootstrap] });
  await admin.createTopics({ topics: ['pk-group'], partitions: 4, replicas: 1 });
  await admin.close();
  const producer = new Producer({ clientId: 'pk-p2', bootstrapBrokers: [t.bootstrap], serializers: stringSerializers });
  const sent = Array.from({ length: 400 }, (_, i) => `g${i}`);
  await producer.send({ messages: sent.map((value, i) => ({ topic: 'pk-group', key: `key${i}`, value })) });
  await producer.close();
  const a = consumer('pk-two');
  const b = consumer('pk-two');
  const seen: { member: string; value: string; partition: number }[] = [];
  try {
    const sa = await a.consume({ topics: ['pk-group'], mode: 'earliest', autocommit: 100 });
    const sb = await b.consume({ topics: ['pk-group'], mode: 'earliest', autocommit: 100 });
    sa.on('data', (m) => seen.push({ member: 'a', value: m.value, partition: m.partition }));
    sb.on('data', (m) => seen.push({ member: 'b', value: m.value, partition: m.partition }));
    await waitFor('every message', () => new Set(seen.map((s) => s.value)).size >= sent.length, 40_000);
    await waitFor('both members assigned', () => a.assignments !== null && b.assignments !== null, 20_000);
    const owned = (c: typeof a) => (c.assignments ?? []).flatMap((x) => x.partitions.map((p) => `${x.topic}/${p}`));
    const ownedA = owned(a);
    const ownedB = owned(b);
    assert.equal(ownedA.length + ownedB.length, 4, `assignments ${ownedA} + ${ownedB}`);
    assert.ok(
      ownedA.every((p) => !ownedB.includes(p)),
      'no partition is assigned twice',
    );
    await sa.close();
    await sb.close();
  } finally {
    await a.close(true);
    await b.close(true);
  }
  assert.deepEqual([...new Set(seen.map((s) => s.value))].sort(), [...sent].sort());
});

test('@platformatic/kafka: transactions commit and abort', async () => {
  const producer = new Producer({
    clientId: 'pk-tx',
    bootstrapBrokers: [t.bootstrap],
    serializers: stringSerializers,
    transactionalId: 'pk-tx-1',
    idempotent: true,
    autocreateTopics: true,
  });
  const committed: string[] = [];
  for (const [n, outcome] of [
    [1, 'commit'],
    [2, 'abort'],
    [3, 'commit'],
  ] as const) {
    const tx = await producer.beginTransaction();
    const values = Array.from({ length: 4 }, (_, i) => `${outcome}-${n}-${i}`);
    await tx.send({ messages: values.map((value) => ({ topic: 'pk-txn', value })) });
    if (outcome === 'commit') {
      await tx.commit();
      committed.push(...values);
    } else {
      await tx.abort();
    }
  }
  await producer.close();
  const plain = new Producer({ clientId: 'pk-end', bootstrapBrokers: [t.bootstrap], serializers: stringSerializers });
  await plain.send({ messages: [{ topic: 'pk-txn', value: 'end' }] });
  await plain.close();
  const c = consumer('pk-txn-reader', 1);
  try {
    const { values } = await collect(c, 'pk-txn', (v) => v.includes('end'));
    assert.deepEqual(values, [...committed, 'end']);
  } finally {
    await c.close(true);
  }
});
