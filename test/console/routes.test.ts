import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { createTable, parseJson, SqliteCatalog } from '../../src/lake/index.ts';
import { consoleRoutes } from '../../src/server/console-routes.ts';

let dir: string;
let catalog: SqliteCatalog;
let app: FastifyInstance;
let base: string;
let snapshots: bigint[];

/** Sends the path as is (fetch would resolve "." and ".." segments first). */
const raw = (p: string) =>
  new Promise<{ status: number; type: string; text: string }>((resolve, reject) => {
    const req = http.request(`${base}/`, { path: p }, (res) => {
      let text = '';
      res.on('data', (c) => {
        text += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), text }));
    });
    req.on('error', reject);
    req.end();
  });

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-console-routes-'));
  catalog = new SqliteCatalog({ warehouse: dir });
  await catalog.createNamespace(['db']);
  const t = await createTable(
    catalog,
    { namespace: ['db'], name: 'events' },
    { schema: { fields: [{ id: 1, name: 'id', required: true, type: 'long' }] } },
  );
  await t.append([{ id: 1 }, { id: 2 }]);
  await t.append([{ id: 3 }]);
  // oldest first: the first snapshot has no parent
  const history = t.history();
  const root = history.find((h) => h.parentId === undefined)!;
  snapshots = [root.snapshotId, ...history.filter((h) => h !== root).map((h) => h.snapshotId)];
  app = Fastify();
  await app.register(consoleRoutes, { catalog });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
});

after(async () => {
  await app.close();
  catalog.db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('serves the console page and its modules with their content types', async () => {
  const index = await raw('/');
  assert.equal(index.status, 200);
  assert.match(index.type, /^text\/html/);
  assert.match(index.text, /<script type="module" src="\/console\/app\.js">/);
  for (const f of ['app.js', 'lib.js', 'charts.js', 'pages/overview.js', 'pages/datasources.js']) {
    const r = await raw(`/console/${f}`);
    assert.equal(r.status, 200, f);
    assert.match(r.type, /^text\/javascript/, f);
  }
  assert.match((await raw('/console/style.css')).type, /^text\/css/);
});

test('only files of the console directory are served', async () => {
  for (const p of [
    '/console/../index.ts',
    '/console/%2E%2E/index.ts',
    '/console/nope.js',
    '/console/pages/../../index.ts',
  ]) {
    const r = await raw(p);
    assert.equal(r.status, 404, p);
    assert.doesNotMatch(r.text, /consoleRoutes/, p);
  }
});

test('preview returns rows at the current or a given snapshot', async () => {
  assert.equal(snapshots.length, 2);
  const now = parseJson((await raw('/api/v1/tables/db/events/preview')).text) as { rows: { id: bigint }[] };
  assert.deepEqual(now.rows.map((r) => Number(r.id)).sort(), [1, 2, 3]);
  const first = await raw(`/api/v1/tables/db/events/preview?snapshot=${snapshots[0]}&limit=10`);
  assert.equal(first.status, 200);
  const body = parseJson(first.text) as { snapshot: string; rows: { id: bigint }[] };
  assert.equal(body.snapshot, String(snapshots[0]));
  assert.deepEqual(body.rows.map((r) => Number(r.id)).sort(), [1, 2]);
  const limited = parseJson((await raw('/api/v1/tables/db/events/preview?limit=1')).text) as { rows: unknown[] };
  assert.equal(limited.rows.length, 1);
});

test('preview validates names and parameters precisely', async () => {
  const cases: [string, number, RegExp][] = [
    ['/api/v1/tables/%2E%2E/events/preview', 400, /path\.namespace: expected namespace levels/],
    ['/api/v1/tables/db/ev%2Fil/preview', 400, /path\.table: expected a table name/],
    ['/api/v1/tables/db/events/preview?snapshot=x', 400, /query\.snapshot: expected a snapshot id/],
    ['/api/v1/tables/db/events/preview?limit=0', 400, /query\.limit: expected a limit between 1 and 500/],
    ['/api/v1/tables/db/events/preview?other=1', 400, /query: Unrecognized key/i],
    ['/api/v1/tables/db/missing/preview', 404, /missing/],
    ['/api/v1/tables/db/events/preview?snapshot=12345', 404, /snapshot 12345 does not exist/],
  ];
  for (const [url, status, message] of cases) {
    const r = await raw(url);
    assert.equal(r.status, status, `${url}: ${r.text}`);
    assert.match(JSON.parse(r.text).message, message, url);
  }
});
