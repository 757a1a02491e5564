import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { PipelineRunner, pipelineRoutes } from '../../src/pipeline/index.ts';

let dir: string;
let app: FastifyInstance;
let runner: PipelineRunner;
let base: string;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipeline-http-'));
  fs.writeFileSync(path.join(dir, 'in.csv'), 'id,email\n1,a@x.io\n2,b@x.io\n');
  runner = new PipelineRunner({ dataDir: dir });
  app = Fastify();
  await app.register(pipelineRoutes, { runner, baseDir: dir, prefix: '/pipeline' });
  await app.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/pipeline`;
});
after(async () => {
  await app.close();
  await runner.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function call(
  method: string,
  url: string,
  body?: unknown,
  type = 'application/json',
  // biome-ignore lint/suspicious/noExplicitAny: JSON answers of the server
): Promise<{ status: number; json: any }> {
  const res = await fetch(base + url, {
    method,
    ...(body === undefined
      ? {}
      : { body: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'content-type': type } }),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null };
}

const YAML = `name: http_demo
stages:
  - id: src
    type: ingest
    source: { kind: file, path: in.csv }
  - id: check
    type: quality
    inputs: [src]
    checks: [{ type: unique, column: id }]
  - id: out
    type: output
    inputs: [check]
    pii: drop
    target: { kind: file, path: out.csv }
`;

test('runs: submit YAML, list, fetch one with stages and quality, lineage events; resubmit is idempotent', async () => {
  await call('PUT', `/catalog/datasets/${encodeURIComponent(`file:${path.join(dir, 'in.csv')}`)}`, {
    owner: 'ops',
    columns: { email: { pii: true } },
  });
  const created = await call('POST', '/runs', YAML, 'application/yaml');
  assert.equal(created.status, 201);
  assert.equal(created.json.run.status, 'succeeded');
  assert.equal(fs.readFileSync(path.join(dir, 'out.csv'), 'utf8').split('\n')[0], 'id', 'PII column dropped');
  const id = created.json.run.id;

  const again = await call('POST', '/runs', { pipeline: YAML });
  assert.equal(again.status, 200);
  assert.equal(again.json.reused, true);

  const list = await call('GET', '/runs');
  assert.deepEqual(
    list.json.map((r: { id: string }) => r.id),
    [id],
  );
  assert.equal(list.json[0].spec, undefined);
  const one = await call('GET', `/runs/${id}`);
  assert.deepEqual(
    one.json.stages.map((s: { stageId: string; status: string }) => `${s.stageId}:${s.status}`),
    ['src:succeeded', 'check:succeeded', 'out:succeeded'],
  );
  assert.equal(one.json.quality.score, 1);
  const events = await call('GET', `/runs/${id}/lineage`);
  assert.deepEqual(
    events.json.map((e: { eventType: string }) => e.eventType),
    ['START', 'COMPLETE'],
  );
  const pipelines = await call('GET', '/pipelines');
  assert.deepEqual(pipelines.json, [
    { name: 'http_demo', runs: 1, lastRun: list.json[0].createdAt, lastStatus: 'succeeded' },
  ]);
});

test('lineage and catalog endpoints', async () => {
  const out = `file:${path.join(dir, 'out.csv')}`;
  const up = await call('GET', `/lineage/${encodeURIComponent(out)}?direction=upstream`);
  assert.deepEqual(
    up.json.datasets.map((d: { dataset: string }) => d.dataset),
    [`file:${path.join(dir, 'in.csv')}`],
  );
  const col = await call('GET', `/lineage/${encodeURIComponent(out)}?column=id`);
  assert.deepEqual(col.json.columns, [`file:${path.join(dir, 'in.csv')}#id`]);
  assert.equal((await call('GET', `/lineage/x:y?direction=sideways`)).status, 400);

  const ds = await call('GET', `/catalog/datasets/${encodeURIComponent(out)}`);
  assert.equal(ds.status, 200);
  assert.deepEqual(
    ds.json.schemaHistory[0].columns.map((c: { name: string }) => c.name),
    ['id'],
  );
  const list = await call('GET', '/catalog/datasets?owner=ops');
  assert.deepEqual(
    list.json.map((d: { id: string }) => d.id),
    [`file:${path.join(dir, 'in.csv')}`],
  );
  const bad = await call('PUT', '/catalog/datasets/topic:x', { tags: 'not-a-list' });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.field, 'catalog.tags');
  assert.equal((await call('GET', '/catalog/datasets/topic:none')).status, 404);
});

test('errors: invalid pipelines are 400 naming the field; PII violations 403; unknown runs 404', async () => {
  const bad = await call('POST', '/runs', { pipeline: { name: 'x', stages: [{ id: 'a', type: 'ingest' }] } });
  assert.equal(bad.status, 400);
  assert.match(bad.json.message, /pipeline\.stages\[0\]\.source/);
  const pii = await call(
    'POST',
    '/runs',
    YAML.replace('pii: drop', 'pii: fail').replace('http_demo', 'http_pii'),
    'application/yaml',
  );
  assert.equal(pii.status, 403);
  assert.equal(pii.json.error, 'PERMISSION_DENIED');
  assert.equal((await call('GET', '/runs/nope')).status, 404);
  assert.equal((await call('POST', '/runs/nope/resume')).status, 404);
});

test('POST /runs?wait=false answers 202 with the run id at once; the run can be polled', async () => {
  const spec = YAML.replace('http_demo', 'http_async');
  const started = await call('POST', '/runs?wait=false', spec, 'application/yaml');
  assert.equal(started.status, 202);
  assert.match(started.json.runId, /^[0-9a-f-]{36}$/);
  let status = started.json.status;
  for (let i = 0; i < 200 && status === 'running'; i++) {
    await new Promise((r) => setTimeout(r, 25));
    status = (await call('GET', `/runs/${started.json.runId}`)).json.run.status;
  }
  assert.equal(status, 'succeeded');
});
