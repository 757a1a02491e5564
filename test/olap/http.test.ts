import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import zlib from 'node:zlib';
import Fastify, { type FastifyInstance } from 'fastify';
import { druidRoutes, OlapEngine } from '../../src/olap/index.ts';
import { fixtureText, tempDir, typedJson } from './helpers.ts';

const HOSTILE = `evil"; DROP TABLE x; --'ds`;

describe('Druid HTTP API', () => {
  let dir: string;
  let engine: OlapEngine;
  let app: FastifyInstance;
  let base: string;

  const post = async (path: string, body: unknown) => {
    const r = await fetch(base + path, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: r.status, text: await r.text(), headers: r.headers };
  };
  const waitTask = async (id: string) => {
    for (;;) {
      const r = await fetch(`${base}/druid/indexer/v1/task/${encodeURIComponent(id)}/status`);
      const s = (await r.json()) as { status: { status: string; errorMsg: string | null } };
      if (s.status.status !== 'RUNNING') return s.status;
      await new Promise((res) => setTimeout(res, 20));
    }
  };

  before(async () => {
    dir = tempDir();
    engine = await OlapEngine.open({ dataDir: dir });
    app = Fastify();
    await app.register(druidRoutes, { engine });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const addr = app.server.address() as { port: number };
    base = `http://127.0.0.1:${addr.port}`;
  });
  after(async () => {
    await app.close();
    await engine.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('health answers true', async () => {
    const r = await fetch(`${base}/status/health`);
    assert.equal(await r.text(), 'true');
  });

  test('batch task with an inline source, status, reports, then native and SQL queries', async () => {
    const data = fixtureText('rollup/rollup-data.json') + '\n{"timestamp":"not a time","srcIP":"x"}\n';
    const spec = JSON.parse(fixtureText('rollup/rollup-index.json'));
    spec.spec.ioConfig.inputSource = { type: 'inline', data };
    const sub = await post('/druid/indexer/v1/task', spec);
    assert.equal(sub.status, 200);
    const id = JSON.parse(sub.text).task as string;
    const st = await waitTask(id);
    assert.equal(st.status, 'SUCCESS', String(st.errorMsg));
    const rep = (await (await fetch(`${base}/druid/indexer/v1/task/${id}/reports`)).json()) as {
      ingestionStatsAndErrors: { payload: { rowStats: { buildSegments: Record<string, number> } } };
    };
    assert.deepEqual(rep.ingestionStatsAndErrors.payload.rowStats.buildSegments, {
      processed: 9,
      processedWithError: 0,
      thrownAway: 0,
      unparseable: 1,
    });
    const ds = await (await fetch(`${base}/druid/v2/datasources`)).json();
    assert.deepEqual(ds, ['rollup-tutorial']);

    const ts = await post('/druid/v2', {
      queryType: 'timeseries',
      dataSource: 'rollup-tutorial',
      granularity: 'day',
      intervals: ['2018-01-01/2018-01-03'],
      aggregations: [
        { type: 'longSum', name: 'packets', fieldName: 'packets' },
        { type: 'count', name: 'rows' },
      ],
      postAggregations: [
        {
          type: 'arithmetic',
          name: 'avg',
          fn: '/',
          fields: [
            { type: 'fieldAccess', fieldName: 'packets' },
            { type: 'fieldAccess', fieldName: 'rows' },
          ],
        },
      ],
    });
    assert.equal(ts.status, 200);
    assert.deepStrictEqual(
      typedJson(ts.text),
      typedJson(
        '[{"timestamp":"2018-01-01T00:00:00.000Z","result":{"packets":750,"rows":3,"avg":250.0}},{"timestamp":"2018-01-02T00:00:00.000Z","result":{"packets":173,"rows":2,"avg":86.5}}]',
      ),
    );

    const sql = await post('/druid/v2/sql', {
      query:
        'SELECT __time, srcIP, SUM(packets) AS p, COUNT(*) AS c FROM "rollup-tutorial" WHERE srcIP = ? GROUP BY 1, 2 ORDER BY 1 LIMIT 2',
      parameters: [{ type: 'VARCHAR', value: '1.1.1.1' }],
    });
    assert.equal(sql.status, 200, sql.text);
    assert.deepStrictEqual(
      typedJson(sql.text),
      typedJson(
        '[{"__time":"2018-01-01T01:01:00.000Z","srcIP":"1.1.1.1","p":286,"c":1},{"__time":"2018-01-01T01:02:00.000Z","srcIP":"1.1.1.1","p":415,"c":1}]',
      ),
    );
  });

  test('JSON lines that are not JSON are counted as unparseable in task reports (inline and gzip files)', async () => {
    const good = (i: number) => JSON.stringify({ ts: `2023-05-01T00:0${i}:00Z`, k: `v${i % 2}`, n: i });
    // 4 good records, 3 lines that are not JSON, one with an unparseable timestamp, blank lines ignored.
    const lines = [
      good(0),
      '{"ts": "2023-05-01T00:00:00Z", "k": ',
      good(1),
      'not json at all',
      '',
      good(2),
      '   ',
      '}{',
      good(3),
    ];
    lines.push(JSON.stringify({ ts: 'never', k: 'x', n: 9 }));
    const spec = (inputSource: unknown) => ({
      type: 'index_parallel',
      spec: {
        dataSchema: {
          dataSource: 'badlines',
          timestampSpec: { column: 'ts', format: 'iso' },
          dimensionsSpec: { dimensions: ['k'] },
          metricsSpec: [{ type: 'longSum', name: 'n', fieldName: 'n' }],
          granularitySpec: { segmentGranularity: 'day', queryGranularity: 'none', rollup: false },
        },
        ioConfig: { type: 'index_parallel', inputSource, inputFormat: { type: 'json' } },
      },
    });
    const sub = await post('/druid/indexer/v1/task', spec({ type: 'inline', data: lines.join('\n') }));
    const id = JSON.parse(sub.text).task as string;
    assert.equal((await waitTask(id)).status, 'SUCCESS');
    const rep = (await (await fetch(`${base}/druid/indexer/v1/task/${id}/reports`)).json()) as {
      ingestionStatsAndErrors: { payload: { rowStats: { buildSegments: Record<string, number> } } };
    };
    assert.deepEqual(rep.ingestionStatsAndErrors.payload.rowStats.buildSegments, {
      processed: 4,
      processedWithError: 0,
      thrownAway: 0,
      unparseable: 4,
    });
    const inDir = `${dir}/badlines-in`;
    fs.mkdirSync(inDir);
    fs.writeFileSync(`${inDir}/a.json.gz`, zlib.gzipSync(lines.join('\r\n')));
    const r = await engine.ingest(spec({ type: 'local', baseDir: inDir, filter: '*.gz' }));
    assert.equal(r.rowStats.processed, 4);
    assert.equal(r.rowStats.unparseable, 4);
  });

  test('SQL result formats and header', async () => {
    const query = `SELECT FLOOR(__time TO DAY) AS d, COUNT(*) AS n FROM "rollup-tutorial" GROUP BY 1 ORDER BY 1`;
    const arr = await post('/druid/v2/sql', { query, resultFormat: 'array', header: true, typesHeader: true });
    assert.equal(arr.headers.get('x-druid-sql-header-included'), 'yes');
    assert.deepStrictEqual(
      typedJson(arr.text),
      typedJson('[["d","n"],["LONG","LONG"],["2018-01-01T00:00:00.000Z",3],["2018-01-02T00:00:00.000Z",2]]'),
    );
    const lines = await post('/druid/v2/sql', { query, resultFormat: 'objectLines' });
    assert.equal(lines.text, '{"d":"2018-01-01T00:00:00.000Z","n":3}\n{"d":"2018-01-02T00:00:00.000Z","n":2}\n\n');
    const al = await post('/druid/v2/sql', { query, resultFormat: 'arrayLines', header: true });
    assert.equal(al.text, '["d","n"]\n["2018-01-01T00:00:00.000Z",3]\n["2018-01-02T00:00:00.000Z",2]\n\n');
    const csv = await post('/druid/v2/sql', { query, resultFormat: 'csv', header: true });
    assert.equal(csv.text, 'd,n\n2018-01-01T00:00:00.000Z,3\n2018-01-02T00:00:00.000Z,2\n\n');
    const tf = await post('/druid/v2/sql', {
      query: `SELECT TIME_FORMAT(TIME_FLOOR(__time, 'PT1H'), 'yyyy-MM-dd HH') AS h, APPROX_COUNT_DISTINCT(srcIP) AS u FROM "rollup-tutorial" GROUP BY 1 ORDER BY 1`,
      resultFormat: 'array',
    });
    assert.deepStrictEqual(typedJson(tf.text), typedJson('[["2018-01-01 01",1],["2018-01-02 21",1]]'));
  });

  test('errors use Druid error JSON with the right status', async () => {
    const bad = await post('/druid/v2', { queryType: 'timeseries', dataSource: 'x', granularity: 'fortnight' });
    assert.equal(bad.status, 400);
    const e = JSON.parse(bad.text);
    assert.equal(e.error, 'druidException');
    assert.equal(e.category, 'INVALID_INPUT');
    assert.match(e.errorMessage, /query\.granularity/);
    const badType = await post('/druid/v2', { queryType: 'nope', dataSource: 'x' });
    assert.equal(badType.status, 400);
    assert.match(JSON.parse(badType.text).errorMessage, /query\.queryType/);
    const badAgg = await post('/druid/v2', {
      queryType: 'timeseries',
      dataSource: 'rollup-tutorial',
      aggregations: [{ type: 'longSum', name: 'x' }],
    });
    assert.equal(badAgg.status, 400);
    assert.match(JSON.parse(badAgg.text).errorMessage, /query\.aggregations\[0\]\.fieldName/);
    const notFound = await post('/druid/v2/sql', { query: 'SELECT * FROM nosuch' });
    assert.equal(notFound.status, 404);
    assert.match(JSON.parse(notFound.text).errorMessage, /Object 'nosuch' not found/);
    const ddl = await post('/druid/v2/sql', { query: 'DROP TABLE druid."rollup-tutorial"' });
    assert.equal(ddl.status, 400);
    const fileRead = await post('/druid/v2/sql', { query: "SELECT * FROM read_csv('/etc/passwd')" });
    assert.equal(fileRead.status, 400);
    const env = await post('/druid/v2/sql', { query: "SELECT getenv('HOME')" });
    assert.equal(env.status, 400);
    const badTask = await post('/druid/indexer/v1/task', {
      type: 'index_parallel',
      spec: { dataSchema: { dataSource: '' }, ioConfig: {} },
    });
    assert.equal(badTask.status, 400);
    assert.match(JSON.parse(badTask.text).errorMessage, /spec\.dataSchema\.dataSource/);
    const noTask = await fetch(`${base}/druid/indexer/v1/task/nope/status`);
    assert.equal(noTask.status, 404);
    const malformed = await fetch(`${base}/druid/v2`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{',
    });
    assert.equal(malformed.status, 400);
    assert.equal((await malformed.json()).error, 'druidException');
  });

  test('hostile datasource, column names and values are never spliced into SQL', async () => {
    const COL = 'col"umn';
    const rows = [
      { t: '2020-01-01T00:00:00Z', [COL]: `va'l"ue`, n: 1 },
      { t: '2020-01-01T00:00:01Z', [COL]: `); DROP TABLE x; --`, n: 2 },
    ];
    const spec = {
      type: 'index_parallel',
      spec: {
        dataSchema: {
          dataSource: HOSTILE,
          timestampSpec: { column: 't', format: 'iso' },
          dimensionsSpec: { dimensions: [`col"umn`] },
          metricsSpec: [{ type: 'longSum', name: `su'm`, fieldName: 'n' }],
          granularitySpec: { rollup: false, queryGranularity: 'none', segmentGranularity: 'day' },
        },
        ioConfig: {
          type: 'index_parallel',
          inputSource: { type: 'inline', data: rows.map((r) => JSON.stringify(r)).join('\n') },
          inputFormat: { type: 'json' },
        },
      },
    };
    const id = JSON.parse((await post('/druid/indexer/v1/task', spec)).text).task;
    assert.equal((await waitTask(id)).status, 'SUCCESS');
    for (const value of [`va'l"ue`, `); DROP TABLE x; --`]) {
      const r = await post('/druid/v2', {
        queryType: 'groupBy',
        dataSource: HOSTILE,
        intervals: ['2020/2021'],
        granularity: 'all',
        dimensions: [`col"umn`],
        filter: { type: 'selector', dimension: `col"umn`, value },
        aggregations: [{ type: 'longSum', name: `o'ut"`, fieldName: `su'm` }],
      });
      assert.equal(r.status, 200, r.text);
      const ev = JSON.parse(r.text)[0].event;
      assert.equal(ev[`col"umn`], value);
    }
    const sql = await post('/druid/v2/sql', {
      query: `SELECT "col""umn" AS c FROM "${HOSTILE.replaceAll('"', '""')}" WHERE "col""umn" = 'va''l"ue'`,
    });
    assert.equal(sql.status, 200, sql.text);
    assert.deepEqual(JSON.parse(sql.text), [{ c: `va'l"ue` }]);
    assert.ok((await (await fetch(`${base}/druid/v2/datasources`)).json()).includes(HOSTILE));
  });

  test('context.timeout answers 504 and DELETE cancels a running SQL query', async () => {
    // A 12-way self-join of 5 rows: 244M combinations, seconds of work for any machine.
    const names = 'abcdefghijkl'.split('');
    const heavy = `SELECT count(*) AS n FROM ${names.map((x) => `"rollup-tutorial" ${x}`).join(', ')} WHERE ${names.map((x) => `${x}.bytes`).join(' + ')} > 0`;
    const t = await post('/druid/v2/sql', { query: heavy, context: { timeout: 50 } });
    assert.equal(t.status, 504, t.text);
    assert.equal(JSON.parse(t.text).category, 'TIMEOUT');
    const running = post('/druid/v2/sql', { query: heavy, context: { sqlQueryId: 'to-cancel' } });
    let cancelled = false;
    for (let i = 0; i < 200 && !cancelled; i++) {
      const d = await fetch(`${base}/druid/v2/sql/to-cancel`, { method: 'DELETE' });
      cancelled = d.status === 202;
      if (!cancelled) await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(cancelled);
    const r = await running;
    assert.equal(r.status, 500);
    assert.equal(JSON.parse(r.text).category, 'CANCELED');
  });

  test('lookup config API', async () => {
    const r = await post('/druid/coordinator/v1/lookups/config', {
      __default: {
        ips: { version: 'v1', lookupExtractorFactory: { type: 'map', map: { '1.1.1.1': 'one', '7.7.7.7': 'seven' } } },
      },
    });
    assert.equal(r.status, 202, r.text);
    assert.deepEqual(await (await fetch(`${base}/druid/coordinator/v1/lookups/config/__default`)).json(), ['ips']);
    const one = (await (await fetch(`${base}/druid/coordinator/v1/lookups/config/__default/ips`)).json()) as {
      lookupExtractorFactory: { map: Record<string, string> };
    };
    assert.equal(one.lookupExtractorFactory.map['7.7.7.7'], 'seven');
    const sql = await post('/druid/v2/sql', {
      query: `SELECT LOOKUP(srcIP, 'ips') AS n, SUM("count") AS c FROM "rollup-tutorial" GROUP BY 1 ORDER BY 1`,
      resultFormat: 'array',
    });
    assert.deepStrictEqual(typedJson(sql.text), typedJson('[["one",6],["seven",3]]'));
    const bad = await post('/druid/coordinator/v1/lookups/config', {
      __default: { x: { lookupExtractorFactory: { type: 'jdbc' } } },
    });
    assert.equal(bad.status, 400);
    assert.match(JSON.parse(bad.text).errorMessage, /lookups\.__default\.x\.lookupExtractorFactory/);
    assert.equal(
      (await fetch(`${base}/druid/coordinator/v1/lookups/config/__default/ips`, { method: 'DELETE' })).status,
      202,
    );
    assert.equal((await fetch(`${base}/druid/coordinator/v1/lookups/config/__default/ips`)).status, 404);
  });

  test('result cache is invalidated by new data', async () => {
    const q = {
      queryType: 'timeseries',
      dataSource: 'cache-ds',
      granularity: 'all',
      intervals: ['2020/2021'],
      aggregations: [{ type: 'count', name: 'n' }],
    };
    const ingest = async (n: number, append: boolean) => {
      const data = Array.from({ length: n }, (_, i) =>
        JSON.stringify({ ts: `2020-01-01T00:00:0${i}Z`, d: `v${i}` }),
      ).join('\n');
      await engine.ingest({
        type: 'index',
        spec: {
          dataSchema: {
            dataSource: 'cache-ds',
            timestampSpec: { column: 'ts' },
            dimensionsSpec: { dimensions: ['d'] },
          },
          ioConfig: { inputSource: { type: 'inline', data }, inputFormat: { type: 'json' }, appendToExisting: append },
        },
      });
    };
    await ingest(2, false);
    const a = JSON.parse((await post('/druid/v2', q)).text);
    assert.equal(a[0].result.n, 2);
    await ingest(3, true);
    const b = JSON.parse((await post('/druid/v2', q)).text);
    assert.equal(b[0].result.n, 5);
  });
});
