import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { embeddedClient, type Log, openLog } from '../../src/log/index.ts';
import { topicsRoutes } from '../../src/server/topics-routes.ts';

// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field by the assertions
type Json = Record<string, any>;

let dir: string;
let log: Log;
let app: FastifyInstance;
let base: string;

const get = async (p: string) => {
  const res = await fetch(base + p);
  return { status: res.status, body: (await res.json()) as Json };
};

/** Sends the path as is: fetch would resolve "..", "%2E%2E" and "." segments before sending. */
const rawGet = (p: string) =>
  new Promise<{ status: number; body: Json }>((resolve, reject) => {
    const req = http.request(`${base}/`, { path: p }, (res) => {
      let text = '';
      res.on('data', (c) => {
        text += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end();
  });

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-topics-routes-'));
  log = await openLog({ dataDir: path.join(dir, 'log'), autoCreateTopics: false });
  await log.createTopic('orders', { partitions: 2, config: { 'retention.ms': 3_600_000 } });
  const client = embeddedClient(log);
  const producer = client.producer();
  const records = [];
  for (let i = 0; i < 30; i++)
    records.push({
      topic: 'orders',
      partition: i % 2,
      key: `user-${i}`,
      value: JSON.stringify({ id: i, amount: i * 10 }),
      headers: [['source', Buffer.from('test')]] as [string, Buffer][],
      timestamp: 1_700_000_000_000 + i,
    });
  records.push({ topic: 'orders', partition: 0, key: null, value: Buffer.from([0, 1, 2, 255]) } as never);
  await producer.send(records);
  await producer.close();
  // a group that has read 5 of partition 0 and all of partition 1
  const consumer = client.consumer({ groupId: 'billing' });
  await consumer.commit([
    { topic: 'orders', partition: 0, offset: 5n },
    { topic: 'orders', partition: 1, offset: 15n },
  ]);
  await consumer.close();
  app = Fastify();
  await app.register(topicsRoutes, { log, sampleIntervalMs: 20 });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
});

after(async () => {
  await app.close();
  await log.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('GET /api/v1/topics lists topics with partitions, offsets and sizes', async () => {
  const { status, body } = await get('/api/v1/topics');
  assert.equal(status, 200);
  const orders = body.topics.find((t: { name: string }) => t.name === 'orders');
  assert.ok(orders, 'orders is listed');
  assert.equal(orders.partitions, 2);
  assert.equal(orders.messages, 31);
  assert.ok(orders.sizeBytes > 0);
  assert.deepEqual(
    orders.offsets.map((o: { highWatermark: number }) => o.highWatermark),
    [16, 15],
  );
});

test('GET /api/v1/topics/:name describes partitions and config', async () => {
  const { status, body } = await get('/api/v1/topics/orders');
  assert.equal(status, 200);
  assert.equal(body.partitions.length, 2);
  assert.deepEqual(
    { ...body.partitions[0], sizeBytes: 0, segments: 0 },
    {
      partition: 0,
      logStartOffset: 0,
      highWatermark: 16,
      lastStableOffset: 16,
      messages: 16,
      sizeBytes: 0,
      segments: 0,
    },
  );
  assert.equal(body.config['retention.ms'], 3_600_000);
  assert.equal(body.overrides['retention.ms'], 3_600_000);
});

test('GET /api/v1/topics/:name/messages browses decoded records from an offset', async () => {
  const { status, body } = await get('/api/v1/topics/orders/messages?partition=1&offset=3&limit=4');
  assert.equal(status, 200);
  assert.deepEqual(
    body.messages.map((m: { offset: number }) => m.offset),
    [3, 4, 5, 6],
  );
  const m = body.messages[0];
  // partition 1 holds the odd i: offset 3 is i = 7
  assert.deepEqual(m.key, { text: 'user-7' });
  assert.deepEqual(JSON.parse(m.value.text), { id: 7, amount: 70 });
  assert.equal(m.timestamp, 1_700_000_000_007);
  assert.deepEqual(m.headers, [{ key: 'source', value: { text: 'test' } }]);
  assert.equal(body.nextOffset, 7);
});

test('messages without an offset show the newest; binary values come back as base64', async () => {
  const { body } = await get('/api/v1/topics/orders/messages?partition=0&limit=2');
  assert.deepEqual(
    body.messages.map((m: { offset: number }) => m.offset),
    [14, 15],
  );
  const last = body.messages[1];
  assert.equal(last.key, null);
  assert.deepEqual(last.value, { base64: Buffer.from([0, 1, 2, 255]).toString('base64') });
});

test('an offset past the end returns no messages; below the log start clamps to it', async () => {
  const past = await get('/api/v1/topics/orders/messages?partition=0&offset=999');
  assert.equal(past.status, 200);
  assert.deepEqual(past.body.messages, []);
  const all = await get('/api/v1/topics/orders/messages?partition=0&offset=0&limit=1000');
  assert.equal(all.body.messages.length, 16);
});

test('bad names and parameters get precise 400s; unknown topics 404', async () => {
  const cases: [string, number, RegExp][] = [
    ['/api/v1/topics/..', 400, /name: cannot be "\." or "\.\."/],
    ['/api/v1/topics/%2E%2E/messages', 400, /name: cannot be "\." or "\.\."/],
    ['/api/v1/topics/%2E%2E%2Fetc', 400, /name: cannot be "\." or "\.\."/],
    ['/api/v1/topics/orders/nope', 404, /no route/],
    ['/api/v1/topics/a%20b/messages', 400, /name: expected only ASCII letters/],
    [`/api/v1/topics/${'x'.repeat(250)}`, 400, /name: expected at most 249/],
    ['/api/v1/topics/missing', 404, /topic "missing" does not exist/],
    ['/api/v1/topics/orders/messages?partition=-1', 400, /query\.partition: expected a partition number/],
    [
      '/api/v1/topics/orders/messages?partition=7',
      400,
      /query\.partition: expected a partition of orders between 0 and 1, got 7/,
    ],
    ['/api/v1/topics/orders/messages?offset=abc', 400, /query\.offset: expected an offset/],
    ['/api/v1/topics/orders/messages?limit=0', 400, /query\.limit: expected a limit between 1 and 1000/],
    ['/api/v1/topics/orders/messages?limit=5000', 400, /query\.limit/],
    ['/api/v1/topics/orders/messages?bogus=1', 400, /query: Unrecognized key/i],
  ];
  for (const [url, status, message] of cases) {
    const r = await rawGet(url);
    assert.equal(r.status, status, url);
    assert.match(r.body.message, message, url);
  }
});

test('GET /api/v1/groups reports members, committed offsets and lag', async () => {
  const { status, body } = await get('/api/v1/groups');
  assert.equal(status, 200);
  const g = body.groups.find((x: { groupId: string }) => x.groupId === 'billing');
  assert.ok(g);
  assert.equal(g.lag, 11);
  const p0 = g.offsets.find((o: { partition: number }) => o.partition === 0);
  assert.deepEqual(p0, { topic: 'orders', partition: 0, offset: 5, highWatermark: 16, lag: 11 });
  assert.deepEqual(g.members, []);
});

test('GET /api/v1/overview totals the log and samples throughput and lag over time', async () => {
  const first = await get('/api/v1/overview');
  assert.equal(first.status, 200);
  assert.equal(first.body.topics, 1);
  assert.equal(first.body.partitions, 2);
  assert.equal(first.body.messages, 31);
  assert.equal(first.body.groups, 1);
  assert.ok(first.body.bytes > 0);
  // produce more and wait for a sample that saw it
  const producer = embeddedClient(log).producer();
  await producer.send(Array.from({ length: 20 }, (_, i) => ({ topic: 'orders', partition: 0, value: `more-${i}` })));
  await producer.close();
  let body = first.body;
  for (let i = 0; i < 200; i++) {
    body = (await get('/api/v1/overview')).body;
    if (body.throughput.some((s: { messagesPerSecond: number }) => s.messagesPerSecond > 0)) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const busy = body.throughput.find((s: { messagesPerSecond: number }) => s.messagesPerSecond > 0);
  assert.ok(busy, 'a sample saw the new messages');
  // the per-topic rate of the only topic is the total rate
  assert.equal(busy.topics.orders, busy.messagesPerSecond);
  const lastLag = body.lag.at(-1);
  assert.equal(lastLag.groups.billing, 31);
  assert.equal(body.throughput.length, body.lag.length);
});

test('the sampler keeps only the last maxSamples samples', async () => {
  const small = Fastify();
  await small.register(topicsRoutes, { log, sampleIntervalMs: 5, maxSamples: 3 });
  try {
    const seen: number[] = [];
    for (let i = 0; i < 100 && seen.filter((n) => n === 3).length < 5; i++) {
      const r = await small.inject({ method: 'GET', url: '/api/v1/overview' });
      seen.push(r.json().throughput.length);
      await new Promise((res) => setTimeout(res, 10));
    }
    assert.ok(seen.includes(3), `the window filled: ${seen}`);
    assert.ok(
      seen.every((n) => n <= 3),
      `never more than 3 samples: ${seen}`,
    );
  } finally {
    await small.close();
  }
});
