import type { FastifyInstance } from 'fastify';
import type client from 'prom-client';
import { TributaryError } from '../core/index.ts';
import { sendJsonError } from './http-errors.ts';
import type { JobKind, JobManager } from './jobs.ts';

export interface JobsRoutesOptions {
  jobs: JobManager;
}

/** `?limit=` of the alerts route: 1-10,000. */
function limitOf(raw: string | undefined): number {
  if (raw === undefined) return 100;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < 1 || n > 10_000)
    throw new TributaryError(
      'INVALID_ARGUMENT',
      `query.limit: expected an integer 1-10000, got ${JSON.stringify(raw)}`,
      {
        field: 'query.limit',
      },
    );
  return n;
}

/**
 * Jobs and CEP patterns over HTTP (mounted under /api/v1): JSON job specs and pattern jobs are submitted, listed,
 * paused, resumed and stopped; patterns are replaced in place; alerts are the newest committed matches.
 */
export async function jobsRoutes(app: FastifyInstance, opts: JobsRoutesOptions): Promise<void> {
  const { jobs } = opts;
  app.setErrorHandler(sendJsonError);

  const lifecycle = (kind: JobKind | undefined, base: string) => {
    app.post<{ Params: { id: string } }>(`${base}/:id/pause`, async (req) => {
      if (kind) jobs.get(req.params.id, kind);
      return jobs.pause(req.params.id);
    });
    app.post<{ Params: { id: string } }>(`${base}/:id/resume`, async (req) => {
      if (kind) jobs.get(req.params.id, kind);
      return jobs.resume(req.params.id);
    });
    app.delete<{ Params: { id: string } }>(`${base}/:id`, async (req) => {
      if (kind) jobs.get(req.params.id, kind);
      return jobs.stop(req.params.id);
    });
    app.get<{ Params: { id: string } }>(`${base}/:id`, async (req) => jobs.get(req.params.id, kind));
  };

  app.get('/jobs', async () => ({ jobs: jobs.list() }));
  app.post('/jobs', async (req, reply) => reply.code(201).send(await jobs.submitJob(req.body)));
  lifecycle(undefined, '/jobs');

  app.get('/patterns', async () => ({ patterns: jobs.list('pattern') }));
  app.post('/patterns', async (req, reply) => reply.code(201).send(await jobs.submitPattern(req.body)));
  app.put<{ Params: { id: string } }>('/patterns/:id', async (req) => jobs.replacePattern(req.params.id, req.body));
  lifecycle('pattern', '/patterns');

  app.get<{ Querystring: { limit?: string; pattern?: string } }>('/cep/alerts', async (req) => ({
    alerts: await jobs.alerts({
      limit: limitOf(req.query.limit),
      ...(req.query.pattern === undefined ? {} : { pattern: req.query.pattern }),
    }),
  }));
}

/** Per-job gauges on the platform's Prometheus registry, read from the jobs when scraped. */
export function registerJobMetrics(prom: typeof client, registry: client.Registry, jobs: JobManager): void {
  const gauge = (name: string, help: string, read: (j: ReturnType<JobManager['list']>[number]) => number) =>
    new prom.Gauge({
      name,
      help,
      labelNames: ['job', 'kind'],
      registers: [registry],
      collect() {
        this.reset();
        for (const j of jobs.list()) this.set({ job: j.id, kind: j.kind }, read(j));
      },
    });
  gauge('tributary_job_records_in', 'Records the job read since it started', (j) => j.recordsIn);
  gauge('tributary_job_records_out', 'Records the job wrote since it started', (j) => j.recordsOut);
  gauge('tributary_job_lag', 'Records not yet consumed by the job, over its input partitions', (j) => j.lag);
  gauge('tributary_job_running', '1 when the job is running', (j) => (j.state === 'RUNNING' ? 1 : 0));
}
