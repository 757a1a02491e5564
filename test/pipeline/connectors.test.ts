import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { createTable, loadTable, parseIdentifier, SqliteCatalog } from '../../src/lake/index.ts';
import { embeddedClient, type Log, type LogClient, openLog } from '../../src/log/index.ts';
import { OlapEngine } from '../../src/olap/index.ts';
import { PipelineRunner } from '../../src/pipeline/index.ts';

let dir: string;
let log: Log;
let client: LogClient;
let olap: OlapEngine;
let catalog: SqliteCatalog;
let runner: PipelineRunner;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipeline-conn-'));
  log = await openLog({ dataDir: path.join(dir, 'log'), cleanerIntervalMs: 0 });
  client = embeddedClient(log);
  olap = await OlapEngine.open({ dataDir: path.join(dir, 'olap') });
  catalog = new SqliteCatalog({ warehouse: path.join(dir, 'lake') });
  runner = new PipelineRunner({ dataDir: dir, log: client, olap, catalog });
});
after(async () => {
  await runner.close();
  await catalog.close();
  await olap.close();
  await client.close();
  await log.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('topic in, Iceberg out (append, then merge by key), Iceberg back in', async () => {
  const admin = client.admin();
  await admin.createTopic('clicks', { partitions: 2 });
  await admin.close();
  const p = client.producer();
  await p.send(
    Array.from({ length: 30 }, (_, i) => ({
      topic: 'clicks',
      key: `u${i % 3}`,
      value: JSON.stringify({ user: `u${i % 3}`, n: i }),
    })),
  );
  await p.close();
  const toLake = await runner.run({
    name: 'clicks_to_lake',
    stages: [
      { id: 'in', type: 'ingest', source: { kind: 'topic', topic: 'clicks', metadata: true } },
      {
        id: 'agg',
        type: 'transform',
        inputs: ['in'],
        rules: [
          {
            aggregate: {
              groupBy: ['user'],
              measures: { clicks: 'count(*)', total: 'sum(n)', parts: 'count(DISTINCT _partition)' },
            },
          },
        ],
      },
      {
        id: 'out',
        type: 'output',
        inputs: ['agg'],
        target: { kind: 'iceberg', table: 'web.users', mode: 'merge', key: ['user'] },
      },
    ],
  });
  assert.equal(toLake.run.status, 'succeeded', toLake.run.error ?? '');
  assert.equal(toLake.stages[0]!.rows, 30);
  const t = await loadTable(catalog, parseIdentifier('web.users'));
  const rows = (await t.rows()).sort((a, b) => String(a.user).localeCompare(String(b.user)));
  assert.deepEqual(
    rows.map((r) => [r.user, Number(r.clicks), Number(r.total)]),
    [
      ['u0', 10, 135],
      ['u1', 10, 145],
      ['u2', 10, 155],
    ],
  );
  // merge again with changed values: keys replace rows
  const second = await runner.run({
    name: 'merge_users',
    stages: [
      {
        id: 'in',
        type: 'ingest',
        source: {
          kind: 'sql',
          sql: "SELECT 'u1' AS user, 99::BIGINT AS clicks, 1::HUGEINT AS total, 1::BIGINT AS parts UNION ALL SELECT 'u9', 1, 1, 1",
        },
      },
      {
        id: 'out',
        type: 'output',
        inputs: ['in'],
        target: { kind: 'iceberg', table: 'web.users', mode: 'merge', key: ['user'] },
      },
    ],
  });
  assert.equal(second.run.status, 'succeeded', second.run.error ?? '');
  const back = await runner.run({
    name: 'lake_back',
    stages: [
      { id: 'in', type: 'ingest', source: { kind: 'iceberg', table: 'web.users', filter: "user != 'u0'" } },
      { id: 'out', type: 'output', inputs: ['in'], target: { kind: 'file', path: path.join(dir, 'users.ndjson') } },
    ],
  });
  assert.equal(back.run.status, 'succeeded', back.run.error ?? '');
  const got = fs
    .readFileSync(path.join(dir, 'users.ndjson'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .sort((a, b) => a.user.localeCompare(b.user));
  assert.deepEqual(
    got.map((r) => [r.user, Number(r.clicks)]),
    [
      ['u1', 99],
      ['u2', 10],
      ['u9', 1],
    ],
  );
});

test('Iceberg ingest reads tables with delete files through the lake scan', async () => {
  await catalog.createNamespace(['mor']).catch(() => undefined);
  const t = await createTable(
    catalog,
    { namespace: ['mor'], name: 'items' },
    {
      schema: {
        fields: [
          { id: 1, name: 'id', required: true, type: 'long' },
          { id: 2, name: 'v', required: false, type: 'string' },
        ],
      },
    },
  );
  await t.append([
    { id: 1, v: 'a' },
    { id: 2, v: 'b' },
    { id: 3, v: 'c' },
  ]);
  await t.upsert([{ id: 2, v: 'B' }], { key: ['id'], mode: 'merge-on-read' });
  const r = await runner.run({
    name: 'mor_read',
    stages: [
      { id: 'in', type: 'ingest', source: { kind: 'iceberg', table: 'mor.items' } },
      {
        id: 'q',
        type: 'quality',
        inputs: ['in'],
        checks: [
          { type: 'unique', column: 'id' },
          { type: 'row_count', min: 3, max: 3 },
        ],
      },
      { id: 'out', type: 'output', inputs: ['q'], target: { kind: 'file', path: path.join(dir, 'items.csv') } },
    ],
  });
  assert.equal(r.run.status, 'succeeded', r.run.error ?? '');
  const lines = fs.readFileSync(path.join(dir, 'items.csv'), 'utf8').trim().split('\n').slice(1).sort();
  assert.deepEqual(lines, ['1,a', '2,B', '3,c']);
});

test('datasource out and in; enrichment by async call with timeouts', async () => {
  const wrote = await runner.run({
    name: 'to_druid',
    stages: [
      {
        id: 'in',
        type: 'ingest',
        source: {
          kind: 'sql',
          sql: "SELECT TIMESTAMP '2024-01-01 00:00:00' + INTERVAL (range) HOUR AS ts, 'c' || (range % 2) AS country, range AS n FROM range(6)",
        },
      },
      {
        id: 'out',
        type: 'output',
        inputs: ['in'],
        target: { kind: 'datasource', dataSource: 'events', timestampColumn: 'ts', dimensions: ['country'] },
      },
    ],
  });
  assert.equal(wrote.run.status, 'succeeded', wrote.run.error ?? '');
  const slowUsers = new Set(['c1']);
  const r = await runner.run({
    name: 'from_druid',
    stages: [
      {
        id: 'in',
        type: 'ingest',
        source: {
          kind: 'datasource',
          dataSource: 'events',
          sql: 'SELECT country, count(*) AS cnt FROM events GROUP BY country',
        },
      },
      {
        id: 'geo',
        type: 'enrich',
        inputs: ['in'],
        call: {
          fn: async function geo(row, signal) {
            if (slowUsers.has(String(row.country)))
              await new Promise((res, rej) => {
                const t = setTimeout(res, 2000);
                signal.addEventListener('abort', () => {
                  clearTimeout(t);
                  rej(new Error('aborted'));
                });
              });
            return { region: `region-${row.country}` };
          },
          timeoutMs: 100,
          onError: 'null',
          columns: { region: 'VARCHAR' },
        },
      },
      { id: 'out', type: 'output', inputs: ['geo'], target: { kind: 'file', path: path.join(dir, 'geo.csv') } },
    ],
  });
  assert.equal(r.run.status, 'succeeded', r.run.error ?? '');
  const lines = fs.readFileSync(path.join(dir, 'geo.csv'), 'utf8').trim().split('\n').slice(1).sort();
  assert.deepEqual(lines, ['c0,3,region-c0', 'c1,3,']);
  assert.deepEqual(r.stages.find((s) => s.stageId === 'geo')!.details, { callFailures: 1 });
  const strict = await runner.run({
    name: 'strict_call',
    stages: [
      { id: 'in', type: 'ingest', source: { kind: 'sql', sql: "SELECT 'c1' AS country" } },
      {
        id: 'geo',
        type: 'enrich',
        inputs: ['in'],
        call: {
          fn: async () => new Promise<Record<string, unknown>>(() => {}),
          timeoutMs: 50,
          columns: { region: 'VARCHAR' },
        },
      },
    ],
  });
  assert.equal(strict.run.status, 'failed');
  assert.match(strict.stages[1]!.error!, /timed out after 50 ms/);
});
