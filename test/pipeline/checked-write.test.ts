import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { createTable, SqliteCatalog, type Table } from '../../src/lake/index.ts';
import { checkedWrite } from '../../src/pipeline/index.ts';

let dir: string;
let catalog: SqliteCatalog;
let table: Table;
let quarantine: Table;
before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipeline-checked-'));
  catalog = new SqliteCatalog({ warehouse: path.join(dir, 'lake') });
  await catalog.createNamespace(['db']);
  const schema = {
    fields: [
      { id: 1, name: 'id', required: false, type: 'long' },
      { id: 2, name: 'status', required: false, type: 'string' },
    ],
  };
  table = await createTable(catalog, { namespace: ['db'], name: 'orders' }, { schema });
  quarantine = await createTable(catalog, { namespace: ['db'], name: 'orders_bad' }, { schema });
});
after(async () => {
  await catalog.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const checks = [
  { type: 'unique' as const, column: 'id' },
  { type: 'accepted_values' as const, column: 'status', values: ['new', 'done'] },
  { type: 'not_null' as const, column: 'status', severity: 'warn' as const },
];

test('a write failing an error check is rejected and commits nothing', async () => {
  await assert.rejects(
    checkedWrite(
      table,
      [
        { id: 1, status: 'new' },
        { id: 2, status: 'lost' },
      ],
      checks,
    ),
    /write to db\.orders rejected: accepted_values\(status\) \(1 unexpected/,
  );
  assert.equal((await table.refresh()).currentSnapshot(), undefined);
});

test('with a quarantine table, failing rows go there and the rest is written', async () => {
  const r = await checkedWrite(
    table,
    [
      { id: 1, status: 'new' },
      { id: 2, status: 'lost' },
      { id: 3, status: null },
      { id: 3, status: 'done' },
    ],
    checks,
    { quarantine },
  );
  assert.equal(r.written, 1);
  assert.equal(r.quarantined, 3);
  assert.deepEqual(
    (await (await table.refresh()).rows()).map((x) => Number(x.id)),
    [1],
  );
  assert.deepEqual((await (await quarantine.refresh()).rows()).map((x) => Number(x.id)).sort(), [2, 3, 3]);
  assert.equal(
    r.report.results.find((x) => x.type === 'not_null')!.success,
    false,
    'warn checks are reported, not blocking',
  );
});

test('checks are validated naming the field', async () => {
  await assert.rejects(
    checkedWrite(table, [{ id: 1 }], [{ type: 'range', column: 'id', mostly: 3 } as never]),
    /checks\[0\]\.mostly/,
  );
});
