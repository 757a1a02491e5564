import fs from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { isTributaryError } from '../core/index.ts';
import { type Catalog, loadTable, stringifyJson } from '../lake/index.ts';
import { parseInput } from './http-errors.ts';

export interface ConsoleOptions {
  /** The lake catalog: enables the table preview route the console's time travel uses. */
  catalog?: Catalog;
}

// The console is browser code with no build step: its files are served as they are.
const PUBLIC_DIR = path.join(import.meta.dirname, '..', 'console', 'public');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
};

/** Every file under public/, read once: requests look names up in this map, so no request path reaches the disk. */
function loadAssets(dir: string, prefix = ''): Map<string, { body: Buffer; type: string }> {
  const out = new Map<string, { body: Buffer; type: string }>();
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const rel = prefix + entry.name;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) for (const [k, v] of loadAssets(full, `${rel}/`)) out.set(k, v);
    else {
      const type = TYPES[path.extname(entry.name)];
      if (type) out.set(rel, { body: fs.readFileSync(full), type });
    }
  }
  return out;
}

const NAME = /^[A-Za-z0-9_][A-Za-z0-9_$-]*$/;
const DOTTED = /^[A-Za-z0-9_][A-Za-z0-9_$-]*(\.[A-Za-z0-9_][A-Za-z0-9_$-]*)*$/;
const previewParams = z.object({
  namespace: z.string().regex(DOTTED, 'expected namespace levels of letters, digits, "_", "$" and "-" joined by "."'),
  table: z.string().regex(NAME, 'expected a table name of letters, digits, "_", "$" and "-"'),
});
const previewQuery = z.strictObject({
  snapshot: z.string().regex(/^\d+$/, 'expected a snapshot id (a positive integer)').optional(),
  limit: z
    .string()
    .regex(/^\d+$/, 'expected a limit between 1 and 500')
    .transform(Number)
    .refine((n) => n >= 1 && n <= 500, 'expected a limit between 1 and 500')
    .default(50),
});

/**
 * The web console: static browser code served at `/` (no build step), plus a table preview route for
 * time travel (`GET /api/v1/tables/:namespace/:table/preview?snapshot=&limit=`) when a catalog is given.
 * Register with `app.register(consoleRoutes, { catalog })`.
 */
export async function consoleRoutes(app: FastifyInstance, opts: ConsoleOptions = {}): Promise<void> {
  const assets = loadAssets(PUBLIC_DIR);
  const serve = (name: string) => {
    const a = assets.get(name);
    return a ? { ...a } : undefined;
  };
  app.get('/', async (_req, reply) => {
    const a = serve('index.html')!;
    return reply.type(a.type).header('cache-control', 'no-cache').send(a.body);
  });
  app.get<{ Params: { '*': string } }>('/console/*', async (req, reply) => {
    const a = serve(req.params['*']);
    if (!a) return reply.code(404).send({ error: 'NOT_FOUND', message: `no console file ${req.params['*']}` });
    return reply.type(a.type).header('cache-control', 'no-cache').send(a.body);
  });

  const catalog = opts.catalog;
  if (!catalog) return;
  app.get<{ Params: Record<string, string>; Querystring: Record<string, string> }>(
    '/api/v1/tables/:namespace/:table/preview',
    async (req, reply) => {
      try {
        const p = parseInput(previewParams, req.params, 'path');
        const q = parseInput(previewQuery, req.query, 'query');
        const table = await loadTable(catalog, { namespace: p.namespace.split('.'), name: p.table });
        const result = await table.scan({
          limit: q.limit,
          ...(q.snapshot !== undefined ? { snapshotId: BigInt(q.snapshot) } : {}),
        });
        return reply
          .type('application/json')
          .send(stringifyJson({ snapshot: q.snapshot ?? null, rows: result.rows.slice(0, q.limit) }));
      } catch (err) {
        const status = isTributaryError(err, 'INVALID_ARGUMENT') ? 400 : isTributaryError(err, 'NOT_FOUND') ? 404 : 500;
        return reply.code(status).send({
          error: isTributaryError(err) ? err.code : 'INTERNAL',
          message: err instanceof Error ? err.message : String(err),
        });
      }
    },
  );
}
