import Fastify, { type FastifyInstance } from 'fastify';
import client from 'prom-client';
import { dataLayout } from '../core/index.ts';
import { type BrokerLogger, type KafkaBroker, type SaslOptions, startKafkaBroker } from '../kafka/index.ts';
import { icebergRestRoutes, SqliteCatalog } from '../lake/index.ts';
import { embeddedClient, type Log, openLog } from '../log/index.ts';
import { druidRoutes, OlapEngine } from '../olap/index.ts';
import { PipelineRunner, pipelineRoutes } from '../pipeline/index.ts';
import { installBearerAuth } from './auth.ts';
import { consoleRoutes } from './console-routes.ts';
import { JobManager } from './jobs.ts';
import { jobsRoutes, registerJobMetrics } from './jobs-routes.ts';
import { topicsRoutes } from './topics-routes.ts';

export interface PlatformOptions {
  dataDir: string;
  /** Interface both listeners bind (default 127.0.0.1). */
  host?: string;
  /** Kafka listener port; 0 picks a free port. Default 9092. */
  kafkaPort?: number;
  /** HTTP port (Druid API, Iceberg REST catalog, metrics, health); 0 picks a free port. Default 8888. */
  httpPort?: number;
  autoCreateTopics?: boolean;
  sasl?: SaslOptions;
  /** Largest HTTP request body accepted, in bytes (default 16 MiB). */
  bodyLimit?: number;
  /** Bearer tokens: when given, every HTTP route but /health and /status/health needs one. */
  auth?: { tokens: string[] };
  /** TLS on both listeners (HTTPS, and Kafka SSL / SASL_SSL): PEM certificate and private key. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Commit interval of jobs submitted over HTTP (default 100 ms). */
  commitIntervalMs?: number;
  /** Where the Kafka listener logs (default: JSON lines on stdout, as a server does). */
  brokerLogger?: BrokerLogger;
}

export interface Platform {
  readonly log: Log;
  readonly olap: OlapEngine;
  readonly catalog: SqliteCatalog;
  readonly pipelines: PipelineRunner;
  /** Jobs and CEP patterns submitted over HTTP (/api/v1/jobs, /api/v1/patterns). */
  readonly jobs: JobManager;
  /** 'https' when TLS is configured. */
  readonly protocol: 'http' | 'https';
  readonly kafkaPort: number;
  readonly httpPort: number;
  readonly http: FastifyInstance;
  close(): Promise<void>;
}

/** Starts every part in this process: the log and its Kafka listener, and one HTTP server all parts mount routes on. */
export async function startPlatform(options: PlatformOptions): Promise<Platform> {
  const layout = dataLayout(options.dataDir);
  const host = options.host ?? '127.0.0.1';
  const log = await openLog({ dataDir: layout.log, autoCreateTopics: options.autoCreateTopics ?? true });
  const started: { close(): Promise<void> }[] = [log];
  try {
    const broker: KafkaBroker = await startKafkaBroker({
      log,
      host,
      port: options.kafkaPort ?? 9092,
      autoCreateTopics: options.autoCreateTopics ?? true,
      ...(options.sasl ? { sasl: options.sasl } : {}),
      ...(options.brokerLogger ? { logger: options.brokerLogger } : {}),
      ...(options.tls ? { tls: options.tls } : {}),
    });
    started.unshift(broker);
    const catalog = new SqliteCatalog({ warehouse: layout.lake });
    const logClient = embeddedClient(log);
    // The engine keeps its segments under <dataDir>/olap; supervisors read topics through the log client.
    const olap = await OlapEngine.open({ dataDir: layout.root, logClient, catalog, baseDirRoot: layout.root });
    started.unshift(olap);
    const pipelines = new PipelineRunner({ dataDir: layout.root, catalog, log: logClient, olap });
    started.unshift(pipelines);
    // Jobs last among the parts: they restart from their committed offsets once the log and its clients are up.
    const jobs = await JobManager.open({
      dataDir: layout.root,
      log,
      client: logClient,
      ...(options.commitIntervalMs === undefined ? {} : { commitIntervalMs: options.commitIntervalMs }),
    });
    started.unshift(jobs);
    const registry = new client.Registry();
    client.collectDefaultMetrics({ register: registry, prefix: 'tributary_' });
    registerJobMetrics(client, registry, jobs);

    const bodyLimit = options.bodyLimit ?? 16 * 1024 * 1024;
    // One Fastify type for both: the HTTPS server answers the same routes.
    const http = (options.tls === undefined
      ? Fastify({ bodyLimit })
      : Fastify({ bodyLimit, https: { cert: options.tls.cert, key: options.tls.key } })) as unknown as FastifyInstance;
    // Before any route: a root hook covers every plugin registered after it.
    installBearerAuth(http, { tokens: options.auth?.tokens ?? [] });
    http.get('/health', async () => ({ status: 'ok' }));
    http.get('/metrics', async (_request, reply) => {
      reply.header('content-type', registry.contentType);
      return registry.metrics();
    });
    await http.register(druidRoutes, { engine: olap });
    await http.register(icebergRestRoutes, { catalog, prefix: '/iceberg' });
    await http.register(topicsRoutes, { log });
    await http.register(pipelineRoutes, { runner: pipelines, baseDir: layout.root, prefix: '/api/v1' });
    await http.register(jobsRoutes, { jobs, prefix: '/api/v1' });
    await http.register(consoleRoutes, { catalog });
    await http.listen({ host, port: options.httpPort ?? 8888 });
    started.unshift({ close: () => http.close() });
    const address = http.server.address();
    const httpPort = typeof address === 'object' && address ? address.port : 0;

    let closing: Promise<void> | undefined;
    return {
      log,
      olap,
      catalog,
      pipelines,
      jobs,
      protocol: options.tls === undefined ? 'http' : 'https',
      http,
      kafkaPort: broker.port,
      httpPort,
      close() {
        closing ??= closeAll([...started, { close: async () => catalog.db.close() }]);
        return closing;
      },
    };
  } catch (err) {
    await closeAll(started);
    throw err;
  }
}

async function closeAll(parts: { close(): Promise<void> }[]): Promise<void> {
  // In order: listeners first so no request lands on a closed store, the log last.
  for (const part of parts) {
    try {
      await part.close();
    } catch {
      // keep closing the rest; a failed close must not keep the log open
    }
  }
}
