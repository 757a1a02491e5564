import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadTable, parseIdentifier, SqliteCatalog } from '../../src/lake/index.ts';
import { embeddedClient, type Log, type LogClient, openLog } from '../../src/log/index.ts';
import { OlapEngine } from '../../src/olap/index.ts';
import { PipelineRunner, parsePipelineYaml } from '../../src/pipeline/index.ts';

const EXAMPLES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../examples/pipelines');
let dir: string;
let log: Log;
let client: LogClient;
let olap: OlapEngine;
let runner: PipelineRunner;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipeline-examples-'));
  log = await openLog({ dataDir: path.join(dir, 'log'), cleanerIntervalMs: 0 });
  client = embeddedClient(log);
  olap = await OlapEngine.open({ dataDir: path.join(dir, 'olap') });
  runner = new PipelineRunner({ dataDir: dir, log: client, olap });
});
after(async () => {
  await runner.close();
  await olap.close();
  await client.close();
  await log.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const load = (name: string) => {
  const baseDir = path.join(EXAMPLES, name);
  return { spec: parsePipelineYaml(fs.readFileSync(path.join(baseDir, 'pipeline.yaml'), 'utf8')), baseDir };
};

test('clickstream example: sessions land in the datasource, page views in Iceberg with IPs masked', async () => {
  const { spec, baseDir } = load('clickstream');
  const r = await runner.run(spec, { baseDir });
  assert.equal(r.run.status, 'succeeded', r.run.error ?? '');
  const sessions = r.stages.find((s) => s.stageId === 'to_druid')!.rows!;
  assert.ok(sessions >= 60);
  const q = await olap.sql('SELECT sum(page_views) AS v, count(*) AS n FROM sessions');
  const lines = fs.readFileSync(path.join(EXAMPLES, 'clickstream/events.ndjson'), 'utf8').trim().split('\n').length;
  assert.equal(Number(q.rows[0]![0]), lines, 'every page view is in one session');
  assert.equal(Number(q.rows[0]![1]), sessions);
  const catalog = new SqliteCatalog({ warehouse: path.join(dir, 'lake') });
  try {
    const rows = await (await loadTable(catalog, parseIdentifier('web.page_views'))).rows({ limit: 5 });
    for (const row of rows) assert.match(String(row.ip), /^[0-9a-f]{64}$/);
  } finally {
    await catalog.close();
  }
});

test('inventory example: a backfill over days, the missing day fails, the stock table is merged by key', async () => {
  const { spec, baseDir } = load('inventory');
  const r = await runner.backfill(spec, { from: '2024-04-01', to: '2024-04-04', baseDir });
  assert.deepEqual(
    r.partitions.map((p) => p.status),
    ['succeeded', 'succeeded', 'succeeded', 'failed'],
  );
  const catalog = new SqliteCatalog({ warehouse: path.join(dir, 'lake') });
  try {
    const stock = await (await loadTable(catalog, parseIdentifier('inventory.stock'))).rows();
    assert.equal(stock.length, 60, 'one row per sku and warehouse after three merges');
    assert.ok(stock.every((s) => s.day === '2024-04-03'));
    const totals = await (await loadTable(catalog, parseIdentifier('inventory.daily_totals'))).rows();
    assert.equal(totals.length, 90, '30 skus x 3 days');
  } finally {
    await catalog.close();
  }
});
