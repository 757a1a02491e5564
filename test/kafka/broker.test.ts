import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import type { BrokerLogger, KafkaBroker } from '../../src/kafka/index.ts';
import { startKafkaBroker } from '../../src/kafka/index.ts';
import type { LogService } from '../../src/log/index.ts';
import { decodeRecordBatches, encodeRecordBatch, openLog } from '../../src/log/index.ts';
import { RawClient } from './raw-client.ts';

const warnings: string[] = [];
const logger: BrokerLogger = {
  info() {},
  warn(_obj, msg) {
    warnings.push(msg);
  },
  error(_obj, msg) {
    warnings.push(msg);
  },
};

let log: LogService;
let broker: KafkaBroker;
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kafka-broker-test-'));

before(async () => {
  log = await openLog({ dataDir });
  broker = await startKafkaBroker({
    log,
    port: 0,
    maxRequestBytes: 1 << 20,
    logger,
    sasl: { mechanisms: ['PLAIN', 'SCRAM-SHA-256'], users: { alice: 'secret' }, allowAnonymous: true },
  });
});

after(async () => {
  await broker.close();
  await log.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

interface ApiVersionsBody {
  errorCode: number;
  apiKeys: { apiKey: number; minVersion: number; maxVersion: number }[];
}

test('ApiVersions advertises ranges every supported client can use', async () => {
  const c = await RawClient.connect(broker.port);
  const res = await c.request<ApiVersionsBody>(18, 3, { clientSoftwareName: 'test', clientSoftwareVersion: '1' });
  assert.equal(res.errorCode, 0);
  const range = (key: number) => res.apiKeys.find((k) => k.apiKey === key)!;
  const contains = (key: number, v: number) => range(key).minVersion <= v && v <= range(key).maxVersion;
  // librdkafka 2.0.2 feature checks
  for (const v of [0, 3, 7]) assert.ok(contains(0, v), `Produce v${v}`);
  for (const v of [4, 10]) assert.ok(contains(1, v), `Fetch v${v}`);
  assert.ok(contains(10, 0) && contains(22, 0));
  // kafkajs' non-flexible maxima and @platformatic/kafka's flexible versions
  for (const [key, v] of [
    [0, 7],
    [1, 11],
    [11, 5],
    [0, 9],
    [1, 12],
    [24, 4],
  ] as const) {
    assert.ok(contains(key, v), `api ${key} v${v}`);
  }
  assert.equal(range(1).maxVersion, 12);
  // an ApiVersions version newer than ours gets v0 + UNSUPPORTED_VERSION, not a closed connection
  const frame = Buffer.from([0, 0, 0, 10, 0, 18, 0, 99, 0, 0, 0, 42, 0, 0]);
  const tooNew = await c.sendRaw(frame);
  assert.equal(tooNew.readInt32BE(0), 42, 'correlation id, response header v0');
  assert.equal(tooNew.readInt16BE(4), 35, 'UNSUPPORTED_VERSION');
  c.close();
});

test('produce, fetch and list offsets round-trip record batches byte for byte', async () => {
  const c = await RawClient.connect(broker.port);
  const md = await c.request<{ topics: { name: string; errorCode: number; partitions: unknown[] }[] }>(3, 12, {
    topics: [{ name: 'orders', topicId: '00000000-0000-0000-0000-000000000000' }],
    allowAutoTopicCreation: true,
    includeTopicAuthorizedOperations: false,
  });
  assert.equal(md.topics[0]?.errorCode, 0);
  assert.equal(md.topics[0]?.partitions.length, 1);
  const batch = encodeRecordBatch([{ key: 'k1', value: 'v1' }, { value: 'v2' }], { compression: 'gzip' });
  const produced = await c.request<{
    responses: { partitionResponses: { errorCode: number; baseOffset: bigint }[] }[];
  }>(0, 9, {
    transactionalId: null,
    acks: -1,
    timeoutMs: 1000,
    topicData: [{ name: 'orders', partitionData: [{ index: 0, records: batch }] }],
  });
  assert.equal(produced.responses[0]?.partitionResponses[0]?.errorCode, 0);
  assert.equal(produced.responses[0]?.partitionResponses[0]?.baseOffset, 0n);
  for (const version of [4, 11, 12]) {
    const fetched = await c.request<{
      responses: { partitions: { errorCode: number; highWatermark: bigint; records: Buffer | null }[] }[];
    }>(1, version, {
      maxWaitMs: 0,
      minBytes: 1,
      maxBytes: 1 << 20,
      isolationLevel: 1,
      topics: [{ topic: 'orders', partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 1 << 20 }] }],
      forgottenTopicsData: [],
      rackId: '',
    });
    const p = fetched.responses[0]?.partitions[0];
    assert.equal(p?.errorCode, 0);
    assert.equal(p?.highWatermark, 2n);
    const decoded = decodeRecordBatches(p!.records!, { verifyCrc: true });
    assert.deepEqual(
      decoded.flatMap((b) => b.records.map((r) => r.value?.toString())),
      ['v1', 'v2'],
    );
  }
  const offsets = await c.request<{ topics: { partitions: { offset: bigint; errorCode: number }[] }[] }>(2, 7, {
    replicaId: -1,
    isolationLevel: 0,
    topics: [{ name: 'orders', partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp: -1n }] }],
  });
  assert.equal(offsets.topics[0]?.partitions[0]?.offset, 2n);
  c.close();
});

test('fetch long-polls until data arrives', async () => {
  await log.createTopic('poll', { partitions: 1 });
  const c = await RawClient.connect(broker.port);
  const pending = c.request<{ responses: { partitions: { records: Buffer | null }[] }[] }>(1, 11, {
    maxWaitMs: 10_000,
    minBytes: 1,
    maxBytes: 1 << 20,
    isolationLevel: 0,
    topics: [{ topic: 'poll', partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 1 << 20 }] }],
    forgottenTopicsData: [],
    rackId: '',
  });
  await log.append('poll', 0, encodeRecordBatch([{ value: 'late' }]));
  const res = await pending;
  assert.ok((res.responses[0]?.partitions[0]?.records?.length ?? 0) > 0);
  c.close();
});

test('bad input gets an error code: corrupt CRC, invalid topic names', async () => {
  const c = await RawClient.connect(broker.port);
  await log.createTopic('crc', { partitions: 1 });
  const batch = Buffer.from(encodeRecordBatch([{ value: 'x' }]));
  batch[batch.length - 1]! ^= 0xff;
  const produced = await c.request<{ responses: { partitionResponses: { errorCode: number }[] }[] }>(0, 7, {
    transactionalId: null,
    acks: 1,
    timeoutMs: 1000,
    topicData: [
      { name: 'crc', partitionData: [{ index: 0, records: batch }] },
      { name: 'bad/name', partitionData: [{ index: 0, records: encodeRecordBatch([{ value: 'x' }]) }] },
    ],
  });
  assert.equal(produced.responses[0]?.partitionResponses[0]?.errorCode, 2);
  assert.equal(produced.responses[1]?.partitionResponses[0]?.errorCode, 17);
  const created = await c.request<{ topics: { errorCode: number }[] }>(19, 7, {
    topics: [{ name: '..', numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }],
    timeoutMs: 1000,
    validateOnly: false,
  });
  assert.equal(created.topics[0]?.errorCode, 17);
  const md = await c.request<{ topics: { errorCode: number }[] }>(3, 1, { topics: [{ name: 'no such topic!' }] });
  assert.equal(md.topics[0]?.errorCode, 17);
  c.close();
});

test('unknown api keys, unknown versions and oversize frames close the connection and are logged', async () => {
  const before = warnings.length;
  const published: unknown[] = [];
  const onReject = (m: unknown) => published.push(m);
  diagnostics.subscribe('tributary:kafka:error', onReject);
  for (const frame of [
    Buffer.from([0, 0, 0, 8, 0x7f, 0x7f, 0, 0, 0, 0, 0, 1]), // api key 32639
    Buffer.from([0, 0, 0, 8, 0, 3, 0, 99, 0, 0, 0, 1]), // Metadata v99
    Buffer.from([0x7f, 0, 0, 0]), // 2 GiB frame
    Buffer.from([0, 0, 0, 2, 0, 3]), // shorter than a header
  ]) {
    const c = await RawClient.connect(broker.port);
    c.socket.write(frame);
    await c.closedPromise;
  }
  assert.ok(warnings.length >= before + 4, 'each rejection is logged');
  diagnostics.unsubscribe('tributary:kafka:error', onReject);
  assert.equal(published.length, 4, 'and published on the diagnostics channel');
});

test('SASL: wrong credentials get SASL_AUTHENTICATION_FAILED, then the connection closes', async () => {
  const c = await RawClient.connect(broker.port);
  const hs = await c.request<{ errorCode: number; mechanisms: string[] }>(17, 1, { mechanism: 'PLAIN' });
  assert.equal(hs.errorCode, 0);
  assert.deepEqual(hs.mechanisms, ['PLAIN', 'SCRAM-SHA-256']);
  const auth = await c.request<{ errorCode: number }>(36, 2, { authBytes: Buffer.from('\0alice\0wrong') });
  assert.equal(auth.errorCode, 58);
  await c.closedPromise;
  const ok = await RawClient.connect(broker.port);
  await ok.request(17, 1, { mechanism: 'PLAIN' });
  const good = await ok.request<{ errorCode: number }>(36, 2, { authBytes: Buffer.from('\0alice\0secret') });
  assert.equal(good.errorCode, 0);
  ok.close();
});

test('SASL: SaslHandshake v0 switches to bare tokens (PLAIN), then requests proceed', async () => {
  const c = await RawClient.connect(broker.port);
  const hs = await c.request<{ errorCode: number }>(17, 0, { mechanism: 'PLAIN' });
  assert.equal(hs.errorCode, 0);
  const token = Buffer.from('\0alice\0secret');
  const frame = Buffer.alloc(4 + token.length);
  frame.writeInt32BE(token.length, 0);
  token.copy(frame, 4);
  const reply = await c.sendRaw(frame);
  assert.equal(reply.length, 0, 'an empty bare token: authenticated');
  const res = await c.request<ApiVersionsBody>(18, 3, { clientSoftwareName: 't', clientSoftwareVersion: '1' });
  assert.equal(res.errorCode, 0);
  c.close();
});

test('SASL required: requests before authentication close the connection', async () => {
  const strict = await startKafkaBroker({
    log,
    port: 0,
    logger,
    sasl: { mechanisms: ['SCRAM-SHA-256'], users: { bob: 'pw' } },
  });
  try {
    const c = await RawClient.connect(strict.port);
    const res = await c.request<ApiVersionsBody>(18, 3, { clientSoftwareName: 't', clientSoftwareVersion: '1' });
    assert.equal(res.errorCode, 0);
    await assert.rejects(c.request(3, 1, { topics: null }), /connection closed/);
  } finally {
    await strict.close();
  }
});

test('requests split at arbitrary points and pipelined are answered in order', async () => {
  const frames = Array.from({ length: 6 }, (_, i) => {
    const f = Buffer.alloc(4 + 10);
    f.writeInt32BE(10, 0);
    f.writeInt16BE(18, 4); // ApiVersions v1: header v1 with a null client id, empty body
    f.writeInt16BE(1, 6);
    f.writeInt32BE(100 + i, 8);
    f.writeInt16BE(-1, 12);
    return f;
  });
  const stream = Buffer.concat(frames);
  await fc.assert(
    fc.asyncProperty(
      fc.uniqueArray(fc.integer({ min: 1, max: stream.length - 1 }), { maxLength: 12 }),
      async (cuts) => {
        const c = await RawClient.connect(broker.port);
        const answers = frames.map(() => c.sendRaw(Buffer.alloc(0)));
        let from = 0;
        for (const cut of [...cuts].sort((a, b) => a - b)) {
          c.socket.write(stream.subarray(from, cut));
          from = cut;
          await new Promise((r) => setImmediate(r));
        }
        c.socket.write(stream.subarray(from));
        const got = await Promise.all(answers);
        assert.deepEqual(
          got.map((f) => f.readInt32BE(0)),
          frames.map((_, i) => 100 + i),
        );
        c.close();
      },
    ),
    { numRuns: 40 },
  );
});

test('fuzz: random and truncated frames never crash the broker', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(
        fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
        fc
          .tuple(
            fc.constantFrom(0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 17, 18, 19, 20, 22, 24, 32, 36, 37),
            fc.integer({ min: 0, max: 12 }),
            fc.uint8Array({ maxLength: 120 }),
          )
          .map(([key, version, body]) => {
            const frame = Buffer.alloc(4 + 8 + body.length);
            frame.writeInt32BE(8 + body.length, 0);
            frame.writeInt16BE(key, 4);
            frame.writeInt16BE(version, 6);
            frame.writeInt32BE(1, 8);
            Buffer.from(body).copy(frame, 12);
            return frame;
          }),
      ),
      async (bytes) => {
        const c = await RawClient.connect(broker.port);
        c.socket.write(bytes);
        await new Promise((r) => setTimeout(r, 2));
        c.close();
      },
    ),
    { numRuns: 150 },
  );
  const c = await RawClient.connect(broker.port);
  const res = await c.request<ApiVersionsBody>(18, 3, { clientSoftwareName: 't', clientSoftwareVersion: '1' });
  assert.equal(res.errorCode, 0);
  const md = await c.request<{ topics: { name: string }[] }>(3, 9, { topics: null, allowAutoTopicCreation: false });
  assert.ok(md.topics.some((t) => t.name === 'orders'));
  c.close();
});
