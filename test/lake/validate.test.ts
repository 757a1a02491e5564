import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isTributaryError } from '../../src/core/index.ts';
import { createTable, SqliteCatalog, type Table, type WriteBatch, type WriteValidator } from '../../src/lake/index.ts';
import { tempDir } from './helpers.ts';

const SCHEMA = {
  fields: [
    { id: 1, name: 'id', required: true, type: 'long' },
    { id: 2, name: 'email', required: false, type: 'string' },
    { id: 3, name: 'amount', required: false, type: 'double' },
  ],
};

/** Flags rows by a SQL predicate over the batch (what a quality check does), recording what it saw. */
function sqlCheck(severity: 'error' | 'warn', field: string, failing: string, seen: WriteBatch[] = []): WriteValidator {
  return {
    name: `${severity}:${field}`,
    async validate(b) {
      seen.push(b);
      const r = await b.connection.runAndReadAll(`SELECT count(*) FROM ${b.relation} WHERE ${failing}`);
      if (Number(r.getRows()[0]?.[0]) === 0) return [];
      return [
        {
          severity,
          check: `check(${field})`,
          message: `${failing} holds`,
          fields: [field],
          rowsSql: `SELECT __row FROM ${b.numbered} WHERE ${failing}`,
        },
      ];
    },
  };
}

const rows = [
  { id: 1, email: 'a@x.io', amount: 10 },
  { id: 2, email: 'not-an-email', amount: 20 },
  { id: 3, email: 'c@x.io', amount: -5 },
  { id: 4, email: null, amount: 7 },
];

describe('write validators', () => {
  let tmp: ReturnType<typeof tempDir>;
  let catalog: SqliteCatalog;
  let table: Table;
  let quarantine: Table;
  before(async () => {
    tmp = tempDir();
    catalog = new SqliteCatalog({ warehouse: tmp.dir });
    await catalog.createNamespace(['db']);
    table = await createTable(catalog, { namespace: ['db'], name: 't' }, { schema: SCHEMA });
    quarantine = await createTable(catalog, { namespace: ['db'], name: 'q' }, { schema: SCHEMA });
  });
  after(async () => {
    await catalog.close();
    tmp.cleanup();
  });

  it('an error rejects the write naming rows and fields; nothing is committed', async () => {
    const seen: WriteBatch[] = [];
    await assert.rejects(
      table.append(rows, { validators: [sqlCheck('error', 'amount', 'amount < 0', seen)] }),
      (e: unknown) =>
        isTributaryError(e, 'INVALID_ARGUMENT') &&
        e.message.includes('check(amount) failed on rows 2 field(s) amount') &&
        e.field === 'amount',
    );
    assert.equal(seen[0]?.rowCount, 4);
    assert.deepEqual(
      seen[0]?.schema.fields.map((f) => f.name),
      ['id', 'email', 'amount'],
    );
    assert.equal(table.currentSnapshot(), undefined);
  });

  it('warnings are kept by default and reported', async () => {
    const r = await table.append(rows, { validators: [sqlCheck('warn', 'email', "email NOT LIKE '%@%'")] });
    assert.equal(r.addedRows, 4);
    assert.deepEqual(
      r.violations?.map((v) => [v.severity, v.check]),
      [['warn', 'check(email)']],
    );
  });

  it('drop-rows, null-fields and quarantine clean warned rows', async () => {
    const warn = sqlCheck('warn', 'email', "email NOT LIKE '%@%'");
    await table.overwrite(rows, { validators: [warn], onWarning: 'drop-rows' });
    assert.deepEqual((await table.rows()).map((r) => r.id).sort(), [1n, 3n, 4n]);

    table.writeValidators.push(warn); // table-level: every write through this instance
    try {
      const r = await table.overwrite(rows, { onWarning: 'null-fields' });
      assert.equal(r.droppedRows, 0);
      const byId = new Map((await table.rows()).map((x) => [x.id, x.email]));
      assert.deepEqual([...byId.entries()].sort(), [
        [1n, 'a@x.io'],
        [2n, null],
        [3n, 'c@x.io'],
        [4n, null],
      ]);
      const q = await table.overwrite(rows, { onWarning: 'quarantine', quarantine });
      assert.equal(q.quarantinedRows, 1);
      assert.deepEqual((await table.rows()).map((x) => x.id).sort(), [1n, 3n, 4n]);
      await quarantine.refresh();
      assert.deepEqual(await quarantine.rows(), [{ id: 2n, email: 'not-an-email', amount: 20 }]);
    } finally {
      table.writeValidators.pop();
    }
    await assert.rejects(table.append(rows, { validators: [warn], onWarning: 'quarantine' }), /quarantine/);
  });

  it('validators see any input typed as the table schema', async () => {
    const types: string[][] = [];
    const describe: WriteValidator = {
      async validate(b) {
        const r = await b.connection.runAndReadAll(`DESCRIBE SELECT * FROM ${b.relation}`);
        types.push(r.getRows().map((x) => `${x[0]} ${x[1]}`));
        return [];
      },
    };
    await table.upsert(
      { sql: "SELECT 9 AS id, 'z' AS email, '1.5' AS amount" },
      { key: ['id'], validators: [describe, sqlCheck('warn', 'amount', 'amount > 1')], onWarning: 'drop-rows' },
    );
    assert.deepEqual(types, [['id BIGINT', 'email VARCHAR', 'amount DOUBLE']]);
    assert.equal((await table.rows({ filter: 'id = 9' })).length, 0, 'the only row was dropped by the warning policy');
  });
});
