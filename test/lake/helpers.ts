import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createTable, SqliteCatalog, type Table } from '../../src/lake/index.ts';

export function tempDir(prefix = 'lake-'): { dir: string; cleanup(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

export const EVENTS_SCHEMA = {
  fields: [
    { id: 1, name: 'id', required: true, type: 'long' },
    { id: 2, name: 'ts', required: false, type: 'timestamptz' },
    { id: 3, name: 'user_id', required: false, type: 'long' },
    { id: 4, name: 'name', required: false, type: 'string' },
  ],
};

export async function eventsTable(
  dir: string,
  partition = 'day(ts), bucket(4, user_id)',
): Promise<{ catalog: SqliteCatalog; table: Table }> {
  const catalog = new SqliteCatalog({ warehouse: dir });
  await catalog.createNamespace(['db']);
  const table = await createTable(catalog, { namespace: ['db'], name: 'events' }, { schema: EVENTS_SCHEMA, partition });
  return { catalog, table };
}

export function ids(rows: Record<string, unknown>[]): number[] {
  return rows.map((r) => Number(r.id)).sort((a, b) => a - b);
}

export function range(a: number, b: number): number[] {
  return Array.from({ length: b - a }, (_, i) => a + i);
}

/** icebird fetches URLs; our tables store local paths, so serve those from disk while `fn` runs. */
export async function withLocalFetch<T>(fn: () => Promise<T>): Promise<T> {
  const orig = globalThis.fetch;
  globalThis.fetch = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const p = url.startsWith('file://') ? new URL(url).pathname : url;
    if (!p.startsWith('/')) return orig(input, init);
    if (!fs.existsSync(p)) return new Response('not found', { status: 404 });
    const body = fs.readFileSync(p);
    if (init?.method === 'HEAD')
      return new Response(null, { status: 200, headers: { 'content-length': String(body.length) } });
    return new Response(body, { status: 200, headers: { 'content-length': String(body.length) } });
  }) as typeof fetch;
  try {
    return await fn();
  } finally {
    globalThis.fetch = orig;
  }
}

/** Rows of a table's current snapshot as icebird (an independent reader) reads them. */
export async function readWithIcebird(table: Table): Promise<Record<string, unknown>[]> {
  const { icebergRead } = await import('icebird');
  const metadata = JSON.parse(fs.readFileSync(table.io.resolve(table.metadataLocation), 'utf8'));
  return withLocalFetch(
    async () => (await icebergRead({ tableUrl: table.metadata.location, metadata })) as Record<string, unknown>[],
  );
}
