import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTable, SqliteCatalog, type Table } from '../../src/lake/index.ts';
import { readWithIcebird, tempDir } from './helpers.ts';

describe('schema evolution inside structs', () => {
  let tmp: ReturnType<typeof tempDir>;
  let catalog: SqliteCatalog;
  let t: Table;
  before(async () => {
    tmp = tempDir();
    catalog = new SqliteCatalog({ warehouse: tmp.dir });
    await catalog.createNamespace(['db']);
    t = await createTable(
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
                  { id: 3, name: 'city', required: false, type: 'string' },
                  {
                    id: 4,
                    name: 'geo',
                    required: false,
                    type: { type: 'struct', fields: [{ id: 5, name: 'lat', required: false, type: 'double' }] },
                  },
                ],
              },
            },
          ],
        },
      },
    );
  });
  after(async () => {
    await catalog.close();
    tmp.cleanup();
  });

  it('adds a field to a struct and a nested struct; old files read it as null, new files carry it', async () => {
    await t.append([
      { id: 1, addr: { city: 'Oslo', geo: { lat: 59.9 } } },
      { id: 2, addr: null },
    ]);
    const schema = await t.evolveSchema([
      { op: 'add', parent: 'addr', name: 'zip', type: 'string' },
      { op: 'add', parent: 'addr.geo', name: 'lon', type: 'double' },
    ]);
    const addr = schema.fields[1]?.type as { fields: { id: number; name: string; type: unknown }[] };
    assert.deepEqual(
      addr.fields.map((f) => [f.id, f.name]),
      [
        [3, 'city'],
        [4, 'geo'],
        [6, 'zip'],
      ],
    );
    assert.equal(t.metadata['last-column-id'], 7);
    await t.append([{ id: 3, addr: { city: 'Bergen', zip: '5003', geo: { lat: 60.4, lon: 5.3 } } }]);
    const rows = (await t.rows()).sort((a, b) => Number(a.id) - Number(b.id));
    assert.deepEqual(rows, [
      { id: 1n, addr: { city: 'Oslo', geo: { lat: 59.9, lon: null }, zip: null } },
      { id: 2n, addr: null },
      { id: 3n, addr: { city: 'Bergen', geo: { lat: 60.4, lon: 5.3 }, zip: '5003' } },
    ]);
    const theirs = (await readWithIcebird(t)).sort((a, b) => Number(a.id) - Number(b.id));
    assert.deepEqual(
      theirs.map((r) => (r.addr as { zip?: unknown } | null)?.zip ?? null),
      [null, null, '5003'],
    );
  });

  it('rejects bad parents and required nested additions', async () => {
    await assert.rejects(t.evolveSchema([{ op: 'add', parent: 'id', name: 'x', type: 'int' }]), /changes\[0\]\.parent/);
    await assert.rejects(
      t.evolveSchema([{ op: 'add', parent: 'addr', name: 'city', type: 'int' }]),
      /changes\[0\]\.name/,
    );
    await assert.rejects(
      t.evolveSchema([{ op: 'add', parent: 'addr', name: 'y', type: 'int', required: true }]),
      /changes\[0\]\.required/,
    );
  });
});
