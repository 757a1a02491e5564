import type { FastifyInstance, FastifyReply } from 'fastify';
import { isTributaryError } from '../core/index.ts';
import type { PipelineRunner } from './runner.ts';
import { parsePipelineYaml } from './spec.ts';

export interface PipelineRoutesOptions {
  runner: PipelineRunner;
  /** Where relative file paths in submitted pipelines resolve. */
  baseDir?: string;
}

const STATUS: Record<string, number> = {
  INVALID_ARGUMENT: 400,
  NOT_FOUND: 404,
  PERMISSION_DENIED: 403,
  ALREADY_EXISTS: 409,
  CONFLICT: 409,
  TIMEOUT: 504,
  UNAVAILABLE: 503,
};

function fail(reply: FastifyReply, err: unknown): FastifyReply {
  if (isTributaryError(err))
    return reply
      .code(STATUS[err.code] ?? 500)
      .send({ error: err.code, message: err.message, ...(err.field ? { field: err.field } : {}) });
  throw err;
}

/**
 * Fastify plugin: pipelines, runs, lineage and the governance catalog.
 * Mount with `app.register(pipelineRoutes, { runner, prefix: '/pipeline' })`.
 */
export async function pipelineRoutes(app: FastifyInstance, opts: PipelineRoutesOptions): Promise<void> {
  const { runner } = opts;
  app.addContentTypeParser(
    ['application/yaml', 'text/yaml', 'application/x-yaml'],
    { parseAs: 'string' },
    (_req, body, done) => done(null, body),
  );

  app.get('/pipelines', async () => runner.store.pipelines());

  app.get<{ Querystring: { pipeline?: string; limit?: string } }>('/runs', async (req) => {
    const o: { pipeline?: string; limit?: number } = {};
    if (req.query.pipeline) o.pipeline = req.query.pipeline;
    if (req.query.limit) o.limit = Number(req.query.limit);
    return runner.store.listRuns(o).map(({ spec: _spec, ...r }) => r);
  });

  app.get<{ Params: { id: string } }>('/runs/:id', async (req, reply) => {
    try {
      return runner.result(req.params.id);
    } catch (err) {
      return fail(reply, err);
    }
  });

  app.get<{ Params: { id: string } }>('/runs/:id/lineage', async (req, reply) => {
    try {
      runner.store.getRun(req.params.id);
      return runner.store.lineageEvents(req.params.id);
    } catch (err) {
      return fail(reply, err);
    }
  });

  /**
   * Body: a pipeline (JSON object or YAML text), or `{ pipeline, params, partition, force }`. Waits for
   * the run unless `?wait=false`: then 202 with the run id to poll at `GET /runs/:id`.
   */
  app.post<{ Body: unknown; Querystring: { wait?: string } }>('/runs', async (req, reply) => {
    try {
      let body = req.body;
      if (typeof body === 'string') body = { pipeline: parsePipelineYaml(body) };
      const b = body as { pipeline?: unknown; params?: Record<string, string>; partition?: string; force?: boolean };
      const spec =
        b && typeof b === 'object' && 'pipeline' in b
          ? typeof b.pipeline === 'string'
            ? parsePipelineYaml(b.pipeline)
            : b.pipeline
          : body;
      const handle = runner.start(spec as never, {
        ...(b.params ? { params: b.params } : {}),
        ...(b.partition ? { partition: b.partition } : {}),
        ...(b.force ? { force: true } : {}),
        ...(opts.baseDir ? { baseDir: opts.baseDir } : {}),
      });
      if (req.query.wait === 'false') {
        handle.done.catch(() => undefined); // recorded on the run
        return reply.code(202).send({ runId: handle.runId, status: runner.store.getRun(handle.runId).status });
      }
      const r = await handle.done;
      return reply.code(r.reused ? 200 : 201).send(r);
    } catch (err) {
      return fail(reply, err);
    }
  });

  app.post<{ Params: { id: string } }>('/runs/:id/resume', async (req, reply) => {
    try {
      return await runner.resume(req.params.id, opts.baseDir ? { baseDir: opts.baseDir } : {});
    } catch (err) {
      return fail(reply, err);
    }
  });

  app.get<{ Params: { dataset: string }; Querystring: { direction?: string; column?: string } }>(
    '/lineage/:dataset',
    async (req, reply) => {
      const dir = req.query.direction === 'downstream' ? 'downstream' : 'upstream';
      if (req.query.direction && !['upstream', 'downstream'].includes(req.query.direction))
        return reply.code(400).send({
          error: 'INVALID_ARGUMENT',
          message: 'direction: expected upstream or downstream',
          field: 'direction',
        });
      const g = runner.lineageGraph();
      if (req.query.column)
        return {
          dataset: req.params.dataset,
          column: req.query.column,
          direction: dir,
          columns: g.columns(req.params.dataset, req.query.column, dir),
        };
      return { dataset: req.params.dataset, direction: dir, datasets: g.walk(req.params.dataset, dir) };
    },
  );

  app.get<{ Querystring: { tag?: string; owner?: string } }>('/catalog/datasets', async (req) => {
    const o: { tag?: string; owner?: string } = {};
    if (req.query.tag) o.tag = req.query.tag;
    if (req.query.owner) o.owner = req.query.owner;
    return runner.governance.list(o);
  });

  app.get<{ Params: { id: string } }>('/catalog/datasets/:id', async (req, reply) => {
    try {
      return { ...runner.governance.get(req.params.id), schemaHistory: runner.governance.schemaHistory(req.params.id) };
    } catch (err) {
      return fail(reply, err);
    }
  });

  app.put<{ Params: { id: string }; Body: unknown }>('/catalog/datasets/:id', async (req, reply) => {
    try {
      return runner.governance.upsert(req.params.id, (req.body ?? {}) as never);
    } catch (err) {
      return fail(reply, err);
    }
  });

  app.delete<{ Params: { id: string } }>('/catalog/datasets/:id', async (req, reply) => {
    runner.governance.remove(req.params.id);
    return reply.code(204).send();
  });
}
