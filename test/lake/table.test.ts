import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { isTributaryError } from '../../src/core/index.ts';
import { createTable, loadTable, parsePartitionSpec, type SqliteCatalog, type Table } from '../../src/lake/index.ts';
import { eventsTable, ids, range, tempDir } from './helpers.ts';

const gen = (a: number, b: number) =>
  `SELECT range AS id, TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_hours(range) AS ts, range % 10 AS user_id, 'x' || range AS name FROM range(${a}, ${b})`;

describe('table operations on the SQLite catalog', () => {
  let tmp: ReturnType<typeof tempDir>;
  let catalog: SqliteCatalog;
  let table: Table;
  before(async () => {
    tmp = tempDir();
    ({ catalog, table } = await eventsTable(tmp.dir));
  });
  after(async () => {
    await catalog.close();
    tmp.cleanup();
  });

  it('appends JS rows and a DuckDB query; scans with partition and min/max pruning', async () => {
    const r1 = await table.append([
      { id: 1, ts: '2024-01-01T10:00:00Z', user_id: 5, name: 'a' },
      { id: 2, ts: new Date('2024-01-02T10:00:00Z'), user_id: 6n, name: 'b' },
      { id: 3, ts: null, user_id: null, name: 'c' },
    ]);
    assert.equal(r1.addedRows, 3);
    await table.append({ sql: gen(10, 100) });
    assert.deepEqual(ids(await table.rows()), [1, 2, 3, ...range(10, 100)]);
    const s = await table.scan({ filter: "ts >= '2024-01-04T00:00:00Z'" });
    assert.deepEqual(ids(s.rows), range(72, 100));
    assert.ok(s.filesScanned < s.filesTotal, `day(ts) pruning: ${s.filesScanned} of ${s.filesTotal}`);
    const one = await table.scan({ filter: 'user_id = 7 AND id > 90' });
    assert.deepEqual(ids(one.rows), [97]);
    const nulls = await table.rows({ filter: 'ts IS NULL' });
    assert.deepEqual(nulls, [{ id: 3n, ts: null, user_id: null, name: 'c' }]);
  });

  it('deletes by filter (copy-on-write) and time-travels to before the delete', async () => {
    const beforeId = table.currentSnapshot()?.['snapshot-id'] as bigint;
    await table.delete('id < 50 AND id >= 10');
    assert.deepEqual(ids(await table.rows()), [1, 2, 3, ...range(50, 100)]);
    assert.equal((await table.rows({ snapshotId: beforeId })).length, 93);
    await table.createTag('before-delete', beforeId);
    assert.equal((await table.rows({ ref: 'before-delete' })).length, 93);
    assert.equal(
      (
        await table.rows({
          asOf: table.metadata.snapshots.find((x) => x['snapshot-id'] === beforeId)?.['timestamp-ms'] as number,
        })
      ).length,
      93,
    );
  });

  it('upserts by key, copy-on-write and merge-on-read', async () => {
    await table.upsert(
      [
        { id: 60, name: 'upd' },
        { id: 1000, name: 'new' },
      ],
      { key: ['id'] },
    );
    await table.upsert([{ id: 61, name: 'upd2' }], { key: ['id'], mode: 'merge-on-read' });
    const rows = await table.rows({ filter: 'id IN (60, 61, 1000)' });
    assert.deepEqual(
      rows.map((r) => [Number(r.id), r.name]).sort((a, b) => (a[0] as number) - (b[0] as number)),
      [
        [60, 'upd'],
        [61, 'upd2'],
        [1000, 'new'],
      ],
    );
    assert.equal((await table.rows()).length, 54);
    const st = await table.stats();
    assert.equal(st.deleteFiles, 1, 'merge-on-read wrote a position delete file');
    assert.equal(st.records - st.deleteRecords, 54);
  });

  it('overwrites by filter and by dynamic partition', async () => {
    await table.overwrite([{ id: 5000, ts: '2024-01-01T05:00:00Z', user_id: 1, name: 'ow' }], { filter: "name = 'a'" });
    const r = await table.rows({ filter: "name IN ('a', 'ow')" });
    assert.deepEqual(
      r.map((x) => x.name),
      ['ow'],
    );
    const n = (await table.rows()).length;
    // dynamic: replaces only partitions (day, bucket) the new rows fall into
    await table.overwrite([{ id: 6000, ts: '2024-01-01T05:00:00Z', user_id: 1, name: 'dyn' }], { dynamic: true });
    const after = await table.rows();
    assert.ok(after.some((x) => x.name === 'dyn'));
    assert.ok(!after.some((x) => x.name === 'ow'), 'the partition holding id 5000 was replaced');
    assert.equal(after.length, n);
  });

  it('evolves the schema: rename, add, widen, drop, reorder; old data reads by field id', async () => {
    const before = await table.rows({ filter: 'id = 60' });
    await table.evolveSchema([
      { op: 'rename', name: 'name', newName: 'label' },
      { op: 'add', name: 'score', type: 'float' },
      { op: 'move', name: 'label', first: true },
    ]);
    await table.evolveSchema([{ op: 'widen', name: 'score', type: 'double' }]);
    const r = await table.rows({ filter: 'id = 60' });
    assert.deepEqual(Object.keys(r[0] ?? {}), ['label', 'id', 'ts', 'user_id', 'score']);
    assert.equal(r[0]?.label, before[0]?.name);
    assert.equal(r[0]?.score, null);
    await table.append([{ id: 7000, label: 'scored', score: 1.25 }]);
    assert.deepEqual(
      (await table.rows({ filter: 'score > 1' })).map((x) => x.label),
      ['scored'],
    );
    await assert.rejects(
      table.evolveSchema([{ op: 'widen', name: 'label', type: 'int' }]),
      /allowed promotion of string/,
    );
    await assert.rejects(table.evolveSchema([{ op: 'drop', name: 'ts' }]), /source of the current partition spec/);
    await assert.rejects(
      table.evolveSchema([{ op: 'add', name: 'req', type: 'int', required: true }]),
      /required column cannot be added/,
    );
    await table.evolveSchema([{ op: 'drop', name: 'score' }]);
    assert.ok(!('score' in ((await table.rows({ limit: 1 }))[0] ?? {})));
  });

  it('unionByName adds incoming columns; unknown columns are ignored or rejected by policy', async () => {
    await table.append([{ id: 8000, extra: 'hello', flag: true }], { unionByName: true });
    const r = await table.rows({ filter: 'id = 8000' });
    assert.equal(r[0]?.extra, 'hello');
    assert.equal(r[0]?.flag, true);
    await assert.rejects(
      table.append([{ id: 8001, nope: 1 }], { onUnknownColumns: 'reject' }),
      /unknown column\(s\) nope/,
    );
    await table.append([{ id: 8002, nope: 1 }]);
    assert.equal((await table.rows({ filter: 'id = 8002' })).length, 1);
  });

  it('rejects invalid rows naming the row and field, or drops them by policy', async () => {
    await assert.rejects(
      table.append([{ id: 9000 }, { id: 'x' }, { id: null, label: 'no id' }]),
      (err: unknown) =>
        isTributaryError(err, 'INVALID_ARGUMENT') &&
        /row 1 field "id": expected a 64-bit integer/.test(err.message) &&
        /row 2 field "id": required/.test(err.message),
    );
    assert.equal((await table.rows({ filter: 'id = 9000' })).length, 0, 'nothing of a rejected write is visible');
    const r = await table.append([{ id: 9000 }, { id: 'x' }], { onInvalid: 'drop' });
    assert.equal(r.droppedRows, 1);
    assert.equal((await table.rows({ filter: 'id = 9000' })).length, 1);
  });

  it('appends NDJSON, CSV and Parquet files, validating with the row number', async () => {
    const dir = tmp.dir;
    fs.writeFileSync(path.join(dir, 'in.ndjson'), '{"id": 10001, "label": "nd"}\n{"id": 10002, "label": "nd"}\n');
    fs.writeFileSync(path.join(dir, 'in.csv'), 'id,label\n10003,csv\n10004,csv\n');
    const inst = await DuckDBInstance.create(':memory:');
    const c = await inst.connect();
    await c.run(
      `COPY (SELECT 10005::BIGINT AS id, 'pq' AS label) TO '${path.join(dir, 'in.parquet')}' (FORMAT parquet)`,
    );
    c.closeSync();
    for (const f of ['in.ndjson', 'in.csv', 'in.parquet']) await table.append({ file: path.join(dir, f) });
    assert.deepEqual(ids(await table.rows({ filter: 'id >= 10001 AND id <= 10005' })), range(10001, 10006));
    fs.writeFileSync(path.join(dir, 'bad.csv'), 'id,label\n10010,ok\nnotanumber,bad\n');
    await assert.rejects(table.append({ file: path.join(dir, 'bad.csv') }), /row 1 field "id"/);
    // a null in a required column is found from the written files' stats, then named precisely
    fs.writeFileSync(path.join(dir, 'nullid.csv'), 'id,label\n10020,ok\n,missing\n');
    const before = (await table.rows()).length;
    await assert.rejects(
      table.append({ file: path.join(dir, 'nullid.csv') }),
      /1 invalid row\(s\) rejected: row 1 field "id": required field is null/,
    );
    assert.equal((await table.rows()).length, before);
  });

  it('rolls back, compacts, reports stats and history', async () => {
    const count = (await table.rows()).length;
    const snap = table.currentSnapshot()?.['snapshot-id'] as bigint;
    await table.append([{ id: 20000 }]);
    await table.rollback(snap);
    assert.equal((await table.rows()).length, count);
    const before = await table.stats();
    const res = await table.compact();
    assert.ok(res.removedFiles > 0);
    const afterStats = await table.stats();
    assert.ok(afterStats.dataFiles < before.dataFiles, `${afterStats.dataFiles} < ${before.dataFiles}`);
    assert.equal(afterStats.deleteFiles, 0, 'the position delete was folded in');
    assert.equal((await table.rows()).length, count);
    assert.equal(afterStats.records, count);
    assert.equal(afterStats.columns.id?.nullCount, 0);
    const h = table.history();
    assert.equal(h.at(-1)?.operation, 'replace');
    assert.ok(
      h.some((x) => !x.isCurrentAncestor),
      'the rolled-back snapshot is not an ancestor',
    );
  });

  it('expires snapshots and deletes unreferenced files; orphan cleanup removes stray files', async () => {
    const count = (await table.rows()).length;
    const stray = path.join(catalog.tableLocation(table.id), 'data', 'stray.parquet');
    fs.writeFileSync(stray, 'junk');
    const r = await table.expireSnapshots({ olderThanMs: Date.now() + 1000, retainLast: 1 });
    assert.ok(r.expired.length > 5);
    assert.ok(r.deletedFiles > 0);
    assert.equal(table.metadata.snapshots.length, 2, 'current plus the tagged snapshot');
    assert.equal((await table.rows()).length, count);
    assert.equal((await table.rows({ ref: 'before-delete' })).length, 93, 'tagged snapshot still reads');
    const orphans = await table.removeOrphanFiles({ olderThanMs: Date.now() + 1000 });
    assert.ok(orphans.includes(stray));
    assert.ok(!fs.existsSync(stray));
    assert.equal((await table.rows()).length, count);
  });

  it('evolves the partition spec; old files keep theirs and both prune', async () => {
    await table.evolvePartition('user_id');
    await table.append([
      { id: 30000, user_id: 3 },
      { id: 30001, user_id: 4 },
    ]);
    assert.equal(table.metadata['partition-specs'].length, 2);
    const s = await table.scan({ filter: 'user_id = 3' });
    assert.ok(s.rows.some((x) => x.id === 30000n));
    assert.ok(s.rows.every((x) => x.user_id === 3n));
    assert.ok(s.filesScanned < s.filesTotal);
  });
});

describe('concurrency and safety', () => {
  it('concurrent appends from two table handles all land (retry on conflict)', async () => {
    const tmp = tempDir();
    const { catalog, table } = await eventsTable(tmp.dir, '');
    const other = await loadTable(catalog, table.id);
    const results = await Promise.all([
      ...range(0, 4).map((i) => table.append([{ id: i }])),
      ...range(4, 8).map((i) => other.append([{ id: i }])),
    ]);
    await table.refresh();
    assert.deepEqual(ids(await table.rows()), range(0, 8));
    assert.equal(results.length, 8);
    // a handle whose metadata is stale always loses its first attempt, then rebases
    const stale = await loadTable(catalog, table.id);
    await table.append([{ id: 100 }]);
    const r = await stale.append([{ id: 101 }]);
    assert.equal(r.attempts, 2);
    await table.refresh();
    assert.deepEqual(ids(await table.rows()), [...range(0, 8), 100, 101]);
    await catalog.close();
    tmp.cleanup();
  });

  it('an overwrite racing a conflicting append fails with a clear error; a non-conflicting one retries', async () => {
    const tmp = tempDir();
    const { catalog, table } = await eventsTable(tmp.dir, 'user_id');
    await table.append([
      { id: 1, user_id: 1 },
      { id: 2, user_id: 2 },
    ]);
    const stale = await loadTable(catalog, table.id);
    await table.append([{ id: 3, user_id: 1 }]);
    await assert.rejects(stale.delete('user_id = 1'), /concurrent append .* added rows this delete would affect/);
    const stale2 = await loadTable(catalog, table.id);
    await table.append([{ id: 4, user_id: 9 }]);
    await stale2.delete('user_id = 2');
    await table.refresh();
    assert.deepEqual(ids(await table.rows()), [1, 3, 4]);
    await catalog.close();
    tmp.cleanup();
  });

  it('publishes commit events on tributary:lake:commit', async () => {
    const tmp = tempDir();
    const { catalog, table } = await eventsTable(tmp.dir, '');
    const seen: { table: string; operation: string; snapshotId: bigint }[] = [];
    const listener = (m: unknown) => seen.push(m as (typeof seen)[number]);
    diagnostics.subscribe('tributary:lake:commit', listener);
    try {
      const r = await table.append([{ id: 1 }]);
      assert.deepEqual(
        seen.map((e) => [e.table, e.operation, e.snapshotId]),
        [['db.events', 'append', r.snapshotId]],
      );
    } finally {
      diagnostics.unsubscribe('tributary:lake:commit', listener);
      await catalog.close();
      tmp.cleanup();
    }
  });

  it('columns added with a default read it for old rows and get it on writes that omit them', async () => {
    const tmp = tempDir();
    const { catalog, table } = await eventsTable(tmp.dir, '');
    await table.append([{ id: 1 }]);
    await table.evolveSchema([{ op: 'add', name: 'region', type: 'string', required: true, default: 'eu' }]);
    await table.append([{ id: 2 }, { id: 3, region: 'us' }]);
    assert.deepEqual((await table.rows()).map((r) => [Number(r.id), r.region]).sort(), [
      [1, 'eu'],
      [2, 'eu'],
      [3, 'us'],
    ]);
    assert.deepEqual((await table.rows({ filter: "region = 'eu'" })).length, 2);
    await assert.rejects(
      table.evolveSchema([{ op: 'add', name: 'n', type: 'int', default: 'x' }]),
      /changes\[0\]\.default: expected a 32-bit integer, got "x"/,
    );
    await catalog.close();
    tmp.cleanup();
  });

  it('writes to a branch leave main alone', async () => {
    const tmp = tempDir();
    const { catalog, table } = await eventsTable(tmp.dir, '');
    await table.append([{ id: 1 }]);
    await table.createBranch('dev');
    await table.append([{ id: 2 }], { branch: 'dev' });
    assert.deepEqual(ids(await table.rows()), [1]);
    assert.deepEqual(ids(await table.rows({ ref: 'dev' })), [1, 2]);
    await catalog.close();
    tmp.cleanup();
  });

  it('rewrites many manifests into one; nested columns round-trip with leaf stats', async () => {
    const tmp = tempDir();
    const { catalog, table } = await eventsTable(tmp.dir, 'user_id');
    for (let i = 0; i < 5; i++) await table.append([{ id: i, user_id: i % 2 }]);
    const r = await table.rewriteManifests();
    assert.deepEqual([r.before, r.after], [5, 1]);
    assert.deepEqual(ids(await table.rows()), [0, 1, 2, 3, 4]);
    assert.deepEqual(ids(await table.rows({ filter: 'user_id = 1' })), [1, 3]);
    const n = await createTable(
      catalog,
      { namespace: ['db'], name: 'nested' },
      {
        schema: {
          fields: [
            { id: 1, name: 'id', required: true, type: 'long' },
            {
              id: 2,
              name: 'addr',
              required: false,
              type: {
                type: 'struct',
                fields: [
                  { id: 5, name: 'city', required: false, type: 'string' },
                  { id: 6, name: 'zip', required: false, type: 'int' },
                ],
              },
            },
            {
              id: 3,
              name: 'tags',
              required: false,
              type: { type: 'list', 'element-id': 7, element: 'string', 'element-required': false },
            },
            {
              id: 4,
              name: 'attrs',
              required: false,
              type: { type: 'map', 'key-id': 8, key: 'string', 'value-id': 9, value: 'long', 'value-required': false },
            },
          ],
        },
      },
    );
    const row = { id: 1n, addr: { city: 'Paris', zip: 75001 }, tags: ['a', 'b'], attrs: [{ key: 'k', value: 5n }] };
    await n.append([row, { id: 2 }]);
    assert.deepEqual((await n.rows({ filter: 'id = 1' }))[0], row);
    const files = (await n.scan()).filesTotal;
    assert.equal(files, 1);
    const st = await n.stats();
    assert.equal(st.columns.id?.upper, 2n);
    const { liveEntries } = await import('../../src/lake/index.ts');
    const e = (await liveEntries(n.metadata, n.io, n.currentSnapshot() as never))[0]?.entry.dataFile;
    assert.equal(e?.valueCounts?.get(5), 2, 'struct leaf addr.city has stats under its field id');
    assert.equal(e?.nullValueCounts?.get(5), 1);
    assert.equal(e?.valueCounts?.get(7), 3, 'list elements counted (2 + one null list)');
    await catalog.close();
    tmp.cleanup();
  });

  it('adds existing Parquet files without field ids, read through the name mapping', async () => {
    const tmp = tempDir();
    const { catalog, table } = await eventsTable(tmp.dir, '');
    const inst = await DuckDBInstance.create(':memory:');
    const c = await inst.connect();
    const file = path.join(tmp.dir, 'foreign.parquet');
    await c.run(
      `COPY (SELECT range::BIGINT AS id, 'f' || range AS name, range::BIGINT AS user_id FROM range(5)) TO '${file}' (FORMAT parquet)`,
    );
    c.closeSync();
    const r = await table.addFiles([file]);
    assert.equal(r.addedRows, 5);
    assert.ok(table.metadata.properties['schema.name-mapping.default']);
    assert.deepEqual(ids(await table.rows()), [0, 1, 2, 3, 4]);
    assert.deepEqual(
      (await table.rows({ filter: 'id = 3' })).map((x) => x.name),
      ['f3'],
    );
    const pruned = await table.scan({ filter: 'id > 100' });
    assert.equal(pruned.filesScanned, 0, 'stats of the added file prune it');
    await table.evolveSchema([{ op: 'rename', name: 'name', newName: 'label' }]);
    await table.append([{ id: 10, label: 'native' }]);
    assert.deepEqual(
      (await table.rows()).map((x) => [Number(x.id), x.label]).sort((a, b) => (a[0] as number) - (b[0] as number)),
      [
        [0, 'f0'],
        [1, 'f1'],
        [2, 'f2'],
        [3, 'f3'],
        [4, 'f4'],
        [10, 'native'],
      ],
    );
    await assert.rejects(table.addFiles([path.join(tmp.dir, 'nope.parquet')]), /does not exist/);
    await catalog.close();
    tmp.cleanup();
  });

  it('a whole-table overwrite replaces every row', async () => {
    const tmp = tempDir();
    const { catalog, table } = await eventsTable(tmp.dir);
    await table.append({ sql: gen(0, 50) });
    await table.overwrite([{ id: 1, name: 'only' }]);
    assert.deepEqual(await table.rows(), [{ id: 1n, ts: null, user_id: null, name: 'only' }]);
    assert.equal(table.currentSnapshot()?.summary['deleted-records'], '50');
    await catalog.close();
    tmp.cleanup();
  });

  it('names cannot escape the warehouse', async () => {
    const tmp = tempDir();
    const { catalog } = await eventsTable(tmp.dir, '');
    for (const bad of ['..', '../x', 'a/b', '.hidden', '', 'a\u0000b']) {
      await assert.rejects(
        createTable(
          catalog,
          { namespace: ['db'], name: bad },
          { schema: { fields: [{ id: 1, name: 'a', required: false, type: 'int' }] } },
        ),
        /table name: expected a name/,
      );
      await assert.rejects(catalog.createNamespace([bad]), /namespace\[0\]: expected a name/);
    }
    await catalog.close();
    tmp.cleanup();
  });

  it('parses partition spec strings', () => {
    assert.deepEqual(parsePartitionSpec('day(ts), bucket(16, user_id), name, truncate(4, s)'), [
      { source: 'ts', transform: 'day' },
      { source: 'user_id', transform: 'bucket[16]' },
      { source: 'name', transform: 'identity' },
      { source: 's', transform: 'truncate[4]' },
    ]);
    assert.throws(() => parsePartitionSpec('day(ts) bucket'), /partition/);
  });
});
