import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadTable, parseIdentifier, SqliteCatalog } from '../../src/lake/index.ts';
import { embeddedClient, type Log, type LogClient, openLog } from '../../src/log/index.ts';
import { PipelineRunner, parsePipelineYaml, type RunResult } from '../../src/pipeline/index.ts';
import { schemasAvailable, validateRunEvent } from './openlineage.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SEED = path.join(ROOT, 'examples/pipelines/seed');

interface Env {
  dir: string;
  log: Log;
  client: LogClient;
  runner: PipelineRunner;
}

async function env(): Promise<Env> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipeline-seed-'));
  const log = await openLog({ dataDir: path.join(dir, 'log'), cleanerIntervalMs: 0 });
  const client = embeddedClient(log);
  return { dir, log, client, runner: new PipelineRunner({ dataDir: dir, log: client }) };
}
async function close(e: Env): Promise<void> {
  await e.runner.close();
  await e.client.close();
  await e.log.close();
  fs.rmSync(e.dir, { recursive: true, force: true });
}

/** A copy of the seed example (its input files), optionally with bad rows appended to orders.csv. */
function seedCopy(dir: string, badRows: string[] = []): string {
  const d = path.join(dir, 'example');
  fs.cpSync(SEED, d, { recursive: true });
  if (badRows.length) fs.appendFileSync(path.join(d, 'orders.csv'), `${badRows.join('\n')}\n`);
  return d;
}

async function topicValues(client: LogClient, topic: string): Promise<Record<string, unknown>[]> {
  const c = client.consumer();
  try {
    c.assign([{ topic, partition: 0 }]);
    c.seek({ topic, partition: 0 }, 0n);
    const out: Record<string, unknown>[] = [];
    for (let i = 0; i < 20; i++) {
      const rs = await c.poll(100);
      for (const r of rs) out.push(JSON.parse(r.value!.toString()));
      if (!rs.length && out.length) break;
    }
    return out;
  } finally {
    await c.close();
  }
}

describe('seed pipeline end to end', () => {
  let clean: Env;
  let result: RunResult;
  let base: string;
  before(async () => {
    clean = await env();
    base = seedCopy(clean.dir);
    result = await clean.runner.run(parsePipelineYaml(fs.readFileSync(path.join(base, 'pipeline.yaml'), 'utf8')), {
      baseDir: base,
    });
  });
  after(() => close(clean));

  test('every stage succeeds and the quality score on clean data is above 0.95', () => {
    assert.equal(result.run.status, 'succeeded', result.run.error ?? '');
    assert.deepEqual(
      result.stages.filter((s) => s.status !== 'succeeded').map((s) => s.stageId),
      [],
    );
    assert.equal(result.stages.length, 10);
    assert.ok(result.quality.score! > 0.95, `score ${result.quality.score}`);
    assert.equal(result.run.qualityScore, result.quality.score);
    assert.equal(result.stages.find((s) => s.stageId === 'validated')!.rows, 500);
  });

  test('the Iceberg table holds every order with PII masked, the topic the revenue per segment', async () => {
    const catalog = new SqliteCatalog({ warehouse: path.join(clean.dir, 'lake') });
    try {
      const rows = await (await loadTable(catalog, parseIdentifier('sales.orders'))).rows();
      assert.equal(rows.length, 500);
      const r = rows.find((x) => x.order_id === 'O00001')!;
      assert.match(String(r.email), /^[0-9a-f]{64}$/, 'email is hashed');
      assert.match(String(r.name), /^[0-9a-f]{64}$/, 'name is hashed');
      assert.equal(typeof r.is_large, 'boolean', 'custom TS function ran');
      assert.ok(Number(r.order_seq) >= 1, 'window function ran');
      assert.equal(Number(r.amount_gross), Math.round(Number(r.amount) * 1.19 * 100) / 100);
    } finally {
      await catalog.close();
    }
    const revenue = await topicValues(clean.client, 'segment-revenue');
    assert.equal(revenue.length, result.stages.find((s) => s.stageId === 'to_topic')!.rows);
    assert.equal(
      revenue.reduce((a, r) => a + Number(r.orders), 0),
      500,
    );
    assert.deepEqual([...new Set(revenue.map((r) => r.segment))].sort(), ['retail', 'wholesale']);
  });

  test('lineage events exist (START, COMPLETE) and validate against the OpenLineage schemas', (t) => {
    if (!schemasAvailable()) return t.skip('../shared/reference/openlineage is missing');
    const events = clean.runner.store.lineageEvents(result.run.id) as Record<string, unknown>[];
    assert.deepEqual(
      events.map((e) => e.eventType),
      ['START', 'COMPLETE'],
    );
    const checked = new Map<string, number>();
    for (const e of events) assert.deepEqual(validateRunEvent(e, checked), []);
    for (const f of [
      'schema',
      'dataSource',
      'columnLineage',
      'dataQualityMetrics',
      'dataQualityAssertions',
      'outputStatistics',
    ])
      assert.ok(checked.get(f), `facet ${f} present`);
    // biome-ignore lint/suspicious/noExplicitAny: an OpenLineage event read as JSON
    const complete = events[1] as { outputs: { name: string; facets: Record<string, any> }[] };
    const lake = complete.outputs.find((o) => o.name === 'sales.orders')!;
    const email = lake.facets.columnLineage.fields.email.inputFields;
    assert.equal(email[0].name, path.join(base, 'customers.csv'));
    assert.equal(email[0].field, 'email');
    assert.equal(email[0].transformations[0].masking, true);
    const amount = lake.facets.columnLineage.fields.amount.inputFields
      .filter((f: { transformations: { type: string }[] }) => f.transformations[0]!.type === 'DIRECT')
      .map((f: { name: string }) => path.basename(f.name));
    assert.deepEqual([...new Set(amount)].sort(), ['late_orders.ndjson', 'orders.csv']);
  });

  test('lineage graph answers upstream and downstream, by dataset and column', () => {
    const g = clean.runner.lineageGraph();
    const up = g.walk('iceberg:sales.orders', 'upstream').map((d) => d.dataset);
    assert.ok(up.includes(`file:${path.join(base, 'orders.csv')}`));
    assert.ok(up.includes(`file:${path.join(base, 'customers.csv')}`));
    const down = g.walk(`file:${path.join(base, 'customers.csv')}`, 'downstream').map((d) => d.dataset);
    assert.deepEqual(down.sort(), ['iceberg:sales.orders', 'topic:segment-revenue']);
    const cs = `file:${path.join(base, 'customers.csv')}`;
    assert.deepEqual(g.columns('topic:segment-revenue', 'segment', 'upstream'), [`${cs}#segment`]);
    assert.ok(
      g
        .columns('topic:segment-revenue', 'segment', 'upstream', { includeIndirect: true })
        .includes(`${cs}#customer_id`),
    );
    assert.ok(g.columns(cs, 'email', 'downstream').includes('iceberg:sales.orders#email'));
  });

  test('running again with the same parameters reuses the run', async () => {
    const again = await clean.runner.run(parsePipelineYaml(fs.readFileSync(path.join(base, 'pipeline.yaml'), 'utf8')), {
      baseDir: base,
    });
    assert.equal(again.reused, true);
    assert.equal(again.run.id, result.run.id);
    assert.equal(clean.runner.store.listRuns().length, 1);
  });

  test('injected bad rows lower the score and are quarantined to a table', async () => {
    const bad = await env();
    try {
      const b = seedCopy(bad.dir, [
        'O00900,C001,20000.00,placed,2024-01-05 10:00:00',
        'O00901,C002,12.00,lost,2024-01-05 10:00:00',
        'X123,C003,10.00,placed,2024-01-05 10:00:00',
        'O00001,C004,10.00,placed,2024-01-05 10:00:00',
        'O00902,C999,10.00,placed,2024-01-05 10:00:00',
      ]);
      const r = await bad.runner.run(parsePipelineYaml(fs.readFileSync(path.join(b, 'pipeline.yaml'), 'utf8')), {
        baseDir: b,
      });
      assert.equal(r.run.status, 'succeeded', r.run.error ?? '');
      assert.ok(r.quality.score! < result.quality.score!, `${r.quality.score} < ${result.quality.score}`);
      const catalog = new SqliteCatalog({ warehouse: path.join(bad.dir, 'lake') });
      try {
        const q = await (await loadTable(catalog, parseIdentifier('quarantine.orders'))).rows();
        // amount out of range, unknown status, bad id, and both rows of the duplicated id; C999 only warns
        assert.deepEqual(q.map((x) => x.order_id).sort(), ['O00001', 'O00001', 'O00900', 'O00901', 'X123']);
        const lake = await (await loadTable(catalog, parseIdentifier('sales.orders'))).rows();
        assert.equal(lake.length, 500 + 5 - 5);
      } finally {
        await catalog.close();
      }
      const report = bad.runner.store.quality(r.run.id).find((x) => x.stageId === 'validated')!.report as {
        results: { name: string; success: boolean; unexpectedCount: number; sample: { order_id: string }[] }[];
      };
      const ri = report.results.find((x) => x.name === 'referential_integrity(customer_id)')!;
      assert.equal(ri.success, false);
      assert.equal(ri.unexpectedCount, 1);
      assert.equal(ri.sample[0]!.order_id, 'O00902');
    } finally {
      await close(bad);
    }
  });
});
