import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { createTable, SqliteCatalog } from '../../src/lake/index.ts';
import { tempDir } from './helpers.ts';

// An independent reference: SQL three-valued logic over plain JS values.
type V = number | string | null;
type F =
  | { op: 'cmp'; col: 'a' | 'b' | 'd'; cmp: '=' | '!=' | '<' | '<=' | '>' | '>='; v: V }
  | { op: 'in'; col: 'a' | 'b'; vs: V[] }
  | { op: 'null'; col: 'a' | 'b' | 'd'; not: boolean }
  | { op: 'and' | 'or'; l: F; r: F }
  | { op: 'not'; x: F };

function ref(f: F, row: Record<string, V>): boolean | null {
  switch (f.op) {
    case 'cmp': {
      const x = row[f.col];
      if (x === null || x === undefined || f.v === null) return null;
      const c = x < f.v ? -1 : x > f.v ? 1 : 0;
      return { '=': c === 0, '!=': c !== 0, '<': c < 0, '<=': c <= 0, '>': c > 0, '>=': c >= 0 }[f.cmp];
    }
    case 'in': {
      const x = row[f.col];
      if (x === null || x === undefined) return null;
      return f.vs.includes(x);
    }
    case 'null':
      return (row[f.col] === null) !== f.not;
    case 'not': {
      const r = ref(f.x, row);
      return r === null ? null : !r;
    }
    default: {
      const l = ref(f.l, row);
      const r = ref(f.r, row);
      if (f.op === 'and') return l === false || r === false ? false : l === null || r === null ? null : true;
      return l === true || r === true ? true : l === null || r === null ? null : false;
    }
  }
}

const lit = (v: V): string => (v === null ? 'NULL' : typeof v === 'string' ? `'${v}'` : String(v));
function sql(f: F): string {
  switch (f.op) {
    case 'cmp':
      return `${f.col} ${f.cmp} ${lit(f.v)}`;
    case 'in':
      return `${f.col} IN (${f.vs.map(lit).join(', ')})`;
    case 'null':
      return `${f.col} IS ${f.not ? 'NOT ' : ''}NULL`;
    case 'not':
      return `NOT (${sql(f.x)})`;
    default:
      return `(${sql(f.l)}) ${f.op.toUpperCase()} (${sql(f.r)})`;
  }
}

const aVal = fc.oneof(fc.integer({ min: -30, max: 30 }), fc.constant(null));
const bVal = fc.oneof(fc.constantFrom('apple', 'apricot', 'banana', 'berry', 'cherry', 'b', ''), fc.constant(null));
const dVal = fc.oneof(
  fc.constantFrom('2023-12-31', '2024-01-01', '2024-01-02', '2024-02-29', '1969-12-31'),
  fc.constant(null),
);
const cmp = fc.constantFrom('=', '!=', '<', '<=', '>', '>=') as fc.Arbitrary<'=' | '!=' | '<' | '<=' | '>' | '>='>;
const leaf: fc.Arbitrary<F> = fc.oneof(
  fc.record({
    op: fc.constant('cmp' as const),
    col: fc.constant('a' as const),
    cmp,
    v: fc.oneof(fc.integer({ min: -35, max: 35 }), fc.constantFrom(-10.5, -0.5, 2.5, 9.5, 10.5)),
  }),
  fc.record({
    op: fc.constant('cmp' as const),
    col: fc.constant('b' as const),
    cmp,
    v: fc.constantFrom('apple', 'ap', 'b', 'bz', 'cherry', 'c'),
  }),
  fc.record({
    op: fc.constant('cmp' as const),
    col: fc.constant('d' as const),
    cmp,
    v: fc.constantFrom('2024-01-01', '2024-01-02', '1970-01-01', '2024-03-01'),
  }),
  fc.record({
    op: fc.constant('in' as const),
    col: fc.constant('a' as const),
    vs: fc.array(fc.integer({ min: -30, max: 30 }), { minLength: 1, maxLength: 3 }),
  }),
  fc.record({
    op: fc.constant('in' as const),
    col: fc.constant('b' as const),
    vs: fc.array(fc.constantFrom('apple', 'berry', 'x'), { minLength: 1, maxLength: 2 }),
  }),
  fc.record({
    op: fc.constant('null' as const),
    col: fc.constantFrom('a' as const, 'b' as const, 'd' as const),
    not: fc.boolean(),
  }),
);
const filterArb: fc.Arbitrary<F> = fc.letrec<{ f: F }>((tie) => ({
  f: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.record({ op: fc.constantFrom('and' as const, 'or' as const), l: tie('f'), r: tie('f') }),
    fc.record({ op: fc.constant('not' as const), x: tie('f') }),
  ),
})).f;

describe('property: partition and min/max pruning never drops a matching row', () => {
  it('filtered scans equal a reference evaluation over all rows', async () => {
    const tmp = tempDir();
    const catalog = new SqliteCatalog({ warehouse: tmp.dir });
    await catalog.createNamespace(['p']);
    let n = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(fc.record({ a: aVal, b: bVal, d: dVal }), { minLength: 1, maxLength: 8 }), {
          minLength: 1,
          maxLength: 3,
        }),
        fc.array(filterArb, { minLength: 1, maxLength: 4 }),
        fc.constantFrom('bucket(4, a), truncate(2, b), day(d)', 'truncate(10, a), b', 'month(d), bucket(3, b)', ''),
        async (batches, filters, partition) => {
          const t = await createTable(
            catalog,
            { namespace: ['p'], name: `t${n++}` },
            {
              schema: {
                fields: [
                  { id: 1, name: 'id', required: true, type: 'int' },
                  { id: 2, name: 'a', required: false, type: 'int' },
                  { id: 3, name: 'b', required: false, type: 'string' },
                  { id: 4, name: 'd', required: false, type: 'date' },
                ],
              },
              partition,
            },
          );
          const all: Record<string, V>[] = [];
          for (const batch of batches) {
            const rows = batch.map((r) => ({ id: all.length + batch.indexOf(r), ...r }));
            rows.forEach((r, i) => {
              r.id = all.length + i;
            });
            await t.append(rows);
            all.push(...rows);
          }
          for (const f of filters) {
            const got = (await t.rows({ filter: sql(f), columns: ['id'] }))
              .map((r) => r.id as number)
              .sort((x, y) => x - y);
            const want = all
              .filter((r) => ref(f, r) === true)
              .map((r) => r.id as number)
              .sort((x, y) => x - y);
            assert.deepEqual(got, want, `${partition}: ${sql(f)}`);
          }
        },
      ),
      { numRuns: Number(process.env.LAKE_PROP_RUNS ?? 15) },
    );
    await catalog.close();
    tmp.cleanup();
  });
});

describe('filter pushdown into DuckDB', () => {
  it('translates what it can; AND drops the rest, OR and NOT give up rather than narrow', async () => {
    const { bindExpr, boundToSql, parseExpr } = await import('../../src/lake/index.ts');
    const schema = {
      type: 'struct' as const,
      'schema-id': 0,
      fields: [
        { id: 1, name: 'a', required: false, type: 'int' },
        { id: 2, name: 'b', required: false, type: 'string' },
        { id: 3, name: 'd', required: false, type: 'date' },
      ],
    };
    const sqlOf = (w: string, exclude: number[] = []) => boundToSql(bindExpr(parseExpr(w), schema), new Set(exclude));
    assert.equal(sqlOf("a > 3 AND b = 'x'"), "(f1 > 3) AND (f2 = 'x')");
    assert.equal(sqlOf("a > 3 AND b = 'x'", [2]), '(f1 > 3)', 'identity-partition column left to the JS check');
    assert.equal(sqlOf("a > 3 OR b = 'x'", [2]), undefined);
    assert.equal(sqlOf("NOT (a > 3 AND b = 'x')", [2]), undefined);
    assert.equal(sqlOf("d >= '2024-01-01' AND a IN (1, 2)"), "(f3 >= CAST('2024-01-01' AS DATE)) AND (f1 IN (1, 2))");
  });
});

describe('manifest pruning by the manifest list partition summaries', () => {
  it('a selective filter reads only the manifests whose partition ranges can match', async () => {
    const tmp = tempDir();
    const catalog = new SqliteCatalog({ warehouse: tmp.dir });
    await catalog.createNamespace(['p']);
    const t = await createTable(
      catalog,
      { namespace: ['p'], name: 'm' },
      {
        schema: {
          fields: [
            { id: 1, name: 'id', required: true, type: 'int' },
            { id: 2, name: 'ts', required: false, type: 'timestamp' },
          ],
        },
        partition: 'day(ts)',
      },
    );
    for (let d = 1; d <= 5; d++) await t.append([{ id: d, ts: `2024-01-0${d}T12:00:00` }]);
    const s = await t.scan({ filter: "ts >= '2024-01-04T00:00:00' AND ts < '2024-01-05T00:00:00'" });
    assert.deepEqual(
      s.rows.map((r) => r.id),
      [4],
    );
    assert.deepEqual([s.manifestsScanned, s.manifestsTotal], [1, 5]);
    assert.equal(s.filesTotal, 5, 'files in skipped manifests still count toward the total');
    const nulls = await t.scan({ filter: 'ts IS NULL' });
    assert.equal(nulls.manifestsScanned, 0, 'no manifest holds a null partition');
    await catalog.close();
    tmp.cleanup();
  });
});
