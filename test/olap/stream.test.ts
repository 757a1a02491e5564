import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { embeddedClient, type Log, type LogClient, openLog } from '../../src/log/index.ts';
import { druidRoutes, OlapEngine } from '../../src/olap/index.ts';
import { fixtureText, tempDir } from './helpers.ts';

const TOPIC = 'wikipedia';

function event(i: number): string {
  return JSON.stringify({
    time: new Date(Date.UTC(2015, 8, 12, 0, i % 60)).toISOString(),
    channel: `#c${i % 3}`,
    page: `p${i % 7}`,
    user: `u${i}`,
    added: i,
    deleted: 0,
    delta: i,
  });
}

async function until<T>(fn: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
  for (let i = 0; ; i++) {
    const v = await fn();
    if (ok(v) || i > 400) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('Kafka supervisor over the embedded log', () => {
  let dir: string;
  let log: Log;
  let client: LogClient;
  let engine: OlapEngine;
  let app: FastifyInstance;
  let base: string;
  let produced = 0;
  let addedTotal = 0;

  const produce = async (n: number, extra: string[] = []) => {
    const p = client.producer();
    const values = Array.from({ length: n }, (_, k) => {
      const i = produced + k;
      addedTotal += i;
      return event(i);
    });
    produced += n;
    await p.send([...values, ...extra].map((value, k) => ({ topic: TOPIC, key: `k${k}`, value })));
    await p.close();
  };
  const totals = async () => {
    const r = (await engine.query(
      {
        queryType: 'timeseries',
        dataSource: TOPIC,
        intervals: ['2015-09-12/2015-09-13'],
        granularity: 'all',
        aggregations: [
          { type: 'count', name: 'rows' },
          { type: 'longSum', name: 'added', fieldName: 'added' },
        ],
      },
      { useCache: false },
    )) as { result: { rows: bigint; added: bigint } }[];
    return r.length ? { rows: Number(r[0]!.result.rows), added: Number(r[0]!.result.added) } : { rows: 0, added: 0 };
  };
  const startServer = async () => {
    engine = await OlapEngine.open({ dataDir: path.join(dir, 'olap'), logClient: client });
    app = Fastify();
    await app.register(druidRoutes, { engine });
    await app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  };
  const post = async (p: string, body?: unknown) => {
    const r = await fetch(base + p, {
      method: 'POST',
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: r.status, json: JSON.parse(await r.text()) };
  };

  before(async () => {
    dir = tempDir();
    log = await openLog({ dataDir: path.join(dir, 'log'), cleanerIntervalMs: 0 });
    client = embeddedClient(log);
    const admin = client.admin();
    await admin.createTopic(TOPIC, { partitions: 2 });
    await admin.close();
    await startServer();
  });
  after(async () => {
    await app.close();
    await engine.close();
    await client.close();
    await log.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('events appear in queries at once; unparseable ones are counted, not fatal', async () => {
    const spec = JSON.parse(fixtureText('specs/wikipedia-kafka-supervisor.json'));
    spec.spec.tuningConfig.intermediatePersistPeriod = 'PT1S';
    const r = await post('/druid/indexer/v1/supervisor', spec);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.deepEqual(r.json, { id: TOPIC });
    await produce(50, ['not json', '{"time":"garbage","channel":"x"}']);
    const t = await until(totals, (v) => v.rows === 50);
    assert.deepEqual(t, { rows: 50, added: addedTotal });
    const st = (await (await fetch(`${base}/druid/indexer/v1/supervisor/${TOPIC}/status`)).json()) as {
      payload: { state: string; rowStats: { processed: number; unparseable: number }; aggregateLag: number };
    };
    assert.equal(st.payload.state, 'RUNNING');
    assert.equal(st.payload.rowStats.processed, 50);
    assert.equal(st.payload.rowStats.unparseable, 2);
    assert.equal(st.payload.aggregateLag, 0);
  });

  test('periodic persist publishes segments with the committed offsets', async () => {
    const meta = await until(
      async () => engine.store.datasources.get(TOPIC),
      (m) => (m?.segments.length ?? 0) > 0 && m?.streamOffsets !== undefined,
    );
    const committed = Object.values(meta!.streamOffsets!.partitions).reduce((a, o) => a + Number(o), 0);
    assert.equal(committed, 52);
    assert.ok(fs.existsSync(path.join(engine.store.dsDir(TOPIC), 'datasource.json')));
  });

  test('suspend, produce, resume, restart: totals count every event exactly once', async () => {
    assert.equal((await post(`/druid/indexer/v1/supervisor/${TOPIC}/suspend`)).status, 200);
    await produce(30);
    assert.equal((await totals()).rows, 50);
    assert.equal((await post(`/druid/indexer/v1/supervisor/${TOPIC}/resume`)).status, 200);
    assert.deepEqual(await until(totals, (v) => v.rows === 80), { rows: 80, added: addedTotal });
    // Restart the engine (supervisor keeps running from its committed offsets).
    await produce(20);
    await until(totals, (v) => v.rows === 100);
    await app.close();
    await engine.close();
    await startServer();
    assert.deepEqual(await totals(), { rows: 100, added: addedTotal });
    await produce(5);
    assert.deepEqual(await until(totals, (v) => v.rows === 105), { rows: 105, added: addedTotal });
    const list = (await (await fetch(`${base}/druid/indexer/v1/supervisor`)).json()) as string[];
    assert.deepEqual(list, [TOPIC]);
  });

  test('a supervisor submitted before its topic exists starts reading once it appears', async () => {
    const r = await post('/druid/indexer/v1/supervisor', {
      type: 'kafka',
      spec: {
        dataSchema: {
          dataSource: 'late-topic',
          timestampSpec: { column: 'time' },
          dimensionsSpec: { dimensions: ['page'] },
          metricsSpec: [{ type: 'count', name: 'count' }],
          granularitySpec: { segmentGranularity: 'day', queryGranularity: 'none' },
        },
        ioConfig: { topic: 'not-yet', useEarliestOffset: true, inputFormat: { type: 'json' } },
      },
    });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const st = (await (await fetch(`${base}/druid/indexer/v1/supervisor/late-topic/status`)).json()) as {
      payload: { healthy: boolean; recentErrors: unknown[] };
    };
    assert.equal(st.payload.healthy, false);
    const admin = client.admin();
    await admin.createTopic('not-yet', { partitions: 1 });
    await admin.close();
    const p = client.producer();
    await p.send([
      { topic: 'not-yet', value: event(1) },
      { topic: 'not-yet', value: event(2) },
    ]);
    await p.close();
    const n = await until(
      async () => {
        const q = (await engine.query(
          {
            queryType: 'timeseries',
            dataSource: 'late-topic',
            intervals: ['2015/2016'],
            granularity: 'all',
            aggregations: [{ type: 'count', name: 'n' }],
          },
          { useCache: false },
        )) as { result: { n: bigint } }[];
        return q[0]?.result.n ?? 0n;
      },
      (v) => v === 2n,
    );
    assert.equal(n, 2n);
  });
});
