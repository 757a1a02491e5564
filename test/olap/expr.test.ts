import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import fc from 'fast-check';
import { evalExpr, exprToSql } from '../../src/olap/expr.ts';
import { ident, lit } from '../../src/olap/sql.ts';
import { parseGranularity, parseInterval, parsePeriod } from '../../src/olap/time.ts';

describe('expressions and SQL escaping', () => {
  let db: DuckDBInstance;
  let c: DuckDBConnection;
  before(async () => {
    db = await DuckDBInstance.create(':memory:');
    c = await db.connect();
  });
  after(() => {
    c.closeSync();
    db.closeSync();
  });

  test('ident() and lit() round-trip any string through DuckDB', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ unit: 'binary', minLength: 1, maxLength: 20 }).filter((s) => !s.includes('\u0000')),
        async (s) => {
          const r = await c.runAndReadAll(`SELECT ${lit(s)} AS ${ident(s)}`);
          assert.deepEqual(r.columnNames(), [s]);
          assert.equal(r.getRowsJS()[0]![0], s);
        },
      ),
      { numRuns: 100 },
    );
  });

  test('Druid expressions: SQL translation and JS evaluation agree on integer arithmetic and comparisons', async () => {
    const leaf = fc.oneof(fc.integer({ min: -50, max: 50 }).map(String), fc.constantFrom('x', 'y'));
    const tree = fc.letrec((tie) => ({
      e: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        leaf,
        fc
          .tuple(tie('e'), fc.constantFrom('+', '-', '*', '<', '>=', '==', '!=', '&&', '||'), tie('e'))
          .map(([a, op, b]) => `(${a} ${op} ${b})`),
        tie('e').map((a) => `-(${a})`),
        tie('e').map((a) => `!(${a})`),
      ),
    })).e as fc.Arbitrary<string>;
    await fc.assert(
      fc.asyncProperty(tree, fc.integer({ min: -9, max: 9 }), fc.integer({ min: -9, max: 9 }), async (e, x, y) => {
        const vars: Record<string, bigint> = { x: BigInt(x), y: BigInt(y) };
        const js = evalExpr(e, (n) => vars[n], 'e');
        const sql = exprToSql(e, (n) => `${vars[n]}::BIGINT`, 'e');
        const r = (await c.runAndReadAll(`SELECT (${sql})::HUGEINT AS v`)).getRowsJS()[0]![0];
        assert.equal(BigInt(r as bigint), BigInt(js as bigint), `${e} with x=${x}, y=${y}`);
      }),
      { numRuns: 150 },
    );
  });

  test('periods, intervals and granularities reject bad input naming the field', () => {
    assert.throws(() => parsePeriod('P1X', 'g.period'), /g\.period: expected an ISO-8601 period/);
    assert.throws(() => parseInterval('2020-01-01', 'q.intervals[0]'), /q\.intervals\[0\]/);
    assert.throws(() => parseInterval('2021/2020', 'q.intervals[0]'), /end is not before its start/);
    assert.throws(
      () => parseGranularity({ type: 'period', period: 'PT1H', timeZone: "UTC'; DROP" }, 'g'),
      /g\.timeZone/,
    );
    assert.deepEqual(parseInterval('2015-09-12/P1D', 'i'), {
      start: Date.UTC(2015, 8, 12),
      end: Date.UTC(2015, 8, 13),
    });
    assert.deepEqual(parseInterval('2015-09-12T01:00+02:00/2015-09-13', 'i').start, Date.UTC(2015, 8, 11, 23));
  });
});
