import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { createTable, liveEntries, SqliteCatalog, type Table } from '../../src/lake/index.ts';
import { tempDir } from './helpers.ts';

describe('addFiles on a partitioned table', () => {
  let tmp: ReturnType<typeof tempDir>;
  let catalog: SqliteCatalog;
  let t: Table;
  const ext = (...p: string[]) => path.join(tmp.dir, 'external', ...p);
  before(async () => {
    tmp = tempDir();
    catalog = new SqliteCatalog({ warehouse: path.join(tmp.dir, 'lake') });
    await catalog.createNamespace(['db']);
    t = await createTable(
      catalog,
      { namespace: ['db'], name: 'ev' },
      {
        schema: {
          fields: [
            { id: 1, name: 'id', required: true, type: 'long' },
            { id: 2, name: 'ts', required: false, type: 'timestamptz' },
            { id: 3, name: 'region', required: false, type: 'string' },
          ],
        },
        partition: 'region, day(ts)',
      },
    );
    // files written by "another engine": plain Parquet, no field ids
    const inst = await DuckDBInstance.create(':memory:');
    const c = await inst.connect();
    fs.mkdirSync(ext('region=us'), { recursive: true });
    const copy = (sql: string, file: string) => c.run(`COPY (${sql}) TO '${file}' (FORMAT parquet)`);
    await copy(
      "SELECT range AS id, TIMESTAMP '2024-03-01 00:00:00' + to_minutes(range) AS ts, 'eu' AS region FROM range(0, 10)",
      ext('eu.parquet'),
    );
    await copy(
      "SELECT range AS id, TIMESTAMP '2024-03-02 00:00:00' + to_minutes(range) AS ts FROM range(10, 15)",
      ext('region=us', 'us.parquet'),
    );
    await copy(
      "SELECT range AS id, TIMESTAMP '2024-03-01 23:00:00' + to_hours(range - 20) AS ts, 'eu' AS region FROM range(20, 22)",
      ext('spans.parquet'),
    );
    await copy("SELECT 30 AS id, TIMESTAMP '2024-03-01 00:00:00' AS ts", ext('noregion.parquet'));
    c.closeSync();
    inst.closeSync();
  });
  after(async () => {
    await catalog.close();
    tmp.cleanup();
  });

  it('derives each file partition from its rows, or from a Hive directory for a missing identity column', async () => {
    const r = await t.addFiles([ext('eu.parquet'), ext('region=us', 'us.parquet')]);
    assert.equal(r.addedFiles, 2);
    const snap = t.currentSnapshot();
    assert.ok(snap);
    const parts = (await liveEntries(t.metadata, t.io, snap))
      .map((e) => [path.basename(e.entry.dataFile.filePath), e.entry.dataFile.partition])
      .sort();
    const day = (d: string) => Math.round(Date.parse(d) / 86_400_000);
    assert.deepEqual(parts, [
      ['eu.parquet', ['eu', day('2024-03-01')]],
      ['us.parquet', ['us', day('2024-03-02')]],
    ]);
    const us = await t.scan({ filter: "region = 'us'" });
    assert.equal(us.filesScanned, 1, 'partition pruning works on added files');
    assert.deepEqual(
      us.rows.map((x) => [Number(x.id), x.region]),
      [10, 11, 12, 13, 14].map((i) => [i, 'us']),
    );
    assert.equal((await t.rows({ filter: "ts < '2024-03-02'" })).length, 10);
  });

  it('refuses a file spanning partitions and a file without a partition source', async () => {
    await assert.rejects(
      t.addFiles([ext('spans.parquet')]),
      /spans\.parquet: expected a file whose rows fall in one partition/,
    );
    await assert.rejects(t.addFiles([ext('noregion.parquet')]), /with column region .* or a region=VALUE directory/);
    assert.equal((await t.rows()).length, 15, 'nothing was added');
  });
});
