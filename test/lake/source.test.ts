import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { castCannotFail, createTable, SqliteCatalog, sameDuckType, type Table } from '../../src/lake/index.ts';
import { tempDir } from './helpers.ts';

describe('casting query and file inputs to the table schema', () => {
  let tmp: ReturnType<typeof tempDir>;
  let catalog: SqliteCatalog;
  let t: Table;
  before(async () => {
    tmp = tempDir();
    catalog = new SqliteCatalog({ warehouse: tmp.dir });
    await catalog.createNamespace(['db']);
    t = await createTable(
      catalog,
      { namespace: ['db'], name: 'c' },
      {
        schema: {
          fields: [
            { id: 1, name: 'l', required: true, type: 'long' },
            { id: 2, name: 'd', required: false, type: 'double' },
            { id: 3, name: 's', required: false, type: 'string' },
          ],
        },
      },
    );
  });
  after(async () => {
    await catalog.close();
    tmp.cleanup();
  });

  it('knows which casts cannot fail (those skip the checking pass)', () => {
    assert.equal(castCannotFail('INTEGER', 'BIGINT'), true);
    assert.equal(castCannotFail('DECIMAL(18,1)', 'DOUBLE'), true);
    assert.equal(castCannotFail('BIGINT', 'VARCHAR'), true);
    assert.equal(castCannotFail('BIGINT', 'INTEGER'), false);
    assert.equal(castCannotFail('VARCHAR', 'BIGINT'), false);
    assert.equal(castCannotFail('DOUBLE', 'FLOAT'), false, 'out of range doubles fail');
    assert.equal(castCannotFail('INTEGER[]', 'VARCHAR'), false);
    // DESCRIBE spells TIMESTAMPTZ out; the same type needs no cast at all
    assert.equal(sameDuckType('TIMESTAMP WITH TIME ZONE', 'TIMESTAMPTZ'), true);
    assert.equal(sameDuckType('DECIMAL(10, 2)', 'decimal(10,2)'), true);
    assert.equal(sameDuckType('TIMESTAMP', 'TIMESTAMPTZ'), false);
  });

  it('widening casts write exact values; failing casts still reject naming the row', async () => {
    await t.append({ sql: 'SELECT CAST(range AS INTEGER) AS l, range * 0.5 AS d, range AS s FROM range(3)' });
    assert.deepEqual(
      (await t.rows()).sort((a, b) => Number(a.l) - Number(b.l)),
      [
        { l: 0n, d: 0, s: '0' },
        { l: 1n, d: 0.5, s: '1' },
        { l: 2n, d: 1, s: '2' },
      ],
    );
    await assert.rejects(
      t.append({ sql: "SELECT * FROM (VALUES ('7', 1.0), ('x', 2.0)) v(l, d)" }),
      /row 1 field "l": expected long, got a value that does not convert \("x"\)/,
    );
    await assert.rejects(t.append({ sql: 'SELECT NULL::BIGINT AS l' }), /row 0 field "l": required field is null/);
    assert.equal((await t.rows()).length, 3);
  });
});
