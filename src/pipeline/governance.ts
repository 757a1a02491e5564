import * as fs from 'node:fs';
import * as path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { z } from 'zod';
import { notFound, TributaryError } from '../core/index.ts';
import type { Column } from './duck.ts';

export const datasetEntrySchema = z.strictObject({
  kind: z.enum(['iceberg', 'topic', 'datasource', 'file', 'sql']).optional(),
  owner: z.string().min(1).optional(),
  description: z.string().optional(),
  tags: z.array(z.string().min(1)).optional(),
  classification: z.enum(['public', 'internal', 'confidential', 'restricted']).optional(),
  retention: z.string().optional(),
  /** Whether this dataset may hold PII columns. */
  piiAllowed: z.boolean().optional(),
  columns: z
    .record(
      z.string(),
      z.strictObject({
        description: z.string().optional(),
        pii: z.boolean().optional(),
        classification: z.string().optional(),
      }),
    )
    .optional(),
});
export type DatasetEntryInput = z.input<typeof datasetEntrySchema>;

export interface DatasetEntry {
  id: string;
  kind: string;
  owner: string | null;
  description: string | null;
  tags: string[];
  classification: string | null;
  retention: string | null;
  piiAllowed: boolean;
  columns: Record<string, { description?: string; pii: boolean; classification?: string }>;
  updatedAt: string;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS datasets (
  id TEXT PRIMARY KEY, kind TEXT NOT NULL, owner TEXT, description TEXT, tags TEXT NOT NULL DEFAULT '[]',
  classification TEXT, retention TEXT, pii_allowed INTEGER NOT NULL DEFAULT 0, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS columns (
  dataset TEXT NOT NULL, name TEXT NOT NULL, description TEXT, pii INTEGER NOT NULL DEFAULT 0, classification TEXT,
  PRIMARY KEY (dataset, name));
CREATE TABLE IF NOT EXISTS schema_history (
  dataset TEXT NOT NULL, version INTEGER NOT NULL, schema TEXT NOT NULL, recorded_at TEXT NOT NULL, run_id TEXT,
  PRIMARY KEY (dataset, version));
`;

function checkId(id: string): void {
  if (!/^[a-z]+:.+/.test(id))
    throw new TributaryError(
      'INVALID_ARGUMENT',
      `dataset: expected "kind:name" (e.g. iceberg:db.orders, topic:orders), got ${JSON.stringify(id)}`,
      {
        field: 'dataset',
      },
    );
}

/** Datasets (tables, topics, datasources, files): owners, tags, PII columns, schema history, retention. */
export class GovernanceCatalog {
  readonly db: DatabaseSync;

  constructor(file: string) {
    if (file !== ':memory:') fs.mkdirSync(path.dirname(file), { recursive: true });
    this.db = new DatabaseSync(file);
    this.db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;');
    this.db.exec(SCHEMA);
  }

  close(): void {
    if (this.db.isOpen) this.db.close();
  }

  /** Creates or updates a dataset entry; given fields replace stored ones, columns merge by name. */
  upsert(id: string, input: DatasetEntryInput): DatasetEntry {
    checkId(id);
    const r = datasetEntrySchema.safeParse(input);
    if (!r.success) {
      const issue = r.error.issues[0]!;
      const field = ['catalog', ...issue.path.map(String)].join('.');
      throw new TributaryError('INVALID_ARGUMENT', `${field}: ${issue.message}`, { field });
    }
    const e = r.data;
    const cur = this.find(id);
    const now = new Date().toISOString();
    this.db
      .prepare(
        `INSERT INTO datasets (id, kind, owner, description, tags, classification, retention, pii_allowed, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, owner = excluded.owner, description = excluded.description,
           tags = excluded.tags, classification = excluded.classification, retention = excluded.retention,
           pii_allowed = excluded.pii_allowed, updated_at = excluded.updated_at`,
      )
      .run(
        id,
        e.kind ?? cur?.kind ?? id.slice(0, id.indexOf(':')),
        e.owner ?? cur?.owner ?? null,
        e.description ?? cur?.description ?? null,
        JSON.stringify(e.tags ?? cur?.tags ?? []),
        e.classification ?? cur?.classification ?? null,
        e.retention ?? cur?.retention ?? null,
        (e.piiAllowed ?? cur?.piiAllowed ?? false) ? 1 : 0,
        now,
      );
    for (const [name, c] of Object.entries(e.columns ?? {})) {
      const old = cur?.columns[name];
      this.db
        .prepare(
          'INSERT OR REPLACE INTO columns (dataset, name, description, pii, classification) VALUES (?, ?, ?, ?, ?)',
        )
        .run(
          id,
          name,
          c.description ?? old?.description ?? null,
          (c.pii ?? old?.pii ?? false) ? 1 : 0,
          c.classification ?? old?.classification ?? null,
        );
    }
    return this.get(id);
  }

  find(id: string): DatasetEntry | undefined {
    const row = this.db.prepare('SELECT * FROM datasets WHERE id = ?').get(id);
    if (!row) return undefined;
    const columns: DatasetEntry['columns'] = {};
    for (const c of this.db.prepare('SELECT * FROM columns WHERE dataset = ? ORDER BY name').all(id)) {
      const o: DatasetEntry['columns'][string] = { pii: Number(c.pii) === 1 };
      if (c.description) o.description = String(c.description);
      if (c.classification) o.classification = String(c.classification);
      columns[String(c.name)] = o;
    }
    return {
      id,
      kind: String(row.kind),
      owner: (row.owner as string | null) ?? null,
      description: (row.description as string | null) ?? null,
      tags: JSON.parse(String(row.tags)),
      classification: (row.classification as string | null) ?? null,
      retention: (row.retention as string | null) ?? null,
      piiAllowed: Number(row.pii_allowed) === 1,
      columns,
      updatedAt: String(row.updated_at),
    };
  }

  get(id: string): DatasetEntry {
    const e = this.find(id);
    if (!e) throw notFound(`catalog dataset ${id}`);
    return e;
  }

  list(opts: { tag?: string; owner?: string } = {}): DatasetEntry[] {
    return this.db
      .prepare('SELECT id FROM datasets ORDER BY id')
      .all()
      .map((r) => this.get(String(r.id)))
      .filter((d) => (!opts.tag || d.tags.includes(opts.tag)) && (!opts.owner || d.owner === opts.owner));
  }

  remove(id: string): void {
    this.db.prepare('DELETE FROM datasets WHERE id = ?').run(id);
    this.db.prepare('DELETE FROM columns WHERE dataset = ?').run(id);
  }

  piiColumns(id: string): string[] {
    return this.db
      .prepare('SELECT name FROM columns WHERE dataset = ? AND pii = 1 ORDER BY name')
      .all(id)
      .map((r) => String(r.name));
  }

  /** Records a dataset's schema when it differs from the last recorded version; returns the version. */
  recordSchema(id: string, columns: Column[], runId?: string): number {
    const last = this.db
      .prepare('SELECT version, schema FROM schema_history WHERE dataset = ? ORDER BY version DESC LIMIT 1')
      .get(id);
    const text = JSON.stringify(columns);
    if (last && last.schema === text) return Number(last.version);
    const version = last ? Number(last.version) + 1 : 1;
    this.db
      .prepare('INSERT INTO schema_history (dataset, version, schema, recorded_at, run_id) VALUES (?, ?, ?, ?, ?)')
      .run(id, version, text, new Date().toISOString(), runId ?? null);
    if (!this.find(id)) this.upsert(id, {});
    return version;
  }

  schemaHistory(id: string): { version: number; columns: Column[]; recordedAt: string; runId: string | null }[] {
    return this.db
      .prepare('SELECT * FROM schema_history WHERE dataset = ? ORDER BY version')
      .all(id)
      .map((r) => ({
        version: Number(r.version),
        columns: JSON.parse(String(r.schema)),
        recordedAt: String(r.recorded_at),
        runId: (r.run_id as string | null) ?? null,
      }));
  }
}
