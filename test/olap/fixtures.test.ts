import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { OlapEngine, toDruidJson } from '../../src/olap/index.ts';
import { FIXTURES, fixtureText, tempDir, typedJson } from './helpers.ts';

describe('Druid fixtures: wikipedia_index (ITIndexerTest)', () => {
  let dir: string;
  let engine: OlapEngine;
  const DS = 'wikipedia_index_test';
  before(async () => {
    dir = tempDir();
    engine = await OlapEngine.open({ dataDir: dir });
    const task = JSON.parse(
      fixtureText('wikipedia_index/wikipedia_index_task.json', {
        '%%DATASOURCE%%': DS,
        '%%SEGMENT_AVAIL_TIMEOUT_MILLIS%%': '0',
        '/resources/data/batch_index/json': path.join(FIXTURES, 'wikipedia_index'),
      }),
    );
    const r = await engine.ingest(task);
    assert.equal(r.rowStats.processed, 10);
  });
  after(async () => {
    await engine.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const cases = JSON.parse(fixtureText('wikipedia_index/wikipedia_index_queries.json', { '%%DATASOURCE%%': DS })) as {
    description: string;
    query: unknown;
  }[];
  const expectedTexts = (
    typedJson(fixtureText('wikipedia_index/wikipedia_index_queries.json', { '%%DATASOURCE%%': DS })) as {
      expectedResults: unknown;
    }[]
  ).map((c) => c.expectedResults);
  cases.forEach((c, i) => {
    test(c.description + ` (#${i})`, async () => {
      const actual = await engine.query(c.query);
      assert.deepStrictEqual(typedJson(toDruidJson(actual)), expectedTexts[i]);
    });
  });

  test('maxRowsPerSegment 3 splits each day into several segments', () => {
    const segs = engine.store.datasources.get(DS)!.segments;
    assert.equal(segs.length, 4);
    assert.deepEqual(
      segs.map((s) => s.rows),
      [3, 2, 3, 2],
    );
  });
});

describe('Druid fixtures: rollup tutorial', () => {
  test('rollup-index.json over rollup-data.json gives the tutorial rows', async () => {
    const dir = tempDir();
    const engine = await OlapEngine.open({ dataDir: dir, baseDirRoot: FIXTURES });
    try {
      const task = JSON.parse(fixtureText('rollup/rollup-index.json', { 'quickstart/tutorial': 'rollup' }));
      const r = await engine.ingest(task);
      assert.equal(r.rowStats.processed, 9);
      const scan = (await engine.query({
        queryType: 'scan',
        dataSource: 'rollup-tutorial',
        intervals: ['2018-01-01/2018-01-03'],
        order: 'ascending',
        columns: ['__time', 'bytes', 'count', 'dstIP', 'packets', 'srcIP'],
      })) as { events: Record<string, unknown>[] }[];
      const rows = scan
        .flatMap((b) => b.events)
        .map((e) => ({ ...e, __time: new Date(Number(e.__time)).toISOString() }));
      const expected = (typedJson(fixtureText('rollup/rollup-expected.json')) as { expected: unknown[] }).expected;
      assert.deepStrictEqual(typedJson(toDruidJson(rows)), expected);
    } finally {
      await engine.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Druid fixtures: wikiticker', () => {
  let dir: string;
  let engine: OlapEngine;
  const DS = 'wikiticker_it';
  before(async () => {
    dir = tempDir();
    engine = await OlapEngine.open({ dataDir: dir, baseDirRoot: FIXTURES });
    const task = JSON.parse(
      fixtureText('wikiticker/wikiticker_index_task.json', { '%%DATASOURCE%%': DS, '/shared/wikiticker-it': FIXTURES }),
    );
    const r = await engine.ingest(task);
    assert.equal(r.rowStats.processed, 39244);
    const wiki = JSON.parse(fixtureText('wikiticker/wikipedia-index.json', { 'quickstart/tutorial/': '.' }));
    await engine.ingest(wiki);
  });
  after(async () => {
    await engine.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const text = fixtureText('wikiticker/nestedquerypushdown_queries.json', { '%%DATASOURCE%%': DS });
  const cases = JSON.parse(text) as { description: string; query: unknown }[];
  const expected = (typedJson(text) as { expectedResults: unknown }[]).map((c) => c.expectedResults);
  cases.forEach((c, i) => {
    test(`${c.description} (#${i})`, async () => {
      const actual = await engine.query(c.query);
      assert.deepStrictEqual(typedJson(toDruidJson(actual)), expected[i]);
    });
  });

  test('wikipedia-top-pages.json topN matches the tutorial (ties compared as sets)', async () => {
    const q = JSON.parse(fixtureText('wikiticker/wikipedia-top-pages.json'));
    const actual = (await engine.query(q)) as { result: { page: string; count: bigint }[] }[];
    const exp = (
      JSON.parse(fixtureText('wikiticker/wikipedia-top-pages.expected.json')) as {
        expected: { page: string; Edits: number }[];
      }
    ).expected;
    assert.equal(actual.length, 1);
    const got = actual[0]!.result;
    assert.deepEqual(
      got.map((r) => Number(r.count)),
      exp.map((e) => e.Edits),
    );
    assert.equal(typeof got[0]!.count, 'bigint');
    const key = (rows: { page: string; n: number }[]) => rows.map((r) => `${r.n}:${r.page}`).sort();
    assert.deepEqual(
      key(got.map((r) => ({ page: r.page, n: Number(r.count) }))),
      key(exp.map((e) => ({ page: e.page, n: e.Edits }))),
    );
  });

  test('wikipedia-top-pages-sql.json over Druid SQL matches the tutorial (ties compared as sets)', async () => {
    const { query } = JSON.parse(fixtureText('wikiticker/wikipedia-top-pages-sql.json')) as { query: string };
    const r = await engine.sql(query);
    assert.deepEqual(
      r.columns.map((c) => [c.name, c.type]),
      [
        ['page', 'STRING'],
        ['Edits', 'LONG'],
      ],
    );
    const exp = (
      JSON.parse(fixtureText('wikiticker/wikipedia-top-pages.expected.json')) as {
        expected: { page: string; Edits: number }[];
      }
    ).expected;
    assert.deepEqual(
      r.rows.map((x) => Number(x[1])),
      exp.map((e) => e.Edits),
    );
    const key = (rows: [unknown, unknown][]) => rows.map(([p, n]) => `${Number(n)}:${p}`).sort();
    assert.deepEqual(key(r.rows as [unknown, unknown][]), key(exp.map((e) => [e.page, e.Edits])));
  });
});
