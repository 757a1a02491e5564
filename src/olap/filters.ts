import { z } from 'zod';
import { invalidArgument } from '../core/index.ts';
import type { ColumnInfo } from './columns.ts';
import { likeEscape, lit, num } from './sql.ts';
import { parseInterval } from './time.ts';
import { parseWith } from './validate.ts';

export interface FilterColumns {
  /** SQL for a column and its kind; unknown columns give { sql: 'NULL', col: undefined }. */
  column(name: string): { sql: string; col: ColumnInfo | undefined };
  expr(expression: string, field: string): string;
}

const dim = z.string().min(1, 'expected a column name');
const schemas = {
  selector: z.looseObject({ dimension: dim, value: z.unknown().optional() }),
  equals: z.looseObject({ column: dim, matchValueType: z.string().optional(), matchValue: z.unknown() }),
  in: z.looseObject({ dimension: dim, values: z.array(z.unknown()) }),
  bound: z.looseObject({
    dimension: dim,
    lower: z.union([z.string(), z.number()]).nullable().optional(),
    upper: z.union([z.string(), z.number()]).nullable().optional(),
    lowerStrict: z.boolean().default(false),
    upperStrict: z.boolean().default(false),
    ordering: z
      .union([z.string(), z.looseObject({ type: z.string() })])
      .optional()
      .transform((o) => (typeof o === 'object' ? o.type : o) ?? 'lexicographic'),
    alphaNumeric: z.boolean().optional(),
  }),
  range: z.looseObject({
    column: dim,
    matchValueType: z.string().default('STRING'),
    lower: z.unknown().optional(),
    upper: z.unknown().optional(),
    lowerOpen: z.boolean().default(false),
    upperOpen: z.boolean().default(false),
  }),
  like: z.looseObject({ dimension: dim, pattern: z.string(), escape: z.string().max(1).nullable().optional() }),
  regex: z.looseObject({ dimension: dim, pattern: z.string() }),
  search: z.looseObject({
    dimension: dim,
    query: z.looseObject({
      type: z.enum(['contains', 'insensitive_contains', 'fragment']),
      value: z.string().optional(),
      values: z.array(z.string()).optional(),
      caseSensitive: z.boolean().optional(),
    }),
  }),
  interval: z.looseObject({ dimension: dim, intervals: z.array(z.string()) }),
  null: z.looseObject({ column: dim }),
  and: z.looseObject({ fields: z.array(z.unknown()) }),
  or: z.looseObject({ fields: z.array(z.unknown()) }),
  not: z.looseObject({ field: z.unknown() }),
  expression: z.looseObject({ expression: z.string() }),
  columnComparison: z.looseObject({ dimensions: z.array(z.union([dim, z.looseObject({ dimension: dim })])).min(2) }),
};
const typeSchema = z.looseObject({
  type: z.enum([...Object.keys(schemas), 'true', 'false'] as unknown as [string, ...string[]]),
});

function isNumericKind(c: ColumnInfo | undefined): boolean {
  return c?.kind === 'long' || c?.kind === 'double' || c?.kind === 'float' || c?.kind === 'time';
}

/**
 * Applies a per-value predicate to a column, any-match for multi-value columns. `nullOk`: the caller treats
 * NULL as false (a WHERE or FILTER clause), so the predicate goes bare: DuckDB pushes a bare comparison or IN
 * into the table scan, and the coalesce costs time per row.
 */
function onValues(
  c: { sql: string; col: ColumnInfo | undefined },
  pred: (v: string) => string,
  nullOk = false,
): string {
  if (c.col?.kind === 'mv') return `coalesce(len(list_filter(${c.sql}, lambda x: ${pred('x')})) > 0, false)`;
  return nullOk ? `(${pred(c.sql)})` : `coalesce(${pred(c.sql)}, false)`;
}

function asString(c: { sql: string; col: ColumnInfo | undefined }): { sql: string; col: ColumnInfo | undefined } {
  if (c.col?.kind === 'mv' || c.col?.kind === 'string') return c;
  return { sql: `CAST(${c.sql} AS VARCHAR)`, col: c.col };
}

function eqValue(c: { sql: string; col: ColumnInfo | undefined }, value: unknown, nullOk = false): string {
  if (value === null || value === undefined || value === '') {
    // Druid's default-value mode treats '' and null alike for strings.
    if (c.col?.kind === 'mv') return `(${c.sql} IS NULL OR len(${c.sql}) = 0 OR list_contains(${c.sql}, ''))`;
    if (isNumericKind(c.col)) return `(${c.sql} IS NULL)`;
    return `(${c.sql} IS NULL OR CAST(${c.sql} AS VARCHAR) = '')`;
  }
  if (isNumericKind(c.col)) {
    const n = Number(value);
    if (typeof value === 'boolean' || Number.isNaN(n)) return 'FALSE';
    return nullOk ? `(${c.sql} = ${num(n)})` : `coalesce(${c.sql} = ${num(n)}, false)`;
  }
  return onValues(asString(c), (v) => `${v} = ${lit(String(value))}`, nullOk);
}

/**
 * Translates a Druid filter into a SQL predicate (never NULL, unless `nullOk`: for a WHERE or FILTER clause,
 * where NULL excludes the row like false, the top-level predicates skip their coalesce; under NOT they keep it).
 */
export function filterSql(filter: unknown, cols: FilterColumns, field: string, nullOk = false): string {
  if (filter === null || filter === undefined) return 'TRUE';
  const { type } = parseWith(typeSchema, filter, field);
  const extraction = (filter as { extractionFn?: unknown }).extractionFn;
  if (extraction !== undefined && extraction !== null)
    throw invalidArgument(
      `${field}.extractionFn`,
      'no extraction function on a filter (use an expression filter or a virtual column)',
    );
  switch (type) {
    case 'true':
      return 'TRUE';
    case 'false':
      return 'FALSE';
    case 'selector': {
      const s = parseWith(schemas.selector, filter, field);
      return eqValue(cols.column(s.dimension), s.value, nullOk);
    }
    case 'equals': {
      const s = parseWith(schemas.equals, filter, field);
      if (s.matchValue === null || s.matchValue === undefined)
        throw invalidArgument(`${field}.matchValue`, 'a non-null value (use the null filter for nulls)');
      return eqValue(cols.column(s.column), s.matchValue, nullOk);
    }
    case 'in': {
      const s = parseWith(schemas.in, filter, field);
      if (s.values.length === 0) return 'FALSE';
      const c = cols.column(s.dimension);
      const parts: string[] = [];
      const strs = s.values.filter((v) => v !== null && v !== '').map(String);
      if (strs.length < s.values.length) parts.push(eqValue(c, null));
      if (strs.length) {
        if (isNumericKind(c.col)) {
          const nums = strs.map(Number).filter((n) => !Number.isNaN(n));
          const inList = `${c.sql} IN (${nums.map((n) => num(n)).join(', ')})`;
          if (nums.length) parts.push(nullOk ? `(${inList})` : `coalesce(${inList}, false)`);
        } else {
          parts.push(onValues(asString(c), (v) => `${v} IN (${strs.map(lit).join(', ')})`, nullOk));
        }
      }
      return parts.length ? `(${parts.join(' OR ')})` : 'FALSE';
    }
    case 'bound': {
      const s = parseWith(schemas.bound, filter, field);
      const c = cols.column(s.dimension);
      const numeric = s.ordering === 'numeric' || s.ordering === 'alphanumeric' || s.alphaNumeric;
      const strlen = s.ordering === 'strlen';
      const conv = (v: string) => (numeric ? `TRY_CAST(${v} AS DOUBLE)` : strlen ? `length(${v})` : v);
      const bound = (x: string | number) => {
        if (numeric) {
          const n = Number(x);
          if (Number.isNaN(n)) throw invalidArgument(`${field}.lower/upper`, 'a number for numeric ordering', x);
          return num(n);
        }
        return strlen ? num(String(x).length) : lit(String(x));
      };
      return onValues(
        numeric ? c : asString(c),
        (v) => {
          const conds: string[] = [`${v} IS NOT NULL`];
          if (s.lower !== null && s.lower !== undefined)
            conds.push(`${conv(v)} ${s.lowerStrict ? '>' : '>='} ${bound(s.lower)}`);
          if (s.upper !== null && s.upper !== undefined)
            conds.push(`${conv(v)} ${s.upperStrict ? '<' : '<='} ${bound(s.upper)}`);
          return conds.join(' AND ');
        },
        nullOk,
      );
    }
    case 'range': {
      const s = parseWith(schemas.range, filter, field);
      const c = cols.column(s.column);
      const t = s.matchValueType.toUpperCase();
      const numeric = t === 'LONG' || t === 'DOUBLE' || t === 'FLOAT';
      const bound = (x: unknown, name: string) => {
        if (numeric) {
          const n = Number(x);
          if (typeof x === 'boolean' || Number.isNaN(n)) throw invalidArgument(`${field}.${name}`, `a ${t} value`, x);
          return num(n);
        }
        return lit(String(x));
      };
      return onValues(
        numeric ? c : asString(c),
        (v) => {
          const vv = numeric ? `TRY_CAST(${v} AS DOUBLE)` : v;
          const conds: string[] = [`${v} IS NOT NULL`];
          if (s.lower !== null && s.lower !== undefined)
            conds.push(`${vv} ${s.lowerOpen ? '>' : '>='} ${bound(s.lower, 'lower')}`);
          if (s.upper !== null && s.upper !== undefined)
            conds.push(`${vv} ${s.upperOpen ? '<' : '<='} ${bound(s.upper, 'upper')}`);
          return conds.join(' AND ');
        },
        nullOk,
      );
    }
    case 'like': {
      const s = parseWith(schemas.like, filter, field);
      const esc = s.escape ? ` ESCAPE ${lit(s.escape)}` : '';
      return onValues(asString(cols.column(s.dimension)), (v) => `${v} LIKE ${lit(s.pattern)}${esc}`, nullOk);
    }
    case 'regex': {
      const s = parseWith(schemas.regex, filter, field);
      return onValues(asString(cols.column(s.dimension)), (v) => `regexp_matches(${v}, ${lit(s.pattern)})`, nullOk);
    }
    case 'search': {
      const s = parseWith(schemas.search, filter, field);
      const q = s.query;
      const c = asString(cols.column(s.dimension));
      if (q.type === 'fragment') {
        const vals = q.values ?? [];
        return onValues(c, (v) =>
          vals.length
            ? vals
                .map((x) =>
                  q.caseSensitive ? `contains(${v}, ${lit(x)})` : `contains(lower(${v}), ${lit(x.toLowerCase())})`,
                )
                .join(' AND ')
            : 'TRUE',
        );
      }
      const value = q.value ?? '';
      const sensitive = q.type === 'contains' && q.caseSensitive !== false;
      return onValues(c, (v) =>
        sensitive
          ? `${v} LIKE ${lit(`%${likeEscape(value)}%`)} ESCAPE '\\'`
          : `${v} ILIKE ${lit(`%${likeEscape(value)}%`)} ESCAPE '\\'`,
      );
    }
    case 'interval': {
      const s = parseWith(schemas.interval, filter, field);
      const c = cols.column(s.dimension);
      const ms = c.col?.kind === 'time' ? c.sql : `TRY_CAST(${c.sql} AS BIGINT)`;
      const parts = s.intervals.map((t, i) => {
        const iv = parseInterval(t, `${field}.intervals[${i}]`);
        return `(${ms} >= ${num(iv.start)} AND ${ms} < ${num(iv.end)})`;
      });
      return parts.length ? `coalesce(${parts.join(' OR ')}, false)` : 'FALSE';
    }
    case 'null': {
      const s = parseWith(schemas.null, filter, field);
      const c = cols.column(s.column);
      return c.col?.kind === 'mv' ? `(${c.sql} IS NULL OR len(${c.sql}) = 0)` : `(${c.sql} IS NULL)`;
    }
    case 'and':
    case 'or': {
      const fields = parseWith(schemas[type], filter, field).fields;
      if (fields.length === 0) return type === 'and' ? 'TRUE' : 'FALSE';
      // NULL OR x and NULL AND x exclude a row exactly when false would: nullOk passes down (not under NOT).
      return `(${fields.map((x, i) => filterSql(x, cols, `${field}.fields[${i}]`, nullOk)).join(type === 'and' ? ' AND ' : ' OR ')})`;
    }
    case 'not': {
      const s = parseWith(schemas.not, filter, field);
      return `(NOT ${filterSql(s.field, cols, `${field}.field`)})`;
    }
    case 'expression': {
      const s = parseWith(schemas.expression, filter, field);
      const e = cols.expr(s.expression, `${field}.expression`);
      return `coalesce(TRY_CAST(${e} AS DOUBLE) <> 0, lower(TRY_CAST(${e} AS VARCHAR)) = 'true', false)`;
    }
    case 'columnComparison': {
      const s = parseWith(schemas.columnComparison, filter, field);
      const names = s.dimensions.map((d) => (typeof d === 'string' ? d : d.dimension));
      const sqls = names.map((n) => asString(cols.column(n)).sql);
      return `coalesce(${sqls
        .slice(1)
        .map((x) => `${sqls[0]} = ${x}`)
        .join(' AND ')}, false)`;
    }
  }
  throw invalidArgument(`${field}.type`, 'a supported filter type', type);
}
