import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import Fastify from 'fastify';
import {
  HttpLineageSink,
  LineageGraph,
  NdjsonLineageSink,
  type PipelineInput,
  PipelineRunner,
} from '../../src/pipeline/index.ts';
import { schemasAvailable, validateRunEvent } from './openlineage.ts';

let dir: string;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipeline-gov-'));
  fs.writeFileSync(path.join(dir, 'people.csv'), 'id,email,city\n1,a@x.io,Berlin\n2,b@x.io,Paris\n');
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const people = (pii: 'fail' | 'mask' | 'drop', out: string): PipelineInput => ({
  name: `people-${pii}`,
  stages: [
    { id: 'p', type: 'ingest', source: { kind: 'file', path: 'people.csv' } },
    {
      id: 't',
      type: 'transform',
      inputs: ['p'],
      rules: [{ map: { id: 'id', contact: 'lower(email)', city: 'city' } }],
    },
    { id: 'o', type: 'output', inputs: ['t'], pii, target: { kind: 'file', path: out } },
  ],
});

test('governance catalog: owners, tags, PII columns, classification, schema history', async () => {
  const r = new PipelineRunner({ dataDir: path.join(dir, 'cat') });
  try {
    const g = r.governance;
    g.upsert('iceberg:db.people', {
      owner: 'crm',
      tags: ['pii'],
      classification: 'restricted',
      retention: '30d',
      columns: { email: { pii: true, description: 'e-mail' } },
    });
    g.upsert('iceberg:db.people', { description: 'People', columns: { city: { pii: false } } });
    const e = g.get('iceberg:db.people');
    assert.equal(e.owner, 'crm');
    assert.equal(e.description, 'People');
    assert.deepEqual(e.tags, ['pii']);
    assert.equal(e.classification, 'restricted');
    assert.deepEqual(g.piiColumns('iceberg:db.people'), ['email']);
    assert.deepEqual(
      g.list({ tag: 'pii' }).map((x) => x.id),
      ['iceberg:db.people'],
    );
    assert.throws(
      () => g.upsert('iceberg:db.people', { classification: 'secret' as never }),
      /catalog\.classification/,
    );
    assert.throws(() => g.upsert('people', {}), /dataset: expected "kind:name"/);
    assert.equal(g.recordSchema('iceberg:db.people', [{ name: 'id', type: 'BIGINT' }]), 1);
    assert.equal(g.recordSchema('iceberg:db.people', [{ name: 'id', type: 'BIGINT' }]), 1);
    assert.equal(
      g.recordSchema('iceberg:db.people', [
        { name: 'id', type: 'BIGINT' },
        { name: 'x', type: 'VARCHAR' },
      ]),
      2,
    );
    assert.deepEqual(
      g.schemaHistory('iceberg:db.people').map((h) => h.columns.length),
      [1, 2],
    );
  } finally {
    await r.close();
  }
});

test('PII policy: a pipeline that would write PII to a target not allowed to hold it fails before it runs', async () => {
  const r = new PipelineRunner({ dataDir: path.join(dir, 'pii') });
  try {
    r.governance.upsert(`file:${path.join(dir, 'people.csv')}`, { columns: { email: { pii: true } } });
    const out = path.join(dir, 'out-fail.csv');
    await assert.rejects(r.run(people('fail', out), { baseDir: dir }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'PERMISSION_DENIED');
      assert.match(err.message, /stage "o" would write PII column\(s\) contact to file:/);
      return true;
    });
    assert.equal(r.store.listRuns().length, 0, 'no run was created');
    assert.ok(!fs.existsSync(out));

    const dropped = await r.run(people('drop', path.join(dir, 'out-drop.csv')), { baseDir: dir });
    assert.equal(dropped.run.status, 'succeeded');
    assert.equal(fs.readFileSync(path.join(dir, 'out-drop.csv'), 'utf8').split('\n')[0], 'id,city');

    const masked = await r.run(people('mask', path.join(dir, 'out-mask.csv')), { baseDir: dir });
    assert.equal(masked.run.status, 'succeeded');
    const line = fs.readFileSync(path.join(dir, 'out-mask.csv'), 'utf8').split('\n')[1]!;
    assert.match(line, /^1,[0-9a-f]{64},Berlin$/);

    // a target allowed to hold PII gets it as is
    const ok = path.join(dir, 'out-ok.csv');
    r.governance.upsert(`file:${ok}`, { piiAllowed: true });
    await r.run(people('fail', ok), { baseDir: dir });
    assert.match(fs.readFileSync(ok, 'utf8'), /a@x\.io/);
    // schema history recorded for the output
    assert.deepEqual(
      r.governance.schemaHistory(`file:${ok}`)[0]!.columns.map((c: { name: string }) => c.name),
      ['id', 'contact', 'city'],
    );
  } finally {
    await r.close();
  }
});

test('lineage sinks: NDJSON file and HTTP (Marquez POST /api/v1/lineage); FAIL events carry errorMessage', async (t) => {
  const received: unknown[] = [];
  const marquez = Fastify();
  marquez.post('/api/v1/lineage', async (req, reply) => {
    received.push(req.body);
    return reply.code(201).send();
  });
  await marquez.listen({ port: 0, host: '127.0.0.1' });
  const addr = marquez.server.address() as { port: number };
  const file = path.join(dir, 'lineage', 'events.ndjson');
  const graph = new LineageGraph();
  const r = new PipelineRunner({
    dataDir: path.join(dir, 'sinks'),
    lineage: [new NdjsonLineageSink(file), new HttpLineageSink(`http://127.0.0.1:${addr.port}`), graph],
  });
  try {
    const ok = await r.run(people('drop', path.join(dir, 'sink-out.csv')), { baseDir: dir });
    const bad = await r.run({
      name: 'broken',
      stages: [
        { id: 'a', type: 'ingest', source: { kind: 'sql', sql: 'SELECT 1 AS x' } },
        { id: 'b', type: 'transform', inputs: ['a'], rules: [{ sql: 'SELECT y FROM {{input}}' }] },
      ],
    });
    assert.equal(ok.lineageErrors.length, 0);
    assert.equal(bad.run.status, 'failed');
    const lines = fs
      .readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      lines.map((e) => `${e.job.name}:${e.eventType}`),
      ['people-drop:START', 'people-drop:COMPLETE', 'broken:START', 'broken:FAIL'],
    );
    assert.deepEqual(received, lines);
    const fail = lines[3];
    assert.match(fail.run.facets.errorMessage.message, /"y" not found|Referenced column "y"/);
    assert.equal(fail.run.facets.errorMessage.programmingLanguage, 'TypeScript');
    if (!schemasAvailable()) return t.skip('../shared/reference/openlineage is missing');
    for (const e of lines) assert.deepEqual(validateRunEvent(e), []);
    assert.deepEqual(
      graph.walk(`file:${path.join(dir, 'sink-out.csv')}`, 'upstream').map((d) => d.dataset),
      [`file:${path.join(dir, 'people.csv')}`],
    );
  } finally {
    await r.close();
    await marquez.close();
  }
});

test('an unreachable lineage endpoint does not fail the run; the error is reported', async () => {
  const r = new PipelineRunner({
    dataDir: path.join(dir, 'down'),
    lineage: [new HttpLineageSink('http://127.0.0.1:9', { timeoutMs: 500 })],
  });
  try {
    const res = await r.run({
      name: 'x',
      stages: [{ id: 'a', type: 'ingest', source: { kind: 'sql', sql: 'SELECT 1 AS x' } }],
    });
    assert.equal(res.run.status, 'succeeded');
    assert.equal(res.lineageErrors.length, 2);
  } finally {
    await r.close();
  }
});
