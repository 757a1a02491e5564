import { TributaryError } from '../core/index.ts';
import { readAvroFile, writeAvroFile } from './avro.ts';
import { bigintToMinBytes, bytesToUuid, minBytesToBigint, toBytes, uuidToBytes } from './conversions.ts';
import { stringifyJson } from './json.ts';
import type { PartitionSpec } from './metadata.ts';
import { type IcebergType, isPrimitive, type NestedField, parseDecimal, parseFixed, type Schema } from './types.ts';
import { compareInternal } from './values.ts';

export type FileContent = 0 | 1 | 2; // data, position deletes, equality deletes

export interface DataFile {
  content: FileContent;
  filePath: string;
  fileFormat: string;
  /** Partition tuple in spec field order, internal values. */
  partition: unknown[];
  recordCount: number;
  fileSizeInBytes: number;
  columnSizes?: Map<number, number>;
  valueCounts?: Map<number, number>;
  nullValueCounts?: Map<number, number>;
  nanValueCounts?: Map<number, number>;
  lowerBounds?: Map<number, Uint8Array>;
  upperBounds?: Map<number, Uint8Array>;
  splitOffsets?: number[];
  equalityIds?: number[];
  sortOrderId?: number;
  referencedDataFile?: string;
}

export interface ManifestEntry {
  status: 0 | 1 | 2; // existing, added, deleted
  snapshotId: bigint;
  sequenceNumber: number;
  fileSequenceNumber: number;
  dataFile: DataFile;
}

export interface FieldSummary {
  containsNull: boolean;
  containsNan?: boolean;
  lowerBound?: Uint8Array;
  upperBound?: Uint8Array;
}

export interface ManifestFile {
  manifestPath: string;
  manifestLength: number;
  partitionSpecId: number;
  content: 0 | 1;
  sequenceNumber: number;
  minSequenceNumber: number;
  addedSnapshotId: bigint;
  addedFilesCount: number;
  existingFilesCount: number;
  deletedFilesCount: number;
  addedRowsCount: number;
  existingRowsCount: number;
  deletedRowsCount: number;
  partitions?: FieldSummary[];
}

const opt = (t: unknown): unknown[] => ['null', t];

export const MANIFEST_LIST_SCHEMA = {
  type: 'record',
  name: 'manifest_file',
  fields: [
    { name: 'manifest_path', type: 'string', 'field-id': 500 },
    { name: 'manifest_length', type: 'long', 'field-id': 501 },
    { name: 'partition_spec_id', type: 'int', 'field-id': 502 },
    { name: 'content', type: 'int', 'field-id': 517 },
    { name: 'sequence_number', type: 'long', 'field-id': 515 },
    { name: 'min_sequence_number', type: 'long', 'field-id': 516 },
    { name: 'added_snapshot_id', type: 'long', 'field-id': 503 },
    { name: 'added_files_count', type: 'int', 'field-id': 504 },
    { name: 'existing_files_count', type: 'int', 'field-id': 505 },
    { name: 'deleted_files_count', type: 'int', 'field-id': 506 },
    { name: 'added_rows_count', type: 'long', 'field-id': 512 },
    { name: 'existing_rows_count', type: 'long', 'field-id': 513 },
    { name: 'deleted_rows_count', type: 'long', 'field-id': 514 },
    {
      name: 'partitions',
      type: opt({
        type: 'array',
        items: {
          type: 'record',
          name: 'r508',
          fields: [
            { name: 'contains_null', type: 'boolean', 'field-id': 509 },
            { name: 'contains_nan', type: opt('boolean'), default: null, 'field-id': 518 },
            { name: 'lower_bound', type: opt('bytes'), default: null, 'field-id': 510 },
            { name: 'upper_bound', type: opt('bytes'), default: null, 'field-id': 511 },
          ],
        },
        'element-id': 508,
      }),
      default: null,
      'field-id': 507,
    },
    { name: 'key_metadata', type: opt('bytes'), default: null, 'field-id': 519 },
  ],
};

function mapOf(name: string, keyId: number, valueId: number, value: string, fieldId: number): unknown {
  return {
    name,
    type: opt({
      type: 'array',
      items: {
        type: 'record',
        name: `k${keyId}_v${valueId}`,
        fields: [
          { name: 'key', type: 'int', 'field-id': keyId },
          { name: 'value', type: value, 'field-id': valueId },
        ],
      },
      logicalType: 'map',
    }),
    default: null,
    'field-id': fieldId,
  };
}

/** Avro schema for an Iceberg primitive (partition values). */
export function avroSchemaFor(t: IcebergType, id: number): unknown {
  if (!isPrimitive(t)) throw new TributaryError('UNSUPPORTED', 'nested partition source types');
  const dec = parseDecimal(t);
  if (dec) {
    let size = 1;
    while (2n ** BigInt(8 * size - 1) < 10n ** BigInt(dec.precision)) size++;
    return {
      type: 'fixed',
      name: `decimal_${id}`,
      size,
      logicalType: 'decimal',
      precision: dec.precision,
      scale: dec.scale,
    };
  }
  const fixed = parseFixed(t);
  if (fixed !== undefined) return { type: 'fixed', name: `fixed_${id}`, size: fixed };
  switch (t) {
    case 'date':
      return { type: 'int', logicalType: 'date' };
    case 'time':
      return { type: 'long', logicalType: 'time-micros' };
    case 'timestamp':
      return { type: 'long', logicalType: 'timestamp-micros', 'adjust-to-utc': false };
    case 'timestamptz':
      return { type: 'long', logicalType: 'timestamp-micros', 'adjust-to-utc': true };
    case 'timestamp_ns':
      return { type: 'long', logicalType: 'timestamp-nanos', 'adjust-to-utc': false };
    case 'timestamptz_ns':
      return { type: 'long', logicalType: 'timestamp-nanos', 'adjust-to-utc': true };
    case 'uuid':
      return { type: 'fixed', name: `uuid_${id}`, size: 16, logicalType: 'uuid' };
    case 'binary':
      return 'bytes';
    default:
      return t;
  }
}

export function manifestEntrySchema(partitionFields: NestedField[]): unknown {
  return {
    type: 'record',
    name: 'manifest_entry',
    fields: [
      { name: 'status', type: 'int', 'field-id': 0 },
      { name: 'snapshot_id', type: opt('long'), default: null, 'field-id': 1 },
      { name: 'sequence_number', type: opt('long'), default: null, 'field-id': 3 },
      { name: 'file_sequence_number', type: opt('long'), default: null, 'field-id': 4 },
      {
        name: 'data_file',
        type: {
          type: 'record',
          name: 'r2',
          fields: [
            { name: 'content', type: 'int', 'field-id': 134 },
            { name: 'file_path', type: 'string', 'field-id': 100 },
            { name: 'file_format', type: 'string', 'field-id': 101 },
            {
              name: 'partition',
              type: {
                type: 'record',
                name: 'r102',
                fields: partitionFields.map((f) => ({
                  name: f.name,
                  type: opt(avroSchemaFor(f.type, f.id)),
                  default: null,
                  'field-id': f.id,
                })),
              },
              'field-id': 102,
            },
            { name: 'record_count', type: 'long', 'field-id': 103 },
            { name: 'file_size_in_bytes', type: 'long', 'field-id': 104 },
            mapOf('column_sizes', 117, 118, 'long', 108),
            mapOf('value_counts', 119, 120, 'long', 109),
            mapOf('null_value_counts', 121, 122, 'long', 110),
            mapOf('nan_value_counts', 138, 139, 'long', 137),
            mapOf('lower_bounds', 126, 127, 'bytes', 125),
            mapOf('upper_bounds', 129, 130, 'bytes', 128),
            { name: 'key_metadata', type: opt('bytes'), default: null, 'field-id': 131 },
            {
              name: 'split_offsets',
              type: opt({ type: 'array', items: 'long', 'element-id': 133 }),
              default: null,
              'field-id': 132,
            },
            {
              name: 'equality_ids',
              type: opt({ type: 'array', items: 'int', 'element-id': 136 }),
              default: null,
              'field-id': 135,
            },
            { name: 'sort_order_id', type: opt('int'), default: null, 'field-id': 140 },
            { name: 'referenced_data_file', type: opt('string'), default: null, 'field-id': 143 },
          ],
        },
        'field-id': 2,
      },
    ],
  };
}

function num(v: unknown): number {
  return typeof v === 'bigint' ? Number(v) : (v as number);
}
function optNum(v: unknown): number | undefined {
  return v === null || v === undefined ? undefined : num(v);
}
function readMap<V>(v: unknown, conv: (x: unknown) => V): Map<number, V> | undefined {
  if (v === null || v === undefined) return undefined;
  const m = new Map<number, V>();
  for (const e of v as { key: number; value: unknown }[]) m.set(num(e.key), conv(e.value));
  return m;
}
function writeMap<V>(m: Map<number, V> | undefined, conv: (x: V) => unknown): unknown {
  if (!m) return null;
  return [...m.entries()].map(([key, value]) => ({ key, value: conv(value) }));
}

function partitionFromAvro(t: IcebergType, v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (isPrimitive(t)) {
    if (parseDecimal(t)) return minBytesToBigint(v as Buffer);
    if (t === 'uuid') return Buffer.isBuffer(v) ? bytesToUuid(v) : v;
    if (t === 'binary' || parseFixed(t) !== undefined) return new Uint8Array(v as Buffer);
    if (t === 'long' && typeof v === 'number') return BigInt(v);
    if (t === 'int' || t === 'date') return num(v);
  }
  return v;
}
function partitionToAvro(t: IcebergType, v: unknown, id: number): unknown {
  if (v === null || v === undefined) return null;
  if (isPrimitive(t)) {
    const dec = parseDecimal(t);
    if (dec) {
      const size = (avroSchemaFor(t, id) as { size: number }).size;
      const min = bigintToMinBytes(v as bigint);
      const out = Buffer.alloc(size, (v as bigint) < 0n ? 0xff : 0);
      Buffer.from(min).copy(out, size - min.length);
      return out;
    }
    if (t === 'uuid') return Buffer.from(uuidToBytes(v as string));
    if (t === 'binary' || parseFixed(t) !== undefined) return Buffer.from(v as Uint8Array);
  }
  return v;
}

export interface ManifestReadContext {
  manifest: ManifestFile;
  /** Partition field types for the manifest's spec (from table metadata). */
  partitionFields: NestedField[];
}

/** Reads a manifest, applying v2 inheritance of snapshot id and sequence numbers. */
export async function readManifest(data: Buffer, ctx: ManifestReadContext): Promise<ManifestEntry[]> {
  const file = await readAvroFile(data, ctx.manifest.manifestPath);
  // partition tuple by field id from the writer schema, so names need not match
  const dataFileSchema = (file.schema as { fields: { name: string; type: unknown }[] }).fields.find(
    (f) => f.name === 'data_file',
  );
  const partSchema = ((dataFileSchema?.type as { fields: { name: string; type: unknown }[] })?.fields ?? []).find(
    (f) => f.name === 'partition',
  );
  const partNames = new Map<number, string>();
  for (const f of (partSchema?.type as { fields?: { name: string; 'field-id'?: number }[] })?.fields ?? []) {
    if (typeof f['field-id'] === 'number') partNames.set(f['field-id'], f.name);
  }
  return file.records.map((r) => {
    const df = r.data_file as Record<string, unknown>;
    const part = (df.partition as Record<string, unknown> | null) ?? {};
    const status = num(r.status) as 0 | 1 | 2;
    const seq =
      optNum(r.sequence_number) ??
      (status === 1 || ctx.manifest.sequenceNumber === 0 ? ctx.manifest.sequenceNumber : undefined);
    const fileSeq = optNum(r.file_sequence_number) ?? (status === 1 ? ctx.manifest.sequenceNumber : seq);
    const dataFile: DataFile = {
      content: (optNum(df.content) ?? 0) as FileContent,
      filePath: df.file_path as string,
      fileFormat: String(df.file_format),
      partition: ctx.partitionFields.map((f) => partitionFromAvro(f.type, part[partNames.get(f.id) ?? f.name])),
      recordCount: num(df.record_count),
      fileSizeInBytes: num(df.file_size_in_bytes),
    };
    const cs = readMap(df.column_sizes, num);
    if (cs) dataFile.columnSizes = cs;
    const vc = readMap(df.value_counts, num);
    if (vc) dataFile.valueCounts = vc;
    const nc = readMap(df.null_value_counts, num);
    if (nc) dataFile.nullValueCounts = nc;
    const nan = readMap(df.nan_value_counts, num);
    if (nan) dataFile.nanValueCounts = nan;
    const lb = readMap(df.lower_bounds, (x) => new Uint8Array(x as Buffer));
    if (lb) dataFile.lowerBounds = lb;
    const ub = readMap(df.upper_bounds, (x) => new Uint8Array(x as Buffer));
    if (ub) dataFile.upperBounds = ub;
    if (Array.isArray(df.split_offsets)) dataFile.splitOffsets = (df.split_offsets as unknown[]).map(num);
    if (Array.isArray(df.equality_ids)) dataFile.equalityIds = (df.equality_ids as unknown[]).map(num);
    if (df.sort_order_id !== null && df.sort_order_id !== undefined) dataFile.sortOrderId = num(df.sort_order_id);
    if (typeof df.referenced_data_file === 'string') dataFile.referencedDataFile = df.referenced_data_file;
    return {
      status,
      snapshotId:
        r.snapshot_id === null || r.snapshot_id === undefined
          ? ctx.manifest.addedSnapshotId
          : BigInt(r.snapshot_id as bigint),
      sequenceNumber: seq ?? 0,
      fileSequenceNumber: fileSeq ?? seq ?? 0,
      dataFile,
    };
  });
}

export interface ManifestWriteContext {
  schema: Schema;
  spec: PartitionSpec;
  partitionFields: NestedField[];
  content: 0 | 1;
}

/** Writes a manifest; ADDED entries leave sequence numbers null so they inherit at commit. */
export function writeManifest(entries: ManifestEntry[], ctx: ManifestWriteContext, inheritAdded = true): Buffer {
  const schema = manifestEntrySchema(ctx.partitionFields);
  const records = entries.map((e) => {
    const f = e.dataFile;
    const partition: Record<string, unknown> = {};
    ctx.partitionFields.forEach((pf, i) => {
      partition[pf.name] = partitionToAvro(pf.type, f.partition[i], pf.id);
    });
    const inherit = inheritAdded && e.status === 1;
    return {
      status: e.status,
      snapshot_id: inherit ? null : e.snapshotId,
      sequence_number: inherit ? null : BigInt(e.sequenceNumber),
      file_sequence_number: inherit ? null : BigInt(e.fileSequenceNumber),
      data_file: {
        content: f.content,
        file_path: f.filePath,
        file_format: f.fileFormat.toUpperCase(),
        partition,
        record_count: BigInt(f.recordCount),
        file_size_in_bytes: BigInt(f.fileSizeInBytes),
        column_sizes: writeMap(f.columnSizes, BigInt),
        value_counts: writeMap(f.valueCounts, BigInt),
        null_value_counts: writeMap(f.nullValueCounts, BigInt),
        nan_value_counts: writeMap(f.nanValueCounts, BigInt),
        lower_bounds: writeMap(f.lowerBounds, (b) => Buffer.from(b)),
        upper_bounds: writeMap(f.upperBounds, (b) => Buffer.from(b)),
        key_metadata: null,
        split_offsets: f.splitOffsets ? f.splitOffsets.map(BigInt) : null,
        equality_ids: f.equalityIds ?? null,
        sort_order_id: f.sortOrderId ?? null,
        referenced_data_file: f.referencedDataFile ?? null,
      },
    };
  });
  return writeAvroFile(schema, records, {
    schema: stringifyJson(ctx.schema),
    'schema-id': String(ctx.schema['schema-id']),
    'partition-spec': stringifyJson(ctx.spec.fields),
    'partition-spec-id': String(ctx.spec['spec-id']),
    'format-version': '2',
    content: ctx.content === 0 ? 'data' : 'deletes',
  });
}

export async function readManifestList(data: Buffer, name: string): Promise<ManifestFile[]> {
  const file = await readAvroFile(data, name);
  return file.records.map((r) => {
    const mf: ManifestFile = {
      manifestPath: r.manifest_path as string,
      manifestLength: num(r.manifest_length),
      partitionSpecId: num(r.partition_spec_id),
      content: (optNum(r.content) ?? 0) as 0 | 1,
      sequenceNumber: optNum(r.sequence_number) ?? 0,
      minSequenceNumber: optNum(r.min_sequence_number) ?? 0,
      addedSnapshotId: BigInt(r.added_snapshot_id as bigint),
      addedFilesCount: optNum(r.added_files_count ?? r.added_data_files_count) ?? 0,
      existingFilesCount: optNum(r.existing_files_count ?? r.existing_data_files_count) ?? 0,
      deletedFilesCount: optNum(r.deleted_files_count ?? r.deleted_data_files_count) ?? 0,
      addedRowsCount: optNum(r.added_rows_count) ?? 0,
      existingRowsCount: optNum(r.existing_rows_count) ?? 0,
      deletedRowsCount: optNum(r.deleted_rows_count) ?? 0,
    };
    if (Array.isArray(r.partitions)) {
      mf.partitions = (r.partitions as Record<string, unknown>[]).map((p) => {
        const s: FieldSummary = { containsNull: p.contains_null === true };
        if (typeof p.contains_nan === 'boolean') s.containsNan = p.contains_nan;
        if (p.lower_bound) s.lowerBound = new Uint8Array(p.lower_bound as Buffer);
        if (p.upper_bound) s.upperBound = new Uint8Array(p.upper_bound as Buffer);
        return s;
      });
    }
    return mf;
  });
}

export function writeManifestList(
  files: ManifestFile[],
  meta: { snapshotId: bigint; parentSnapshotId?: bigint; sequenceNumber: number },
): Buffer {
  const records = files.map((m) => ({
    manifest_path: m.manifestPath,
    manifest_length: BigInt(m.manifestLength),
    partition_spec_id: m.partitionSpecId,
    content: m.content,
    sequence_number: BigInt(m.sequenceNumber),
    min_sequence_number: BigInt(m.minSequenceNumber),
    added_snapshot_id: m.addedSnapshotId,
    added_files_count: m.addedFilesCount,
    existing_files_count: m.existingFilesCount,
    deleted_files_count: m.deletedFilesCount,
    added_rows_count: BigInt(m.addedRowsCount),
    existing_rows_count: BigInt(m.existingRowsCount),
    deleted_rows_count: BigInt(m.deletedRowsCount),
    partitions: m.partitions
      ? m.partitions.map((p) => ({
          contains_null: p.containsNull,
          contains_nan: p.containsNan ?? null,
          lower_bound: p.lowerBound ? Buffer.from(p.lowerBound) : null,
          upper_bound: p.upperBound ? Buffer.from(p.upperBound) : null,
        }))
      : null,
    key_metadata: null,
  }));
  return writeAvroFile(MANIFEST_LIST_SCHEMA, records, {
    'snapshot-id': meta.snapshotId.toString(),
    'parent-snapshot-id': meta.parentSnapshotId === undefined ? 'null' : meta.parentSnapshotId.toString(),
    'sequence-number': String(meta.sequenceNumber),
    'format-version': '2',
  });
}

/** Manifest-list partition summaries (contains_null / contains_nan / bounds) over a manifest's files. */
export function partitionSummaries(partitionFields: NestedField[], files: DataFile[]): FieldSummary[] {
  return partitionFields.map((pf, i) => {
    let containsNull = false;
    let containsNan = false;
    let lo: unknown;
    let hi: unknown;
    for (const f of files) {
      const v = f.partition[i];
      if (v === null || v === undefined) {
        containsNull = true;
        continue;
      }
      if (typeof v === 'number' && Number.isNaN(v)) {
        containsNan = true;
        continue;
      }
      if (lo === undefined || compareInternal(v, lo) < 0) lo = v;
      if (hi === undefined || compareInternal(v, hi) > 0) hi = v;
    }
    const s: FieldSummary = { containsNull };
    if (pf.type === 'float' || pf.type === 'double') s.containsNan = containsNan;
    if (lo !== undefined && hi !== undefined && isPrimitive(pf.type)) {
      s.lowerBound = toBytes(pf.type, lo);
      s.upperBound = toBytes(pf.type, hi);
    }
    return s;
  });
}
