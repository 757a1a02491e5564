import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  BIGINT,
  BLOB,
  type DuckDBBlobValue,
  type DuckDBConnection,
  DuckDBInstance,
  DuckDBScalarFunction,
  type DuckDBType,
  INTEGER,
  VARCHAR,
} from '@duckdb/node-api';
import { TributaryError } from '../core/index.ts';
import { toBytes } from './conversions.ts';
import type { DataFile } from './manifest.ts';
import type { PartitionSpec } from './metadata.ts';
import { icebergHash, parseTransform, transformResultType } from './transforms.ts';
import {
  duckType,
  findField,
  type IcebergType,
  isPrimitive,
  type NestedField,
  parseDecimal,
  quoteIdent,
  quoteLiteral,
  type Schema,
  type StructType,
} from './types.ts';
import {
  compareInternal,
  fromDuck,
  parseDateString,
  parseDecimalValue,
  parseTimeString,
  parseTimestampString,
  type Row,
  toDuckJson,
} from './values.ts';

let instancePromise: Promise<DuckDBInstance> | undefined;

/** One in-process DuckDB for Parquet IO; each operation takes its own connection. */
export function duckInstance(): Promise<DuckDBInstance> {
  // no ICU extension here: TIMESTAMPTZ is handled as UTC, which is what Iceberg stores
  instancePromise ??= DuckDBInstance.create(':memory:');
  return instancePromise;
}

export async function withConnection<T>(fn: (c: DuckDBConnection) => Promise<T>): Promise<T> {
  const inst = await duckInstance();
  const c = await inst.connect();
  try {
    return await fn(c);
  } finally {
    c.closeSync();
  }
}

/** FIELD_IDS option value for a struct (DuckDB COPY ... FIELD_IDS). */
export function fieldIdsSql(s: StructType): string {
  const one = (f: NestedField): string => `${quoteIdent(f.name)}: ${typeIds(f.id, f.type)}`;
  return `{${s.fields.map(one).join(', ')}}`;
}
function typeIds(id: number, t: IcebergType): string {
  if (isPrimitive(t)) return String(id);
  if (t.type === 'struct')
    return `{__duckdb_field_id: ${id}, ${t.fields.map((f) => `${quoteIdent(f.name)}: ${typeIds(f.id, f.type)}`).join(', ')}}`;
  if (t.type === 'list') return `{__duckdb_field_id: ${id}, element: ${typeIds(t['element-id'], t.element)}}`;
  return `{__duckdb_field_id: ${id}, key: ${typeIds(t['key-id'], t.key)}, value: ${typeIds(t['value-id'], t.value)}}`;
}

/** SQL that turns an NDJSON file of toDuckJson values into typed columns. */
export function ndjsonSourceSql(file: string, fields: NestedField[]): string {
  const cols = fields.map(
    (f) => `${quoteLiteral(f.name)}: ${quoteLiteral(isBinary(f.type) ? 'VARCHAR' : duckType(f.type))}`,
  );
  const sel = fields.map((f) =>
    isBinary(f.type) ? `from_base64(${quoteIdent(f.name)}) AS ${quoteIdent(f.name)}` : quoteIdent(f.name),
  );
  return `SELECT ${sel.join(', ')} FROM read_json(${quoteLiteral(file)}, format='newline_delimited', columns={${cols.join(', ')}})`;
}
function isBinary(t: IcebergType): boolean {
  return typeof t === 'string' && (t === 'binary' || t.startsWith('fixed'));
}

/** Writes internal rows to a temp NDJSON file DuckDB can read; returns its path. */
export function rowsToTempNdjson(rows: Row[], fields: NestedField[]): string {
  const file = path.join(os.tmpdir(), `tributary-lake-${randomUUID()}.ndjson`);
  const lines: string[] = [];
  for (const r of rows) {
    const o: Row = {};
    for (const f of fields) o[f.name] = toDuckJson(f.type, r[f.name]);
    lines.push(JSON.stringify(o));
  }
  fs.writeFileSync(file, lines.length ? `${lines.join('\n')}\n` : '');
  return file;
}

interface StatAcc {
  valueCount: number;
  nullCount: number;
  size: number;
  min: unknown;
  max: unknown;
  noBounds: boolean;
}

/** Parses DuckDB's parquet_metadata stats_min/max_value text to an internal value. */
export function parseStat(t: IcebergType, s: string | null): unknown {
  if (s === null) return undefined;
  if (!isPrimitive(t)) return undefined;
  const dec = parseDecimal(t);
  if (dec) return parseDecimalValue(s, dec.scale);
  switch (t) {
    case 'boolean':
      return s === 'true' || s === '1';
    case 'int': {
      const n = Number(s);
      return Number.isInteger(n) ? n : undefined;
    }
    case 'long':
      return /^-?\d+$/.test(s) ? BigInt(s) : undefined;
    case 'float':
    case 'double': {
      const n = Number(s);
      return Number.isNaN(n) ? undefined : n;
    }
    case 'date':
      return parseDateString(s);
    case 'time':
      return parseTimeString(s);
    case 'timestamp':
    case 'timestamptz':
      return parseTimestampString(s);
    case 'string':
      return s.length <= 64 ? s : undefined;
    default:
      return undefined;
  }
}

/** Per-file Iceberg stats from Parquet footers (one DuckDB call for all files). */
export async function collectStats(
  c: DuckDBConnection,
  files: { local: string; dataFile: DataFile }[],
  schema: StructType,
): Promise<void> {
  if (files.length === 0) return;
  const list = `[${files.map((f) => quoteLiteral(f.local)).join(', ')}]`;
  const res = await c.runAndReadAll(
    `SELECT file_name, row_group_id, row_group_num_rows, path_in_schema, num_values, stats_null_count, stats_min_value, stats_max_value, total_compressed_size, min_is_exact, max_is_exact FROM parquet_metadata(${list})`,
  );
  const leaves = leafFields(schema);
  const byFile = new Map<string, { rows: Map<string, number>; cols: Map<string, StatAcc> }>();
  for (const r of res.getRowObjectsJS() as Record<string, unknown>[]) {
    const fname = r.file_name as string;
    let e = byFile.get(fname);
    if (!e) {
      e = { rows: new Map(), cols: new Map() };
      byFile.set(fname, e);
    }
    e.rows.set(String(r.row_group_id), Number(r.row_group_num_rows));
    const colPath = r.path_in_schema as string;
    const leaf = leaves.get(colPath);
    if (!leaf) continue;
    const field = leaf.field;
    let acc = e.cols.get(colPath);
    if (!acc) {
      acc = { valueCount: 0, nullCount: 0, size: 0, min: undefined, max: undefined, noBounds: false };
      e.cols.set(colPath, acc);
    }
    acc.valueCount += Number(r.num_values);
    acc.nullCount += Number(r.stats_null_count ?? 0);
    acc.size += Number(r.total_compressed_size ?? 0);
    const mn = parseStat(field.type, r.stats_min_value as string | null);
    const mx = parseStat(field.type, r.stats_max_value as string | null);
    const rowsInGroup = Number(r.row_group_num_rows);
    const allNull = Number(r.stats_null_count ?? 0) === rowsInGroup;
    if (!allNull && (mn === undefined || mx === undefined || r.min_is_exact === false || r.max_is_exact === false))
      acc.noBounds = true;
    if (mn !== undefined && (acc.min === undefined || compareInternal(mn, acc.min) < 0)) acc.min = mn;
    if (mx !== undefined && (acc.max === undefined || compareInternal(mx, acc.max) > 0)) acc.max = mx;
  }
  for (const f of files) {
    const e = byFile.get(f.local);
    if (!e) throw new TributaryError('INTERNAL', `parquet_metadata returned nothing for ${f.local}`);
    const df = f.dataFile;
    df.recordCount = [...e.rows.values()].reduce((a, b) => a + b, 0);
    df.columnSizes = new Map();
    df.valueCounts = new Map();
    df.nullValueCounts = new Map();
    df.lowerBounds = new Map();
    df.upperBounds = new Map();
    for (const [name, acc] of e.cols) {
      const leaf = leaves.get(name) as { field: NestedField; repeated: boolean };
      const field = leaf.field;
      df.columnSizes.set(field.id, acc.size);
      df.valueCounts.set(field.id, acc.valueCount);
      df.nullValueCounts.set(field.id, acc.nullCount);
      // bounds only for non-repeated leaves (list elements and map entries have no row-level bounds)
      if (!leaf.repeated && !acc.noBounds && acc.min !== undefined && acc.max !== undefined) {
        df.lowerBounds.set(field.id, toBytes(field.type, acc.min));
        df.upperBounds.set(field.id, toBytes(field.type, acc.max));
      }
    }
  }
}

/** Parquet leaf column paths (as parquet_metadata prints them) -> Iceberg fields. */
function leafFields(schema: StructType): Map<string, { field: NestedField; repeated: boolean }> {
  const out = new Map<string, { field: NestedField; repeated: boolean }>();
  const walk = (prefix: string, f: NestedField, repeated: boolean): void => {
    const p = prefix ? `${prefix}, ${f.name}` : f.name;
    const t = f.type;
    if (isPrimitive(t)) out.set(p, { field: f, repeated });
    else if (t.type === 'struct') for (const c of t.fields) walk(p, c, repeated);
    else if (t.type === 'list')
      walk(
        `${p}, list`,
        { id: t['element-id'], name: 'element', required: t['element-required'], type: t.element },
        true,
      );
    else {
      walk(`${p}, key_value`, { id: t['key-id'], name: 'key', required: true, type: t.key }, true);
      walk(`${p}, key_value`, { id: t['value-id'], name: 'value', required: t['value-required'], type: t.value }, true);
    }
  };
  for (const f of schema.fields) walk('', f, false);
  return out;
}

/** SQL expression computing a partition transform in DuckDB (bucket through the JS murmur3 UDFs). */
export function transformSql(transform: string, rawCol: string, type: IcebergType): string {
  const t = parseTransform(transform);
  // without ICU, calendar functions need plain TIMESTAMP (UTC for timestamptz)
  const col =
    type === 'timestamptz' && t.kind !== 'identity' && t.kind !== 'bucket' ? `CAST(${rawCol} AS TIMESTAMP)` : rawCol;
  switch (t.kind) {
    case 'identity':
      return col;
    case 'void':
      return `CAST(NULL AS ${duckType(type)})`;
    case 'year':
      return `(year(${col}) - 1970)`;
    case 'month':
      return `((year(${col}) - 1970) * 12 + month(${col}) - 1)`;
    case 'day':
      return `CAST(${col} AS DATE)`;
    case 'hour':
      return `CAST(floor(epoch_us(${col}) / 3600000000.0) AS INTEGER)`;
    case 'truncate': {
      if (type === 'int' || type === 'long') return `(${col} - (((${col} % ${t.w}) + ${t.w}) % ${t.w}))`;
      if (type === 'string') return `left(${col}, ${t.w})`;
      throw new TributaryError('UNSUPPORTED', `writing truncate partitions of ${String(type)}`);
    }
    case 'bucket': {
      if (type === 'int' || type === 'long') return `iceberg_bucket_long(CAST(${col} AS BIGINT), ${t.n})`;
      if (type === 'date')
        return `iceberg_bucket_long(CAST(datediff('day', DATE '1970-01-01', ${col}) AS BIGINT), ${t.n})`;
      if (type === 'timestamp' || type === 'timestamptz') return `iceberg_bucket_long(epoch_us(${col}), ${t.n})`;
      if (type === 'time') return `iceberg_bucket_long(datediff('microsecond', TIME '00:00:00', ${col}), ${t.n})`;
      if (type === 'string') return `iceberg_bucket_str(${col}, ${t.n})`;
      if (type === 'uuid') return `iceberg_bucket_uuid(CAST(${col} AS VARCHAR), ${t.n})`;
      if (type === 'binary' || (typeof type === 'string' && type.startsWith('fixed')))
        return `iceberg_bucket_bin(${col}, ${t.n})`;
      const dec = typeof type === 'string' ? parseDecimal(type) : undefined;
      if (dec)
        return `iceberg_bucket_dec(CAST(CAST(${col} * ${10n ** BigInt(dec.scale)} AS HUGEINT) AS VARCHAR), ${t.n})`;
      throw new TributaryError('UNSUPPORTED', `bucket of ${String(type)}`);
    }
  }
}

const registered = new WeakSet<DuckDBConnection>();
/** Registers the murmur3 bucket UDFs (Iceberg's bucket hash has no DuckDB built-in). */
export function registerBucketFunctions(c: DuckDBConnection): void {
  if (registered.has(c)) return;
  registered.add(c);
  const mk = (name: string, param: DuckDBType, hash: (v: unknown) => number): void => {
    c.registerScalarFunction(
      DuckDBScalarFunction.create({
        name,
        returnType: INTEGER,
        parameterTypes: [param, INTEGER],
        mainFunction: (_info, input, output) => {
          const v0 = input.getColumnVector(0);
          const v1 = input.getColumnVector(1);
          for (let i = 0; i < input.rowCount; i++) {
            const v = v0.getItem(i);
            const n = v1.getItem(i) as number;
            output.setItem(i, v === null ? null : (hash(v) & 0x7fffffff) % n);
          }
          output.flush();
        },
      }),
    );
  };
  mk('iceberg_bucket_long', BIGINT, (v) => icebergHash('long', v as bigint));
  mk('iceberg_bucket_str', VARCHAR, (v) => icebergHash('string', v as string));
  mk('iceberg_bucket_uuid', VARCHAR, (v) => icebergHash('uuid', v as string));
  mk('iceberg_bucket_dec', VARCHAR, (v) => icebergHash('decimal(38,0)', BigInt(v as string)));
  mk('iceberg_bucket_bin', BLOB, (v) => icebergHash('binary', (v as DuckDBBlobValue).bytes));
}

export interface WriteOptions {
  /** A DuckDB SELECT producing the schema's columns (by name, already of the schema's types). */
  sourceSql: string;
  schema: Schema;
  spec: PartitionSpec;
  /** Table location as stored in metadata (paths written into manifests are under it). */
  location: string;
  /** Local directory for the table location. */
  localLocation: string;
  content?: 0 | 1 | 2;
  equalityIds?: number[];
  /** Schema of the written files when it differs from `schema` (delete files). */
  fileSchema?: StructType;
  sortSql?: string;
}

/**
 * Writes the source rows as Parquet data files with Iceberg field ids, one directory per write and
 * one partition per sub-directory, and returns their DataFile entries with stats.
 */
export async function writeParquetFiles(c: DuckDBConnection, opts: WriteOptions): Promise<DataFile[]> {
  const writeId = randomUUID();
  const relDir = `data/${writeId.slice(0, 8)}-${Date.now().toString(36)}`;
  const localDir = path.join(opts.localLocation, relDir);
  const fileSchema = opts.fileSchema ?? opts.schema;
  const cols = fileSchema.fields.map((f) => quoteIdent(f.name)).join(', ');
  const view = `src_${writeId.replaceAll('-', '')}`;
  await c.run(`CREATE OR REPLACE TEMP VIEW ${view} AS ${opts.sourceSql}`);
  // iceberg.schema in the footer, as Java's writers do: readers that map names by it (icebird) follow renames
  const icebergSchema = JSON.stringify({
    type: 'struct',
    'schema-id': (fileSchema as Schema)['schema-id'] ?? 0,
    fields: fileSchema.fields,
  });
  const fileOpts = `FORMAT parquet, COMPRESSION zstd, FIELD_IDS ${fieldIdsSql(fileSchema)}, KV_METADATA {"iceberg.schema": ${quoteLiteral(icebergSchema)}}`;
  const order = opts.sortSql ? ` ORDER BY ${opts.sortSql}` : '';
  const out: { local: string; dataFile: DataFile }[] = [];
  const dropViews: string[] = [view];
  let resetOrder = false;
  try {
    if (opts.spec.fields.length === 0) {
      // one pass: COPY reports how many rows it wrote, and an empty file is removed again
      fs.mkdirSync(localDir, { recursive: true });
      const local = path.join(localDir, `${writeId}.parquet`);
      const copied = await c.runAndReadAll(
        `COPY (SELECT ${cols} FROM ${view}${order}) TO ${quoteLiteral(local)} (${fileOpts})`,
      );
      if (Number(copied.getRows()[0]?.[0] ?? 0) > 0)
        out.push({ local, dataFile: blankFile(`${opts.location}/${relDir}/${writeId}.parquet`, [], opts) });
      else fs.rmSync(localDir, { recursive: true, force: true });
    } else {
      registerBucketFunctions(c);
      // row order inside a data file carries no meaning unless a sort order asks for one; letting
      // DuckDB drop it speeds up its partitioned writer
      if (!opts.sortSql) {
        await c.run('SET preserve_insertion_order = false');
        resetOrder = true;
      }
      const resultTypes: IcebergType[] = [];
      const exprs = opts.spec.fields.map((pf) => {
        const src = findField(opts.schema, pf['source-id']);
        if (!src)
          throw new TributaryError(
            'INVALID_ARGUMENT',
            `partition field ${pf.name}: source id ${pf['source-id']} not in schema`,
          );
        resultTypes.push(transformResultType(parseTransform(pf.transform), src.type));
        return transformSql(pf.transform, quoteIdent(src.name), src.type);
      });
      const pn = exprs.map((_, i) => `__p${i}`);
      const sel = `SELECT ${cols}, ${exprs.map((e, i) => `${e} AS __p${i}`).join(', ')} FROM ${view}`;
      fs.mkdirSync(localDir, { recursive: true });
      const simple = resultTypes.every((t) => t === 'int' || t === 'long' || t === 'date');
      if (simple) {
        // one pass: DuckDB partitions by the values themselves; ints and dates read back exactly from the names
        await c.run(
          `COPY (${sel}${order}) TO ${quoteLiteral(localDir)} (${fileOpts}, PARTITION_BY (${pn.join(', ')}), WRITE_PARTITION_COLUMNS false, FILENAME_PATTERN 'data_{uuid}', OVERWRITE_OR_IGNORE true)`,
        );
        for (const file of listParquet(localDir)) {
          const rel = path.relative(localDir, file);
          const segs = rel.split(path.sep).slice(0, -1);
          const tuple = resultTypes.map((t, i) => {
            const seg = segs.find((x) => x.startsWith(`__p${i}=`));
            const raw = seg === undefined ? null : decodeURIComponent(seg.slice(`__p${i}=`.length));
            if (raw === null || raw === 'NULL' || raw === '__HIVE_DEFAULT_PARTITION__') return null;
            if (t === 'date') return parseDateString(raw) ?? null;
            return t === 'long' ? BigInt(raw) : Number(raw);
          });
          out.push({
            local: file,
            dataFile: blankFile(`${opts.location}/${relDir}/${rel.split(path.sep).join('/')}`, tuple, opts),
          });
        }
      } else {
        // exact tuples for any type: number the distinct tuples, partition by that number
        const pview = `${view}_p`;
        const mapTable = `${view}_m`;
        dropViews.push(pview);
        await c.run(`CREATE OR REPLACE TEMP VIEW ${pview} AS ${sel}`);
        await c.run(
          `CREATE OR REPLACE TEMP TABLE ${mapTable} AS SELECT ${pn.join(', ')}, CAST(row_number() OVER () - 1 AS INTEGER) AS __pid FROM (SELECT DISTINCT ${pn.join(', ')} FROM ${pview})`,
        );
        const tuples: unknown[][] = [];
        for (const row of (await c.runAndReadAll(`SELECT * FROM ${mapTable}`)).getRows()) {
          tuples[Number(row[pn.length])] = resultTypes.map((t, i) => fromDuck(t, row[i]));
        }
        const on = pn.map((p) => `${pview}.${p} IS NOT DISTINCT FROM ${mapTable}.${p}`).join(' AND ');
        const sel2 = fileSchema.fields.map((f) => `${pview}.${quoteIdent(f.name)}`).join(', ');
        await c.run(
          `COPY (SELECT ${sel2}, ${mapTable}.__pid FROM ${pview} JOIN ${mapTable} ON ${on}${order}) TO ${quoteLiteral(localDir)} (${fileOpts}, PARTITION_BY (__pid), WRITE_PARTITION_COLUMNS false, FILENAME_PATTERN 'data_{uuid}', OVERWRITE_OR_IGNORE true)`,
        );
        await c.run(`DROP TABLE IF EXISTS ${mapTable}`);
        for (const file of listParquet(localDir)) {
          const rel = path.relative(localDir, file);
          const m = /__pid=(\d+)/.exec(rel);
          if (!m) continue;
          out.push({
            local: file,
            dataFile: blankFile(
              `${opts.location}/${relDir}/${rel.split(path.sep).join('/')}`,
              tuples[Number(m[1])] as unknown[],
              opts,
            ),
          });
        }
      }
    }
  } finally {
    if (resetOrder) await c.run('SET preserve_insertion_order = true');
    for (const v of dropViews.reverse()) await c.run(`DROP VIEW IF EXISTS ${v}`);
  }
  for (const f of out) f.dataFile.fileSizeInBytes = fs.statSync(f.local).size;
  await collectStats(c, out, fileSchema);
  return out.map((f) => f.dataFile);
}

function listParquet(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[])
    .filter((f) => f.endsWith('.parquet'))
    .map((f) => path.join(dir, f));
}

function blankFile(filePath: string, partition: unknown[], opts: WriteOptions): DataFile {
  const df: DataFile = {
    content: opts.content ?? 0,
    filePath,
    fileFormat: 'PARQUET',
    partition,
    recordCount: 0,
    fileSizeInBytes: 0,
  };
  if (opts.equalityIds) df.equalityIds = opts.equalityIds;
  return df;
}

export interface ReadColumn {
  id: number;
  type: IcebergType;
  /** JSON single-value `initial-default`: the value for files written before the column existed. */
  initialDefault?: unknown;
}

function defaultSql(col: ReadColumn): string {
  const v = col.initialDefault;
  if (v === undefined || v === null || !isPrimitive(col.type)) return 'NULL';
  const lit = typeof v === 'string' ? quoteLiteral(v) : typeof v === 'boolean' ? (v ? 'TRUE' : 'FALSE') : String(v);
  return `CAST(${lit} AS ${duckType(col.type)})`;
}

/**
 * Reads a Parquet data file projecting columns by Iceberg field id (renamed and reordered columns
 * read right; ids absent from the file read as null). Rows are keyed `f<id>`, internal values,
 * plus `__pos` (the row position) when asked.
 */
export async function readParquetById(
  c: DuckDBConnection,
  local: string,
  columns: ReadColumn[],
  withPos: boolean,
  /** A DuckDB predicate over the `f<id>` columns (pushed-down filter; the caller re-checks rows). */
  where?: string,
): Promise<Row[]> {
  const entries = columns.map(
    (col) =>
      `${col.id}: {name: ${quoteLiteral(`f${col.id}`)}, type: ${quoteLiteral(duckType(col.type))}, default_value: ${defaultSql(col)}}`,
  );
  // DuckDB needs at least one column in the schema map; a dummy id that no file uses
  if (entries.length === 0) entries.push(`2147483000: {name: '__none', type: 'INTEGER', default_value: NULL}`);
  const sel = [...columns.map((col) => `f${col.id}`), ...(withPos ? ['file_row_number AS __pos'] : [])];
  const sql = `SELECT ${sel.length ? sel.join(', ') : '1 AS __one'} FROM read_parquet(${quoteLiteral(local)}, schema = MAP {${entries.join(', ')}}${withPos ? ', file_row_number = true' : ''})${where ? ` WHERE ${where}` : ''}`;
  const res = await c.runAndReadAll(sql);
  const names = res.columnNames();
  const rows: Row[] = [];
  const types = new Map(columns.map((col) => [`f${col.id}`, col.type]));
  for (const r of res.getRows()) {
    const o: Row = {};
    for (let i = 0; i < names.length; i++) {
      const n = names[i] as string;
      if (n === '__pos') o.__pos = Number(r[i] as bigint);
      else if (n === '__one') continue;
      else o[n] = fromDuck(types.get(n) as IcebergType, r[i]);
    }
    rows.push(o);
  }
  return rows;
}

/**
 * Reads a Parquet file that has no field ids (files added from elsewhere), resolving columns through the
 * table's name mapping: `names` lists the names a field id may carry in the file.
 */
export async function readParquetByNames(
  c: DuckDBConnection,
  local: string,
  columns: (ReadColumn & { names: string[] })[],
  withPos: boolean,
): Promise<Row[]> {
  const desc = await c.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet(${quoteLiteral(local)})`);
  const present = new Set(desc.getRows().map((r) => String(r[0])));
  const sel = columns.map((col) => {
    const name = col.names.find((n) => present.has(n));
    return name === undefined
      ? `${defaultSql(col)} AS f${col.id}`
      : `TRY_CAST(${quoteIdent(name)} AS ${duckType(col.type)}) AS f${col.id}`;
  });
  if (withPos) sel.push('file_row_number AS __pos');
  if (sel.length === 0) sel.push('1 AS __one');
  const res = await c.runAndReadAll(
    `SELECT ${sel.join(', ')} FROM read_parquet(${quoteLiteral(local)}${withPos ? ', file_row_number = true' : ''})`,
  );
  const names = res.columnNames();
  const types = new Map(columns.map((col) => [`f${col.id}`, col.type]));
  return res.getRows().map((r) => {
    const o: Row = {};
    names.forEach((n, i) => {
      if (n === '__pos') o.__pos = Number(r[i] as bigint);
      else if (n !== '__one') o[n] = fromDuck(types.get(n) as IcebergType, r[i]);
    });
    return o;
  });
}

/** Reads a whole Parquet file by column name (delete files, raw inspection). */
export async function readParquetRaw(c: DuckDBConnection, local: string): Promise<Record<string, unknown>[]> {
  const res = await c.runAndReadAll(`SELECT * FROM read_parquet(${quoteLiteral(local)})`);
  return res.getRowObjects() as Record<string, unknown>[];
}

/** Field id -> column name for a Parquet file (top level). */
export async function parquetFieldIds(c: DuckDBConnection, local: string): Promise<Map<number, string>> {
  const res = await c.runAndReadAll(
    `SELECT name, field_id FROM parquet_schema(${quoteLiteral(local)}) WHERE field_id IS NOT NULL`,
  );
  const m = new Map<number, string>();
  for (const [name, id] of res.getRows()) m.set(Number(id), String(name));
  return m;
}
