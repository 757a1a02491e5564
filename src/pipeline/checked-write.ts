import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { TributaryError } from '../core/index.ts';
import type { CommitResult, Table, WriteBatch, WriteValidator, WriteViolation } from '../lake/index.ts';
import { lit, loadRows, q, scalar } from './duck.ts';
import { type CheckResult, type QualityReport, runChecks } from './quality.ts';
import { type Check, type CheckInput, checkSchema } from './spec.ts';

function parseChecks(checks: CheckInput[]): Check[] {
  return checks.map((c, i) => {
    const r = checkSchema.safeParse(c);
    if (!r.success) {
      const issue = r.error.issues[0]!;
      const field = `checks[${i}]${issue.path.map((p) => `.${String(p)}`).join('')}`;
      throw new TributaryError('INVALID_ARGUMENT', `${field}: ${issue.message}`, { field });
    }
    return r.data;
  });
}

/** A lake WriteValidator that also exposes the quality report of the last write it checked. */
export interface QualityWriteValidator extends WriteValidator {
  lastReport: QualityReport | undefined;
}

/**
 * The pipeline's quality checks as a lake write validator: `table.append(rows, { validators: [v] })`
 * (or `table.writeValidators.push(v)`) runs them inside the lake's write validation, on the rows
 * typed as the table's schema. Failed error checks reject the write naming rows and fields; failed
 * warn checks are cleaned by the write's `onWarning` policy (their failing rows are identified).
 */
export function qualityValidator(checks: CheckInput[], opts: { sampleSize?: number } = {}): QualityWriteValidator {
  const parsed = parseChecks(checks);
  const v: QualityWriteValidator = {
    name: 'quality',
    lastReport: undefined,
    async validate(b: WriteBatch): Promise<WriteViolation[]> {
      const report = await runChecks(b.connection, b.relation, `iceberg:${b.table}`, parsed, {
        ...(opts.sampleSize !== undefined ? { sampleSize: opts.sampleSize } : {}),
      });
      v.lastReport = report;
      return report.results.filter((r) => !r.success).map((r) => violationOf(r, b.numbered));
    },
  };
  return v;
}

function violationOf(r: CheckResult, numbered: string): WriteViolation {
  const out: WriteViolation = {
    severity: r.severity,
    check: r.name,
    message: `${r.unexpectedCount} unexpected (${r.unexpectedPercent.toFixed(1)}%), observed ${JSON.stringify(r.observedValue)}, expected ${r.expected}`,
    fields: r.column ? [r.column] : [],
    detail: r,
  };
  // window predicates (unique) need QUALIFY; the numbered relation has the same rows plus __row
  if (r.predicate)
    out.rowsSql =
      r.type === 'unique'
        ? `SELECT __row FROM ${q(numbered)} QUALIFY NOT coalesce((${r.predicate}), false)`
        : `SELECT __row FROM ${q(numbered)} WHERE NOT coalesce((${r.predicate}), false)`;
  return out;
}

export interface CheckedWriteOptions {
  mode?: 'append' | 'overwrite' | 'merge';
  /** Key columns for merge. */
  key?: string[];
  /** Overwrite only rows matching this filter. */
  filter?: string;
  /** Rows failing error row checks go to this table and the rest is written; without it the write is rejected. */
  quarantine?: Table;
}

export interface CheckedWriteResult {
  report: QualityReport;
  written: number;
  quarantined: number;
  commit: CommitResult | undefined;
}

/**
 * Writes to an Iceberg table only what passes the pipeline's quality checks: the same checks, metrics
 * and results as a validate stage, applied to one write. Failed error checks reject the write (nothing
 * is committed) unless a quarantine table takes the failing rows.
 */
export async function checkedWrite(
  table: Table,
  input: Record<string, unknown>[] | { file: string; format?: 'csv' | 'ndjson' | 'parquet' } | { sql: string },
  checks: CheckInput[],
  opts: CheckedWriteOptions = {},
): Promise<CheckedWriteResult> {
  const parsed = parseChecks(checks);
  const inst = await DuckDBInstance.create(':memory:');
  const c = await inst.connect();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-checked-'));
  try {
    const rel = q('input');
    if (Array.isArray(input)) await loadRows(c, rel, input);
    else if ('sql' in input) await c.run(`CREATE TABLE ${rel} AS ${input.sql}`);
    else {
      const fmt =
        input.format ?? (input.file.endsWith('.csv') ? 'csv' : input.file.endsWith('.parquet') ? 'parquet' : 'ndjson');
      const reader =
        fmt === 'csv'
          ? `read_csv_auto(${lit(input.file)})`
          : fmt === 'parquet'
            ? `read_parquet(${lit(input.file)})`
            : `read_json_auto(${lit(input.file)}, format = 'newline_delimited')`;
      await c.run(`CREATE TABLE ${rel} AS SELECT * FROM ${reader}`);
    }
    const report = await runChecks(c, 'input', `iceberg:${table.name}`, parsed);
    const failed = report.results.filter((r) => r.severity === 'error' && !r.success);
    const rowLevel = failed.filter((r) => r.predicate);
    const blocking = opts.quarantine ? failed.filter((r) => !r.predicate) : failed;
    if (blocking.length)
      throw Object.assign(
        new TributaryError(
          'INVALID_ARGUMENT',
          `write to ${table.name} rejected: ${blocking.map((r) => `${r.name} (${r.unexpectedCount} unexpected, observed ${JSON.stringify(r.observedValue)})`).join('; ')}`,
          { retriable: false },
        ),
        { report },
      );
    let source = `SELECT * FROM ${rel}`;
    let quarantined = 0;
    if (opts.quarantine && rowLevel.length) {
      const pass = rowLevel.map((r) => `coalesce((${r.predicate}), false)`).join(' AND ');
      const clause = rowLevel.some((r) => r.type === 'unique') ? 'QUALIFY' : 'WHERE';
      const qfile = path.join(dir, 'quarantine.parquet');
      quarantined = Number(
        await scalar(c, `COPY (SELECT * FROM ${rel} ${clause} NOT (${pass})) TO ${lit(qfile)} (FORMAT parquet)`),
      );
      if (quarantined) await opts.quarantine.append({ file: qfile, format: 'parquet' });
      source = `SELECT * FROM ${rel} ${clause} ${pass}`;
    }
    const file = path.join(dir, 'rows.parquet');
    const written = Number(await scalar(c, `COPY (${source}) TO ${lit(file)} (FORMAT parquet)`));
    const w = { file, format: 'parquet' as const };
    let commit: CommitResult | undefined;
    const mode = opts.mode ?? 'append';
    if (mode === 'append') commit = await table.append(w);
    else if (mode === 'overwrite') commit = await table.overwrite(w, opts.filter ? { filter: opts.filter } : {});
    else {
      if (!opts.key?.length)
        throw new TributaryError('INVALID_ARGUMENT', 'key: merge needs key columns', { field: 'key' });
      commit = await table.upsert(w, { key: opts.key });
    }
    return { report, written, quarantined, commit };
  } finally {
    c.closeSync();
    inst.closeSync();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
