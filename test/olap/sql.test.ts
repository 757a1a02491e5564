import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { OlapEngine, toDruidJson } from '../../src/olap/index.ts';
import { tempDir, typedJson } from './helpers.ts';

describe('Druid SQL translation', () => {
  let dir: string;
  let engine: OlapEngine;
  const rows = Array.from({ length: 40 }, (_, i) => ({
    ts: new Date(Date.UTC(2022, 0, 1, i % 24, i)).toISOString(),
    shop: `s${i % 4}`,
    user: `u${i % 10}`,
    amount: i,
  }));
  before(async () => {
    dir = tempDir();
    engine = await OlapEngine.open({ dataDir: dir });
    await engine.ingest({
      type: 'index',
      spec: {
        dataSchema: {
          dataSource: 'sales',
          timestampSpec: { column: 'ts' },
          dimensionsSpec: { dimensions: ['shop', 'user'] },
          metricsSpec: [
            { type: 'count', name: 'cnt' },
            { type: 'longSum', name: 'amount', fieldName: 'amount' },
            { type: 'thetaSketch', name: 'users', fieldName: 'user' },
            { type: 'HLLSketchBuild', name: 'users_hll', fieldName: 'user' },
            { type: 'quantilesDoublesSketch', name: 'amount_q', fieldName: 'amount' },
          ],
          granularitySpec: { queryGranularity: 'hour', segmentGranularity: 'day' },
        },
        ioConfig: {
          inputSource: { type: 'inline', data: rows.map((r) => JSON.stringify(r)).join('\n') },
          inputFormat: { type: 'json' },
        },
      },
    });
    await engine.ingest({
      type: 'index',
      spec: {
        dataSchema: {
          dataSource: 'shops',
          timestampSpec: { column: 'ts' },
          dimensionsSpec: { dimensions: ['shop', 'city'] },
        },
        ioConfig: {
          inputSource: {
            type: 'inline',
            data: ['s0:Paris', 's1:Lyon', 's2:Nice', 's3:Lille']
              .map((x) => JSON.stringify({ ts: '2022-01-01T00:00:00Z', shop: x.split(':')[0], city: x.split(':')[1] }))
              .join('\n'),
          },
          inputFormat: { type: 'json' },
        },
      },
    });
  });
  after(async () => {
    await engine.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const q = async (sql: string, parameters: unknown[] = []) =>
    typedJson(toDruidJson((await engine.sql(sql, { parameters })).rows));

  test('sketch functions over stored sketch columns and raw dimensions', async () => {
    assert.deepStrictEqual(
      await q(
        `SELECT APPROX_COUNT_DISTINCT_DS_THETA(users) AS a, APPROX_COUNT_DISTINCT_DS_HLL(users_hll) AS b, APPROX_COUNT_DISTINCT(user) AS c, THETA_SKETCH_ESTIMATE(DS_THETA(user)) AS d FROM sales`,
      ),
      typedJson('[[10.0, 10, 10, 10.0]]'),
    );
    const sorted = rows.map((r) => r.amount).sort((a, b) => a - b);
    assert.deepStrictEqual(
      await q(`SELECT APPROX_QUANTILE_DS(amount_q, 0.5) AS m, APPROX_QUANTILE(amount, 0.9) AS p FROM sales`),
      typedJson(`[[${sorted[20]}.0, ${sorted[36]}.0]]`),
    );
  });

  test('aliases on sketch functions name their columns (regression: they came back as the internal expression)', async () => {
    const r = await engine.sql(
      `SELECT shop, APPROX_COUNT_DISTINCT_DS_HLL("user") AS buyers, APPROX_COUNT_DISTINCT_DS_THETA("user") AS thetaBuyers, APPROX_COUNT_DISTINCT(users_hll) AS stored, HLL_SKETCH_ESTIMATE(DS_HLL("user")) AS est, APPROX_QUANTILE_DS(amount_q, 0.5) AS med FROM sales GROUP BY shop ORDER BY shop`,
    );
    assert.deepStrictEqual(
      r.columns.map((c) => c.name),
      ['shop', 'buyers', 'thetaBuyers', 'stored', 'est', 'med'],
    );
    // Each shop sN sees users u(N), u(N+4), u(N+8) within the 10 users: counts stay right under the alias.
    const expected = (n: number) => new Set(rows.filter((x) => x.shop === `s${n}`).map((x) => x.user)).size;
    assert.deepStrictEqual(
      r.rows.map((x) => [x[0], Number(x[1]), Number(x[2]), Number(x[3]), Math.round(Number(x[4]))]),
      [0, 1, 2, 3].map((n) => [`s${n}`, expected(n), expected(n), expected(n), expected(n)]),
    );
    const objects = await engine.sql(`SELECT APPROX_COUNT_DISTINCT_DS_HLL("user") buyers FROM sales`);
    assert.deepStrictEqual(objects.columns[0]!.name, 'buyers');
  });

  test('time functions, GROUP BY, HAVING, ORDER BY, LIMIT, CASE', async () => {
    const byHour = new Map<number, number>();
    for (const r of rows) {
      const h = new Date(r.ts).getUTCHours() - (new Date(r.ts).getUTCHours() % 6);
      byHour.set(h, (byHour.get(h) ?? 0) + r.amount);
    }
    const exp = [...byHour.entries()].sort((a, b) => a[0] - b[0]).filter(([, v]) => v > 100);
    assert.deepStrictEqual(
      await q(
        `SELECT TIME_FORMAT(TIME_FLOOR(__time, 'PT6H'), 'HH') AS h, SUM(amount) AS s FROM sales GROUP BY 1 HAVING SUM(amount) > 100 ORDER BY 1`,
      ),
      typedJson(JSON.stringify(exp.map(([h, v]) => [String(h).padStart(2, '0'), v]))),
    );
    assert.deepStrictEqual(
      await q(
        `SELECT CASE WHEN shop = 's0' THEN 'first' ELSE 'other' END AS k, COUNT(*) AS n FROM sales WHERE __time >= TIMESTAMP '2022-01-01 00:00:00' GROUP BY 1 ORDER BY 1 LIMIT 5`,
      ),
      typedJson('[["first",10],["other",30]]'),
    );
  });

  test('JOIN with a small datasource; parameters', async () => {
    assert.deepStrictEqual(
      await q(
        `SELECT s.city, SUM(x.amount) AS t FROM sales x JOIN shops s ON x.shop = s.shop WHERE s.city = ? GROUP BY 1`,
        [{ type: 'VARCHAR', value: 'Lyon' }],
      ),
      typedJson(`[["Lyon", ${rows.filter((r) => r.shop === 's1').reduce((a, r) => a + r.amount, 0)}]]`),
    );
  });

  test('lookups: LOOKUP(), JOIN lookup.name, and registeredLookup extraction in native queries', async () => {
    await engine.store.setLookup('shop_city', { version: 'v1', map: { s0: 'Paris', s1: 'Lyon', "s'2": 'x' } });
    assert.deepStrictEqual(
      await q(`SELECT LOOKUP(shop, 'shop_city', 'other') AS c, COUNT(*) AS n FROM sales GROUP BY 1 ORDER BY 1`),
      typedJson('[["Lyon",10],["Paris",10],["other",20]]'),
    );
    assert.deepStrictEqual(
      await q(
        `SELECT l.v AS city, SUM(s.amount) AS a FROM sales s JOIN lookup.shop_city l ON s.shop = l.k WHERE l.v = 'Paris' GROUP BY 1`,
      ),
      typedJson(`[["Paris", ${rows.filter((r) => r.shop === 's0').reduce((a, r) => a + r.amount, 0)}]]`),
    );
    const native = (await engine.query({
      queryType: 'groupBy',
      dataSource: 'sales',
      intervals: ['2022/2023'],
      granularity: 'all',
      dimensions: [
        {
          type: 'extraction',
          dimension: 'shop',
          outputName: 'city',
          extractionFn: { type: 'registeredLookup', lookup: 'shop_city', retainMissingValue: true },
        },
      ],
      aggregations: [{ type: 'longSum', name: 'n', fieldName: 'cnt' }],
    })) as { event: { city: string; n: bigint } }[];
    assert.deepEqual(
      native.map((r) => [r.event.city, Number(r.event.n)]),
      [
        ['Lyon', 10],
        ['Paris', 10],
        ['s2', 10],
        ['s3', 10],
      ],
    );
    await assert.rejects(engine.sql(`SELECT LOOKUP(shop, 'nope') FROM sales`), /registered lookup/);
  });

  test('INFORMATION_SCHEMA lists datasources and columns', async () => {
    assert.deepStrictEqual(
      await q(`SELECT TABLE_NAME FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = 'druid' ORDER BY 1`),
      typedJson('[["sales"],["shops"]]'),
    );
    assert.deepStrictEqual(
      await q(
        `SELECT COLUMN_NAME, DATA_TYPE FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_NAME = 'shops' ORDER BY ORDINAL_POSITION`,
      ),
      typedJson('[["__time","TIMESTAMP"],["shop","VARCHAR"],["city","VARCHAR"]]'),
    );
  });

  test('refuses statements and functions outside the Druid subset', async () => {
    for (const bad of [
      "COPY sales TO '/tmp/x.csv'",
      'SELECT 1; SELECT 2',
      "SELECT * FROM read_parquet('/etc/x')",
      'SELECT * FROM duckdb_settings()',
      "SELECT current_setting('threads')",
      'SELECT * FROM olap_rt.sales',
      'SELECT * FROM main.sales',
      "ATTACH DATABASE '/tmp/x.db' AS x",
    ]) {
      await assert.rejects(
        engine.sql(bad),
        (e: Error & { code?: string }) => e.code === 'INVALID_ARGUMENT' || e.code === 'NOT_FOUND',
        bad,
      );
    }
  });
});
