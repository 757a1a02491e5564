import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { C, F, Introspect, L, QueryRunner, SqlExpression, SqlQuery, T } from 'druid-query-toolkit';
import Fastify, { type FastifyInstance } from 'fastify';
import { druidRoutes, OlapEngine } from '../../src/olap/index.ts';
import { tempDir } from './helpers.ts';

// A real Druid client (druid-query-toolkit, the library behind Druid's web console): queries are built with
// its SQL builders, parsed and re-rendered, run over HTTP through its QueryRunner, and decoded by QueryResult.
describe('druid-query-toolkit against the Druid HTTP API', () => {
  let dir: string;
  let engine: OlapEngine;
  let app: FastifyInstance;
  let runner: QueryRunner;
  const channels = ['#en', '#fr', '#de'];
  const events = Array.from({ length: 60 }, (_, i) => ({
    ts: new Date(Date.UTC(2024, 2, 1, i % 3, i)).toISOString(),
    channel: channels[i % 3]!,
    page: `p${i % 7}`,
    user: `u${i % 11}`,
    added: i * 3,
  }));

  before(async () => {
    dir = tempDir();
    engine = await OlapEngine.open({ dataDir: dir });
    app = Fastify();
    await app.register(druidRoutes, { engine });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    runner = new QueryRunner({
      executor: async ({ payload, isSql, signal }) => {
        const r = await fetch(`${base}/druid/v2${isSql ? '/sql' : ''}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(payload),
          ...(signal ? { signal } : {}),
        });
        const text = await r.text();
        if (!r.ok) throw new Error(`HTTP ${r.status}: ${text}`);
        const headers: Record<string, string> = {};
        r.headers.forEach((v, k) => {
          headers[k] = v;
        });
        return { data: JSON.parse(text), headers };
      },
    });
    await engine.ingest({
      type: 'index_parallel',
      spec: {
        dataSchema: {
          dataSource: 'wiki',
          timestampSpec: { column: 'ts', format: 'iso' },
          dimensionsSpec: { dimensions: ['channel', 'page', 'user'] },
          metricsSpec: [
            { type: 'count', name: 'cnt' },
            { type: 'longSum', name: 'added', fieldName: 'added' },
          ],
          granularitySpec: { segmentGranularity: 'day', queryGranularity: 'none', rollup: false },
        },
        ioConfig: {
          type: 'index_parallel',
          inputSource: { type: 'inline', data: events.map((e) => JSON.stringify(e)).join('\n') },
          inputFormat: { type: 'json' },
        },
      },
    });
  });
  after(async () => {
    await app.close();
    await engine.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a query built with SqlQuery/SqlExpression runs and its array result with headers decodes', async () => {
    const q = SqlQuery.create(T('wiki'))
      .changeSelectExpressions([C('channel'), F.count().as('edits'), F.sum(C('added')).as('total')])
      .changeWhereExpression(SqlExpression.and(C('added').greaterThan(30), C('channel').unequal(L('#de'))))
      .changeGroupByExpressions([C('channel')])
      .changeOrderByExpression(C('total').toOrderByExpression('DESC'))
      .changeLimitValue(5);
    // The builder's text parses back to the same query.
    assert.equal(String(SqlQuery.parse(String(q))), String(q));
    const result = await runner.runQuery({ query: q });
    assert.deepEqual(result.getHeaderNames(), ['channel', 'edits', 'total']);
    const expected = ['#en', '#fr']
      .map((ch) => {
        const xs = events.filter((e) => e.channel === ch && e.added > 30);
        return { channel: ch, edits: xs.length, total: xs.reduce((a, e) => a + e.added, 0) };
      })
      .sort((a, b) => b.total - a.total);
    assert.deepEqual(result.toObjectArray(), expected);
    // Druid SQL types come back in the header, as the console reads them.
    assert.deepEqual(
      result.header.map((c) => c.sqlType),
      ['VARCHAR', 'BIGINT', 'BIGINT'],
    );
  });

  test('a parsed query is edited (select, where, limit), re-rendered and run; sketch aliases and time decode', async () => {
    const parsed = SqlQuery.parse(
      `SELECT TIME_FLOOR(__time, 'PT1H') AS "hour", APPROX_COUNT_DISTINCT_DS_HLL("user") AS buyers FROM wiki GROUP BY 1 ORDER BY 1`,
    );
    const q = parsed
      .addSelect(F.sum(C('added')).as('added'))
      .addWhere(C('page').in(['p1', 'p2', 'p3']))
      .changeLimitValue(10);
    const text = String(q);
    assert.match(text, /WHERE "page" IN \('p1', 'p2', 'p3'\)/);
    const result = await runner.runQuery({ query: text });
    assert.deepEqual(result.getHeaderNames(), ['hour', 'buyers', 'added']);
    const rows = result.toObjectArray();
    const picked = events.filter((e) => ['p1', 'p2', 'p3'].includes(e.page));
    const hours = [...new Set(picked.map((e) => e.ts.slice(0, 13)))].sort();
    assert.equal(rows.length, hours.length);
    rows.forEach((r, i) => {
      const xs = picked.filter((e) => e.ts.slice(0, 13) === hours[i]);
      // TIMESTAMP columns are inflated to Dates from the SQL types header.
      assert.ok(r.hour instanceof Date, `hour is ${typeof r.hour}`);
      assert.equal((r.hour as Date).toISOString(), `${hours[i]}:00:00.000Z`);
      assert.equal(r.buyers, new Set(xs.map((e) => e.user)).size);
      assert.equal(
        r.added,
        xs.reduce((a, e) => a + e.added, 0),
      );
    });
  });

  test('introspection queries of the web console list tables and columns', async () => {
    const tables = Introspect.decodeTableIntrospectionResult(
      await runner.runQuery({ query: Introspect.getTableIntrospectionQuery() }),
    );
    assert.deepEqual(
      tables.map((t) => t.name),
      ['wiki'],
    );
    const cols = Introspect.decodeQueryColumnIntrospectionResult(
      await runner.runQuery({ query: Introspect.getQueryColumnIntrospectionPayload(T('wiki')) }),
    );
    assert.deepEqual(
      cols.map((c) => [c.name, c.sqlType]),
      [
        ['__time', 'TIMESTAMP'],
        ['channel', 'VARCHAR'],
        ['page', 'VARCHAR'],
        ['user', 'VARCHAR'],
        ['cnt', 'BIGINT'],
        ['added', 'BIGINT'],
      ],
    );
  });

  test('native topN and timeseries run through the QueryRunner and decode', async () => {
    const top = await runner.runQuery({
      query: {
        queryType: 'topN',
        dataSource: 'wiki',
        intervals: ['2024-03-01/2024-03-02'],
        granularity: 'all',
        dimension: 'page',
        metric: 'added',
        threshold: 3,
        aggregations: [{ type: 'longSum', name: 'added', fieldName: 'added' }],
      },
    });
    const byPage = new Map<string, number>();
    for (const e of events) byPage.set(e.page, (byPage.get(e.page) ?? 0) + e.added);
    const expected = [...byPage.entries()]
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .slice(0, 3)
      .map(([page, added]) => ({ page, added }));
    assert.deepEqual(
      top.toObjectArray().map((r) => ({ page: r.page, added: r.added })),
      expected,
    );
    const ts = await runner.runQuery({
      query: {
        queryType: 'timeseries',
        dataSource: 'wiki',
        intervals: ['2024-03-01/2024-03-02'],
        granularity: 'hour',
        aggregations: [{ type: 'count', name: 'n' }],
      },
    });
    const rows = ts.toObjectArray();
    assert.deepEqual(
      rows.map((r) => r.n),
      [0, 1, 2].map((h) => events.filter((e) => new Date(e.ts).getUTCHours() === h).length),
    );
    assert.deepEqual(ts.getHeaderNames(), ['timestamp', 'n']);
    assert.deepEqual(
      rows.map((r) => new Date(r.timestamp as string | Date).toISOString()),
      ['2024-03-01T00:00:00.000Z', '2024-03-01T01:00:00.000Z', '2024-03-01T02:00:00.000Z'],
    );
  });
});
