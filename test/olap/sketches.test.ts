import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { OlapEngine } from '../../src/olap/index.ts';
import { tempDir } from './helpers.ts';

// Error bounds documented in docs/olap.md: theta exact below k, RSE ~ 1/sqrt(k-2) above; HLL exact up to
// 512 distinct values, RSE ~ 1.04/sqrt(4096) = 1.6% above. Tests allow 4 standard errors (deterministic hashes).
describe('sketch error bounds and mergeability', () => {
  let dir: string;
  let engine: OlapEngine;
  const N = 60_000;
  before(async () => {
    dir = tempDir();
    engine = await OlapEngine.open({ dataDir: dir });
    // Two ingestions with overlapping users (0..39999 and 20000..59999) into separate day segments.
    for (const [day, from] of [
      [1, 0],
      [2, 20_000],
    ] as const) {
      const lines: string[] = [];
      for (let i = 0; i < 40_000; i++)
        lines.push(
          `{"ts":"2021-01-0${day}T00:00:${String(i % 60).padStart(2, '0')}Z","user":"user-${from + i}","bucket":"b${i % 50}"}`,
        );
      await engine.ingest({
        type: 'index',
        spec: {
          dataSchema: {
            dataSource: 'u',
            timestampSpec: { column: 'ts' },
            dimensionsSpec: { dimensions: ['bucket'] },
            metricsSpec: [
              { type: 'thetaSketch', name: 'theta', fieldName: 'user', size: 4096 },
              { type: 'HLLSketchBuild', name: 'hll', fieldName: 'user' },
            ],
            granularitySpec: { segmentGranularity: 'day', queryGranularity: 'day' },
          },
          ioConfig: {
            inputSource: { type: 'inline', data: lines.join('\n') },
            inputFormat: { type: 'json' },
            appendToExisting: true,
          },
        },
      });
    }
  });
  after(async () => {
    await engine.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const estimate = async (filter?: unknown) => {
    const r = (await engine.query({
      queryType: 'timeseries',
      dataSource: 'u',
      intervals: ['2021-01-01/2021-01-03'],
      granularity: 'all',
      filter,
      aggregations: [
        { type: 'thetaSketch', name: 't', fieldName: 'theta', size: 4096 },
        { type: 'HLLSketchMerge', name: 'h', fieldName: 'hll' },
      ],
    })) as { result: { t: number; h: number } }[];
    return r[0]!.result;
  };

  test('merged across segments and rolled-up rows: within 4 standard errors of the true count', async () => {
    const { t, h } = await estimate();
    assert.ok(Math.abs(t - N) / N < 4 / Math.sqrt(4094), `theta ${t}`);
    assert.ok(Math.abs(h - N) / N < 4 * 0.01625, `hll ${h}`);
    // Not exact: these are estimates, so they differ from N (with overwhelming probability).
    assert.notEqual(t, N);
  });

  test('finalizing in DuckDB and in JS give the same estimate', async () => {
    const r = (await engine.query({
      queryType: 'timeseries',
      dataSource: 'u',
      intervals: ['2021-01-01/2021-01-03'],
      granularity: 'all',
      aggregations: [
        { type: 'thetaSketch', name: 'sqlSide', fieldName: 'theta', size: 4096 },
        { type: 'thetaSketch', name: 'jsSide', fieldName: 'theta', size: 4096 },
      ],
      postAggregations: [
        { type: 'thetaSketchEstimate', name: 'est', field: { type: 'fieldAccess', fieldName: 'jsSide' } },
      ],
    })) as { result: { sqlSide: number; jsSide: number; est: number } }[];
    const x = r[0]!.result;
    assert.equal(x.sqlSide, x.jsSide);
    assert.equal(x.est, x.jsSide);
    assert.ok(x.sqlSide > 50_000);
  });

  test('exact below the thresholds (theta < k, HLL <= 512)', async () => {
    // One bucket: 800 rows per ingestion, users overlap only where from+i coincide (none: step 50).
    const { t, h } = await estimate({ type: 'selector', dimension: 'bucket', value: 'b7' });
    // b7 users: i % 50 == 7 in each ingestion; 800 + 800 values, overlapping where 20000+i = j.
    const users = new Set<number>();
    for (let i = 7; i < 40_000; i += 50) {
      users.add(i);
      users.add(20_000 + i);
    }
    assert.equal(t, users.size);
    assert.equal(users.size > 512, true);
    const small = await estimate({ type: 'in', dimension: 'bucket', values: ['b3'] });
    assert.equal(small.t, users.size);
    assert.ok(Math.abs(h - users.size) / users.size < 4 * 0.01625);
  });

  test('HLL is exact for small sets', async () => {
    const r = (await engine.query({
      queryType: 'timeseries',
      dataSource: 'u',
      intervals: ['2021-01-01/2021-01-03'],
      granularity: 'all',
      filter: { type: 'bound', dimension: 'bucket', lower: 'b1', upper: 'b1' },
      aggregations: [{ type: 'HLLSketchBuild', name: 'h', fieldName: 'bucket', round: true }],
    })) as { result: { h: bigint } }[];
    assert.equal(r[0]!.result.h, 1n);
  });

  test('quantilesDoublesSketch: bounded size, exact N, rank error within 1/k across merged rows', async () => {
    const N = 50_000;
    const k = 128;
    // A deterministic shuffle of 0..N-1 over two days; queryGranularity all rolls each day into one row.
    const vals = Array.from({ length: N }, (_, i) => (i * 7919) % N);
    const lines = vals.map((v, i) => `{"ts":"2022-03-0${1 + (i % 2)}T12:00:00Z","v":${v}}`);
    await engine.ingest({
      type: 'index',
      spec: {
        dataSchema: {
          dataSource: 'q',
          timestampSpec: { column: 'ts' },
          dimensionsSpec: { dimensions: [], dimensionExclusions: ['v'] },
          metricsSpec: [{ type: 'quantilesDoublesSketch', name: 'qs', fieldName: 'v', k }],
          granularitySpec: { segmentGranularity: 'day', queryGranularity: 'all' },
        },
        ioConfig: { inputSource: { type: 'inline', data: lines.join('\n') }, inputFormat: { type: 'json' } },
      },
    });
    const stored = await engine.store.withConn(async (c) =>
      (await c.runAndReadAll('SELECT len(qs) AS n FROM druid."q"')).getRowObjectsJS().map((r) => Number(r.n)),
    );
    assert.equal(stored.length, 2);
    for (const n of stored) assert.ok(n <= 2 * k, `retained ${n}`);
    const fractions = [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99];
    const r = (await engine.query({
      queryType: 'timeseries',
      dataSource: 'q',
      intervals: ['2022-03-01/2022-03-03'],
      granularity: 'all',
      aggregations: [{ type: 'quantilesDoublesSketch', name: 'qs', fieldName: 'qs', k }],
      postAggregations: [
        {
          type: 'quantilesDoublesSketchToQuantiles',
          name: 'qv',
          field: { type: 'fieldAccess', fieldName: 'qs' },
          fractions,
        },
      ],
    })) as { result: { qs: bigint; qv: number[] } }[];
    assert.equal(r[0]!.result.qs, BigInt(N));
    r[0]!.result.qv.forEach((v, i) => {
      const trueRank = v / N; // values are 0..N-1, so a value's rank is itself / N
      assert.ok(Math.abs(trueRank - fractions[i]!) <= 1 / k, `fraction ${fractions[i]} -> ${v}`);
    });
  });
  test('quantile merges compact to <= 2k items with rank error <= N/2k (property, adversarial weights)', async () => {
    await engine.store.withConn(async (c) => {
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 2, max: 16 }),
          fc.array(fc.record({ v: fc.integer({ min: -50, max: 50 }), w: fc.integer({ min: 1, max: 1000 }) }), {
            minLength: 1,
            maxLength: 400,
          }),
          async (k, items) => {
            const lit = `[${items.map((x) => `{'v': ${x.v}::DOUBLE, 'w': ${x.w}::BIGINT}`).join(', ')}]`;
            const out = (await c.runAndReadAll(`SELECT druid_qs_merge(${lit}, ${k}) AS m`)).getRowObjectsJS()[0]!.m as {
              v: number;
              w: bigint;
            }[];
            const n = items.reduce((a, x) => a + x.w, 0);
            assert.ok(out.length <= Math.max(2 * k, items.length <= 2 * k ? items.length : 0), `kept ${out.length}`);
            assert.equal(
              out.reduce((a, x) => a + Number(x.w), 0),
              n,
            );
            // Rank (weight strictly below v) of every probe, merged vs exact.
            for (let v = -51; v <= 51; v++) {
              const exact = items.filter((x) => x.v < v).reduce((a, x) => a + x.w, 0);
              const est = out.filter((x) => x.v < v).reduce((a, x) => a + Number(x.w), 0);
              assert.ok(Math.abs(est - exact) <= n / (2 * k) + 1e-9, `v=${v}: ${est} vs ${exact} (n=${n}, k=${k})`);
            }
          },
        ),
        { numRuns: 60 },
      );
    });
  });

  test('merging many stored quantile sketches stays <= 2k items and within 1/k normalized rank error', async () => {
    const N = 60_000;
    const k = 32;
    // 120 rows (one per minute), each a sketch of 500 values compacted to <= 2k items at ingestion.
    const vals = Array.from({ length: N }, (_, i) => (i * 7919) % N);
    const lines = vals.map(
      (v, i) =>
        `{"ts":"2022-04-01T00:${String(Math.floor((i % 120) / 2)).padStart(2, '0')}:${i % 2 ? '30' : '00'}Z","v":${v}}`,
    );
    await engine.ingest({
      type: 'index',
      spec: {
        dataSchema: {
          dataSource: 'qm',
          timestampSpec: { column: 'ts' },
          dimensionsSpec: { dimensions: [], dimensionExclusions: ['v'] },
          metricsSpec: [{ type: 'quantilesDoublesSketch', name: 'qs', fieldName: 'v', k }],
          granularitySpec: { segmentGranularity: 'day', queryGranularity: 'second' },
        },
        ioConfig: { inputSource: { type: 'inline', data: lines.join('\n') }, inputFormat: { type: 'json' } },
      },
    });
    const sizes = await engine.store.withConn(
      async (c) =>
        (
          await c.runAndReadAll(
            `SELECT count(*) AS rows, sum(len(qs)) AS items, len(druid_qs_merge(flatten(list(qs)), ${k})) AS merged FROM druid."qm"`,
          )
        ).getRowObjectsJS()[0]!,
    );
    assert.equal(Number(sizes.rows), 120);
    assert.ok(Number(sizes.items) > 2 * k, `stored items ${sizes.items}`);
    assert.ok(Number(sizes.merged) <= 2 * k, `merged ${sizes.merged}`);
    const fractions = [0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99];
    const r = (await engine.query({
      queryType: 'timeseries',
      dataSource: 'qm',
      intervals: ['2022-04-01/2022-04-02'],
      granularity: 'all',
      aggregations: [{ type: 'quantilesDoublesSketch', name: 'qs', fieldName: 'qs', k }],
      postAggregations: [
        {
          type: 'quantilesDoublesSketchToQuantiles',
          name: 'qv',
          field: { type: 'fieldAccess', fieldName: 'qs' },
          fractions,
        },
      ],
    })) as { result: { qs: bigint; qv: number[] } }[];
    assert.equal(r[0]!.result.qs, BigInt(N));
    r[0]!.result.qv.forEach((v, i) => {
      assert.ok(Math.abs(v / N - fractions[i]!) <= 1 / k, `fraction ${fractions[i]} -> ${v}`);
    });
  });
  test('a lone theta distinct count over a raw column (threshold-hint path) equals the general path', async () => {
    const rows = Array.from({ length: 20_000 }, (_, i) =>
      JSON.stringify({
        ts: `2021-02-01T00:00:${String(i % 60).padStart(2, '0')}Z`,
        user: `u${(i * 37) % 6000}`,
        b: `b${i % 10}`,
      }),
    );
    await engine.ingest({
      type: 'index',
      spec: {
        dataSchema: {
          dataSource: 'raw',
          timestampSpec: { column: 'ts' },
          dimensionsSpec: { dimensions: ['user', 'b'] },
          granularitySpec: { segmentGranularity: 'day', queryGranularity: 'none', rollup: false },
        },
        ioConfig: { inputSource: { type: 'inline', data: rows.join('\n') }, inputFormat: { type: 'json' } },
      },
    });
    const run = async (extra: unknown[], filter?: unknown, post: unknown[] = []) =>
      (
        (await engine.query({
          queryType: 'timeseries',
          dataSource: 'raw',
          intervals: ['2021-02-01/2021-02-02'],
          granularity: 'all',
          ...(filter ? { filter } : {}),
          aggregations: [{ type: 'thetaSketch', name: 't', fieldName: 'user', size: 1024 }, ...extra],
          postAggregations: post,
        })) as { result: Record<string, unknown> }[]
      )[0]!.result;
    const general = (await run([{ type: 'count', name: 'n' }])).t as number; // two aggregators: general path
    const first = (await run([])).t; // no hint yet
    const hinted = (await run([])).t; // the hint from the first run
    assert.equal(first, general);
    assert.equal(hinted, general);
    assert.ok(Math.abs(general - 6000) / 6000 < 4 / Math.sqrt(1022), `estimate ${general}`);
    // A filter leaving fewer than k distinct values: the hint finds too few, the rerun is exact.
    const users = new Set<string>();
    for (let i = 3; i < 20_000; i += 10) users.add(`u${(i * 37) % 6000}`);
    assert.equal((await run([], { type: 'selector', dimension: 'b', value: 'b3' })).t, users.size);
    const withPost = await run([], undefined, [
      { type: 'thetaSketchEstimate', name: 'e', field: { type: 'fieldAccess', fieldName: 't' } },
    ]);
    assert.equal(withPost.e, general);
  });
});
