/** Broker APIs through the bare protocol, including versions the interop clients do not exercise. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { KafkaBroker } from '../../src/kafka/index.ts';
import { quietLogger, startKafkaBroker } from '../../src/kafka/index.ts';
import { decodeRecordBatches, encodeRecordBatch, type Log, openLog } from '../../src/log/index.ts';
import { RawClient } from './raw-client.ts';

let log: Log;
let broker: KafkaBroker;
let c: RawClient;
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kafka-apis-test-'));

before(async () => {
  log = await openLog({ dataDir, autoCreateTopics: false });
  broker = await startKafkaBroker({ log, port: 0, logger: quietLogger, autoCreateTopics: false });
  c = await RawClient.connect(broker.port);
});

after(async () => {
  c.close();
  await broker.close();
  await log.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

// biome-ignore lint/suspicious/noExplicitAny: decoded responses are checked field by field
type Any = any;

test('topics: create with configs, validate only, describe configs, add partitions, delete by name and id', async () => {
  const created = await c.request<Any>(19, 7, {
    topics: [
      {
        name: 'apis-a',
        numPartitions: 2,
        replicationFactor: 1,
        assignments: [],
        configs: [
          { name: 'retention.ms', value: '60000' },
          { name: 'cleanup.policy', value: 'compact' },
        ],
      },
      { name: 'apis-b', numPartitions: -1, replicationFactor: -1, assignments: [], configs: [] },
      {
        name: 'apis-c',
        numPartitions: 1,
        replicationFactor: 1,
        assignments: [],
        configs: [{ name: 'retention.ms', value: 'soon' }],
      },
    ],
    timeoutMs: 1000,
    validateOnly: false,
  });
  assert.equal(created.topics[0].errorCode, 0);
  assert.equal(created.topics[0].numPartitions, 2);
  assert.match(created.topics[0].topicId, /^[0-9a-f-]{36}$/);
  assert.equal(created.topics[1].errorCode, 0);
  assert.equal(created.topics[1].numPartitions, 1, 'numPartitions -1 takes the default');
  assert.equal(created.topics[2].errorCode, 40, 'INVALID_CONFIG');
  assert.match(created.topics[2].errorMessage, /retention\.ms/);

  const again = await c.request<Any>(19, 4, {
    topics: [{ name: 'apis-a', numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }],
    timeoutMs: 1000,
    validateOnly: true,
  });
  assert.equal(again.topics[0].errorCode, 36, 'TOPIC_ALREADY_EXISTS');

  const configs = await c.request<Any>(32, 4, {
    resources: [
      { resourceType: 2, resourceName: 'apis-a', configurationKeys: ['retention.ms', 'cleanup.policy'] },
      { resourceType: 2, resourceName: 'missing', configurationKeys: null },
    ],
    includeSynonyms: false,
    includeDocumentation: false,
  });
  const entries = Object.fromEntries(configs.results[0].configs.map((e: Any) => [e.name, e.value]));
  assert.deepEqual(entries, { 'retention.ms': '60000', 'cleanup.policy': 'compact' });
  assert.equal(configs.results[1].errorCode, 3);

  const grown = await c.request<Any>(37, 3, {
    topics: [
      { name: 'apis-a', count: 4, assignments: null },
      { name: 'apis-b', count: 1, assignments: null },
    ],
    timeoutMs: 1000,
    validateOnly: false,
  });
  assert.equal(grown.results[0].errorCode, 0);
  assert.equal(grown.results[1].errorCode, 37, 'INVALID_PARTITIONS: cannot shrink');
  assert.equal(log.describeTopic('apis-a')?.partitions.length, 4);

  const topicId = log.describeTopic('apis-b')!.topicId;
  const byId = await c.request<Any>(20, 6, { topics: [{ name: null, topicId }], timeoutMs: 1000 });
  assert.equal(byId.responses[0].errorCode, 0);
  assert.equal(byId.responses[0].name, 'apis-b');
  const byName = await c.request<Any>(20, 1, { topicNames: ['apis-a', 'never-existed'], timeoutMs: 1000 });
  assert.equal(byName.responses[0].errorCode, 0);
  assert.equal(byName.responses[1].errorCode, 3);
  assert.equal(log.describeTopic('apis-a'), undefined);
});

test('metadata without auto-creation reports unknown topics; produce to them is refused', async () => {
  const md = await c.request<Any>(3, 9, {
    topics: [{ name: 'not-there' }],
    allowAutoTopicCreation: true,
    includeTopicAuthorizedOperations: false,
  });
  assert.equal(md.topics[0].errorCode, 3);
  assert.equal(log.describeTopic('not-there'), undefined);
  const produced = await c.request<Any>(0, 8, {
    transactionalId: null,
    acks: 1,
    timeoutMs: 1000,
    topicData: [{ name: 'not-there', partitionData: [{ index: 0, records: encodeRecordBatch([{ value: 'x' }]) }] }],
  });
  assert.equal(produced.responses[0].partitionResponses[0].errorCode, 3);
  assert.equal(log.describeTopic('not-there'), undefined);
});

test('list offsets: earliest, latest and by timestamp', async () => {
  await log.createTopic('apis-times', { partitions: 1 });
  for (const ts of [1000, 2000, 3000]) {
    await log.append('apis-times', 0, encodeRecordBatch([{ value: `at-${ts}`, timestamp: ts }]));
  }
  const ask = async (timestamp: bigint) => {
    const res = await c.request<Any>(2, 5, {
      replicaId: -1,
      isolationLevel: 0,
      topics: [{ name: 'apis-times', partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp }] }],
    });
    return res.topics[0].partitions[0];
  };
  assert.equal((await ask(-2n)).offset, 0n);
  assert.equal((await ask(-1n)).offset, 3n);
  assert.equal((await ask(1500n)).offset, 1n);
  assert.equal((await ask(9999n)).offset, -1n);
});

test('pipelined requests are answered in order', async () => {
  const [a, b, d] = await Promise.all([
    c.request<Any>(18, 2, {}),
    c.request<Any>(3, 1, { topics: null }),
    c.request<Any>(10, 1, { key: 'g', keyType: 0 }),
  ]);
  assert.equal(a.errorCode, 0);
  assert.ok(Array.isArray(b.brokers));
  assert.equal(d.port, broker.port);
});

test('acks=0 produces get no response and later responses stay matched to their requests', async () => {
  await log.createTopic('apis-acks0', { partitions: 1 });
  for (let i = 0; i < 3; i++) {
    c.sendOnly(0, 7, {
      transactionalId: null,
      acks: 0,
      timeoutMs: 1000,
      topicData: [
        { name: 'apis-acks0', partitionData: [{ index: 0, records: encodeRecordBatch([{ value: `${i}` }]) }] },
      ],
    });
  }
  const offsets = await c.request<Any>(2, 5, {
    replicaId: -1,
    isolationLevel: 0,
    topics: [{ name: 'apis-acks0', partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp: -1n }] }],
  });
  assert.equal(offsets.topics[0].partitions[0].offset, 3n, 'all three were appended before the next request');
});

test('a fetch that hits a partition error answers without waiting out maxWaitMs', { timeout: 30_000 }, async () => {
  await log.createTopic('apis-quiet', { partitions: 1 });
  const res = await c.request<Any>(1, 11, {
    maxWaitMs: 600_000,
    minBytes: 1,
    maxBytes: 1 << 20,
    isolationLevel: 0,
    topics: [
      {
        topic: 'apis-quiet',
        partitions: [
          { partition: 0, fetchOffset: 0n, partitionMaxBytes: 1 << 20 },
          { partition: 7, fetchOffset: 0n, partitionMaxBytes: 1 << 20 },
        ],
      },
    ],
    forgottenTopicsData: [],
    rackId: '',
  });
  assert.deepEqual(
    res.responses[0].partitions.map((p: Any) => [p.partitionIndex, p.errorCode]),
    [
      [0, 0],
      [7, 3],
    ],
  );
});

test('find coordinator: single key (v0-3) and batched keys (v4+)', async () => {
  const one = await c.request<Any>(10, 0, { key: 'group-1' });
  assert.equal(one.errorCode, 0);
  assert.equal(one.port, broker.port);
  const many = await c.request<Any>(10, 4, { keyType: 1, coordinatorKeys: ['tx-1', 'tx-2'] });
  assert.deepEqual(
    many.coordinators.map((k: Any) => [k.key, k.errorCode, k.port]),
    [
      ['tx-1', 0, broker.port],
      ['tx-2', 0, broker.port],
    ],
  );
});

test('a consumer group through the classic protocol, with offsets fetched singly and batched', async () => {
  await log.createTopic('apis-group', { partitions: 2 });
  const join = (memberId: string) =>
    c.request<Any>(11, 5, {
      groupId: 'apis-g',
      sessionTimeoutMs: 10_000,
      rebalanceTimeoutMs: 10_000,
      memberId,
      groupInstanceId: null,
      protocolType: 'consumer',
      protocols: [{ name: 'range', metadata: Buffer.from('meta') }],
    });
  const first = await join('');
  assert.equal(first.errorCode, 79, 'MEMBER_ID_REQUIRED with the id to rejoin with');
  const memberId = first.memberId;
  assert.ok(memberId.length > 0);
  const joined = await join(memberId);
  assert.equal(joined.errorCode, 0);
  assert.equal(joined.leader, memberId);
  assert.deepEqual(
    joined.members.map((m: Any) => m.metadata.toString()),
    ['meta'],
  );
  const generationId = joined.generationId;
  const synced = await c.request<Any>(14, 3, {
    groupId: 'apis-g',
    generationId,
    memberId,
    groupInstanceId: null,
    assignments: [{ memberId, assignment: Buffer.from('assigned') }],
  });
  assert.equal(synced.errorCode, 0);
  assert.equal(synced.assignment.toString(), 'assigned');
  const beat = await c.request<Any>(12, 3, { groupId: 'apis-g', generationId, memberId, groupInstanceId: null });
  assert.equal(beat.errorCode, 0);
  const stale = await c.request<Any>(12, 3, {
    groupId: 'apis-g',
    generationId: generationId + 5,
    memberId,
    groupInstanceId: null,
  });
  assert.equal(stale.errorCode, 22, 'ILLEGAL_GENERATION');

  const committed = await c.request<Any>(8, 7, {
    groupId: 'apis-g',
    generationIdOrMemberEpoch: generationId,
    memberId,
    groupInstanceId: null,
    topics: [
      {
        name: 'apis-group',
        partitions: [{ partitionIndex: 1, committedOffset: 42n, committedLeaderEpoch: -1, committedMetadata: 'm' }],
      },
    ],
  });
  assert.equal(committed.topics[0].partitions[0].errorCode, 0);
  const single = await c.request<Any>(9, 5, {
    groupId: 'apis-g',
    topics: [{ name: 'apis-group', partitionIndexes: [0, 1] }],
  });
  assert.deepEqual(
    single.topics[0].partitions.map((p: Any) => [p.partitionIndex, p.committedOffset]),
    [
      [0, -1n],
      [1, 42n],
    ],
  );
  const batched = await c.request<Any>(9, 8, {
    groups: [
      { groupId: 'apis-g', topics: null },
      { groupId: 'apis-nobody', topics: [{ name: 'apis-group', partitionIndexes: [0] }] },
    ],
    requireStable: false,
  });
  assert.equal(batched.groups[0].topics[0].partitions[0].committedOffset, 42n);
  assert.equal(batched.groups[1].topics[0].partitions[0].committedOffset, -1n);

  const described = await c.request<Any>(15, 4, { groups: ['apis-g'], includeAuthorizedOperations: false });
  assert.equal(described.groups[0].groupState, 'Stable');
  assert.equal(described.groups[0].protocolData, 'range');
  const listed = await c.request<Any>(16, 4, { statesFilter: ['stable'] });
  assert.ok(listed.groups.some((g: Any) => g.groupId === 'apis-g'));

  const left = await c.request<Any>(13, 4, {
    groupId: 'apis-g',
    members: [{ memberId, groupInstanceId: null, reason: null }],
  });
  assert.equal(left.members[0].errorCode, 0);
  const deleted = await c.request<Any>(42, 2, { groupsNames: ['apis-g'] });
  assert.equal(deleted.results[0].errorCode, 0);
});

test('a transaction through InitProducerId, batched AddPartitionsToTxn (v4), Produce and EndTxn', async () => {
  await log.createTopic('apis-txn', { partitions: 1 });
  const init = await c.request<Any>(22, 4, {
    transactionalId: 'apis-tx',
    transactionTimeoutMs: 30_000,
    producerId: -1n,
    producerEpoch: -1,
  });
  assert.equal(init.errorCode, 0);
  const producerId = init.producerId;
  const producerEpoch = init.producerEpoch;
  const added = await c.request<Any>(24, 4, {
    transactions: [
      {
        transactionalId: 'apis-tx',
        producerId,
        producerEpoch,
        verifyOnly: false,
        topics: [{ name: 'apis-txn', partitions: [0] }],
      },
    ],
  });
  assert.equal(added.resultsByTransaction[0].topicResults[0].resultsByPartition[0].partitionErrorCode, 0);
  const batch = encodeRecordBatch([{ value: 'in-txn' }], {
    producerId,
    producerEpoch,
    baseSequence: 0,
    transactional: true,
  });
  const produced = await c.request<Any>(0, 7, {
    transactionalId: 'apis-tx',
    acks: -1,
    timeoutMs: 1000,
    topicData: [{ name: 'apis-txn', partitionData: [{ index: 0, records: batch }] }],
  });
  assert.equal(produced.responses[0].partitionResponses[0].errorCode, 0);
  const fetchCommitted = () =>
    c.request<Any>(1, 11, {
      maxWaitMs: 0,
      minBytes: 1,
      maxBytes: 1 << 20,
      isolationLevel: 1,
      topics: [{ topic: 'apis-txn', partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 1 << 20 }] }],
      forgottenTopicsData: [],
      rackId: '',
    });
  const before = await fetchCommitted();
  assert.equal(before.responses[0].partitions[0].lastStableOffset, 0n, 'the open transaction holds the LSO');
  const ended = await c.request<Any>(26, 3, { transactionalId: 'apis-tx', producerId, producerEpoch, committed: true });
  assert.equal(ended.errorCode, 0);
  const afterCommit = await fetchCommitted();
  const p = afterCommit.responses[0].partitions[0];
  assert.equal(p.lastStableOffset, 2n, 'record + commit marker');
  const batches = decodeRecordBatches(p.records, { verifyCrc: true });
  assert.equal(batches[0]?.records[0]?.value?.toString(), 'in-txn');
  assert.ok(batches[1]?.isControl);
  const fenced = await c.request<Any>(26, 3, {
    transactionalId: 'apis-tx',
    producerId,
    producerEpoch: producerEpoch - 1,
    committed: true,
  });
  assert.notEqual(fenced.errorCode, 0, 'an old epoch cannot end the transaction');
});
