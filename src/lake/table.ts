import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { channel, invalidArgument, isTributaryError, publish, TributaryError } from '../core/index.ts';
import type { Catalog, LoadedTable, TableIdentifier } from './catalog.ts';
import { identifierToString } from './catalog.ts';
import { fromBytes } from './conversions.ts';
import {
  collectStats,
  ndjsonSourceSql,
  registerBucketFunctions,
  rowsToTempNdjson,
  transformSql,
  withConnection,
  writeParquetFiles,
} from './duck.ts';
import {
  type Bound,
  bindExpr,
  type Expr,
  evalExpr,
  fileMightMatch,
  isIn,
  parseExpr,
  partitionMightMatch,
  pushNot,
} from './expr.ts';
import type { FileIO } from './io.ts';
import {
  type DataFile,
  type ManifestEntry,
  type ManifestFile,
  partitionSummaries,
  readManifest,
  writeManifest,
  writeManifestList,
} from './manifest.ts';
import {
  currentSchema,
  defaultSpec,
  newSnapshotId,
  type PartitionField,
  type PartitionSpec,
  partitionType,
  type Snapshot,
  specById,
  type TableMetadata,
} from './metadata.ts';
import {
  type FileTask,
  liveEntries,
  planScan,
  readSnapshotManifests,
  readTaskRows,
  type ScanOptions,
  type ScanResult,
  scanTable,
} from './scan.ts';
import { prepareSource, type ValidationPolicy, type WriteInput } from './source.ts';
import { canTransform, parseTransform, transformResultType, transformToString } from './transforms.ts';
import {
  canPromote,
  duckType,
  findField,
  type IcebergType,
  maxFieldId,
  type NestedField,
  quoteIdent,
  quoteLiteral,
  type Schema,
  validateType,
} from './types.ts';
import type { TableRequirement, TableUpdate } from './updates.ts';
import { runWriteValidators, type WarningPolicy, type WriteValidator, type WriteViolation } from './validate.ts';
import { fromDuck, internalKey, type Row, toInternal, toPublic } from './values.ts';

export interface WriteOptions extends ValidationPolicy {
  /** Checks run over the incoming rows before any file is written (besides the table's own validators). */
  validators?: WriteValidator[];
  /** Rows failing warn-severity checks: keep them (default), drop them, null the named fields, or quarantine them. */
  onWarning?: WarningPolicy;
  /** Where quarantined rows are appended (after the write commits); required with onWarning 'quarantine'. */
  quarantine?: Table;
  /** Add columns the table lacks from the incoming data (Spark's unionByName). */
  unionByName?: boolean;
  /** Commit to this branch instead of main. */
  branch?: string;
  /** Extra snapshot summary properties. */
  properties?: Record<string, string>;
}

export interface CommitResult {
  snapshotId: bigint | undefined;
  addedFiles: number;
  addedRows: number;
  removedFiles: number;
  droppedRows: number;
  attempts: number;
  /** What write validators reported (errors never get here: they reject the write). */
  violations?: WriteViolation[];
  quarantinedRows?: number;
}

export type SchemaChange =
  | {
      op: 'add';
      name: string;
      type: IcebergType | unknown;
      required?: boolean;
      doc?: string;
      after?: string;
      first?: boolean;
      /** initial-default and write-default (JSON single value): existing rows read it; writes that omit the column get it. */
      default?: string | number | boolean;
      /** Add inside this struct column (a dotted path for nested structs, e.g. `address.geo`). */
      parent?: string;
    }
  | { op: 'drop'; name: string }
  | { op: 'rename'; name: string; newName: string }
  | { op: 'widen'; name: string; type: IcebergType }
  | { op: 'makeOptional'; name: string }
  | { op: 'doc'; name: string; doc: string }
  | { op: 'move'; name: string; first?: boolean; after?: string }
  | { op: 'reorder'; order: string[] };

export interface PartitionFieldSpec {
  source: string;
  transform: string;
  name?: string;
}

interface Pending {
  operation: 'append' | 'overwrite' | 'delete' | 'replace';
  added: DataFile[];
  addedDeletes: { file: DataFile; specId: number }[];
  removed: Set<string>;
  /** Files written for this operation (deleted if the commit finally fails). */
  written: string[];
  schemaUpdates: TableUpdate[];
  /** Non-append operations: which concurrent changes invalidate them ('any' = every change). */
  conflict?: Bound | 'any';
  droppedRows: number;
  specId: number;
  violations?: WriteViolation[];
  /** A Parquet file of quarantined rows, appended to opts.quarantine once this commit succeeds. */
  quarantine?: { file: string; rows: number };
}

const MAX_ATTEMPTS = 50;

/** The write-validation results a pending commit carries to its CommitResult. */
function checkedParts(w: {
  violations?: WriteViolation[];
  quarantine?: { file: string; rows: number };
}): Pick<Pending, 'violations' | 'quarantine'> {
  return {
    ...(w.violations ? { violations: w.violations } : {}),
    ...(w.quarantine ? { quarantine: w.quarantine } : {}),
  };
}

/** Published on every snapshot commit: tributary:lake:commit (success) and tributary:lake:commit-error. */
const commitChannel = channel('lake', 'commit');
const commitErrorChannel = channel('lake', 'commit-error');

/** `day(ts), bucket(16, user_id), truncate(4, s), name` -> partition fields. */
export function parsePartitionSpec(text: string): PartitionFieldSpec[] {
  const out: PartitionFieldSpec[] = [];
  const re = /\s*(?:(\w+)\s*\(\s*(?:(\d+)\s*,\s*)?([^()\s,]+)\s*\)|([^()\s,]+))\s*(?:,|$)/gy;
  let m: RegExpExecArray | null;
  let last = 0;
  for (;;) {
    m = re.exec(text);
    if (!m || m[0] === '') break;
    last = re.lastIndex;
    if (m[4]) out.push({ source: m[4], transform: 'identity' });
    else {
      const fn = (m[1] as string).toLowerCase();
      const transform =
        fn === 'bucket' || fn === 'truncate'
          ? `${fn}[${m[2] ?? ''}]`
          : fn === 'years'
            ? 'year'
            : fn === 'months'
              ? 'month'
              : fn === 'days'
                ? 'day'
                : fn === 'hours'
                  ? 'hour'
                  : fn;
      parseTransform(transform);
      out.push({ source: m[3] as string, transform });
    }
    if (re.lastIndex >= text.length) break;
  }
  if (last < text.trim().length)
    throw invalidArgument('partition', 'a list like "day(ts), bucket(16, user_id), name"', text);
  return out;
}

/** Builds partition fields for a schema, reusing field ids of earlier specs for the same source and transform. */
export function buildSpecFields(
  md: TableMetadata | undefined,
  schema: Schema,
  fields: PartitionFieldSpec[],
): PartitionField[] {
  let next = md ? md['last-partition-id'] : 999;
  const names = new Set<string>();
  return fields.map((f, i) => {
    const src = schema.fields.find((x) => x.name === f.source) ?? findField(schema, Number.NaN);
    if (!src)
      throw invalidArgument(
        `partition[${i}].source`,
        `a column of the table (${schema.fields.map((x) => x.name).join(', ')})`,
        f.source,
      );
    const tr = parseTransform(f.transform);
    if (!canTransform(tr, src.type))
      throw invalidArgument(`partition[${i}].transform`, `a transform valid for ${String(src.type)}`, f.transform);
    const name =
      f.name ??
      (tr.kind === 'identity'
        ? src.name
        : `${src.name}_${tr.kind === 'bucket' || tr.kind === 'truncate' ? tr.kind : tr.kind}`);
    if (names.has(name)) throw invalidArgument(`partition[${i}].name`, 'a unique partition field name', name);
    names.add(name);
    const prior = md?.['partition-specs']
      .flatMap((s) => s.fields)
      .find((p) => p['source-id'] === src.id && p.transform === transformToString(tr));
    return {
      'source-id': src.id,
      'field-id': prior ? prior['field-id'] : ++next,
      name,
      transform: transformToString(tr),
    };
  });
}

/** A table in a catalog: reads, writes and maintenance, each write one atomic snapshot commit. */
export class Table {
  readonly catalog: Catalog;
  readonly id: TableIdentifier;
  private loaded: LoadedTable;
  /** Validators every write through this instance runs (the pipeline's quality checks plug in here). */
  readonly writeValidators: WriteValidator[] = [];

  constructor(catalog: Catalog, id: TableIdentifier, loaded: LoadedTable) {
    this.catalog = catalog;
    this.id = id;
    this.loaded = loaded;
  }

  get name(): string {
    return identifierToString(this.id);
  }
  get metadata(): TableMetadata {
    return this.loaded.metadata;
  }
  get metadataLocation(): string {
    return this.loaded.metadataLocation;
  }
  get io(): FileIO {
    return this.catalog.io;
  }
  schema(): Schema {
    return currentSchema(this.metadata);
  }
  spec(): PartitionSpec {
    return defaultSpec(this.metadata);
  }
  currentSnapshot(): Snapshot | undefined {
    const id = this.metadata['current-snapshot-id'];
    return id === undefined ? undefined : this.metadata.snapshots.find((s) => s['snapshot-id'] === id);
  }

  async refresh(): Promise<this> {
    this.loaded = await this.catalog.loadTable(this.id);
    return this;
  }

  scan(opts: ScanOptions = {}): Promise<ScanResult> {
    return scanTable(this.metadata, this.io, opts);
  }
  async rows(opts: ScanOptions = {}): Promise<Row[]> {
    return (await this.scan(opts)).rows;
  }

  private get localLocation(): string {
    return this.io.resolve(this.metadata.location);
  }

  private async commitMetadata(requirements: TableRequirement[], updates: TableUpdate[]): Promise<void> {
    this.loaded = await this.catalog.commitTable(
      this.id,
      [{ type: 'assert-table-uuid', uuid: this.metadata['table-uuid'] }, ...requirements],
      updates,
    );
  }

  // ---------- writes ----------

  /** Writes input rows as data files under the current schema and default spec. */
  private async writeInput(
    input: WriteInput,
    opts: WriteOptions,
    what: string,
  ): Promise<{
    files: DataFile[];
    schemaUpdates: TableUpdate[];
    dropped: number;
    schema: Schema;
    violations?: WriteViolation[];
    quarantine?: { file: string; rows: number };
  }> {
    const schema = this.schema();
    const validators = [...this.writeValidators, ...(opts.validators ?? [])];
    if (opts.onWarning === 'quarantine' && !opts.quarantine)
      throw invalidArgument('quarantine', "a Table to receive rows when onWarning is 'quarantine'");
    return withConnection(async (c) => {
      const src = await prepareSource(
        c,
        input,
        schema,
        this.metadata['last-column-id'],
        { ...opts, onUnknownColumns: opts.unionByName ? 'add' : opts.onUnknownColumns },
        what,
      );
      try {
        let sourceSql = src.sql;
        let checked: Awaited<ReturnType<typeof runWriteValidators>> | undefined;
        if (validators.length) {
          checked = await runWriteValidators(c, src.sql, src.schema, validators, {
            table: this.name,
            operation: what,
            ...(opts.onWarning ? { onWarning: opts.onWarning } : {}),
          });
          sourceSql = checked.sql;
        }
        let quarantine: { file: string; rows: number } | undefined;
        try {
          if (checked?.quarantineSql && checked.quarantinedRows > 0) {
            const file = path.join(os.tmpdir(), `tributary-quarantine-${randomUUID()}.parquet`);
            await c.run(`COPY (${checked.quarantineSql}) TO '${file.replaceAll("'", "''")}' (FORMAT parquet)`);
            quarantine = { file, rows: checked.quarantinedRows };
          }
          return await this.writeChecked(c, src, sourceSql, {
            dropped: src.droppedRows + (checked?.droppedRows ?? 0),
            ...(checked ? { violations: checked.violations } : {}),
            ...(quarantine ? { quarantine } : {}),
          });
        } catch (err) {
          if (quarantine) fs.rmSync(quarantine.file, { force: true });
          throw err;
        } finally {
          await checked?.cleanup();
        }
      } finally {
        src.cleanup();
      }
    });
  }

  private async writeChecked(
    c: Parameters<Parameters<typeof withConnection>[0]>[0],
    src: Awaited<ReturnType<typeof prepareSource>>,
    sourceSql: string,
    extra: { dropped: number; violations?: WriteViolation[]; quarantine?: { file: string; rows: number } },
  ): Promise<{
    files: DataFile[];
    schemaUpdates: TableUpdate[];
    dropped: number;
    schema: Schema;
    violations?: WriteViolation[];
    quarantine?: { file: string; rows: number };
  }> {
    const schemaUpdates: TableUpdate[] = [];
    if (src.addedFields.length) {
      schemaUpdates.push(
        { action: 'add-schema', schema: src.schema, 'last-column-id': maxFieldId(src.schema) },
        { action: 'set-current-schema', 'schema-id': -1 },
      );
    }
    const files = await writeParquetFiles(c, {
      sourceSql,
      schema: src.schema,
      spec: this.spec(),
      location: this.metadata.location,
      localLocation: this.localLocation,
      sortSql: this.sortSql(src.schema),
    });
    const sorted = this.sortSql(src.schema) !== undefined;
    for (const df of files) df.sortOrderId = sorted ? this.metadata['default-sort-order-id'] : 0;
    for (const f of src.deferredRequired) {
      if (files.some((df) => (df.nullValueCounts?.get(f.id) ?? 0) > 0)) {
        for (const df of files) this.io.delete(df.filePath);
        throw await src.explainNulls();
      }
    }
    return { files, schemaUpdates, ...extra, schema: src.schema };
  }

  private sortSql(schema: Schema): string | undefined {
    const order = this.metadata['sort-orders'].find((o) => o['order-id'] === this.metadata['default-sort-order-id']);
    const parts = (order?.fields ?? [])
      .filter((f) => f.transform === 'identity')
      .map((f) => {
        const col = findField(schema, f['source-id']);
        return col
          ? `"${col.name.replaceAll('"', '""')}" ${f.direction === 'desc' ? 'DESC' : 'ASC'} ${f['null-order'] === 'nulls-last' ? 'NULLS LAST' : 'NULLS FIRST'}`
          : undefined;
      })
      .filter((x) => x !== undefined);
    return parts.length ? parts.join(', ') : undefined;
  }

  /** Appends rows; concurrent appends retry and never lose each other's data. */
  async append(input: WriteInput, opts: WriteOptions = {}): Promise<CommitResult> {
    const w = await this.writeInput(input, opts, `append to ${this.name}`);
    return this.commitPending(
      {
        operation: 'append',
        added: w.files,
        addedDeletes: [],
        removed: new Set(),
        written: w.files.map((f) => f.filePath),
        schemaUpdates: w.schemaUpdates,
        droppedRows: w.dropped,
        specId: this.metadata['default-spec-id'],
        ...checkedParts(w),
      },
      opts,
    );
  }

  /**
   * Adds existing Parquet files to the table without rewriting them (Iceberg's add_files). Files
   * without field ids are read through the `schema.name-mapping.default` property, which is set from
   * the current schema if missing. On a partitioned table each file's partition tuple is derived from
   * its rows (the spec's transforms over its columns; a file spanning partitions is refused), or for an
   * identity column the file lacks, from a Hive-style `column=value` directory in its path.
   */
  async addFiles(paths: string[], opts: WriteOptions = {}): Promise<CommitResult> {
    if (!paths.length) throw invalidArgument('paths', 'at least one Parquet file');
    const schema = this.schema();
    const files: DataFile[] = [];
    await withConnection(async (c) => {
      const entries: { local: string; dataFile: DataFile }[] = [];
      for (const p of paths) {
        const local = path.resolve(p);
        if (!fs.existsSync(local)) throw new TributaryError('NOT_FOUND', `addFiles: ${p} does not exist`);
        const desc = await c.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet('${local.replaceAll("'", "''")}')`);
        const cols = new Set(desc.getRows().map((r) => String(r[0])));
        const missingRequired = schema.fields.filter((f) => f.required && !cols.has(f.name));
        if (missingRequired.length)
          throw invalidArgument(
            `addFiles: ${p}`,
            `the required column(s) ${missingRequired.map((f) => f.name).join(', ')}`,
          );
        entries.push({
          local,
          dataFile: {
            content: 0,
            filePath: local,
            fileFormat: 'PARQUET',
            partition: await this.filePartition(c, local, p, cols, schema),
            recordCount: 0,
            fileSizeInBytes: fs.statSync(local).size,
          },
        });
      }
      await collectStats(c, entries, schema);
      files.push(...entries.map((e) => e.dataFile));
    });
    if (this.metadata.properties['schema.name-mapping.default'] === undefined) {
      const mapping = (fields: NestedField[]): unknown[] =>
        fields.map((f) => ({
          'field-id': f.id,
          names: [f.name],
          ...(typeof f.type !== 'string' && f.type.type === 'struct' ? { fields: mapping(f.type.fields) } : {}),
        }));
      await this.setProperties({ 'schema.name-mapping.default': JSON.stringify(mapping(schema.fields)) });
    }
    return this.commitPending(
      {
        operation: 'append',
        added: files,
        addedDeletes: [],
        removed: new Set(),
        written: [],
        schemaUpdates: [],
        droppedRows: 0,
        specId: this.metadata['default-spec-id'],
      },
      opts,
    );
  }

  /** The partition tuple of an existing file under the default spec (see addFiles). */
  private async filePartition(
    c: Parameters<Parameters<typeof withConnection>[0]>[0],
    local: string,
    shown: string,
    cols: Set<string>,
    schema: Schema,
  ): Promise<unknown[]> {
    const spec = this.spec();
    if (!spec.fields.length) return [];
    registerBucketFunctions(c);
    const tuple: unknown[] = new Array(spec.fields.length).fill(null);
    const exprs: { i: number; sql: string; type: IcebergType }[] = [];
    for (const [i, pf] of spec.fields.entries()) {
      const src = findField(schema, pf['source-id']);
      if (!src) throw new TributaryError('INTERNAL', `partition field ${pf.name}: source column not in the schema`);
      const t = parseTransform(pf.transform);
      if (t.kind === 'void') continue;
      if (cols.has(src.name)) {
        const raw = `CAST(${quoteIdent(src.name)} AS ${duckType(src.type)})`;
        exprs.push({ i, sql: transformSql(pf.transform, raw, src.type), type: transformResultType(t, src.type) });
        continue;
      }
      // identity column not in the file: Hive-style directory names carry it
      const seg = local
        .split(path.sep)
        .slice(0, -1)
        .find((x) => x.startsWith(`${src.name}=`));
      if (t.kind !== 'identity' || seg === undefined)
        throw invalidArgument(
          `addFiles: ${shown}`,
          `a file with column ${src.name} (source of partition field ${pf.name})${t.kind === 'identity' ? ` or a ${src.name}=VALUE directory in its path` : ''}`,
        );
      const rawValue = decodeURIComponent(seg.slice(src.name.length + 1));
      const conv = toInternal(
        src.type,
        rawValue === '__HIVE_DEFAULT_PARTITION__' || rawValue === 'null' ? null : rawValue,
      );
      if (!conv.ok)
        throw invalidArgument(`addFiles: ${shown}: directory ${seg}`, conv.reason.replace(/^expected /, ''));
      tuple[i] = conv.value;
    }
    if (exprs.length) {
      const r = await c.runAndReadAll(
        `SELECT DISTINCT ${exprs.map((e) => e.sql).join(', ')} FROM read_parquet(${quoteLiteral(local)}) LIMIT 2`,
      );
      const rows = r.getRows();
      if (rows.length > 1)
        throw invalidArgument(
          `addFiles: ${shown}`,
          `a file whose rows fall in one partition of ${this.name}'s spec (${spec.fields.map((f) => `${f.transform}(${findField(schema, f['source-id'])?.name})`).join(', ')}); it spans several`,
        );
      for (const [k, e] of exprs.entries()) tuple[e.i] = rows[0] ? fromDuck(e.type, rows[0][k]) : null;
    }
    return tuple;
  }

  /**
   * Overwrite: the whole table (no filter), the rows matching `filter` (rewriting partially matching
   * files), or, with `dynamic`, every partition the new rows fall in.
   */
  async overwrite(
    input: WriteInput,
    opts: WriteOptions & { filter?: Expr | string; dynamic?: boolean } = {},
  ): Promise<CommitResult> {
    const w = await this.writeInput(input, opts, `overwrite of ${this.name}`);
    const schema = w.schema;
    const snap = this.branchHead(opts.branch);
    const removed = new Set<string>();
    const added = [...w.files];
    let conflict: Bound | 'any' = 'any';
    if (snap) {
      const entries = await liveEntries(this.metadata, this.io, snap);
      if (opts.dynamic) {
        const specId = this.metadata['default-spec-id'];
        const parts = new Set(w.files.map((f) => f.partition.map(internalKey).join('|')));
        for (const { manifest, entry } of entries) {
          if (manifest.partitionSpecId === specId && parts.has(entry.dataFile.partition.map(internalKey).join('|')))
            removed.add(entry.dataFile.filePath);
        }
      } else if (opts.filter !== undefined) {
        const bound = bindExpr(typeof opts.filter === 'string' ? parseExpr(opts.filter) : opts.filter, schema);
        conflict = bound;
        const r = await this.rewriteMatching(bound, snap);
        for (const p of r.removed) removed.add(p);
        added.push(...r.added);
      } else {
        for (const { entry } of entries) removed.add(entry.dataFile.filePath);
      }
    }
    return this.commitPending(
      {
        operation: 'overwrite',
        added,
        addedDeletes: [],
        removed,
        written: added.map((f) => f.filePath),
        schemaUpdates: w.schemaUpdates,
        conflict,
        droppedRows: w.dropped,
        specId: this.metadata['default-spec-id'],
        ...checkedParts(w),
      },
      opts,
    );
  }

  /** Deletes the rows matching `filter` (copy-on-write: whole files dropped, partial files rewritten). */
  async delete(filter: Expr | string, opts: WriteOptions = {}): Promise<CommitResult> {
    const snap = this.branchHead(opts.branch);
    if (!snap)
      return { snapshotId: undefined, addedFiles: 0, addedRows: 0, removedFiles: 0, droppedRows: 0, attempts: 0 };
    const bound = bindExpr(typeof filter === 'string' ? parseExpr(filter) : filter, this.schema());
    const r = await this.rewriteMatching(bound, snap);
    if (r.removed.size === 0)
      return {
        snapshotId: snap['snapshot-id'],
        addedFiles: 0,
        addedRows: 0,
        removedFiles: 0,
        droppedRows: 0,
        attempts: 0,
      };
    return this.commitPending(
      {
        operation: r.added.length ? 'overwrite' : 'delete',
        added: r.added,
        addedDeletes: [],
        removed: r.removed,
        written: r.added.map((f) => f.filePath),
        schemaUpdates: [],
        conflict: bound,
        droppedRows: 0,
        specId: this.metadata['default-spec-id'],
      },
      opts,
    );
  }

  /**
   * Merge-on-read delete by key: writes one equality delete file (per partition) holding the given
   * key values; no data file is read or rewritten. Rows of `input` need only the key columns.
   */
  async deleteKeys(input: WriteInput, opts: WriteOptions & { key: string[] }): Promise<CommitResult> {
    const keyFields = this.equalityKeyFields(this.schema(), opts.key ?? []);
    const keySchema: Schema = {
      type: 'struct',
      'schema-id': 0,
      fields: keyFields.map((f) => ({ ...f, required: false })),
    };
    const deletes = await withConnection(async (c) => {
      const src = await prepareSource(
        c,
        input,
        keySchema,
        this.metadata['last-column-id'],
        opts,
        `delete from ${this.name}`,
      );
      try {
        const cols = keyFields.map((k) => quoteIdent(k.name)).join(', ');
        return await this.writeEqualityDeletes(c, `SELECT DISTINCT ${cols} FROM (${src.sql})`, keyFields);
      } finally {
        src.cleanup();
      }
    });
    return this.commitPending(
      {
        operation: 'delete',
        added: [],
        addedDeletes: deletes.map((file) => ({ file, specId: this.metadata['default-spec-id'] })),
        removed: new Set(),
        written: deletes.map((f) => f.filePath),
        schemaUpdates: [],
        droppedRows: 0,
        specId: this.metadata['default-spec-id'],
      },
      opts,
    );
  }

  /** Key columns usable for equality deletes under the default spec. */
  private equalityKeyFields(schema: Schema, key: string[]): NestedField[] {
    if (!key.length) throw invalidArgument('key', 'at least one key column');
    const fields = key.map((k) => {
      const f = schema.fields.find((x) => x.name === k);
      if (!f) throw invalidArgument('key', `columns of the table (${schema.fields.map((x) => x.name).join(', ')})`, k);
      if (typeof f.type !== 'string' || f.type === 'float' || f.type === 'double')
        throw invalidArgument(
          'key',
          'primitive, non-floating-point columns for equality deletes',
          `${k} (${JSON.stringify(f.type)})`,
        );
      return f;
    });
    // an equality delete is scoped to its partition: every partition source must be a key column, or an
    // old row with the same key in another partition would survive
    const ids = new Set(fields.map((f) => f.id));
    const outside = this.spec().fields.filter((pf) => !ids.has(pf['source-id']));
    if (outside.length)
      throw new TributaryError(
        'UNSUPPORTED',
        `${this.name}: equality deletes need every partition source column among the key columns; partition field(s) ${outside.map((pf) => pf.name).join(', ')} are not (use mode 'merge-on-read' or 'copy-on-write')`,
      );
    return fields;
  }

  private async writeEqualityDeletes(
    c: Parameters<Parameters<typeof withConnection>[0]>[0],
    sourceSql: string,
    keyFields: NestedField[],
  ): Promise<DataFile[]> {
    const keySchema: Schema = {
      type: 'struct',
      'schema-id': 0,
      fields: keyFields.map((f) => ({ ...f, required: false })),
    };
    return writeParquetFiles(c, {
      sourceSql,
      schema: keySchema,
      spec: this.spec(),
      location: this.metadata.location,
      localLocation: this.localLocation,
      content: 2,
      equalityIds: keyFields.map((f) => f.id),
    });
  }

  /** Files with rows matching `bound`: fully matching ones are removed, others rewritten without those rows. */
  private async rewriteMatching(bound: Bound, snap: Snapshot): Promise<{ removed: Set<string>; added: DataFile[] }> {
    const md = this.metadata;
    const plan = await planScan(md, this.io, { snapshotId: snap['snapshot-id'] });
    const schema = this.schema();
    const pruning = pushNot(bound);
    const removed = new Set<string>();
    const added: DataFile[] = [];
    await withConnection(async (c) => {
      for (const task of plan.tasks) {
        const spec = specById(md, task.specId);
        if (!partitionMightMatch(pruning, spec, task.file.partition, schema) || !fileMightMatch(pruning, task.file))
          continue;
        const rows = await readTaskRows(c, md, this.io, task, schema, schema.fields, undefined);
        const keep = rows.filter((r) => evalExpr(bound, r) !== true);
        if (keep.length === rows.length) continue;
        removed.add(task.file.filePath);
        for (const d of task.deletes) if (d.file.content === 1) removed.add(d.file.filePath);
        if (keep.length) added.push(...(await this.writeInternalRows(c, keep, schema, task.specId)));
      }
    });
    return { removed, added };
  }

  /** Writes rows of internal values keyed `f<id>` under a spec. */
  private async writeInternalRows(
    c: Parameters<Parameters<typeof withConnection>[0]>[0],
    rows: Row[],
    schema: Schema,
    specId: number,
  ): Promise<DataFile[]> {
    const named = rows.map((r) => {
      const o: Row = {};
      for (const f of schema.fields) o[f.name] = r[`f${f.id}`] ?? null;
      return o;
    });
    const file = rowsToTempNdjson(named, schema.fields);
    try {
      return await writeParquetFiles(c, {
        sourceSql: ndjsonSourceSql(file, schema.fields),
        schema,
        spec: specById(this.metadata, specId),
        location: this.metadata.location,
        localLocation: this.localLocation,
      });
    } finally {
      fs.rmSync(file, { force: true });
    }
  }

  /**
   * Upsert by key columns: rows whose key matches an existing row replace it, others are inserted.
   * `copy-on-write` rewrites affected files; `merge-on-read` writes position delete files instead.
   */
  async upsert(
    input: WriteInput,
    opts: WriteOptions & { key: string[]; mode?: 'copy-on-write' | 'merge-on-read' | 'equality-delete' },
  ): Promise<CommitResult> {
    if (!opts.key?.length) throw invalidArgument('key', 'at least one key column');
    if (opts.mode === 'equality-delete') this.equalityKeyFields(this.schema(), opts.key);
    const w = await this.writeInput(input, opts, `upsert into ${this.name}`);
    const schema = w.schema;
    const keyFields = opts.key.map((k) => {
      const f = schema.fields.find((x) => x.name === k);
      if (!f) throw invalidArgument('key', `columns of the table (${schema.fields.map((x) => x.name).join(', ')})`, k);
      return f;
    });
    if (opts.mode === 'equality-delete') {
      // merge-on-read without reading: the new rows' keys as an equality delete file; it applies only
      // to data files with a lower sequence number, so the rows added in this same commit survive it
      let deletes: DataFile[] = [];
      try {
        deletes = await withConnection(async (c) => {
          const files = w.files.map((f) => quoteLiteral(this.io.resolve(f.filePath)));
          if (!files.length) return [];
          const cols = keyFields.map((k) => quoteIdent(k.name)).join(', ');
          return this.writeEqualityDeletes(
            c,
            `SELECT DISTINCT ${cols} FROM read_parquet([${files.join(', ')}])`,
            keyFields,
          );
        });
      } catch (err) {
        for (const f of w.files) this.io.delete(f.filePath);
        throw err;
      }
      return this.commitPending(
        {
          operation: deletes.length ? 'overwrite' : 'append',
          added: w.files,
          addedDeletes: deletes.map((file) => ({ file, specId: this.metadata['default-spec-id'] })),
          removed: new Set(),
          written: [...w.files, ...deletes].map((f) => f.filePath),
          schemaUpdates: w.schemaUpdates,
          droppedRows: w.dropped,
          specId: this.metadata['default-spec-id'],
          ...checkedParts(w),
        },
        opts,
      );
    }
    // incoming keys, read back from the files just written (they are validated and typed)
    const md = this.metadata;
    const keySet = new Set<string>();
    const keyValues: unknown[][] = keyFields.map(() => []);
    await withConnection(async (c) => {
      for (const f of w.files) {
        const rows = await readTaskRows(
          c,
          md,
          this.io,
          { file: f, specId: md['default-spec-id'], sequenceNumber: 0, deletes: [] },
          schema,
          keyFields,
          undefined,
        );
        for (const r of rows) {
          keySet.add(keyFields.map((k) => internalKey(r[`f${k.id}`])).join('\u0000'));
          for (const [i, k] of keyFields.entries()) keyValues[i]?.push(r[`f${k.id}`]);
        }
      }
    });
    const snap = this.branchHead(opts.branch);
    const removed = new Set<string>();
    const added = [...w.files];
    const addedDeletes: { file: DataFile; specId: number }[] = [];
    // prune with IN on each key column (pushed to partition and file stats)
    const pruneExpr = keyFields.map((k, i) =>
      isIn(
        k.name,
        (keyValues[i] ?? []).map((v) => toPublic(k.type, v)),
      ),
    );
    const prune = bindExpr({ op: 'and', args: pruneExpr }, schema);
    if (snap && keySet.size > 0) {
      const plan = await planScan(md, this.io, { snapshotId: snap['snapshot-id'] });
      await withConnection(async (c) => {
        for (const task of plan.tasks) {
          const spec = specById(md, task.specId);
          if (!partitionMightMatch(prune, spec, task.file.partition, schema) || !fileMightMatch(prune, task.file))
            continue;
          const matchKey = (r: Row) => keySet.has(keyFields.map((k) => internalKey(r[`f${k.id}`])).join('\u0000'));
          if (opts.mode === 'merge-on-read') {
            const rows = await readTaskRows(c, md, this.io, { ...task }, schema, keyFields, undefined);
            const withPos =
              rows.length && rows[0]?.__pos === undefined
                ? await this.readWithPositions(c, task, schema, keyFields)
                : rows;
            const hits = withPos.filter(matchKey).map((r) => r.__pos as number);
            if (!hits.length) continue;
            const del = await this.writePositionDeletes(c, task, hits);
            addedDeletes.push({ file: del, specId: task.specId });
          } else {
            const rows = await readTaskRows(c, md, this.io, task, schema, schema.fields, undefined);
            const keep = rows.filter((r) => !matchKey(r));
            if (keep.length === rows.length) continue;
            removed.add(task.file.filePath);
            for (const d of task.deletes) if (d.file.content === 1) removed.add(d.file.filePath);
            if (keep.length) added.push(...(await this.writeInternalRows(c, keep, schema, task.specId)));
          }
        }
      });
    }
    return this.commitPending(
      {
        operation: removed.size || addedDeletes.length ? 'overwrite' : 'append',
        added,
        addedDeletes,
        removed,
        written: [...added.map((f) => f.filePath), ...addedDeletes.map((d) => d.file.filePath)],
        schemaUpdates: w.schemaUpdates,
        conflict: prune,
        droppedRows: w.dropped,
        specId: md['default-spec-id'],
        ...checkedParts(w),
      },
      opts,
    );
  }

  private async readWithPositions(
    c: Parameters<Parameters<typeof withConnection>[0]>[0],
    task: FileTask,
    schema: Schema,
    fields: NestedField[],
  ): Promise<Row[]> {
    // force position tracking by attaching an empty position-delete marker
    const { readParquetById } = await import('./duck.ts');
    const rows = await readParquetById(
      c,
      this.io.resolve(task.file.filePath),
      fields.map((f) => ({ id: f.id, type: f.type })),
      true,
    );
    const spec = specById(this.metadata, task.specId);
    spec.fields.forEach((pf, i) => {
      if (parseTransform(pf.transform).kind === 'identity' && fields.some((f) => f.id === pf['source-id']))
        for (const r of rows) r[`f${pf['source-id']}`] = task.file.partition[i];
    });
    // positions already deleted must not be deleted twice (harmless, but keeps counts right)
    const deleted = new Set<number>();
    for (const d of task.deletes) {
      if (d.file.content !== 1) continue;
      const del = await readParquetById(
        c,
        this.io.resolve(d.file.filePath),
        [
          { id: 2147483546, type: 'string' },
          { id: 2147483545, type: 'long' },
        ],
        false,
      );
      for (const r of del) if (r.f2147483546 === task.file.filePath) deleted.add(Number(r.f2147483545));
    }
    void schema;
    return rows.filter((r) => !deleted.has(r.__pos as number));
  }

  private async writePositionDeletes(
    c: Parameters<Parameters<typeof withConnection>[0]>[0],
    task: FileTask,
    positions: number[],
  ): Promise<DataFile> {
    const posSchema: Schema = {
      type: 'struct',
      'schema-id': 0,
      fields: [
        { id: 2147483546, name: 'file_path', required: true, type: 'string' },
        { id: 2147483545, name: 'pos', required: true, type: 'long' },
      ],
    };
    const file = rowsToTempNdjson(
      positions.sort((a, b) => a - b).map((p) => ({ file_path: task.file.filePath, pos: BigInt(p) })),
      posSchema.fields,
    );
    try {
      const files = await writeParquetFiles(c, {
        sourceSql: ndjsonSourceSql(file, posSchema.fields),
        schema: posSchema,
        spec: { 'spec-id': task.specId, fields: [] },
        location: this.metadata.location,
        localLocation: this.localLocation,
        content: 1,
      });
      const f = files[0];
      if (!f) throw new TributaryError('INTERNAL', 'position delete file was not written');
      f.partition = task.file.partition;
      f.referencedDataFile = task.file.filePath;
      return f;
    } finally {
      fs.rmSync(file, { force: true });
    }
  }

  private branchHead(branch = 'main'): Snapshot | undefined {
    const ref = this.metadata.refs[branch];
    const id = ref ? ref['snapshot-id'] : branch === 'main' ? this.metadata['current-snapshot-id'] : undefined;
    return id === undefined ? undefined : this.metadata.snapshots.find((s) => s['snapshot-id'] === id);
  }

  /** Commits, then hands quarantined rows to the quarantine table (only once the write is in). */
  private async commitPending(p: Pending, opts: WriteOptions): Promise<CommitResult> {
    try {
      const r = await this.commitSnapshot(p, opts);
      if (p.violations) r.violations = p.violations;
      if (p.quarantine && opts.quarantine) {
        await opts.quarantine.append({ file: p.quarantine.file, format: 'parquet' });
        r.quarantinedRows = p.quarantine.rows;
      }
      return r;
    } finally {
      if (p.quarantine) fs.rmSync(p.quarantine.file, { force: true });
    }
  }

  /** Commits a pending snapshot with optimistic concurrency: rebase and retry on conflict. */
  private async commitSnapshot(p: Pending, opts: WriteOptions): Promise<CommitResult> {
    const branch = opts.branch ?? 'main';
    if (p.added.length === 0 && p.removed.size === 0 && p.addedDeletes.length === 0 && p.schemaUpdates.length === 0) {
      return {
        snapshotId: this.branchHead(branch)?.['snapshot-id'],
        addedFiles: 0,
        addedRows: 0,
        removedFiles: 0,
        droppedRows: p.droppedRows,
        attempts: 0,
      };
    }
    const baseHead = this.branchHead(branch);
    const baseSchemaId = this.metadata['current-schema-id'];
    // added manifests do not depend on the snapshot (entries inherit ids), so they are written once
    const addedManifests = this.writeAddedManifests(p);
    let attempt = 0;
    for (;;) {
      attempt++;
      const md = this.metadata;
      const parent = this.branchHead(branch);
      const snapshotId = newSnapshotId();
      const seq = md['last-sequence-number'] + 1;
      const attemptFiles: string[] = [];
      try {
        const manifests: ManifestFile[] = addedManifests.map((m) => ({
          ...m,
          addedSnapshotId: snapshotId,
          sequenceNumber: seq,
          minSequenceNumber: seq,
        }));
        let deletedFiles = 0;
        let deletedRows = 0;
        let removedSize = 0;
        let removedDeleteFiles = 0;
        if (parent) {
          for (const m of await readSnapshotManifests(md, this.io, parent)) {
            const spec = specById(md, m.partitionSpecId);
            const pfields = partitionType(spec, md.schemas);
            if (p.removed.size === 0) {
              manifests.push(m);
              continue;
            }
            const entries = await readManifest(this.io.read(m.manifestPath), { manifest: m, partitionFields: pfields });
            if (!entries.some((e) => e.status !== 2 && p.removed.has(e.dataFile.filePath))) {
              manifests.push(m);
              continue;
            }
            const out: ManifestEntry[] = [];
            for (const e of entries) {
              if (e.status === 2) continue;
              if (p.removed.has(e.dataFile.filePath)) {
                out.push({ ...e, status: 2, snapshotId });
                if (e.dataFile.content === 0) {
                  deletedFiles++;
                  deletedRows += e.dataFile.recordCount;
                } else removedDeleteFiles++;
                removedSize += e.dataFile.fileSizeInBytes;
              } else out.push({ ...e, status: 0 });
            }
            const buf = writeManifest(
              out,
              { schema: currentSchema(md), spec, partitionFields: pfields, content: m.content },
              false,
            );
            const mpath = `${md.location}/metadata/${randomUUID()}-m0.avro`;
            this.io.write(mpath, buf);
            attemptFiles.push(mpath);
            const live = out.filter((e) => e.status === 0);
            const dead = out.filter((e) => e.status === 2);
            manifests.push({
              manifestPath: mpath,
              manifestLength: buf.length,
              partitionSpecId: m.partitionSpecId,
              content: m.content,
              sequenceNumber: seq,
              minSequenceNumber: Math.min(seq, ...out.map((e) => e.sequenceNumber)),
              addedSnapshotId: snapshotId,
              addedFilesCount: 0,
              existingFilesCount: live.length,
              deletedFilesCount: dead.length,
              addedRowsCount: 0,
              existingRowsCount: live.reduce((a, e) => a + e.dataFile.recordCount, 0),
              deletedRowsCount: dead.reduce((a, e) => a + e.dataFile.recordCount, 0),
              partitions: partitionSummaries(
                pfields,
                out.map((e) => e.dataFile),
              ),
            });
          }
          const stillLive = new Set<string>();
          if (p.removed.size) {
            // every removed file must still be live, or a concurrent commit already changed it
            for (const { entry } of await liveEntries(md, this.io, parent)) stillLive.add(entry.dataFile.filePath);
            for (const r of p.removed)
              if (!stillLive.has(r))
                throw new TributaryError(
                  'CONFLICT',
                  `${this.name}: file ${r} was removed by a concurrent commit; the ${p.operation} was not applied`,
                  { retriable: false },
                );
          }
        }
        const listPath = `${md.location}/metadata/snap-${snapshotId}-${attempt}-${randomUUID()}.avro`;
        const listBuf = writeManifestList(manifests, {
          snapshotId,
          ...(parent ? { parentSnapshotId: parent['snapshot-id'] } : {}),
          sequenceNumber: seq,
        });
        this.io.write(listPath, listBuf);
        attemptFiles.push(listPath);
        const summary = this.summary(
          p,
          parent,
          { deletedFiles, deletedRows, removedSize, removedDeleteFiles },
          opts.properties,
        );
        const snapshot: Snapshot = {
          'snapshot-id': snapshotId,
          'sequence-number': seq,
          'timestamp-ms': Math.max(Date.now(), (parent?.['timestamp-ms'] ?? 0) + 1),
          'manifest-list': listPath,
          summary,
          'schema-id': p.schemaUpdates.length ? md.schemas.length : md['current-schema-id'],
        };
        if (parent) snapshot['parent-snapshot-id'] = parent['snapshot-id'];
        const reqs: TableRequirement[] = [
          { type: 'assert-ref-snapshot-id', ref: branch, 'snapshot-id': parent ? parent['snapshot-id'] : null },
        ];
        if (p.schemaUpdates.length)
          reqs.push({ type: 'assert-current-schema-id', 'current-schema-id': md['current-schema-id'] });
        if (p.schemaUpdates.length) snapshot['schema-id'] = Math.max(...md.schemas.map((s) => s['schema-id'])) + 1;
        await this.commitMetadata(reqs, [
          ...p.schemaUpdates,
          { action: 'add-snapshot', snapshot },
          { action: 'set-snapshot-ref', 'ref-name': branch, type: 'branch', 'snapshot-id': snapshotId },
        ]);
        publish(commitChannel, () => ({
          table: this.name,
          operation: p.operation,
          snapshotId,
          sequenceNumber: seq,
          summary,
          attempts: attempt,
          location: this.metadata.location,
        }));
        return {
          snapshotId,
          addedFiles: p.added.length + p.addedDeletes.length,
          addedRows: p.added.reduce((a, f) => a + f.recordCount, 0),
          removedFiles: deletedFiles + removedDeleteFiles,
          droppedRows: p.droppedRows,
          attempts: attempt,
        };
      } catch (err) {
        for (const f of attemptFiles) this.io.delete(f);
        if (!isTributaryError(err, 'CONFLICT') || !err.retriable || attempt >= MAX_ATTEMPTS) {
          publish(commitErrorChannel, () => ({ table: this.name, operation: p.operation, error: err }));
          for (const m of addedManifests) this.io.delete(m.manifestPath);
          for (const f of p.written) this.io.delete(f);
          if (isTributaryError(err, 'CONFLICT') && attempt >= MAX_ATTEMPTS)
            throw new TributaryError('CONFLICT', `${this.name}: gave up after ${attempt} conflicting commit attempts`, {
              cause: err,
              retriable: true,
            });
          throw err;
        }
        await this.refresh();
        try {
          await this.checkConcurrent(p, baseHead, baseSchemaId, branch);
        } catch (e) {
          for (const m of addedManifests) this.io.delete(m.manifestPath);
          for (const f of p.written) this.io.delete(f);
          throw e;
        }
        await new Promise((r) => setTimeout(r, Math.random() * Math.min(100, 5 * attempt)));
      }
    }
  }

  /** After a lost race: may this operation be replayed on top of what committed meanwhile? */
  private async checkConcurrent(
    p: Pending,
    baseHead: Snapshot | undefined,
    baseSchemaId: number,
    branch: string,
  ): Promise<void> {
    const md = this.metadata;
    if (p.schemaUpdates.length && md['current-schema-id'] !== baseSchemaId) {
      throw new TributaryError(
        'CONFLICT',
        `${this.name}: the schema changed concurrently; the ${p.operation} adding columns was not applied`,
        { retriable: false },
      );
    }
    if (!p.conflict) return;
    // snapshots committed since our base on this branch
    const since: Snapshot[] = [];
    let cur = this.branchHead(branch);
    while (cur && cur['snapshot-id'] !== baseHead?.['snapshot-id']) {
      since.push(cur);
      const parentId = cur['parent-snapshot-id'];
      cur = parentId === undefined ? undefined : md.snapshots.find((s) => s['snapshot-id'] === parentId);
    }
    for (const s of since) {
      const op = s.summary.operation;
      if (op !== 'append' || p.conflict === 'any') {
        throw new TributaryError(
          'CONFLICT',
          `${this.name}: concurrent ${op} snapshot ${s['snapshot-id']} conflicts with this ${p.operation}; it was not applied (reload and retry)`,
          { retriable: false },
        );
      }
      const bound = p.conflict;
      for (const m of await readSnapshotManifests(md, this.io, s)) {
        if (m.addedSnapshotId !== s['snapshot-id']) continue;
        const spec = specById(md, m.partitionSpecId);
        const entries = await readManifest(this.io.read(m.manifestPath), {
          manifest: m,
          partitionFields: partitionType(spec, md.schemas),
        });
        for (const e of entries) {
          if (e.status !== 1) continue;
          if (
            partitionMightMatch(pushNot(bound), spec, e.dataFile.partition, currentSchema(md)) &&
            fileMightMatch(pushNot(bound), e.dataFile)
          ) {
            throw new TributaryError(
              'CONFLICT',
              `${this.name}: a concurrent append (snapshot ${s['snapshot-id']}) added rows this ${p.operation} would affect; it was not applied (reload and retry)`,
              { retriable: false },
            );
          }
        }
      }
    }
  }

  private writeAddedManifests(p: Pending): ManifestFile[] {
    const md = this.metadata;
    const out: ManifestFile[] = [];
    const write = (files: DataFile[], specId: number, content: 0 | 1): void => {
      if (!files.length) return;
      const spec = specById(md, specId);
      const pfields = partitionType(spec, md.schemas);
      const entries: ManifestEntry[] = files.map((f) => ({
        status: 1,
        snapshotId: 0n,
        sequenceNumber: 0,
        fileSequenceNumber: 0,
        dataFile: f,
      }));
      const buf = writeManifest(entries, { schema: currentSchema(md), spec, partitionFields: pfields, content });
      const mpath = `${md.location}/metadata/${randomUUID()}-m0.avro`;
      this.io.write(mpath, buf);
      out.push({
        manifestPath: mpath,
        manifestLength: buf.length,
        partitionSpecId: specId,
        content,
        sequenceNumber: 0,
        minSequenceNumber: 0,
        addedSnapshotId: 0n,
        addedFilesCount: files.length,
        existingFilesCount: 0,
        deletedFilesCount: 0,
        addedRowsCount: files.reduce((a, f) => a + f.recordCount, 0),
        existingRowsCount: 0,
        deletedRowsCount: 0,
        partitions: partitionSummaries(pfields, files),
      });
    };
    const bySpec = new Map<number, DataFile[]>();
    for (const f of p.added) {
      const list = bySpec.get(p.specId) ?? [];
      list.push(f);
      bySpec.set(p.specId, list);
    }
    for (const [specId, files] of bySpec) write(files, specId, 0);
    const delBySpec = new Map<number, DataFile[]>();
    for (const d of p.addedDeletes) delBySpec.set(d.specId, [...(delBySpec.get(d.specId) ?? []), d.file]);
    for (const [specId, files] of delBySpec) write(files, specId, 1);
    return out;
  }

  private summary(
    p: Pending,
    parent: Snapshot | undefined,
    d: { deletedFiles: number; deletedRows: number; removedSize: number; removedDeleteFiles: number },
    extra: Record<string, string> = {},
  ): Snapshot['summary'] {
    const prev = (k: string): number => Number(parent?.summary[k] ?? 0);
    const addedRecords = p.added.reduce((a, f) => a + f.recordCount, 0);
    const addedSize =
      p.added.reduce((a, f) => a + f.fileSizeInBytes, 0) +
      p.addedDeletes.reduce((a, f) => a + f.file.fileSizeInBytes, 0);
    const addedPos = p.addedDeletes.reduce((a, f) => a + (f.file.content === 1 ? f.file.recordCount : 0), 0);
    const addedEq = p.addedDeletes.reduce((a, f) => a + (f.file.content === 2 ? f.file.recordCount : 0), 0);
    const s: Snapshot['summary'] = {
      operation: p.operation,
      'added-data-files': String(p.added.length),
      'added-records': String(addedRecords),
      'added-files-size': String(addedSize),
      'changed-partition-count': String(new Set(p.added.map((f) => f.partition.map(internalKey).join('|'))).size),
      'total-records': String(prev('total-records') + addedRecords - d.deletedRows),
      'total-files-size': String(prev('total-files-size') + addedSize - d.removedSize),
      'total-data-files': String(prev('total-data-files') + p.added.length - d.deletedFiles),
      'total-delete-files': String(prev('total-delete-files') + p.addedDeletes.length - d.removedDeleteFiles),
      'total-position-deletes': String(prev('total-position-deletes') + addedPos),
      'total-equality-deletes': String(prev('total-equality-deletes') + addedEq),
      ...extra,
    };
    if (d.deletedFiles) {
      s['deleted-data-files'] = String(d.deletedFiles);
      s['deleted-records'] = String(d.deletedRows);
      s['removed-files-size'] = String(d.removedSize);
    }
    if (p.addedDeletes.length) {
      s['added-delete-files'] = String(p.addedDeletes.length);
      if (addedPos) s['added-position-deletes'] = String(addedPos);
      if (addedEq) s['added-equality-deletes'] = String(addedEq);
    }
    return s;
  }

  // ---------- evolution ----------

  /** Applies schema changes as one new schema (by field id, so existing data reads unchanged). */
  async evolveSchema(changes: SchemaChange[]): Promise<Schema> {
    const md = this.metadata;
    const base = this.schema();
    let fields: NestedField[] = structuredClone(base.fields);
    let lastId = md['last-column-id'];
    const find = (name: string, at: string): NestedField => {
      const f = fields.find((x) => x.name === name);
      if (!f) throw invalidArgument(at, `a column of the table (${fields.map((x) => x.name).join(', ')})`, name);
      return f;
    };
    const specSources = new Set(defaultSpec(md).fields.map((f) => f['source-id']));
    changes.forEach((ch, i) => {
      const at = `changes[${i}]`;
      switch (ch.op) {
        case 'add': {
          let target = fields;
          if (ch.parent !== undefined) {
            // a field inside an existing struct: old files lack it and read it as null
            let list = fields;
            for (const part of ch.parent.split('.')) {
              const p = list.find((x) => x.name === part);
              if (!p || typeof p.type === 'string' || p.type.type !== 'struct')
                throw invalidArgument(`${at}.parent`, 'a path of struct columns', ch.parent);
              list = p.type.fields;
            }
            target = list;
            if (ch.required) throw invalidArgument(`${at}.required`, 'false for a field added inside a struct');
            if (ch.default !== undefined)
              throw invalidArgument(`${at}.default`, 'no default for a field added inside a struct');
          }
          if (target.some((f) => f.name === ch.name)) throw invalidArgument(`${at}.name`, 'a new column name', ch.name);
          const type = validateType(ch.type, `${at}.type`);
          if (ch.required && md.snapshots.length > 0 && (ch.default === undefined || ch.default === null))
            throw invalidArgument(
              `${at}.required`,
              'false, or a default: a required column cannot be added to a table with data (existing rows have no value)',
            );
          const assign = (t: IcebergType): IcebergType => {
            if (typeof t === 'string') return t;
            if (t.type === 'struct')
              return { type: 'struct', fields: t.fields.map((f) => ({ ...f, id: ++lastId, type: assign(f.type) })) };
            if (t.type === 'list') return { ...t, 'element-id': ++lastId, element: assign(t.element) };
            return { ...t, 'key-id': ++lastId, 'value-id': ++lastId, key: assign(t.key), value: assign(t.value) };
          };
          const f: NestedField = { id: ++lastId, name: ch.name, required: ch.required === true, type: 'string' };
          f.type = assign(type);
          if (ch.doc) f.doc = ch.doc;
          if (ch.default !== undefined && ch.default !== null) {
            if (typeof f.type !== 'string') throw invalidArgument(`${at}.default`, 'no default for a nested column');
            const conv = toInternal(f.type, ch.default);
            if (!conv.ok) throw invalidArgument(`${at}.default`, conv.reason.replace(/^expected /, ''));
            f['initial-default'] = ch.default;
            f['write-default'] = ch.default;
          }
          if (target !== fields) target.push(f);
          else if (ch.first) fields.unshift(f);
          else if (ch.after) fields.splice(fields.indexOf(find(ch.after, `${at}.after`)) + 1, 0, f);
          else fields.push(f);
          break;
        }
        case 'drop': {
          const f = find(ch.name, `${at}.name`);
          if (specSources.has(f.id))
            throw invalidArgument(
              `${at}.name`,
              'a column that is not a source of the current partition spec (evolve the spec first)',
              ch.name,
            );
          if (base['identifier-field-ids']?.includes(f.id))
            throw invalidArgument(`${at}.name`, 'a column that is not an identifier field', ch.name);
          fields = fields.filter((x) => x !== f);
          break;
        }
        case 'rename': {
          const f = find(ch.name, `${at}.name`);
          if (fields.some((x) => x.name === ch.newName))
            throw invalidArgument(`${at}.newName`, 'an unused column name', ch.newName);
          f.name = ch.newName;
          break;
        }
        case 'widen': {
          const f = find(ch.name, `${at}.name`);
          const to = validateType(ch.type, `${at}.type`);
          if (!canPromote(f.type, to))
            throw invalidArgument(
              `${at}.type`,
              `an allowed promotion of ${String(f.type)} (int->long, float->double, decimal precision widening, date->timestamp)`,
              to,
            );
          f.type = to;
          break;
        }
        case 'makeOptional':
          find(ch.name, `${at}.name`).required = false;
          break;
        case 'doc':
          find(ch.name, `${at}.name`).doc = ch.doc;
          break;
        case 'move': {
          const f = find(ch.name, `${at}.name`);
          fields = fields.filter((x) => x !== f);
          if (ch.first) fields.unshift(f);
          else if (ch.after) fields.splice(fields.indexOf(find(ch.after, `${at}.after`)) + 1, 0, f);
          else fields.push(f);
          break;
        }
        case 'reorder': {
          const moved = ch.order.map((n) => find(n, `${at}.order`));
          fields = [...moved, ...fields.filter((f) => !moved.includes(f))];
          break;
        }
        default:
          throw invalidArgument(
            `${at}.op`,
            'add, drop, rename, widen, makeOptional, doc, move or reorder',
            (ch as { op: string }).op,
          );
      }
    });
    const schema: Schema = { type: 'struct', 'schema-id': 0, fields };
    if (base['identifier-field-ids']) schema['identifier-field-ids'] = base['identifier-field-ids'];
    await this.commitMetadata(
      [
        { type: 'assert-current-schema-id', 'current-schema-id': md['current-schema-id'] },
        { type: 'assert-last-assigned-field-id', 'last-assigned-field-id': md['last-column-id'] },
      ],
      [
        { action: 'add-schema', schema, 'last-column-id': Math.max(lastId, md['last-column-id']) },
        { action: 'set-current-schema', 'schema-id': -1 },
      ],
    );
    return this.schema();
  }

  /** Replaces the default partition spec (old files keep their spec; new writes use this one). */
  async evolvePartition(fields: PartitionFieldSpec[] | string): Promise<PartitionSpec> {
    const md = this.metadata;
    const parsed = typeof fields === 'string' ? parsePartitionSpec(fields) : fields;
    const specFields = buildSpecFields(md, this.schema(), parsed);
    await this.commitMetadata(
      [
        { type: 'assert-default-spec-id', 'default-spec-id': md['default-spec-id'] },
        { type: 'assert-last-assigned-partition-id', 'last-assigned-partition-id': md['last-partition-id'] },
      ],
      [
        { action: 'add-spec', spec: { 'spec-id': 0, fields: specFields } },
        { action: 'set-default-spec', 'spec-id': -1 },
      ],
    );
    return this.spec();
  }

  async setProperties(updates: Record<string, string>, removals: string[] = []): Promise<void> {
    const u: TableUpdate[] = [];
    if (Object.keys(updates).length) u.push({ action: 'set-properties', updates });
    if (removals.length) u.push({ action: 'remove-properties', removals });
    await this.commitMetadata([], u);
  }

  // ---------- refs, rollback ----------

  /** Points main back at an earlier snapshot (the later ones stay until expired). */
  async rollback(snapshotId: bigint): Promise<void> {
    const id = BigInt(snapshotId);
    if (!this.metadata.snapshots.some((s) => s['snapshot-id'] === id))
      throw new TributaryError('NOT_FOUND', `snapshot ${id} does not exist in ${this.name}`);
    const cur = this.metadata['current-snapshot-id'];
    await this.commitMetadata(
      [{ type: 'assert-ref-snapshot-id', ref: 'main', 'snapshot-id': cur ?? null }],
      [{ action: 'set-snapshot-ref', 'ref-name': 'main', type: 'branch', 'snapshot-id': id }],
    );
  }

  async createTag(name: string, snapshotId?: bigint): Promise<void> {
    await this.setRef(name, 'tag', snapshotId);
  }
  async createBranch(name: string, snapshotId?: bigint): Promise<void> {
    await this.setRef(name, 'branch', snapshotId);
  }
  private async setRef(name: string, type: 'tag' | 'branch', snapshotId?: bigint): Promise<void> {
    if (this.metadata.refs[name])
      throw new TributaryError('ALREADY_EXISTS', `${this.name}: ref ${name} already exists`);
    const id = snapshotId ?? this.metadata['current-snapshot-id'];
    if (id === undefined) throw invalidArgument('snapshotId', 'a snapshot (the table has none yet)');
    await this.commitMetadata(
      [{ type: 'assert-ref-snapshot-id', ref: name, 'snapshot-id': null }],
      [{ action: 'set-snapshot-ref', 'ref-name': name, type, 'snapshot-id': BigInt(id) }],
    );
  }
  async removeRef(name: string): Promise<void> {
    if (name === 'main') throw invalidArgument('ref', 'a ref other than main', name);
    await this.commitMetadata([], [{ action: 'remove-snapshot-ref', 'ref-name': name }]);
  }

  history(): {
    snapshotId: bigint;
    parentId: bigint | undefined;
    timestampMs: number;
    operation: string;
    summary: Record<string, string>;
    isCurrentAncestor: boolean;
  }[] {
    const md = this.metadata;
    const ancestors = new Set<bigint>();
    let cur = this.currentSnapshot();
    while (cur) {
      ancestors.add(cur['snapshot-id']);
      const pid = cur['parent-snapshot-id'];
      cur = pid === undefined ? undefined : md.snapshots.find((s) => s['snapshot-id'] === pid);
    }
    return [...md.snapshots]
      .sort((a, b) => a['timestamp-ms'] - b['timestamp-ms'] || a['sequence-number'] - b['sequence-number'])
      .map((s) => ({
        snapshotId: s['snapshot-id'],
        parentId: s['parent-snapshot-id'],
        timestampMs: s['timestamp-ms'],
        operation: s.summary.operation,
        summary: s.summary,
        isCurrentAncestor: ancestors.has(s['snapshot-id']),
      }));
  }

  // ---------- maintenance ----------

  /** Every file a snapshot references: its manifest list, manifests and all their entries. */
  private async reachable(snaps: Snapshot[]): Promise<Set<string>> {
    const out = new Set<string>();
    const md = this.metadata;
    for (const s of snaps) {
      out.add(s['manifest-list']);
      for (const m of await readSnapshotManifests(md, this.io, s)) {
        if (out.has(m.manifestPath)) continue;
        out.add(m.manifestPath);
        const spec = specById(md, m.partitionSpecId);
        for (const e of await readManifest(this.io.read(m.manifestPath), {
          manifest: m,
          partitionFields: partitionType(spec, md.schemas),
        }))
          out.add(e.dataFile.filePath);
      }
    }
    return out;
  }

  /**
   * Expires snapshots older than `olderThanMs` (default: 5 days ago), keeping the newest `retainLast`
   * ancestors of main and every ref head, then deletes files only expired snapshots referenced.
   */
  async expireSnapshots(
    opts: { olderThanMs?: number; retainLast?: number; snapshotIds?: bigint[] } = {},
  ): Promise<{ expired: bigint[]; deletedFiles: number }> {
    const md = this.metadata;
    const olderThan = opts.olderThanMs ?? Date.now() - 5 * 86_400_000;
    const retainLast = Math.max(1, opts.retainLast ?? 1);
    const keep = new Set<bigint>();
    for (const r of Object.values(md.refs)) keep.add(r['snapshot-id']);
    let cur = this.currentSnapshot();
    for (let i = 0; cur && i < retainLast; i++) {
      keep.add(cur['snapshot-id']);
      const pid = cur['parent-snapshot-id'];
      cur = pid === undefined ? undefined : md.snapshots.find((s) => s['snapshot-id'] === pid);
    }
    const explicit = opts.snapshotIds ? new Set(opts.snapshotIds.map((x) => BigInt(x))) : undefined;
    const expire = md.snapshots.filter(
      (s) => !keep.has(s['snapshot-id']) && (explicit ? explicit.has(s['snapshot-id']) : s['timestamp-ms'] < olderThan),
    );
    if (!expire.length) return { expired: [], deletedFiles: 0 };
    const remaining = md.snapshots.filter((s) => !expire.includes(s));
    const before = await this.reachable(expire);
    const after = await this.reachable(remaining);
    await this.commitMetadata(
      [{ type: 'assert-ref-snapshot-id', ref: 'main', 'snapshot-id': md['current-snapshot-id'] ?? null }],
      [{ action: 'remove-snapshots', 'snapshot-ids': expire.map((s) => s['snapshot-id']) }],
    );
    let deleted = 0;
    for (const f of before) {
      if (after.has(f)) continue;
      this.io.delete(f);
      deleted++;
    }
    return { expired: expire.map((s) => s['snapshot-id']), deletedFiles: deleted };
  }

  /** Deletes files under the table location that no snapshot or metadata file references. */
  async removeOrphanFiles(opts: { olderThanMs?: number; dryRun?: boolean } = {}): Promise<string[]> {
    const md = this.metadata;
    const olderThan = opts.olderThanMs ?? Date.now() - 3 * 86_400_000;
    const reach = await this.reachable(md.snapshots);
    const keepLocal = new Set<string>();
    for (const f of reach) keepLocal.add(this.io.resolve(f));
    keepLocal.add(this.io.resolve(this.metadataLocation));
    for (const e of md['metadata-log']) keepLocal.add(this.io.resolve(e['metadata-file']));
    const root = this.localLocation;
    const orphans: string[] = [];
    for (const f of [...this.io.list(path.join(root, 'data')), ...this.io.list(path.join(root, 'metadata'))]) {
      if (keepLocal.has(f)) continue;
      if (fs.statSync(f).mtimeMs >= olderThan) continue;
      orphans.push(f);
    }
    if (!opts.dryRun) for (const f of orphans) fs.rmSync(f, { force: true });
    return orphans;
  }

  /**
   * Compacts small files: per partition, live rows of files under `targetFileSizeBytes` (and any file
   * with deletes) are rewritten into fresh files; deletes that applied only to them are dropped.
   */
  async compact(opts: { targetFileSizeBytes?: number; minInputFiles?: number } = {}): Promise<CommitResult> {
    const md = this.metadata;
    const snap = this.currentSnapshot();
    if (!snap)
      return { snapshotId: undefined, addedFiles: 0, addedRows: 0, removedFiles: 0, droppedRows: 0, attempts: 0 };
    const target = opts.targetFileSizeBytes ?? 128 * 1024 * 1024;
    const minInput = opts.minInputFiles ?? 2;
    const plan = await planScan(md, this.io, { snapshotId: snap['snapshot-id'] });
    const groups = new Map<string, FileTask[]>();
    for (const t of plan.tasks) {
      if (t.file.fileSizeInBytes >= target && t.deletes.length === 0) continue;
      const k = `${t.specId}|${t.file.partition.map(internalKey).join('|')}`;
      groups.set(k, [...(groups.get(k) ?? []), t]);
    }
    const schema = this.schema();
    const removed = new Set<string>();
    const added: DataFile[] = [];
    const deleteTargets = new Map<string, Set<string>>();
    for (const t of plan.tasks)
      for (const d of t.deletes)
        deleteTargets.set(d.file.filePath, new Set([...(deleteTargets.get(d.file.filePath) ?? []), t.file.filePath]));
    await withConnection(async (c) => {
      for (const tasks of groups.values()) {
        if (tasks.length < minInput && !tasks.some((t) => t.deletes.length)) continue;
        const rows: Row[] = [];
        for (const t of tasks) rows.push(...(await readTaskRows(c, md, this.io, t, schema, schema.fields, undefined)));
        for (const t of tasks) removed.add(t.file.filePath);
        if (rows.length) added.push(...(await this.writeInternalRows(c, rows, schema, md['default-spec-id'])));
      }
    });
    for (const [del, targets] of deleteTargets) if ([...targets].every((t) => removed.has(t))) removed.add(del);
    if (!removed.size)
      return {
        snapshotId: snap['snapshot-id'],
        addedFiles: 0,
        addedRows: 0,
        removedFiles: 0,
        droppedRows: 0,
        attempts: 0,
      };
    return this.commitPending(
      {
        operation: 'replace',
        added,
        addedDeletes: [],
        removed,
        written: added.map((f) => f.filePath),
        schemaUpdates: [],
        conflict: 'any',
        droppedRows: 0,
        specId: md['default-spec-id'],
      },
      {},
    );
  }

  /** Merges the current snapshot's manifests into one per partition spec and content (faster planning). */
  async rewriteManifests(): Promise<{ before: number; after: number; snapshotId: bigint | undefined }> {
    for (let attempt = 1; ; attempt++) {
      const md = this.metadata;
      const snap = this.currentSnapshot();
      if (!snap) return { before: 0, after: 0, snapshotId: undefined };
      const manifests = await readSnapshotManifests(md, this.io, snap);
      const groups = new Map<string, { specId: number; content: 0 | 1; entries: ManifestEntry[] }>();
      for (const m of manifests) {
        const k = `${m.partitionSpecId}|${m.content}`;
        const g = groups.get(k) ?? { specId: m.partitionSpecId, content: m.content, entries: [] };
        groups.set(k, g);
        const spec = specById(md, m.partitionSpecId);
        for (const e of await readManifest(this.io.read(m.manifestPath), {
          manifest: m,
          partitionFields: partitionType(spec, md.schemas),
        })) {
          if (e.status !== 2) g.entries.push({ ...e, status: 0 });
        }
      }
      if (manifests.length <= groups.size)
        return { before: manifests.length, after: manifests.length, snapshotId: snap['snapshot-id'] };
      const snapshotId = newSnapshotId();
      const seq = md['last-sequence-number'] + 1;
      const written: string[] = [];
      const out: ManifestFile[] = [];
      for (const g of groups.values()) {
        if (!g.entries.length) continue;
        const spec = specById(md, g.specId);
        const buf = writeManifest(
          g.entries,
          { schema: currentSchema(md), spec, partitionFields: partitionType(spec, md.schemas), content: g.content },
          false,
        );
        const mpath = `${md.location}/metadata/${randomUUID()}-m0.avro`;
        this.io.write(mpath, buf);
        written.push(mpath);
        out.push({
          manifestPath: mpath,
          manifestLength: buf.length,
          partitionSpecId: g.specId,
          content: g.content,
          sequenceNumber: seq,
          minSequenceNumber: Math.min(...g.entries.map((e) => e.sequenceNumber)),
          addedSnapshotId: snapshotId,
          addedFilesCount: 0,
          existingFilesCount: g.entries.length,
          deletedFilesCount: 0,
          addedRowsCount: 0,
          existingRowsCount: g.entries.reduce((a, e) => a + e.dataFile.recordCount, 0),
          deletedRowsCount: 0,
          partitions: partitionSummaries(
            partitionType(spec, md.schemas),
            g.entries.map((e) => e.dataFile),
          ),
        });
      }
      const listPath = `${md.location}/metadata/snap-${snapshotId}-${attempt}-${randomUUID()}.avro`;
      this.io.write(
        listPath,
        writeManifestList(out, { snapshotId, parentSnapshotId: snap['snapshot-id'], sequenceNumber: seq }),
      );
      written.push(listPath);
      const summary: Snapshot['summary'] = {
        ...snap.summary,
        operation: 'replace',
        'manifests-created': String(out.length),
        'manifests-replaced': String(manifests.length),
        'manifests-kept': '0',
      };
      for (const k of [
        'added-data-files',
        'added-records',
        'added-files-size',
        'deleted-data-files',
        'deleted-records',
        'removed-files-size',
        'added-delete-files',
        'added-position-deletes',
        'changed-partition-count',
      ])
        delete summary[k];
      try {
        await this.commitMetadata(
          [{ type: 'assert-ref-snapshot-id', ref: 'main', 'snapshot-id': snap['snapshot-id'] }],
          [
            {
              action: 'add-snapshot',
              snapshot: {
                'snapshot-id': snapshotId,
                'parent-snapshot-id': snap['snapshot-id'],
                'sequence-number': seq,
                'timestamp-ms': Math.max(Date.now(), snap['timestamp-ms'] + 1),
                'manifest-list': listPath,
                summary,
                'schema-id': md['current-schema-id'],
              },
            },
            { action: 'set-snapshot-ref', 'ref-name': 'main', type: 'branch', 'snapshot-id': snapshotId },
          ],
        );
        return { before: manifests.length, after: out.length, snapshotId };
      } catch (err) {
        for (const f of written) this.io.delete(f);
        if (!isTributaryError(err, 'CONFLICT') || !err.retriable || attempt >= MAX_ATTEMPTS) throw err;
        await this.refresh();
      }
    }
  }

  /** Table statistics from manifests: rows, files, bytes, and per-column counts and bounds. */
  async stats(opts: ScanOptions = {}): Promise<TableStats> {
    const md = this.metadata;
    const plan = await planScan(md, this.io, opts);
    const schema = plan.schema;
    const deleteFiles = new Map<string, DataFile>();
    const cols = new Map<
      number,
      { valueCount: number; nullCount: number; sizeBytes: number; lower: unknown; upper: unknown; bounded: boolean }
    >();
    let records = 0;
    let bytes = 0;
    for (const t of plan.tasks) {
      records += t.file.recordCount;
      bytes += t.file.fileSizeInBytes;
      for (const d of t.deletes) deleteFiles.set(d.file.filePath, d.file);
      for (const f of schema.fields) {
        let c = cols.get(f.id);
        if (!c) {
          c = { valueCount: 0, nullCount: 0, sizeBytes: 0, lower: undefined, upper: undefined, bounded: true };
          cols.set(f.id, c);
        }
        c.valueCount += t.file.valueCounts?.get(f.id) ?? 0;
        c.nullCount += t.file.nullValueCounts?.get(f.id) ?? 0;
        c.sizeBytes += t.file.columnSizes?.get(f.id) ?? 0;
        const lb = t.file.lowerBounds?.get(f.id);
        const ub = t.file.upperBounds?.get(f.id);
        const allNull = t.file.nullValueCounts?.get(f.id) === t.file.recordCount;
        if (allNull) continue;
        if (!lb || !ub || typeof f.type !== 'string') {
          c.bounded = false;
          continue;
        }
        const lo = fromBytes(f.type, lb);
        const hi = fromBytes(f.type, ub);
        const { compareInternal } = await import('./values.ts');
        if (c.lower === undefined || compareInternal(lo, c.lower) < 0) c.lower = lo;
        if (c.upper === undefined || compareInternal(hi, c.upper) > 0) c.upper = hi;
      }
    }
    let deleteRecords = 0;
    for (const d of deleteFiles.values()) {
      deleteRecords += d.recordCount;
      bytes += d.fileSizeInBytes;
    }
    const columns: TableStats['columns'] = {};
    for (const f of schema.fields) {
      const c = cols.get(f.id);
      columns[f.name] = {
        valueCount: c?.valueCount ?? 0,
        nullCount: c?.nullCount ?? 0,
        sizeBytes: c?.sizeBytes ?? 0,
        lower: c?.bounded && c.lower !== undefined ? toPublic(f.type, c.lower) : undefined,
        upper: c?.bounded && c.upper !== undefined ? toPublic(f.type, c.upper) : undefined,
      };
    }
    return {
      snapshotId: plan.snapshot?.['snapshot-id'],
      records,
      deleteRecords,
      dataFiles: plan.tasks.length,
      deleteFiles: deleteFiles.size,
      totalBytes: bytes,
      snapshots: md.snapshots.length,
      columns,
    };
  }
}

export interface TableStats {
  snapshotId: bigint | undefined;
  /** Rows in data files (before deletes). */
  records: number;
  deleteRecords: number;
  dataFiles: number;
  deleteFiles: number;
  totalBytes: number;
  snapshots: number;
  columns: Record<string, { valueCount: number; nullCount: number; sizeBytes: number; lower: unknown; upper: unknown }>;
}

/** Creates a table in a catalog and returns it. */
export async function createTable(
  catalog: Catalog,
  id: TableIdentifier,
  opts: {
    schema: Schema | { fields: NestedField[] };
    partition?: PartitionFieldSpec[] | string;
    sortOrder?: { fields: import('./metadata.ts').SortField[] };
    properties?: Record<string, string>;
    location?: string;
  },
): Promise<Table> {
  const { validateSchema } = await import('./types.ts');
  const schema = validateSchema(opts.schema);
  const fields =
    opts.partition === undefined
      ? []
      : typeof opts.partition === 'string'
        ? parsePartitionSpec(opts.partition)
        : opts.partition;
  const specFields = buildSpecFields(undefined, schema, fields);
  const loaded = await catalog.createTable(id, {
    schema,
    spec: { fields: specFields },
    ...(opts.sortOrder ? { sortOrder: opts.sortOrder } : {}),
    ...(opts.properties ? { properties: opts.properties } : {}),
    ...(opts.location ? { location: opts.location } : {}),
  });
  return new Table(catalog, id, loaded);
}

export async function loadTable(catalog: Catalog, id: TableIdentifier): Promise<Table> {
  return new Table(catalog, id, await catalog.loadTable(id));
}
