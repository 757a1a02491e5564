import { invalidArgument } from '../core/index.ts';
import { type ColumnInfo, THETA_DEFAULT_K } from './columns.ts';
import type { AggregatorSpec } from './spec.ts';
import { lit, num } from './sql.ts';

/** What the SQL for an aggregator yields, and so how to convert and finalize it. */
export type OutKind =
  | { kind: 'long' | 'double' | 'float' | 'string' }
  | { kind: 'theta'; k: number }
  | { kind: 'hll'; flavor: 'sketch' | 'hyperUnique' | 'cardinality'; round: boolean }
  | { kind: 'quantiles'; k: number };

export interface AggInput {
  sql: string;
  /** The column's kind; undefined for an expression or a raw input column of unknown kind. */
  col: ColumnInfo | undefined;
}

export interface AggContext {
  /** A column by name (missing columns resolve to NULL). */
  input(name: string): AggInput;
  /** A Druid expression as SQL. */
  expr(expression: string, field: string): string;
  /** A Druid filter as a SQL predicate. */
  filter(filter: unknown, field: string): string;
  /** The row time as epoch ms. */
  timeMs: string;
}

export type AggMode = 'query' | 'ingest';

/** SQL for one aggregator over a GROUP BY. */
export function aggregateSql(
  a: AggregatorSpec,
  ctx: AggContext,
  mode: AggMode,
  field: string,
  where?: string,
): { sql: string; out: OutKind } {
  if (a.type === 'filtered') {
    const w = ctx.filter(a.filter, `${field}.filter`);
    return aggregateSql(
      { ...a.aggregator!, name: a.name },
      ctx,
      mode,
      `${field}.aggregator`,
      where ? `(${where}) AND (${w})` : w,
    );
  }
  const F = (extra?: string) => {
    const conds = [where, extra].filter(Boolean);
    return conds.length ? ` FILTER (WHERE ${conds.map((c) => `(${c})`).join(' AND ')})` : '';
  };
  const input = (): AggInput => {
    if (a.expression !== undefined) return { sql: ctx.expr(a.expression, `${field}.expression`), col: undefined };
    if (a.fieldName === undefined) throw invalidArgument(`${field}.fieldName`, 'a column name');
    return ctx.input(a.fieldName);
  };
  const isMv = (i: AggInput) => i.col?.kind === 'mv';
  const numeric = (i: AggInput, to: 'BIGINT' | 'DOUBLE' | 'FLOAT') => {
    const k = i.col?.kind;
    if (to === 'BIGINT' && (k === 'double' || k === 'float')) return `TRY_CAST(trunc(${i.sql}) AS BIGINT)`;
    if (to === 'BIGINT' && k === 'long') return i.sql;
    if (to === 'DOUBLE' && k === 'double') return i.sql;
    if (isMv(i)) return `TRY_CAST(${i.sql}[1] AS ${to})`;
    return `TRY_CAST(${i.sql} AS ${to})`;
  };
  switch (a.type) {
    case 'count':
      return { sql: `count(*)${F()}::BIGINT`, out: { kind: 'long' } };
    case 'longSum':
      return { sql: `coalesce(sum(${numeric(input(), 'BIGINT')})${F()}, 0)::BIGINT`, out: { kind: 'long' } };
    case 'doubleSum':
      return { sql: `coalesce(sum(${numeric(input(), 'DOUBLE')})${F()}, 0)::DOUBLE`, out: { kind: 'double' } };
    case 'floatSum':
      return { sql: `coalesce(sum(${numeric(input(), 'FLOAT')})${F()}, 0)::FLOAT`, out: { kind: 'float' } };
    case 'longMin':
    case 'longMax':
      return { sql: `${a.type.slice(4).toLowerCase()}(${numeric(input(), 'BIGINT')})${F()}`, out: { kind: 'long' } };
    case 'doubleMin':
    case 'doubleMax':
      return {
        sql: `${a.type.slice(6).toLowerCase()}(${numeric(input(), 'DOUBLE')})${F()}::DOUBLE`,
        out: { kind: 'double' },
      };
    case 'floatMin':
    case 'floatMax':
      return { sql: `${a.type.slice(5).toLowerCase()}(${numeric(input(), 'FLOAT')})${F()}`, out: { kind: 'float' } };
    case 'longFirst':
    case 'longLast':
    case 'doubleFirst':
    case 'doubleLast':
    case 'floatFirst':
    case 'floatLast':
    case 'stringFirst':
    case 'stringLast': {
      const first = a.type.endsWith('First');
      const vt = a.type.replace(/First|Last/, '') as 'long' | 'double' | 'float' | 'string';
      const cast = { long: 'BIGINT', double: 'DOUBLE', float: 'FLOAT', string: 'VARCHAR' }[vt];
      const i = input();
      const pick = first ? 'arg_min' : 'arg_max';
      const ext = first ? 'min' : 'max';
      let v: string;
      let t: string;
      let filt: string | undefined;
      if (i.col?.kind === 'first') {
        v = `${pick}(${i.sql}.v, ${i.sql}.t)`;
        t = `${ext}(${i.sql}.t)`;
        filt = `${i.sql} IS NOT NULL`;
      } else {
        const val =
          vt === 'string'
            ? isMv(i)
              ? `array_to_string(${i.sql}, ',')`
              : `CAST(${i.sql} AS VARCHAR)`
            : numeric(i, cast as 'BIGINT');
        v = `${pick}(${val}, ${ctx.timeMs})`;
        t = `${ext}(${ctx.timeMs})`;
        filt = `${i.sql} IS NOT NULL`;
      }
      const vSql = `${v}${F(filt)}::${cast}`;
      if (mode === 'ingest') return { sql: `{'t': ${t}${F(filt)}, 'v': ${vSql}}`, out: { kind: vt } };
      return { sql: vSql, out: { kind: vt } };
    }
    case 'thetaSketch': {
      const k = a.size ?? THETA_DEFAULT_K;
      const i = input();
      let set: string;
      if (i.col?.kind === 'theta' || a.isInputThetaSketch) set = `list_distinct(flatten(list(${i.sql})${F()}))`;
      else if (isMv(i)) set = `list_distinct(flatten(list(list_transform(${i.sql}, lambda x: hash(x)))${F()}))`;
      // The k smallest distinct hashes, ascending, straight from DuckDB's top-n aggregate. A string column
      // may be dictionary-encoded (ENUM): its values, not its codes, are hashed.
      else
        return {
          sql: `coalesce(min(DISTINCT hash(${i.col?.kind === 'string' ? `CAST(${i.sql} AS VARCHAR)` : i.sql}), ${k})${F(`${i.sql} IS NOT NULL`)}, []::UBIGINT[])`,
          out: { kind: 'theta', k },
        };
      return { sql: `list_sort(${set})[1:${k}]`, out: { kind: 'theta', k } };
    }
    case 'hyperUnique':
    case 'HLLSketchBuild':
    case 'HLLSketchMerge': {
      const i = input();
      const flavor = a.type === 'hyperUnique' ? 'hyperUnique' : 'sketch';
      return { sql: hllSet(i), out: { kind: 'hll', flavor, round: a.round ?? false } };
      function hllSet(i: AggInput): string {
        if (i.col?.kind === 'hll') return `list_distinct(flatten(list(${i.sql})${F()}))`;
        if (isMv(i))
          return `list_distinct(flatten(list(list_transform(${i.sql}, lambda x: druid_hll(hash(x))))${F()}))`;
        return `list(DISTINCT druid_hll(hash(CAST(${i.sql} AS VARCHAR))))${F(`${i.sql} IS NOT NULL`)}`;
      }
    }
    case 'cardinality': {
      const cols = (a.fieldNames ?? []).map((f) => ctx.input(f));
      let sql: string;
      if (a.byRow) {
        const key = `concat_ws(${lit('\u0001')}, ${cols.map((c) => (isMv(c) ? `array_to_string(${c.sql}, ',')` : `CAST(${c.sql} AS VARCHAR)`)).join(', ')})`;
        sql = `list(DISTINCT druid_hll(hash(${key})))${F()}`;
      } else {
        const parts = cols.map((c) =>
          isMv(c)
            ? `list_distinct(flatten(list(list_transform(${c.sql}, lambda x: druid_hll(hash(x))))${F()}))`
            : `list(DISTINCT druid_hll(hash(CAST(${c.sql} AS VARCHAR))))${F(`${c.sql} IS NOT NULL`)}`,
        );
        sql = `list_distinct(flatten([${parts.join(', ')}]))`;
      }
      return { sql, out: { kind: 'hll', flavor: 'cardinality', round: a.round ?? false } };
    }
    case 'quantilesDoublesSketch': {
      const k = a.k ?? 128;
      const i = input();
      if (i.col?.kind === 'quantiles')
        return { sql: `druid_qs_merge(flatten(list(${i.sql})${F()}), ${num(k)})`, out: { kind: 'quantiles', k } };
      const v = numeric(i, 'DOUBLE');
      // Compacted to at most 2k weighted items (see sketches.ts for the rank error bound).
      return {
        sql: `druid_qs_build(coalesce(list(${v})${F(`${v} IS NOT NULL`)}, []::DOUBLE[]), ${num(k)})`,
        out: { kind: 'quantiles', k },
      };
    }
  }
  throw invalidArgument(`${field}.type`, 'a supported aggregator type', a.type);
}

/** SQL for one metric computed from a single input row (ingestion without rollup). */
export function rowMetricSql(a: AggregatorSpec, ctx: AggContext, field: string): string {
  if (a.type === 'filtered') {
    const w = ctx.filter(a.filter, `${field}.filter`);
    const inner = rowMetricSql({ ...a.aggregator!, name: a.name }, ctx, `${field}.aggregator`);
    return `CASE WHEN ${w} THEN ${inner} ELSE ${emptyRowMetric(a.aggregator!)} END`;
  }
  const i = (): AggInput =>
    a.expression !== undefined
      ? { sql: ctx.expr(a.expression, `${field}.expression`), col: undefined }
      : ctx.input(a.fieldName!);
  const mv = (x: AggInput) => x.col?.kind === 'mv';
  switch (a.type) {
    case 'count':
      return '1::BIGINT';
    case 'longSum':
    case 'longMin':
    case 'longMax':
      return `TRY_CAST(${i().sql} AS BIGINT)`;
    case 'doubleSum':
    case 'doubleMin':
    case 'doubleMax':
      return `TRY_CAST(${i().sql} AS DOUBLE)`;
    case 'floatSum':
    case 'floatMin':
    case 'floatMax':
      return `TRY_CAST(${i().sql} AS FLOAT)`;
    case 'thetaSketch': {
      const x = i();
      return mv(x)
        ? `list_sort(list_distinct(list_transform(${x.sql}, lambda v: hash(v))))`
        : `CASE WHEN ${x.sql} IS NULL THEN []::UBIGINT[] ELSE [hash(${x.sql})] END`;
    }
    case 'hyperUnique':
    case 'HLLSketchBuild': {
      const x = i();
      return mv(x)
        ? `list_distinct(list_transform(${x.sql}, lambda v: druid_hll(hash(v))))`
        : `CASE WHEN ${x.sql} IS NULL THEN []::UINTEGER[] ELSE [druid_hll(hash(CAST(${x.sql} AS VARCHAR)))] END`;
    }
    case 'quantilesDoublesSketch': {
      const v = `TRY_CAST(${i().sql} AS DOUBLE)`;
      return `CASE WHEN ${v} IS NULL THEN []::STRUCT(v DOUBLE, w BIGINT)[] ELSE [{'v': ${v}, 'w': 1::BIGINT}] END`;
    }
    default: {
      if (a.type.endsWith('First') || a.type.endsWith('Last')) {
        const vt = a.type.replace(/First|Last/, '');
        const cast = { long: 'BIGINT', double: 'DOUBLE', float: 'FLOAT', string: 'VARCHAR' }[vt] ?? 'VARCHAR';
        return `{'t': ${ctx.timeMs}, 'v': TRY_CAST(${i().sql} AS ${cast})}`;
      }
      throw invalidArgument(`${field}.type`, 'an ingestion aggregator', a.type);
    }
  }
}

function emptyRowMetric(a: AggregatorSpec): string {
  switch (a.type) {
    case 'count':
    case 'longSum':
      return '0::BIGINT';
    case 'doubleSum':
      return '0::DOUBLE';
    case 'floatSum':
      return '0::FLOAT';
    case 'thetaSketch':
      return '[]::UBIGINT[]';
    case 'hyperUnique':
    case 'HLLSketchBuild':
      return '[]::UINTEGER[]';
    case 'quantilesDoublesSketch':
      return '[]::STRUCT(v DOUBLE, w BIGINT)[]';
    default:
      return 'NULL';
  }
}
