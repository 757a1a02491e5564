import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { invalidArgument, TributaryError } from '../core/index.ts';
import { FileIO } from './io.ts';
import {
  type NewTableOptions,
  newTableMetadata,
  parseTableMetadata,
  serializeTableMetadata,
  type TableMetadata,
} from './metadata.ts';
import { applyUpdates, checkRequirements, commitFailed, type TableRequirement, type TableUpdate } from './updates.ts';

export interface TableIdentifier {
  namespace: string[];
  name: string;
}

export interface LoadedTable {
  metadata: TableMetadata;
  metadataLocation: string;
}

export type CreateTableOptions = Omit<NewTableOptions, 'location'> & { location?: string };

/** The catalog seam: SQLite (embedded) and REST (remote) implement it; one conformance test covers both. */
export interface Catalog {
  readonly name: string;
  /** How table files are read and written (local paths, path mappings). */
  readonly io: FileIO;
  listNamespaces(parent?: string[]): Promise<string[][]>;
  createNamespace(namespace: string[], properties?: Record<string, string>): Promise<void>;
  namespaceExists(namespace: string[]): Promise<boolean>;
  loadNamespaceProperties(namespace: string[]): Promise<Record<string, string>>;
  updateNamespaceProperties(namespace: string[], removals: string[], updates: Record<string, string>): Promise<void>;
  dropNamespace(namespace: string[]): Promise<void>;
  listTables(namespace: string[]): Promise<TableIdentifier[]>;
  createTable(id: TableIdentifier, opts: CreateTableOptions): Promise<LoadedTable>;
  loadTable(id: TableIdentifier): Promise<LoadedTable>;
  tableExists(id: TableIdentifier): Promise<boolean>;
  dropTable(id: TableIdentifier, purge?: boolean): Promise<void>;
  renameTable(from: TableIdentifier, to: TableIdentifier): Promise<void>;
  /** Tracks an existing table by its metadata file (the REST registerTable operation). */
  registerTable(id: TableIdentifier, metadataLocation: string, overwrite?: boolean): Promise<LoadedTable>;
  /** Atomically checks requirements and applies updates (compare-and-swap on the metadata location). */
  commitTable(id: TableIdentifier, requirements: TableRequirement[], updates: TableUpdate[]): Promise<LoadedTable>;
  close(): Promise<void>;
}

const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_\-$]{0,254}$/;

/** Names become directories: only a safe character set, so no name can escape the warehouse. */
export function validateName(name: string, field: string): void {
  if (typeof name !== 'string' || !NAME_RE.test(name)) {
    throw invalidArgument(
      field,
      'a name of letters, digits, _, - or $ (not starting with - or $, at most 255 chars)',
      name,
    );
  }
}

export function validateIdentifier(id: TableIdentifier): void {
  if (!Array.isArray(id.namespace) || id.namespace.length === 0)
    throw invalidArgument('namespace', 'at least one level', id.namespace);
  for (const [i, n] of id.namespace.entries()) validateName(n, `namespace[${i}]`);
  validateName(id.name, 'table name');
}

/** `ns.table` or `a.b.table` -> identifier. */
export function parseIdentifier(s: string): TableIdentifier {
  const parts = s.split('.');
  if (parts.length < 2) throw invalidArgument('table', 'NAMESPACE.TABLE', s);
  const id = { namespace: parts.slice(0, -1), name: parts[parts.length - 1] as string };
  validateIdentifier(id);
  return id;
}

export function identifierToString(id: TableIdentifier): string {
  return [...id.namespace, id.name].join('.');
}

const NS_SEP = '\u001f';

/** Writes a new metadata file next to the table, never overwriting one (put-if-absent). */
export function writeMetadataFile(io: FileIO, md: TableMetadata, version: number): string {
  const loc = `${md.location}/metadata/${String(version).padStart(5, '0')}-${randomUUID()}.metadata.json`;
  if (!io.putIfAbsent(loc, serializeTableMetadata(md))) throw commitFailed(`metadata file ${loc} already exists`);
  return loc;
}

export function metadataVersion(location: string): number {
  const m = /(\d+)-[^/]*\.metadata\.json$/.exec(location) ?? /v(\d+)\.metadata\.json$/.exec(location);
  return m ? Number(m[1]) : 0;
}

/**
 * The embedded catalog: Iceberg's SQL catalog schema (the one pyiceberg and Java's JdbcCatalog use)
 * in SQLite. A commit writes the new metadata file, then swaps the pointer with
 * `UPDATE ... WHERE metadata_location = <expected>`; a lost race changes no row and retries.
 */
export class SqliteCatalog implements Catalog {
  readonly name: string;
  readonly io: FileIO;
  readonly warehouse: string;
  readonly db: DatabaseSync;

  constructor(opts: { warehouse: string; dbPath?: string; name?: string; io?: FileIO }) {
    this.name = opts.name ?? 'tributary';
    this.warehouse = path.resolve(opts.warehouse);
    fs.mkdirSync(this.warehouse, { recursive: true });
    this.io = opts.io ?? new FileIO();
    this.db = new DatabaseSync(opts.dbPath ?? path.join(this.warehouse, 'catalog.db'));
    this.db.exec('PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; PRAGMA synchronous = FULL;');
    this.db.exec(`CREATE TABLE IF NOT EXISTS iceberg_tables (
      catalog_name VARCHAR(255) NOT NULL, table_namespace VARCHAR(255) NOT NULL, table_name VARCHAR(255) NOT NULL,
      metadata_location VARCHAR(1000), previous_metadata_location VARCHAR(1000),
      PRIMARY KEY (catalog_name, table_namespace, table_name))`);
    this.db.exec(`CREATE TABLE IF NOT EXISTS iceberg_namespace_properties (
      catalog_name VARCHAR(255) NOT NULL, namespace VARCHAR(255) NOT NULL, property_key VARCHAR(255) NOT NULL,
      property_value VARCHAR(1000), PRIMARY KEY (catalog_name, namespace, property_key))`);
  }

  private ns(namespace: string[]): string {
    for (const [i, n] of namespace.entries()) validateName(n, `namespace[${i}]`);
    return namespace.join('.');
  }

  tableLocation(id: TableIdentifier): string {
    validateIdentifier(id);
    const loc = path.join(this.warehouse, ...id.namespace, id.name);
    if (!loc.startsWith(this.warehouse + path.sep))
      throw invalidArgument('table', 'a name inside the warehouse', identifierToString(id));
    return loc;
  }

  async listNamespaces(parent: string[] = []): Promise<string[][]> {
    const rows = this.db
      .prepare(
        'SELECT DISTINCT namespace FROM iceberg_namespace_properties WHERE catalog_name = ? UNION SELECT DISTINCT table_namespace FROM iceberg_tables WHERE catalog_name = ?',
      )
      .all(this.name, this.name) as { namespace: string }[];
    const out = new Map<string, string[]>();
    for (const r of rows) {
      const parts = r.namespace.split('.');
      if (parts.length <= parent.length || parent.some((p, i) => parts[i] !== p)) continue;
      const child = parts.slice(0, parent.length + 1);
      out.set(child.join(NS_SEP), child);
    }
    return [...out.values()].sort((a, b) => a.join('.').localeCompare(b.join('.')));
  }

  async createNamespace(namespace: string[], properties: Record<string, string> = {}): Promise<void> {
    const ns = this.ns(namespace);
    if (namespace.length === 0) throw invalidArgument('namespace', 'at least one level', namespace);
    if (await this.namespaceExists(namespace))
      throw new TributaryError('ALREADY_EXISTS', `namespace ${ns} already exists`);
    const ins = this.db.prepare('INSERT INTO iceberg_namespace_properties VALUES (?, ?, ?, ?)');
    this.db.exec('BEGIN IMMEDIATE');
    try {
      ins.run(this.name, ns, 'exists', 'true');
      for (const [k, v] of Object.entries(properties)) ins.run(this.name, ns, k, String(v));
      this.db.exec('COMMIT');
    } catch (err) {
      this.db.exec('ROLLBACK');
      throw err;
    }
  }

  async namespaceExists(namespace: string[]): Promise<boolean> {
    const ns = this.ns(namespace);
    const r = this.db
      .prepare(
        'SELECT 1 FROM iceberg_namespace_properties WHERE catalog_name = ? AND (namespace = ? OR namespace LIKE ?) LIMIT 1',
      )
      .get(this.name, ns, `${ns}.%`);
    return r !== undefined;
  }

  private async requireNamespace(namespace: string[]): Promise<string> {
    const ns = this.ns(namespace);
    if (!(await this.namespaceExists(namespace)))
      throw new TributaryError('NOT_FOUND', `namespace ${ns} does not exist`);
    return ns;
  }

  async loadNamespaceProperties(namespace: string[]): Promise<Record<string, string>> {
    const ns = await this.requireNamespace(namespace);
    const rows = this.db
      .prepare(
        "SELECT property_key, property_value FROM iceberg_namespace_properties WHERE catalog_name = ? AND namespace = ? AND property_key != 'exists'",
      )
      .all(this.name, ns) as { property_key: string; property_value: string }[];
    return Object.fromEntries(rows.map((r) => [r.property_key, r.property_value]));
  }

  async updateNamespaceProperties(
    namespace: string[],
    removals: string[],
    updates: Record<string, string>,
  ): Promise<void> {
    const ns = await this.requireNamespace(namespace);
    this.db.exec('BEGIN IMMEDIATE');
    try {
      for (const k of removals)
        this.db
          .prepare(
            'DELETE FROM iceberg_namespace_properties WHERE catalog_name = ? AND namespace = ? AND property_key = ?',
          )
          .run(this.name, ns, k);
      for (const [k, v] of Object.entries(updates)) {
        this.db
          .prepare('INSERT OR REPLACE INTO iceberg_namespace_properties VALUES (?, ?, ?, ?)')
          .run(this.name, ns, k, String(v));
      }
      this.db.exec('COMMIT');
    } catch (err) {
      this.db.exec('ROLLBACK');
      throw err;
    }
  }

  async dropNamespace(namespace: string[]): Promise<void> {
    const ns = await this.requireNamespace(namespace);
    const t = this.db
      .prepare(
        'SELECT 1 FROM iceberg_tables WHERE catalog_name = ? AND (table_namespace = ? OR table_namespace LIKE ?) LIMIT 1',
      )
      .get(this.name, ns, `${ns}.%`);
    if (t) throw new TributaryError('CONFLICT', `namespace ${ns} is not empty`, { retriable: false });
    this.db
      .prepare('DELETE FROM iceberg_namespace_properties WHERE catalog_name = ? AND namespace = ?')
      .run(this.name, ns);
  }

  async listTables(namespace: string[]): Promise<TableIdentifier[]> {
    const ns = await this.requireNamespace(namespace);
    const rows = this.db
      .prepare(
        'SELECT table_name FROM iceberg_tables WHERE catalog_name = ? AND table_namespace = ? ORDER BY table_name',
      )
      .all(this.name, ns) as { table_name: string }[];
    return rows.map((r) => ({ namespace: [...namespace], name: r.table_name }));
  }

  private pointer(id: TableIdentifier): string | undefined {
    validateIdentifier(id);
    const r = this.db
      .prepare(
        'SELECT metadata_location FROM iceberg_tables WHERE catalog_name = ? AND table_namespace = ? AND table_name = ?',
      )
      .get(this.name, id.namespace.join('.'), id.name) as { metadata_location: string } | undefined;
    return r?.metadata_location;
  }

  async createTable(id: TableIdentifier, opts: CreateTableOptions): Promise<LoadedTable> {
    validateIdentifier(id);
    await this.requireNamespace(id.namespace);
    if (this.pointer(id) !== undefined)
      throw new TributaryError('ALREADY_EXISTS', `table ${identifierToString(id)} already exists`);
    const location = opts.location ?? this.tableLocation(id);
    const md = newTableMetadata({ ...opts, location });
    const loc = writeMetadataFile(this.io, md, 0);
    try {
      this.db
        .prepare('INSERT INTO iceberg_tables VALUES (?, ?, ?, ?, NULL)')
        .run(this.name, id.namespace.join('.'), id.name, loc);
    } catch (err) {
      this.io.delete(loc);
      if (/UNIQUE|PRIMARY KEY/i.test(String(err)))
        throw new TributaryError('ALREADY_EXISTS', `table ${identifierToString(id)} already exists`);
      throw err;
    }
    return { metadata: md, metadataLocation: loc };
  }

  async loadTable(id: TableIdentifier): Promise<LoadedTable> {
    const loc = this.pointer(id);
    if (loc === undefined) throw new TributaryError('NOT_FOUND', `table ${identifierToString(id)} does not exist`);
    return { metadata: parseTableMetadata(this.io.read(loc).toString('utf8'), loc), metadataLocation: loc };
  }

  async tableExists(id: TableIdentifier): Promise<boolean> {
    return this.pointer(id) !== undefined;
  }

  async dropTable(id: TableIdentifier, purge = false): Promise<void> {
    const loaded = purge ? await this.loadTable(id) : undefined;
    const r = this.db
      .prepare('DELETE FROM iceberg_tables WHERE catalog_name = ? AND table_namespace = ? AND table_name = ?')
      .run(this.name, id.namespace.join('.'), id.name);
    if (r.changes === 0) throw new TributaryError('NOT_FOUND', `table ${identifierToString(id)} does not exist`);
    if (loaded) {
      const local = this.io.resolve(loaded.metadata.location);
      if (local.startsWith(this.warehouse + path.sep)) fs.rmSync(local, { recursive: true, force: true });
    }
  }

  async renameTable(from: TableIdentifier, to: TableIdentifier): Promise<void> {
    validateIdentifier(to);
    await this.requireNamespace(to.namespace);
    if (this.pointer(to) !== undefined)
      throw new TributaryError('ALREADY_EXISTS', `table ${identifierToString(to)} already exists`);
    const r = this.db
      .prepare(
        'UPDATE iceberg_tables SET table_namespace = ?, table_name = ? WHERE catalog_name = ? AND table_namespace = ? AND table_name = ?',
      )
      .run(to.namespace.join('.'), to.name, this.name, from.namespace.join('.'), from.name);
    if (r.changes === 0) throw new TributaryError('NOT_FOUND', `table ${identifierToString(from)} does not exist`);
  }

  async registerTable(id: TableIdentifier, metadataLocation: string, overwrite = false): Promise<LoadedTable> {
    validateIdentifier(id);
    await this.requireNamespace(id.namespace);
    // parse first: a bad file is refused before the catalog changes
    const metadata = parseTableMetadata(this.io.read(metadataLocation).toString('utf8'), metadataLocation);
    const ns = id.namespace.join('.');
    if (overwrite) {
      this.db
        .prepare('INSERT OR REPLACE INTO iceberg_tables VALUES (?, ?, ?, ?, NULL)')
        .run(this.name, ns, id.name, metadataLocation);
    } else {
      try {
        this.db
          .prepare('INSERT INTO iceberg_tables VALUES (?, ?, ?, ?, NULL)')
          .run(this.name, ns, id.name, metadataLocation);
      } catch (err) {
        if (/UNIQUE|PRIMARY KEY/i.test(String(err)))
          throw new TributaryError('ALREADY_EXISTS', `table ${identifierToString(id)} already exists`);
        throw err;
      }
    }
    return { metadata, metadataLocation };
  }

  async commitTable(
    id: TableIdentifier,
    requirements: TableRequirement[],
    updates: TableUpdate[],
  ): Promise<LoadedTable> {
    const base = await this.loadTable(id);
    checkRequirements(base.metadata, requirements);
    const next = applyUpdates(base.metadata, updates, base.metadataLocation);
    const loc = writeMetadataFile(this.io, next, metadataVersion(base.metadataLocation) + 1);
    const r = this.db
      .prepare(
        'UPDATE iceberg_tables SET metadata_location = ?, previous_metadata_location = ? WHERE catalog_name = ? AND table_namespace = ? AND table_name = ? AND metadata_location = ?',
      )
      .run(loc, base.metadataLocation, this.name, id.namespace.join('.'), id.name, base.metadataLocation);
    if (r.changes !== 1) {
      this.io.delete(loc);
      throw commitFailed(`table ${identifierToString(id)} changed concurrently`);
    }
    return { metadata: next, metadataLocation: loc };
  }

  async close(): Promise<void> {
    if (this.db.isOpen) this.db.close();
  }
}
