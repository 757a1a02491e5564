import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { invalidArgument, parseDuration, parseSize, TributaryError } from '../core/index.ts';
import {
  createTable,
  FileIO,
  loadTable,
  type PathMapping,
  parseIdentifier,
  parsePathMap,
  parseTableMetadata,
  type Row,
  type ScanOptions,
  SqliteCatalog,
  scanTable,
  stringifyJson,
  type TableMetadata,
  validateSchema,
} from '../lake/index.ts';

interface DataDirOption {
  dataDir: string;
}

/** Output goes through commander's configured writer (stdout by default), so tests can capture it. */
let writer: (s: string) => void = (s) => process.stdout.write(s);
function out(line: string): void {
  writer(`${line}\n`);
}

function openCatalog(opts: DataDirOption): SqliteCatalog {
  // <data-dir>/lake, the platform's data layout (the server mounts the same warehouse)
  return new SqliteCatalog({ warehouse: path.join(path.resolve(opts.dataDir), 'lake') });
}

async function withCatalog<T>(opts: DataDirOption, fn: (c: SqliteCatalog) => Promise<T>): Promise<T> {
  const c = openCatalog(opts);
  try {
    return await fn(c);
  } finally {
    await c.close();
  }
}

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

/** A table's metadata file: a `.metadata.json` path, or a table directory (version-hint or the newest file). */
function findMetadataFile(p: string): string {
  const st = fs.statSync(p, { throwIfNoEntry: false });
  if (!st) throw new TributaryError('NOT_FOUND', `table ${p}: no such catalog table or metadata file`);
  if (st.isFile()) return p;
  const dir = fs.existsSync(path.join(p, 'metadata')) ? path.join(p, 'metadata') : p;
  const hint = path.join(dir, 'version-hint.text');
  if (fs.existsSync(hint)) {
    const v = fs.readFileSync(hint, 'utf8').trim();
    for (const name of [`v${v}.metadata.json`, `${v.padStart(5, '0')}.metadata.json`])
      if (fs.existsSync(path.join(dir, name))) return path.join(dir, name);
  }
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.metadata.json'))
    .sort((a, b) => versionOf(a) - versionOf(b) || a.localeCompare(b));
  const last = files.at(-1);
  if (!last) throw new TributaryError('NOT_FOUND', `table ${p}: no *.metadata.json under ${dir}`);
  return path.join(dir, last);
}
function versionOf(name: string): number {
  const m = /^v?(\d+)[-.]/.exec(name);
  return m ? Number(m[1]) : -1;
}

/** TABLE is a catalog name (ns.table) or a metadata file / table directory outside the catalog. */
async function resolveTable(
  name: string,
  opts: DataDirOption & { pathMap?: string[] },
): Promise<{ metadata: TableMetadata; io: FileIO; close(): Promise<void> }> {
  const looksLikePath = name.includes('/') || name.endsWith('.json') || fs.existsSync(name);
  if (looksLikePath) {
    const file = findMetadataFile(name);
    const maps: PathMapping[] = (opts.pathMap ?? []).map((s) =>
      s.startsWith('=') ? { from: '', to: s.slice(1) } : parsePathMap(s),
    );
    const base = maps.find((m) => m.from === '');
    const io = new FileIO({ mappings: maps.filter((m) => m.from !== ''), ...(base ? { baseDir: base.to } : {}) });
    return { metadata: parseTableMetadata(fs.readFileSync(file, 'utf8'), file), io, close: async () => {} };
  }
  const catalog = openCatalog(opts);
  try {
    const t = await loadTable(catalog, parseIdentifier(name));
    return { metadata: t.metadata, io: catalog.io, close: () => catalog.close() };
  } catch (err) {
    await catalog.close();
    throw err;
  }
}

function asOfOption(md: TableMetadata, v: string): Pick<ScanOptions, 'snapshotId' | 'asOf' | 'ref'> {
  if (/^\d+$/.test(v)) {
    const id = BigInt(v);
    if (md.snapshots.some((s) => s['snapshot-id'] === id)) return { snapshotId: id };
    if (v.length <= 14) return { asOf: Number(v) };
    return { snapshotId: id };
  }
  if (md.refs[v]) return { ref: v };
  return { asOf: v };
}

function cell(v: unknown): string {
  if (v === null || v === undefined) return 'NULL';
  if (v instanceof Uint8Array) return Buffer.from(v).toString('hex');
  if (typeof v === 'object') return stringifyJson(v);
  return String(v);
}

function printRows(rows: Row[], columns: string[], format: string): void {
  if (format === 'ndjson') {
    for (const r of rows) out(stringifyJson(r));
    return;
  }
  if (format === 'csv') {
    const esc = (s: string) => (/[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s);
    out(columns.map(esc).join(','));
    for (const r of rows)
      out(columns.map((c) => (r[c] === null || r[c] === undefined ? '' : esc(cell(r[c])))).join(','));
    return;
  }
  if (format !== 'table') throw invalidArgument('--format', 'table, ndjson or csv', format);
  const cells = rows.map((r) => columns.map((c) => cell(r[c])));
  const widths = columns.map((c, i) =>
    Math.min(60, Math.max(c.length, ...cells.map((row) => (row[i] as string).length))),
  );
  const line = (vals: string[]) =>
    vals
      .map((v, i) =>
        v.length > (widths[i] as number) ? `${v.slice(0, (widths[i] as number) - 1)}…` : v.padEnd(widths[i] as number),
      )
      .join(' | ');
  out(line(columns));
  out(widths.map((w) => '-'.repeat(w)).join('-+-'));
  for (const r of cells) out(line(r));
  out(`(${rows.length} row${rows.length === 1 ? '' : 's'})`);
}

/** `tributary lake ...`: create, append, scan, history, expire, compact (and list, stats, delete, rollback). */
export function registerLakeCommands(program: Command): void {
  const lake = program.command('lake').description('Apache Iceberg tables in the data directory');
  lake.hook('preAction', () => {
    const w = lake.configureOutput().writeOut;
    writer = w ?? ((s) => process.stdout.write(s));
  });
  const dataDir = (c: Command): Command => c.option('--data-dir <dir>', 'data directory', './tributary-data');

  dataDir(
    lake
      .command('create <table>')
      .description('create NS.TABLE from an Iceberg schema JSON file')
      .requiredOption('--schema <file>', 'Iceberg schema JSON ({"type":"struct","fields":[...]})')
      .option('--partition <spec>', 'partition spec, e.g. "day(ts), bucket(16, user_id)"')
      .option('--property <key=value>', 'table property (repeatable)', collect),
  ).action(async (name: string, opts: DataDirOption & { schema: string; partition?: string; property?: string[] }) => {
    const id = parseIdentifier(name);
    const schemaJson = JSON.parse(fs.readFileSync(opts.schema, 'utf8')) as unknown;
    const schema = validateSchema(schemaJson, '--schema');
    const properties: Record<string, string> = {};
    for (const p of opts.property ?? []) {
      const m = parsePathMap(p);
      properties[m.from] = m.to;
    }
    await withCatalog(opts, async (catalog) => {
      if (!(await catalog.namespaceExists(id.namespace))) await catalog.createNamespace(id.namespace);
      const t = await createTable(catalog, id, {
        schema,
        ...(opts.partition ? { partition: opts.partition } : {}),
        properties,
      });
      out(`Created table ${name} at ${t.metadata.location}`);
    });
  });

  dataDir(
    lake
      .command('append <table> <file>')
      .description('append an NDJSON, CSV or Parquet file to NS.TABLE')
      .option('--format <format>', 'ndjson, csv or parquet (default: from the file extension)')
      .option('--union-by-name', 'add columns the table lacks')
      .option('--on-invalid <policy>', 'reject (default) or drop invalid rows', 'reject'),
  ).action(
    async (
      name: string,
      file: string,
      opts: DataDirOption & { format?: 'ndjson' | 'csv' | 'parquet'; unionByName?: boolean; onInvalid: string },
    ) => {
      if (opts.onInvalid !== 'reject' && opts.onInvalid !== 'drop')
        throw invalidArgument('--on-invalid', 'reject or drop', opts.onInvalid);
      await withCatalog(opts, async (catalog) => {
        const t = await loadTable(catalog, parseIdentifier(name));
        const r = await t.append(
          { file, ...(opts.format ? { format: opts.format } : {}) },
          { unionByName: opts.unionByName === true, onInvalid: opts.onInvalid as 'reject' | 'drop' },
        );
        out(
          `Appended ${r.addedRows} rows in ${r.addedFiles} files to ${name} (snapshot ${r.snapshotId})${r.droppedRows ? `; dropped ${r.droppedRows} invalid rows` : ''}`,
        );
      });
    },
  );

  dataDir(
    lake
      .command('scan <table>')
      .description('print rows of NS.TABLE or of a table metadata file')
      .option('--where <expr>', 'filter, e.g. "ts >= \'2024-01-01\' AND user_id IN (1, 2)"')
      .option('--as-of <snapshot|timestamp|ref>', 'time travel: snapshot id, epoch ms, ISO timestamp, branch or tag')
      .option('--limit <n>', 'at most N rows')
      .option('--columns <list>', 'comma-separated columns')
      .option('--format <format>', 'table, ndjson or csv', 'table')
      .option(
        '--path-map <from=to>',
        'map stored file paths to local ones (repeatable; "=DIR" resolves relative paths)',
        collect,
      ),
  ).action(
    async (
      name: string,
      opts: DataDirOption & {
        where?: string;
        asOf?: string;
        limit?: string;
        columns?: string;
        format: string;
        pathMap?: string[];
      },
    ) => {
      const t = await resolveTable(name, opts);
      try {
        const scan: ScanOptions = {};
        if (opts.where) scan.filter = opts.where;
        if (opts.asOf) Object.assign(scan, asOfOption(t.metadata, opts.asOf));
        if (opts.limit !== undefined) {
          const n = Number(opts.limit);
          if (!Number.isInteger(n) || n < 0) throw invalidArgument('--limit', 'a non-negative integer', opts.limit);
          scan.limit = n;
        }
        if (opts.columns) scan.columns = opts.columns.split(',').map((s) => s.trim());
        const r = await scanTable(t.metadata, t.io, scan);
        printRows(r.rows, scan.columns ?? r.schema.fields.map((f) => f.name), opts.format);
      } finally {
        await t.close();
      }
    },
  );

  dataDir(
    lake
      .command('history <table>')
      .description('snapshots of NS.TABLE or of a table metadata file')
      .option('--path-map <from=to>', 'map stored file paths', collect),
  ).action(async (name: string, opts: DataDirOption & { pathMap?: string[] }) => {
    const t = await resolveTable(name, opts);
    try {
      const md = t.metadata;
      const current = md['current-snapshot-id'];
      const rows: Row[] = [...md.snapshots]
        .sort((a, b) => a['timestamp-ms'] - b['timestamp-ms'])
        .map((s) => ({
          snapshot_id: s['snapshot-id'].toString(),
          parent_id: s['parent-snapshot-id']?.toString() ?? null,
          committed_at: new Date(s['timestamp-ms']).toISOString(),
          operation: s.summary.operation,
          added_records: s.summary['added-records'] ?? null,
          total_records: s.summary['total-records'] ?? null,
          current: s['snapshot-id'] === current ? '*' : '',
        }));
      printRows(
        rows,
        ['snapshot_id', 'parent_id', 'committed_at', 'operation', 'added_records', 'total_records', 'current'],
        'table',
      );
    } finally {
      await t.close();
    }
  });

  dataDir(
    lake
      .command('expire <table>')
      .description('expire old snapshots of NS.TABLE and delete files only they referenced')
      .option('--older-than <duration>', 'expire snapshots older than this (e.g. 5d, 12h, 0s)', '5d')
      .option('--retain-last <n>', 'always keep this many recent snapshots', '1'),
  ).action(async (name: string, opts: DataDirOption & { olderThan: string; retainLast: string }) => {
    const age = parseDuration(opts.olderThan, '--older-than');
    const retain = Number(opts.retainLast);
    if (!Number.isInteger(retain) || retain < 1)
      throw invalidArgument('--retain-last', 'an integer >= 1', opts.retainLast);
    await withCatalog(opts, async (catalog) => {
      const t = await loadTable(catalog, parseIdentifier(name));
      const r = await t.expireSnapshots({ olderThanMs: Date.now() - age, retainLast: retain });
      out(`Expired ${r.expired.length} snapshots of ${name}; deleted ${r.deletedFiles} files`);
    });
  });

  dataDir(
    lake
      .command('compact <table>')
      .description('rewrite small files (and files with deletes) of NS.TABLE')
      .option('--target-file-size <size>', 'files below this size are compacted', '128MB'),
  ).action(async (name: string, opts: DataDirOption & { targetFileSize: string }) => {
    await withCatalog(opts, async (catalog) => {
      const t = await loadTable(catalog, parseIdentifier(name));
      const r = await t.compact({ targetFileSizeBytes: parseSize(opts.targetFileSize, '--target-file-size') });
      const m = await t.rewriteManifests();
      out(
        `Compacted ${name}: removed ${r.removedFiles} files, wrote ${r.addedFiles}; manifests ${m.before} -> ${m.after}${m.snapshotId !== undefined ? ` (snapshot ${m.snapshotId})` : ''}`,
      );
    });
  });

  dataDir(
    lake
      .command('register <table> <metadata>')
      .description('track an existing table (its metadata JSON file) as NS.TABLE'),
  ).action(async (name: string, metadata: string, opts: DataDirOption) => {
    const id = parseIdentifier(name);
    await withCatalog(opts, async (catalog) => {
      if (!(await catalog.namespaceExists(id.namespace))) await catalog.createNamespace(id.namespace);
      const t = await catalog.registerTable(id, path.resolve(findMetadataFile(metadata)));
      out(`Registered ${name} at snapshot ${t.metadata['current-snapshot-id'] ?? 'none'}`);
    });
  });

  dataDir(lake.command('list [namespace]').description('list namespaces, or the tables of a namespace')).action(
    async (ns: string | undefined, opts: DataDirOption) => {
      await withCatalog(opts, async (catalog) => {
        if (ns) for (const t of await catalog.listTables(ns.split('.'))) out([...t.namespace, t.name].join('.'));
        else for (const n of await catalog.listNamespaces()) out(n.join('.'));
      });
    },
  );

  dataDir(lake.command('stats <table>').description('rows, files, bytes and per-column stats of NS.TABLE')).action(
    async (name: string, opts: DataDirOption) => {
      await withCatalog(opts, async (catalog) => {
        const t = await loadTable(catalog, parseIdentifier(name));
        out(stringifyJson(await t.stats(), 2));
      });
    },
  );

  dataDir(
    lake
      .command('delete <table>')
      .description('delete rows of NS.TABLE')
      .requiredOption('--where <expr>', 'rows to delete'),
  ).action(async (name: string, opts: DataDirOption & { where: string }) => {
    await withCatalog(opts, async (catalog) => {
      const t = await loadTable(catalog, parseIdentifier(name));
      const r = await t.delete(opts.where);
      out(`Deleted from ${name}: rewrote ${r.removedFiles} files`);
    });
  });

  dataDir(lake.command('rollback <table> <snapshot>').description('point NS.TABLE back at an earlier snapshot')).action(
    async (name: string, snapshot: string, opts: DataDirOption) => {
      if (!/^\d+$/.test(snapshot)) throw invalidArgument('snapshot', 'a snapshot id', snapshot);
      await withCatalog(opts, async (catalog) => {
        const t = await loadTable(catalog, parseIdentifier(name));
        await t.rollback(BigInt(snapshot));
        out(`Rolled ${name} back to snapshot ${snapshot}`);
      });
    },
  );
}
