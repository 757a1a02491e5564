import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import fc from 'fast-check';
import { icebergRead } from 'icebird';
import { createTable, liveEntries, type SqliteCatalog, type Table } from '../../src/lake/index.ts';
import { ids, tempDir } from './helpers.ts';

/** icebird fetches URLs; our tables store local paths, so serve those from disk during the test. */
function withLocalFetch(): () => void {
  const orig = globalThis.fetch;
  globalThis.fetch = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const p = url.startsWith('file://') ? new URL(url).pathname : url;
    if (!p.startsWith('/')) return orig(input, init);
    if (!fs.existsSync(p)) return new Response('not found', { status: 404 });
    const body = fs.readFileSync(p);
    if (init?.method === 'HEAD')
      return new Response(null, { status: 200, headers: { 'content-length': String(body.length) } });
    return new Response(body, { status: 200, headers: { 'content-length': String(body.length) } });
  }) as typeof fetch;
  return () => {
    globalThis.fetch = orig;
  };
}

async function readWithIcebird(table: Table): Promise<Record<string, unknown>[]> {
  const text = fs.readFileSync(table.io.resolve(table.metadataLocation), 'utf8');
  const metadata = JSON.parse(text);
  return (await icebergRead({ tableUrl: table.metadata.location, metadata })) as Record<string, unknown>[];
}

const norm = (rows: Record<string, unknown>[], cols: string[]) =>
  rows
    .map((r) =>
      cols.map((c) => (r[c] === undefined || r[c] === null ? null : typeof r[c] === 'bigint' ? Number(r[c]) : r[c])),
    )
    .sort((a, b) => Number(a[0]) - Number(b[0]));

describe('tables we write read back through independent readers', () => {
  let tmp: ReturnType<typeof tempDir>;
  let catalog: SqliteCatalog;
  let table: Table;
  let restore: () => void;
  before(async () => {
    tmp = tempDir();
    const { SqliteCatalog: C } = await import('../../src/lake/index.ts');
    catalog = new C({ warehouse: tmp.dir });
    await catalog.createNamespace(['db']);
    table = await createTable(
      catalog,
      { namespace: ['db'], name: 'people' },
      {
        schema: {
          fields: [
            { id: 1, name: 'id', required: true, type: 'long' },
            { id: 2, name: 'name', required: false, type: 'string' },
            { id: 3, name: 'score', required: false, type: 'double' },
            { id: 4, name: 'flag', required: false, type: 'boolean' },
            { id: 5, name: 'grp', required: false, type: 'int' },
          ],
        },
        partition: 'grp, bucket(4, id)',
      },
    );
    restore = withLocalFetch();
  });
  after(async () => {
    restore();
    await catalog.close();
    tmp.cleanup();
  });

  const cols = ['id', 'name', 'score', 'flag', 'grp'];
  const check = async (label: string) => {
    const ours = await table.rows();
    const theirs = await readWithIcebird(table);
    assert.deepEqual(norm(theirs, cols), norm(ours, cols), `icebird vs tributary after ${label}`);
    return ours.length;
  };

  it('partitioned appends', async () => {
    await table.append(
      Array.from({ length: 40 }, (_, i) => ({ id: i, name: `n${i}`, score: i / 4, flag: i % 3 === 0, grp: i % 3 })),
    );
    await table.append({
      sql: "SELECT range + 100 AS id, 'q' || range AS name, range * 1.5 AS score, range % 2 = 0 AS flag, CAST(range % 3 AS INTEGER) AS grp FROM range(30)",
    });
    assert.equal(await check('appends'), 70);
  });

  it('copy-on-write delete and merge-on-read upsert (position deletes)', async () => {
    await table.delete('id >= 30 AND id < 110');
    await table.upsert([{ id: 5, name: 'five', score: 5, flag: true, grp: 2 }], { key: ['id'], mode: 'merge-on-read' });
    assert.equal(await check('deletes'), 50);
  });

  it('after schema evolution (rename and added column)', async () => {
    await table.evolveSchema([
      { op: 'rename', name: 'name', newName: 'label' },
      { op: 'add', name: 'extra', type: 'string' },
    ]);
    await table.append([{ id: 500, label: 'new', score: 1, flag: false, grp: 1, extra: 'e' }]);
    const evolvedCols = ['id', 'label', 'score', 'flag', 'grp', 'extra'];
    const ours = await table.rows();
    const theirs = await readWithIcebird(table);
    assert.deepEqual(norm(theirs, evolvedCols), norm(ours, evolvedCols), 'icebird vs tributary after evolution');
    assert.equal(ours.length, 51);
    await table.delete('id = 500');
    await table.evolveSchema([
      { op: 'drop', name: 'extra' },
      { op: 'rename', name: 'label', newName: 'name' },
    ]);
  });

  it('after compaction', async () => {
    await table.compact();
    assert.equal((await table.stats()).deleteFiles, 0);
    assert.equal(await check('compaction'), 50);
  });

  it('every data file reads in plain DuckDB and carries Iceberg field ids', async () => {
    const snap = table.currentSnapshot();
    assert.ok(snap);
    const entries = await liveEntries(table.metadata, table.io, snap);
    const files = entries
      .filter((e) => e.entry.dataFile.content === 0)
      .map((e) => table.io.resolve(e.entry.dataFile.filePath));
    const inst = await DuckDBInstance.create(':memory:');
    const c = await inst.connect();
    const list = `[${files.map((f) => `'${f}'`).join(', ')}]`;
    const res = await c.runAndReadAll(`SELECT id, name FROM read_parquet(${list}) ORDER BY id`);
    assert.deepEqual(
      res.getRows().map((r) => Number(r[0])),
      ids(await table.rows()),
    );
    const schema = await c.runAndReadAll(
      `SELECT DISTINCT name, field_id FROM parquet_schema(${list}) WHERE field_id IS NOT NULL ORDER BY field_id`,
    );
    assert.deepEqual(
      schema.getRows().map((r) => [r[0], Number(r[1])]),
      [
        ['id', 1],
        ['name', 2],
        ['score', 3],
        ['flag', 4],
        ['grp', 5],
      ],
    );
    c.closeSync();
  });
});

describe('property: random operations match an in-memory model', () => {
  it('appends, deletes, upserts, added columns, compaction, manifest rewrites and expiry', async () => {
    type Op =
      | { kind: 'append'; rows: { id: number; v: number }[] }
      | { kind: 'delete'; below: number }
      | { kind: 'upsert'; rows: { id: number; v: number }[]; mor: boolean }
      | { kind: 'addColumn' }
      | { kind: 'maintain'; what: 'compact' | 'manifests' | 'expire' };
    const rowArb = fc.record({ id: fc.integer({ min: 0, max: 30 }), v: fc.integer({ min: 0, max: 3 }) });
    const opArb: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ kind: fc.constant('append' as const), rows: fc.array(rowArb, { minLength: 1, maxLength: 5 }) }),
      fc.record({ kind: fc.constant('delete' as const), below: fc.integer({ min: 0, max: 30 }) }),
      fc.record({
        kind: fc.constant('upsert' as const),
        rows: fc.uniqueArray(rowArb, { minLength: 1, maxLength: 4, selector: (r) => r.id }),
        mor: fc.boolean(),
      }),
      fc.constant({ kind: 'addColumn' as const }),
      fc.record({
        kind: fc.constant('maintain' as const),
        what: fc.constantFrom('compact' as const, 'manifests' as const, 'expire' as const),
      }),
    );
    const tmp = tempDir();
    const { SqliteCatalog: C } = await import('../../src/lake/index.ts');
    const catalog = new C({ warehouse: tmp.dir });
    await catalog.createNamespace(['p']);
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 5 }), async (ops) => {
        const t = await createTable(
          catalog,
          { namespace: ['p'], name: `t${n++}` },
          {
            schema: {
              fields: [
                { id: 1, name: 'id', required: true, type: 'long' },
                { id: 2, name: 'v', required: false, type: 'int' },
              ],
            },
            partition: 'v',
          },
        );
        let model: { id: number; v: number; extra?: string | null }[] = [];
        let cols = 0;
        for (const op of ops) {
          if (op.kind === 'append') {
            await t.append(op.rows);
            model.push(...op.rows.map((r) => ({ ...r })));
          } else if (op.kind === 'delete') {
            await t.delete(`id < ${op.below}`);
            model = model.filter((r) => r.id >= op.below);
          } else if (op.kind === 'upsert') {
            await t.upsert(op.rows, { key: ['id'], mode: op.mor ? 'merge-on-read' : 'copy-on-write' });
            const keys = new Set(op.rows.map((r) => r.id));
            model = [...model.filter((r) => !keys.has(r.id)), ...op.rows.map((r) => ({ ...r }))];
          } else if (op.kind === 'addColumn') {
            await t.evolveSchema([{ op: 'add', name: `c${cols++}`, type: 'string' }]);
          } else if (op.what === 'compact') {
            await t.compact({ minInputFiles: 1 });
          } else if (op.what === 'manifests') {
            await t.rewriteManifests();
          } else {
            await t.expireSnapshots({ olderThanMs: Date.now() + 1000, retainLast: 1 });
          }
        }
        const got = (await t.rows()).map((r) => `${r.id}:${r.v}`).sort();
        const want = model.map((r) => `${BigInt(r.id)}:${r.v}`).sort();
        assert.deepEqual(got, want);
      }),
      { numRuns: Number(process.env.LAKE_PROP_RUNS ?? 12) },
    );
    await catalog.close();
    tmp.cleanup();
  });
});

describe('duckdbScanSql: a snapshot as DuckDB SQL', () => {
  it('matches scanTable, with deletes, identity partitions, renames and filters', async () => {
    const { SqliteCatalog: C, duckdbScanSql } = await import('../../src/lake/index.ts');
    const tmp = tempDir();
    const catalog = new C({ warehouse: tmp.dir });
    await catalog.createNamespace(['d']);
    const t = await createTable(
      catalog,
      { namespace: ['d'], name: 't' },
      {
        schema: {
          fields: [
            { id: 1, name: 'id', required: true, type: 'long' },
            { id: 2, name: 'g', required: false, type: 'string' },
            { id: 3, name: 'x', required: false, type: 'double' },
          ],
        },
        partition: 'g',
      },
    );
    await t.append(Array.from({ length: 30 }, (_, i) => ({ id: i, g: ['a', 'b', 'c'][i % 3], x: i / 2 })));
    await t.upsert([{ id: 4, g: 'b', x: 100 }], { key: ['id'], mode: 'merge-on-read' });
    await t.evolveSchema([{ op: 'rename', name: 'x', newName: 'value' }]);
    const inst = await DuckDBInstance.create(':memory:');
    const c = await inst.connect();
    for (const filter of [undefined, "g = 'b' AND value >= 10"]) {
      const q = await duckdbScanSql(t.metadata, t.io, filter ? { filter } : {});
      const res = await c.runAndReadAll(`SELECT id, g, value FROM (${q.sql}) ORDER BY id`);
      q.cleanup();
      const ours = (await t.rows(filter ? { filter } : {}))
        .map((r) => [Number(r.id), r.g, r.value])
        .sort((a, b) => (a[0] as number) - (b[0] as number));
      assert.deepEqual(
        res.getRows().map((r) => [Number(r[0]), r[1], r[2]]),
        ours,
        String(filter),
      );
    }
    c.closeSync();
    await catalog.close();
    tmp.cleanup();
  });
});
