import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { invalidArgument, isTributaryError, TributaryError } from '../core/index.ts';
import type { Catalog, CreateTableOptions, LoadedTable, TableIdentifier } from './catalog.ts';
import { FileIO } from './io.ts';
import { parseJson, stringifyJson } from './json.ts';
import { type PartitionField, parseTableMetadata, type SortField } from './metadata.ts';
import type { Schema } from './types.ts';
import type { TableRequirement, TableUpdate } from './updates.ts';

const NS_SEP = '\u001f';

// ---------- server ----------

export interface IcebergRestOptions {
  catalog: Catalog;
  /** Optional warehouse name echoed by /v1/config. */
  warehouse?: string;
}

function errorType(err: unknown, kind: 'namespace' | 'table'): { status: number; type: string } {
  if (isTributaryError(err, 'NOT_FOUND')) {
    const ns = kind === 'namespace' || /^namespace /.test((err as Error).message);
    return { status: 404, type: ns ? 'NoSuchNamespaceException' : 'NoSuchTableException' };
  }
  if (isTributaryError(err, 'ALREADY_EXISTS')) return { status: 409, type: 'AlreadyExistsException' };
  if (isTributaryError(err, 'CONFLICT'))
    return {
      status: 409,
      type: /not empty/.test((err as Error).message) ? 'NamespaceNotEmptyException' : 'CommitFailedException',
    };
  if (isTributaryError(err, 'INVALID_ARGUMENT')) return { status: 400, type: 'BadRequestException' };
  if (isTributaryError(err, 'UNSUPPORTED')) return { status: 406, type: 'UnsupportedOperationException' };
  return { status: 500, type: 'InternalServerError' };
}

function send(reply: FastifyReply, status: number, body?: unknown): FastifyReply {
  if (body === undefined) return reply.code(status).send();
  return reply.code(status).type('application/json').send(stringifyJson(body));
}

function sendError(reply: FastifyReply, err: unknown, kind: 'namespace' | 'table'): FastifyReply {
  const { status, type } = errorType(err, kind);
  return send(reply, status, {
    error: { message: err instanceof Error ? err.message : String(err), type, code: status },
  });
}

function nsParam(raw: string): string[] {
  const ns = decodeURIComponent(raw).split(NS_SEP);
  if (ns.some((p) => p === '')) throw invalidArgument('namespace', 'non-empty levels', raw);
  return ns;
}

function specFromRequest(spec: unknown): { fields: PartitionField[] } | undefined {
  if (!spec || typeof spec !== 'object') return undefined;
  const fields = ((spec as { fields?: Record<string, unknown>[] }).fields ?? []).map((f, i) => {
    const source = f['source-id'] ?? f.source_id;
    if (typeof source !== 'number') throw invalidArgument(`partition-spec.fields[${i}].source-id`, 'a number', source);
    const out: Record<string, unknown> = { 'source-id': source, name: f.name, transform: f.transform };
    const fid = f['field-id'] ?? f.field_id;
    if (typeof fid === 'number') out['field-id'] = fid;
    return out as unknown as PartitionField;
  });
  return { fields };
}

function sortFromRequest(order: unknown): { fields: SortField[] } | undefined {
  if (!order || typeof order !== 'object') return undefined;
  const fields = ((order as { fields?: Record<string, unknown>[] }).fields ?? []).map((f) => ({
    transform: String(f.transform ?? 'identity'),
    'source-id': (f['source-id'] ?? f.source_id) as number,
    direction: (f.direction === 'desc' ? 'desc' : 'asc') as 'asc' | 'desc',
    'null-order': ((f['null-order'] ?? f.null_order) === 'nulls-last' ? 'nulls-last' : 'nulls-first') as
      | 'nulls-first'
      | 'nulls-last',
  }));
  return fields.length ? { fields } : undefined;
}

function loadResult(t: LoadedTable): unknown {
  return { 'metadata-location': t.metadataLocation, metadata: t.metadata, config: {} };
}

/**
 * The Iceberg REST catalog API over any Catalog: mount with
 * `app.register(icebergRestRoutes, { catalog, prefix: '/iceberg' })`. Routes answer both
 * `/v1/namespaces/...` and `/v1/{prefix}/namespaces/...`.
 */
export async function icebergRestRoutes(app: FastifyInstance, opts: IcebergRestOptions): Promise<void> {
  const catalog = opts.catalog;
  // exact 64-bit snapshot ids in request bodies
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, body === '' ? {} : parseJson(body as string));
    } catch (err) {
      const e = err as Error & { statusCode?: number };
      e.statusCode = 400;
      done(e, undefined);
    }
  });

  app.get('/v1/config', async (_req, reply) =>
    send(reply, 200, {
      defaults: {},
      overrides: opts.warehouse ? { warehouse: opts.warehouse } : {},
      endpoints: [
        'GET /v1/{prefix}/namespaces',
        'POST /v1/{prefix}/namespaces',
        'GET /v1/{prefix}/namespaces/{namespace}',
        'HEAD /v1/{prefix}/namespaces/{namespace}',
        'DELETE /v1/{prefix}/namespaces/{namespace}',
        'POST /v1/{prefix}/namespaces/{namespace}/properties',
        'GET /v1/{prefix}/namespaces/{namespace}/tables',
        'POST /v1/{prefix}/namespaces/{namespace}/tables',
        'GET /v1/{prefix}/namespaces/{namespace}/tables/{table}',
        'HEAD /v1/{prefix}/namespaces/{namespace}/tables/{table}',
        'POST /v1/{prefix}/namespaces/{namespace}/tables/{table}',
        'DELETE /v1/{prefix}/namespaces/{namespace}/tables/{table}',
        'POST /v1/{prefix}/tables/rename',
        'POST /v1/{prefix}/namespaces/{namespace}/register',
      ],
    }),
  );

  type Req = FastifyRequest<{
    Params: Record<string, string>;
    Querystring: Record<string, string>;
    Body: Record<string, unknown>;
  }>;
  const routes = (base: string): void => {
    app.get(`${base}/namespaces`, async (req: Req, reply) => {
      try {
        const parent = req.query.parent ? nsParam(req.query.parent) : [];
        return send(reply, 200, { namespaces: await catalog.listNamespaces(parent) });
      } catch (err) {
        return sendError(reply, err, 'namespace');
      }
    });
    app.post(`${base}/namespaces`, async (req: Req, reply) => {
      try {
        const body = req.body ?? {};
        const ns = body.namespace;
        if (!Array.isArray(ns) || ns.length === 0)
          throw invalidArgument('namespace', 'a non-empty array of strings', ns);
        const props = (body.properties ?? {}) as Record<string, string>;
        await catalog.createNamespace(ns as string[], props);
        return send(reply, 200, { namespace: ns, properties: props });
      } catch (err) {
        return sendError(reply, err, 'namespace');
      }
    });
    app.get(`${base}/namespaces/:namespace`, { exposeHeadRoute: false }, async (req: Req, reply) => {
      try {
        const ns = nsParam(req.params.namespace as string);
        return send(reply, 200, { namespace: ns, properties: await catalog.loadNamespaceProperties(ns) });
      } catch (err) {
        return sendError(reply, err, 'namespace');
      }
    });
    app.head(`${base}/namespaces/:namespace`, async (req: Req, reply) => {
      try {
        return send(reply, (await catalog.namespaceExists(nsParam(req.params.namespace as string))) ? 204 : 404);
      } catch (err) {
        return sendError(reply, err, 'namespace');
      }
    });
    app.delete(`${base}/namespaces/:namespace`, async (req: Req, reply) => {
      try {
        await catalog.dropNamespace(nsParam(req.params.namespace as string));
        return send(reply, 204);
      } catch (err) {
        return sendError(reply, err, 'namespace');
      }
    });
    app.post(`${base}/namespaces/:namespace/properties`, async (req: Req, reply) => {
      try {
        const ns = nsParam(req.params.namespace as string);
        const removals = (req.body?.removals ?? []) as string[];
        const updates = (req.body?.updates ?? {}) as Record<string, string>;
        const overlap = removals.filter((k) => k in updates);
        if (overlap.length) throw invalidArgument('removals', 'keys not also in updates', overlap.join(', '));
        const before = await catalog.loadNamespaceProperties(ns);
        await catalog.updateNamespaceProperties(ns, removals, updates);
        return send(reply, 200, {
          updated: Object.keys(updates),
          removed: removals.filter((k) => k in before),
          missing: removals.filter((k) => !(k in before)),
        });
      } catch (err) {
        return sendError(reply, err, 'namespace');
      }
    });
    app.get(`${base}/namespaces/:namespace/tables`, async (req: Req, reply) => {
      try {
        return send(reply, 200, { identifiers: await catalog.listTables(nsParam(req.params.namespace as string)) });
      } catch (err) {
        return sendError(reply, err, 'namespace');
      }
    });
    app.post(`${base}/namespaces/:namespace/tables`, async (req: Req, reply) => {
      try {
        const ns = nsParam(req.params.namespace as string);
        const body = req.body ?? {};
        if (typeof body.name !== 'string') throw invalidArgument('name', 'a table name', body.name);
        if (!body.schema) throw invalidArgument('schema', 'a schema object');
        const opts: CreateTableOptions = { schema: body.schema as Schema };
        const spec = specFromRequest(body['partition-spec']);
        if (spec) opts.spec = spec;
        const order = sortFromRequest(body['write-order']);
        if (order) opts.sortOrder = order;
        if (body.properties) opts.properties = body.properties as Record<string, string>;
        if (typeof body.location === 'string') opts.location = body.location;
        return send(reply, 200, loadResult(await catalog.createTable({ namespace: ns, name: body.name }, opts)));
      } catch (err) {
        return sendError(reply, err, 'table');
      }
    });
    app.post(`${base}/namespaces/:namespace/register`, async (req: Req, reply) => {
      try {
        const ns = nsParam(req.params.namespace as string);
        const body = req.body ?? {};
        if (typeof body.name !== 'string') throw invalidArgument('name', 'a table name', body.name);
        if (typeof body['metadata-location'] !== 'string')
          throw invalidArgument('metadata-location', 'a metadata file location', body['metadata-location']);
        return send(
          reply,
          200,
          loadResult(
            await catalog.registerTable(
              { namespace: ns, name: body.name },
              body['metadata-location'],
              body.overwrite === true,
            ),
          ),
        );
      } catch (err) {
        return sendError(reply, err, 'table');
      }
    });
    const tid = (req: Req): TableIdentifier => ({
      namespace: nsParam(req.params.namespace as string),
      name: decodeURIComponent(req.params.table as string),
    });
    app.get(`${base}/namespaces/:namespace/tables/:table`, { exposeHeadRoute: false }, async (req: Req, reply) => {
      try {
        const t = await catalog.loadTable(tid(req));
        if (req.query.snapshots === 'refs') {
          const keep = new Set(Object.values(t.metadata.refs).map((r) => r['snapshot-id']));
          return send(
            reply,
            200,
            loadResult({
              ...t,
              metadata: { ...t.metadata, snapshots: t.metadata.snapshots.filter((s) => keep.has(s['snapshot-id'])) },
            }),
          );
        }
        return send(reply, 200, loadResult(t));
      } catch (err) {
        return sendError(reply, err, 'table');
      }
    });
    app.head(`${base}/namespaces/:namespace/tables/:table`, async (req: Req, reply) => {
      try {
        return send(reply, (await catalog.tableExists(tid(req))) ? 204 : 404);
      } catch (err) {
        return sendError(reply, err, 'table');
      }
    });
    app.post(`${base}/namespaces/:namespace/tables/:table`, async (req: Req, reply) => {
      try {
        const body = req.body ?? {};
        let requirements = (body.requirements ?? []) as TableRequirement[];
        let updates = (body.updates ?? []) as TableUpdate[];
        if (!Array.isArray(requirements)) throw invalidArgument('requirements', 'an array', requirements);
        if (!Array.isArray(updates)) throw invalidArgument('updates', 'an array', updates);
        // iceberg-js's simplified update body: { schema?, partition-spec?, properties? }
        if (body.requirements === undefined && body.updates === undefined) {
          requirements = [];
          updates = [];
          if (body.schema)
            updates.push(
              { action: 'add-schema', schema: body.schema as Schema },
              { action: 'set-current-schema', 'schema-id': -1 },
            );
          const spec = specFromRequest(body['partition-spec']);
          if (spec) {
            const cur = await catalog.loadTable(tid(req));
            let next = cur.metadata['last-partition-id'];
            const fields = spec.fields.map((f) => ({ ...f, 'field-id': f['field-id'] ?? ++next }));
            updates.push(
              { action: 'add-spec', spec: { 'spec-id': 0, fields } },
              { action: 'set-default-spec', 'spec-id': -1 },
            );
          }
          if (body.properties)
            updates.push({ action: 'set-properties', updates: body.properties as Record<string, string> });
        }
        const t = await catalog.commitTable(tid(req), requirements, updates);
        return send(reply, 200, { 'metadata-location': t.metadataLocation, metadata: t.metadata });
      } catch (err) {
        return sendError(reply, err, 'table');
      }
    });
    app.delete(`${base}/namespaces/:namespace/tables/:table`, async (req: Req, reply) => {
      try {
        await catalog.dropTable(tid(req), req.query.purgeRequested === 'true');
        return send(reply, 204);
      } catch (err) {
        return sendError(reply, err, 'table');
      }
    });
    app.post(`${base}/tables/rename`, async (req: Req, reply) => {
      try {
        const src = req.body?.source as TableIdentifier | undefined;
        const dst = req.body?.destination as TableIdentifier | undefined;
        if (!src?.namespace || !src.name) throw invalidArgument('source', 'a table identifier', src);
        if (!dst?.namespace || !dst.name) throw invalidArgument('destination', 'a table identifier', dst);
        await catalog.renameTable(src, dst);
        return send(reply, 204);
      } catch (err) {
        return sendError(reply, err, 'table');
      }
    });
  };
  routes('/v1');
  routes('/v1/:prefix');
}

// ---------- client ----------

/** A Catalog over an Iceberg REST catalog (Tributary's own, Polaris, Nessie, Unity, Glue REST, ...). */
export class RestCatalog implements Catalog {
  readonly name: string;
  readonly io: FileIO;
  readonly baseUrl: string;
  private readonly headers: Record<string, string>;
  private prefix: string | undefined;

  constructor(opts: {
    uri: string;
    name?: string;
    prefix?: string;
    token?: string;
    headers?: Record<string, string>;
    io?: FileIO;
  }) {
    this.baseUrl = opts.uri.replace(/\/+$/, '');
    this.name = opts.name ?? 'rest';
    this.io = opts.io ?? new FileIO();
    this.prefix = opts.prefix;
    this.headers = { ...(opts.headers ?? {}), ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}) };
  }

  private async base(): Promise<string> {
    if (this.prefix === undefined) {
      const cfg = (await this.call('GET', '/v1/config', undefined, 'namespace', true)) as
        | { overrides?: Record<string, string> }
        | undefined;
      this.prefix = cfg?.overrides?.prefix ?? '';
    }
    return this.prefix ? `/v1/${encodeURIComponent(this.prefix)}` : '/v1';
  }

  private async call(
    method: string,
    path: string,
    body: unknown,
    kind: 'namespace' | 'table',
    raw = false,
  ): Promise<unknown> {
    const url = `${this.baseUrl}${raw ? path : `${await this.base()}${path}`}`;
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: { ...this.headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: stringifyJson(body) }),
      });
    } catch (err) {
      throw new TributaryError('UNAVAILABLE', `REST catalog ${this.baseUrl}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const text = await res.text();
    if (res.ok) return text ? parseJson(text) : undefined;
    let message = `${method} ${path}: HTTP ${res.status}`;
    let type = '';
    try {
      const e = (parseJson(text) as { error?: { message?: string; type?: string } }).error;
      if (e?.message) message = e.message;
      type = e?.type ?? '';
    } catch {
      // non-JSON error body: keep the status line
    }
    if (res.status === 404) throw new TributaryError('NOT_FOUND', message);
    if (res.status === 409) {
      if (type === 'AlreadyExistsException') throw new TributaryError('ALREADY_EXISTS', message);
      if (type === 'CommitFailedException') throw new TributaryError('CONFLICT', message, { retriable: true });
      throw new TributaryError('CONFLICT', message, { retriable: false });
    }
    if (res.status === 400) throw new TributaryError('INVALID_ARGUMENT', message);
    if (res.status === 401 || res.status === 419) throw new TributaryError('UNAUTHENTICATED', message);
    if (res.status === 403) throw new TributaryError('PERMISSION_DENIED', message);
    if (res.status === 406) throw new TributaryError('UNSUPPORTED', message);
    void kind;
    throw new TributaryError('UNAVAILABLE', message, { retriable: res.status >= 500 });
  }

  private ns(namespace: string[]): string {
    return encodeURIComponent(namespace.join(NS_SEP));
  }
  private tpath(id: TableIdentifier): string {
    return `/namespaces/${this.ns(id.namespace)}/tables/${encodeURIComponent(id.name)}`;
  }
  private loaded(r: unknown): LoadedTable {
    const o = r as { 'metadata-location': string; metadata: unknown };
    return { metadataLocation: o['metadata-location'], metadata: parseTableMetadata(o.metadata, 'metadata') };
  }

  async listNamespaces(parent: string[] = []): Promise<string[][]> {
    const q = parent.length ? `?parent=${this.ns(parent)}` : '';
    return ((await this.call('GET', `/namespaces${q}`, undefined, 'namespace')) as { namespaces: string[][] })
      .namespaces;
  }
  async createNamespace(namespace: string[], properties: Record<string, string> = {}): Promise<void> {
    await this.call('POST', '/namespaces', { namespace, properties }, 'namespace');
  }
  async namespaceExists(namespace: string[]): Promise<boolean> {
    try {
      await this.call('HEAD', `/namespaces/${this.ns(namespace)}`, undefined, 'namespace');
      return true;
    } catch (err) {
      if (isTributaryError(err, 'NOT_FOUND')) return false;
      throw err;
    }
  }
  async loadNamespaceProperties(namespace: string[]): Promise<Record<string, string>> {
    return (
      (
        (await this.call('GET', `/namespaces/${this.ns(namespace)}`, undefined, 'namespace')) as {
          properties?: Record<string, string>;
        }
      ).properties ?? {}
    );
  }
  async updateNamespaceProperties(
    namespace: string[],
    removals: string[],
    updates: Record<string, string>,
  ): Promise<void> {
    await this.call('POST', `/namespaces/${this.ns(namespace)}/properties`, { removals, updates }, 'namespace');
  }
  async dropNamespace(namespace: string[]): Promise<void> {
    await this.call('DELETE', `/namespaces/${this.ns(namespace)}`, undefined, 'namespace');
  }
  async listTables(namespace: string[]): Promise<TableIdentifier[]> {
    return (
      (await this.call('GET', `/namespaces/${this.ns(namespace)}/tables`, undefined, 'namespace')) as {
        identifiers: TableIdentifier[];
      }
    ).identifiers;
  }
  async createTable(id: TableIdentifier, opts: CreateTableOptions): Promise<LoadedTable> {
    const body: Record<string, unknown> = { name: id.name, schema: opts.schema };
    if (opts.spec) body['partition-spec'] = { 'spec-id': 0, fields: opts.spec.fields };
    if (opts.sortOrder) body['write-order'] = { 'order-id': 1, fields: opts.sortOrder.fields };
    if (opts.properties) body.properties = opts.properties;
    if (opts.location) body.location = opts.location;
    return this.loaded(await this.call('POST', `/namespaces/${this.ns(id.namespace)}/tables`, body, 'table'));
  }
  async loadTable(id: TableIdentifier): Promise<LoadedTable> {
    return this.loaded(await this.call('GET', this.tpath(id), undefined, 'table'));
  }
  async tableExists(id: TableIdentifier): Promise<boolean> {
    try {
      await this.call('HEAD', this.tpath(id), undefined, 'table');
      return true;
    } catch (err) {
      if (isTributaryError(err, 'NOT_FOUND')) return false;
      throw err;
    }
  }
  async dropTable(id: TableIdentifier, purge = false): Promise<void> {
    await this.call('DELETE', `${this.tpath(id)}?purgeRequested=${purge}`, undefined, 'table');
  }
  async renameTable(from: TableIdentifier, to: TableIdentifier): Promise<void> {
    await this.call('POST', '/tables/rename', { source: from, destination: to }, 'table');
  }
  async registerTable(id: TableIdentifier, metadataLocation: string, overwrite = false): Promise<LoadedTable> {
    return this.loaded(
      await this.call(
        'POST',
        `/namespaces/${this.ns(id.namespace)}/register`,
        { name: id.name, 'metadata-location': metadataLocation, overwrite },
        'table',
      ),
    );
  }

  async commitTable(
    id: TableIdentifier,
    requirements: TableRequirement[],
    updates: TableUpdate[],
  ): Promise<LoadedTable> {
    return this.loaded(await this.call('POST', this.tpath(id), { identifier: id, requirements, updates }, 'table'));
  }
  async close(): Promise<void> {}
}
