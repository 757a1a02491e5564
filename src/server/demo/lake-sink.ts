/**
 * Exactly-once sink from a topic into an Iceberg table: the consumed offsets are committed in the same
 * snapshot as the rows (snapshot summary property), and a restarted sink resumes from the offsets of the
 * table's current snapshot, so no record lands twice or goes missing. A new field in the incoming events
 * evolves the table's schema (a new optional column) before the rows that carry it are written.
 */

import type { Catalog, Table } from '../../lake/index.ts';
import { createTable, loadTable } from '../../lake/index.ts';
import type { Consumer, LogClient } from '../../log/index.ts';
import type { EnrichedEvent } from './jobs.ts';

export const OFFSETS_PROPERTY = 'tributary.source-offsets';

export const EVENTS_TABLE = { namespace: ['demo'], name: 'events' };

/** Columns of the events table: name in the table -> how it comes from an enriched event. */
const BASE_FIELDS = [
  { id: 1, name: 'event_id', required: true, type: 'string' },
  { id: 2, name: 'ts', required: true, type: 'timestamptz' },
  { id: 3, name: 'user_id', required: true, type: 'string' },
  { id: 4, name: 'event_type', required: true, type: 'string' },
  { id: 5, name: 'value', required: false, type: 'double' },
  { id: 6, name: 'ip', required: false, type: 'string' },
  { id: 7, name: 'country', required: false, type: 'string' },
  { id: 8, name: 'city', required: false, type: 'string' },
  { id: 9, name: 'tier', required: false, type: 'string' },
  { id: 10, name: 'session_id', required: false, type: 'string' },
  { id: 11, name: 'enriched', required: false, type: 'boolean' },
  { id: 12, name: 'page', required: false, type: 'string' },
  { id: 13, name: 'sku', required: false, type: 'string' },
];

/** Fields of the event that map to table columns (others found later evolve the schema). */
const KNOWN: Record<string, string> = {
  eventId: 'event_id',
  timestamp: 'ts',
  userId: 'user_id',
  eventType: 'event_type',
  value: 'value',
  ip: 'ip',
  country: 'country',
  city: 'city',
  tier: 'tier',
  sessionId: 'session_id',
  enriched: 'enriched',
  page: 'page',
  sku: 'sku',
};

function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`).replace(/[^a-z0-9_]/g, '_');
}

export function toRow(e: Record<string, unknown>): Record<string, unknown> {
  const row: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(e)) row[KNOWN[k] ?? snake(k)] = v ?? null;
  return row;
}

export async function ensureEventsTable(catalog: Catalog): Promise<Table> {
  if (!(await catalog.namespaceExists(['demo']))) await catalog.createNamespace(['demo']);
  if (await catalog.tableExists(EVENTS_TABLE)) return loadTable(catalog, EVENTS_TABLE);
  return createTable(catalog, EVENTS_TABLE, {
    schema: { fields: BASE_FIELDS as never },
    partition: 'day(ts), bucket(16, user_id)',
  });
}

export interface LakeSinkStats {
  rows: number;
  commits: number;
  schemaChanges: string[];
  lastError: string | null;
}

export interface LakeSink {
  readonly stats: LakeSinkStats;
  /** Committed offset (next to read) per partition. */
  committed(): Map<number, bigint>;
  stop(): Promise<void>;
}

/** Starts the sink: polls `topic` read_committed and commits a snapshot every `flushMs` or `maxRows`. */
export async function startLakeSink(opts: {
  client: LogClient;
  catalog: Catalog;
  topic: string;
  partitions: number;
  flushMs?: number;
  maxRows?: number;
}): Promise<LakeSink> {
  const table = await ensureEventsTable(opts.catalog);
  const stats: LakeSinkStats = { rows: 0, commits: 0, schemaChanges: [], lastError: null };
  const committed = new Map<number, bigint>();
  const saved = table.currentSnapshot()?.summary[OFFSETS_PROPERTY];
  if (saved)
    for (const [p, o] of Object.entries(JSON.parse(saved) as Record<string, string>))
      committed.set(Number(p), BigInt(o));
  const consumer: Consumer = opts.client.consumer({ isolation: 'read_committed', autoOffsetReset: 'earliest' });
  const tps = Array.from({ length: opts.partitions }, (_, partition) => ({ topic: opts.topic, partition }));
  consumer.assign(tps);
  for (const tp of tps) consumer.seek(tp, committed.get(tp.partition) ?? 0n);

  let stopping = false;
  let pending: Record<string, unknown>[] = [];
  const pendingOffsets = new Map<number, bigint>();
  let lastFlush = Date.now();
  const flushMs = opts.flushMs ?? 1500;
  const maxRows = opts.maxRows ?? 20_000;

  const flush = async () => {
    if (pending.length === 0) return;
    const columns = new Set(table.schema().fields.map((f) => f.name));
    const added = new Set<string>();
    for (const row of pending) for (const k of Object.keys(row)) if (!columns.has(k)) added.add(k);
    if (added.size > 0) {
      // Schema evolution: a new field appeared in the events; add it as an optional column first.
      await table.evolveSchema(
        [...added].map((name) => ({ op: 'add' as const, name, type: inferType(pending, name) })),
      );
      stats.schemaChanges.push(...[...added].map((n) => `added column ${n} (${inferType(pending, n)})`));
    }
    const offsets = new Map(committed);
    for (const [p, o] of pendingOffsets) offsets.set(p, o);
    const prop = JSON.stringify(Object.fromEntries([...offsets].map(([p, o]) => [String(p), o.toString()])));
    const result = await table.append(pending, { properties: { [OFFSETS_PROPERTY]: prop } });
    stats.rows += result.addedRows;
    stats.commits++;
    for (const [p, o] of offsets) committed.set(p, o);
    pending = [];
    pendingOffsets.clear();
    lastFlush = Date.now();
  };

  const loop = (async () => {
    while (!stopping) {
      try {
        const records = await consumer.poll(200);
        // Positions move past transaction markers too (record offsets never reach them).
        for (const tp of tps) {
          const pos = consumer.position(tp);
          if (pos !== undefined && pos > (pendingOffsets.get(tp.partition) ?? committed.get(tp.partition) ?? 0n))
            pendingOffsets.set(tp.partition, pos);
        }
        for (const r of records) {
          if (r.value === null) continue;
          pending.push(
            toRow(JSON.parse(r.value.toString('utf8')) as EnrichedEvent as unknown as Record<string, unknown>),
          );
        }
        if (pending.length >= maxRows || (pending.length > 0 && Date.now() - lastFlush >= flushMs)) await flush();
        else if (pending.length === 0 && pendingOffsets.size > 0) {
          // Only control records: nothing to write, but remember the position.
          for (const [p, o] of pendingOffsets) committed.set(p, o);
          pendingOffsets.clear();
        }
      } catch (err) {
        stats.lastError = (err as Error).message;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    await flush();
  })();

  return {
    stats,
    committed: () => new Map(committed),
    async stop() {
      stopping = true;
      await loop;
      await consumer.close();
    },
  };
}

function inferType(rows: Record<string, unknown>[], name: string): string {
  for (const r of rows) {
    const v = r[name];
    if (v === null || v === undefined) continue;
    if (typeof v === 'boolean') return 'boolean';
    if (typeof v === 'number') return Number.isInteger(v) ? 'long' : 'double';
    return 'string';
  }
  return 'string';
}
