import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { OlapEngine, toDruidJson } from '../../src/olap/index.ts';
import { tempDir, typedJson } from './helpers.ts';

type Rec = Record<string, unknown>;

const EVENTS: Rec[] = [];
const COUNTRIES = ['US', 'FR', 'DE', 'JP'];
for (let i = 0; i < 48; i++) {
  EVENTS.push({
    ts: new Date(Date.UTC(2021, 0, 1, i, 15)).toISOString(), // one event per hour over two days
    country: COUNTRIES[i % 4],
    user: `u${i % 6}`,
    tags: i % 3 === 0 ? ['a', 'b'] : i % 3 === 1 ? ['b'] : [],
    bytes: i * 10,
    price: i / 4,
  });
}

function spec(dataSource: string, extra: Rec = {}, data = EVENTS.map((e) => JSON.stringify(e)).join('\n')) {
  return {
    type: 'index_parallel',
    spec: {
      dataSchema: {
        dataSource,
        timestampSpec: { column: 'ts', format: 'iso' },
        dimensionsSpec: { dimensions: ['country', 'user', 'tags'] },
        metricsSpec: [
          { type: 'count', name: 'count' },
          { type: 'longSum', name: 'bytes', fieldName: 'bytes' },
          { type: 'doubleSum', name: 'price', fieldName: 'price' },
          { type: 'thetaSketch', name: 'users_theta', fieldName: 'user' },
          { type: 'HLLSketchBuild', name: 'users_hll', fieldName: 'user' },
          { type: 'quantilesDoublesSketch', name: 'bytes_q', fieldName: 'bytes' },
          { type: 'longMax', name: 'bytes_max', fieldName: 'bytes' },
        ],
        granularitySpec: { segmentGranularity: 'day', queryGranularity: 'hour', rollup: true },
        ...extra,
      },
      ioConfig: { type: 'index_parallel', inputSource: { type: 'inline', data }, inputFormat: { type: 'json' } },
      tuningConfig: { type: 'index_parallel' },
    },
  };
}

const J = (v: unknown) => typedJson(toDruidJson(v));

describe('native queries', () => {
  let dir: string;
  let engine: OlapEngine;
  const base = { dataSource: 'ev', intervals: ['2021-01-01/2021-01-03'] };
  before(async () => {
    dir = tempDir();
    engine = await OlapEngine.open({ dataDir: dir });
    await engine.ingest(spec('ev'));
  });
  after(async () => {
    await engine.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const sum = (f: (e: Rec) => boolean, k = 'bytes') => EVENTS.filter(f).reduce((a, e) => a + (e[k] as number), 0);

  test('filters: selector, in, bound, range, like, regex, search, interval, null, not/and/or, expression', async () => {
    const cases: [unknown, (e: Rec) => boolean][] = [
      [{ type: 'selector', dimension: 'country', value: 'US' }, (e) => e.country === 'US'],
      [{ type: 'equals', column: 'country', matchValueType: 'STRING', matchValue: 'FR' }, (e) => e.country === 'FR'],
      [{ type: 'in', dimension: 'country', values: ['US', 'JP'] }, (e) => e.country === 'US' || e.country === 'JP'],
      [
        { type: 'bound', dimension: 'user', lower: 'u2', upper: 'u4', upperStrict: true },
        (e) => e.user === 'u2' || e.user === 'u3',
      ],
      [{ type: 'bound', dimension: 'bytes_max', lower: '100', ordering: 'numeric' }, (e) => (e.bytes as number) >= 100],
      [
        { type: 'range', column: 'bytes_max', matchValueType: 'LONG', lower: 50, upper: 200, upperOpen: true },
        (e) => (e.bytes as number) >= 50 && (e.bytes as number) < 200,
      ],
      [{ type: 'like', dimension: 'country', pattern: '%R' }, (e) => e.country === 'FR'],
      [{ type: 'regex', dimension: 'country', pattern: '^[DJ]' }, (e) => e.country === 'DE' || e.country === 'JP'],
      [
        { type: 'search', dimension: 'country', query: { type: 'insensitive_contains', value: 'u' } },
        (e) => e.country === 'US',
      ],
      [
        { type: 'interval', dimension: '__time', intervals: ['2021-01-01T10:00/2021-01-01T12:00'] },
        (e) => e.ts === '2021-01-01T10:15:00.000Z' || e.ts === '2021-01-01T11:15:00.000Z',
      ],
      [{ type: 'selector', dimension: 'tags', value: 'a' }, (e) => (e.tags as string[]).includes('a')],
      [{ type: 'null', column: 'tags' }, (e) => (e.tags as string[]).length === 0],
      [{ type: 'not', field: { type: 'selector', dimension: 'country', value: 'US' } }, (e) => e.country !== 'US'],
      [
        {
          type: 'and',
          fields: [
            { type: 'selector', dimension: 'country', value: 'US' },
            { type: 'selector', dimension: 'tags', value: 'b' },
          ],
        },
        (e) => e.country === 'US' && (e.tags as string[]).includes('b'),
      ],
      [
        {
          type: 'or',
          fields: [
            { type: 'selector', dimension: 'country', value: 'US' },
            { type: 'selector', dimension: 'user', value: 'u1' },
          ],
        },
        (e) => e.country === 'US' || e.user === 'u1',
      ],
      [
        { type: 'expression', expression: "bytes_max > 300 && country == 'DE'" },
        (e) => (e.bytes as number) > 300 && e.country === 'DE',
      ],
      [{ type: 'true' }, () => true],
      [{ type: 'false' }, () => false],
    ];
    for (const [filter, pred] of cases) {
      const r = (await engine.query({
        ...base,
        queryType: 'timeseries',
        granularity: 'all',
        filter,
        aggregations: [{ type: 'longSum', name: 's', fieldName: 'bytes' }],
      })) as { result: { s: bigint } }[];
      const got = r.length ? Number(r[0]!.result.s) : 0;
      assert.equal(got, sum(pred), JSON.stringify(filter));
    }
  });

  test('timeseries by hour fills empty buckets; period granularity with a time zone', async () => {
    const r = (await engine.query({
      ...base,
      queryType: 'timeseries',
      granularity: 'hour',
      filter: { type: 'selector', dimension: 'country', value: 'US' },
      intervals: ['2021-01-01T00:00/2021-01-01T05:00'],
      aggregations: [{ type: 'longSum', name: 'n', fieldName: 'count' }],
    })) as { timestamp: string; result: { n: bigint } }[];
    assert.deepEqual(
      r.map((x) => [x.timestamp, Number(x.result.n)]),
      [
        ['2021-01-01T00:00:00.000Z', 1],
        ['2021-01-01T01:00:00.000Z', 0],
        ['2021-01-01T02:00:00.000Z', 0],
        ['2021-01-01T03:00:00.000Z', 0],
        ['2021-01-01T04:00:00.000Z', 1],
      ],
    );
    const tz = (await engine.query({
      ...base,
      queryType: 'timeseries',
      granularity: { type: 'period', period: 'P1D', timeZone: 'America/New_York' },
      aggregations: [{ type: 'longSum', name: 'n', fieldName: 'count' }],
    })) as { timestamp: string; result: { n: bigint } }[];
    // New York days start at 05:00Z: 5 events before (Dec 31 NY), 24, then 19.
    assert.deepEqual(
      tz.map((x) => [x.timestamp, Number(x.result.n)]),
      [
        ['2020-12-31T05:00:00.000Z', 5],
        ['2021-01-01T05:00:00.000Z', 24],
        ['2021-01-02T05:00:00.000Z', 19],
      ],
    );
    const dur = (await engine.query({
      ...base,
      queryType: 'timeseries',
      granularity: { type: 'duration', duration: 43_200_000 },
      aggregations: [{ type: 'longSum', name: 'n', fieldName: 'count' }],
    })) as { result: { n: bigint } }[];
    assert.deepEqual(
      dur.map((x) => Number(x.result.n)),
      [12, 12, 12, 12],
    );
  });

  test('topN by a metric and by dimension order; virtual column', async () => {
    const r = (await engine.query({
      ...base,
      queryType: 'topN',
      granularity: 'all',
      dimension: 'country',
      metric: 'b',
      threshold: 2,
      aggregations: [{ type: 'longSum', name: 'b', fieldName: 'bytes' }],
    })) as { result: Rec[] }[];
    const totals = COUNTRIES.map((c) => [c, sum((e) => e.country === c)] as const).sort((a, b) => b[1] - a[1]);
    assert.deepEqual(
      r[0]!.result.map((x) => [x.country, Number(x.b)]),
      totals.slice(0, 2),
    );
    const lex = (await engine.query({
      ...base,
      queryType: 'topN',
      granularity: 'all',
      dimension: { type: 'default', dimension: 'vc', outputName: 'v' },
      virtualColumns: [{ type: 'expression', name: 'vc', expression: "concat(country, '-x')", outputType: 'STRING' }],
      metric: { type: 'dimension' },
      threshold: 3,
      aggregations: [{ type: 'count', name: 'n' }],
    })) as { result: Rec[] }[];
    assert.deepEqual(
      lex[0]!.result.map((x) => x.v),
      ['DE-x', 'FR-x', 'JP-x'],
    );
  });

  test('groupBy with multi-value explode, having, limitSpec, subtotals', async () => {
    const r = (await engine.query({
      ...base,
      queryType: 'groupBy',
      granularity: 'all',
      dimensions: ['tags'],
      aggregations: [{ type: 'longSum', name: 'n', fieldName: 'count' }],
    })) as { event: Rec }[];
    assert.deepEqual(
      J(r.map((x) => x.event)),
      J([
        { tags: null, n: 16n },
        { tags: 'a', n: 16n },
        { tags: 'b', n: 32n },
      ]),
    );
    const h = (await engine.query({
      ...base,
      queryType: 'groupBy',
      granularity: 'all',
      dimensions: ['country', 'user'],
      aggregations: [{ type: 'longSum', name: 'b', fieldName: 'bytes' }],
      having: { type: 'greaterThan', aggregation: 'b', value: 700 },
      limitSpec: {
        type: 'default',
        limit: 2,
        columns: [{ dimension: 'b', direction: 'descending', dimensionOrder: 'numeric' }],
      },
    })) as { event: Rec }[];
    const groups = new Map<string, number>();
    for (const e of EVENTS)
      groups.set(`${e.country}|${e.user}`, (groups.get(`${e.country}|${e.user}`) ?? 0) + (e.bytes as number));
    const exp = [...groups.entries()]
      .filter(([, v]) => v > 700)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 2);
    assert.deepEqual(
      h.map((x) => [`${x.event.country}|${x.event.user}`, Number(x.event.b)]),
      exp,
    );
    const sub = (await engine.query({
      ...base,
      queryType: 'groupBy',
      granularity: 'all',
      dimensions: ['country'],
      subtotalsSpec: [['country'], []],
      aggregations: [{ type: 'longSum', name: 'n', fieldName: 'count' }],
    })) as { event: Rec }[];
    assert.equal(sub.length, 5);
    assert.deepEqual(J(sub[4]!.event), J({ n: 48n }));
  });

  test('sketch aggregators and post-aggregators', async () => {
    const r = (await engine.query({
      ...base,
      queryType: 'timeseries',
      granularity: 'all',
      aggregations: [
        { type: 'thetaSketch', name: 't', fieldName: 'users_theta' },
        { type: 'HLLSketchMerge', name: 'h', fieldName: 'users_hll', round: true },
        { type: 'quantilesDoublesSketch', name: 'q', fieldName: 'bytes_q' },
        { type: 'cardinality', name: 'card', fieldNames: ['country'] },
        {
          type: 'filtered',
          name: 'fr',
          filter: { type: 'selector', dimension: 'country', value: 'FR' },
          aggregator: { type: 'count', name: 'x' },
        },
        { type: 'thetaSketch', name: 'tu', fieldName: 'user' },
      ],
      postAggregations: [
        {
          type: 'quantilesDoublesSketchToQuantile',
          name: 'median',
          field: { type: 'fieldAccess', fieldName: 'q' },
          fraction: 0.5,
        },
        { type: 'expression', name: 'ratio', expression: 'fr * 2 + t / 4' },
        { type: 'expression', name: 'cmp', expression: "if(fr > 10 && h == 6, 'big', 'small')" },
        {
          type: 'thetaSketchEstimate',
          name: 'inter',
          field: {
            type: 'thetaSketchSetOp',
            name: 'i',
            func: 'INTERSECT',
            fields: [
              { type: 'fieldAccess', fieldName: 't' },
              { type: 'fieldAccess', fieldName: 'tu' },
            ],
          },
        },
      ],
    })) as { result: Rec }[];
    assert.deepEqual(
      J(r[0]!.result),
      J({ t: 6, h: 6n, q: 48n, card: 4, fr: 12n, tu: 6, median: 240, ratio: 25.5, cmp: 'big', inter: 6 }),
    );
  });

  test('scan, search, timeBoundary, segmentMetadata, dataSourceMetadata', async () => {
    const s = (await engine.query({
      ...base,
      queryType: 'scan',
      columns: ['__time', 'country', 'tags', 'bytes'],
      limit: 3,
      order: 'ascending',
    })) as {
      events: Rec[];
    }[];
    assert.deepEqual(
      J(s.flatMap((b) => b.events)),
      J([
        { __time: BigInt(Date.UTC(2021, 0, 1, 0)), country: 'US', tags: ['a', 'b'], bytes: 0n },
        { __time: BigInt(Date.UTC(2021, 0, 1, 1)), country: 'FR', tags: 'b', bytes: 10n },
        { __time: BigInt(Date.UTC(2021, 0, 1, 2)), country: 'DE', tags: null, bytes: 20n },
      ]),
    );
    const se = (await engine.query({
      ...base,
      queryType: 'search',
      searchDimensions: ['country', 'user'],
      query: { type: 'insensitive_contains', value: 'u' },
    })) as { result: Rec[] }[];
    assert.deepEqual(
      J(se[0]!.result),
      J([
        { dimension: 'country', value: 'US', count: 12n },
        ...[0, 1, 2, 3, 4, 5].map((i) => ({ dimension: 'user', value: `u${i}`, count: 8n })),
      ]),
    );
    const tb = await engine.query({ queryType: 'timeBoundary', dataSource: 'ev' });
    assert.deepEqual(
      J(tb),
      J([
        {
          timestamp: '2021-01-01T00:00:00.000Z',
          result: { minTime: '2021-01-01T00:00:00.000Z', maxTime: '2021-01-02T23:00:00.000Z' },
        },
      ]),
    );
    const sm = (await engine.query({ queryType: 'segmentMetadata', dataSource: 'ev', merge: true })) as Rec[];
    const cols = sm[0]!.columns as Record<string, Rec>;
    assert.equal(cols.country!.cardinality, 4n);
    assert.equal(cols.tags!.hasMultipleValues, true);
    assert.equal(cols.users_theta!.type, 'COMPLEX<thetaSketch>');
    assert.equal(sm[0]!.numRows, 48n);
    const dm = await engine.query({ queryType: 'dataSourceMetadata', dataSource: 'ev' });
    assert.deepEqual(
      J(dm),
      J([{ timestamp: '2021-01-02T23:00:00.000Z', result: { maxIngestedEventTime: '2021-01-02T23:00:00.000Z' } }]),
    );
  });

  test('a numeric dimension groups as strings (Druid default outputType), or as LONG when asked', async () => {
    const q = (dim: unknown) =>
      engine.query({
        ...base,
        queryType: 'groupBy',
        granularity: 'all',
        dimensions: [dim],
        filter: { type: 'bound', dimension: 'bytes_max', upper: '100', ordering: 'numeric' },
        aggregations: [{ type: 'count', name: 'n' }],
      }) as Promise<{ event: Rec }[]>;
    const asString = await q({ type: 'default', dimension: 'bytes_max', outputName: 'b' });
    const strs = asString.map((r) => r.event.b);
    assert.deepEqual(strs, ['0', '10', '100', '20', '30', '40', '50', '60', '70', '80', '90']);
    const asLong = await q({ type: 'default', dimension: 'bytes_max', outputName: 'b', outputType: 'LONG' });
    assert.deepEqual(
      asLong.map((r) => r.event.b),
      [0n, 10n, 20n, 30n, 40n, 50n, 60n, 70n, 80n, 90n, 100n],
    );
  });

  test('inline and union data sources', async () => {
    const inline = (await engine.query({
      queryType: 'groupBy',
      dataSource: {
        type: 'inline',
        columnNames: ['__time', 'k', 'tags', 'n'],
        rows: [
          [Date.UTC(2021, 0, 1), 'a', ['x', 'y'], 1],
          [Date.UTC(2021, 0, 1), 'b', ['y'], 2],
        ],
      },
      intervals: ['2021/2022'],
      granularity: 'all',
      dimensions: ['tags'],
      aggregations: [{ type: 'doubleSum', name: 's', fieldName: 'n' }],
    })) as { event: Rec }[];
    assert.deepEqual(
      J(inline.map((r) => r.event)),
      J([
        { tags: 'x', s: 1 },
        { tags: 'y', s: 3 },
      ]),
    );
    const union = (await engine.query({
      ...base,
      queryType: 'timeseries',
      dataSource: { type: 'union', dataSources: ['ev', 'ev'] },
      granularity: 'all',
      aggregations: [{ type: 'longSum', name: 'n', fieldName: 'count' }],
    })) as { result: { n: bigint } }[];
    assert.equal(union[0]!.result.n, 96n);
  });

  test('queries publish diagnostics events', async () => {
    const seen: Rec[] = [];
    const onMsg = (m: unknown) => seen.push(m as Rec);
    diagnostics.subscribe('tributary:olap:query', onMsg);
    try {
      await engine.query(
        { queryType: 'timeBoundary', dataSource: 'ev', context: { queryId: 'diag-1' } },
        { useCache: false },
      );
    } finally {
      diagnostics.unsubscribe('tributary:olap:query', onMsg);
    }
    assert.deepEqual(
      seen.map((m) => [m.event, m.queryId, m.dataSources]),
      [['end', 'diag-1', ['ev']]],
    );
  });

  test('unknown datasource answers [] like Druid', async () => {
    assert.deepEqual(await engine.query({ queryType: 'timeseries', dataSource: 'missing', aggregations: [] }), []);
  });

  test('segments survive a restart (Parquet files + metadata)', async () => {
    const files = fs.readdirSync(path.join(engine.store.dsDir('ev'), 'segments'));
    assert.equal(files.length, 2);
    const e2 = await OlapEngine.open({ dataDir: path.join(dir) }).catch(() => undefined);
    // A second engine over the same dir (read-only use) sees the same rows.
    assert.ok(e2);
    const r = (await e2.query({
      ...base,
      queryType: 'timeseries',
      granularity: 'all',
      aggregations: [{ type: 'longSum', name: 'n', fieldName: 'count' }],
    })) as { result: { n: bigint } }[];
    assert.equal(r[0]!.result.n, 48n);
    await e2.close();
  });
});

describe('ingestion specs and formats', () => {
  let dir: string;
  let engine: OlapEngine;
  before(async () => {
    dir = tempDir();
    engine = await OlapEngine.open({ dataDir: dir });
  });
  after(async () => {
    await engine.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const count = async (ds: string, filter?: unknown) => {
    const r = (await engine.query({
      queryType: 'timeseries',
      dataSource: ds,
      granularity: 'all',
      filter,
      aggregations: [
        { type: 'longSum', name: 'n', fieldName: 'count' },
        { type: 'count', name: 'rows' },
      ],
    })) as { result: { n: bigint; rows: bigint } }[];
    return r.length ? { n: Number(r[0]!.result.n), rows: Number(r[0]!.result.rows) } : { n: 0, rows: 0 };
  };
  const base = (ds: string, inputFormat: Rec, data: string, dataSchema: Rec = {}) => ({
    type: 'index',
    spec: {
      dataSchema: {
        dataSource: ds,
        timestampSpec: { column: 'ts', format: 'auto' },
        dimensionsSpec: { dimensions: ['a', 'b'] },
        metricsSpec: [
          { type: 'count', name: 'count' },
          { type: 'doubleSum', name: 'v', fieldName: 'v' },
        ],
        granularitySpec: { segmentGranularity: 'day', queryGranularity: 'day' },
        ...dataSchema,
      },
      ioConfig: { inputSource: { type: 'inline', data }, inputFormat },
    },
  });

  test('CSV with header, TSV with columns and list delimiter, rollup by day', async () => {
    await engine.ingest(
      base(
        'csv',
        { type: 'csv', findColumnsFromHeader: true },
        'ts,a,b,v\n2021-01-01T01:00:00Z,x,"q,1",1.5\n2021-01-01T02:00:00Z,x,"q,1",2\n2021-01-01T03:00:00Z,y,z,3\n',
      ),
    );
    assert.deepEqual(await count('csv'), { n: 3, rows: 2 });
    await engine.ingest(
      base(
        'tsv',
        { type: 'tsv', columns: ['ts', 'a', 'b', 'v'], listDelimiter: '|' },
        '1609462800000\tx\tm|n\t1\n1609466400000\ty\tm\t2\n',
      ),
    );
    assert.deepEqual(await count('tsv', { type: 'selector', dimension: 'b', value: 'n' }), { n: 1, rows: 1 });
    assert.deepEqual(await count('tsv', { type: 'selector', dimension: 'b', value: 'm' }), { n: 2, rows: 2 });
  });

  test('Parquet input from a local source, transforms and transform filter, schema discovery', async () => {
    const inDir = path.join(dir, 'input');
    fs.mkdirSync(inDir);
    const pq = path.join(inDir, 'in.parquet');
    await engine.store.withConn(async (c) => {
      await c.run(
        `COPY (SELECT TIMESTAMP '2021-01-01 00:00:00' + INTERVAL (i) MINUTE AS ts, 'k' || (i % 3) AS a, i AS v FROM range(30) t(i)) TO '${pq}' (FORMAT parquet)`,
      );
    });
    await engine.ingest({
      type: 'index_parallel',
      spec: {
        dataSchema: {
          dataSource: 'pq',
          timestampSpec: { column: 'ts' },
          dimensionsSpec: { dimensions: [] },
          metricsSpec: [{ type: 'count', name: 'count' }],
          granularitySpec: { queryGranularity: 'none', rollup: false },
          transformSpec: {
            transforms: [{ type: 'expression', name: 'up', expression: 'upper(a)' }],
            filter: { type: 'not', field: { type: 'selector', dimension: 'a', value: 'k0' } },
          },
        },
        ioConfig: {
          inputSource: { type: 'local', baseDir: inDir, filter: '*.parquet' },
          inputFormat: { type: 'parquet' },
        },
      },
    });
    assert.deepEqual(await count('pq'), { n: 20, rows: 20 });
    assert.deepEqual(await count('pq', { type: 'selector', dimension: 'up', value: 'K1' }), { n: 10, rows: 10 });
    const meta = engine.store.datasources.get('pq')!;
    assert.deepEqual(
      meta.columns.map((c) => c.name),
      ['a', 'v', 'up', 'count'],
    );
  });

  test('appendToExisting false replaces the interval; true adds partitions', async () => {
    const d = '{"ts":"2021-02-01T00:00:00Z","a":"x","v":1}\n';
    await engine.ingest(base('rep', { type: 'json' }, d));
    await engine.ingest(base('rep', { type: 'json' }, d));
    assert.deepEqual(await count('rep'), { n: 1, rows: 1 });
    const s = base('rep', { type: 'json' }, d);
    (s.spec.ioConfig as Rec).appendToExisting = true;
    await engine.ingest(s);
    assert.deepEqual(await count('rep'), { n: 2, rows: 2 });
    assert.equal(engine.store.datasources.get('rep')!.segments.length, 2);
  });

  test('a column whose JSON type changes after the first 20,000 records loses no rows', async () => {
    const lines = Array.from({ length: 25_010 }, (_, i) =>
      JSON.stringify({ ts: '2021-03-01T00:00:00Z', a: i < 25_000 ? i % 7 : `code-${i}`, v: 1 }),
    );
    const r = await engine.ingest(
      base('late', { type: 'json' }, lines.join('\n'), {
        granularitySpec: { queryGranularity: 'none', rollup: false },
      }),
    );
    assert.equal(r.rowStats.processed, 25_010);
    assert.deepEqual(await count('late', { type: 'like', dimension: 'a', pattern: 'code-%' }), { n: 10, rows: 10 });
  });

  test('spec validation names the field', () => {
    const bad: [unknown, RegExp][] = [
      [{ type: 'index', spec: { dataSchema: { dataSource: 'x' }, ioConfig: {} } }, /spec\.ioConfig\.inputSource/],
      [{ type: 'hadoop', spec: {} }, /task\.type/],
      [base('x', { type: 'xml' }, ''), /spec\.ioConfig\.inputFormat\.type/],
      [
        base('x', { type: 'json' }, '', { metricsSpec: [{ type: 'longSum', name: 'm' }] }),
        /spec\.dataSchema\.metricsSpec\[0\]\.fieldName/,
      ],
      [
        base('x', { type: 'json' }, '', { granularitySpec: { segmentGranularity: 'fortnight' } }),
        /spec\.dataSchema\.granularitySpec\.segmentGranularity/,
      ],
      [base('x', { type: 'csv' }, ''), /spec\.ioConfig\.inputFormat\.columns/],
      [base('x', { type: 'json' }, '', { dimensionsSpec: { dimensions: ['a', 'a'] } }), /dimensions\[1\]/],
    ];
    for (const [s, re] of bad) assert.throws(() => engine.submitTask(s), re);
  });
});
