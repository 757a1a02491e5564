import assert from 'node:assert/strict';
import { test } from 'node:test';
import { definePipeline, parsePipelineYaml, substituteParams, topoOrder } from '../../src/pipeline/index.ts';

const YAML = `
name: orders
params: { day: "2024-01-01" }
defaults: { retry: { maxAttempts: 3 }, onFailure: skip-downstream }
stages:
  - id: raw
    type: ingest
    source: { kind: file, path: "orders-\${day}.csv" }
  - id: clean
    type: transform
    inputs: [raw]
    rules:
      - map: { id: id, amount: "CAST(amount AS DOUBLE)" }
      - filter: amount > 0
  - id: out
    type: output
    inputs: [clean]
    target: { kind: iceberg, table: db.orders, mode: merge, key: [id] }
`;

test('YAML and TypeScript definitions mean the same pipeline', () => {
  const fromYaml = parsePipelineYaml(YAML);
  const fromTs = definePipeline({
    name: 'orders',
    params: { day: '2024-01-01' },
    defaults: { retry: { maxAttempts: 3 }, onFailure: 'skip-downstream' },
    stages: [
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a pipeline parameter, not a template
      { id: 'raw', type: 'ingest', source: { kind: 'file', path: 'orders-${day}.csv' } },
      {
        id: 'clean',
        type: 'transform',
        inputs: ['raw'],
        rules: [{ map: { id: 'id', amount: 'CAST(amount AS DOUBLE)' } }, { filter: 'amount > 0' }],
      },
      {
        id: 'out',
        type: 'output',
        inputs: ['clean'],
        target: { kind: 'iceberg', table: 'db.orders', mode: 'merge', key: ['id'] },
      },
    ],
  });
  assert.deepEqual(fromYaml, fromTs);
  // defaults filled in
  assert.equal(fromTs.concurrency, 4);
  const out = fromTs.stages[2]!;
  assert.equal(out.type === 'output' && out.pii, 'fail');
});

test('YAML errors name the field and what was expected', () => {
  const cases: [string, RegExp][] = [
    [YAML.replace('type: transform', 'type: transfrom'), /pipeline\.stages\[1\]\.type: /],
    [YAML.replace('kind: iceberg', 'kind: icebreg'), /pipeline\.stages\[2\]\.target\.kind/],
    [YAML.replace('mode: merge', 'mode: upsert'), /pipeline\.stages\[2\]\.target\.mode/],
    [
      YAML.replace('inputs: [raw]', 'inputs: [rwa]'),
      /pipeline\.stages\[1\]\.inputs\[0\]: expected the id of a stage \(raw, clean, out\), got "rwa"/,
    ],
    [YAML.replace('maxAttempts: 3', 'maxAttempts: 0'), /pipeline\.defaults\.retry\.maxAttempts/],
    [YAML.replace('filter: amount > 0', 'filtr: amount > 0'), /pipeline\.stages\[1\]\.rules\[1\]/],
    [YAML.replace('- id: clean', '- id: raw'), /pipeline\.stages\[1\]\.id: "raw" is already used by stages\[0\]/],
    [YAML.replace('name: orders', 'name: "bad name"'), /pipeline\.name: a name of letters/],
    ['name: x\nstages: [', /pipeline YAML: /],
    [
      YAML.replace('  - id: raw\n    type: ingest', '  - id: raw\n    color: red\n    type: ingest'),
      /pipeline\.stages\[0\]: unknown key\(s\) "color"/,
    ],
  ];
  for (const [text, re] of cases) assert.throws(() => parsePipelineYaml(text), re);
});

test('checks are validated: range needs a bound, custom_sql a predicate or query', () => {
  const base = (check: unknown) => ({
    name: 'c',
    stages: [
      { id: 'a', type: 'ingest', source: { kind: 'sql', sql: 'SELECT 1' } },
      { id: 'q', type: 'quality', inputs: ['a'], checks: [check] },
    ],
  });
  assert.throws(
    () => definePipeline(base({ type: 'range', column: 'x' })),
    /pipeline\.stages\[1\]\.checks\[0\]: range needs "min" or "max"/,
  );
  assert.throws(() => definePipeline(base({ type: 'custom_sql' })), /custom_sql needs "where"/);
  assert.throws(() => definePipeline(base({ type: 'not_null' })), /pipeline\.stages\[1\]\.checks\[0\]\.column/);
  assert.throws(() => definePipeline(base({ type: 'range', column: 'x', min: 0, mostly: 2 })), /checks\[0\]\.mostly/);
});

test('cycles are refused naming the path; order puts inputs first', () => {
  assert.throws(
    () =>
      definePipeline({
        name: 'cyc',
        stages: [
          { id: 'a', type: 'transform', inputs: ['c'], rules: [{ filter: 'true' }] },
          { id: 'b', type: 'transform', inputs: ['a'], rules: [{ filter: 'true' }] },
          { id: 'c', type: 'transform', inputs: ['b'], rules: [{ filter: 'true' }] },
        ],
      }),
    /pipeline\.stages: cycle a -> c -> b -> a/,
  );
  const spec = definePipeline({
    name: 'order',
    stages: [
      { id: 'z', type: 'transform', inputs: ['y'], rules: [{ join: { with: 'x', on: ['k'] } }] },
      { id: 'y', type: 'ingest', source: { kind: 'sql', sql: 'SELECT 1 AS k' } },
      { id: 'x', type: 'ingest', source: { kind: 'sql', sql: 'SELECT 1 AS k' } },
    ],
  });
  const ids = topoOrder(spec).map((s) => s.id);
  assert.ok(ids.indexOf('z') > ids.indexOf('x') && ids.indexOf('z') > ids.indexOf('y'));
});

test('parameters substitute into every string; unknown ones are an error', () => {
  const spec = parsePipelineYaml(YAML);
  const s = substituteParams(spec, { day: '2024-02-03' });
  const raw = s.stages[0]!;
  assert.equal(raw.type === 'ingest' && raw.source.kind === 'file' && raw.source.path, 'orders-2024-02-03.csv');
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a pipeline parameter, not a template
  assert.throws(() => substituteParams({ a: ['x ${nope}'] }, {}), /pipeline\.a\[0\]: unknown parameter \$\{nope\}/);
});

test('YAML errors point at the line of the field', () => {
  assert.throws(
    () => parsePipelineYaml(YAML.replace('mode: merge', 'mode: upsert')),
    /target\.mode: .*\(line 18, column \d+\)/,
  );
  assert.throws(
    () => parsePipelineYaml(YAML.replace('inputs: [raw]', 'inputs: [rwa]')),
    /got "rwa" \(line 11, column \d+\)/,
  );
});
