import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { registerPipelineCommands } from '../../src/cli/pipeline.ts';
import { schemasAvailable, validateRunEvent } from './openlineage.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
let dir: string;
let example: string;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipeline-cli-'));
  example = path.join(dir, 'seed');
  fs.cpSync(path.join(ROOT, 'examples/pipelines/seed'), example, { recursive: true });
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

async function cli(...args: string[]): Promise<string> {
  let text = '';
  const program = new Command('tributary').exitOverride();
  const add = (s: string): void => {
    text += s;
  };
  program.configureOutput({ writeOut: add, writeErr: add });
  registerPipelineCommands(program);
  const code = process.exitCode;
  try {
    await program.parseAsync(['node', 'tributary', ...args]);
  } finally {
    process.exitCode = code;
  }
  return text;
}

test('pipeline run prints stages, row counts and the quality score; lineage goes to a file', async (t) => {
  const data = path.join(dir, 'data');
  const lineageFile = path.join(dir, 'lineage.ndjson');
  const text = await cli(
    'pipeline',
    'run',
    path.join(example, 'pipeline.yaml'),
    '--data-dir',
    data,
    '--param',
    'min_amount=1',
    '--lineage-file',
    lineageFile,
  );
  assert.match(text, /^run [0-9a-f-]{36} seed_orders: succeeded$/m);
  assert.match(text, /^orders\s+ingest\s+succeeded\s+480\s+1/m);
  assert.match(text, /^to_lake\s+output\s+succeeded\s+\d+/m);
  const score = Number(/quality score ([0-9.]+)/.exec(text)![1]);
  assert.ok(score > 0.95);
  const events = fs
    .readFileSync(lineageFile, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(
    events.map((e) => e.eventType),
    ['START', 'COMPLETE'],
  );
  if (schemasAvailable()) for (const e of events) assert.deepEqual(validateRunEvent(e), []);
  else t.diagnostic('OpenLineage schemas missing: events not validated');

  const again = await cli(
    'pipeline',
    'run',
    path.join(example, 'pipeline.yaml'),
    '--data-dir',
    data,
    '--param',
    'min_amount=1',
  );
  assert.match(again, /already succeeded with these parameters/);

  const runs = await cli('pipeline', 'runs', '--data-dir', data);
  assert.equal(runs.trim().split('\n').length, 1);
  assert.match(runs, /seed_orders\s+succeeded/);

  const up = await cli('lineage', 'iceberg:sales.orders', '--upstream', '--data-dir', data);
  assert.match(up, /file:.*orders\.csv\s+\(via seed_orders\)/);
  const down = await cli('lineage', `file:${path.join(example, 'customers.csv')}`, '--downstream', '--data-dir', data);
  assert.match(down, /iceberg:sales\.orders/);
  assert.match(down, /topic:segment-revenue/);
  const col = await cli('lineage', 'iceberg:sales.orders', '--column', 'email', '--data-dir', data);
  assert.equal(col.trim(), `file:${path.join(example, 'customers.csv')}#email`);

  const cat = await cli(
    'pipeline',
    'catalog',
    'show',
    `file:${path.join(example, 'customers.csv')}`,
    '--data-dir',
    data,
  );
  assert.equal(JSON.parse(cat).owner, 'crm-team');
});

test('pipeline backfill runs partitions, then only the missing ones', async () => {
  const data = path.join(dir, 'bf');
  const file = path.join(dir, 'daily.yaml');
  fs.writeFileSync(
    file,
    `name: daily
stages:
  - id: src
    type: ingest
    source: { kind: sql, sql: "SELECT DATE '\${partition}' AS day, 1 AS n" }
  - id: out
    type: output
    inputs: [src]
    target: { kind: file, path: "out/\${partition}.csv" }
`,
  );
  const first = await cli(
    'pipeline',
    'backfill',
    file,
    '--from',
    '2024-01-01',
    '--to',
    '2024-01-02',
    '--data-dir',
    data,
  );
  assert.match(first, /2024-01-01\s+succeeded\s+created/);
  const second = await cli(
    'pipeline',
    'backfill',
    file,
    '--from',
    '2024-01-01',
    '--to',
    '2024-01-03',
    '--data-dir',
    data,
  );
  assert.match(second, /2024-01-01\s+succeeded\s+skipped/);
  assert.match(second, /2024-01-03\s+succeeded\s+created/);
  assert.deepEqual(fs.readdirSync(path.join(dir, 'out')).sort(), [
    '2024-01-01.csv',
    '2024-01-02.csv',
    '2024-01-03.csv',
  ]);
});

test('a bad pipeline file is refused naming the field', async () => {
  const file = path.join(dir, 'bad.yaml');
  fs.writeFileSync(file, 'name: bad\nstages:\n  - id: a\n    type: ingest\n    source: { kind: file }\n');
  await assert.rejects(
    cli('pipeline', 'validate', file, '--data-dir', path.join(dir, 'v')),
    /pipeline\.stages\[0\]\.source\.path/,
  );
});

test('pipeline schedule refuses a pipeline without a schedule, and a bad cron expression', async () => {
  await assert.rejects(
    cli('pipeline', 'schedule', path.join(example, 'pipeline.yaml'), '--data-dir', path.join(dir, 's')),
    /schedule: expected a cron expression in .*pipeline\.yaml or --cron/,
  );
  await assert.rejects(
    cli(
      'pipeline',
      'schedule',
      path.join(example, 'pipeline.yaml'),
      '--cron',
      '0 25 * * *',
      '--data-dir',
      path.join(dir, 's'),
    ),
    /hour field "25"/,
  );
});
