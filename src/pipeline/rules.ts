import type { DuckDBConnection } from '@duckdb/node-api';
import { TributaryError } from '../core/index.ts';
import { type Column, describe, loadRows, q, queryRows, referencedColumns } from './duck.ts';
import type { BatchFunction, Rule } from './spec.ts';

/** Where a column's values come from: fields of source datasets. */
export interface FieldRef {
  dataset: string;
  field: string;
  type: 'DIRECT' | 'INDIRECT';
  subtype: string;
  /** The value is masked (e.g. hashed PII). */
  masking?: boolean;
}
/** Column -> the source fields it derives from. */
export type ColumnLineage = Map<string, FieldRef[]>;

function merge(...lists: (FieldRef[] | undefined)[]): FieldRef[] {
  const seen = new Map<string, FieldRef>();
  for (const l of lists)
    for (const r of l ?? []) {
      const k = `${r.dataset}\u0000${r.field}\u0000${r.type}\u0000${r.subtype}`;
      if (!seen.has(k)) seen.set(k, r);
    }
  return [...seen.values()];
}
function as(list: FieldRef[] | undefined, type: 'DIRECT' | 'INDIRECT', subtype: string): FieldRef[] {
  return (list ?? []).map((r) => ({ ...r, type, subtype }));
}

/** Lineage of columns computed from an expression over input columns. */
function derive(expr: string, inputCols: string[], lin: ColumnLineage, subtype: string): FieldRef[] {
  const refs = referencedColumns(expr, inputCols);
  const identity = refs.length === 1 && expr.trim().replace(/^"|"$/g, '') === refs[0];
  return merge(...refs.map((r) => as(lin.get(r), 'DIRECT', identity ? 'IDENTITY' : subtype)));
}

export interface RuleContext {
  c: DuckDBConnection;
  /** Lineage of every relation produced so far (by stage id). */
  lineageOf: (stage: string) => ColumnLineage;
  functions: Record<string, BatchFunction>;
  /** Scratch table names unique to the stage. */
  scratch: (n: number) => string;
  field: string;
}

export interface Compiled {
  /** A query producing the rule chain's output (may read scratch tables). */
  sql: string;
  columns: Column[];
  lineage: ColumnLineage;
}

function onClause(
  on: string[] | Record<string, string>,
  l: string,
  r: string,
): { sql: string; pairs: [string, string][] } {
  const pairs: [string, string][] = Array.isArray(on) ? on.map((k) => [k, k]) : Object.entries(on);
  return { sql: pairs.map(([a, b]) => `${l}.${q(a)} = ${r}.${q(b)}`).join(' AND '), pairs };
}

/** A join's SQL and lineage: all left columns plus the chosen right columns. */
export async function joinSql(
  ctx: RuleContext,
  cur: string,
  cols: Column[],
  lin: ColumnLineage,
  other: string,
  type: string,
  on: string[] | Record<string, string>,
  columns: string[] | undefined,
  field: string,
): Promise<Compiled> {
  const rightCols = await describe(ctx.c, q(other));
  const { sql: cond, pairs } = onClause(on, 'l', 'r');
  for (const [a, b] of pairs) {
    if (!cols.some((x) => x.name === a))
      throw new TributaryError(
        'INVALID_ARGUMENT',
        `${field}.on: left column "${a}" does not exist (${cols.map((x) => x.name).join(', ')})`,
        { field: `${field}.on` },
      );
    if (!rightCols.some((x) => x.name === b))
      throw new TributaryError(
        'INVALID_ARGUMENT',
        `${field}.on: column "${b}" does not exist in ${other} (${rightCols.map((x) => x.name).join(', ')})`,
        { field: `${field}.on` },
      );
  }
  const leftNames = new Set(cols.map((x) => x.name));
  const rightKeys = new Set(pairs.map(([, b]) => b));
  const take = columns ?? rightCols.map((x) => x.name).filter((n) => !rightKeys.has(n) && !leftNames.has(n));
  for (const n of take)
    if (!rightCols.some((x) => x.name === n))
      throw new TributaryError('INVALID_ARGUMENT', `${field}.columns: column "${n}" does not exist in ${other}`, {
        field: `${field}.columns`,
      });
  const rlin = ctx.lineageOf(other);
  const keyRefs = merge(
    ...pairs.map(([a]) => as(lin.get(a), 'INDIRECT', 'JOIN')),
    ...pairs.map(([, b]) => as(rlin.get(b), 'INDIRECT', 'JOIN')),
  );
  const out: ColumnLineage = new Map();
  for (const c of cols) out.set(c.name, merge(lin.get(c.name), keyRefs));
  for (const n of take) out.set(n, merge(as(rlin.get(n), 'DIRECT', 'IDENTITY'), keyRefs));
  const sel = ['l.*', ...take.map((n) => `r.${q(n)}`)].join(', ');
  const sql = `SELECT ${sel} FROM (${cur}) l ${type.toUpperCase()} JOIN ${q(other)} r ON ${cond}`;
  return { sql, columns: await describe(ctx.c, sql), lineage: out };
}

/** Compiles a chain of rules over `input` into DuckDB SQL; custom functions materialize scratch tables. */
export async function compileRules(
  ctx: RuleContext,
  input: string,
  rules: Rule[],
  inputColumns?: Column[],
): Promise<Compiled> {
  let cur = `SELECT * FROM ${q(input)}`;
  // binding a query costs as much as the chain of views under it: describe only when columns change
  let cols = inputColumns ?? (await describe(ctx.c, cur));
  let lin: ColumnLineage = new Map(ctx.lineageOf(input));
  let scratchN = 0;
  for (let i = 0; i < rules.length; i++) {
    const rule = rules[i]!;
    const field = `${ctx.field}.rules[${i}]`;
    const names = cols.map((c) => c.name);
    const out: ColumnLineage = new Map();
    if ('map' in rule) {
      const parts: string[] = [];
      const mapped = Object.keys(rule.map);
      if (rule.keep) {
        const excl = names.filter((n) => mapped.includes(n));
        parts.push(excl.length ? `* EXCLUDE (${excl.map(q).join(', ')})` : '*');
        for (const n of names) if (!mapped.includes(n)) out.set(n, lin.get(n) ?? []);
      }
      for (const [k, expr] of Object.entries(rule.map)) {
        parts.push(`${expr} AS ${q(k)}`);
        out.set(k, derive(expr, names, lin, 'TRANSFORMATION'));
      }
      cur = `SELECT ${parts.join(', ')} FROM (${cur})`;
    } else if ('filter' in rule) {
      cur = `SELECT * FROM (${cur}) WHERE ${rule.filter}`;
      const refs = referencedColumns(rule.filter, names).flatMap((r) => as(lin.get(r), 'INDIRECT', 'FILTER'));
      for (const n of names) out.set(n, merge(lin.get(n), refs));
    } else if ('aggregate' in rule) {
      const g = rule.aggregate.groupBy;
      for (const k of g)
        if (!names.includes(k))
          throw new TributaryError(
            'INVALID_ARGUMENT',
            `${field}.aggregate.groupBy: column "${k}" does not exist (${names.join(', ')})`,
            {
              field: `${field}.aggregate.groupBy`,
            },
          );
      const gRefs = g.flatMap((k) => as(lin.get(k), 'INDIRECT', 'GROUP_BY'));
      const sel = [...g.map(q), ...Object.entries(rule.aggregate.measures).map(([k, e]) => `${e} AS ${q(k)}`)];
      cur = `SELECT ${sel.join(', ')} FROM (${cur})${g.length ? ` GROUP BY ${g.map(q).join(', ')}` : ''}`;
      for (const k of g) out.set(k, lin.get(k) ?? []);
      for (const [k, e] of Object.entries(rule.aggregate.measures))
        out.set(k, merge(derive(e, names, lin, 'AGGREGATION'), gRefs));
    } else if ('join' in rule) {
      const j = rule.join;
      const r = await joinSql(ctx, cur, cols, lin, j.with, j.type, j.on, j.columns, `${field}.join`);
      cur = r.sql;
      cols = r.columns;
      lin = r.lineage;
      continue;
    } else if ('union' in rule) {
      const parts = [`SELECT * FROM (${cur})`, ...rule.union.map((u) => `SELECT * FROM ${q(u)}`)];
      cur = parts.join(rule.distinct ? ' UNION BY NAME ' : ' UNION ALL BY NAME ');
      const all = await describe(ctx.c, cur);
      for (const c of all)
        out.set(c.name, merge(lin.get(c.name), ...rule.union.map((u) => ctx.lineageOf(u).get(c.name))));
    } else if ('window' in rule) {
      const w = rule.window;
      const over = `OVER (${w.partitionBy.length ? `PARTITION BY ${w.partitionBy.map(q).join(', ')}` : ''}${w.orderBy.length ? ` ORDER BY ${w.orderBy.join(', ')}` : ''})`;
      const added = Object.entries(w.columns);
      cur = `SELECT *, ${added.map(([k, e]) => `${e} ${over} AS ${q(k)}`).join(', ')} FROM (${cur})`;
      for (const n of names) out.set(n, lin.get(n) ?? []);
      const ctxRefs = [...w.partitionBy, ...w.orderBy.map((o) => o.split(/\s+/)[0]!.replace(/^"|"$/g, ''))].flatMap(
        (k) => as(lin.get(k), 'INDIRECT', 'WINDOW'),
      );
      for (const [k, e] of added) out.set(k, merge(derive(e, names, lin, 'AGGREGATION'), ctxRefs));
    } else if ('sql' in rule) {
      cur = rule.sql.replaceAll('{{input}}', `(${cur})`);
      // opaque SQL: a column keeps the lineage of the same-named input column, else derives from all inputs
      const all = await describe(ctx.c, cur).catch((err: Error) => {
        throw new TributaryError('INVALID_ARGUMENT', `${field}.sql: ${err.message.split('\n')[0]}`, {
          field: `${field}.sql`,
          cause: err,
        });
      });
      const everything = merge(...names.map((n) => as(lin.get(n), 'INDIRECT', 'TRANSFORMATION')));
      for (const c of all) out.set(c.name, lin.get(c.name) ?? everything);
    } else {
      const fn = typeof rule.fn === 'function' ? rule.fn : ctx.functions[rule.fn];
      if (!fn)
        throw new TributaryError(
          'INVALID_ARGUMENT',
          `${field}.fn: no function "${String(rule.fn)}" is registered (${Object.keys(ctx.functions).join(', ') || 'none'})`,
          {
            field: `${field}.fn`,
          },
        );
      const rows = await queryRows(ctx.c, cur);
      const result: Record<string, unknown>[] = [];
      for (let off = 0; off < rows.length || off === 0; off += rule.batchSize) {
        const batch = await fn(rows.slice(off, off + rule.batchSize));
        for (const r of batch) result.push(r);
        if (rows.length === 0) break;
      }
      const t = ctx.scratch(scratchN++);
      await loadRows(ctx.c, t, result, cur);
      cur = `SELECT * FROM ${t}`;
      const all = await describe(ctx.c, cur);
      const everything = merge(...names.map((n) => as(lin.get(n), 'INDIRECT', 'TRANSFORMATION')));
      for (const c of all) out.set(c.name, lin.get(c.name) ?? everything);
    }
    if ('filter' in rule) {
      lin = out;
      continue;
    }
    try {
      cols = await describe(ctx.c, cur);
    } catch (err) {
      throw new TributaryError('INVALID_ARGUMENT', `${field}: ${(err as Error).message.split('\n')[0]}`, {
        field,
        cause: err,
      });
    }
    lin = out;
  }
  return { sql: cur, columns: cols, lineage: lin };
}
