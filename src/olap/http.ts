import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { type ErrorCode, isTributaryError, TributaryError } from '../core/index.ts';
import type { OlapEngine } from './engine.ts';
import { csvField, toDruidJson } from './json.ts';
import { parseWith } from './validate.ts';

export interface DruidRoutesOptions {
  engine: OlapEngine;
}

const STATUS: Partial<Record<ErrorCode, [number, string, string]>> = {
  INVALID_ARGUMENT: [400, 'invalidInput', 'INVALID_INPUT'],
  NOT_FOUND: [404, 'notFound', 'NOT_FOUND'],
  ALREADY_EXISTS: [400, 'invalidInput', 'INVALID_INPUT'],
  UNSUPPORTED: [501, 'unsupported', 'UNSUPPORTED'],
  TIMEOUT: [504, 'timeout', 'TIMEOUT'],
  CONFLICT: [500, 'canceled', 'CANCELED'],
  UNAVAILABLE: [503, 'unavailable', 'RUNTIME_FAILURE'],
};

/** Druid's error JSON: the DruidException shape, plus the legacy errorClass/host fields older clients read. */
export function druidError(err: unknown): { status: number; body: Record<string, unknown> } {
  let code: ErrorCode = 'INTERNAL';
  let message = err instanceof Error ? err.message : String(err);
  const statusCode = (err as { statusCode?: number }).statusCode;
  let httpStatus: number | undefined;
  if (isTributaryError(err)) code = err.code;
  else if (statusCode !== undefined && statusCode >= 400 && statusCode < 500) {
    // Fastify's own request errors (bad JSON, body too large, bad content type) keep their status.
    code = 'INVALID_ARGUMENT';
    httpStatus = statusCode;
    message = `request body: ${message}`;
  }
  const [mapped, errorCode, category] = STATUS[code] ?? [500, 'internal', 'RUNTIME_FAILURE'];
  const status = httpStatus ?? mapped;
  const context: Record<string, string> = {};
  if (isTributaryError(err) && err.field) context.field = err.field;
  return {
    status,
    body: {
      error: 'druidException',
      errorCode,
      persona: 'USER',
      category,
      errorMessage: message,
      context,
      errorClass: 'org.apache.druid.error.DruidException',
      host: null,
    },
  };
}

function sendJson(reply: FastifyReply, value: unknown, status = 200): FastifyReply {
  return reply.code(status).type('application/json').send(toDruidJson(value));
}

const sqlBody = z.looseObject({
  query: z.string().min(1, 'expected a non-empty SQL string'),
  resultFormat: z.enum(['object', 'array', 'objectLines', 'arrayLines', 'csv']).default('object'),
  header: z.boolean().default(false),
  typesHeader: z.boolean().default(false),
  sqlTypesHeader: z.boolean().default(false),
  context: z.record(z.string(), z.unknown()).default({}),
  parameters: z.array(z.unknown()).default([]),
});

/** Druid's HTTP API as a Fastify plugin: register with `app.register(druidRoutes, { engine })`. */
export async function druidRoutes(app: FastifyInstance, opts: DruidRoutesOptions): Promise<void> {
  const { engine } = opts;
  app.setErrorHandler((err, _req, reply) => {
    const { status, body } = druidError(err);
    void sendJson(reply, body, status);
  });
  app.addContentTypeParser('text/plain', { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, JSON.parse(String(body)));
    } catch (err) {
      (err as { statusCode?: number }).statusCode = 400;
      done(err as Error, undefined);
    }
  });

  app.get('/status/health', async (_req, reply) => sendJson(reply, true));
  app.get('/status', async (_req, reply) => sendJson(reply, { version: '0.1.0-tributary', modules: [], memory: {} }));

  const native = async (body: unknown, reply: FastifyReply) => {
    if (!body || typeof body !== 'object' || Array.isArray(body))
      throw new TributaryError('INVALID_ARGUMENT', 'query: expected a JSON object with queryType', { field: 'query' });
    const ctx = ((body as { context?: unknown }).context ?? {}) as Record<string, unknown>;
    const queryId = typeof ctx.queryId === 'string' ? ctx.queryId : randomUUID();
    const result = await engine.query(body, { queryId });
    reply.header('X-Druid-Query-Id', queryId);
    return sendJson(reply, result);
  };
  app.post('/druid/v2', async (req, reply) => native(req.body, reply));
  app.post('/druid/v2/', async (req, reply) => native(req.body, reply));

  app.post('/druid/v2/sql', async (req, reply) => {
    const b = parseWith(sqlBody, req.body, 'request');
    const queryId = typeof b.context.sqlQueryId === 'string' ? b.context.sqlQueryId : randomUUID();
    const timeoutMs = typeof b.context.timeout === 'number' ? b.context.timeout : undefined;
    const r = await engine.sql(b.query, { queryId, parameters: b.parameters, ...(timeoutMs ? { timeoutMs } : {}) });
    reply.header('X-Druid-SQL-Query-Id', queryId);
    if (b.header) reply.header('X-Druid-SQL-Header-Included', 'yes');
    const names = r.columns.map((c) => c.name);
    const headerValue = (c: (typeof r.columns)[number]) =>
      b.typesHeader || b.sqlTypesHeader
        ? { ...(b.typesHeader ? { type: c.type } : {}), ...(b.sqlTypesHeader ? { sqlType: c.sqlType } : {}) }
        : null;
    const objects = () => r.rows.map((row) => Object.fromEntries(names.map((n, i) => [n, row[i]])));
    switch (b.resultFormat) {
      case 'object': {
        const rows: unknown[] = objects();
        if (b.header) rows.unshift(Object.fromEntries(r.columns.map((c) => [c.name, headerValue(c)])));
        return sendJson(reply, rows);
      }
      case 'array': {
        const rows: unknown[] = [...r.rows];
        if (b.header) {
          rows.unshift(names);
          if (b.typesHeader)
            rows.splice(
              1,
              0,
              r.columns.map((c) => c.type),
            );
          if (b.sqlTypesHeader)
            rows.splice(
              b.typesHeader ? 2 : 1,
              0,
              r.columns.map((c) => c.sqlType),
            );
        }
        return sendJson(reply, rows);
      }
      case 'objectLines':
      case 'arrayLines': {
        const rows: unknown[] = b.resultFormat === 'objectLines' ? objects() : [...r.rows];
        if (b.header)
          rows.unshift(
            b.resultFormat === 'objectLines'
              ? Object.fromEntries(r.columns.map((c) => [c.name, headerValue(c)]))
              : names,
          );
        // Druid ends line formats with an empty line so clients can tell a complete response.
        return reply.type('text/plain').send(`${rows.map((x) => toDruidJson(x)).join('\n')}\n\n`);
      }
      case 'csv': {
        const lines = r.rows.map((row) => row.map(csvField).join(','));
        if (b.header) lines.unshift(names.map(csvField).join(','));
        return reply.type('text/csv').send(`${lines.join('\n')}\n\n`);
      }
    }
  });

  app.delete('/druid/v2/:queryId', async (req, reply) => {
    const { queryId } = req.params as { queryId: string };
    engine.cancel(queryId);
    return reply.code(202).send();
  });
  app.delete('/druid/v2/sql/:queryId', async (req, reply) => {
    const { queryId } = req.params as { queryId: string };
    return reply.code(engine.cancel(queryId) ? 202 : 404).send();
  });

  app.get('/druid/v2/datasources', async (_req, reply) => sendJson(reply, engine.dataSources()));
  app.get('/druid/v2/datasources/:name', async (req, reply) => {
    const { name } = req.params as { name: string };
    const meta = engine.store.datasources.get(name);
    if (!meta) throw new TributaryError('NOT_FOUND', `datasource ${name} does not exist`);
    return sendJson(reply, {
      dimensions: meta.columns.filter((c) => !c.aggregator).map((c) => c.name),
      metrics: meta.columns.filter((c) => c.aggregator).map((c) => c.name),
    });
  });
  app.get('/druid/coordinator/v1/datasources', async (_req, reply) => sendJson(reply, engine.dataSources()));

  // Inline input sources carry their data in the task, so tasks may be large.
  app.post('/druid/indexer/v1/task', { bodyLimit: 256 * 1024 * 1024 }, async (req, reply) =>
    sendJson(reply, { task: engine.submitTask(req.body) }),
  );
  const statusOf = (id: string) => {
    const t = engine.task(id);
    return {
      id: t.id,
      type: t.type,
      createdTime: t.createdTime,
      queueInsertionTime: t.createdTime,
      statusCode: t.status,
      status: t.status,
      runnerStatusCode: t.status === 'RUNNING' ? 'RUNNING' : 'NONE',
      duration: t.duration,
      location: { host: null, port: -1, tlsPort: -1 },
      dataSource: t.dataSource,
      errorMsg: t.errorMsg,
    };
  };
  app.get('/druid/indexer/v1/task/:id/status', async (req, reply) => {
    const { id } = req.params as { id: string };
    return sendJson(reply, { task: id, status: statusOf(id) });
  });
  app.get('/druid/indexer/v1/task/:id/reports', async (req, reply) => {
    const { id } = req.params as { id: string };
    const t = engine.task(id);
    return sendJson(reply, {
      ingestionStatsAndErrors: {
        type: 'ingestionStatsAndErrors',
        taskId: id,
        payload: {
          ingestionState: t.status === 'RUNNING' ? 'BUILD_SEGMENTS' : 'COMPLETED',
          unparseableEvents: {},
          rowStats: {
            buildSegments: {
              processed: BigInt(t.rowStats.processed),
              processedWithError: BigInt(t.rowStats.processedWithError),
              thrownAway: BigInt(t.rowStats.thrownAway),
              unparseable: BigInt(t.rowStats.unparseable),
            },
          },
          errorMsg: t.errorMsg,
          segmentsPublished: BigInt(t.segments.length),
        },
      },
    });
  });
  app.get('/druid/indexer/v1/task/:id', async (req, reply) => {
    const { id } = req.params as { id: string };
    const t = engine.task(id);
    return sendJson(reply, { task: id, payload: { id, type: t.type, dataSource: t.dataSource } });
  });
  app.post('/druid/indexer/v1/task/:id/shutdown', async (req, reply) => {
    const { id } = req.params as { id: string };
    engine.task(id);
    return sendJson(reply, { task: id });
  });
  app.get('/druid/indexer/v1/tasks', async (_req, reply) =>
    sendJson(
      reply,
      [...engine.tasks.keys()].map((id) => statusOf(id)),
    ),
  );
  // Lookups (map type, one tier): Druid's coordinator lookup config API.
  const lookupBody = z.record(
    z.string(),
    z.record(
      z.string().min(1),
      z.looseObject({
        version: z.string().default('v0'),
        lookupExtractorFactory: z.looseObject({
          type: z.literal('map'),
          map: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])),
        }),
      }),
    ),
  );
  app.post('/druid/coordinator/v1/lookups/config', async (req, reply) => {
    const tiers = parseWith(lookupBody, req.body, 'lookups');
    for (const lookups of Object.values(tiers))
      for (const [name, l] of Object.entries(lookups))
        await engine.store.setLookup(name, {
          version: l.version,
          map: Object.fromEntries(Object.entries(l.lookupExtractorFactory.map).map(([k, v]) => [k, String(v)])),
        });
    return sendJson(reply, {}, 202);
  });
  app.get('/druid/coordinator/v1/lookups/config/:tier', async (_req, reply) =>
    sendJson(reply, [...engine.store.lookups.keys()]),
  );
  app.get('/druid/coordinator/v1/lookups/config/:tier/:name', async (req, reply) => {
    const { name } = req.params as { name: string };
    const l = engine.store.lookups.get(name);
    if (!l) throw new TributaryError('NOT_FOUND', `lookup ${name} does not exist`);
    return sendJson(reply, { version: l.version, lookupExtractorFactory: { type: 'map', map: l.map } });
  });
  app.delete('/druid/coordinator/v1/lookups/config/:tier/:name', async (req, reply) => {
    const { name } = req.params as { name: string };
    if (!(await engine.store.deleteLookup(name)))
      throw new TributaryError('NOT_FOUND', `lookup ${name} does not exist`);
    return reply.code(202).send();
  });
  app.get('/druid/coordinator/v1/rules', async (_req, reply) => sendJson(reply, engine.rules()));
  app.get('/druid/coordinator/v1/rules/:ds', async (req, reply) => {
    const { ds } = req.params as { ds: string };
    return sendJson(reply, engine.rules()[ds] ?? []);
  });
  app.post('/druid/coordinator/v1/rules/:ds', async (req, reply) => {
    const { ds } = req.params as { ds: string };
    await engine.setRules(ds, req.body);
    return reply.code(200).send();
  });
  app.post('/druid/indexer/v1/supervisor', async (req, reply) =>
    sendJson(reply, { id: await engine.submitSupervisor(req.body) }),
  );
  app.get('/druid/indexer/v1/supervisor', async (_req, reply) => sendJson(reply, [...engine.supervisors.keys()]));
  app.get('/druid/indexer/v1/supervisor/:id', async (req, reply) => {
    const { id } = req.params as { id: string };
    return sendJson(reply, engine.supervisor(id).rawSpec);
  });
  app.get('/druid/indexer/v1/supervisor/:id/status', async (req, reply) => {
    const { id } = req.params as { id: string };
    const s = engine.supervisor(id);
    await s.refreshLatest().catch(() => undefined);
    const current = Object.fromEntries([...s.offsets].map(([p, o]) => [String(p), o]));
    const latest = Object.fromEntries([...s.latest].map(([p, o]) => [String(p), o]));
    const lag = Object.fromEntries([...s.latest].map(([p, o]) => [String(p), o - (s.offsets.get(p) ?? o)]));
    const aggregateLag = Object.values(lag).reduce((a, b) => a + b, 0n);
    const committed = engine.store.datasources.get(id)?.streamOffsets;
    return sendJson(reply, {
      id,
      generationTime: new Date().toISOString(),
      payload: {
        dataSource: id,
        stream: s.topic,
        partitions: BigInt(s.offsets.size),
        replicas: 1n,
        durationSeconds: 3600n,
        activeTasks: [],
        publishingTasks: [],
        currentOffsets: current,
        committedOffsets: committed?.partitions ?? {},
        latestOffsets: latest,
        minimumLag: lag,
        aggregateLag,
        offsetsLastUpdated: new Date().toISOString(),
        suspended: s.state !== 'RUNNING',
        healthy: s.stats.lastError === null,
        state: s.state === 'RUNNING' ? 'RUNNING' : 'SUSPENDED',
        detailedState: s.state === 'RUNNING' ? 'RUNNING' : 'SUSPENDED',
        recentErrors: s.stats.lastError
          ? [{ timestamp: new Date().toISOString(), exceptionClass: 'TributaryError', message: s.stats.lastError }]
          : [],
        rowStats: {
          processed: BigInt(s.stats.processed),
          unparseable: BigInt(s.stats.unparseable),
          thrownAway: BigInt(s.stats.thrownAway),
          persists: BigInt(s.stats.persists),
        },
      },
    });
  });
  const action = (name: string, fn: (id: string) => Promise<void>) =>
    app.post(`/druid/indexer/v1/supervisor/:id/${name}`, async (req, reply) => {
      const { id } = req.params as { id: string };
      await fn(id);
      return sendJson(
        reply,
        name === 'terminate' || name === 'shutdown' || name === 'reset' ? { id } : engine.supervisor(id).rawSpec,
      );
    });
  action('suspend', (id) => engine.suspendSupervisor(id));
  action('resume', (id) => engine.resumeSupervisor(id));
  action('reset', (id) => engine.resetSupervisor(id));
  action('terminate', (id) => engine.terminateSupervisor(id));
  action('shutdown', (id) => engine.terminateSupervisor(id));
}
