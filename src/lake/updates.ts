import { invalidArgument, TributaryError } from '../core/index.ts';
import type { PartitionSpec, Snapshot, SnapshotRef, SortOrder, TableMetadata } from './metadata.ts';
import { maxFieldId, type Schema, validateSchema } from './types.ts';

/** Commit requirements and updates, as in the Iceberg REST spec (CommitTableRequest). */
export type TableRequirement =
  | { type: 'assert-create' }
  | { type: 'assert-table-uuid'; uuid: string }
  | { type: 'assert-ref-snapshot-id'; ref: string; 'snapshot-id': bigint | null }
  | { type: 'assert-last-assigned-field-id'; 'last-assigned-field-id': number }
  | { type: 'assert-current-schema-id'; 'current-schema-id': number }
  | { type: 'assert-last-assigned-partition-id'; 'last-assigned-partition-id': number }
  | { type: 'assert-default-spec-id'; 'default-spec-id': number }
  | { type: 'assert-default-sort-order-id'; 'default-sort-order-id': number };

export type TableUpdate =
  | { action: 'assign-uuid'; uuid: string }
  | { action: 'upgrade-format-version'; 'format-version': number }
  | { action: 'add-schema'; schema: Schema; 'last-column-id'?: number }
  | { action: 'set-current-schema'; 'schema-id': number }
  | { action: 'add-spec'; spec: PartitionSpec }
  | { action: 'set-default-spec'; 'spec-id': number }
  | { action: 'add-sort-order'; 'sort-order': SortOrder }
  | { action: 'set-default-sort-order'; 'sort-order-id': number }
  | { action: 'add-snapshot'; snapshot: Snapshot }
  | ({ action: 'set-snapshot-ref'; 'ref-name': string } & SnapshotRef)
  | { action: 'remove-snapshots'; 'snapshot-ids': bigint[] }
  | { action: 'remove-snapshot-ref'; 'ref-name': string }
  | { action: 'set-location'; location: string }
  | { action: 'set-properties'; updates: Record<string, string> }
  | { action: 'remove-properties'; removals: string[] };

export function commitFailed(message: string): TributaryError {
  return new TributaryError('CONFLICT', `commit failed: ${message}`, { retriable: true });
}

/** Checks requirements against the current metadata (undefined: the table does not exist yet). */
export function checkRequirements(md: TableMetadata | undefined, reqs: TableRequirement[]): void {
  for (const r of reqs) {
    if (r.type === 'assert-create') {
      if (md) throw new TributaryError('ALREADY_EXISTS', 'commit failed: table already exists (assert-create)');
      continue;
    }
    if (!md) throw new TributaryError('NOT_FOUND', `commit failed: table does not exist (${r.type})`);
    switch (r.type) {
      case 'assert-table-uuid':
        if (md['table-uuid'] !== r.uuid) throw commitFailed(`table uuid is ${md['table-uuid']}, expected ${r.uuid}`);
        break;
      case 'assert-ref-snapshot-id': {
        const ref = md.refs[r.ref];
        const cur = ref ? ref['snapshot-id'] : null;
        const want = r['snapshot-id'] === null || r['snapshot-id'] === undefined ? null : BigInt(r['snapshot-id']);
        if (cur !== want)
          throw commitFailed(
            `branch ${r.ref} is at ${cur ?? 'no snapshot'}, expected ${want ?? 'no snapshot'} (a concurrent commit won)`,
          );
        break;
      }
      case 'assert-last-assigned-field-id':
        if (md['last-column-id'] !== r['last-assigned-field-id'])
          throw commitFailed(`last-column-id is ${md['last-column-id']}, expected ${r['last-assigned-field-id']}`);
        break;
      case 'assert-current-schema-id':
        if (md['current-schema-id'] !== r['current-schema-id'])
          throw commitFailed(`current schema is ${md['current-schema-id']}, expected ${r['current-schema-id']}`);
        break;
      case 'assert-last-assigned-partition-id':
        if (md['last-partition-id'] !== r['last-assigned-partition-id'])
          throw commitFailed(
            `last-partition-id is ${md['last-partition-id']}, expected ${r['last-assigned-partition-id']}`,
          );
        break;
      case 'assert-default-spec-id':
        if (md['default-spec-id'] !== r['default-spec-id'])
          throw commitFailed(`default spec is ${md['default-spec-id']}, expected ${r['default-spec-id']}`);
        break;
      case 'assert-default-sort-order-id':
        if (md['default-sort-order-id'] !== r['default-sort-order-id'])
          throw commitFailed(
            `default sort order is ${md['default-sort-order-id']}, expected ${r['default-sort-order-id']}`,
          );
        break;
      default:
        throw invalidArgument('requirements[].type', 'a known requirement type', (r as { type: string }).type);
    }
  }
}

/** Applies updates to a copy of the metadata, keeping logs (snapshot-log, metadata-log) consistent. */
export function applyUpdates(
  base: TableMetadata,
  updates: TableUpdate[],
  previousMetadataLocation?: string,
): TableMetadata {
  const md: TableMetadata = structuredClone(base);
  const now = Date.now();
  let lastAddedSchema: number | undefined;
  let lastAddedSpec: number | undefined;
  let lastAddedOrder: number | undefined;
  const addedHere = new Set<bigint>();
  for (const [i, u] of updates.entries()) {
    const at = `updates[${i}]`;
    switch (u.action) {
      case 'assign-uuid':
        md['table-uuid'] = u.uuid;
        break;
      case 'upgrade-format-version':
        if (u['format-version'] !== 2)
          throw new TributaryError('UNSUPPORTED', `${at}: only format-version 2 is supported`);
        break;
      case 'add-schema': {
        const schema = validateSchema(u.schema, `${at}.schema`);
        const same = md.schemas.find(
          (s) =>
            JSON.stringify(s.fields) === JSON.stringify(schema.fields) &&
            JSON.stringify(s['identifier-field-ids'] ?? []) === JSON.stringify(schema['identifier-field-ids'] ?? []),
        );
        if (same) {
          lastAddedSchema = same['schema-id'];
          break;
        }
        const id = Math.max(-1, ...md.schemas.map((s) => s['schema-id'])) + 1;
        schema['schema-id'] = id;
        md.schemas.push(schema);
        md['last-column-id'] = Math.max(md['last-column-id'], u['last-column-id'] ?? 0, maxFieldId(schema));
        lastAddedSchema = id;
        break;
      }
      case 'set-current-schema': {
        const id = u['schema-id'] === -1 ? lastAddedSchema : u['schema-id'];
        if (id === undefined || !md.schemas.some((s) => s['schema-id'] === id))
          throw invalidArgument(`${at}.schema-id`, 'an existing schema id', u['schema-id']);
        md['current-schema-id'] = id;
        break;
      }
      case 'add-spec': {
        const same = md['partition-specs'].find((s) => JSON.stringify(s.fields) === JSON.stringify(u.spec.fields));
        if (same) {
          lastAddedSpec = same['spec-id'];
          break;
        }
        const id = Math.max(-1, ...md['partition-specs'].map((s) => s['spec-id'])) + 1;
        md['partition-specs'].push({ 'spec-id': id, fields: u.spec.fields });
        md['last-partition-id'] = Math.max(md['last-partition-id'], ...u.spec.fields.map((f) => f['field-id']));
        lastAddedSpec = id;
        break;
      }
      case 'set-default-spec': {
        const id = u['spec-id'] === -1 ? lastAddedSpec : u['spec-id'];
        if (id === undefined || !md['partition-specs'].some((s) => s['spec-id'] === id))
          throw invalidArgument(`${at}.spec-id`, 'an existing spec id', u['spec-id']);
        md['default-spec-id'] = id;
        break;
      }
      case 'add-sort-order': {
        const id =
          u['sort-order'].fields.length === 0 ? 0 : Math.max(0, ...md['sort-orders'].map((s) => s['order-id'])) + 1;
        if (!md['sort-orders'].some((s) => s['order-id'] === id))
          md['sort-orders'].push({ 'order-id': id, fields: u['sort-order'].fields });
        lastAddedOrder = id;
        break;
      }
      case 'set-default-sort-order': {
        const id = u['sort-order-id'] === -1 ? lastAddedOrder : u['sort-order-id'];
        if (id === undefined || !md['sort-orders'].some((s) => s['order-id'] === id))
          throw invalidArgument(`${at}.sort-order-id`, 'an existing sort order id', u['sort-order-id']);
        md['default-sort-order-id'] = id;
        break;
      }
      case 'add-snapshot': {
        const s = u.snapshot;
        if (md.snapshots.some((x) => x['snapshot-id'] === BigInt(s['snapshot-id'])))
          throw commitFailed(`snapshot ${s['snapshot-id']} already exists`);
        if (s['sequence-number'] <= md['last-sequence-number'] && md.snapshots.length > 0) {
          throw commitFailed(
            `sequence number ${s['sequence-number']} is not above last-sequence-number ${md['last-sequence-number']}`,
          );
        }
        md.snapshots.push({
          ...s,
          'snapshot-id': BigInt(s['snapshot-id']),
          ...(s['parent-snapshot-id'] !== undefined ? { 'parent-snapshot-id': BigInt(s['parent-snapshot-id']) } : {}),
        });
        md['last-sequence-number'] = Math.max(md['last-sequence-number'], s['sequence-number']);
        addedHere.add(BigInt(s['snapshot-id']));
        break;
      }
      case 'set-snapshot-ref': {
        const id = BigInt(u['snapshot-id']);
        const snap = md.snapshots.find((s) => s['snapshot-id'] === id);
        if (!snap) throw invalidArgument(`${at}.snapshot-id`, 'an existing snapshot id', id);
        const ref: SnapshotRef = { 'snapshot-id': id, type: u.type };
        if (u['min-snapshots-to-keep'] !== undefined) ref['min-snapshots-to-keep'] = u['min-snapshots-to-keep'];
        if (u['max-snapshot-age-ms'] !== undefined) ref['max-snapshot-age-ms'] = BigInt(u['max-snapshot-age-ms']);
        if (u['max-ref-age-ms'] !== undefined) ref['max-ref-age-ms'] = BigInt(u['max-ref-age-ms']);
        md.refs[u['ref-name']] = ref;
        if (u['ref-name'] === 'main') {
          md['current-snapshot-id'] = id;
          // a new snapshot becomes current at its own timestamp; a rollback at the time it happens
          md['snapshot-log'].push({
            'snapshot-id': id,
            'timestamp-ms': addedHere.has(id) ? snap['timestamp-ms'] : now,
          });
        }
        break;
      }
      case 'remove-snapshots': {
        const ids = new Set(u['snapshot-ids'].map((x) => BigInt(x)));
        md.snapshots = md.snapshots.filter((s) => !ids.has(s['snapshot-id']));
        md['snapshot-log'] = md['snapshot-log'].filter((e) => !ids.has(e['snapshot-id']));
        for (const [name, r] of Object.entries(md.refs))
          if (ids.has(r['snapshot-id']) && name !== 'main') delete md.refs[name];
        break;
      }
      case 'remove-snapshot-ref':
        delete md.refs[u['ref-name']];
        if (u['ref-name'] === 'main') delete md['current-snapshot-id'];
        break;
      case 'set-location':
        md.location = u.location;
        break;
      case 'set-properties':
        Object.assign(md.properties, u.updates);
        break;
      case 'remove-properties':
        for (const k of u.removals) delete md.properties[k];
        break;
      default:
        throw invalidArgument(`${at}.action`, 'a known update action', (u as { action: string }).action);
    }
  }
  md['last-updated-ms'] = Math.max(now, base['last-updated-ms'] + 1);
  if (previousMetadataLocation) {
    md['metadata-log'].push({ 'metadata-file': previousMetadataLocation, 'timestamp-ms': base['last-updated-ms'] });
    const max = Number(md.properties['write.metadata.previous-versions-max'] ?? 100);
    if (md['metadata-log'].length > max) md['metadata-log'] = md['metadata-log'].slice(-max);
  }
  return md;
}
