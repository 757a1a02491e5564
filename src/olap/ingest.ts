import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import type { DuckDBConnection } from '@duckdb/node-api';
import { invalidArgument, TributaryError } from '../core/index.ts';
import { type AggContext, aggregateSql, rowMetricSql } from './aggregators.ts';
import { type ColumnInfo, type ColumnKind, metricColumn } from './columns.ts';
import { exprToSql, jodaToStrftime } from './expr.ts';
import { filterSql } from './filters.ts';
import type { AggregatorSpec, DataSchema, IngestionSpec, InputFormat, InputSource } from './spec.ts';
import { ident, lit, num } from './sql.ts';
import { bucketSql, nextBucket } from './time.ts';

export interface RowStats {
  processed: number;
  processedWithError: number;
  thrownAway: number;
  unparseable: number;
}

/** A rolled-up batch ready to publish: the temp table `olap_rolled` on the connection. */
export interface BuiltBatch {
  columns: ColumnInfo[];
  stats: RowStats;
  /** Segment buckets: [start, end) ms and row count. */
  buckets: { seg: number; start: number; end: number; rows: number }[];
}

function globToRegex(glob: string): RegExp {
  const re = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${re}$`);
}

/** The files a local input source names. */
export function resolveLocalFiles(src: Extract<InputSource, { type: 'local' }>, baseDirRoot?: string): string[] {
  if (src.files?.length) return src.files.map((f) => path.resolve(f));
  if (!src.baseDir) throw invalidArgument('spec.ioConfig.inputSource.baseDir', 'a directory (or files)');
  const dir = path.resolve(baseDirRoot ?? process.cwd(), src.baseDir);
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory())
    throw invalidArgument('spec.ioConfig.inputSource.baseDir', 'an existing directory', src.baseDir);
  const re = globToRegex(src.filter ?? '*');
  const files = (fs.readdirSync(dir, { recursive: true }) as string[])
    .filter((f) => re.test(path.basename(f)) && fs.statSync(path.join(dir, f)).isFile())
    .sort()
    .map((f) => path.join(dir, f));
  if (files.length === 0)
    throw invalidArgument('spec.ioConfig.inputSource.filter', `a pattern matching files in ${src.baseDir}`, src.filter);
  return files;
}

function readMaybeGzip(f: string): Buffer {
  const buf = fs.readFileSync(f);
  return buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b ? zlib.gunzipSync(buf) : buf;
}

/** Non-blank lines in JSON-lines files (gzip ok). */
export function countJsonLines(files: string[]): number {
  let n = 0;
  for (const f of files) {
    const buf = readMaybeGzip(f);
    let start = 0;
    while (start < buf.length) {
      let end = buf.indexOf(0x0a, start);
      if (end < 0) end = buf.length;
      for (let i = start; i < end; i++) {
        const b = buf[i]!;
        if (b !== 0x20 && b !== 0x09 && b !== 0x0d) {
          n++;
          break;
        }
      }
      start = end + 1;
    }
  }
  return n;
}

/**
 * Parses JSON-lines files line by line (as Druid does), writes the lines that are JSON objects to `out` and
 * returns how many non-blank lines are not. Used when DuckDB's reader met errors: with ignore_errors it turns
 * a broken line into a NULL row and may swallow the good line after it.
 */
export function cleanJsonLines(files: string[], out: string): number {
  let bad = 0;
  const fd = fs.openSync(out, 'w');
  try {
    for (const f of files) {
      const good: string[] = [];
      for (const line of readMaybeGzip(f).toString('utf8').split('\n')) {
        if (line.trim() === '') continue;
        let v: unknown;
        try {
          v = JSON.parse(line);
        } catch {
          v = undefined;
        }
        if (v && typeof v === 'object' && !Array.isArray(v)) good.push(line);
        else bad++;
      }
      if (good.length) fs.writeSync(fd, `${good.join('\n')}\n`);
    }
  } finally {
    fs.closeSync(fd);
  }
  return bad;
}

export function readerSql(files: string[], fmt: InputFormat): string {
  const list = `[${files.map(lit).join(', ')}]`;
  switch (fmt.type) {
    case 'json': {
      // Type detection over every record when the input is small; a large sample otherwise (speed).
      const bytes = files.reduce((a, f) => a + (fs.existsSync(f) ? fs.statSync(f).size : 0), 0);
      const sample = bytes <= 16 * 1024 * 1024 ? -1 : 20_480;
      return `read_json(${list}, format = 'newline_delimited', union_by_name = true, ignore_errors = true, sample_size = ${sample})`;
    }
    case 'parquet':
      return `read_parquet(${list}, union_by_name = true)`;
    case 'csv':
    case 'tsv': {
      const delim = fmt.delimiter ?? (fmt.type === 'tsv' ? '\t' : ',');
      const opts = [`delim = ${lit(delim)}`, 'all_varchar = true', 'null_padding = true', "quote = '\"'"];
      if (fmt.findColumnsFromHeader) opts.push('header = true');
      else {
        opts.push('header = false');
        opts.push(`names = [${(fmt.columns ?? []).map(lit).join(', ')}]`);
      }
      if (fmt.skipHeaderRows) opts.push(`skip = ${num(fmt.skipHeaderRows)}`);
      return `read_csv(${list}, ${opts.join(', ')})`;
    }
  }
}

function rawKind(type: string): ColumnKind {
  const t = type.toUpperCase();
  if (t.endsWith('[]')) return 'mv';
  if (/^(BIGINT|INTEGER|HUGEINT|SMALLINT|TINYINT|UBIGINT|UINTEGER|USMALLINT|UTINYINT)$/.test(t)) return 'long';
  if (/^(DOUBLE|FLOAT|DECIMAL.*)$/.test(t)) return 'double';
  if (t.startsWith('TIMESTAMP') || t === 'DATE') return 'time';
  if (t === 'JSON' || t.startsWith('STRUCT') || t.startsWith('MAP')) return 'json';
  return 'string';
}

function timestampSql(col: string, type: string | undefined, format: string, missing: string | undefined): string {
  if (type === undefined) {
    if (missing === undefined) return 'NULL::BIGINT';
    return `epoch_ms(TRY_CAST(${lit(missing)} AS TIMESTAMPTZ))`;
  }
  const c = ident(col);
  const kind = rawKind(type);
  const f = format.toLowerCase();
  let e: string;
  if (kind === 'time') e = `epoch_ms(${c})`;
  else if (kind === 'long' || kind === 'double') {
    const n = `${c}::DOUBLE`;
    e =
      f === 'posix'
        ? `(${n} * 1000)::BIGINT`
        : f === 'micro'
          ? `(${n} / 1000)::BIGINT`
          : f === 'nano'
            ? `(${n} / 1000000)::BIGINT`
            : `${n}::BIGINT`;
  } else {
    const s = `CAST(${c} AS VARCHAR)`;
    if (f === 'iso' || f === 'auto')
      e = `coalesce(epoch_ms(TRY_CAST(${s} AS TIMESTAMPTZ)), ${f === 'auto' ? `TRY_CAST(${s} AS BIGINT)` : 'NULL'})`;
    else if (f === 'millis') e = `TRY_CAST(${s} AS BIGINT)`;
    else if (f === 'posix') e = `(TRY_CAST(${s} AS DOUBLE) * 1000)::BIGINT`;
    else if (f === 'micro') e = `(TRY_CAST(${s} AS DOUBLE) / 1000)::BIGINT`;
    else if (f === 'nano') e = `(TRY_CAST(${s} AS DOUBLE) / 1000000)::BIGINT`;
    else if (f === 'ruby') e = `(TRY_CAST(${s} AS DOUBLE) * 1000)::BIGINT`;
    else e = `epoch_ms(try_strptime(${s}, ${lit(jodaToStrftime(format))}))`;
  }
  if (missing !== undefined) e = `coalesce(${e}, epoch_ms(TRY_CAST(${lit(missing)} AS TIMESTAMPTZ)))`;
  return e;
}

const TS = '__olap_ts';

/**
 * Reads input into temp table `olap_stage` (with parsed time `__olap_ts` and transforms applied), then rolls
 * it up into temp table `olap_rolled` (`__time`, dimensions, metrics, `__olap_seg` = segment bucket start).
 */
export async function buildBatch(
  conn: DuckDBConnection,
  spec: IngestionSpec,
  source: string,
  existing: ColumnInfo[] | undefined,
): Promise<BuiltBatch> {
  const ds = spec.dataSchema;
  return rollupFromRaw(conn, ds, source, spec.inputFormat.listDelimiter, existing);
}

export async function rawColumns(conn: DuckDBConnection, table: string): Promise<Map<string, string>> {
  const r = await conn.runAndReadAll(`DESCRIBE ${table}`);
  return new Map(r.getRowObjectsJS().map((row) => [String(row.column_name), String(row.column_type)]));
}

export async function rollupFromRaw(
  conn: DuckDBConnection,
  ds: DataSchema,
  source: string,
  listDelimiter: string | undefined,
  existing: ColumnInfo[] | undefined,
): Promise<BuiltBatch> {
  const raw = await rawColumns(conn, `SELECT * FROM ${source}`);
  const ts = ds.timestampSpec;
  let tsExpr = timestampSql(ts.column, raw.get(ts.column), ts.format, ts.missingValue);
  const rawResolve = (name: string) => {
    if (name === '__time') return tsExpr;
    const t = raw.get(name);
    if (t === undefined) return 'NULL';
    if (rawKind(t) === 'string' && t.toUpperCase() === 'BOOLEAN') return `CAST(${ident(name)} AS VARCHAR)`;
    if (t.toUpperCase() === 'HUGEINT') return `${ident(name)}::BIGINT`;
    return ident(name);
  };
  const replaces: string[] = [];
  const adds: string[] = [];
  ds.transforms.forEach((t, i) => {
    const sql = exprToSql(t.expression, rawResolve, `spec.dataSchema.transformSpec.transforms[${i}].expression`);
    if (t.name === '__time') tsExpr = `(${sql})::BIGINT`;
    else if (raw.has(t.name)) replaces.push(`${sql} AS ${ident(t.name)}`);
    else adds.push(`${sql} AS ${ident(t.name)}`);
  });
  const tsTime = (x: string) => `make_timestamp((${x}) * 1000)`;
  // Read only the columns the spec can touch (JSON readers then skip the rest); discovery needs all.
  const needed = neededColumns(ds);
  const projection = needed ? [...raw.keys()].filter((n) => needed.has(n)).map(ident) : ['*'];
  if (projection.length === 0) projection.push('NULL AS __olap_none');
  await conn.run(
    `CREATE OR REPLACE TEMP TABLE olap_stage AS SELECT * ${replaces.length ? `REPLACE (${replaces.join(', ')})` : ''}${
      adds.length ? `, ${adds.join(', ')}` : ''
    }, ${tsExpr} AS ${TS} FROM (SELECT ${projection.join(', ')} FROM ${source})`,
  );
  const stage = await rawColumns(conn, 'olap_stage');
  const stageKind = (name: string): ColumnKind | undefined => {
    const t = stage.get(name);
    return t === undefined ? undefined : rawKind(t);
  };
  const existingBy = new Map((existing ?? []).map((c) => [c.name, c]));
  // Dimensions: declared, or discovered from the input columns.
  let dims = ds.dimensions.map((d) => ({ name: d.name, kind: d.type as ColumnKind }));
  if (ds.discovery) {
    const skip = new Set([
      ts.column,
      TS,
      '__time',
      ...ds.dimensionExclusions,
      ...ds.metrics.flatMap((m) => [m.fieldName ?? '', m.name, m.aggregator?.fieldName ?? '']),
    ]);
    dims = [...stage.keys()]
      .filter((n) => !skip.has(n))
      .map((n) => {
        const k = stageKind(n)!;
        if (!ds.useSchemaDiscovery) return { name: n, kind: (k === 'mv' ? 'mv' : 'string') as ColumnKind };
        return { name: n, kind: (k === 'time' ? 'string' : k) as ColumnKind };
      });
  }
  const dimCols: ColumnInfo[] = [];
  const dimSql: string[] = [];
  for (const d of dims) {
    const c = ident(d.name);
    const sk = stageKind(d.name);
    let kind: ColumnKind = d.kind;
    let sql: string;
    if (sk === undefined) sql = 'NULL';
    else if (kind === 'string' || kind === 'mv') {
      if (sk === 'mv') {
        kind = 'mv';
        sql = `list_transform(${c}, lambda x: CAST(x AS VARCHAR))`;
      } else if (sk === 'json') {
        kind = 'mv';
        sql = `CASE WHEN ${c} IS NULL THEN NULL WHEN json_type(${c}::JSON) = 'ARRAY' THEN from_json(${c}::JSON, '["VARCHAR"]') ELSE [${c}::JSON->>'$'] END`;
      } else if (listDelimiter !== undefined && listDelimiter !== '') {
        kind = 'mv';
        sql = `CASE WHEN ${c} IS NULL THEN NULL ELSE string_split(CAST(${c} AS VARCHAR), ${lit(listDelimiter)}) END`;
      } else {
        kind = 'string';
        sql = `CAST(${c} AS VARCHAR)`;
      }
    } else if (kind === 'long') sql = sk === 'double' ? `TRY_CAST(trunc(${c}) AS BIGINT)` : `TRY_CAST(${c} AS BIGINT)`;
    else if (kind === 'double') sql = `TRY_CAST(${c} AS DOUBLE)`;
    else if (kind === 'float') sql = `TRY_CAST(${c} AS FLOAT)`;
    else sql = `TRY_CAST(${c} AS JSON)`;
    const prev = existingBy.get(d.name);
    if (prev && prev.kind !== kind) {
      // Keep the datasource's existing column type; a multi-value column absorbs single strings.
      if (prev.kind === 'mv' && kind === 'string') sql = `CASE WHEN ${sql} IS NULL THEN NULL ELSE [${sql}] END`;
      else if (!(prev.kind === 'string' && kind === 'mv')) sql = `TRY_CAST(${sql} AS ${sqlTypeOf(prev.kind)})`;
      if (!(prev.kind === 'string' && kind === 'mv')) kind = prev.kind;
    }
    dimCols.push({ name: d.name, kind });
    dimSql.push(`${sql} AS ${c}`);
  }
  const stageCol = (name: string) => {
    if (name === '__time') return { sql: `${TS}`, col: { name, kind: 'time' as ColumnKind } };
    const k = stageKind(name);
    if (k === undefined) return { sql: 'NULL', col: undefined };
    const t = stage.get(name)!.toUpperCase();
    const sql =
      t === 'BOOLEAN' ? `CAST(${ident(name)} AS VARCHAR)` : t === 'HUGEINT' ? `${ident(name)}::BIGINT` : ident(name);
    return { sql, col: { name, kind: k === 'time' ? ('string' as ColumnKind) : k } };
  };
  const exprResolve = (name: string) => stageCol(name).sql;
  const filterCols = {
    column: stageCol,
    expr: (e: string, f: string) => exprToSql(e, exprResolve, f),
  };
  const ctx: AggContext = {
    input: (name) => stageCol(name),
    expr: (e, f) => exprToSql(e, exprResolve, f),
    filter: (flt, f) => filterSql(flt, filterCols, f),
    timeMs: TS,
  };
  const conds = [`${TS} IS NOT NULL`];
  if (ds.intervals?.length)
    conds.push(`(${ds.intervals.map((iv) => `(${TS} >= ${num(iv.start)} AND ${TS} < ${num(iv.end)})`).join(' OR ')})`);
  if (ds.transformFilter !== undefined)
    conds.push(filterSql(ds.transformFilter, filterCols, 'spec.dataSchema.transformSpec.filter'));
  const ok = conds.join(' AND ');
  const counts = (
    await conn.runAndReadAll(
      `SELECT count(*) AS total, count(*) FILTER (WHERE ${TS} IS NULL) AS unparseable, count(*) FILTER (WHERE NOT (${ok})) AS excluded FROM olap_stage`,
    )
  ).getRowObjectsJS()[0]!;
  const unparseable = Number(counts.unparseable);
  const thrownAway = Number(counts.excluded) - unparseable;
  const processed = Number(counts.total) - Number(counts.excluded);
  const metricCols = ds.metrics.map((m) => metricColumn(m));
  let segSql = bucketSql(ds.segmentGranularity, tsTime(TS));
  if (ds.segmentGranularity.kind === 'all' || ds.segmentGranularity.kind === 'none') segSql = '0::BIGINT';
  // queryGranularity all keeps one timestamp per segment: its start.
  const timeSql = `${tsTime(ds.queryGranularity.kind === 'all' ? segSql : bucketSql(ds.queryGranularity, tsTime(TS)))} AS "__time"`;
  let select: string;
  if (ds.rollup) {
    const metrics = ds.metrics.map(
      (m, i) => `${aggregateSql(m, ctx, 'ingest', `spec.dataSchema.metricsSpec[${i}]`).sql} AS ${ident(m.name)}`,
    );
    select = `SELECT ${[timeSql, ...dimSql, ...metrics, `${segSql} AS __olap_seg`].join(', ')} FROM olap_stage WHERE ${ok} GROUP BY ALL`;
  } else {
    const metrics = ds.metrics.map(
      (m, i) => `${rowMetricSql(m, ctx, `spec.dataSchema.metricsSpec[${i}]`)} AS ${ident(m.name)}`,
    );
    select = `SELECT ${[timeSql, ...dimSql, ...metrics, `${segSql} AS __olap_seg`].join(', ')} FROM olap_stage WHERE ${ok}`;
  }
  await conn.run(`CREATE OR REPLACE TEMP TABLE olap_rolled AS ${select}`);
  await conn.run('DROP TABLE olap_stage');
  const segRows = (
    await conn.runAndReadAll('SELECT __olap_seg AS s, count(*) AS n FROM olap_rolled GROUP BY 1 ORDER BY 1')
  ).getRowObjectsJS();
  const buckets = segRows.map((r) => {
    const start = Number(r.s);
    const sg = ds.segmentGranularity;
    const end = sg.kind === 'all' || sg.kind === 'none' ? 8.64e15 : (nextBucket(sg, start) ?? start + 86_400_000);
    return { seg: start, start: sg.kind === 'all' || sg.kind === 'none' ? -8.64e15 : start, end, rows: Number(r.n) };
  });
  return {
    columns: [...dimCols, ...metricCols],
    stats: { processed, processedWithError: 0, thrownAway, unparseable },
    buckets,
  };
}

function sqlTypeOf(kind: ColumnKind): string {
  const m: Partial<Record<ColumnKind, string>> = {
    string: 'VARCHAR',
    mv: 'VARCHAR[]',
    long: 'BIGINT',
    double: 'DOUBLE',
    float: 'FLOAT',
    json: 'JSON',
  };
  const t = m[kind];
  if (!t) throw new TributaryError('CONFLICT', `cannot convert a column to ${kind}`);
  return t;
}

/** Every input column name the spec may read, or undefined when dimensions are discovered (all). */
function neededColumns(ds: DataSchema): Set<string> | undefined {
  if (ds.discovery) return undefined;
  const out = new Set<string>([ds.timestampSpec.column, ...ds.dimensions.map((d) => d.name)]);
  const addAgg = (m: AggregatorSpec) => {
    if (m.fieldName) out.add(m.fieldName);
    for (const f of m.fieldNames ?? []) out.add(f);
    if (m.expression)
      for (const w of m.expression.match(/[A-Za-z_$][A-Za-z0-9_$.]*|"[^"]*"/g) ?? []) out.add(w.replaceAll('"', ''));
    if (m.filter) collectStrings(m.filter, out);
    if (m.aggregator) addAgg(m.aggregator);
  };
  ds.metrics.forEach(addAgg);
  for (const t of ds.transforms) {
    out.add(t.name);
    for (const w of t.expression.match(/[A-Za-z_$][A-Za-z0-9_$.]*|"[^"]*"/g) ?? []) out.add(w.replaceAll('"', ''));
  }
  if (ds.transformFilter !== undefined) collectStrings(ds.transformFilter, out);
  return out;
}

function collectStrings(v: unknown, out: Set<string>): void {
  if (typeof v === 'string') {
    out.add(v);
    for (const w of v.match(/[A-Za-z_$][A-Za-z0-9_$.]*|"[^"]*"/g) ?? []) out.add(w.replaceAll('"', ''));
  } else if (Array.isArray(v)) for (const x of v) collectStrings(x, out);
  else if (v && typeof v === 'object') for (const x of Object.values(v)) collectStrings(x, out);
}
