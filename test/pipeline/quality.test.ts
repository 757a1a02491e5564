import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import fc from 'fast-check';
import { type CheckInput, checkSchema, runChecks, scoreOf } from '../../src/pipeline/index.ts';

let inst: DuckDBInstance;
let c: DuckDBConnection;
before(async () => {
  inst = await DuckDBInstance.create(':memory:');
  c = await inst.connect();
  await c.run(`CREATE TABLE t AS SELECT * FROM (VALUES
    (1, 'a@x.io', 'new', 10.0, TIMESTAMP '2024-01-09 12:00:00', 'k1'),
    (2, 'b@x.io', 'new', 20.0, TIMESTAMP '2024-01-08 12:00:00', 'k2'),
    (3, NULL,     'old', 30.0, TIMESTAMP '2024-01-07 12:00:00', 'k3'),
    (3, 'bad',    'odd', -5.0, TIMESTAMP '2024-01-06 12:00:00', 'zz'),
    (5, 'e@x.io', NULL,  99.0, NULL,                           'k1')
  ) v(id, email, state, amount, ts, ref)`);
  await c.run("CREATE TABLE refs AS SELECT * FROM (VALUES ('k1'), ('k2'), ('k3')) v(key)");
});
after(() => {
  c.closeSync();
  inst.closeSync();
});

const run = (checks: CheckInput[]) =>
  runChecks(
    c,
    't',
    'sql:t',
    checks.map((x) => checkSchema.parse(x)),
  );

test('each check type: observed value, unexpected count and percent, failing sample', async () => {
  const r = await run([
    { type: 'not_null', column: 'email' },
    { type: 'unique', column: 'id' },
    { type: 'accepted_values', column: 'state', values: ['new', 'old'] },
    { type: 'range', column: 'amount', min: 0, max: 50 },
    { type: 'regex', column: 'email', pattern: '[^@]+@[^@]+' },
    { type: 'row_count', min: 1, max: 4 },
    { type: 'freshness', column: 'ts', maxAge: '2d', now: '2024-01-10T00:00:00Z' },
    { type: 'referential_integrity', column: 'ref', to: 'refs', toColumn: 'key' },
    { type: 'schema_match', columns: { id: 'INTEGER', email: 'VARCHAR', missing: null } },
    { type: 'custom_sql', name: 'amount_vs_id', where: 'amount >= id' },
    { type: 'custom_sql', name: 'dup_query', sql: 'SELECT id FROM {{input}} GROUP BY id HAVING count(*) > 1' },
  ]);
  const by = Object.fromEntries(r.results.map((x) => [x.name, x]));
  assert.equal(r.rowCount, 5);
  assert.deepEqual(Object.fromEntries(r.results.map((x) => [x.name, [x.success, x.unexpectedCount]])), {
    'not_null(email)': [false, 1],
    'unique(id)': [false, 1],
    'accepted_values(state)': [false, 1],
    'range(amount)': [false, 2],
    'regex(email)': [false, 1],
    row_count: [false, 0],
    'freshness(ts)': [true, 0],
    'referential_integrity(ref)': [false, 1],
    schema_match: [false, 0],
    amount_vs_id: [false, 1],
    dup_query: [false, 1],
  });
  assert.equal(by['range(amount)']!.unexpectedPercent, 40);
  assert.deepEqual(by['range(amount)']!.sample.map((s) => s.id).sort(), [3, 5]);
  assert.equal(by['unique(id)']!.sample.length, 2, 'both rows of the duplicate');
  assert.equal(by.row_count!.observedValue, 5);
  assert.equal(by['freshness(ts)']!.observedValue, '43200s');
  assert.equal(by.schema_match!.observedValue, 'missing missing');
  assert.equal(by['referential_integrity(ref)']!.sample[0]!.ref, 'zz');
  // metrics once per column
  assert.deepEqual(r.columnMetrics.email, { count: 4, nullCount: 1 });
  assert.deepEqual(r.columnMetrics.id, { count: 5, nullCount: 0, distinctCount: 4, min: 1, max: 5 });
  assert.deepEqual(r.columnMetrics.amount, { count: 5, nullCount: 0, min: -5, max: 99 });
});

test('mostly: a row check passes when the passing share reaches it; severity is kept', async () => {
  const r = await run([
    { type: 'not_null', column: 'email', mostly: 0.8, severity: 'warn' },
    { type: 'not_null', column: 'email', mostly: 0.81, name: 'strict' },
  ]);
  assert.equal(r.results[0]!.success, true);
  assert.equal(r.results[0]!.severity, 'warn');
  assert.equal(r.results[1]!.success, false);
  assert.equal(r.results[1]!.severity, 'error');
});

test('a check on a missing column fails with a clear observed value', async () => {
  const r = await run([{ type: 'not_null', column: 'nope' }]);
  assert.equal(r.results[0]!.success, false);
  assert.equal(r.results[0]!.observedValue, 'missing column');
});

test('score: weighted pass rate per dimension, mean over dimensions', async () => {
  const r = await run([
    { type: 'not_null', column: 'email' }, // completeness 0.8
    { type: 'range', column: 'amount', min: 0, max: 50, weight: 3 }, // validity 0.6 (w3)
    { type: 'accepted_values', column: 'state', values: ['new', 'old'] }, // validity 0.8 (w1)
    { type: 'unique', column: 'id' }, // uniqueness 0.8
  ]);
  assert.ok(Math.abs(r.score.dimensions.completeness! - 0.8) < 1e-9);
  assert.ok(Math.abs(r.score.dimensions.validity! - (3 * 0.6 + 0.8) / 4) < 1e-9);
  assert.ok(Math.abs(r.score.score - (0.8 + 0.65 + 0.8) / 3) < 1e-9);
});

test('property: the score stays in [0, 1] and never rises when a pass rate falls', () => {
  const dim = fc.constantFrom('completeness', 'validity', 'uniqueness', 'freshness', 'consistency' as const);
  const result = fc.record({
    dimension: dim,
    weight: fc.double({ min: 0.1, max: 10, noNaN: true }),
    passRate: fc.double({ min: 0, max: 1, noNaN: true }),
  });
  fc.assert(
    fc.property(
      fc.array(result, { minLength: 1, maxLength: 12 }),
      fc.nat(),
      fc.double({ min: 0, max: 1, noNaN: true }),
      (rs, i, drop) => {
        const s = scoreOf(rs).score;
        assert.ok(s >= 0 && s <= 1 + 1e-12);
        const k = i % rs.length;
        const worse = rs.map((r, j) => (j === k ? { ...r, passRate: r.passRate * drop } : r));
        assert.ok(scoreOf(worse).score <= s + 1e-12);
      },
    ),
  );
});
