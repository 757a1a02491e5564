import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isTributaryError } from '../../src/core/index.ts';
import { createTable, liveEntries, SqliteCatalog, type Table } from '../../src/lake/index.ts';
import { readWithIcebird, tempDir } from './helpers.ts';

const SCHEMA = {
  fields: [
    { id: 1, name: 'id', required: true, type: 'long' },
    { id: 2, name: 'region', required: false, type: 'string' },
    { id: 3, name: 'v', required: false, type: 'double' },
  ],
};

const norm = (rows: Record<string, unknown>[]) =>
  rows.map((r) => [Number(r.id), r.region ?? null, r.v ?? null]).sort((a, b) => Number(a[0]) - Number(b[0]));

async function deleteFiles(t: Table) {
  const snap = t.currentSnapshot();
  if (!snap) return [];
  return (await liveEntries(t.metadata, t.io, snap)).map((e) => e.entry.dataFile).filter((f) => f.content === 2);
}

describe('equality deletes (merge-on-read by key, written)', () => {
  let tmp: ReturnType<typeof tempDir>;
  let catalog: SqliteCatalog;
  before(async () => {
    tmp = tempDir();
    catalog = new SqliteCatalog({ warehouse: tmp.dir });
    await catalog.createNamespace(['db']);
  });
  after(async () => {
    await catalog.close();
    tmp.cleanup();
  });

  for (const partition of [undefined, 'region']) {
    it(`deleteKeys and upsert write equality delete files that our scan and icebird apply (${partition ?? 'unpartitioned'})`, async () => {
      const t = await createTable(
        catalog,
        { namespace: ['db'], name: `eq_${partition ?? 'none'}` },
        { schema: SCHEMA, ...(partition ? { partition } : {}) },
      );
      const key = partition ? ['id', 'region'] : ['id'];
      await t.append([
        { id: 1, region: 'eu', v: 1 },
        { id: 2, region: 'eu', v: 2 },
        { id: 3, region: 'us', v: 3 },
        { id: 4, region: 'us', v: 4 },
      ]);
      const dataBefore = t.currentSnapshot()?.summary['total-data-files'];
      const d = await t.deleteKeys(
        [
          { id: 2, region: 'eu' },
          { id: 3, region: 'us' },
          { id: 99, region: 'eu' },
        ],
        { key },
      );
      assert.equal(d.removedFiles, 0, 'no data file rewritten');
      assert.equal(t.currentSnapshot()?.summary['total-data-files'], dataBefore);
      assert.equal(t.currentSnapshot()?.summary['total-equality-deletes'], '3');
      const eq = await deleteFiles(t);
      assert.ok(eq.length >= 1);
      for (const f of eq)
        assert.deepEqual(
          f.equalityIds,
          key.map((k) => SCHEMA.fields.find((x) => x.name === k)?.id),
        );
      const expected1 = [
        [1, 'eu', 1],
        [4, 'us', 4],
      ];
      assert.deepEqual(norm(await t.rows()), expected1);
      assert.deepEqual(norm(await readWithIcebird(t)), expected1);

      // upsert: new versions of 1 and 4 plus a new 5; the rows added in the same commit survive its deletes
      await t.upsert(
        [
          { id: 1, region: 'eu', v: 10 },
          { id: 4, region: 'us', v: 40 },
          { id: 5, region: 'us', v: 50 },
        ],
        { key, mode: 'equality-delete' },
      );
      const expected2 = [
        [1, 'eu', 10],
        [4, 'us', 40],
        [5, 'us', 50],
      ];
      assert.deepEqual(norm(await t.rows()), expected2);
      assert.deepEqual(norm(await readWithIcebird(t)), expected2);
      // a re-deleted then re-added key: later appends are not hit by older deletes
      await t.append([{ id: 2, region: 'eu', v: 22 }]);
      assert.deepEqual(norm(await t.rows({ filter: 'id = 2' })), [[2, 'eu', 22]]);
      // time travel still sees the state before the upsert
      const hist = t.history();
      const beforeUpsert = hist[hist.length - 3]?.snapshotId;
      assert.deepEqual(norm(await t.rows({ snapshotId: beforeUpsert })), expected1);
      // compaction applies them
      await t.compact({ minInputFiles: 1 });
      assert.deepEqual(norm(await t.rows()), [...expected2.slice(0, 1), [2, 'eu', 22], ...expected2.slice(1)]);
    });
  }

  it('refuses keys that would miss rows in other partitions, and floating-point keys', async () => {
    const t = await createTable(
      catalog,
      { namespace: ['db'], name: 'eq_bad' },
      { schema: SCHEMA, partition: 'region' },
    );
    await assert.rejects(
      t.deleteKeys([{ id: 1 }], { key: ['id'] }),
      (e: unknown) => isTributaryError(e, 'UNSUPPORTED') && /partition field\(s\) region/.test(e.message),
    );
    await assert.rejects(
      t.upsert([{ id: 1, v: 1 }], { key: ['v', 'region'], mode: 'equality-delete' }),
      /non-floating-point/,
    );
  });
});
