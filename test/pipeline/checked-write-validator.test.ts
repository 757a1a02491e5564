import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { Table as ArrowTable, Int64, Utf8, vectorFromArray } from 'apache-arrow';
import { isTributaryError } from '../../src/core/index.ts';
import { createTable, SqliteCatalog, type Table } from '../../src/lake/index.ts';
import { type CheckResult, qualityValidator } from '../../src/pipeline/index.ts';

let dir: string;
let catalog: SqliteCatalog;
let table: Table;
let quarantine: Table;
before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipeline-validator-'));
  catalog = new SqliteCatalog({ warehouse: path.join(dir, 'lake') });
  await catalog.createNamespace(['db']);
  const schema = {
    fields: [
      { id: 1, name: 'id', required: false, type: 'long' },
      { id: 2, name: 'status', required: false, type: 'string' },
      { id: 3, name: 'email', required: false, type: 'string' },
    ],
  };
  table = await createTable(catalog, { namespace: ['db'], name: 'orders' }, { schema });
  quarantine = await createTable(catalog, { namespace: ['db'], name: 'orders_bad' }, { schema });
});
after(async () => {
  await catalog.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const rows = [
  { id: 1, status: 'new', email: 'a@x.io' },
  { id: 2, status: 'done', email: 'nope' },
  { id: 3, status: 'new', email: 'c@x.io' },
  { id: 3, status: 'done', email: 'd@x.io' },
];

test('error checks inside the lake write reject it, naming rows and fields', async () => {
  const v = qualityValidator([
    { type: 'accepted_values', column: 'status', values: ['new'] },
    { type: 'unique', column: 'id' },
  ]);
  await assert.rejects(table.append(rows, { validators: [v] }), (e: unknown) => {
    assert.ok(isTributaryError(e, 'INVALID_ARGUMENT'));
    assert.match(e.message, /accepted_values\(status\) failed on rows 1, 3 field\(s\) status: 2 unexpected/);
    assert.match(e.message, /unique\(id\) failed on rows 2, 3 field\(s\) id/);
    return true;
  });
  assert.equal((await table.refresh()).currentSnapshot(), undefined);
  // the same report a validate stage produces
  assert.equal(v.lastReport?.rowCount, 4);
  assert.deepEqual(
    v.lastReport?.results.map((r) => [r.name, r.success, r.unexpectedCount]),
    [
      ['accepted_values(status)', false, 2],
      ['unique(id)', false, 1],
    ],
  );
});

test('warn checks are cleaned by the lake policy: quarantine, drop rows, null fields', async () => {
  const v = qualityValidator([
    { type: 'regex', column: 'email', pattern: '^[^@]+@[^@]+$', severity: 'warn' },
    { type: 'not_null', column: 'id' },
  ]);
  const r = await table.append(rows, { validators: [v], onWarning: 'quarantine', quarantine });
  assert.equal(r.addedRows, 3);
  assert.equal(r.quarantinedRows, 1);
  assert.equal((r.violations?.[0]?.detail as CheckResult | undefined)?.sample.length, 1);
  await quarantine.refresh();
  assert.deepEqual(await quarantine.rows(), [{ id: 2n, status: 'done', email: 'nope' }]);

  table.writeValidators.push(v);
  try {
    const arrow = new ArrowTable({
      id: vectorFromArray([10n, 11n], new Int64()),
      email: vectorFromArray(['bad', 'ok@x.io'], new Utf8()),
    });
    const d = await table.overwrite(arrow, { onWarning: 'drop-rows' });
    assert.equal(d.droppedRows, 1);
    assert.deepEqual(
      (await table.rows()).map((x) => x.id),
      [11n],
    );
    await table.overwrite(arrow, { onWarning: 'null-fields' });
    const got = (await table.rows()).map((x) => [x.id, x.email]).sort();
    assert.deepEqual(got, [
      [10n, null],
      [11n, 'ok@x.io'],
    ]);
  } finally {
    table.writeValidators.pop();
  }
});

test('mostly: a warn/error check within its threshold is no violation', async () => {
  const v = qualityValidator([{ type: 'regex', column: 'email', pattern: '.*@.*', mostly: 0.7 }]);
  const r = await table.append(rows, { validators: [v] });
  assert.equal(r.addedRows, 4);
  assert.deepEqual(r.violations, []);
  assert.throws(() => qualityValidator([{ type: 'range', column: 'id', mostly: 3 } as never]), /checks\[0\]\.mostly/);
});
