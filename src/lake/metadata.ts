import { randomUUID } from 'node:crypto';
import { invalidArgument, TributaryError } from '../core/index.ts';
import { parseJson, stringifyJson } from './json.ts';
import { canTransform, parseTransform, transformResultType } from './transforms.ts';
import { findField, type IcebergType, type NestedField, type Schema, validateSchema } from './types.ts';

export interface PartitionField {
  'source-id': number;
  'field-id': number;
  name: string;
  transform: string;
}
export interface PartitionSpec {
  'spec-id': number;
  fields: PartitionField[];
}
export interface SortField {
  transform: string;
  'source-id': number;
  direction: 'asc' | 'desc';
  'null-order': 'nulls-first' | 'nulls-last';
}
export interface SortOrder {
  'order-id': number;
  fields: SortField[];
}
export interface Snapshot {
  'snapshot-id': bigint;
  'parent-snapshot-id'?: bigint;
  'sequence-number': number;
  'timestamp-ms': number;
  'manifest-list': string;
  summary: Record<string, string> & { operation: string };
  'schema-id'?: number;
}
export interface SnapshotRef {
  'snapshot-id': bigint;
  type: 'branch' | 'tag';
  'min-snapshots-to-keep'?: number;
  'max-snapshot-age-ms'?: bigint;
  'max-ref-age-ms'?: bigint;
}
export interface TableMetadata {
  'format-version': 2;
  'table-uuid': string;
  location: string;
  'last-sequence-number': number;
  'last-updated-ms': number;
  'last-column-id': number;
  schemas: Schema[];
  'current-schema-id': number;
  'partition-specs': PartitionSpec[];
  'default-spec-id': number;
  'last-partition-id': number;
  properties: Record<string, string>;
  'current-snapshot-id'?: bigint;
  snapshots: Snapshot[];
  'snapshot-log': { 'snapshot-id': bigint; 'timestamp-ms': number }[];
  'metadata-log': { 'metadata-file': string; 'timestamp-ms': number }[];
  'sort-orders': SortOrder[];
  'default-sort-order-id': number;
  refs: Record<string, SnapshotRef>;
  statistics?: unknown[];
  'partition-statistics'?: unknown[];
}

function req<T>(o: Record<string, unknown>, key: string, kind: string, path: string): T {
  const v = o[key];
  const ok =
    kind === 'array'
      ? Array.isArray(v)
      : kind === 'id'
        ? typeof v === 'bigint' || typeof v === 'number'
        : typeof v === kind;
  if (!ok) throw invalidArgument(`${path}.${key}`, kind === 'id' ? 'an integer id' : `a ${kind}`, v);
  return v as T;
}

function toBig(v: unknown): bigint {
  return typeof v === 'bigint' ? v : BigInt(v as number);
}

/** Parses table metadata JSON (v2; v1 is upgraded in memory). */
export function parseTableMetadata(text: string | unknown, path = 'metadata'): TableMetadata {
  const raw = (typeof text === 'string' ? parseJson(text) : text) as Record<string, unknown>;
  if (raw === null || typeof raw !== 'object') throw invalidArgument(path, 'a table metadata object', raw);
  const version = raw['format-version'];
  if (version !== 1 && version !== 2) {
    throw new TributaryError('UNSUPPORTED', `${path}.format-version: expected 1 or 2, got ${String(version)}`);
  }
  let schemasRaw = raw.schemas as unknown[] | undefined;
  let currentSchemaId = raw['current-schema-id'] as number | undefined;
  if (!Array.isArray(schemasRaw)) {
    if (version === 1 && raw.schema) {
      schemasRaw = [raw.schema];
      currentSchemaId = (raw.schema as { 'schema-id'?: number })['schema-id'] ?? 0;
    } else throw invalidArgument(`${path}.schemas`, 'an array of schemas');
  }
  const schemas = schemasRaw.map((s, i) => validateSchema(s, `${path}.schemas[${i}]`));
  if (currentSchemaId === undefined) {
    if (version === 2) throw invalidArgument(`${path}.current-schema-id`, 'a number');
    currentSchemaId = schemas[0]?.['schema-id'] ?? 0;
  }
  if (!schemas.some((s) => s['schema-id'] === currentSchemaId)) {
    throw invalidArgument(
      `${path}.current-schema-id`,
      `one of the schema ids ${schemas.map((s) => s['schema-id']).join(', ')}`,
      currentSchemaId,
    );
  }
  let specs = raw['partition-specs'] as PartitionSpec[] | undefined;
  if (!Array.isArray(specs)) {
    if (version === 1 && Array.isArray(raw['partition-spec'])) {
      let next = 1000;
      specs = [
        {
          'spec-id': 0,
          fields: (raw['partition-spec'] as PartitionField[]).map((f) => ({
            ...f,
            'field-id': f['field-id'] ?? next++,
          })),
        },
      ];
    } else throw invalidArgument(`${path}.partition-specs`, 'an array of partition specs');
  }
  const defaultSpecId =
    (raw['default-spec-id'] as number | undefined) ?? (version === 1 ? (specs[0]?.['spec-id'] ?? 0) : undefined);
  if (defaultSpecId === undefined) throw invalidArgument(`${path}.default-spec-id`, 'a number');
  const allPartIds = specs.flatMap((s) => s.fields.map((f) => f['field-id']));
  const lastPartitionId =
    (raw['last-partition-id'] as number | undefined) ?? (version === 1 ? Math.max(999, ...allPartIds) : undefined);
  if (lastPartitionId === undefined) throw invalidArgument(`${path}.last-partition-id`, 'a number');
  let sortOrders = raw['sort-orders'] as SortOrder[] | undefined;
  if (!Array.isArray(sortOrders)) {
    if (version === 2) throw invalidArgument(`${path}.sort-orders`, 'an array of sort orders');
    sortOrders = [{ 'order-id': 0, fields: [] }];
  }
  const snapshots = ((raw.snapshots as Record<string, unknown>[] | undefined) ?? []).map((s, i) => {
    const p = `${path}.snapshots[${i}]`;
    const snap: Snapshot = {
      'snapshot-id': toBig(req(s, 'snapshot-id', 'id', p)),
      'sequence-number': (s['sequence-number'] as number | undefined) ?? 0,
      'timestamp-ms': req<number>(s, 'timestamp-ms', 'number', p),
      'manifest-list': req<string>(s, 'manifest-list', 'string', p),
      summary: (s.summary as Snapshot['summary'] | undefined) ?? { operation: 'append' },
    };
    if (s['parent-snapshot-id'] !== undefined && s['parent-snapshot-id'] !== null)
      snap['parent-snapshot-id'] = toBig(s['parent-snapshot-id']);
    if (typeof s['schema-id'] === 'number') snap['schema-id'] = s['schema-id'];
    return snap;
  });
  const cur = raw['current-snapshot-id'];
  const currentSnapshotId = cur === undefined || cur === null || toBig(cur) === -1n ? undefined : toBig(cur);
  const refs: Record<string, SnapshotRef> = {};
  for (const [name, r] of Object.entries((raw.refs as Record<string, Record<string, unknown>> | undefined) ?? {})) {
    const ref: SnapshotRef = { 'snapshot-id': toBig(r['snapshot-id']), type: r.type === 'tag' ? 'tag' : 'branch' };
    if (typeof r['min-snapshots-to-keep'] === 'number') ref['min-snapshots-to-keep'] = r['min-snapshots-to-keep'];
    if (r['max-snapshot-age-ms'] !== undefined) ref['max-snapshot-age-ms'] = toBig(r['max-snapshot-age-ms']);
    if (r['max-ref-age-ms'] !== undefined) ref['max-ref-age-ms'] = toBig(r['max-ref-age-ms']);
    refs[name] = ref;
  }
  if (currentSnapshotId !== undefined && !refs.main) refs.main = { 'snapshot-id': currentSnapshotId, type: 'branch' };
  const md: TableMetadata = {
    'format-version': 2,
    'table-uuid': req<string>(raw, 'table-uuid', 'string', path),
    location: req<string>(raw, 'location', 'string', path),
    'last-sequence-number': (raw['last-sequence-number'] as number | undefined) ?? 0,
    'last-updated-ms': req<number>(raw, 'last-updated-ms', 'number', path),
    'last-column-id': req<number>(raw, 'last-column-id', 'number', path),
    schemas,
    'current-schema-id': currentSchemaId,
    'partition-specs': specs,
    'default-spec-id': defaultSpecId,
    'last-partition-id': lastPartitionId,
    properties: (raw.properties as Record<string, string> | undefined) ?? {},
    snapshots,
    'snapshot-log': (
      (raw['snapshot-log'] as { 'snapshot-id': unknown; 'timestamp-ms': number }[] | undefined) ?? []
    ).map((e) => ({
      'snapshot-id': toBig(e['snapshot-id']),
      'timestamp-ms': e['timestamp-ms'],
    })),
    'metadata-log': (raw['metadata-log'] as TableMetadata['metadata-log'] | undefined) ?? [],
    'sort-orders': sortOrders,
    'default-sort-order-id': (raw['default-sort-order-id'] as number | undefined) ?? 0,
    refs,
  };
  if (currentSnapshotId !== undefined) md['current-snapshot-id'] = currentSnapshotId;
  if (Array.isArray(raw.statistics)) md.statistics = raw.statistics;
  if (Array.isArray(raw['partition-statistics'])) md['partition-statistics'] = raw['partition-statistics'];
  if (!specs.some((s) => s['spec-id'] === defaultSpecId)) {
    throw invalidArgument(
      `${path}.default-spec-id`,
      `one of the spec ids ${specs.map((s) => s['spec-id']).join(', ')}`,
      defaultSpecId,
    );
  }
  return md;
}

export function serializeTableMetadata(md: TableMetadata): string {
  const out: Record<string, unknown> = { ...md };
  out['current-snapshot-id'] = md['current-snapshot-id'] ?? -1n;
  return stringifyJson(out, 2);
}

export function currentSchema(md: TableMetadata): Schema {
  const s = md.schemas.find((x) => x['schema-id'] === md['current-schema-id']);
  if (!s) throw new TributaryError('CORRUPT_DATA', `current-schema-id ${md['current-schema-id']} not in schemas`);
  return s;
}
export function schemaById(md: TableMetadata, id: number | undefined): Schema {
  if (id === undefined) return currentSchema(md);
  return md.schemas.find((x) => x['schema-id'] === id) ?? currentSchema(md);
}
export function specById(md: TableMetadata, id: number): PartitionSpec {
  const s = md['partition-specs'].find((x) => x['spec-id'] === id);
  if (!s) throw new TributaryError('CORRUPT_DATA', `partition spec ${id} not in table metadata`);
  return s;
}
export function defaultSpec(md: TableMetadata): PartitionSpec {
  return specById(md, md['default-spec-id']);
}
export function snapshotById(md: TableMetadata, id: bigint): Snapshot | undefined {
  return md.snapshots.find((s) => s['snapshot-id'] === id);
}
export function currentSnapshot(md: TableMetadata, branch = 'main'): Snapshot | undefined {
  const ref = md.refs[branch];
  const id = ref ? ref['snapshot-id'] : branch === 'main' ? md['current-snapshot-id'] : undefined;
  return id === undefined ? undefined : snapshotById(md, id);
}

/** Partition field types for a spec under a schema (struct of partition tuple). */
export function partitionType(spec: PartitionSpec, schema: Schema | Schema[]): NestedField[] {
  const schemas = Array.isArray(schema) ? schema : [schema];
  return spec.fields.map((f) => {
    let src: NestedField | undefined;
    for (let i = schemas.length - 1; i >= 0 && !src; i--) src = findField(schemas[i] as Schema, f['source-id']);
    const srcType: IcebergType = src?.type ?? 'int';
    return {
      id: f['field-id'],
      name: f.name,
      required: false,
      type: transformResultType(parseTransform(f.transform), srcType),
    };
  });
}

export interface NewTableOptions {
  location: string;
  schema: Schema;
  spec?: { fields: Omit<PartitionField, 'field-id'>[] | PartitionField[] };
  sortOrder?: { fields: SortField[] };
  properties?: Record<string, string>;
}

/** A fresh v2 metadata object: ids are reassigned only when the caller left them to us (spec ids). */
export function newTableMetadata(opts: NewTableOptions): TableMetadata {
  const schema = validateSchema(opts.schema);
  schema['schema-id'] = 0;
  let nextPart = 1000;
  const fields: PartitionField[] = (opts.spec?.fields ?? []).map((f, i) => {
    const src = findField(schema, f['source-id']);
    if (!src)
      throw invalidArgument(`partition-spec.fields[${i}].source-id`, 'the id of a schema field', f['source-id']);
    const tr = parseTransform(f.transform);
    if (!canTransform(tr, src.type)) {
      throw invalidArgument(
        `partition-spec.fields[${i}].transform`,
        `a transform valid for ${String(src.type)}`,
        f.transform,
      );
    }
    const id = (f as PartitionField)['field-id'] ?? nextPart;
    nextPart = Math.max(nextPart, id + 1);
    return { 'source-id': f['source-id'], 'field-id': id, name: f.name, transform: f.transform };
  });
  const sortFields = opts.sortOrder?.fields ?? [];
  for (const [i, f] of sortFields.entries()) {
    if (!findField(schema, f['source-id']))
      throw invalidArgument(`sort-order.fields[${i}].source-id`, 'the id of a schema field', f['source-id']);
  }
  const now = Date.now();
  return {
    'format-version': 2,
    'table-uuid': randomUUID(),
    location: opts.location,
    'last-sequence-number': 0,
    'last-updated-ms': now,
    'last-column-id': Math.max(0, ...collectIds(schema)),
    schemas: [schema],
    'current-schema-id': 0,
    'partition-specs': [{ 'spec-id': 0, fields }],
    'default-spec-id': 0,
    'last-partition-id': Math.max(999, ...fields.map((f) => f['field-id'])),
    properties: { 'write.parquet.compression-codec': 'zstd', ...(opts.properties ?? {}) },
    snapshots: [],
    'snapshot-log': [],
    'metadata-log': [],
    'sort-orders': sortFields.length
      ? [
          { 'order-id': 0, fields: [] },
          { 'order-id': 1, fields: sortFields },
        ]
      : [{ 'order-id': 0, fields: [] }],
    'default-sort-order-id': sortFields.length ? 1 : 0,
    refs: {},
  };
}

function collectIds(s: Schema): number[] {
  const ids: number[] = [];
  const walk = (t: IcebergType): void => {
    if (typeof t === 'string') return;
    if (t.type === 'struct')
      for (const f of t.fields) {
        ids.push(f.id);
        walk(f.type);
      }
    else if (t.type === 'list') {
      ids.push(t['element-id']);
      walk(t.element);
    } else {
      ids.push(t['key-id'], t['value-id']);
      walk(t.key);
      walk(t.value);
    }
  };
  walk(s);
  return ids;
}

export function newSnapshotId(): bigint {
  // positive 63-bit random id
  const b = new BigUint64Array(1);
  crypto.getRandomValues(b);
  const v = (b[0] as bigint) & 0x7fffffffffffffffn;
  return v === 0n ? 1n : v;
}
