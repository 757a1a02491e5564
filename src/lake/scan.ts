import * as fs from 'node:fs';
import type { DuckDBConnection } from '@duckdb/node-api';
import { invalidArgument, TributaryError } from '../core/index.ts';
import {
  ndjsonSourceSql,
  parquetFieldIds,
  readParquetById,
  readParquetByNames,
  rowsToTempNdjson,
  withConnection,
} from './duck.ts';
import {
  type Bound,
  bindExpr,
  type Expr,
  evalExpr,
  exprFieldIds,
  fileMightMatch,
  manifestMightMatch,
  parseExpr,
  partitionMightMatch,
  pushNot,
} from './expr.ts';
import type { FileIO } from './io.ts';
import { type DataFile, type ManifestEntry, type ManifestFile, readManifest, readManifestList } from './manifest.ts';
import {
  currentSchema,
  partitionType,
  type Snapshot,
  schemaById,
  snapshotById,
  specById,
  type TableMetadata,
} from './metadata.ts';
import { parseTransform } from './transforms.ts';
import {
  duckType,
  findField,
  type IcebergType,
  type NestedField,
  parseDecimal,
  quoteIdent,
  quoteLiteral,
  type Schema,
} from './types.ts';
import { internalKey, parseTimestampString, type Row, toPublic } from './values.ts';

export interface SnapshotSelector {
  snapshotId?: bigint;
  /** Epoch ms or an ISO timestamp: the snapshot current at that time. */
  asOf?: number | string | Date;
  /** A branch or tag name. */
  ref?: string;
}

export interface ScanOptions extends SnapshotSelector {
  filter?: Expr | string;
  /** Column names (of the scanned schema) to return; all by default. */
  columns?: string[];
  limit?: number;
}

/** Resolves which snapshot a read sees (undefined: the table has no snapshot). */
export function selectSnapshot(md: TableMetadata, sel: SnapshotSelector = {}): Snapshot | undefined {
  if (sel.snapshotId !== undefined) {
    const s = snapshotById(md, BigInt(sel.snapshotId));
    if (!s)
      throw new TributaryError(
        'NOT_FOUND',
        `snapshot ${sel.snapshotId} does not exist (known: ${md.snapshots.map((x) => x['snapshot-id']).join(', ') || 'none'})`,
      );
    return s;
  }
  if (sel.ref !== undefined) {
    const r = md.refs[sel.ref];
    if (!r)
      throw new TributaryError(
        'NOT_FOUND',
        `branch or tag ${JSON.stringify(sel.ref)} does not exist (known: ${Object.keys(md.refs).join(', ') || 'none'})`,
      );
    return snapshotById(md, r['snapshot-id']);
  }
  if (sel.asOf !== undefined) {
    const ms = asOfMs(sel.asOf);
    let best: { 'snapshot-id': bigint; 'timestamp-ms': number } | undefined;
    const log = md['snapshot-log'].length
      ? md['snapshot-log']
      : md.snapshots.map((s) => ({ 'snapshot-id': s['snapshot-id'], 'timestamp-ms': s['timestamp-ms'] }));
    for (const e of log) if (e['timestamp-ms'] <= ms && (!best || e['timestamp-ms'] >= best['timestamp-ms'])) best = e;
    if (!best) throw new TributaryError('NOT_FOUND', `no snapshot at or before ${new Date(ms).toISOString()}`);
    return snapshotById(md, best['snapshot-id']);
  }
  const cur = md['current-snapshot-id'];
  return cur === undefined ? undefined : snapshotById(md, cur);
}

function asOfMs(v: number | string | Date): number {
  if (v instanceof Date) return v.getTime();
  if (typeof v === 'number') return v;
  const micros = parseTimestampString(v);
  if (micros === undefined) throw invalidArgument('as-of', 'a snapshot id, epoch ms or ISO timestamp', v);
  return Number(micros / 1000n);
}

export interface FileTask {
  file: DataFile;
  specId: number;
  sequenceNumber: number;
  deletes: DeleteTask[];
}
export interface DeleteTask {
  file: DataFile;
  specId: number;
  sequenceNumber: number;
}

export interface ScanPlan {
  snapshot: Snapshot | undefined;
  schema: Schema;
  tasks: FileTask[];
  /** Data files considered before pruning (for pruning diagnostics). */
  totalDataFiles: number;
  /** Manifests read, of all in the snapshot (manifest-list partition summaries prune the rest). */
  manifestsScanned: number;
  manifestsTotal: number;
  bound: Bound | undefined;
}

export async function readSnapshotManifests(_md: TableMetadata, io: FileIO, snap: Snapshot): Promise<ManifestFile[]> {
  return readManifestList(io.read(snap['manifest-list']), snap['manifest-list']);
}

/** Every live entry (status != DELETED) of a snapshot. */
export async function liveEntries(
  md: TableMetadata,
  io: FileIO,
  snap: Snapshot,
  keepManifest?: (m: ManifestFile) => boolean,
): Promise<{ manifest: ManifestFile; entry: ManifestEntry }[]> {
  const manifests = await readSnapshotManifests(md, io, snap);
  const out: { manifest: ManifestFile; entry: ManifestEntry }[] = [];
  for (const m of manifests) {
    if (keepManifest && !keepManifest(m)) continue;
    const spec = specById(md, m.partitionSpecId);
    const entries = await readManifest(io.read(m.manifestPath), {
      manifest: m,
      partitionFields: partitionType(spec, md.schemas),
    });
    for (const e of entries) if (e.status !== 2) out.push({ manifest: m, entry: e });
  }
  return out;
}

/** Plans a scan: picks data files (partition and min/max pruning) and the delete files that apply to each. */
export async function planScan(md: TableMetadata, io: FileIO, opts: ScanOptions = {}): Promise<ScanPlan> {
  const snap = selectSnapshot(md, opts);
  const timeTravel =
    opts.snapshotId !== undefined ||
    opts.asOf !== undefined ||
    (opts.ref !== undefined && md.refs[opts.ref]?.type === 'tag');
  const schema = timeTravel && snap ? schemaById(md, snap['schema-id']) : currentSchema(md);
  const filter = typeof opts.filter === 'string' ? parseExpr(opts.filter) : opts.filter;
  const bound = filter ? bindExpr(filter, schema) : undefined;
  const pruning = bound ? pushNot(bound) : undefined;
  if (!snap)
    return { snapshot: undefined, schema, tasks: [], totalDataFiles: 0, manifestsScanned: 0, manifestsTotal: 0, bound };
  let manifestsTotal = 0;
  let manifestsScanned = 0;
  let skippedFiles = 0;
  const entries = await liveEntries(md, io, snap, (m) => {
    manifestsTotal++;
    if (pruning && m.content === 0) {
      const spec = specById(md, m.partitionSpecId);
      if (!manifestMightMatch(pruning, spec, m.partitions, partitionType(spec, md.schemas))) {
        skippedFiles += m.addedFilesCount + m.existingFilesCount;
        return false;
      }
    }
    manifestsScanned++;
    return true;
  });
  const data: FileTask[] = [];
  const posDeletes: DeleteTask[] = [];
  const eqDeletes: DeleteTask[] = [];
  let total = 0;
  for (const { manifest, entry } of entries) {
    const f = entry.dataFile;
    if (f.content === 0) {
      total++;
      if (pruning) {
        const spec = specById(md, manifest.partitionSpecId);
        if (!partitionMightMatch(pruning, spec, f.partition, schema)) continue;
        if (!fileMightMatch(pruning, f)) continue;
      }
      data.push({ file: f, specId: manifest.partitionSpecId, sequenceNumber: entry.sequenceNumber, deletes: [] });
    } else {
      const t = { file: f, specId: manifest.partitionSpecId, sequenceNumber: entry.sequenceNumber };
      (f.content === 1 ? posDeletes : eqDeletes).push(t);
    }
  }
  for (const task of data) {
    for (const d of posDeletes) {
      if (d.sequenceNumber < task.sequenceNumber) continue;
      if (d.file.referencedDataFile !== undefined && d.file.referencedDataFile !== task.file.filePath) continue;
      if (d.specId === task.specId && !samePartition(d.file.partition, task.file.partition)) continue;
      task.deletes.push(d);
    }
    for (const d of eqDeletes) {
      if (d.sequenceNumber <= task.sequenceNumber) continue;
      const dspec = specById(md, d.specId);
      if (
        dspec.fields.length > 0 &&
        (d.specId !== task.specId || !samePartition(d.file.partition, task.file.partition))
      )
        continue;
      task.deletes.push(d);
    }
  }
  return {
    snapshot: snap,
    schema,
    tasks: data,
    totalDataFiles: total + skippedFiles,
    manifestsScanned,
    manifestsTotal,
    bound,
  };
}

function samePartition(a: unknown[], b: unknown[]): boolean {
  return a.length === b.length && a.every((v, i) => internalKey(v) === internalKey(b[i]));
}

export interface ScanResult {
  schema: Schema;
  snapshot: Snapshot | undefined;
  rows: Row[];
  /** Data files read (after pruning) and considered. */
  filesScanned: number;
  filesTotal: number;
  manifestsScanned: number;
  manifestsTotal: number;
}

/** Reads matching rows as public values keyed by column name. */
export async function scanTable(md: TableMetadata, io: FileIO, opts: ScanOptions = {}): Promise<ScanResult> {
  const plan = await planScan(md, io, opts);
  const schema = plan.schema;
  const wanted = opts.columns ?? schema.fields.map((f) => f.name);
  const outFields = wanted.map((n) => {
    const f = schema.fields.find((x) => x.name === n);
    if (!f)
      throw invalidArgument('columns', `columns of the table (${schema.fields.map((x) => x.name).join(', ')})`, n);
    return f;
  });
  const rows: Row[] = [];
  await withConnection(async (c) => {
    const posCache = new Map<string, Map<string, Set<number>>>();
    const eqCache = new Map<string, { ids: number[]; keys: Set<string> }>();
    for (const task of plan.tasks) {
      if (opts.limit !== undefined && rows.length >= opts.limit) break;
      const internal = await readTaskRows(c, md, io, task, schema, outFields, plan.bound, posCache, eqCache);
      for (const r of internal) {
        if (opts.limit !== undefined && rows.length >= opts.limit) break;
        const o: Row = {};
        for (const f of outFields) o[f.name] = toPublic(f.type, r[`f${f.id}`]);
        rows.push(o);
      }
    }
  });
  return {
    schema,
    snapshot: plan.snapshot,
    rows,
    filesScanned: plan.tasks.length,
    filesTotal: plan.totalDataFiles,
    manifestsScanned: plan.manifestsScanned,
    manifestsTotal: plan.manifestsTotal,
  };
}

/**
 * Reads one data file's live rows (internal values keyed `f<id>`, plus `__pos`): projects by field id,
 * fills identity partition columns from the partition tuple, applies deletes and the residual filter.
 */
export async function readTaskRows(
  c: DuckDBConnection,
  md: TableMetadata,
  io: FileIO,
  task: FileTask,
  schema: Schema,
  outFields: NestedField[],
  bound: Bound | undefined,
  posCache: Map<string, Map<string, Set<number>>> = new Map(),
  eqCache: Map<string, { ids: number[]; keys: Set<string> }> = new Map(),
): Promise<Row[]> {
  const need = new Map<number, NestedField>();
  for (const f of outFields) need.set(f.id, f);
  if (bound) for (const id of exprFieldIds(bound)) need.set(id, findField(schema, id) as NestedField);
  const eqs: { ids: number[]; keys: Set<string> }[] = [];
  const positions: Set<number>[] = [];
  for (const d of task.deletes) {
    if (d.file.content === 1) {
      let m = posCache.get(d.file.filePath);
      if (!m) {
        m = new Map();
        const rows = await readParquetById(
          c,
          io.resolve(d.file.filePath),
          [
            { id: 2147483546, type: 'string' },
            { id: 2147483545, type: 'long' },
          ],
          false,
        );
        for (const r of rows) {
          const p = r.f2147483546 as string;
          let s = m.get(p);
          if (!s) {
            s = new Set();
            m.set(p, s);
          }
          s.add(Number(r.f2147483545 as bigint));
        }
        posCache.set(d.file.filePath, m);
      }
      const s = m.get(task.file.filePath);
      if (s) positions.push(s);
    } else {
      let e = eqCache.get(d.file.filePath);
      if (!e) {
        const ids = d.file.equalityIds ?? [];
        const cols = ids.map((id) => {
          const f = findField(schema, id) ?? md.schemas.map((s) => findField(s, id)).find((x) => x);
          if (!f)
            throw new TributaryError(
              'CORRUPT_DATA',
              `equality delete ${d.file.filePath}: field ${id} not in any schema`,
            );
          return { id, type: f.type };
        });
        const rows = await readParquetById(c, io.resolve(d.file.filePath), cols, false);
        e = { ids, keys: new Set(rows.map((r) => ids.map((id) => internalKey(r[`f${id}`])).join('\u0000'))) };
        eqCache.set(d.file.filePath, e);
      }
      for (const id of e.ids)
        if (!need.has(id))
          need.set(id, (findField(schema, id) ?? { id, name: '', required: false, type: 'string' }) as NestedField);
      eqs.push(e);
    }
  }
  const spec = specById(md, task.specId);
  const columns = [...need.values()].map((f) => ({
    id: f.id,
    type: f.type,
    ...(f['initial-default'] !== undefined ? { initialDefault: f['initial-default'] } : {}),
  }));
  // push the filter into DuckDB, except on identity-partition columns (files may omit them and they
  // are filled in below); matching rows are still checked here, so the pushdown only has to be inclusive
  const filled = new Set(
    spec.fields.filter((pf) => parseTransform(pf.transform).kind === 'identity').map((pf) => pf['source-id']),
  );
  const where = bound ? boundToSql(bound, filled) : undefined;
  const local = io.resolve(task.file.filePath);
  const mapping = md.properties['schema.name-mapping.default'];
  // files without field ids (added from elsewhere) resolve columns through the name mapping
  const rows =
    mapping !== undefined && (await parquetFieldIds(c, local)).size === 0
      ? await readParquetByNames(
          c,
          local,
          columns.map((col) => ({ ...col, names: namesFor(mapping, col.id) })),
          positions.length > 0,
        )
      : await readParquetById(c, local, columns, positions.length > 0, where);
  // identity partition values equal the column for every row of the file; fill them (files may omit them)
  const fills: { id: number; value: unknown }[] = [];
  spec.fields.forEach((pf, i) => {
    if (parseTransform(pf.transform).kind === 'identity' && need.has(pf['source-id']))
      fills.push({ id: pf['source-id'], value: task.file.partition[i] });
  });
  const out: Row[] = [];
  for (const r of rows) {
    for (const fill of fills) {
      const f = need.get(fill.id) as NestedField;
      r[`f${fill.id}`] = coercePartition(f, fill.value);
    }
    if (positions.length && positions.some((s) => s.has(r.__pos as number))) continue;
    if (eqs.length && eqs.some((e) => e.keys.has(e.ids.map((id) => internalKey(r[`f${id}`])).join('\u0000')))) continue;
    if (bound && evalExpr(bound, r) !== true) continue;
    out.push(r);
  }
  return out;
}

interface MappedField {
  'field-id'?: number;
  names?: string[];
  fields?: MappedField[];
}
const mappingCache = new Map<string, Map<number, string[]>>();
/** Names a field id may carry in files written without ids (the `schema.name-mapping.default` property). */
function namesFor(mappingJson: string, id: number): string[] {
  let m = mappingCache.get(mappingJson);
  if (!m) {
    m = new Map();
    const walk = (fields: MappedField[]): void => {
      for (const f of fields) {
        if (typeof f['field-id'] === 'number') (m as Map<number, string[]>).set(f['field-id'], f.names ?? []);
      }
    };
    try {
      walk(JSON.parse(mappingJson) as MappedField[]);
    } catch (err) {
      throw new TributaryError(
        'CORRUPT_DATA',
        `schema.name-mapping.default is not valid JSON: ${(err as Error).message}`,
      );
    }
    mappingCache.set(mappingJson, m);
  }
  return m.get(id) ?? [];
}

/** Internal value -> DuckDB literal (undefined when not expressible). */
function sqlLiteral(t: IcebergType, v: unknown): string | undefined {
  if (v === null || v === undefined || typeof t !== 'string') return undefined;
  if (parseDecimal(t)) return `CAST(${quoteLiteral(String(toPublic(t, v)))} AS ${duckType(t)})`;
  switch (t) {
    case 'boolean':
      return v ? 'TRUE' : 'FALSE';
    case 'int':
    case 'long':
      return String(v);
    case 'float':
    case 'double':
      return Number.isFinite(v as number) ? `CAST(${String(v)} AS DOUBLE)` : undefined;
    case 'string':
      return quoteLiteral(v as string);
    case 'date':
    case 'time':
    case 'timestamp':
    case 'timestamptz':
      return `CAST(${quoteLiteral(String(toPublic(t, v)).replace('T', ' '))} AS ${duckType(t)})`;
    default:
      return undefined;
  }
}

/** A bound filter as a DuckDB predicate over `f<id>` columns; parts it cannot express are dropped (AND) or give up (OR/NOT). */
export function boundToSql(b: Bound, exclude: Set<number>): string | undefined {
  switch (b.op) {
    case 'true':
      return 'TRUE';
    case 'false':
      return 'FALSE';
    case 'and': {
      const parts = b.args.map((a) => boundToSql(a, exclude)).filter((x): x is string => x !== undefined);
      return parts.length ? parts.map((p) => `(${p})`).join(' AND ') : undefined;
    }
    case 'or': {
      const parts = b.args.map((a) => boundToSql(a, exclude));
      return parts.every((p) => p !== undefined) ? parts.map((p) => `(${p})`).join(' OR ') : undefined;
    }
    case 'not': {
      // NOT of a partial AND would not be inclusive: only push a fully expressed child
      const inner = boundToSqlExact(b.arg, exclude);
      return inner === undefined ? undefined : `NOT (${inner})`;
    }
    default:
      return boundToSqlExact(b, exclude);
  }
}

function boundToSqlExact(b: Bound, exclude: Set<number>): string | undefined {
  switch (b.op) {
    case 'true':
    case 'false':
      return b.op.toUpperCase();
    case 'and':
    case 'or': {
      const parts = b.args.map((a) => boundToSqlExact(a, exclude));
      return parts.every((p) => p !== undefined)
        ? parts.map((p) => `(${p})`).join(` ${b.op.toUpperCase()} `)
        : undefined;
    }
    case 'not': {
      const inner = boundToSqlExact(b.arg, exclude);
      return inner === undefined ? undefined : `NOT (${inner})`;
    }
    case 'isNull':
    case 'notNull':
      if (exclude.has(b.id)) return undefined;
      return `f${b.id} IS ${b.op === 'notNull' ? 'NOT ' : ''}NULL`;
    case 'in': {
      if (exclude.has(b.id)) return undefined;
      const lits = b.values.map((v) => sqlLiteral(b.type, v));
      if (lits.some((l) => l === undefined)) return undefined;
      return `f${b.id} IN (${lits.join(', ')})`;
    }
    default: {
      if (exclude.has(b.id)) return undefined;
      const lit = sqlLiteral(b.type, b.value);
      if (lit === undefined) return undefined;
      const op = { eq: '=', ne: '<>', lt: '<', le: '<=', gt: '>', ge: '>=' }[b.op];
      return `f${b.id} ${op} ${lit}`;
    }
  }
}

function coercePartition(f: NestedField, v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (f.type === 'long' && typeof v === 'number') return BigInt(v);
  if ((f.type === 'timestamp' || f.type === 'timestamptz') && typeof v === 'number') return BigInt(v) * 86_400_000_000n;
  return v;
}

export interface DuckdbScan {
  /** A DuckDB SELECT yielding the scan's rows, columns named as in the table schema. */
  sql: string;
  schema: Schema;
  snapshot: Snapshot | undefined;
  /** Removes temp files backing data files that had deletes; call after running the SQL. */
  cleanup(): void;
}

/**
 * The scan as DuckDB SQL, so engines can consume a table snapshot without materializing rows in JS:
 * files without deletes are read in place (by field id, identity columns as constants); files with
 * deletes are resolved here and staged as NDJSON. The filter must be expressible in SQL.
 */
export async function duckdbScanSql(md: TableMetadata, io: FileIO, opts: ScanOptions = {}): Promise<DuckdbScan> {
  const plan = await planScan(md, io, opts);
  const schema = plan.schema;
  const fields = (opts.columns ?? schema.fields.map((f) => f.name)).map((n) => {
    const f = schema.fields.find((x) => x.name === n);
    if (!f)
      throw invalidArgument('columns', `columns of the table (${schema.fields.map((x) => x.name).join(', ')})`, n);
    return f;
  });
  const where = plan.bound ? boundToSqlExactPublic(plan.bound) : 'TRUE';
  if (where === undefined)
    throw new TributaryError(
      'UNSUPPORTED',
      'duckdbScanSql: the filter has parts DuckDB cannot evaluate exactly (use scanTable)',
    );
  const need = new Map<number, NestedField>(fields.map((f) => [f.id, f]));
  if (plan.bound) for (const id of exprFieldIds(plan.bound)) need.set(id, findField(schema, id) as NestedField);
  const cols = [...need.values()];
  const temps: string[] = [];
  const parts: string[] = [];
  await withConnection(async (c) => {
    for (const task of plan.tasks) {
      const spec = specById(md, task.specId);
      const fills = new Map<number, unknown>();
      spec.fields.forEach((pf, i) => {
        if (parseTransform(pf.transform).kind === 'identity') fills.set(pf['source-id'], task.file.partition[i]);
      });
      if (task.deletes.length === 0 && md.properties['schema.name-mapping.default'] === undefined) {
        const entries = cols.map(
          (f) =>
            `${f.id}: {name: ${quoteLiteral(`f${f.id}`)}, type: ${quoteLiteral(duckType(f.type))}, default_value: NULL}`,
        );
        const sel = cols.map((f) => {
          if (!fills.has(f.id)) return `f${f.id}`;
          const v = coercePartition(f, fills.get(f.id));
          return `${v === null ? 'NULL' : (sqlLiteral(f.type, v) ?? 'NULL')}::${duckType(f.type)} AS f${f.id}`;
        });
        parts.push(
          `SELECT ${sel.join(', ')} FROM read_parquet(${quoteLiteral(io.resolve(task.file.filePath))}, schema = MAP {${entries.join(', ')}})`,
        );
      } else {
        const rows = await readTaskRows(c, md, io, task, schema, cols, undefined);
        const named = rows.map((r) => Object.fromEntries(cols.map((f) => [`f${f.id}`, r[`f${f.id}`] ?? null])));
        const pseudo = cols.map((f) => ({ ...f, name: `f${f.id}` }));
        const file = rowsToTempNdjson(named, pseudo);
        temps.push(file);
        parts.push(ndjsonSourceSql(file, pseudo));
      }
    }
  });
  const empty = `SELECT ${cols.map((f) => `CAST(NULL AS ${duckType(f.type)}) AS f${f.id}`).join(', ')} WHERE FALSE`;
  const union = parts.length ? parts.map((p) => `(${p})`).join(' UNION ALL ') : empty;
  const outCols = fields.map((f) => `f${f.id} AS ${quoteIdent(f.name)}`).join(', ');
  return {
    sql: `SELECT ${outCols} FROM (${union}) AS t WHERE ${where}${opts.limit !== undefined ? ` LIMIT ${opts.limit}` : ''}`,
    schema,
    snapshot: plan.snapshot,
    cleanup: () => {
      for (const f of temps) fs.rmSync(f, { force: true });
    },
  };
}

function boundToSqlExactPublic(b: Bound): string | undefined {
  return boundToSqlExact(b, new Set());
}
