import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';

export function q(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
export function lit(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}
export function sqlValue(v: string | number | boolean | null): string {
  if (v === null) return 'NULL';
  if (typeof v === 'string') return lit(v);
  return String(v);
}

export interface Column {
  name: string;
  type: string;
}

/** The columns a query or relation yields (binds it without running it). */
export async function describe(c: DuckDBConnection, relationOrSql: string): Promise<Column[]> {
  const sql = /^\s*(select|with|from|\()/i.test(relationOrSql) ? relationOrSql : `SELECT * FROM ${relationOrSql}`;
  const r = await c.runAndReadAll(`DESCRIBE ${sql}`);
  return r.getRowObjectsJS().map((row) => ({ name: String(row.column_name), type: String(row.column_type) }));
}

export async function queryRows(c: DuckDBConnection, sql: string): Promise<Record<string, unknown>[]> {
  const r = await c.runAndReadAll(sql);
  return r.getRowObjectsJS() as Record<string, unknown>[];
}

export async function scalar(c: DuckDBConnection, sql: string): Promise<unknown> {
  const r = await c.runAndReadAll(sql);
  return r.getRowsJS()[0]?.[0];
}

/** JSON-safe values: bigints become numbers when exact (strings otherwise), dates ISO strings. */
export function jsonSafe(v: unknown): unknown {
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  if (v instanceof Date) return v.toISOString();
  if (v instanceof Uint8Array) return Buffer.from(v).toString('base64');
  if (Array.isArray(v)) return v.map(jsonSafe);
  if (v && typeof v === 'object') {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) o[k] = jsonSafe(x);
    return o;
  }
  return v;
}

export function toJsonLine(row: Record<string, unknown>): string {
  return JSON.stringify(row, (_k, v) => jsonSafe(v));
}

/**
 * Loads JS rows into a table through a temporary NDJSON file (DuckDB infers the types). With no rows,
 * the table takes the columns of `emptyLike` (a relation or query) or a single null column.
 */
export async function loadRows(
  c: DuckDBConnection,
  table: string,
  rows: Record<string, unknown>[],
  emptyLike?: string,
): Promise<void> {
  if (rows.length === 0) {
    const src = emptyLike ? `SELECT * FROM (${emptyLike}) LIMIT 0` : 'SELECT NULL AS "empty" LIMIT 0';
    await c.run(`CREATE OR REPLACE TABLE ${table} AS ${src}`);
    return;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-pipeline-'));
  const file = path.join(dir, 'rows.ndjson');
  try {
    fs.writeFileSync(file, `${rows.map(toJsonLine).join('\n')}\n`);
    await c.run(
      `CREATE OR REPLACE TABLE ${table} AS SELECT * FROM read_json_auto(${lit(file)}, format = 'newline_delimited', sample_size = -1)`,
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Column names referenced by an SQL expression (identifiers that are columns of the input). */
export function referencedColumns(expr: string, columns: readonly string[]): string[] {
  const known = new Set(columns);
  const found = new Set<string>();
  const text = expr.replace(/'(?:[^']|'')*'/g, ' ');
  for (const m of text.matchAll(/"((?:[^"]|"")+)"|\b([A-Za-z_][A-Za-z0-9_]*)\b/g)) {
    const id = m[1] !== undefined ? m[1].replaceAll('""', '"') : m[2]!;
    if (known.has(id)) found.add(id);
  }
  return [...found];
}
