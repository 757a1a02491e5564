import * as fs from 'node:fs';
import type { DuckDBConnection } from '@duckdb/node-api';
import { invalidArgument, TributaryError } from '../core/index.ts';
import { type ArrowTable, arrowColumnTypes, arrowToRows, isArrowTable, toArrowTable } from './arrow.ts';
import { ndjsonSourceSql, rowsToTempNdjson } from './duck.ts';
import { duckType, type IcebergType, type NestedField, quoteIdent, quoteLiteral, type Schema } from './types.ts';
import { type Row, toInternal } from './values.ts';

/** What can be written: JS rows, an Arrow table or IPC bytes, a file (NDJSON, CSV or Parquet) or a DuckDB query. */
export type WriteInput =
  | Row[]
  | { rows: Row[] }
  | ArrowTable
  | { arrow: ArrowTable | Uint8Array }
  | { file: string; format?: 'ndjson' | 'csv' | 'parquet' }
  | { sql: string };

export interface ValidationPolicy {
  /** Rows with type errors or nulls in required fields: reject the write (default) or drop those rows. */
  onInvalid?: 'reject' | 'drop';
  /** Columns the table does not have: ignore them (default), reject, or add them (unionByName). */
  onUnknownColumns?: 'ignore' | 'reject' | 'add';
}

export interface Problem {
  row: number;
  field: string;
  reason: string;
}

export interface PreparedSource {
  sql: string;
  /** The schema after unionByName additions (same object when unchanged). */
  schema: Schema;
  addedFields: NestedField[];
  droppedRows: number;
  /** Required columns checked after writing (from the files' null counts) instead of by an extra pass. */
  deferredRequired: NestedField[];
  /** Builds the precise error for nulls found in deferred required columns. */
  explainNulls(): Promise<TributaryError>;
  cleanup(): void;
}

function inferJsType(v: unknown): IcebergType | undefined {
  if (typeof v === 'boolean') return 'boolean';
  if (typeof v === 'bigint') return 'long';
  if (typeof v === 'number') return Number.isInteger(v) ? 'long' : 'double';
  if (typeof v === 'string') return 'string';
  if (v instanceof Date) return 'timestamptz';
  if (v instanceof Uint8Array) return 'binary';
  return undefined;
}

export function icebergTypeFromDuck(t: string): IcebergType {
  const u = t.toUpperCase();
  const dec = /^DECIMAL\((\d+),\s*(\d+)\)$/.exec(u);
  if (dec) return `decimal(${dec[1]}, ${dec[2]})`;
  const map: Record<string, IcebergType> = {
    BOOLEAN: 'boolean',
    TINYINT: 'int',
    SMALLINT: 'int',
    INTEGER: 'int',
    BIGINT: 'long',
    UTINYINT: 'int',
    USMALLINT: 'int',
    UINTEGER: 'long',
    FLOAT: 'float',
    DOUBLE: 'double',
    DATE: 'date',
    TIME: 'time',
    TIMESTAMP: 'timestamp',
    'TIMESTAMP WITH TIME ZONE': 'timestamptz',
    TIMESTAMP_NS: 'timestamp_ns',
    VARCHAR: 'string',
    UUID: 'uuid',
    BLOB: 'binary',
  };
  return map[u] ?? 'string';
}

const ALIASES: Record<string, string> = {
  'TIMESTAMP WITH TIME ZONE': 'TIMESTAMPTZ',
  TIMESTAMP_US: 'TIMESTAMP',
  INT: 'INTEGER',
  INT4: 'INTEGER',
  INT8: 'BIGINT',
  BOOL: 'BOOLEAN',
  REAL: 'FLOAT',
  FLOAT4: 'FLOAT',
  FLOAT8: 'DOUBLE',
  TEXT: 'VARCHAR',
  STRING: 'VARCHAR',
  BYTEA: 'BLOB',
};
/** DuckDB spells some types two ways (DESCRIBE says TIMESTAMP WITH TIME ZONE for TIMESTAMPTZ). */
export function sameDuckType(a: string, b: string): boolean {
  const norm = (t: string) => {
    const u = t
      .toUpperCase()
      .replace(/\s*([(),])\s*/g, '$1')
      .trim();
    return ALIASES[u] ?? u;
  };
  return norm(a) === norm(b);
}

const INTS = ['TINYINT', 'SMALLINT', 'INTEGER', 'BIGINT', 'UTINYINT', 'USMALLINT', 'UINTEGER'];
/** Integer types each target holds every value of. */
const WIDER: Record<string, string[]> = {
  SMALLINT: ['TINYINT', 'UTINYINT'],
  INTEGER: ['TINYINT', 'SMALLINT', 'UTINYINT', 'USMALLINT'],
  BIGINT: ['TINYINT', 'SMALLINT', 'INTEGER', 'UTINYINT', 'USMALLINT', 'UINTEGER'],
};

/**
 * Casts that succeed for every value (widening, numeric to floating point, anything primitive to
 * text): these need no checking pass over the input, which would read it all a second time.
 */
export function castCannotFail(from: string, to: string): boolean {
  const f = from.toUpperCase();
  const t = to.toUpperCase();
  if (WIDER[t]?.includes(f)) return true;
  if (
    (t === 'DOUBLE' || t === 'FLOAT') &&
    (INTS.includes(f) || f === 'FLOAT' || f === 'HUGEINT' || f.startsWith('DECIMAL'))
  )
    return true;
  if (t === 'VARCHAR' && !/[[\](]|STRUCT|MAP|UNION/.test(f)) return true;
  if (t === 'TIMESTAMP' && f === 'DATE') return true;
  return false;
}

function tooMany(problems: Problem[], total: number, what: string): TributaryError {
  const shown = problems
    .slice(0, 10)
    .map((p) => `row ${p.row} field "${p.field}": ${p.reason}`)
    .join('; ');
  return new TributaryError(
    'INVALID_ARGUMENT',
    `${what}: ${total} invalid row(s) rejected: ${shown}${total > 10 ? '; ...' : ''}`,
    {
      field: problems[0]?.field,
    },
  );
}

function withNewFields(
  schema: Schema,
  lastColumnId: number,
  added: { name: string; type: IcebergType }[],
): { schema: Schema; fields: NestedField[] } {
  let next = Math.max(lastColumnId, ...schema.fields.map((f) => f.id));
  const fields = added.map((a) => ({ id: ++next, name: a.name, required: false, type: a.type }));
  return { schema: { ...schema, fields: [...schema.fields, ...fields] }, fields };
}

/** Turns any write input into a DuckDB SELECT of the schema's columns, validated against the schema. */
export async function prepareSource(
  c: DuckDBConnection,
  input: WriteInput,
  schema: Schema,
  lastColumnId: number,
  policy: ValidationPolicy = {},
  what = 'write',
): Promise<PreparedSource> {
  const onInvalid = policy.onInvalid ?? 'reject';
  const onUnknown = policy.onUnknownColumns ?? 'ignore';
  let rows = Array.isArray(input) ? input : 'rows' in input ? input.rows : undefined;
  // Arrow: converted to public row values (exact for int64, timestamps, decimals), then validated as JS rows
  let arrowTypes: Map<string, IcebergType | undefined> | undefined;
  if (!rows && (isArrowTable(input) || 'arrow' in input)) {
    const t = isArrowTable(input) ? input : toArrowTable((input as { arrow: ArrowTable | Uint8Array }).arrow, what);
    arrowTypes = arrowColumnTypes(t);
    rows = arrowToRows(t);
  }
  if (rows) {
    // JS rows: validate in JS (exact), then hand DuckDB an NDJSON file of typed values
    let target = schema;
    let addedFields: NestedField[] = [];
    const known = new Set(schema.fields.map((f) => f.name));
    const unknown = new Map<string, IcebergType | undefined>();
    rows.forEach((r, i) => {
      if (r === null || typeof r !== 'object') throw invalidArgument(`rows[${i}]`, 'an object', r);
      for (const [k, v] of Object.entries(r)) {
        if (!known.has(k) && (!unknown.has(k) || unknown.get(k) === undefined))
          unknown.set(k, arrowTypes?.get(k) ?? (v === null || v === undefined ? undefined : inferJsType(v)));
      }
    });
    if (unknown.size > 0) {
      if (onUnknown === 'reject')
        throw invalidArgument(
          what,
          `only the table's columns (${[...known].join(', ')})`,
          `unknown column(s) ${[...unknown.keys()].join(', ')}`,
        );
      if (onUnknown === 'add') {
        const add = [...unknown.entries()].map(([name, t]) => {
          if (t === undefined)
            throw invalidArgument(
              `column ${name}`,
              'a value whose type can be inferred (all values were null or objects)',
            );
          return { name, type: t };
        });
        const r = withNewFields(schema, lastColumnId, add);
        target = r.schema;
        addedFields = r.fields;
      }
    }
    const problems: Problem[] = [];
    const good: Row[] = [];
    let bad = 0;
    rows.forEach((r, i) => {
      const out: Row = {};
      let ok = true;
      for (const f of target.fields) {
        const conv = toInternal(f.type, r[f.name] === undefined ? f['write-default'] : r[f.name]);
        if (!conv.ok) {
          problems.push({ row: i, field: f.name, reason: conv.reason });
          ok = false;
        } else if (conv.value === null && f.required) {
          problems.push({ row: i, field: f.name, reason: 'required field is null or missing' });
          ok = false;
        } else out[f.name] = conv.value;
      }
      if (ok) good.push(out);
      else bad++;
    });
    if (bad > 0 && onInvalid === 'reject') throw tooMany(problems, bad, what);
    const file = rowsToTempNdjson(good, target.fields);
    return {
      sql: ndjsonSourceSql(file, target.fields),
      schema: target,
      addedFields,
      droppedRows: bad,
      deferredRequired: [],
      explainNulls: async () => new TributaryError('INTERNAL', 'no deferred checks for JS rows'),
      cleanup: () => fs.rmSync(file, { force: true }),
    };
  }
  let relation: string;
  if (isArrowTable(input) || 'arrow' in input) throw new TributaryError('INTERNAL', 'arrow input not converted');
  if ('sql' in input) relation = `(${input.sql})`;
  else {
    const { file, format } = input as { file: string; format?: 'ndjson' | 'csv' | 'parquet' };
    if (!fs.existsSync(file)) throw new TributaryError('NOT_FOUND', `${what}: input file ${file} does not exist`);
    const fmt = format ?? (/\.parquet$/i.test(file) ? 'parquet' : /\.csv$/i.test(file) ? 'csv' : 'ndjson');
    relation =
      fmt === 'parquet'
        ? `read_parquet(${quoteLiteral(file)})`
        : fmt === 'csv'
          ? `read_csv(${quoteLiteral(file)}, header = true, auto_detect = true)`
          : `read_json(${quoteLiteral(file)}, format = 'newline_delimited', auto_detect = true)`;
  }
  const desc = await c.runAndReadAll(`DESCRIBE SELECT * FROM ${relation}`);
  const srcCols = new Map<string, string>();
  for (const r of desc.getRowObjectsJS() as { column_name: string; column_type: string }[])
    srcCols.set(r.column_name, r.column_type);
  let target = schema;
  let addedFields: NestedField[] = [];
  const unknown = [...srcCols.keys()].filter((k) => !schema.fields.some((f) => f.name === k));
  if (unknown.length) {
    if (onUnknown === 'reject')
      throw invalidArgument(
        what,
        `only the table's columns (${schema.fields.map((f) => f.name).join(', ')})`,
        `unknown column(s) ${unknown.join(', ')}`,
      );
    if (onUnknown === 'add') {
      const r = withNewFields(
        schema,
        lastColumnId,
        unknown.map((name) => ({ name, type: icebergTypeFromDuck(srcCols.get(name) as string) })),
      );
      target = r.schema;
      addedFields = r.fields;
    }
  }
  // per-column: how to cast, and what makes a row invalid
  const sel: string[] = [];
  const checks: { field: NestedField; cond: string; reason: string }[] = [];
  const deferred: NestedField[] = [];
  for (const f of target.fields) {
    const col = quoteIdent(f.name);
    const dt = duckType(f.type);
    const st = srcCols.get(f.name);
    if (st === undefined) {
      const wd = f['write-default'];
      const lit = wd === undefined || wd === null ? 'NULL' : typeof wd === 'string' ? quoteLiteral(wd) : String(wd);
      sel.push(`CAST(${lit} AS ${dt}) AS ${col}`);
      if (f.required && lit === 'NULL')
        checks.push({ field: f, cond: 'TRUE', reason: 'required column is missing from the input' });
      continue;
    }
    if (sameDuckType(st, dt)) sel.push(col);
    else if (castCannotFail(st, dt)) sel.push(`CAST(${col} AS ${dt}) AS ${col}`);
    else {
      sel.push(`TRY_CAST(${col} AS ${dt}) AS ${col}`);
      checks.push({
        field: f,
        cond: `${col} IS NOT NULL AND TRY_CAST(${col} AS ${dt}) IS NULL`,
        reason: `expected ${typeof f.type === 'string' ? f.type : f.type.type}, got a value that does not convert`,
      });
    }
    if (f.required) {
      // with the reject policy a required column costs no extra pass: the written files' null counts tell
      if (onInvalid === 'reject') deferred.push(f);
      else checks.push({ field: f, cond: `${col} IS NULL`, reason: 'required field is null' });
    }
  }
  const numbered = `(SELECT *, row_number() OVER () - 1 AS __row FROM ${relation})`;
  const explain = async (
    list: { field: NestedField; cond: string; reason: string }[],
    bad: number,
  ): Promise<TributaryError> => {
    const problems: Problem[] = [];
    for (const ch of list) {
      const r = await c
        .runAndReadAll(
          `SELECT __row, CAST(${quoteIdent(ch.field.name)} AS VARCHAR) FROM ${numbered} WHERE ${ch.cond} LIMIT 5`,
        )
        .catch(async () => c.runAndReadAll(`SELECT __row, NULL FROM ${numbered} WHERE ${ch.cond} LIMIT 5`));
      for (const [row, v] of r.getRows())
        problems.push({
          row: Number(row),
          field: ch.field.name,
          reason: v === null ? ch.reason : `${ch.reason} (${JSON.stringify(v)})`,
        });
    }
    problems.sort((a, b) => a.row - b.row);
    return tooMany(problems, bad, what);
  };
  let where = '';
  let dropped = 0;
  if (checks.length) {
    const anyBad = checks.map((ch) => `(${ch.cond})`).join(' OR ');
    const cnt = await c.runAndReadAll(`SELECT count(*) FROM ${relation} WHERE ${anyBad}`);
    const bad = Number(cnt.getRows()[0]?.[0] ?? 0);
    if (bad > 0) {
      if (onInvalid === 'reject') throw await explain(checks, bad);
      where = ` WHERE NOT (${anyBad})`;
      dropped = bad;
    }
  }
  const nullChecks = deferred.map((f) => ({
    field: f,
    cond: `${quoteIdent(f.name)} IS NULL`,
    reason: 'required field is null',
  }));
  return {
    sql: `SELECT ${sel.join(', ')} FROM ${relation}${where}`,
    schema: target,
    addedFields,
    droppedRows: dropped,
    deferredRequired: deferred,
    explainNulls: async () => {
      const cnt = await c.runAndReadAll(
        `SELECT count(*) FROM ${relation} WHERE ${nullChecks.map((x) => x.cond).join(' OR ') || 'FALSE'}`,
      );
      return explain(nullChecks, Number(cnt.getRows()[0]?.[0] ?? 0));
    },
    cleanup: () => {},
  };
}
