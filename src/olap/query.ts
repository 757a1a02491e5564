import { randomUUID } from 'node:crypto';
import { type DuckDBConnection, LIST, VARCHAR } from '@duckdb/node-api';
import { z } from 'zod';
import { invalidArgument, TributaryError } from '../core/index.ts';
import { type AggContext, aggregateSql, type OutKind } from './aggregators.ts';
import type { ColumnInfo, ColumnKind } from './columns.ts';
import { druidType } from './columns.ts';
import { exprToSql, jodaToStrftime } from './expr.ts';
import { type FilterColumns, filterSql } from './filters.ts';
import { evalHaving, evalPostAgg, finalizeValue, postAggName, type Row } from './postaggs.ts';
import { isSketch, quantilesState, type SketchState, sketchBase64 } from './sketches.ts';
import { type AggregatorSpec, parseAggregator } from './spec.ts';
import { ident, lit, num } from './sql.ts';
import type { Dictionary, SegmentInfo, SegmentStore } from './store.ts';
import { tableSql } from './store.ts';
import {
  bucketIndexSql,
  bucketSql,
  bucketStart,
  ETERNITY,
  formatInterval,
  type Granularity,
  type Interval,
  isoMillis,
  nextBucket,
  parseGranularity,
  parseInterval,
} from './time.ts';
import { parseWith } from './validate.ts';

export interface QueryRuntime {
  store: SegmentStore;
  conn: DuckDBConnection;
  /** SQL to run when the query ends (dropping scratch tables). */
  cleanup: string[];
}

interface Source {
  /** A SQL relation (table or subquery) with a `__time` TIMESTAMP column. */
  from: string;
  columns: Map<string, ColumnInfo>;
  segments: SegmentInfo[];
  dataSource: string;
}

const QUERY_TYPES = [
  'timeseries',
  'topN',
  'groupBy',
  'scan',
  'search',
  'timeBoundary',
  'segmentMetadata',
  'dataSourceMetadata',
] as const;

const baseQuery = z.looseObject({
  queryType: z.enum(QUERY_TYPES),
  dataSource: z.union([z.string().min(1), z.looseObject({ type: z.string() })]),
  intervals: z
    .union([z.array(z.string()), z.string(), z.looseObject({ type: z.string(), intervals: z.array(z.string()) })])
    .optional(),
  filter: z.unknown().optional(),
  granularity: z.unknown().optional(),
  aggregations: z.array(z.unknown()).default([]),
  postAggregations: z.array(z.unknown()).default([]),
  virtualColumns: z
    .array(
      z.looseObject({
        type: z.literal('expression'),
        name: z.string().min(1),
        expression: z.string(),
        outputType: z.string().optional(),
      }),
    )
    .default([]),
  context: z.record(z.string(), z.unknown()).default({}),
  descending: z.boolean().default(false),
});

type BaseQuery = z.output<typeof baseQuery>;

function intervalsOf(q: BaseQuery): Interval[] {
  const iv = q.intervals;
  if (iv === undefined) return [ETERNITY];
  const list = typeof iv === 'string' ? [iv] : Array.isArray(iv) ? iv : iv.intervals;
  return list.map((s, i) => parseInterval(s, `query.intervals[${i}]`));
}

function kindOfType(t: string | undefined): ColumnKind {
  switch ((t ?? '').toUpperCase()) {
    case 'LONG':
      return 'long';
    case 'DOUBLE':
      return 'double';
    case 'FLOAT':
      return 'float';
    default:
      return 'string';
  }
}

/** Converts a value from DuckDB to the engine's representation for an aggregator output. */
function convertAgg(v: unknown, out: OutKind): unknown {
  switch (out.kind) {
    case 'long':
      return v === null || v === undefined ? null : typeof v === 'bigint' ? v : BigInt(Math.trunc(Number(v)));
    case 'double':
    case 'float':
      return v === null || v === undefined ? null : Number(v);
    case 'string':
      return v ?? null;
    case 'theta':
      return { kind: 'theta', hashes: (v as bigint[] | null) ?? [], k: out.k } satisfies SketchState;
    case 'hll':
      return {
        kind: 'hll',
        entries: (v as number[] | null) ?? [],
        flavor: out.flavor,
        round: out.round,
      } satisfies SketchState;
    case 'quantiles':
      return quantilesState((v as { v: number; w: bigint }[] | null) ?? [], out.k);
  }
}

function emptyAgg(out: OutKind): unknown {
  switch (out.kind) {
    case 'long':
      return 0n;
    case 'double':
    case 'float':
      return 0;
    case 'string':
      return null;
    default:
      return convertAgg(null, out);
  }
}

function isPlainNumeric(out: OutKind): boolean {
  return out.kind === 'long' || out.kind === 'double' || out.kind === 'float';
}

/** Runs SQL and returns plain JS rows. */
async function rows(rt: QueryRuntime, sql: string): Promise<Record<string, unknown>[]> {
  try {
    const r = await rt.conn.runAndReadAll(sql);
    return r.getRowObjectsJS() as Record<string, unknown>[];
  } catch (err) {
    const msg = (err as Error).message;
    if (/interrupt/i.test(msg)) throw new TributaryError('TIMEOUT', 'Query interrupted', { cause: err });
    throw new TributaryError('INVALID_ARGUMENT', `query failed: ${msg}`, { cause: err });
  }
}

async function resolveSource(rt: QueryRuntime, ds: unknown, field: string): Promise<Source | undefined> {
  if (typeof ds === 'string' || (ds && typeof ds === 'object' && (ds as { type?: unknown }).type === 'table')) {
    const name = typeof ds === 'string' ? ds : String((ds as { name?: unknown }).name ?? '');
    const meta = rt.store.datasources.get(name);
    if (!meta) return undefined;
    return {
      from: tableSql(name),
      columns: new Map(meta.columns.map((c) => [c.name, c])),
      segments: meta.segments,
      dataSource: name,
    };
  }
  const o = ds as Record<string, unknown>;
  if (o.type === 'query') {
    const inner = await runNative(rt, o.query, `${field}.query`);
    return materialize(rt, flattenResults(o.query as Record<string, unknown>, inner), `${field}.query`);
  }
  if (o.type === 'inline') {
    const names = parseWith(z.array(z.string().min(1)), o.columnNames, `${field}.columnNames`);
    const data = parseWith(z.array(z.array(z.unknown())), o.rows, `${field}.rows`);
    const recs = data.map((r) => Object.fromEntries(names.map((n, i) => [n, r[i] ?? null])));
    return materialize(rt, recs, field);
  }
  if (o.type === 'union') {
    const parts = parseWith(z.array(z.unknown()).min(1), o.dataSources, `${field}.dataSources`);
    const srcs = (await Promise.all(parts.map((p, i) => resolveSource(rt, p, `${field}.dataSources[${i}]`)))).filter(
      (s): s is Source => s !== undefined,
    );
    if (srcs.length === 0) return undefined;
    const columns = new Map<string, ColumnInfo>();
    for (const s of srcs) for (const [k, v] of s.columns) if (!columns.has(k)) columns.set(k, v);
    return {
      from: `(${srcs.map((s) => `SELECT * FROM ${s.from}`).join(' UNION ALL BY NAME ')})`,
      columns,
      segments: srcs.flatMap((s) => s.segments),
      dataSource: srcs.map((s) => s.dataSource).join(','),
    };
  }
  throw invalidArgument(`${field}.type`, 'a dataSource of type table, query, inline or union', o.type);
}

/** Turns a query's results into flat records with `__time` (for query data sources). */
function flattenResults(q: Record<string, unknown>, results: unknown[]): Row[] {
  const out: Row[] = [];
  for (const r of results as Record<string, unknown>[]) {
    const t = r.timestamp === undefined ? undefined : Date.parse(String(r.timestamp));
    if (r.event) out.push({ __time: t, ...(r.event as Row) });
    else if (Array.isArray(r.result)) for (const x of r.result as Row[]) out.push({ __time: t, ...x });
    else if (r.result && typeof r.result === 'object') out.push({ __time: t, ...(r.result as Row) });
    else if (Array.isArray(r.events))
      for (const e of r.events as Row[]) out.push({ ...e, __time: e.__time === undefined ? 0 : Number(e.__time) });
  }
  void q;
  return out;
}

async function materialize(rt: QueryRuntime, recs: Row[], field: string): Promise<Source> {
  const name = `q_${randomUUID().replaceAll('-', '')}`;
  const columns = new Map<string, ColumnInfo>();
  for (const r of recs)
    for (const [k, v] of Object.entries(r)) {
      if (k === '__time') continue;
      const final = finalizeValue(v);
      const kind: ColumnKind =
        typeof final === 'bigint'
          ? 'long'
          : typeof final === 'number'
            ? 'double'
            : Array.isArray(final)
              ? 'mv'
              : 'string';
      const prev = columns.get(k);
      if (!prev || (prev.kind === 'long' && kind === 'double') || final === null) {
        if (!prev || final !== null) columns.set(k, { name: k, kind: final === null && prev ? prev.kind : kind });
      }
    }
  const cols = [...columns.values()];
  const typeOf = (c: ColumnInfo) =>
    c.kind === 'long' ? 'BIGINT' : c.kind === 'double' ? 'DOUBLE' : c.kind === 'mv' ? 'VARCHAR[]' : 'VARCHAR';
  // A scratch table filled through DuckDB's appender (dropped when the query ends).
  await rt.conn.run('CREATE SCHEMA IF NOT EXISTS olap_tmp');
  await rt.conn.run(
    `CREATE TABLE olap_tmp.${ident(name)} ("__t" BIGINT${cols.map((c) => `, ${ident(c.name)} ${typeOf(c)}`).join('')})`,
  );
  rt.cleanup.push(`DROP TABLE IF EXISTS olap_tmp.${ident(name)}`);
  const app = await rt.conn.createAppender(name, 'olap_tmp');
  for (const r of recs) {
    app.appendBigInt(BigInt(Math.trunc(r.__time === undefined || r.__time === null ? 0 : Number(r.__time))));
    for (const c of cols) {
      const v = finalizeValue(r[c.name]);
      if (v === null || v === undefined) app.appendNull();
      else if (c.kind === 'mv')
        app.appendList(
          (Array.isArray(v) ? v : [v]).map((x) => String(x)),
          LIST(VARCHAR),
        );
      else if (c.kind === 'string') app.appendVarchar(String(v));
      else if (c.kind === 'long') app.appendBigInt(typeof v === 'bigint' ? v : BigInt(Math.trunc(Number(v))));
      else app.appendDouble(Number(v));
    }
    app.endRow();
  }
  app.flushSync();
  app.closeSync();
  const from = `(SELECT make_timestamp("__t" * 1000) AS "__time", * EXCLUDE ("__t") FROM olap_tmp.${ident(name)})`;
  void field;
  return { from, columns, segments: [], dataSource: name };
}

/**
 * A column as an expression operand: a multi-value column's first value; a string column as VARCHAR (a
 * dictionary-encoded column is an ENUM, which hash() and a few functions would otherwise see as its code).
 */
function resolveExprColumn(c: { sql: string; col: ColumnInfo | undefined }): string {
  if (c.col?.kind === 'mv') return `${c.sql}[1]`;
  if (c.col?.kind === 'string') return `CAST(${c.sql} AS VARCHAR)`;
  return c.sql;
}

/** Column access for a query over a source with virtual columns. */
function columnsFor(src: Source, vcs: BaseQuery['virtualColumns']): FilterColumns & AggContext {
  const vcMap = new Map(vcs.map((v) => [v.name, v]));
  const column = (name: string): { sql: string; col: ColumnInfo | undefined } => {
    if (name === '__time') return { sql: 'epoch_ms("__time")', col: { name, kind: 'time' } };
    const vc = vcMap.get(name);
    if (vc) return { sql: ident(name), col: { name, kind: kindOfType(vc.outputType) } };
    const c = src.columns.get(name);
    if (c) return { sql: ident(name), col: c };
    return { sql: 'NULL', col: undefined };
  };
  const resolve = (name: string) => resolveExprColumn(column(name));
  const self: FilterColumns & AggContext = {
    column,
    input: column,
    expr: (e, f) => exprToSql(e, resolve, f),
    filter: (flt, f) => filterSql(flt, self, f, true),
    timeMs: 'epoch_ms("__time")',
  };
  return self;
}

/** `SELECT *, virtual columns FROM source WHERE intervals` */
function baseRelation(src: Source, q: BaseQuery, intervals: Interval[]): string {
  const cols = columnsFor(src, []);
  const vcs = q.virtualColumns.map(
    (v, i) =>
      `${exprToSql(v.expression, (n) => resolveExprColumn(cols.column(n)), `query.virtualColumns[${i}].expression`)} AS ${ident(v.name)}`,
  );
  const ivs = intervals
    .filter((iv) => !(iv.start <= ETERNITY.start && iv.end >= ETERNITY.end))
    .map(
      (iv) =>
        `("__time" >= make_timestamp(${num(iv.start)} * 1000) AND "__time" < make_timestamp(${num(Math.min(iv.end, 8.64e15))} * 1000))`,
    );
  const where = ivs.length === intervals.length && ivs.length ? ` WHERE ${ivs.join(' OR ')}` : '';
  return `(SELECT *${vcs.map((v) => `, ${v}`).join('')} FROM ${src.from}${where})`;
}

function lookupNames(rt: QueryRuntime): ReadonlySet<string> {
  return new Set(rt.store.lookups.keys());
}

interface DimOut {
  name: string;
  sql: string;
  mv: boolean;
  kind: 'string' | 'long' | 'double';
  /** The kind of value `sql` yields: the column's, or string after an extraction function. */
  source: ColumnInfo | undefined;
}

function parseDimension(
  d: unknown,
  cols: FilterColumns,
  field: string,
  lookups: ReadonlySet<string> = new Set(),
): DimOut {
  const spec =
    typeof d === 'string'
      ? { type: 'default', dimension: d, outputName: d }
      : parseWith(
          z.looseObject({
            type: z.enum(['default', 'extraction']).default('default'),
            dimension: z.string().min(1),
            outputName: z.string().min(1).optional(),
            outputType: z.string().optional(),
            extractionFn: z.looseObject({ type: z.string() }).optional(),
          }),
          d,
          field,
        );
  const c = cols.column(spec.dimension);
  const outputName = ('outputName' in spec && spec.outputName) || spec.dimension;
  const outputType = 'outputType' in spec ? spec.outputType : undefined;
  const mv = c.col?.kind === 'mv';
  let sql = c.sql;
  const kind = kindOfType(outputType) as DimOut['kind'];
  if ('extractionFn' in spec && spec.extractionFn) {
    const fn = spec.extractionFn as Record<string, unknown>;
    const x = mv ? 'x' : sql;
    let e: string;
    switch (fn.type) {
      case 'timeFormat': {
        const ms = c.col?.kind === 'time' ? x : `TRY_CAST(${x} AS BIGINT)`;
        let t = ms;
        if (fn.granularity !== undefined)
          t = bucketSql(
            parseGranularity(fn.granularity, `${field}.extractionFn.granularity`),
            `make_timestamp((${ms}) * 1000)`,
          );
        const fmt = typeof fn.format === 'string' ? jodaToStrftime(fn.format) : '%Y-%m-%dT%H:%M:%S.%gZ';
        e = `strftime(make_timestamp((${t}) * 1000), ${lit(fmt)})`;
        break;
      }
      case 'substring':
        e = `substring(CAST(${x} AS VARCHAR), ${num(Number(fn.index ?? 0) + 1)}${fn.length !== undefined && fn.length !== null ? `, ${num(Number(fn.length))}` : ''})`;
        break;
      case 'upper':
      case 'lower':
        e = `${fn.type}(CAST(${x} AS VARCHAR))`;
        break;
      case 'strlen':
        e = `length(CAST(${x} AS VARCHAR))`;
        break;
      case 'regex':
        e = `nullif(regexp_extract(CAST(${x} AS VARCHAR), ${lit(String(fn.expr ?? ''))}, ${num(Number(fn.index ?? 1))}), '')`;
        break;
      case 'registeredLookup':
      case 'lookup': {
        const key = `CAST(${x} AS VARCHAR)`;
        let found: string;
        if (fn.type === 'registeredLookup') {
          if (typeof fn.lookup !== 'string' || !lookups.has(fn.lookup))
            throw invalidArgument(`${field}.extractionFn.lookup`, 'the name of a registered lookup', fn.lookup);
          found = `(SELECT l.v FROM lookup.${ident(fn.lookup)} l WHERE l.k = ${key})`;
        } else {
          const map = (fn.lookup as { map?: unknown } | undefined)?.map;
          if (!map || typeof map !== 'object')
            throw invalidArgument(`${field}.extractionFn.lookup.map`, 'an object of key -> value');
          const pairs = Object.entries(map as Record<string, unknown>);
          found = pairs.length
            ? `CASE ${key} ${pairs.map(([k, v]) => `WHEN ${lit(k)} THEN ${lit(String(v))}`).join(' ')} END`
            : 'NULL::VARCHAR';
        }
        const missing =
          fn.retainMissingValue === true
            ? key
            : typeof fn.replaceMissingValueWith === 'string'
              ? lit(fn.replaceMissingValueWith)
              : 'NULL::VARCHAR';
        e = `coalesce(${found}, ${missing})`;
        break;
      }
      default:
        throw invalidArgument(
          `${field}.extractionFn.type`,
          'timeFormat, substring, upper, lower, strlen or regex',
          fn.type,
        );
    }
    if (mv) sql = `list_transform(${sql}, lambda x: ${e})`;
    else sql = e;
  }
  const source: ColumnInfo | undefined =
    'extractionFn' in spec && spec.extractionFn ? { name: outputName, kind: 'string' } : c.col;
  return { name: outputName, sql, mv, kind, source };
}

function dimValueSql(d: DimOut, expr: string, col: ColumnInfo | undefined): string {
  if (d.kind === 'long') return `TRY_CAST(${expr} AS BIGINT)`;
  if (d.kind === 'double') return `TRY_CAST(${expr} AS DOUBLE)`;
  if (col?.kind === 'string' || col === undefined) return expr;
  return `CAST(${expr} AS VARCHAR)`;
}

function convertDim(v: unknown, d: DimOut): unknown {
  if (v === null || v === undefined) return null;
  if (d.kind === 'long') return typeof v === 'bigint' ? v : BigInt(Number(v));
  if (d.kind === 'double') return Number(v);
  return String(v);
}

interface AggPlan {
  specs: AggregatorSpec[];
  sqls: string[];
  outs: OutKind[];
}

function planAggs(q: BaseQuery, ctx: AggContext): AggPlan {
  const specs = q.aggregations.map((a, i) => parseAggregator(a, `query.aggregations[${i}]`));
  const names = new Set<string>();
  specs.forEach((s, i) => {
    if (names.has(s.name)) throw invalidArgument(`query.aggregations[${i}].name`, 'a unique output name', s.name);
    names.add(s.name);
  });
  const built = specs.map((s, i) => aggregateSql(s, ctx, 'query', `query.aggregations[${i}]`));
  // Sketches no post-aggregator reads are finalized inside DuckDB, so only a number leaves the engine.
  const referenced = new Set<string>();
  collectFieldNames(q.postAggregations, referenced);
  if (q.context.finalize !== false)
    built.forEach((b, i) => {
      if (referenced.has(specs[i]!.name)) return;
      if (b.out.kind === 'theta')
        built[i] = { sql: `druid_theta_est(${b.sql}, ${num(b.out.k)})`, out: { kind: 'double' } };
      else if (b.out.kind === 'quantiles')
        built[i] = {
          sql: `coalesce(list_sum(list_transform(${b.sql}, lambda x: x.w)), 0)::BIGINT`,
          out: { kind: 'long' },
        };
    });
  return { specs, sqls: built.map((b) => b.sql), outs: built.map((b) => b.out) };
}

function collectFieldNames(v: unknown, out: Set<string>): void {
  if (Array.isArray(v)) for (const x of v) collectFieldNames(x, out);
  else if (v && typeof v === 'object')
    for (const [k, x] of Object.entries(v)) {
      if ((k === 'fieldName' || k === 'expression') && typeof x === 'string') {
        out.add(x);
        for (const w of x.match(/[A-Za-z_$][A-Za-z0-9_$.]*/g) ?? []) out.add(w);
      } else collectFieldNames(x, out);
    }
}

function applyPostAggs(row: Row, q: BaseQuery): void {
  q.postAggregations.forEach((pa, i) => {
    const field = `query.postAggregations[${i}]`;
    row[postAggName(pa, field)] = evalPostAgg(pa, row, field);
  });
}

function finalizeRow(row: Row, finalize: boolean): Row {
  const out: Row = {};
  for (const [k, v] of Object.entries(row)) {
    if (isSketch(v)) out[k] = finalize ? finalizeValue(v) : sketchBase64(v as SketchState);
    else if (v && typeof v === 'object' && 'theta' in (v as object)) out[k] = finalizeValue(v);
    else out[k] = v;
  }
  return out;
}

/** Timestamp Druid reports for granularity `all`: the first interval's start, clipped to the data. */
function allTimestamp(src: Source, intervals: Interval[]): number {
  const start = Math.min(...intervals.map((i) => i.start));
  const segs = src.segments.filter((s) => intervals.some((i) => s.interval.start < i.end && i.start < s.interval.end));
  const segStart = segs.length ? Math.min(...segs.map((s) => s.interval.start)) : start;
  return Math.max(start, segStart);
}

interface Grouped {
  buckets: (number | null)[];
  rows: Row[];
}

/** Above this many dictionary value combinations a filter on group keys runs before aggregating. */
const POST_FILTER_MAX_GROUPS = 10_000;

/**
 * A filter that reads only plain grouping dimensions holds for all rows of a group or for none, so it can be
 * applied to the groups after aggregating instead of to every row: when those dimensions are dictionary-encoded
 * with few value combinations, aggregating every row on the codes costs less than comparing every row's string
 * (Druid evaluates such filters on the dictionary, not per row). Returns the predicate over the group columns
 * (d0, d1...), or undefined when the filter must run per row.
 */
function groupKeyFilter(rt: QueryRuntime, src: Source, q: BaseQuery, dims: DimOut[]): string | undefined {
  if (q.filter === undefined || q.filter === null || dims.length === 0) return undefined;
  const vcs = new Set(q.virtualColumns.map((v) => v.name));
  let groups = 1;
  const plain = new Map<string, number>();
  for (const [i, d] of dims.entries()) {
    const col = [...src.columns.values()].find((c) => ident(c.name) === d.sql);
    const dict = col && !vcs.has(col.name) ? rt.store.dictionary(src.dataSource, col.name) : undefined;
    if (!col || !dict || d.mv || d.kind !== 'string' || d.source !== col) return undefined;
    groups *= dict.size + 1; // + NULL
    plain.set(col.name, i);
  }
  if (groups > POST_FILTER_MAX_GROUPS) return undefined;
  let ok = true;
  const keys: FilterColumns = {
    column: (name) => {
      const i = plain.get(name);
      if (i === undefined) {
        ok = false;
        return { sql: 'NULL', col: undefined };
      }
      return { sql: ident(`d${i}`), col: dims[i]!.source };
    },
    expr: () => {
      ok = false;
      return 'NULL';
    },
  };
  const sql = filterSql(q.filter, keys, 'query.filter', true);
  return ok ? sql : undefined;
}

/** The shared aggregation core of timeseries, topN and groupBy. */
async function aggregate(
  rt: QueryRuntime,
  src: Source,
  q: BaseQuery,
  gran: Granularity,
  dims: DimOut[],
  plan: AggPlan,
  intervals: Interval[],
  extra: { qualify?: string; alwaysOneRow?: boolean; topN?: { order: string; limit: number } } = {},
): Promise<Grouped> {
  const cols = columnsFor(src, q.virtualColumns);
  const post = groupKeyFilter(rt, src, q, dims);
  const where = post ? 'TRUE' : filterSql(q.filter, cols, 'query.filter', true);
  let rel = `(SELECT * FROM ${baseRelation(src, q, intervals)} WHERE ${where})`;
  const mvDims = dims.map((d, i) => (d.mv ? i : -1)).filter((i) => i >= 0);
  if (mvDims.length) {
    const unn = mvDims.map(
      (i) =>
        `unnest(CASE WHEN ${dims[i]!.sql} IS NULL OR len(${dims[i]!.sql}) = 0 THEN [NULL::VARCHAR] ELSE ${dims[i]!.sql} END) AS ${ident(`__mv${i}`)}`,
    );
    rel = `(SELECT *, ${unn.join(', ')} FROM ${rel})`;
  }
  const minTime = Math.min(...intervals.map((i) => i.start));
  // Fixed-width buckets group by the bucket number; the start is computed per group, after aggregation.
  const ix = bucketIndexSql(gran, '"__time"', minTime);
  const bucket = ix ? ix.index : bucketSql(gran, '"__time"', minTime);
  const dimSqls = dims.map((d, i) => {
    const expr = d.mv ? ident(`__mv${i}`) : d.sql;
    const source: ColumnInfo | undefined = d.mv ? { name: d.name, kind: 'string' } : d.source;
    return `${dimValueSql(d, expr, source)} AS ${ident(`d${i}`)}`;
  });
  const aggSqls = plan.sqls.map((s, i) => `${s} AS ${ident(`a${i}`)}`);
  const select = [`${bucket} AS ${ix ? '"__bi"' : '"__bucket"'}`, ...dimSqls, ...aggSqls].join(', ');
  const groupBy = gran.kind === 'all' && dims.length === 0 && extra.alwaysOneRow ? '' : ' GROUP BY ALL';
  const order = ` ORDER BY "__bucket"${dims.map((_, i) => `, ${ident(`d${i}`)} NULLS FIRST`).join('')}`;
  let inner = `SELECT ${select} FROM ${rel}${groupBy}`;
  if (ix) inner = `SELECT ${ix.start('"__bi"')} AS "__bucket", * EXCLUDE ("__bi") FROM (${inner})`;
  // (LIMIT keeps DuckDB from pushing the group-key filter back below the aggregation.)
  if (post) inner = `SELECT * FROM (${inner} LIMIT 9223372036854775807) WHERE ${post}`;
  // Group keys of a dictionary-encoded column leave as VARCHAR, cast per group (the DuckDB client converts an
  // ENUM column very slowly: it rebuilds the whole dictionary for every chunk of rows).
  const strDims = dims
    .map((d, i) => (!d.mv && d.kind === 'string' && d.source?.kind === 'string' ? i : -1))
    .filter((i) => i >= 0);
  if (strDims.length)
    inner = `SELECT * REPLACE (${strDims.map((i) => `CAST(${ident(`d${i}`)} AS VARCHAR) AS ${ident(`d${i}`)}`).join(', ')}) FROM (${inner})`;
  const sql = extra.topN
    ? `${inner} ORDER BY ${extra.topN.order} LIMIT ${num(extra.topN.limit)}`
    : extra.qualify
      ? `SELECT * FROM (${inner}) QUALIFY ${extra.qualify}${order}`
      : `${inner}${order}`;
  const raw = await rows(rt, sql);
  const allTs = allTimestamp(src, intervals);
  const out: Row[] = [];
  const buckets: (number | null)[] = [];
  for (const r of raw) {
    const row: Row = {};
    dims.forEach((d, i) => {
      row[d.name] = convertDim(r[`d${i}`], d);
    });
    plan.specs.forEach((s, i) => {
      row[s.name] = convertAgg(r[`a${i}`], plan.outs[i]!);
    });
    out.push(row);
    buckets.push(r.__bucket === null || r.__bucket === undefined ? allTs : Number(r.__bucket));
  }
  return { buckets, rows: out };
}

function sortRows(
  rows: { t: number; row: Row }[],
  columns: { dimension: string; direction: string; dimensionOrder: string }[],
) {
  const cmp = (a: unknown, b: unknown, order: string): number => {
    const fa = finalizeValue(a);
    const fb = finalizeValue(b);
    if (fa === null || fa === undefined) return fb === null || fb === undefined ? 0 : -1;
    if (fb === null || fb === undefined) return 1;
    if (order === 'numeric' || typeof fa === 'number' || typeof fa === 'bigint') {
      const x = Number(fa);
      const y = Number(fb);
      return x < y ? -1 : x > y ? 1 : 0;
    }
    if (order === 'strlen')
      return String(fa).length - String(fb).length || (String(fa) < String(fb) ? -1 : String(fa) > String(fb) ? 1 : 0);
    const x = String(fa);
    const y = String(fb);
    return x < y ? -1 : x > y ? 1 : 0;
  };
  rows.sort((a, b) => {
    for (const c of columns) {
      const r = cmp(a.row[c.dimension], b.row[c.dimension], c.dimensionOrder);
      if (r !== 0) return c.direction.toLowerCase().startsWith('desc') ? -r : r;
    }
    return 0;
  });
}

async function timeseries(rt: QueryRuntime, q: BaseQuery, src: Source | undefined): Promise<unknown[]> {
  if (!src) return [];
  const intervals = intervalsOf(q);
  const gran = parseGranularity(q.granularity, 'query.granularity');
  const cols = columnsFor(src, q.virtualColumns);
  const plan = planAggs(q, cols);
  const hasSegments =
    src.segments.length === 0 ||
    src.segments.some((s) => intervals.some((i) => s.interval.start < i.end && i.start < s.interval.end));
  if (!hasSegments) return [];
  const g =
    (await thetaOnly(rt, src, q, gran, plan, intervals)) ??
    (await aggregate(rt, src, q, gran, [], plan, intervals, { alwaysOneRow: true }));
  let entries = g.rows.map((row, i) => ({ t: g.buckets[i]!, row }));
  const skipEmpty = q.context.skipEmptyBuckets === true || q.context.skipEmptyBuckets === 'true';
  if (gran.kind !== 'all' && gran.kind !== 'none' && !skipEmpty && entries.length) {
    const first = entries[0]!.t;
    const last = entries[entries.length - 1]!.t;
    const have = new Map(entries.map((e) => [e.t, e]));
    const filled: typeof entries = [];
    let t: number | undefined = bucketStart(gran, first) === first ? first : undefined;
    let guard = 0;
    while (t !== undefined && t <= last && guard++ < 100_000) {
      filled.push(
        have.get(t) ?? { t, row: Object.fromEntries(plan.specs.map((s, i) => [s.name, emptyAgg(plan.outs[i]!)])) },
      );
      t = nextBucket(gran, t);
    }
    if (t !== undefined && guard < 100_000) entries = filled;
  }
  for (const e of entries) applyPostAggs(e.row, q);
  if (q.descending) entries.reverse();
  const limit =
    typeof (q as Record<string, unknown>).limit === 'number'
      ? ((q as Record<string, unknown>).limit as number)
      : undefined;
  if (limit !== undefined) entries = entries.slice(0, limit);
  const finalize = q.context.finalize !== false;
  return entries.map((e) => ({ timestamp: isoMillis(e.t), result: finalizeRow(e.row, finalize) }));
}

/** The largest perfect hash table (2^bits groups) a distinct count over dictionary codes may ask DuckDB for. */
const PERFECT_HT_MAX_BITS = 20;

/**
 * The k smallest distinct value hashes of a dictionary-encoded column over `rel`, as Druid computes sketches
 * from a segment's dictionary: the distinct codes present (perfect-hash aggregation), as a bitmap, then
 * walking the dictionary in hash order (kept per dictionary) until k present codes are found. Undefined
 * when the column's dictionary changed since planning (the caller takes the general path).
 */
async function dictionaryTheta(
  rt: QueryRuntime,
  dict: Dictionary,
  c: string,
  rel: string,
  k: number,
): Promise<bigint[] | undefined> {
  const { hashes, byHash } = dict;
  let bits: Buffer | null;
  // One snapshot for both reads: while olap_dict.current lists the planned dictionary, the column holds its
  // codes (a publish that re-encodes the column replaces the entry in its transaction); else the general path.
  await rt.conn.run('BEGIN TRANSACTION');
  try {
    const live = await rt.conn.runAndReadAll(`SELECT count(*) AS n FROM olap_dict.current WHERE type_name = $1`, [
      dict.name,
    ]);
    if (Number(live.getRowObjectsJS()[0]!.n) !== 1) return undefined;
    // The distinct codes by DuckDB's perfect-hash aggregation (an array indexed by code, as the column's min/max
    // statistics allow) when the table it needs stays small, then a bitmap of them.
    const htBits = Math.ceil(Math.log2(dict.size + 1)) + 1;
    if (htBits <= PERFECT_HT_MAX_BITS) await rt.conn.run(`SET perfect_ht_threshold = ${num(Math.max(12, htBits))}`);
    const r = await rt.conn.runAndReadAll(
      `SELECT bitstring_agg(enum_code(v), 0, ${num(dict.size - 1)}) AS b FROM (SELECT ${c} AS v FROM ${rel} GROUP BY ALL)`,
    );
    bits = r.getRowObjectsJS()[0]!.b as Buffer | null;
  } catch (err) {
    if (/interrupt/i.test((err as Error).message))
      throw new TributaryError('TIMEOUT', 'Query interrupted', { cause: err });
    return undefined;
  } finally {
    await rt.conn.run('RESET perfect_ht_threshold').catch(() => undefined);
    await rt.conn.run('COMMIT').catch(() => undefined);
  }
  if (!bits) return [];
  // DuckDB's BIT: a first byte counting the padding bits that lead the data, then the bits, most significant first.
  const pad = bits[0]!;
  const out: bigint[] = [];
  let last: bigint | undefined;
  for (let j = 0; j < byHash.length && out.length < k; j++) {
    const code = byHash[j]!;
    const p = code + pad;
    if (!(bits[1 + (p >> 3)]! & (0x80 >> (p & 7)))) continue;
    const h = hashes[code]!;
    if (h !== last) out.push(h); // (two values with one hash count once, as a sketch does)
    last = h;
  }
  return out;
}

/**
 * Per store: for (datasource, column, k), a hash below which the last distinct count found k distinct
 * hashes. A planning hint only: a result is used only when it proves complete (see thetaOnly).
 */
const thetaHints = new WeakMap<SegmentStore, Map<string, bigint>>();
const HASH_MAX = 2n ** 64n - 1n;

/**
 * A lone theta sketch over a raw column at granularity all (a distinct count): the k smallest distinct
 * hashes are the k smallest of the distinct hashes below any threshold that still leaves k of them, so the
 * hash-table work shrinks to the rows under the hint's threshold. Fewer than k found: rerun without it.
 * Undefined when the query is not of that shape.
 */
async function thetaOnly(
  rt: QueryRuntime,
  src: Source,
  q: BaseQuery,
  gran: Granularity,
  plan: AggPlan,
  intervals: Interval[],
): Promise<Grouped | undefined> {
  const spec = plan.specs[0];
  if (gran.kind !== 'all' || plan.specs.length !== 1 || spec?.type !== 'thetaSketch') return undefined;
  if (spec.isInputThetaSketch || spec.expression !== undefined || spec.fieldName === undefined) return undefined;
  if (q.virtualColumns.some((v) => v.name === spec.fieldName)) return undefined;
  const col = src.columns.get(spec.fieldName);
  if (!col || (col.kind !== 'string' && col.kind !== 'long' && col.kind !== 'double' && col.kind !== 'float'))
    return undefined;
  const k = spec.size ?? 16384;
  const cols = columnsFor(src, q.virtualColumns);
  const where = filterSql(q.filter, cols, 'query.filter', true);
  const c = ident(col.name);
  const rel = `${baseRelation(src, q, intervals)} WHERE (${where}) AND ${c} IS NOT NULL`;
  const dict = col.kind === 'string' ? rt.store.dictionary(src.dataSource, col.name) : undefined;
  if (dict) {
    const hashes = await dictionaryTheta(rt, dict, c, rel, k);
    if (hashes)
      return {
        buckets: [allTimestamp(src, intervals)],
        rows: [{ [spec.name]: convertAgg(hashes, { kind: 'theta', k }) }],
      };
  }
  const base = `SELECT hash(${col.kind === 'string' ? `CAST(${c} AS VARCHAR)` : c}) AS h FROM ${rel}`;
  let hints = thetaHints.get(rt.store);
  if (!hints) {
    hints = new Map();
    thetaHints.set(rt.store, hints);
  }
  const key = JSON.stringify([src.dataSource, col.name, k]);
  const run = async (below: bigint | undefined) => {
    const cond = below === undefined ? '' : ` WHERE h < ${below}::UBIGINT`;
    const r = await rows(rt, `SELECT coalesce(min(DISTINCT h, ${num(k)}), []::UBIGINT[]) AS s FROM (${base})${cond}`);
    return ((r[0]?.s as bigint[] | null) ?? []).map((x) => BigInt(x));
  };
  const hint = hints.get(key);
  let hashes = hint === undefined ? undefined : await run(hint);
  if (hashes === undefined || hashes.length < k) hashes = await run(undefined);
  // Next time: a little above this k-th hash (distinct counts drift as data arrives).
  if (hashes.length >= k) {
    const kth = hashes[k - 1]!;
    const next = kth + kth / 4n;
    hints.set(key, next > HASH_MAX ? HASH_MAX : next);
  } else hints.delete(key);
  const row: Row = { [spec.name]: convertAgg(hashes, { kind: 'theta', k }) };
  return { buckets: [allTimestamp(src, intervals)], rows: [row] };
}

function topNMetric(m: unknown, field: string): { metric?: string; inverted: boolean; dimensionOrder?: string } {
  if (typeof m === 'string') return { metric: m, inverted: false };
  if (m && typeof m === 'object') {
    const o = m as Record<string, unknown>;
    if (o.type === 'numeric') return { metric: String(o.metric), inverted: false };
    if (o.type === 'inverted') {
      const inner = topNMetric(o.metric, `${field}.metric`);
      return { ...inner, inverted: !inner.inverted };
    }
    if (o.type === 'dimension' || o.type === 'lexicographic' || o.type === 'alphaNumeric')
      return {
        inverted: false,
        dimensionOrder: String(o.ordering ?? (o.type === 'alphaNumeric' ? 'alphanumeric' : 'lexicographic')),
      };
  }
  throw invalidArgument(field, 'a metric name or {type: numeric|inverted|dimension}', m);
}

async function topN(rt: QueryRuntime, q: BaseQuery, src: Source | undefined): Promise<unknown[]> {
  const o = q as Record<string, unknown>;
  const t = parseWith(
    z.looseObject({ dimension: z.unknown(), threshold: z.number().int().positive(), metric: z.unknown() }),
    q,
    'query',
  );
  if (t.dimension === undefined) throw invalidArgument('query.dimension', 'a dimension spec');
  if (!src) return [];
  void o;
  const intervals = intervalsOf(q);
  const gran = parseGranularity(q.granularity, 'query.granularity');
  const cols = columnsFor(src, q.virtualColumns);
  const plan = planAggs(q, cols);
  const dim = parseDimension(t.dimension, cols, 'query.dimension', lookupNames(rt));
  const metric = topNMetric(t.metric, 'query.metric');
  let qualify: string | undefined;
  let topNOrder: { order: string; limit: number } | undefined;
  const mi = metric.metric === undefined ? -1 : plan.specs.findIndex((s) => s.name === metric.metric);
  if (mi >= 0 && isPlainNumeric(plan.outs[mi]!)) {
    const rank = `${ident(`a${mi}`)} ${metric.inverted ? 'ASC' : 'DESC'} NULLS LAST, "d0" NULLS FIRST`;
    // One bucket: a plain ORDER BY ... LIMIT (DuckDB's top-N operator) instead of a window over every group.
    if (gran.kind === 'all' && !dim.mv) topNOrder = { order: rank, limit: t.threshold };
    else qualify = `row_number() OVER (PARTITION BY "__bucket" ORDER BY ${rank}) <= ${num(t.threshold)}`;
  } else if (
    metric.metric !== undefined &&
    mi < 0 &&
    !q.postAggregations.some((p, i) => postAggName(p, `query.postAggregations[${i}]`) === metric.metric)
  ) {
    throw invalidArgument('query.metric', 'the name of an aggregator or post-aggregator', metric.metric);
  }
  const g = await aggregate(
    rt,
    src,
    q,
    gran,
    [dim],
    plan,
    intervals,
    topNOrder ? { topN: topNOrder } : qualify ? { qualify } : {},
  );
  const byBucket = new Map<number, Row[]>();
  g.rows.forEach((row, i) => {
    applyPostAggs(row, q);
    const b = g.buckets[i]!;
    if (!byBucket.has(b)) byBucket.set(b, []);
    byBucket.get(b)!.push(row);
  });
  const finalize = q.context.finalize !== false;
  const out: unknown[] = [];
  const keys = [...byBucket.keys()].sort((a, b) => a - b);
  if (q.descending) keys.reverse();
  for (const b of keys) {
    const list = byBucket.get(b)!.map((row) => ({ t: b, row }));
    if (metric.metric !== undefined)
      sortRows(list, [
        {
          dimension: metric.metric,
          direction: metric.inverted ? 'ascending' : 'descending',
          dimensionOrder: 'numeric',
        },
        { dimension: dim.name, direction: 'ascending', dimensionOrder: 'lexicographic' },
      ]);
    else
      sortRows(list, [
        {
          dimension: dim.name,
          direction: metric.inverted ? 'descending' : 'ascending',
          dimensionOrder: metric.dimensionOrder ?? 'lexicographic',
        },
      ]);
    out.push({ timestamp: isoMillis(b), result: list.slice(0, t.threshold).map((e) => finalizeRow(e.row, finalize)) });
  }
  return out;
}

const limitSpecSchema = z.looseObject({
  type: z.literal('default').default('default'),
  limit: z.number().int().nonnegative().optional(),
  offset: z.number().int().nonnegative().optional(),
  columns: z
    .array(
      z.union([
        z.string().min(1),
        z.looseObject({
          dimension: z.string().min(1),
          direction: z.string().default('ascending'),
          dimensionOrder: z
            .union([z.string(), z.looseObject({ type: z.string() })])
            .optional()
            .transform((d) => (typeof d === 'object' ? d.type : d) ?? 'lexicographic'),
        }),
      ]),
    )
    .default([]),
});

async function groupBy(rt: QueryRuntime, q: BaseQuery, src: Source | undefined): Promise<unknown[]> {
  const o = parseWith(
    z.looseObject({
      dimensions: z.array(z.unknown()).default([]),
      having: z.unknown().optional(),
      limitSpec: limitSpecSchema.optional(),
      subtotalsSpec: z.array(z.array(z.string())).optional(),
    }),
    q,
    'query',
  );
  if (!src) return [];
  const intervals = intervalsOf(q);
  const gran = parseGranularity(q.granularity, 'query.granularity');
  const cols = columnsFor(src, q.virtualColumns);
  const plan = planAggs(q, cols);
  const lk = lookupNames(rt);
  const dims = o.dimensions.map((d, i) => parseDimension(d, cols, `query.dimensions[${i}]`, lk));
  const sets = o.subtotalsSpec ?? [dims.map((d) => d.name)];
  o.subtotalsSpec?.forEach((s, i) => {
    s.forEach((n, j) => {
      if (!dims.some((d) => d.name === n))
        throw invalidArgument(`query.subtotalsSpec[${i}][${j}]`, 'an output name of query.dimensions', n);
    });
  });
  let all: { t: number; row: Row }[] = [];
  for (const set of sets) {
    const use = dims.filter((d) => set.includes(d.name));
    const g = await aggregate(rt, src, q, gran, use, plan, intervals);
    let part = g.rows.map((row, i) => {
      const full: Row = {};
      for (const d of dims) full[d.name] = null;
      Object.assign(full, row);
      if (o.subtotalsSpec) for (const d of dims) if (!set.includes(d.name)) delete full[d.name];
      return { t: g.buckets[i]!, row: full };
    });
    for (const e of part) applyPostAggs(e.row, q);
    if (o.having !== undefined && o.having !== null)
      part = part.filter((e) => evalHaving(o.having, e.row, 'query.having'));
    all = all.concat(part);
  }
  if (o.limitSpec) {
    const columns = o.limitSpec.columns.map((c) =>
      typeof c === 'string' ? { dimension: c, direction: 'ascending', dimensionOrder: 'lexicographic' } : c,
    );
    if (columns.length) {
      const byTime = gran.kind !== 'all' && q.context.sortByDimsFirst !== true;
      sortRows(all, columns);
      // Druid orders by time first unless sortByDimsFirst (Array.sort is stable).
      if (byTime) all.sort((a, b) => a.t - b.t);
    }
    const offset = o.limitSpec.offset ?? 0;
    all = all.slice(offset, o.limitSpec.limit === undefined ? undefined : offset + o.limitSpec.limit);
  }
  const finalize = q.context.finalize !== false;
  return all.map((e) => ({ version: 'v1', timestamp: isoMillis(e.t), event: finalizeRow(e.row, finalize) }));
}

function outputValue(v: unknown, c: ColumnInfo | undefined): unknown {
  if (v === null || v === undefined) return null;
  if (!c) return typeof v === 'bigint' ? v : v;
  switch (c.kind) {
    case 'time':
    case 'long':
      return typeof v === 'bigint' ? v : BigInt(Math.trunc(Number(v)));
    case 'double':
    case 'float':
      return Number(v);
    case 'mv': {
      const a = v as string[];
      return a.length === 0 ? null : a.length === 1 ? a[0] : a;
    }
    case 'first': {
      const s = v as { t: bigint; v: unknown };
      return { lhs: s.t, rhs: typeof s.v === 'number' && c.valueKind !== 'string' ? s.v : s.v };
    }
    case 'theta':
      return sketchBase64({ kind: 'theta', hashes: v as bigint[], k: 16384 });
    case 'hll':
      return sketchBase64({ kind: 'hll', entries: v as number[], flavor: 'sketch', round: false });
    case 'quantiles':
      return sketchBase64(quantilesState(v as { v: number; w: bigint }[], 128));
    case 'json':
      return typeof v === 'string' ? JSON.parse(v) : v;
    default:
      return v;
  }
}

async function scan(rt: QueryRuntime, q: BaseQuery, src: Source | undefined): Promise<unknown[]> {
  const o = parseWith(
    z.looseObject({
      columns: z.array(z.string()).default([]),
      limit: z.number().int().nonnegative().optional(),
      offset: z.number().int().nonnegative().default(0),
      order: z.enum(['none', 'ascending', 'descending']).default('none'),
      resultFormat: z.enum(['list', 'compactedList']).default('list'),
    }),
    q,
    'query',
  );
  if (!src) return [];
  const intervals = intervalsOf(q);
  const cols = columnsFor(src, q.virtualColumns);
  const names = o.columns.length ? o.columns : ['__time', ...src.columns.keys()];
  const where = filterSql(q.filter, cols, 'query.filter', true);
  const vcNames = new Set(q.virtualColumns.map((v) => v.name));
  const sel = names.map((n, i) => {
    const c = cols.column(n);
    const raw = n === '__time' ? 'epoch_ms("__time")' : vcNames.has(n) ? ident(n) : c.sql;
    // (a dictionary-encoded column leaves as VARCHAR: see aggregate)
    const sql = c.col?.kind === 'string' ? `CAST(${raw} AS VARCHAR)` : raw;
    return `${sql} AS ${ident(`c${i}`)}`;
  });
  const order = o.order === 'none' ? '' : ` ORDER BY "__time" ${o.order === 'ascending' ? 'ASC' : 'DESC'}`;
  const limit = o.limit !== undefined ? ` LIMIT ${num(o.limit)}` : '';
  const offset = o.offset ? ` OFFSET ${num(o.offset)}` : '';
  const raw = await rows(
    rt,
    `SELECT epoch_ms("__time") AS "__olap_t", ${sel.join(', ')} FROM ${baseRelation(src, q, intervals)} WHERE ${where}${order}${limit}${offset}`,
  );
  const kinds = names.map((n) => (n === '__time' ? ({ name: n, kind: 'time' } as ColumnInfo) : cols.column(n).col));
  const batches = new Map<string, unknown[]>();
  const segFor = (t: number) =>
    src.segments.find((s) => s.interval.start <= t && t < s.interval.end)?.id ?? src.dataSource;
  for (const r of raw) {
    const values = names.map((_, i) => outputValue(r[`c${i}`], kinds[i]));
    const ev = o.resultFormat === 'list' ? Object.fromEntries(names.map((n, i) => [n, values[i]])) : values;
    const id = segFor(Number(r.__olap_t));
    if (!batches.has(id)) batches.set(id, []);
    batches.get(id)!.push(ev);
  }
  return [...batches.entries()].map(([segmentId, events]) => ({ segmentId, columns: names, events }));
}

async function search(rt: QueryRuntime, q: BaseQuery, src: Source | undefined): Promise<unknown[]> {
  const o = parseWith(
    z.looseObject({
      searchDimensions: z.array(z.string()).optional(),
      query: z.looseObject({
        type: z.enum(['insensitive_contains', 'contains', 'fragment', 'regex']),
        value: z.string().optional(),
        values: z.array(z.string()).optional(),
        pattern: z.string().optional(),
        caseSensitive: z.boolean().optional(),
      }),
      limit: z.number().int().positive().default(1000),
      sort: z.looseObject({ type: z.string() }).optional(),
    }),
    q,
    'query',
  );
  if (!src) return [];
  const intervals = intervalsOf(q);
  const gran = parseGranularity(q.granularity, 'query.granularity');
  const cols = columnsFor(src, q.virtualColumns);
  const where = filterSql(q.filter, cols, 'query.filter', true);
  const dims =
    o.searchDimensions ??
    [...src.columns.values()].filter((c) => c.kind === 'string' || c.kind === 'mv').map((c) => c.name);
  if (dims.length === 0) return [];
  const sq = o.query;
  const match = (v: string) => {
    if (sq.type === 'regex') return `regexp_matches(${v}, ${lit(sq.pattern ?? sq.value ?? '')})`;
    if (sq.type === 'fragment')
      return (
        (sq.values ?? [])
          .map((x) =>
            sq.caseSensitive ? `contains(${v}, ${lit(x)})` : `contains(lower(${v}), ${lit(x.toLowerCase())})`,
          )
          .join(' AND ') || 'TRUE'
      );
    const value = sq.value ?? '';
    return sq.type === 'contains' && sq.caseSensitive !== false
      ? `contains(${v}, ${lit(value)})`
      : `contains(lower(${v}), ${lit(value.toLowerCase())})`;
  };
  const parts = dims.map((d) => {
    const c = cols.column(d);
    const valueSql = c.col?.kind === 'mv' ? `unnest(${c.sql})` : `CAST(${c.sql} AS VARCHAR)`;
    return `SELECT "__bucket", ${lit(d)} AS dimension, v AS value, count(*)::BIGINT AS count FROM (SELECT ${bucketSql(gran, '"__time"')} AS "__bucket", ${valueSql} AS v FROM ${baseRelation(src, q, intervals)} WHERE ${where}) WHERE v IS NOT NULL AND ${match('v')} GROUP BY ALL`;
  });
  const raw = await rows(rt, parts.join(' UNION ALL '));
  const allTs = allTimestamp(src, intervals);
  const byBucket = new Map<number, { dimension: string; value: string; count: bigint }[]>();
  for (const r of raw) {
    const b = r.__bucket === null ? allTs : Number(r.__bucket);
    if (!byBucket.has(b)) byBucket.set(b, []);
    byBucket.get(b)!.push({ dimension: String(r.dimension), value: String(r.value), count: r.count as bigint });
  }
  const sort = o.sort?.type ?? 'lexicographic';
  const cmp = (a: { value: string; dimension: string }, b: { value: string; dimension: string }) => {
    let r = 0;
    if (sort === 'strlen') r = a.value.length - b.value.length;
    else if (sort === 'numeric') r = Number(a.value) - Number(b.value);
    if (r === 0) r = a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
    if (r === 0) r = a.dimension < b.dimension ? -1 : a.dimension > b.dimension ? 1 : 0;
    return r;
  };
  return [...byBucket.keys()]
    .sort((a, b) => a - b)
    .map((b) => ({ timestamp: isoMillis(b), result: byBucket.get(b)!.sort(cmp).slice(0, o.limit) }));
}

async function timeBoundary(rt: QueryRuntime, q: BaseQuery, src: Source | undefined): Promise<unknown[]> {
  const o = parseWith(z.looseObject({ bound: z.enum(['minTime', 'maxTime']).optional() }), q, 'query');
  if (!src) return [];
  const cols = columnsFor(src, q.virtualColumns);
  const where = filterSql(q.filter, cols, 'query.filter', true);
  const r = (
    await rows(
      rt,
      `SELECT epoch_ms(min("__time")) AS mn, epoch_ms(max("__time")) AS mx FROM ${baseRelation(src, q, intervalsOf(q))} WHERE ${where}`,
    )
  )[0]!;
  if (r.mn === null || r.mn === undefined) return [];
  const mn = isoMillis(Number(r.mn));
  const mx = isoMillis(Number(r.mx));
  if (o.bound === 'minTime') return [{ timestamp: mn, result: { minTime: mn } }];
  if (o.bound === 'maxTime') return [{ timestamp: mx, result: { maxTime: mx } }];
  return [{ timestamp: mn, result: { minTime: mn, maxTime: mx } }];
}

async function segmentMetadata(rt: QueryRuntime, q: BaseQuery, src: Source | undefined): Promise<unknown[]> {
  const o = parseWith(
    z.looseObject({
      merge: z.boolean().default(false),
      analysisTypes: z.array(z.string()).default(['cardinality', 'interval', 'minmax']),
    }),
    q,
    'query',
  );
  if (!src) return [];
  const intervals = intervalsOf(q);
  const meta = rt.store.datasources.get(src.dataSource);
  const segs = src.segments.filter((s) => intervals.some((i) => s.interval.start < i.end && i.start < s.interval.end));
  const groups = o.merge
    ? [segs]
    : [...new Set(segs.map((s) => s.interval.start))].map((st) => segs.filter((s) => s.interval.start === st));
  const out: unknown[] = [];
  for (const group of groups) {
    if (group.length === 0) continue;
    const start = Math.min(...group.map((s) => s.interval.start));
    const end = Math.max(...group.map((s) => s.interval.end));
    const range = `"__time" >= make_timestamp(${num(start)} * 1000) AND "__time" < make_timestamp(${num(Math.min(end, 8.64e15))} * 1000)`;
    const strCols = [...src.columns.values()].filter((c) => c.kind === 'string' || c.kind === 'mv');
    const stats = strCols.length
      ? (
          await rows(
            rt,
            `SELECT ${strCols
              .map((c, i) => {
                const v =
                  c.kind === 'mv' ? `flatten(list(${ident(c.name)}))` : `list(CAST(${ident(c.name)} AS VARCHAR))`;
                return `len(list_distinct(${v})) AS ${ident(`n${i}`)}, list_min(${v}) AS ${ident(`mn${i}`)}, list_max(${v}) AS ${ident(`mx${i}`)}, count(*) FILTER (WHERE ${ident(c.name)} IS NULL) > 0 AS ${ident(`h${i}`)}`;
              })
              .join(', ')} FROM ${src.from} WHERE ${range}`,
          )
        )[0]!
      : {};
    const columns: Record<string, unknown> = {
      __time: colMeta('LONG', false, false, null, null, null),
    };
    for (const c of src.columns.values()) {
      const i = strCols.indexOf(c);
      if (i >= 0) {
        columns[c.name] = colMeta(
          'STRING',
          c.kind === 'mv',
          Boolean(stats[`h${i}`]),
          o.analysisTypes.includes('cardinality') ? BigInt(Number(stats[`n${i}`] ?? 0)) : null,
          o.analysisTypes.includes('minmax') ? (stats[`mn${i}`] ?? null) : null,
          o.analysisTypes.includes('minmax') ? (stats[`mx${i}`] ?? null) : null,
        );
      } else {
        const t = druidType(c);
        columns[c.name] = colMeta(t, false, false, null, null, null);
      }
    }
    const numRows = group.reduce((a, s) => a + s.rows, 0);
    const entry: Record<string, unknown> = {
      id: o.merge ? 'merged' : group[0]!.id,
      intervals: o.analysisTypes.includes('interval') ? [formatInterval({ start, end })] : null,
      columns,
      size: BigInt(group.reduce((a, s) => a + s.size, 0)),
      numRows: BigInt(numRows),
      aggregators: o.analysisTypes.includes('aggregators')
        ? Object.fromEntries((meta?.columns ?? []).filter((c) => c.aggregator).map((c) => [c.name, c.aggregator]))
        : null,
      timestampSpec: null,
      queryGranularity: o.analysisTypes.includes('queryGranularity') ? (meta?.queryGranularity ?? null) : null,
      rollup: o.analysisTypes.includes('rollup') ? (meta?.rollup ?? null) : null,
    };
    out.push(entry);
  }
  return out;
}

function colMeta(type: string, mv: boolean, hasNulls: boolean, card: bigint | null, min: unknown, max: unknown) {
  return {
    typeSignature: type,
    type,
    hasMultipleValues: mv,
    hasNulls,
    size: 0n,
    cardinality: card,
    minValue: min,
    maxValue: max,
    errorMessage: null,
  };
}

async function dataSourceMetadata(rt: QueryRuntime, q: BaseQuery, src: Source | undefined): Promise<unknown[]> {
  if (!src) return [];
  const meta = rt.store.datasources.get(src.dataSource);
  let t = meta?.maxIngestedEventTime;
  if (t === undefined) {
    const r = (await rows(rt, `SELECT epoch_ms(max("__time")) AS m FROM ${src.from}`))[0]!;
    t = r.m === null ? undefined : Number(r.m);
  }
  if (t === undefined || t <= ETERNITY.start) return [];
  void q;
  return [{ timestamp: isoMillis(t), result: { maxIngestedEventTime: isoMillis(t) } }];
}

/** Validates and runs one native query; returns Druid's result array (longs as bigint). */
export async function runNative(rt: QueryRuntime, query: unknown, field = 'query'): Promise<unknown[]> {
  const q = parseWith(baseQuery, query, field);
  // Validate what every query type shares before looking at data (an unknown datasource answers []).
  intervalsOf(q);
  parseGranularity(q.granularity, `${field}.granularity`);
  q.aggregations.forEach((a, i) => {
    parseAggregator(a, `${field}.aggregations[${i}]`);
  });
  const src = await resolveSource(rt, q.dataSource, `${field}.dataSource`);
  switch (q.queryType) {
    case 'timeseries':
      return timeseries(rt, q, src);
    case 'topN':
      return topN(rt, q, src);
    case 'groupBy':
      return groupBy(rt, q, src);
    case 'scan':
      return scan(rt, q, src);
    case 'search':
      return search(rt, q, src);
    case 'timeBoundary':
      return timeBoundary(rt, q, src);
    case 'segmentMetadata':
      return segmentMetadata(rt, q, src);
    case 'dataSourceMetadata':
      return dataSourceMetadata(rt, q, src);
  }
}

/** The datasource names a query reads (for cache invalidation). */
export function dataSourcesOf(query: unknown): string[] {
  const ds = (query as { dataSource?: unknown } | null)?.dataSource;
  const walk = (d: unknown): string[] => {
    if (typeof d === 'string') return [d];
    if (!d || typeof d !== 'object') return [];
    const o = d as Record<string, unknown>;
    if (o.type === 'table') return [String(o.name)];
    if (o.type === 'query') return dataSourcesOf(o.query);
    if (o.type === 'union' && Array.isArray(o.dataSources)) return o.dataSources.flatMap(walk);
    return [];
  };
  return walk(ds);
}
