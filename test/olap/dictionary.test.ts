import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { OlapEngine } from '../../src/olap/index.ts';
import { tempDir } from './helpers.ts';

type Rec = Record<string, unknown>;

const COUNTRIES = ['US', 'FR', 'DE', 'JP', 'BR'];
function events(from: number, n: number, userPrefix = 'u'): string {
  const out: string[] = [];
  for (let i = from; i < from + n; i++)
    out.push(
      JSON.stringify({
        ts: new Date(Date.UTC(2022, 0, 1, 0, i % 1440)).toISOString(),
        country: COUNTRIES[i % COUNTRIES.length],
        user: `${userPrefix}${i % 97}`,
        code: String(i % 13),
        bytes: i,
      }),
    );
  return out.join('\n');
}

function spec(dataSource: string, data: string, append = false, rollup = false) {
  return {
    type: 'index_parallel',
    spec: {
      dataSchema: {
        dataSource,
        timestampSpec: { column: 'ts', format: 'iso' },
        dimensionsSpec: { dimensions: ['country', 'user', 'code'] },
        metricsSpec: [
          { type: 'count', name: 'count' },
          { type: 'longSum', name: 'bytes', fieldName: 'bytes' },
        ],
        granularitySpec: { segmentGranularity: 'day', queryGranularity: 'none', rollup },
      },
      ioConfig: {
        type: 'index_parallel',
        inputSource: { type: 'inline', data },
        inputFormat: { type: 'json' },
        appendToExisting: append,
      },
      tuningConfig: { type: 'index_parallel' },
    },
  };
}

const iv = ['2022-01-01/2022-01-02'];

describe('dictionary-encoded string dimensions', () => {
  let dir: string;
  let engine: OlapEngine;
  before(async () => {
    dir = tempDir();
    engine = await OlapEngine.open({ dataDir: dir });
    await engine.ingest(spec('ev', events(0, 500)));
    // The same rows in a datasource whose strings stay VARCHAR (a stream-fed datasource keeps plain strings).
    await engine.ingest(spec('plain', events(0, 500)));
    await engine.store.withConn((c) => engine.store.plainStrings(c, 'plain'));
  });
  after(async () => {
    await engine.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const q = async (query: Rec) => engine.query(query, { useCache: false });

  test('batch-ingested string dimensions are ENUMs in string order; the plain copy is VARCHAR', async () => {
    const d = engine.store.dictionary('ev', 'country');
    assert.ok(d, 'country is dictionary-encoded');
    assert.equal(d.size, 5);
    assert.equal(engine.store.dictionary('ev', 'user')?.size, 97);
    assert.equal(engine.store.dictionary('plain', 'country'), undefined);
    const order = await engine.store.withConn(async (c) =>
      (await c.runAndReadAll(`SELECT enum_range(NULL::${d.type}) AS r`)).getRowObjectsJS(),
    );
    assert.deepEqual(order[0]!.r, ['BR', 'DE', 'FR', 'JP', 'US']);
  });

  test('queries answer the same over the ENUM and the VARCHAR storage', async () => {
    const queries: Rec[] = [
      {
        queryType: 'groupBy',
        granularity: 'all',
        dimensions: ['country', 'code'],
        filter: { type: 'in', dimension: 'country', values: ['US', 'FR', 'XX'] },
        aggregations: [{ type: 'count', name: 'n' }],
      },
      {
        queryType: 'groupBy',
        granularity: 'all',
        dimensions: ['code'],
        // lexicographic: '10' < '2' < '9'; bounds that are and are not dictionary values
        filter: { type: 'bound', dimension: 'code', lower: '10', upper: '9', upperStrict: true },
        aggregations: [{ type: 'count', name: 'n' }],
      },
      {
        queryType: 'groupBy',
        granularity: 'all',
        dimensions: ['code'],
        filter: { type: 'bound', dimension: 'code', lower: '2', upper: '55', ordering: 'numeric' },
        aggregations: [{ type: 'longSum', name: 'b', fieldName: 'bytes' }],
      },
      // Filters on group keys (applied to the groups on ev, to the rows on plain).
      {
        queryType: 'groupBy',
        granularity: 'hour',
        dimensions: ['country', 'code'],
        filter: {
          type: 'or',
          fields: [
            { type: 'selector', dimension: 'country', value: null },
            { type: 'bound', dimension: 'code', lower: '3', upper: '5' },
          ],
        },
        aggregations: [{ type: 'count', name: 'n' }],
        subtotalsSpec: [['country', 'code'], ['code'], []],
      },
      {
        queryType: 'topN',
        granularity: 'all',
        dimension: 'country',
        metric: 'b',
        threshold: 2,
        filter: { type: 'not', field: { type: 'in', dimension: 'country', values: ['JP', 'US'] } },
        aggregations: [{ type: 'longSum', name: 'b', fieldName: 'bytes' }],
      },
      {
        queryType: 'topN',
        granularity: 'all',
        dimension: 'user',
        metric: 'b',
        threshold: 5,
        filter: { type: 'not', field: { type: 'selector', dimension: 'country', value: 'JP' } },
        aggregations: [{ type: 'longSum', name: 'b', fieldName: 'bytes' }],
      },
      {
        queryType: 'timeseries',
        granularity: 'all',
        aggregations: [
          { type: 'thetaSketch', name: 't', fieldName: 'user' },
          { type: 'stringFirst', name: 'f', fieldName: 'country' },
        ],
        // The sketch as stored state (sorted hashes), not an estimate: the hashes of the values must match.
        context: { finalize: false },
      },
      {
        queryType: 'timeseries',
        granularity: 'all',
        aggregations: [
          { type: 'HLLSketchBuild', name: 'h', fieldName: 'user' },
          { type: 'cardinality', name: 'c', fieldNames: ['user', 'country'], byRow: true },
          { type: 'thetaSketch', name: 't', fieldName: 'user', size: 16 },
        ],
      },
      {
        queryType: 'timeseries',
        granularity: 'hour',
        aggregations: [{ type: 'thetaSketch', name: 't', fieldName: 'user' }],
      },
      // The lone theta distinct count (dictionary path on ev, hash-threshold path on plain).
      {
        queryType: 'timeseries',
        granularity: 'all',
        filter: { type: 'selector', dimension: 'country', value: 'DE' },
        aggregations: [{ type: 'thetaSketch', name: 't', fieldName: 'user', size: 16 }],
        postAggregations: [{ type: 'thetaSketchEstimate', name: 'e', field: { type: 'fieldAccess', fieldName: 't' } }],
      },
      {
        queryType: 'groupBy',
        granularity: 'all',
        dimensions: ['vc'],
        virtualColumns: [
          { type: 'expression', name: 'vc', expression: "concat(country, '-', code)", outputType: 'STRING' },
        ],
        filter: { type: 'expression', expression: "strlen(user) > 2 && code == '3'" },
        aggregations: [{ type: 'count', name: 'n' }],
        limitSpec: { type: 'default', limit: 5, columns: ['vc'] },
      },
      { queryType: 'search', granularity: 'all', searchDimensions: ['user'], query: { type: 'contains', value: '9' } },
      { queryType: 'scan', columns: ['country', 'user'], limit: 3, order: 'ascending' },
      {
        queryType: 'segmentMetadata',
        merge: true,
        analysisTypes: ['cardinality', 'minmax'],
      },
    ];
    for (const query of queries) {
      const a = await q({ ...query, dataSource: 'ev', intervals: iv });
      const b = await q({ ...query, dataSource: 'plain', intervals: iv });
      const norm = (v: unknown) =>
        JSON.parse(
          JSON.stringify(v, (k, x) => (k === 'segmentId' ? undefined : typeof x === 'bigint' ? String(x) : x)),
        );
      if (query.queryType === 'segmentMetadata') {
        const cols = (r: unknown) => (norm(r) as { columns: Rec }[])[0]!.columns;
        assert.deepEqual(cols(a), cols(b));
      } else assert.deepEqual(norm(a), norm(b), JSON.stringify(query));
    }
  });

  test('a distinct count whose planned dictionary is no longer current takes the general path', async () => {
    const query = {
      queryType: 'timeseries',
      dataSource: 'ev',
      intervals: iv,
      granularity: 'all',
      aggregations: [{ type: 'thetaSketch', name: 't', fieldName: 'user', size: 32 }],
      context: { finalize: false },
    };
    const before = await q(query);
    const d = engine.store.dictionary('ev', 'user')!;
    await engine.store.withConn((c) => c.run('DELETE FROM olap_dict.current WHERE type_name = $1', [d.name]));
    try {
      assert.deepEqual(await q(query), before);
    } finally {
      await engine.store.withConn((c) =>
        c.run('INSERT INTO olap_dict.current VALUES ($1, $2, $3)', ['ev', 'user', d.name]),
      );
    }
    assert.deepEqual(await q({ ...query, dataSource: 'plain' }), before);
  });

  test('SQL reads ENUM columns as strings', async () => {
    const run = async (sql: string) => (await engine.sql(sql)).rows;
    for (const ds of ['ev', 'plain']) {
      const r = await run(
        `SELECT country, COUNT(*) AS n, APPROX_COUNT_DISTINCT_DS_THETA("user") AS u, MIN(code) AS mc FROM ${ds} WHERE country > 'C' AND code < '3' GROUP BY country ORDER BY country`,
      );
      assert.deepEqual(
        r.map((x) => x[0]),
        ['DE', 'FR', 'JP', 'US'],
      );
      if (ds === 'ev') {
        const p = await run(
          `SELECT country, COUNT(*) AS n, APPROX_COUNT_DISTINCT_DS_THETA("user") AS u, MIN(code) AS mc FROM plain WHERE country > 'C' AND code < '3' GROUP BY country ORDER BY country`,
        );
        assert.deepEqual(r, p);
      }
    }
    const sqlCols = await engine.sql('SELECT country, "user" FROM ev LIMIT 1');
    assert.deepEqual(
      sqlCols.columns.map((c) => c.sqlType),
      ['VARCHAR', 'VARCHAR'],
    );
    const info = await run(
      `SELECT "COLUMN_NAME", "DATA_TYPE" FROM INFORMATION_SCHEMA.COLUMNS WHERE "TABLE_NAME" = 'ev' AND "COLUMN_NAME" = 'country'`,
    );
    assert.deepEqual(info, [['country', 'VARCHAR']]);
  });

  test('an append with new values rebuilds the dictionary; old and new rows read back', async () => {
    await engine.ingest(spec('ev', events(500, 100, 'new'), true));
    const d = engine.store.dictionary('ev', 'user');
    assert.equal(d?.size, 97 * 2);
    const r = (await q({
      queryType: 'timeseries',
      dataSource: 'ev',
      intervals: iv,
      granularity: 'all',
      filter: { type: 'bound', dimension: 'user', lower: 'new', upper: 'new~' },
      aggregations: [{ type: 'count', name: 'n' }],
    })) as { result: { n: bigint } }[];
    assert.equal(r[0]!.result.n, 100n);
    const all = (await q({
      queryType: 'timeseries',
      dataSource: 'ev',
      intervals: iv,
      granularity: 'all',
      aggregations: [{ type: 'count', name: 'n' }],
    })) as { result: { n: bigint } }[];
    assert.equal(all[0]!.result.n, 600n);
    // Druid SQL's view follows the new dictionary.
    const sql = await engine.sql(
      `SELECT COUNT(*) AS n, MAX("user") AS m FROM ev WHERE "user" >= 'new' AND "user" < 'new~'`,
    );
    assert.deepEqual(sql.rows, [[100n, 'new96']]);
  });

  test('a restart re-encodes the loaded segments', async () => {
    await engine.close();
    engine = await OlapEngine.open({ dataDir: dir });
    assert.equal(engine.store.dictionary('ev', 'user')?.size, 97 * 2);
    const r = (await q({
      queryType: 'topN',
      dataSource: 'ev',
      intervals: iv,
      granularity: 'all',
      dimension: 'country',
      metric: 'n',
      threshold: 2,
      aggregations: [{ type: 'count', name: 'n' }],
    })) as { result: Rec[] }[];
    assert.equal(r[0]!.result.length, 2);
    assert.deepEqual((await engine.sql('SELECT COUNT(DISTINCT country) FROM ev')).rows, [[5n]]);
  });
});
