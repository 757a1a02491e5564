/**
 * The seed's end-to-end tests: one running platform (started once), exercised through its public interfaces:
 * the Kafka protocol (kafkajs, and the remote client of src/kafka for jobs and reads) and HTTP (Druid API,
 * Iceberg REST catalog, pipeline routes when the platform mounts them).
 */

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { remoteClient } from '../../src/kafka/index.ts';
import { createTable, loadTable, RestCatalog } from '../../src/lake/index.ts';
import type { LogClient } from '../../src/log/index.ts';
import { cepJob, PATTERN_FILE, readTopic, TOPICS } from '../../src/server/demo/index.ts';
import { type Platform, startPlatform } from '../../src/server/index.ts';
import { compileJobSpec, KafkaStreams } from '../../src/streams/index.ts';

let dir: string;
let platform: Platform;
let base: string;
let kafka: Kafka;
let producer: Producer;
let client: LogClient;
const jobs: KafkaStreams[] = [];

async function http(p: string, body?: unknown, method?: string): Promise<{ status: number; json: unknown }> {
  const r = await fetch(base + p, {
    method: method ?? (body === undefined ? 'GET' : 'POST'),
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let json: unknown = text;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: r.status, json };
}

async function until<T>(what: string, fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (ok(v)) return v;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}; last value: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function produce(topic: string, messages: { key: string; value: unknown; timestamp: number }[]): Promise<void> {
  for (let i = 0; i < messages.length; i += 500)
    await producer.send({
      topic,
      messages: messages.slice(i, i + 500).map((m) => ({
        key: m.key,
        value: typeof m.value === 'string' ? m.value : JSON.stringify(m.value),
        timestamp: String(m.timestamp),
      })),
    });
}

async function createTopics(...names: string[]): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: names.map((topic) => ({ topic, numPartitions: 1 })) });
  await admin.disconnect();
}

async function sql(query: string): Promise<Record<string, unknown>[]> {
  const r = await http('/druid/v2/sql', { query });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  return r.json as Record<string, unknown>[];
}

const T0 = Date.UTC(2026, 0, 5, 10, 0, 0);

describe('Tributary end to end (one server)', () => {
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-e2e-'));
    platform = await startPlatform({ dataDir: dir, kafkaPort: 0, httpPort: 0 });
    base = `http://127.0.0.1:${platform.httpPort}`;
    kafka = new Kafka({ clientId: 'e2e', brokers: [`127.0.0.1:${platform.kafkaPort}`], logLevel: logLevel.NOTHING });
    producer = kafka.producer({ allowAutoTopicCreation: true });
    await producer.connect();
    client = remoteClient({ bootstrapBrokers: [`127.0.0.1:${platform.kafkaPort}`], clientId: 'e2e-jobs' });
  });

  after(async () => {
    for (const j of jobs) await j.close().catch(() => {});
    await producer?.disconnect().catch(() => {});
    await client?.close().catch(() => {});
    await platform?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('stream processing: 1,000 events in, per-user 1-minute aggregates out', async () => {
    await createTopics('e2e-clicks', 'e2e-clicks-1m');
    const topology = compileJobSpec({
      name: 'e2e-clicks',
      source: { topics: ['e2e-clicks'], timestampField: 'at' },
      filter: { field: 'type', op: 'in', value: ['view', 'buy'] },
      project: { user: 'user', amount: 'amount', type: 'type' },
      key: 'user',
      window: { type: 'tumbling', size: '1m', grace: '0s' },
      aggregations: [
        { name: 'n', fn: 'count' },
        { name: 'total', fn: 'sum', field: 'amount' },
      ],
      emit: 'final',
      output: { topic: 'e2e-clicks-1m' },
    });
    const job = new KafkaStreams(topology, {
      applicationId: 'e2e-clicks',
      client,
      processingGuarantee: 'exactly_once',
      commitIntervalMs: 100,
    });
    jobs.push(job);
    await job.start();

    // 1,000 events over 10 minutes for 7 users; every 10th is of a type the filter drops.
    const expected = new Map<string, { n: number; total: number }>();
    const events = Array.from({ length: 1000 }, (_, i) => {
      const user = `user-${i % 7}`;
      const at = T0 + i * 600;
      const type = i % 10 === 9 ? 'logout' : i % 3 === 0 ? 'buy' : 'view';
      const amount = (i % 13) + 1;
      if (type !== 'logout') {
        const k = `${user}@${Math.floor(at / 60_000) * 60_000}`;
        const e = expected.get(k) ?? { n: 0, total: 0 };
        expected.set(k, { n: e.n + 1, total: e.total + amount });
      }
      return { key: user, value: { user, at, type, amount }, timestamp: at };
    });
    // A last event an hour later closes every window.
    events.push({
      key: 'closer',
      value: { user: 'closer', at: T0 + 3600_000, type: 'view', amount: 0 },
      timestamp: T0 + 3600_000,
    });
    await produce('e2e-clicks', events);

    const out = await until(
      'the final windows',
      () => readTopic(client, 'e2e-clicks-1m'),
      (rows) => rows.length >= expected.size,
    );
    const got = new Map<string, { n: number; total: number }>();
    for (const r of out) {
      const v = r.value as { key: string; windowStart: number; n: number; total: number };
      assert.equal(got.has(`${v.key}@${v.windowStart}`), false, 'each window is emitted once');
      got.set(`${v.key}@${v.windowStart}`, { n: v.n, total: v.total });
    }
    assert.deepEqual(got, expected);
    assert.equal(
      [...got.values()].reduce((a, v) => a + v.n, 0),
      900,
    );
  });

  test('data lake: create a table over the Iceberg REST catalog, write 10,000 rows, read 10,000 back', async () => {
    const created = await http('/iceberg/v1/namespaces', { namespace: ['e2e'] });
    assert.equal(created.status, 200, JSON.stringify(created.json));
    const catalog = new RestCatalog({ uri: `${base}/iceberg` });
    const id = { namespace: ['e2e'], name: 'orders' };
    const table = await createTable(catalog, id, {
      schema: {
        fields: [
          { id: 1, name: 'id', required: true, type: 'long' },
          { id: 2, name: 'ts', required: true, type: 'timestamptz' },
          { id: 3, name: 'user_id', required: true, type: 'string' },
          { id: 4, name: 'amount', required: false, type: 'double' },
        ] as never,
      },
      partition: 'day(ts), bucket(16, user_id)',
    });
    const rows = Array.from({ length: 10_000 }, (_, i) => ({
      id: i,
      ts: T0 + i * 30_000,
      user_id: `u${i % 97}`,
      amount: (i % 100) / 4,
    }));
    await table.append(rows.slice(0, 6000));
    await table.append(rows.slice(6000));

    // The table as any REST client sees it.
    const loaded = await http('/iceberg/v1/namespaces/e2e/tables/orders');
    assert.equal(loaded.status, 200);
    const md = (loaded.json as { metadata: { snapshots: unknown[]; 'partition-specs': { fields: unknown[] }[] } })
      .metadata;
    assert.equal(md.snapshots.length, 2);
    assert.equal(md['partition-specs'][0]?.fields.length, 2);

    const back = await (await loadTable(new RestCatalog({ uri: `${base}/iceberg` }), id)).rows();
    assert.equal(back.length, 10_000);
    const ids = back.map((r) => Number(r.id)).sort((a, b) => a - b);
    assert.deepEqual(
      ids,
      rows.map((r) => r.id),
    );
    const total = back.reduce((a, r) => a + Number(r.amount), 0);
    assert.equal(
      total,
      rows.reduce((a, r) => a + r.amount, 0),
    );
    const filtered = await (await loadTable(catalog, id)).rows({ filter: "user_id = 'u5'" });
    assert.equal(filtered.length, rows.filter((r) => r.user_id === 'u5').length);
  });

  test('real-time analytics: a datasource ingests a topic (supervisor), queries see the data', async () => {
    await createTopics('e2e-pageviews');
    const spec = {
      type: 'kafka',
      spec: {
        dataSchema: {
          dataSource: 'e2e_pageviews',
          timestampSpec: { column: 'ts', format: 'millis' },
          dimensionsSpec: { dimensions: ['page', 'country'] },
          metricsSpec: [
            { type: 'count', name: 'views' },
            { type: 'longSum', name: 'ms', fieldName: 'ms' },
            { type: 'HLLSketchBuild', name: 'users', fieldName: 'user' },
          ],
          granularitySpec: { segmentGranularity: 'DAY', queryGranularity: 'MINUTE', rollup: true },
        },
        tuningConfig: { type: 'kafka', intermediatePersistPeriod: 'PT1S' },
        ioConfig: { topic: 'e2e-pageviews', inputFormat: { type: 'json' }, useEarliestOffset: true },
      },
    };
    const sub = await http('/druid/indexer/v1/supervisor', spec);
    assert.equal(sub.status, 200, JSON.stringify(sub.json));
    const pages = ['/', '/cart', '/search', '/product'];
    const countries = ['DE', 'FR', 'US'];
    const views = Array.from({ length: 1200 }, (_, i) => ({
      key: `u${i % 50}`,
      value: { ts: T0 + i * 1000, page: pages[i % 4], country: countries[i % 3], user: `u${i % 50}`, ms: i % 17 },
      timestamp: T0 + i * 1000,
    }));
    await produce('e2e-pageviews', [...views, { key: 'x', value: 'not json', timestamp: T0 }]);

    const series = await until(
      'all page views in the datasource',
      async () =>
        (
          await http('/druid/v2', {
            queryType: 'timeseries',
            dataSource: 'e2e_pageviews',
            intervals: ['2026-01-01/2026-02-01'],
            granularity: 'all',
            aggregations: [
              { type: 'longSum', name: 'views', fieldName: 'views' },
              { type: 'longSum', name: 'ms', fieldName: 'ms' },
            ],
          })
        ).json as { result: { views: number; ms: number } }[],
      (r) => Array.isArray(r) && r[0]?.result.views === 1200,
    );
    assert.equal(
      series[0]?.result.ms,
      views.reduce((a, v) => a + v.value.ms, 0),
    );

    const top = (
      await http('/druid/v2', {
        queryType: 'topN',
        dataSource: 'e2e_pageviews',
        intervals: ['2026-01-01/2026-02-01'],
        granularity: 'all',
        dimension: 'page',
        metric: 'views',
        threshold: 2,
        aggregations: [{ type: 'longSum', name: 'views', fieldName: 'views' }],
      })
    ).json as { result: { page: string; views: number }[] }[];
    assert.equal(top[0]?.result.length, 2);
    assert.equal(top[0]?.result[0]?.views, 300);

    const byCountry = await sql(
      'SELECT country, SUM(views) AS v, APPROX_COUNT_DISTINCT_DS_HLL(users) AS u FROM e2e_pageviews GROUP BY country ORDER BY country',
    );
    assert.deepEqual(
      byCountry.map((r) => [r.country, r.v]),
      [
        ['DE', 400],
        ['FR', 400],
        ['US', 400],
      ],
    );
    // Rollup: one row per (minute, page, country) at most.
    const rows = await sql('SELECT COUNT(*) AS n FROM e2e_pageviews');
    assert.ok(Number(rows[0]?.n) < 1200, `rolled up: ${JSON.stringify(rows)}`);
    const status = (await http('/druid/indexer/v1/supervisor/e2e_pageviews/status')).json as {
      payload: { state: string; rowStats: { processed: number; unparseable: number } };
    };
    assert.equal(status.payload.state, 'RUNNING');
    assert.equal(status.payload.rowStats.unparseable, 1);
  });

  test('end-to-end pipeline: topic -> checks -> Iceberg table, topic and datasource, with quality and lineage', async () => {
    await createTopics('e2e-orders');
    const orders = Array.from({ length: 400 }, (_, i) => ({
      key: `o${i}`,
      value: {
        order_id: `o${i}`,
        customer: `c${i % 20}`,
        amount: 10 + (i % 50),
        day: i < 200 ? '2026-01-05' : '2026-01-06',
      },
      timestamp: T0 + i,
    }));
    await produce('e2e-orders', orders);
    const spec = {
      name: 'e2e_daily_customers',
      stages: [
        { id: 'orders', type: 'ingest', source: { kind: 'topic', topic: 'e2e-orders' } },
        {
          id: 'daily',
          type: 'transform',
          inputs: ['orders'],
          rules: [
            { map: { day: 'day', customer: 'customer', amount: 'CAST(amount AS DOUBLE)' } },
            { aggregate: { groupBy: ['day', 'customer'], measures: { orders: 'count(*)', revenue: 'sum(amount)' } } },
          ],
        },
        {
          id: 'checked',
          type: 'validate',
          inputs: ['daily'],
          checks: [
            { type: 'not_null', column: 'customer' },
            { type: 'range', column: 'revenue', min: 0 },
            { type: 'row_count', min: 1 },
          ],
        },
        {
          id: 'to_lake',
          type: 'output',
          inputs: ['checked'],
          target: { kind: 'iceberg', table: 'e2e.daily_customers', mode: 'merge', key: ['day', 'customer'] },
        },
        {
          id: 'to_topic',
          type: 'output',
          inputs: ['checked'],
          target: { kind: 'topic', topic: 'e2e-daily-customers', key: 'customer' },
        },
        {
          id: 'to_ds',
          type: 'output',
          inputs: ['checked'],
          target: {
            kind: 'datasource',
            dataSource: 'e2e_daily_customers',
            timestampColumn: 'day',
            dimensions: ['customer'],
            metrics: [
              { type: 'longSum', name: 'orders', fieldName: 'orders' },
              { type: 'doubleSum', name: 'revenue', fieldName: 'revenue' },
            ],
          },
        },
      ],
    };
    if (!(await platform.catalog.namespaceExists(['e2e']))) await platform.catalog.createNamespace(['e2e']);

    // The platform serves pipelines over HTTP.
    assert.equal((await http('/api/v1/pipelines')).status, 200);
    const run = await http('/api/v1/runs', spec);
    assert.ok(run.status === 201 || run.status === 200, JSON.stringify(run.json));
    const runId =
      (run.json as { run?: { id?: string }; runId?: string }).run?.id ?? (run.json as { runId: string }).runId;
    const shown = (await http(`/api/v1/runs/${runId}`)).json as {
      run: { status: string };
      stages: { stageId: string; status: string }[];
      quality: { score: number | null };
    };
    const status = shown.run.status;
    const stages = shown.stages;
    const quality = shown.quality.score;
    const lineageEvents = ((await http(`/api/v1/runs/${runId}/lineage`)).json as unknown[]).length;
    assert.equal(status, 'succeeded');
    assert.equal(stages.length, 6);
    for (const s of stages) assert.equal(s.status, 'succeeded', s.stageId);
    assert.ok(quality !== null && quality > 0.95, `quality ${quality}`);
    assert.ok(lineageEvents > 0, 'lineage is not empty');

    // 2 days x 20 customers in each output.
    const table = await loadTable(new RestCatalog({ uri: `${base}/iceberg` }), {
      namespace: ['e2e'],
      name: 'daily_customers',
    });
    const rows = await table.rows();
    assert.equal(rows.length, 40);
    assert.equal(
      rows.reduce((a, r) => a + Number(r.orders), 0),
      400,
    );
    const topic = await readTopic(client, 'e2e-daily-customers');
    assert.equal(topic.length, 40);
    const ds = await sql('SELECT SUM(orders) AS n, COUNT(DISTINCT customer) AS c FROM e2e_daily_customers');
    assert.deepEqual([Number(ds[0]?.n), Number(ds[0]?.c)], [400, 20]);
  });

  test('complex event processing: a known sequence raises its alert; analytics rows reach the datasource', async () => {
    await createTopics(TOPICS.enriched, TOPICS.alerts, TOPICS.analytics);
    const sub = await http('/druid/indexer/v1/supervisor', {
      type: 'kafka',
      spec: {
        dataSchema: {
          dataSource: 'e2e_event_types',
          timestampSpec: { column: 'windowStart', format: 'iso' },
          dimensionsSpec: { dimensions: ['eventType'] },
          metricsSpec: [{ type: 'longSum', name: 'events', fieldName: 'events' }],
          granularitySpec: { segmentGranularity: 'DAY', queryGranularity: 'FIVE_MINUTE', rollup: true },
        },
        tuningConfig: { type: 'kafka', intermediatePersistPeriod: 'PT1S' },
        ioConfig: { topic: TOPICS.analytics, inputFormat: { type: 'json' }, useEarliestOffset: true },
      },
    });
    assert.equal(sub.status, 200, JSON.stringify(sub.json));
    const job = new KafkaStreams(cepJob(JSON.parse(fs.readFileSync(PATTERN_FILE, 'utf8'))), {
      applicationId: 'e2e-cep',
      client,
      processingGuarantee: 'exactly_once',
      commitIntervalMs: 100,
    });
    jobs.push(job);
    await job.start();

    const min = 60_000;
    const ev = (userId: string, eventType: string, value: number, at: number) => ({
      key: userId,
      value: { eventId: `${userId}-${at}`, userId, eventType, value, timestamp: T0 + at, country: 'DE' },
      timestamp: T0 + at,
    });
    const events = [
      // ann: LOGIN, PURCHASE 12000 right after, a page view, LOGOUT after 10 minutes: the alert.
      ev('ann', 'LOGIN', 0, 0),
      ev('bob', 'LOGIN', 0, 1 * min),
      ev('ann', 'PURCHASE', 12000, 2 * min),
      // bob: a page view between LOGIN and PURCHASE breaks "next".
      ev('bob', 'PAGE_VIEW', 0, 3 * min),
      ev('bob', 'PURCHASE', 5000, 4 * min),
      ev('ann', 'PAGE_VIEW', 0, 5 * min),
      // cat: the purchase is too small.
      ev('cat', 'LOGIN', 0, 6 * min),
      ev('cat', 'PURCHASE', 999, 7 * min),
      ev('ann', 'LOGOUT', 0, 10 * min),
      ev('bob', 'LOGOUT', 0, 11 * min),
      ev('cat', 'LOGOUT', 0, 12 * min),
      // dan: LOGOUT after 40 minutes, past the 30-minute window.
      ev('dan', 'LOGIN', 0, 13 * min),
      ev('dan', 'PURCHASE', 3000, 14 * min),
      ev('dan', 'LOGOUT', 0, 53 * min),
      // Out of order: ann's logout delivered late is still matched in event time; then time moves on.
      ev('zed', 'PAGE_VIEW', 0, 120 * min),
    ];
    // Deliver one event out of order (event time order is restored by the operator).
    const shuffled = [...events];
    const [moved] = shuffled.splice(2, 1);
    if (moved) shuffled.splice(4, 0, moved);
    await produce(TOPICS.enriched, shuffled);

    const alerts = await until(
      'the alert',
      () => readTopic(client, TOPICS.alerts),
      (a) => a.length >= 1,
    );
    await job.waitUntilProcessed(30_000);
    const final = await readTopic(client, TOPICS.alerts);
    assert.equal(final.length, 1, JSON.stringify(final));
    const alert = (final[0] ?? alerts[0])?.value as { userId: string; amount: number; sessionMs: number };
    assert.equal(alert.userId, 'ann');
    assert.equal(alert.amount, 12000);
    assert.equal(alert.sessionMs, 10 * min);

    // 5-minute analytics per event type: the windows before the last event closed; their rows reach the datasource.
    const analytics = await until(
      'analytics rows',
      () => readTopic(client, TOPICS.analytics),
      (a) => a.length > 0,
    );
    const expectedEvents = (analytics.map((a) => a.value) as { events: number }[]).reduce((s, a) => s + a.events, 0);
    assert.equal(expectedEvents, events.length - 1, 'every event but the last is in a closed window');
    await until(
      'analytics rows in the datasource',
      async () => sql('SELECT SUM(events) AS n FROM e2e_event_types').catch(() => [] as Record<string, unknown>[]),
      (r) => Number(r[0]?.n) === expectedEvents,
    );
    const perType = await sql('SELECT eventType, SUM(events) AS n FROM e2e_event_types GROUP BY 1 ORDER BY 1');
    assert.deepEqual(
      perType.map((r) => [r.eventType, Number(r.n)]),
      [
        ['LOGIN', 4],
        ['LOGOUT', 4],
        ['PAGE_VIEW', 2],
        ['PURCHASE', 4],
      ],
    );
  });
});
