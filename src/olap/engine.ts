import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { channel, isTributaryError, notFound, publish, TributaryError } from '../core/index.ts';
import { remoteClient } from '../kafka/index.ts';
import { type Catalog, loadTable } from '../lake/index.ts';
import type { LogClient } from '../log/index.ts';
import { translateSql } from './druidsql.ts';
import { buildBatch, cleanJsonLines, countJsonLines, type RowStats, readerSql, resolveLocalFiles } from './ingest.ts';
import { applyRetention, compact, parseRules, type RetentionRule } from './maintenance.ts';
import { dataSourcesOf, runNative } from './query.ts';
import { type IngestionSpec, parseIngestionSpec } from './spec.ts';
import { type SegmentInfo, SegmentStore } from './store.ts';
import { KafkaSupervisor } from './stream.ts';
import { parseInterval } from './time.ts';

export interface OlapEngineOptions {
  dataDir: string;
  /** Where relative `baseDir`s of local input sources resolve (default: the process cwd). */
  baseDirRoot?: string;
  /** DuckDB threads (default: DuckDB's choice). */
  threads?: number;
  /** Max cached query results. */
  cacheEntries?: number;
  /** The log client Kafka supervisors read through (embedded log or a remote Kafka). */
  logClient?: LogClient;
  /** The lake catalog `iceberg` input sources read tables from. */
  catalog?: Catalog;
}

/** Diagnostics: `tributary:olap:query` (per native/SQL query) and `tributary:olap:ingest` (per batch publish). */
const queryChannel = channel('olap', 'query');
const ingestChannel = channel('olap', 'ingest');

export type TaskStatusCode = 'RUNNING' | 'SUCCESS' | 'FAILED';

export interface TaskState {
  id: string;
  type: string;
  dataSource: string;
  createdTime: string;
  status: TaskStatusCode;
  duration: number;
  errorMsg: string | null;
  rowStats: RowStats;
  segments: SegmentInfo[];
  done: Promise<void>;
}

export interface QueryOptions {
  queryId?: string;
  timeoutMs?: number;
  useCache?: boolean;
  populateCache?: boolean;
}

/** The embedded Druid-compatible engine: ingestion tasks, segments and native queries over DuckDB. */
export class OlapEngine {
  readonly store: SegmentStore;
  readonly options: OlapEngineOptions;
  readonly tasks = new Map<string, TaskState>();
  private readonly running = new Map<string, DuckDBConnection>();
  private readonly cache = new Map<string, { generations: string; result: unknown[] }>();
  readonly supervisors = new Map<string, KafkaSupervisor>();
  private readonly ownedClients: LogClient[] = [];

  private constructor(store: SegmentStore, options: OlapEngineOptions) {
    this.store = store;
    this.options = options;
  }

  static async open(options: OlapEngineOptions): Promise<OlapEngine> {
    const store = await SegmentStore.open(options.dataDir, options.threads ? { threads: options.threads } : {});
    const engine = new OlapEngine(store, options);
    // Supervisors that were running keep running after a restart, from their committed offsets.
    const file = engine.supervisorsFile();
    if (fs.existsSync(file)) {
      const saved = JSON.parse(fs.readFileSync(file, 'utf8')) as { spec: unknown; suspended: boolean }[];
      for (const s of saved) {
        let sup: KafkaSupervisor;
        try {
          sup = engine.createSupervisor(s.spec);
        } catch {
          continue; // no client for it in this process: the spec stays saved
        }
        if (!s.suspended)
          await sup.start().catch((err: unknown) => {
            sup.stats.lastError = (err as Error).message;
          });
      }
    }
    return engine;
  }

  private supervisorsFile(): string {
    return path.join(this.options.dataDir, 'olap', 'supervisors.json');
  }

  private saveSupervisors(): void {
    const list = [...this.supervisors.values()].map((s) => ({ spec: s.rawSpec, suspended: s.state !== 'RUNNING' }));
    const file = this.supervisorsFile();
    fs.writeFileSync(`${file}.tmp`, JSON.stringify(list));
    fs.renameSync(`${file}.tmp`, file);
  }

  private createSupervisor(body: unknown): KafkaSupervisor {
    const spec = parseIngestionSpec(body);
    if (spec.type !== 'kafka')
      throw new TributaryError(
        'INVALID_ARGUMENT',
        `type: expected kafka for a supervisor, got ${JSON.stringify(spec.type)}`,
        { field: 'type' },
      );
    let client = this.options.logClient;
    const servers = spec.kafka?.consumerProperties['bootstrap.servers'];
    if (!client && typeof servers === 'string' && servers.trim() !== '') {
      // No embedded log given: read the topic from the Kafka cluster the spec names.
      client = remoteClient({ bootstrapBrokers: servers.split(',').map((x) => x.trim()), clientId: 'tributary-olap' });
      this.ownedClients.push(client);
    }
    if (!client)
      throw new TributaryError(
        'UNAVAILABLE',
        'spec.ioConfig.consumerProperties: expected bootstrap.servers (no embedded log client is configured)',
        { retriable: false, field: 'spec.ioConfig.consumerProperties' },
      );
    const sup = new KafkaSupervisor(this.store, client, spec, body, () => this.invalidate(spec.dataSchema.dataSource));
    this.supervisors.set(sup.id, sup);
    return sup;
  }

  /** Creates or replaces a Kafka supervisor and starts it (unless the spec says suspended). */
  async submitSupervisor(body: unknown): Promise<string> {
    const spec = parseIngestionSpec(body);
    const old = this.supervisors.get(spec.dataSchema.dataSource);
    if (old) {
      await old.stop();
      old.dispose();
      this.supervisors.delete(old.id);
    }
    const sup = this.createSupervisor(body);
    if ((body as { suspended?: unknown }).suspended !== true) await sup.start();
    this.saveSupervisors();
    return sup.id;
  }

  supervisor(id: string): KafkaSupervisor {
    const s = this.supervisors.get(id);
    if (!s) throw notFound(`supervisor ${id}`);
    return s;
  }

  async suspendSupervisor(id: string): Promise<void> {
    await this.supervisor(id).stop();
    this.saveSupervisors();
  }

  async resumeSupervisor(id: string): Promise<void> {
    await this.supervisor(id).start();
    this.saveSupervisors();
  }

  /** Forgets committed offsets: the supervisor restarts from useEarliestOffset's end of the topic. */
  async resetSupervisor(id: string): Promise<void> {
    const s = this.supervisor(id);
    const running = s.state === 'RUNNING';
    await s.stop(false);
    await this.store.serialize(async () => {
      const meta = this.store.datasources.get(id);
      if (meta?.streamOffsets) {
        delete meta.streamOffsets;
        const metaFile = path.join(this.store.dsDir(id), 'datasource.json');
        if (fs.existsSync(metaFile)) {
          const onDisk = JSON.parse(fs.readFileSync(metaFile, 'utf8'));
          delete onDisk.streamOffsets;
          fs.writeFileSync(`${metaFile}.tmp`, JSON.stringify(onDisk, null, 1));
          fs.renameSync(`${metaFile}.tmp`, metaFile);
        }
      }
    });
    if (running) await s.start();
  }

  async terminateSupervisor(id: string): Promise<void> {
    const s = this.supervisor(id);
    await s.stop();
    s.state = 'STOPPED';
    s.dispose();
    this.supervisors.delete(id);
    this.saveSupervisors();
  }

  async close(): Promise<void> {
    for (const s of this.supervisors.values()) {
      await s.stop().catch(() => undefined);
      s.dispose();
    }
    await Promise.allSettled([...this.tasks.values()].map((t) => t.done));
    await Promise.allSettled(this.ownedClients.map((c) => c.close()));
    this.store.instance.closeSync();
  }

  dataSources(): string[] {
    return [...this.store.datasources.keys()].sort();
  }

  /** Validates a task spec and starts it; returns the task id. Throws INVALID_ARGUMENT on a bad spec. */
  submitTask(body: unknown): string {
    if ((body as { type?: unknown } | null)?.type === 'compact')
      return this.submitCompaction(body as Record<string, unknown>);
    const spec = parseIngestionSpec(body);
    if (spec.type === 'kafka')
      throw new TributaryError('INVALID_ARGUMENT', 'task.type: kafka specs go to /druid/indexer/v1/supervisor');
    const id = (body as { id?: unknown }).id;
    const taskId =
      typeof id === 'string' && id !== ''
        ? id
        : `${spec.type}_${spec.dataSchema.dataSource}_${new Date().toISOString().replace(/[:.]/g, '_')}_${randomUUID().slice(0, 8)}`;
    if (this.tasks.has(taskId)) throw new TributaryError('ALREADY_EXISTS', `task ${taskId} already exists`);
    const started = Date.now();
    const task: TaskState = {
      id: taskId,
      type: spec.type,
      dataSource: spec.dataSchema.dataSource,
      createdTime: new Date(started).toISOString(),
      status: 'RUNNING',
      duration: -1,
      errorMsg: null,
      rowStats: { processed: 0, processedWithError: 0, thrownAway: 0, unparseable: 0 },
      segments: [],
      done: Promise.resolve(),
    };
    this.tasks.set(taskId, task);
    task.done = this.ingest(spec).then(
      (r) => {
        task.status = 'SUCCESS';
        task.rowStats = r.rowStats;
        task.segments = r.segments;
        task.duration = Date.now() - started;
      },
      (err: unknown) => {
        task.status = 'FAILED';
        task.errorMsg = (err as Error).message;
        task.duration = Date.now() - started;
      },
    );
    return taskId;
  }

  private submitCompaction(body: Record<string, unknown>): string {
    const ds = body.dataSource;
    if (typeof ds !== 'string' || !this.store.datasources.has(ds))
      throw new TributaryError('INVALID_ARGUMENT', 'dataSource: expected an existing datasource', {
        field: 'dataSource',
      });
    const io = body.ioConfig as { inputSpec?: { interval?: unknown } } | undefined;
    const ivText = body.interval ?? io?.inputSpec?.interval;
    const interval = ivText === undefined ? undefined : parseInterval(String(ivText), 'interval');
    const max = (body.tuningConfig as { maxRowsPerSegment?: unknown } | undefined)?.maxRowsPerSegment;
    const taskId = typeof body.id === 'string' ? body.id : `compact_${ds}_${randomUUID().slice(0, 8)}`;
    const started = Date.now();
    const task: TaskState = {
      id: taskId,
      type: 'compact',
      dataSource: ds,
      createdTime: new Date(started).toISOString(),
      status: 'RUNNING',
      duration: -1,
      errorMsg: null,
      rowStats: { processed: 0, processedWithError: 0, thrownAway: 0, unparseable: 0 },
      segments: [],
      done: Promise.resolve(),
    };
    this.tasks.set(taskId, task);
    task.done = compact(this.store, ds, interval, typeof max === 'number' && max > 0 ? max : 5_000_000).then(
      () => {
        this.invalidate(ds);
        task.status = 'SUCCESS';
        task.duration = Date.now() - started;
      },
      (err: unknown) => {
        task.status = 'FAILED';
        task.errorMsg = (err as Error).message;
        task.duration = Date.now() - started;
      },
    );
    return taskId;
  }

  private rulesFile(): string {
    return path.join(this.options.dataDir, 'olap', 'rules.json');
  }

  /** Retention rules per datasource (Druid coordinator rules), persisted; `_default` applies to the rest. */
  rules(): Record<string, RetentionRule[]> {
    const f = this.rulesFile();
    return fs.existsSync(f) ? (JSON.parse(fs.readFileSync(f, 'utf8')) as Record<string, RetentionRule[]>) : {};
  }

  /** Sets a datasource's retention rules and applies them now; returns the dropped segment ids. */
  async setRules(dataSource: string, body: unknown): Promise<string[]> {
    const parsed = parseRules(body);
    const all = { ...this.rules(), [dataSource]: parsed };
    fs.writeFileSync(`${this.rulesFile()}.tmp`, JSON.stringify(all));
    fs.renameSync(`${this.rulesFile()}.tmp`, this.rulesFile());
    return this.applyRetention();
  }

  /** Drops the segments that retention rules do not keep (all datasources). */
  async applyRetention(now = Date.now()): Promise<string[]> {
    const all = this.rules();
    const dropped: string[] = [];
    for (const ds of this.dataSources()) {
      const rules = all[ds] ?? all._default;
      if (!rules?.length) continue;
      const d = await applyRetention(this.store, ds, rules, now);
      if (d.length) this.invalidate(ds);
      dropped.push(...d);
    }
    return dropped;
  }

  /** Runs a batch ingestion spec to completion. */
  async ingest(specOrBody: IngestionSpec | unknown): Promise<{ rowStats: RowStats; segments: SegmentInfo[] }> {
    let spec =
      specOrBody && typeof specOrBody === 'object' && 'dataSchema' in specOrBody && 'inputFormat' in specOrBody
        ? (specOrBody as IngestionSpec)
        : parseIngestionSpec(specOrBody);
    const src = spec.inputSource;
    if (!src) throw new TributaryError('INVALID_ARGUMENT', 'spec.ioConfig.inputSource: expected an input source');
    let tmp: string | undefined;
    let files: string[];
    if (src.type === 'iceberg') {
      if (!this.options.catalog)
        throw new TributaryError(
          'UNAVAILABLE',
          'spec.ioConfig.inputSource: an iceberg source needs a lake catalog; none is configured',
          {
            retriable: false,
          },
        );
      const table = await loadTable(this.options.catalog, { namespace: src.namespace.split('.'), name: src.tableName });
      const rows = await table.rows();
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'olap-iceberg-'));
      const f = path.join(tmp, 'data.json');
      const replacer = (_k: string, v: unknown) =>
        typeof v === 'bigint'
          ? v >= -(2n ** 53n) && v <= 2n ** 53n
            ? Number(v)
            : v.toString()
          : v instanceof Uint8Array
            ? Buffer.from(v).toString('base64')
            : v;
      fs.writeFileSync(f, rows.map((r) => JSON.stringify(r, replacer)).join('\n'));
      files = [f];
      spec = { ...spec, inputFormat: { type: 'json' } };
    } else if (src.type === 'inline') {
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'olap-inline-'));
      const ext = spec.inputFormat.type === 'parquet' ? 'parquet' : spec.inputFormat.type === 'json' ? 'json' : 'csv';
      const f = path.join(tmp, `data.${ext}`);
      fs.writeFileSync(f, src.data);
      files = [f];
    } else files = resolveLocalFiles(src, this.options.baseDirRoot);
    try {
      return await this.store.serialize(() =>
        this.store.withConn(async (c) => {
          const ds = spec.dataSchema.dataSource;
          const existing = this.store.datasources.get(ds)?.columns;
          let batch = await buildBatch(c, spec, readerSql(files, spec.inputFormat), existing);
          if (spec.inputFormat.type === 'json') {
            const st = batch.stats;
            if (st.unparseable > 0 || countJsonLines(files) !== st.processed + st.thrownAway + st.unparseable) {
              // The fast reader met lines that are not JSON (NULL rows, and it may swallow the next good line):
              // parse line by line as Druid does, count the bad lines as unparseable, re-read the good ones.
              const clean = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'olap-json-')), 'clean.json');
              try {
                const bad = cleanJsonLines(files, clean);
                batch = await buildBatch(c, spec, readerSql([clean], spec.inputFormat), existing);
                batch.stats.unparseable += bad;
              } finally {
                fs.rmSync(path.dirname(clean), { recursive: true, force: true });
              }
            }
          }
          const segments = await this.store.publish(c, ds, batch, {
            append: spec.appendToExisting,
            maxRowsPerSegment: spec.maxRowsPerSegment,
            rollup: spec.dataSchema.rollup,
            queryGranularity: spec.dataSchema.queryGranularity,
          });
          this.invalidate(ds);
          publish(ingestChannel, () => ({
            event: 'end',
            dataSource: ds,
            rowStats: batch.stats,
            segments: segments.map((x) => x.id),
          }));
          return { rowStats: batch.stats, segments };
        }),
      );
    } catch (err) {
      if (isTributaryError(err)) throw err;
      throw new TributaryError('INVALID_ARGUMENT', `ingestion failed: ${(err as Error).message}`, { cause: err });
    } finally {
      if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    }
  }

  task(id: string): TaskState {
    const t = this.tasks.get(id);
    if (!t) throw notFound(`task ${id}`);
    return t;
  }

  invalidate(ds: string): void {
    for (const [k, v] of this.cache) if (v.generations.includes(JSON.stringify(ds))) this.cache.delete(k);
  }

  private generations(names: string[]): string {
    return JSON.stringify(names.map((n) => [n, this.store.datasources.get(n)?.generation ?? 0]));
  }

  /** Runs a native query. Honors queryId (for cancel), timeout, useCache and populateCache. */
  async query(query: unknown, options: QueryOptions = {}): Promise<unknown[]> {
    const ctx = ((query as { context?: unknown })?.context ?? {}) as Record<string, unknown>;
    const queryId = options.queryId ?? (typeof ctx.queryId === 'string' ? ctx.queryId : randomUUID());
    const timeoutMs = options.timeoutMs ?? (typeof ctx.timeout === 'number' ? ctx.timeout : undefined);
    const useCache = options.useCache ?? ctx.useCache !== false;
    const populateCache = options.populateCache ?? ctx.populateCache !== false;
    const names = dataSourcesOf(query);
    const { context: _c, ...rest } = (query ?? {}) as Record<string, unknown>;
    const key = JSON.stringify(rest);
    const gens = this.generations(names);
    if (useCache) {
      const hit = this.cache.get(key);
      if (hit && hit.generations === gens) return hit.result;
    }
    const started = performance.now();
    let result: unknown[];
    try {
      result = await this.withQueryConnection(queryId, timeoutMs, async (conn) => {
        const rt = { store: this.store, conn, cleanup: [] as string[] };
        try {
          return await runNative(rt, query);
        } finally {
          for (const sql of rt.cleanup) await conn.run(sql).catch(() => undefined);
        }
      });
    } catch (err) {
      publish(queryChannel, () => ({
        event: 'error',
        kind: 'native',
        queryId,
        dataSources: names,
        error: (err as Error).message,
      }));
      throw err;
    }
    publish(queryChannel, () => ({
      event: 'end',
      kind: 'native',
      queryId,
      dataSources: names,
      rows: result.length,
      durationMs: performance.now() - started,
    }));
    if (populateCache && this.generations(names) === gens) {
      this.cache.set(key, { generations: gens, result });
      const max = this.options.cacheEntries ?? 1000;
      while (this.cache.size > max) this.cache.delete(this.cache.keys().next().value!);
    }
    return result;
  }

  /** Runs fn on a fresh connection registered under queryId, interrupting it on timeout or cancel. */
  async withQueryConnection<T>(
    queryId: string,
    timeoutMs: number | undefined,
    fn: (c: DuckDBConnection) => Promise<T>,
  ): Promise<T> {
    if (this.running.has(queryId)) throw new TributaryError('ALREADY_EXISTS', `a query with id ${queryId} is running`);
    const conn = await this.store.connect();
    this.running.set(queryId, conn);
    let timedOut = false;
    const timer =
      timeoutMs !== undefined && timeoutMs > 0
        ? setTimeout(() => {
            timedOut = true;
            conn.interrupt();
          }, timeoutMs)
        : undefined;
    try {
      const result = await fn(conn);
      // A cancel that landed between statements (nothing to interrupt) still cancels.
      if (!this.running.has(queryId)) throw new Error('Query interrupted');
      return result;
    } catch (err) {
      if (timedOut)
        throw new TributaryError('TIMEOUT', `Query [${queryId}] timed out after ${timeoutMs} ms`, { cause: err });
      if (!this.running.has(queryId) || (err as Error).message === 'Query interrupted')
        throw new TributaryError('CONFLICT', `Query [${queryId}] was cancelled`, { cause: err, retriable: false });
      throw err;
    } finally {
      if (timer) clearTimeout(timer);
      this.running.delete(queryId);
      conn.closeSync();
    }
  }

  /** Runs a Druid SQL query; rows are arrays in column order (longs as bigint, times as ISO strings). */
  async sql(
    query: string,
    options: QueryOptions & { parameters?: unknown[] } = {},
  ): Promise<{ columns: { name: string; type: string; sqlType: string }[]; rows: unknown[][] }> {
    const queryId = options.queryId ?? randomUUID();
    const params = (options.parameters ?? []).map((p, i) => {
      const v = p && typeof p === 'object' && 'value' in p ? (p as { value: unknown }).value : p;
      if (v !== null && !['string', 'number', 'boolean'].includes(typeof v))
        throw new TributaryError(
          'INVALID_ARGUMENT',
          `parameters[${i}].value: expected a string, number, boolean or null`,
        );
      return v as string | number | boolean | null;
    });
    return this.withQueryConnection(queryId, options.timeoutMs, async (conn) => {
      const translated = await translateSql(conn, this.store, query);
      if (!this.running.has(queryId)) throw new Error('Query interrupted');
      let reader: Awaited<ReturnType<DuckDBConnection['runAndReadAll']>>;
      try {
        reader = await conn.runAndReadAll(translated, params.length ? params : undefined);
      } catch (err) {
        const msg = (err as Error).message;
        if (/interrupt/i.test(msg)) throw err;
        throw new TributaryError('INVALID_ARGUMENT', `query: ${msg.split('\n')[0]}`, { cause: err, field: 'query' });
      }
      const names = reader.columnNames();
      const types = reader.columnTypes().map((t) => String(t));
      const columns = names.map((name, i) => sqlColumnType(name, types[i]!));
      const rows = reader.getRowsJS().map((r) => r.map((v, i) => sqlValue(v, types[i]!)));
      return { columns, rows };
    });
  }

  /** Cancels a running query; false when no such query runs. */
  cancel(queryId: string): boolean {
    const c = this.running.get(queryId);
    if (!c) return false;
    this.running.delete(queryId);
    c.interrupt();
    return true;
  }
}

function sqlColumnType(name: string, duck: string): { name: string; type: string; sqlType: string } {
  if (/^(BIGINT|INTEGER|HUGEINT|SMALLINT|TINYINT|UBIGINT|UINTEGER|USMALLINT|UTINYINT)$/.test(duck))
    return { name, type: 'LONG', sqlType: 'BIGINT' };
  if (/^(DOUBLE|DECIMAL.*)$/.test(duck)) return { name, type: 'DOUBLE', sqlType: 'DOUBLE' };
  if (duck === 'FLOAT') return { name, type: 'FLOAT', sqlType: 'FLOAT' };
  if (duck.startsWith('TIMESTAMP')) return { name, type: 'LONG', sqlType: 'TIMESTAMP' };
  if (duck === 'DATE') return { name, type: 'LONG', sqlType: 'DATE' };
  if (duck === 'BOOLEAN') return { name, type: 'LONG', sqlType: 'BOOLEAN' };
  // Dictionary-encoded string dimensions are DuckDB ENUMs.
  if (duck === 'VARCHAR' || duck.startsWith('ENUM(')) return { name, type: 'STRING', sqlType: 'VARCHAR' };
  if (duck.endsWith('[]')) return { name, type: 'ARRAY', sqlType: 'ARRAY' };
  return { name, type: 'COMPLEX', sqlType: 'OTHER' };
}

function sqlValue(v: unknown, duck: string): unknown {
  if (v === null || v === undefined) return null;
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? null : v.toISOString();
  if (/^(BIGINT|INTEGER|HUGEINT|SMALLINT|TINYINT|UBIGINT|UINTEGER|USMALLINT|UTINYINT)$/.test(duck))
    return typeof v === 'bigint' ? v : BigInt(v as number);
  if (/^(DOUBLE|FLOAT|DECIMAL.*)$/.test(duck)) return Number(v);
  if (Array.isArray(v))
    return v.map((x) => (typeof x === 'bigint' && x > BigInt(Number.MAX_SAFE_INTEGER) ? x.toString() : x));
  return v;
}
