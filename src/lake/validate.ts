import { randomUUID } from 'node:crypto';
import type { DuckDBConnection } from '@duckdb/node-api';
import { invalidArgument, TributaryError } from '../core/index.ts';
import { quoteIdent, type Schema } from './types.ts';

/** The rows of one write, typed as the table's schema, as DuckDB relations on the write's connection. */
export interface WriteBatch {
  connection: DuckDBConnection;
  /** A view of the incoming rows with exactly the schema's columns. */
  relation: string;
  /** The same rows plus `__row`, the 0-based index of the row in the write's input. */
  numbered: string;
  schema: Schema;
  /** Table name (`ns.table`) and the operation (`append to ns.table`), for messages. */
  table: string;
  operation: string;
  rowCount: number;
}

export interface WriteViolation {
  /** `error` rejects the write; `warn` is cleaned by the write's `onWarning` policy. */
  severity: 'error' | 'warn';
  /** Which check (e.g. `not_null(email)`). */
  check: string;
  message: string;
  fields: string[];
  /** The failing rows: `__row` values, or a query over `numbered` returning them. Absent for dataset-level checks. */
  rows?: number[];
  rowsSql?: string;
  /** The validator's own result object (e.g. the pipeline's CheckResult), passed through untouched. */
  detail?: unknown;
}

/**
 * A check run inside every write before any file is written (the pipeline's quality checks implement
 * it). The lake only knows this interface, so checks live with whoever defines them.
 */
export interface WriteValidator {
  name?: string;
  validate(batch: WriteBatch): Promise<WriteViolation[]>;
}

/** What to do with rows failing warn-severity checks. */
export type WarningPolicy = 'keep' | 'drop-rows' | 'null-fields' | 'quarantine';

export interface ValidationOutcome {
  /** SELECT of the rows to write (the schema's columns). */
  sql: string;
  violations: WriteViolation[];
  droppedRows: number;
  /** SELECT of rows failing warnings, when the policy is quarantine. */
  quarantineSql?: string;
  quarantinedRows: number;
  cleanup(): Promise<void>;
}

function failingRows(v: WriteViolation): string | undefined {
  if (v.rowsSql) return v.rowsSql;
  if (v.rows)
    return v.rows.length
      ? `SELECT unnest([${v.rows.map((r) => Math.trunc(r)).join(', ')}]::BIGINT[])`
      : 'SELECT NULL::BIGINT WHERE FALSE';
  return undefined;
}

/**
 * Runs validators over a prepared source. Errors reject the write naming rows and fields; warnings
 * are kept, or their rows dropped, their fields nulled, or their rows set aside for a quarantine.
 */
export async function runWriteValidators(
  c: DuckDBConnection,
  sourceSql: string,
  schema: Schema,
  validators: WriteValidator[],
  opts: { table: string; operation: string; onWarning?: WarningPolicy },
): Promise<ValidationOutcome> {
  const id = randomUUID().replaceAll('-', '');
  const numbered = `__tributary_write_${id}`;
  const relation = `__tributary_write_${id}_v`;
  const cols = schema.fields.map((f) => quoteIdent(f.name));
  // a temp table: validators may query it many times, and row numbers must be stable across queries
  await c.run(`CREATE TEMP TABLE ${numbered} AS SELECT row_number() OVER () - 1 AS __row, * FROM (${sourceSql})`);
  await c.run(`CREATE TEMP VIEW ${relation} AS SELECT ${cols.join(', ')} FROM ${numbered}`);
  const failing = `__tributary_write_${id}_bad`;
  const cleanup = async () => {
    await c.run(`DROP VIEW IF EXISTS ${relation}`);
    await c.run(`DROP TABLE IF EXISTS ${numbered}`);
    await c.run(`DROP TABLE IF EXISTS ${failing}`);
  };
  try {
    const cnt = await c.runAndReadAll(`SELECT count(*) FROM ${numbered}`);
    const rowCount = Number(cnt.getRows()[0]?.[0] ?? 0);
    const batch: WriteBatch = {
      connection: c,
      relation,
      numbered,
      schema,
      table: opts.table,
      operation: opts.operation,
      rowCount,
    };
    const violations: WriteViolation[] = [];
    for (const v of validators) violations.push(...(await v.validate(batch)));
    const what = opts.operation;
    const errors = violations.filter((v) => v.severity === 'error');
    if (errors.length) {
      const parts: string[] = [];
      for (const e of errors) {
        const q = failingRows(e);
        let rows = '';
        if (q) {
          const r = await c.runAndReadAll(`SELECT DISTINCT * FROM (${q}) ORDER BY 1 LIMIT 11`);
          const list = r.getRows().map((x) => Number(x[0]));
          rows = ` rows ${list.slice(0, 10).join(', ')}${list.length > 10 ? ', ...' : ''}`;
        }
        parts.push(
          `${e.check} failed on${rows}${e.fields.length ? ` field(s) ${e.fields.join(', ')}` : ''}: ${e.message}`,
        );
      }
      throw new TributaryError('INVALID_ARGUMENT', `${what} rejected by write validation: ${parts.join('; ')}`, {
        field: errors[0]?.fields[0],
        retriable: false,
      });
    }
    const policy = opts.onWarning ?? 'keep';
    const warnings = violations.filter((v) => v.severity === 'warn');
    const base = `SELECT ${cols.join(', ')} FROM ${numbered}`;
    if (policy === 'keep' || warnings.length === 0)
      return { sql: base, violations, droppedRows: 0, quarantinedRows: 0, cleanup };
    const rowQueries: { v: WriteViolation; q: string }[] = [];
    for (const w of warnings) {
      const q = failingRows(w);
      if (q) rowQueries.push({ v: w, q });
    }
    if (!rowQueries.length) return { sql: base, violations, droppedRows: 0, quarantinedRows: 0, cleanup };
    if (policy === 'null-fields') {
      // each field nulled only in the rows failing a check that names it
      const byField = new Map<string, string[]>();
      for (const { v, q } of rowQueries) for (const f of v.fields) byField.set(f, [...(byField.get(f) ?? []), q]);
      for (const f of byField.keys()) {
        const field = schema.fields.find((x) => x.name === f);
        if (!field) throw invalidArgument('onWarning', `checks naming columns of the table to null`, f);
        if (field.required)
          throw invalidArgument(
            'onWarning',
            `'null-fields' only for optional fields (${f} is required)`,
            'null-fields',
          );
      }
      const sel = schema.fields.map((f) => {
        const qs = byField.get(f.name);
        const col = quoteIdent(f.name);
        return qs ? `CASE WHEN __row IN (${qs.join(' UNION ')}) THEN NULL ELSE ${col} END AS ${col}` : col;
      });
      return {
        sql: `SELECT ${sel.join(', ')} FROM ${numbered}`,
        violations,
        droppedRows: 0,
        quarantinedRows: 0,
        cleanup,
      };
    }
    // nulls would turn NOT IN into "no rows at all": keep only real row numbers
    await c.run(
      `CREATE TEMP TABLE ${failing} AS ${rowQueries.map((x) => `SELECT r FROM (${x.q}) AS t(r) WHERE r IS NOT NULL`).join(' UNION ')}`,
    );
    const badCount = await c.runAndReadAll(
      `SELECT count(*) FROM ${numbered} WHERE __row IN (SELECT * FROM ${failing})`,
    );
    const bad = Number(badCount.getRows()[0]?.[0] ?? 0);
    const sql = `${base} WHERE __row NOT IN (SELECT * FROM ${failing})`;
    if (policy === 'drop-rows') return { sql, violations, droppedRows: bad, quarantinedRows: 0, cleanup };
    if (policy === 'quarantine')
      return {
        sql,
        violations,
        droppedRows: 0,
        quarantineSql: `${base} WHERE __row IN (SELECT * FROM ${failing})`,
        quarantinedRows: bad,
        cleanup,
      };
    throw invalidArgument('onWarning', "'keep', 'drop-rows', 'null-fields' or 'quarantine'", policy);
  } catch (err) {
    await cleanup();
    throw err;
  }
}
