import { createHash, randomUUID } from 'node:crypto';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { channel as diagChannel, isTributaryError, publish, TributaryError } from '../core/index.ts';
import type { Catalog } from '../lake/index.ts';
import { SqliteCatalog } from '../lake/index.ts';
import type { LogClient } from '../log/index.ts';
import type { OlapEngine } from '../olap/index.ts';
import { type Column, describe, loadRows, q, queryRows, scalar } from './duck.ts';
import { GovernanceCatalog } from './governance.ts';
import { type Connectors, datasetId, ingest, writeTarget } from './io.ts';
import { type DatasetInfo, LineageGraph, type LineageSink, runEvent } from './lineage.ts';
import { type QualityReport, runChecks, scoreOf } from './quality.ts';
import { type ColumnLineage, compileRules, joinSql } from './rules.ts';
import {
  type BatchFunction,
  type CallFunction,
  definePipeline,
  dependencies,
  type PipelineInput,
  type PipelineSpec,
  retrySchema,
  type Stage,
  substituteParams,
  topoOrder,
} from './spec.ts';
import { type RunRecord, RunStore, type StagePolicy, type StageRecord, type StageStatus } from './store.ts';

export interface PipelineRunnerOptions {
  /** Run history and the governance catalog live in `<dataDir>/pipeline`; the lake in `<dataDir>/lake`. */
  dataDir: string;
  /** The lake catalog (default: the SQLite catalog in `<dataDir>/lake`, opened when a stage needs it). */
  catalog?: Catalog;
  log?: LogClient;
  olap?: OlapEngine;
  /** Custom functions YAML pipelines refer to by name (batch transforms and async enrichment calls). */
  functions?: Record<string, BatchFunction | CallFunction>;
  /** Where lineage events go besides the run history (NDJSON file, HTTP endpoint, graph). */
  lineage?: LineageSink[];
  /** DuckDB threads per run. */
  threads?: number;
  /** Random source for retry jitter (tests pass a fixed one). */
  random?: () => number;
  /** Sleep used between retries (tests pass a recording one). */
  sleep?: (ms: number) => Promise<void>;
}

export interface RunOptions {
  params?: Record<string, string | number | boolean>;
  partition?: string;
  /** Start a new run even when one with the same parameters succeeded. */
  force?: boolean;
  /** Where relative file paths resolve (default: the process cwd). */
  baseDir?: string;
  /** Extra lineage sinks for this run. */
  lineage?: LineageSink[];
}

export interface StageOutcome extends StageRecord {
  durationMs: number | null;
}

export interface RunResult {
  run: RunRecord;
  stages: StageOutcome[];
  quality: {
    score: number | null;
    dimensions: Record<string, number>;
    datasets: { stageId: string; dataset: string; score: number }[];
  };
  /** The run already succeeded with these parameters; nothing was executed. */
  reused: boolean;
  /** The run resumed a failed run (only its failed and not-run stages executed). */
  resumed: boolean;
  lineageErrors: string[];
}

export interface BackfillOptions extends Omit<RunOptions, 'partition' | 'force'> {
  from?: string;
  to?: string;
  step?: 'day' | 'hour' | 'month';
  partitions?: string[];
  concurrency?: number;
}

export interface BackfillResult {
  partitions: { partition: string; runId: string; status: string; action: 'skipped' | 'resumed' | 'created' }[];
}

const channels = {
  run: diagChannel('pipeline', 'run'),
  stage: diagChannel('pipeline', 'stage'),
};
const channel = {
  publish(m: { type: string } & Record<string, unknown>): void {
    publish(m.type.startsWith('run') ? channels.run : channels.stage, () => m);
  },
};

/** A stage failure the stage's retries must not repeat (bad input, failed error checks). */
class QualityGateError extends TributaryError {
  constructor(message: string) {
    super('INVALID_ARGUMENT', message, { retriable: false });
  }
}

function stableJson(v: unknown): string {
  return JSON.stringify(v, (_k, x) => {
    if (typeof x === 'function') return `<function ${x.name || 'anonymous'}>`;
    if (x && typeof x === 'object' && !Array.isArray(x))
      return Object.fromEntries(
        Object.keys(x)
          .sort()
          .map((k) => [k, (x as Record<string, unknown>)[k]]),
      );
    return x;
  });
}

/** The spec as stored on a run: functions become their registered names. */
function storable(spec: PipelineSpec): unknown {
  return JSON.parse(JSON.stringify(spec, (_k, x) => (typeof x === 'function' ? x.name || 'anonymous' : x)));
}

export function backoffDelay(p: StagePolicy['retry'], attempt: number, random: () => number = Math.random): number {
  const base = Math.min(p.maxDelayMs, p.initialDelayMs * p.multiplier ** (attempt - 1));
  return Math.max(0, base * (1 + p.jitter * (random() * 2 - 1)));
}

/** Partition names from..to inclusive: days `YYYY-MM-DD`, hours `YYYY-MM-DDTHH`, months `YYYY-MM`. */
export function partitionRange(from: string, to: string, step: 'day' | 'hour' | 'month' = 'day'): string[] {
  const parse = (s: string, field: string): Date => {
    const d = new Date(
      step === 'hour' && /T\d\d$/.test(s)
        ? `${s}:00:00Z`
        : step === 'month' && /^\d{4}-\d\d$/.test(s)
          ? `${s}-01T00:00:00Z`
          : `${s.slice(0, 10)}T00:00:00Z`,
    );
    if (Number.isNaN(d.getTime()))
      throw new TributaryError(
        'INVALID_ARGUMENT',
        `${field}: expected a date (YYYY-MM-DD${step === 'hour' ? '[THH]' : ''}), got ${JSON.stringify(s)}`,
        { field },
      );
    return d;
  };
  const a = parse(from, 'from');
  const b = parse(to, 'to');
  if (a > b)
    throw new TributaryError('INVALID_ARGUMENT', `from: expected a date not after to (${to}), got ${from}`, {
      field: 'from',
    });
  const out: string[] = [];
  for (const d = new Date(a); d <= b && out.length < 100_000; ) {
    const iso = d.toISOString();
    out.push(step === 'hour' ? iso.slice(0, 13) : step === 'month' ? iso.slice(0, 7) : iso.slice(0, 10));
    if (step === 'hour') d.setUTCHours(d.getUTCHours() + 1);
    else if (step === 'month') d.setUTCMonth(d.getUTCMonth() + 1);
    else d.setUTCDate(d.getUTCDate() + 1);
  }
  return out;
}

interface Relation {
  columns: Column[];
  lineage: ColumnLineage;
  /** The dataset a relation stands for in lineage and quality (ingest source, output target). */
  dataset?: string;
}

/** Runs pipelines: DAG scheduling, retries, failure policies, resume, idempotence, backfills, lineage. */
export class PipelineRunner {
  readonly store: RunStore;
  readonly governance: GovernanceCatalog;
  readonly options: PipelineRunnerOptions;
  private ownCatalog: SqliteCatalog | undefined;
  private readonly inFlight = new Map<string, { runId: string; done: Promise<RunResult> }>();

  constructor(options: PipelineRunnerOptions) {
    this.options = options;
    const dir = path.join(path.resolve(options.dataDir), 'pipeline');
    this.store = new RunStore(path.join(dir, 'runs.db'));
    this.governance = new GovernanceCatalog(path.join(dir, 'governance.db'));
  }

  async close(): Promise<void> {
    this.store.close();
    this.governance.close();
    await this.ownCatalog?.close();
  }

  private get catalog(): Catalog {
    if (this.options.catalog) return this.options.catalog;
    this.ownCatalog ??= new SqliteCatalog({ warehouse: path.join(path.resolve(this.options.dataDir), 'lake') });
    return this.ownCatalog;
  }

  /** The lineage graph of every run recorded in this data directory. */
  lineageGraph(): LineageGraph {
    const g = new LineageGraph();
    for (const e of this.store.lineageEvents()) g.add(e as Record<string, unknown>);
    return g;
  }

  private resolve(
    input: PipelineSpec | PipelineInput,
    opts: RunOptions,
  ): { spec: PipelineSpec; params: Record<string, string>; key: string } {
    const raw = definePipeline(input);
    const params: Record<string, string> = {};
    for (const [k, v] of Object.entries(raw.params)) params[k] = String(v);
    for (const [k, v] of Object.entries(opts.params ?? {})) params[k] = String(v);
    if (opts.partition !== undefined) params.partition = opts.partition;
    const spec = definePipeline(substituteParams(raw, params));
    const key = createHash('sha256')
      .update(stableJson({ spec: raw, params, partition: opts.partition ?? null }))
      .digest('hex');
    return { spec, params, key };
  }

  private policies(spec: PipelineSpec): Record<string, StagePolicy> {
    const out: Record<string, StagePolicy> = {};
    for (const s of spec.stages) {
      out[s.id] = {
        timeoutMs: s.timeoutMs ?? spec.defaults.timeoutMs ?? null,
        retry: retrySchema.parse({ ...spec.defaults.retry, ...s.retry }),
        onFailure: s.onFailure ?? spec.defaults.onFailure ?? 'fail',
      };
    }
    return out;
  }

  /**
   * Runs a pipeline for a set of parameters. Idempotent: when a run with the same spec, parameters and
   * partition succeeded, it is returned without executing; when it failed, it is resumed.
   */
  async run(input: PipelineSpec | PipelineInput, opts: RunOptions = {}): Promise<RunResult> {
    return this.start(input, opts).done;
  }

  /**
   * Starts a run (or finds the one these parameters already have) and returns its id at once; `done`
   * settles when it ends. A second start of the same parameters while one is in flight joins it.
   * Spec, PII policy and catalog errors throw here, before any run exists.
   */
  start(input: PipelineSpec | PipelineInput, opts: RunOptions = {}): { runId: string; done: Promise<RunResult> } {
    const { spec, params, key } = this.resolve(input, opts);
    this.registerCatalog(spec, opts.baseDir ?? process.cwd());
    this.checkPolicies(spec, opts.baseDir ?? process.cwd());
    const inFlight = opts.force ? undefined : this.inFlight.get(key);
    if (inFlight) return inFlight;
    const prev = opts.force ? undefined : this.store.latestByKey(key);
    if (prev?.status === 'succeeded')
      return { runId: prev.id, done: Promise.resolve({ ...this.result(prev.id), reused: true }) };
    let run = prev;
    if (!run) {
      run = this.store.createRun({
        id: randomUUID(),
        pipeline: spec.name,
        runKey: key,
        params,
        partition: opts.partition ?? null,
        spec: storable(spec),
        policy: this.policies(spec),
        createdAt: new Date().toISOString(),
      });
      for (const s of spec.stages)
        this.store.putStage({
          runId: run.id,
          stageId: s.id,
          type: s.type,
          status: 'pending',
          attempts: 0,
          startedAt: null,
          endedAt: null,
          rows: null,
          error: null,
          details: null,
        });
    }
    const done = this.execute(run, spec, opts, prev !== undefined).finally(() => {
      if (this.inFlight.get(key)?.runId === run.id) this.inFlight.delete(key);
    });
    const handle = { runId: run.id, done };
    this.inFlight.set(key, handle);
    return handle;
  }

  /**
   * Resumes a run from its failed, skipped and not-run stages, under the policy stored on the run.
   * Functions are looked up by name in the runner's registry unless the original spec is given.
   */
  async resume(runId: string, opts: RunOptions & { spec?: PipelineSpec | PipelineInput } = {}): Promise<RunResult> {
    const run = this.store.getRun(runId);
    if (run.status === 'succeeded') return { ...this.result(run.id), reused: true };
    const spec = opts.spec
      ? this.resolve(opts.spec, { ...opts, params: run.params, ...(run.partition ? { partition: run.partition } : {}) })
          .spec
      : definePipeline(run.spec);
    return this.execute(run, spec, opts, true);
  }

  /** One run per partition; partitions that succeeded are skipped, failed ones resumed, missing ones created. */
  async backfill(input: PipelineSpec | PipelineInput, opts: BackfillOptions): Promise<BackfillResult> {
    const partitions =
      opts.partitions ??
      (opts.from && opts.to
        ? partitionRange(opts.from, opts.to, opts.step)
        : (() => {
            throw new TributaryError('INVALID_ARGUMENT', 'backfill: expected partitions or from and to', {
              field: 'from',
            });
          })());
    const out: BackfillResult['partitions'] = [];
    const queue = [...partitions];
    const worker = async (): Promise<void> => {
      for (let p = queue.shift(); p !== undefined; p = queue.shift()) {
        const { key } = this.resolve(input, { ...opts, partition: p });
        const prev = this.store.latestByKey(key);
        const action = prev?.status === 'succeeded' ? 'skipped' : prev ? 'resumed' : 'created';
        const r = await this.run(input, { ...opts, partition: p });
        out.push({ partition: p, runId: r.run.id, status: r.run.status, action });
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? 1) }, worker));
    out.sort((a, b) => (a.partition < b.partition ? -1 : 1));
    return { partitions: out };
  }

  result(runId: string): Omit<RunResult, 'reused' | 'resumed'> & { reused: false; resumed: false } {
    const run = this.store.getRun(runId);
    const stages = this.store.stages(runId).map((s) => ({
      ...s,
      durationMs: s.startedAt && s.endedAt ? Date.parse(s.endedAt) - Date.parse(s.startedAt) : null,
    }));
    const q = this.store.quality(runId);
    const all = q.flatMap((x) => (x.report as QualityReport).results);
    const sc = all.length ? scoreOf(all) : null;
    return {
      run,
      stages,
      quality: {
        score: sc?.score ?? null,
        dimensions: (sc?.dimensions ?? {}) as Record<string, number>,
        datasets: q.map((x) => ({ stageId: x.stageId, dataset: x.dataset, score: x.score })),
      },
      reused: false,
      resumed: false,
      lineageErrors: [],
    };
  }

  // ---------- governance ----------

  /** Records the spec's catalog entries (file datasets resolve against baseDir). */
  registerCatalog(spec: PipelineSpec, baseDir: string): void {
    for (const [id, entry] of Object.entries(spec.catalog)) {
      const resolved = id.startsWith('file:') ? `file:${path.resolve(baseDir, id.slice(5))}` : id;
      this.governance.upsert(resolved, entry);
    }
  }

  /** Imports functions the spec names as `module.ts#export` (relative to baseDir). */
  private async importFunctions(
    spec: PipelineSpec,
    baseDir: string,
  ): Promise<Record<string, BatchFunction | CallFunction>> {
    const refs = new Set<string>();
    for (const s of spec.stages) {
      if (s.type === 'transform')
        for (const r of s.rules) if ('fn' in r && typeof r.fn === 'string' && r.fn.includes('#')) refs.add(r.fn);
      if (s.type === 'enrich' && s.call && typeof s.call.fn === 'string' && s.call.fn.includes('#'))
        refs.add(s.call.fn);
    }
    const out: Record<string, BatchFunction | CallFunction> = {};
    for (const ref of refs) {
      const [file, name] = ref.split('#') as [string, string];
      const mod = (await import(pathToFileURL(path.resolve(baseDir, file)).href)) as Record<string, unknown>;
      const fn = mod[name];
      if (typeof fn !== 'function')
        throw new TributaryError(
          'INVALID_ARGUMENT',
          `fn: ${file} exports no function "${name}" (exports: ${Object.keys(mod).join(', ')})`,
          { field: 'fn', retriable: false },
        );
      out[ref] = fn as BatchFunction;
    }
    return out;
  }

  /** PII columns (by name) reaching each stage's output, from the catalog's PII columns of its sources. */
  piiReach(spec: PipelineSpec, baseDir: string): Map<string, Set<string>> {
    const out = new Map<string, Set<string>>();
    const refs = (expr: string, set: Set<string>): boolean =>
      [...set].some((c) =>
        new RegExp(`(^|[^A-Za-z0-9_])"?${c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"?($|[^A-Za-z0-9_])`).test(expr),
      );
    for (const s of topoOrder(spec)) {
      let set: Set<string>;
      if (s.type === 'ingest') set = new Set(this.governance.piiColumns(datasetId(s.source, baseDir, s.id)));
      else {
        set = new Set(out.get(s.inputs[0]!) ?? []);
        if (s.type === 'transform') {
          for (const extra of s.inputs.slice(1)) for (const c of out.get(extra) ?? []) set.add(c);
          for (const r of s.rules) {
            if ('map' in r) {
              const next = new Set<string>();
              if (r.keep) for (const c of set) if (!(c in r.map)) next.add(c);
              for (const [k, e] of Object.entries(r.map)) if (refs(e, set)) next.add(k);
              set = next;
            } else if ('aggregate' in r) {
              const next = new Set(r.aggregate.groupBy.filter((g) => set.has(g)));
              for (const [k, e] of Object.entries(r.aggregate.measures)) if (refs(e, set)) next.add(k);
              set = next;
            } else if ('join' in r) {
              for (const c of out.get(r.join.with) ?? []) if (!r.join.columns || r.join.columns.includes(c)) set.add(c);
            } else if ('union' in r) {
              for (const u of r.union) for (const c of out.get(u) ?? []) set.add(c);
            } else if ('window' in r) {
              for (const [k, e] of Object.entries(r.window.columns)) if (refs(e, set)) set.add(k);
            }
          }
        } else if (s.type === 'enrich' && s.lookup) {
          for (const c of out.get(s.lookup.from) ?? [])
            if (!s.lookup.columns || s.lookup.columns.includes(c)) set.add(c);
        }
      }
      out.set(s.id, set);
    }
    return out;
  }

  /** Fails before the run when an output would write PII columns to a dataset not allowed to hold them. */
  checkPolicies(spec: PipelineSpec, baseDir: string): void {
    const reach = this.piiReach(spec, baseDir);
    for (const s of spec.stages) {
      if (s.type !== 'output' || s.pii !== 'fail') continue;
      const target = datasetId(s.target, baseDir, s.id);
      if (this.governance.find(target)?.piiAllowed) continue;
      const pii = [...(reach.get(s.inputs[0]!) ?? [])];
      if (pii.length)
        throw new TributaryError(
          'PERMISSION_DENIED',
          `pipeline ${spec.name}: stage "${s.id}" would write PII column(s) ${pii.join(', ')} to ${target}, which may not hold PII (set pii: mask or drop on the stage, or allow PII on the dataset)`,
          { field: `stages.${s.id}.pii`, retriable: false },
        );
    }
  }

  // ---------- execution ----------

  /** Runs `executeRun`; a failure outside any stage (e.g. a function module that fails to load) fails the run. */
  private async execute(run: RunRecord, spec: PipelineSpec, opts: RunOptions, resumed: boolean): Promise<RunResult> {
    try {
      return await this.executeRun(run, spec, opts, resumed);
    } catch (err) {
      this.store.finishRun(run.id, 'failed', (err as Error).message, null);
      throw err;
    }
  }

  private async executeRun(run: RunRecord, spec: PipelineSpec, opts: RunOptions, resumed: boolean): Promise<RunResult> {
    const baseDir = path.resolve(opts.baseDir ?? process.cwd());
    const policy = run.policy;
    const conn: Connectors = { catalog: undefined, log: this.options.log, olap: this.options.olap, baseDir };
    Object.defineProperty(conn, 'catalog', { get: () => this.catalog });
    const sinks = [...(this.options.lineage ?? []), ...(opts.lineage ?? [])];
    const lineageErrors: string[] = [];
    const emit = async (event: Record<string, unknown>): Promise<void> => {
      this.store.addLineageEvent(run.id, String(event.eventType), event);
      for (const s of sinks)
        await s.emit(event).catch((err: Error) => {
          lineageErrors.push(err.message);
        });
    };
    const prevStages = new Map(this.store.stages(run.id).map((s) => [s.stageId, s]));
    const byId = new Map(spec.stages.map((s) => [s.id, s]));
    const dependents = new Map<string, string[]>();
    for (const s of spec.stages)
      for (const d of dependencies(s)) dependents.set(d, [...(dependents.get(d) ?? []), s.id]);

    // on resume, succeeded stages stay; the ones a pending stage reads are recomputed without side effects
    const status = new Map<string, StageStatus>();
    for (const s of spec.stages)
      status.set(s.id, prevStages.get(s.id)?.status === 'succeeded' ? 'succeeded' : 'pending');
    const recompute = new Set<string>();
    const markNeeded = (id: string): void => {
      for (const d of dependencies(byId.get(id)!))
        if (status.get(d) === 'succeeded' && !recompute.has(d)) {
          recompute.add(d);
          markNeeded(d);
        }
    };
    for (const s of spec.stages) if (status.get(s.id) === 'pending') markNeeded(s.id);

    const functions = { ...(this.options.functions ?? {}), ...(await this.importFunctions(spec, baseDir)) };
    this.store.startAttempt(run.id);
    const inputs = spec.stages.filter((s) => s.type === 'ingest').map((s) => datasetId(s.source, baseDir, s.id));
    const outputsDecl = spec.stages.filter((s) => s.type === 'output').map((s) => datasetId(s.target, baseDir, s.id));
    await emit(
      runEvent({
        eventType: 'START',
        runId: run.id,
        job: spec.name,
        inputs: inputs.map((id) => ({ id, columns: [] })),
        outputs: outputsDecl.map((id) => ({ id, columns: [] })),
        ...(run.partition ? { nominalTime: nominal(run.partition) } : {}),
      }),
    );
    channel.publish({ type: 'run-start', runId: run.id, pipeline: spec.name });

    const instance = await DuckDBInstance.create(
      ':memory:',
      this.options.threads ? { threads: String(this.options.threads) } : {},
    );
    const relations = new Map<string, Relation>();
    const reports = new Map<string, QualityReport>();
    const outputsDone: DatasetInfo[] = [];
    const inputInfo = new Map<string, DatasetInfo>();
    let halted = false;
    let runError: Error | undefined;

    const runStage = async (
      s: Stage,
      c: DuckDBConnection,
      sideEffects: boolean,
      signal: AbortSignal,
    ): Promise<{ rows: number | null; details: unknown }> => {
      const rel = q(s.id);
      const field = `stages.${s.id}`;
      const fanOut = (dependents.get(s.id) ?? []).length;
      const kind = fanOut === 1 ? 'VIEW' : 'TABLE';
      const lineageOf = (id: string): ColumnLineage => relations.get(id)?.lineage ?? new Map();
      switch (s.type) {
        case 'ingest': {
          await ingest(c, conn, rel, s.source, `${field}.source`);
          const columns = await describe(c, rel);
          const ds = datasetId(s.source, baseDir, s.id);
          const lineage: ColumnLineage = new Map(
            columns.map((col) => [col.name, [{ dataset: ds, field: col.name, type: 'DIRECT', subtype: 'IDENTITY' }]]),
          );
          relations.set(s.id, { columns, lineage, dataset: ds });
          const rows = Number(await scalar(c, `SELECT count(*) FROM ${rel}`));
          inputInfo.set(s.id, { id: ds, columns });
          if (sideEffects) this.governance.recordSchema(ds, columns, run.id);
          return { rows, details: { dataset: ds, columns } };
        }
        case 'transform': {
          const compiled = await compileRules(
            {
              c,
              lineageOf,
              functions: functions as Record<string, BatchFunction>,
              scratch: (n) => q(`__${s.id}_${n}`),
              field,
            },
            s.inputs[0]!,
            s.rules,
            relations.get(s.inputs[0]!)?.columns,
          );
          await c.run(`CREATE OR REPLACE ${kind} ${rel} AS ${compiled.sql}`).catch((err: Error) => {
            throw sqlError(err, `${field}.rules`);
          });
          relations.set(s.id, { columns: compiled.columns, lineage: compiled.lineage });
          const rows = kind === 'TABLE' ? Number(await scalar(c, `SELECT count(*) FROM ${rel}`)) : null;
          return { rows, details: { sql: compiled.sql, materialized: kind === 'TABLE' } };
        }
        case 'validate':
        case 'quality': {
          const input = s.inputs[0]!;
          const inRel = relations.get(input)!;
          const dataset = inRel.dataset ?? this.datasetOfStage(spec, s.id, baseDir);
          const report = await runChecks(c, input, dataset, s.checks);
          reports.set(s.id, report);
          this.store.putQuality(run.id, s.id, dataset, report.score.score, report);
          let out = `SELECT * FROM ${q(input)}`;
          let quarantined = 0;
          const rowErrors = report.results.filter((r) => r.severity === 'error' && !r.success && r.predicate);
          if (s.type === 'validate' && s.quarantine && rowErrors.length) {
            const pass = rowErrors.map((r) => `coalesce((${r.predicate}), false)`).join(' AND ');
            const isWindow = rowErrors.some((r) => r.type === 'unique');
            const failing = isWindow
              ? `SELECT * FROM ${q(input)} QUALIFY NOT (${pass})`
              : `SELECT * FROM ${q(input)} WHERE NOT (${pass})`;
            out = isWindow ? `SELECT * FROM ${q(input)} QUALIFY ${pass}` : `SELECT * FROM ${q(input)} WHERE ${pass}`;
            const qt = q(`__${s.id}_quarantine`);
            await c.run(`CREATE OR REPLACE TABLE ${qt} AS ${failing}`);
            quarantined = Number(await scalar(c, `SELECT count(*) FROM ${qt}`));
            if (sideEffects && quarantined > 0)
              await writeTarget(
                c,
                conn,
                qt,
                { kind: 'iceberg', table: s.quarantine.table, mode: 'append' },
                `${field}.quarantine`,
              );
          }
          await c.run(`CREATE OR REPLACE ${quarantined > 0 ? 'TABLE' : 'VIEW'} ${rel} AS ${out}`);
          relations.set(s.id, { ...inRel, dataset });
          const blocking = report.results.filter(
            (r) => r.severity === 'error' && !r.success && !(s.type === 'validate' && s.quarantine && r.predicate),
          );
          const details = {
            dataset,
            score: report.score,
            quarantined,
            failed: report.results.filter((r) => !r.success).map((r) => r.name),
          };
          if (blocking.length)
            throw Object.assign(
              new QualityGateError(
                `${field}: ${blocking.length} error check(s) failed on ${dataset}: ${blocking.map((r) => `${r.name} (${r.unexpectedCount} unexpected, observed ${JSON.stringify(r.observedValue)})`).join('; ')}`,
              ),
              { details },
            );
          return { rows: report.rowCount - quarantined, details };
        }
        case 'enrich': {
          const input = s.inputs[0]!;
          let cur = `SELECT * FROM ${q(input)}`;
          let cols = relations.get(input)!.columns;
          let lin = relations.get(input)!.lineage;
          if (s.lookup) {
            const j = await joinSql(
              { c, lineageOf, functions: {}, scratch: (n) => q(`__${s.id}_${n}`), field },
              cur,
              cols,
              lin,
              s.lookup.from,
              s.lookup.type,
              s.lookup.on,
              s.lookup.columns,
              `${field}.lookup`,
            );
            cur = j.sql;
            cols = j.columns;
            lin = j.lineage;
          }
          if (s.call) {
            const call = s.call;
            const fn = (typeof call.fn === 'function' ? call.fn : functions[call.fn]) as CallFunction | undefined;
            if (!fn)
              throw new TributaryError(
                'INVALID_ARGUMENT',
                `${field}.call.fn: no function "${String(call.fn)}" is registered`,
                { field: `${field}.call.fn`, retriable: false },
              );
            const rows = await queryRows(c, cur);
            const added = Object.keys(call.columns);
            let failures = 0;
            let next = 0;
            const worker = async (): Promise<void> => {
              for (let i = next++; i < rows.length; i = next++) {
                if (signal.aborted) throw signal.reason;
                const row = rows[i]!;
                const ac = new AbortController();
                const abort = (): void => ac.abort(signal.reason);
                signal.addEventListener('abort', abort, { once: true });
                let timer: NodeJS.Timeout | undefined;
                try {
                  const res = await Promise.race([
                    fn(row, ac.signal),
                    new Promise<never>((_, rej) => {
                      timer = setTimeout(() => {
                        ac.abort();
                        rej(
                          new TributaryError(
                            'TIMEOUT',
                            `${field}.call: call for row ${i} timed out after ${call.timeoutMs} ms`,
                          ),
                        );
                      }, call.timeoutMs);
                    }),
                  ]);
                  for (const k of added) row[k] = res[k] ?? null;
                } catch (err) {
                  if (call.onError === 'fail') throw err;
                  failures++;
                  for (const k of added) row[k] = null;
                } finally {
                  clearTimeout(timer);
                  signal.removeEventListener('abort', abort);
                }
              }
            };
            await Promise.all(Array.from({ length: Math.min(call.concurrency, Math.max(1, rows.length)) }, worker));
            const t = q(`__${s.id}_call`);
            const casts = added.map((k) => `CAST(NULL AS ${call.columns[k]}) AS ${q(k)}`).join(', ');
            await loadRows(c, t, rows, `SELECT *, ${casts} FROM (${cur})`);
            // the declared types, whatever JSON inference made of the values
            cur = `SELECT * REPLACE (${added.map((k) => `CAST(${q(k)} AS ${call.columns[k]}) AS ${q(k)}`).join(', ')}) FROM ${t}`;
            const everything = [...lin.values()]
              .flat()
              .map((r) => ({ ...r, type: 'INDIRECT' as const, subtype: 'TRANSFORMATION' }));
            lin = new Map(lin);
            for (const k of added) lin.set(k, everything);
            cols = await describe(c, cur);
            await c.run(`CREATE OR REPLACE TABLE ${rel} AS ${cur}`);
            relations.set(s.id, { columns: cols, lineage: lin });
            return { rows: rows.length, details: { callFailures: failures } };
          }
          await c.run(`CREATE OR REPLACE ${kind} ${rel} AS ${cur}`);
          relations.set(s.id, { columns: cols, lineage: lin });
          return {
            rows: kind === 'TABLE' ? Number(await scalar(c, `SELECT count(*) FROM ${rel}`)) : null,
            details: null,
          };
        }
        case 'output': {
          const input = s.inputs[0]!;
          const inRel = relations.get(input)!;
          const target = datasetId(s.target, baseDir, s.id);
          // PII policy: columns deriving from PII source columns, unless the target may hold them
          const entry = this.governance.find(target);
          const piiCols = new Set<string>();
          if (!entry?.piiAllowed) {
            const piiSources = new Map<string, Set<string>>();
            for (const [col, refs] of inRel.lineage)
              for (const r of refs) {
                if (r.type !== 'DIRECT') continue;
                let set = piiSources.get(r.dataset);
                if (!set) {
                  set = new Set(this.governance.piiColumns(r.dataset));
                  piiSources.set(r.dataset, set);
                }
                if (set.has(r.field)) piiCols.add(col);
              }
          }
          if (piiCols.size && s.pii === 'fail')
            throw new TributaryError(
              'PERMISSION_DENIED',
              `${field}: PII column(s) ${[...piiCols].join(', ')} may not be written to ${target}`,
              { retriable: false },
            );
          const lineage: ColumnLineage = new Map();
          const sel: string[] = [];
          for (const col of inRel.columns) {
            if (piiCols.has(col.name) && s.pii === 'drop') continue;
            if (piiCols.has(col.name) && s.pii === 'mask') {
              sel.push(`sha256(CAST(${q(col.name)} AS VARCHAR)) AS ${q(col.name)}`);
              lineage.set(
                col.name,
                (inRel.lineage.get(col.name) ?? []).map((r) => ({ ...r, masking: true })),
              );
            } else {
              sel.push(q(col.name));
              lineage.set(col.name, inRel.lineage.get(col.name) ?? []);
            }
          }
          await c.run(`CREATE OR REPLACE VIEW ${rel} AS SELECT ${sel.join(', ')} FROM ${q(input)}`);
          const columns = await describe(c, rel);
          relations.set(s.id, { columns, lineage, dataset: target });
          if (!sideEffects) return { rows: null, details: { dataset: target } };
          const rows = await writeTarget(c, conn, rel, s.target, `${field}.target`);
          this.governance.recordSchema(target, columns, run.id);
          outputsDone.push({ id: target, columns, columnLineage: lineage, rowCount: rows });
          return {
            rows,
            details: {
              dataset: target,
              masked: s.pii === 'mask' ? [...piiCols] : [],
              dropped: s.pii === 'drop' ? [...piiCols] : [],
            },
          };
        }
      }
    };

    const attemptStage = async (
      s: Stage,
      sideEffects: boolean,
    ): Promise<{ rows: number | null; details: unknown; attempts: number }> => {
      const pol = policy[s.id] ?? this.policies(spec)[s.id]!;
      const random = this.options.random ?? Math.random;
      const sleep = this.options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
      for (let attempt = 1; ; attempt++) {
        const c = await instance.connect();
        const ac = new AbortController();
        let timer: NodeJS.Timeout | undefined;
        try {
          const work = runStage(s, c, sideEffects, ac.signal);
          // after a timeout the abandoned attempt may still reject: nobody awaits it then
          work.catch(() => undefined);
          const r = pol.timeoutMs
            ? await Promise.race([
                work,
                new Promise<never>((_, rej) => {
                  timer = setTimeout(() => {
                    const err = new TributaryError(
                      'TIMEOUT',
                      `stages.${s.id}: timed out after ${pol.timeoutMs} ms (attempt ${attempt})`,
                    );
                    ac.abort(err);
                    c.interrupt();
                    rej(err);
                  }, pol.timeoutMs!);
                }),
              ])
            : await work;
          return { ...r, attempts: attempt };
        } catch (err) {
          const retriable = !(isTributaryError(err) && !err.retriable);
          if (attempt >= pol.retry.maxAttempts || !retriable) throw Object.assign(err as Error, { attempts: attempt });
          channel.publish({ type: 'stage-retry', runId: run.id, stage: s.id, attempt, error: (err as Error).message });
          await sleep(backoffDelay(pol.retry, attempt, random));
        } finally {
          clearTimeout(timer);
          c.closeSync();
        }
      }
    };

    const hasOutput = (id: string): boolean => relations.has(id);
    const started = new Set<string>();
    const running = new Map<string, Promise<void>>();
    const order = topoOrder(spec);
    const record = (s: Stage, patch: Partial<StageRecord>): void => {
      const prev = prevStages.get(s.id);
      const base: StageRecord = prev ?? {
        runId: run.id,
        stageId: s.id,
        type: s.type,
        status: 'pending',
        attempts: 0,
        startedAt: null,
        endedAt: null,
        rows: null,
        error: null,
        details: null,
      };
      const next = { ...base, ...patch };
      prevStages.set(s.id, next);
      this.store.putStage(next);
    };

    try {
      for (;;) {
        for (const s of order) {
          if (started.has(s.id)) continue;
          const st = status.get(s.id)!;
          if (st === 'succeeded' && !recompute.has(s.id)) {
            started.add(s.id);
            continue;
          }
          const deps = dependencies(s);
          if (
            deps.some(
              (d) => !['succeeded', 'failed', 'skipped', 'cancelled'].includes(status.get(d)!) || running.has(d),
            )
          )
            continue;
          started.add(s.id);
          if (halted) {
            status.set(s.id, 'cancelled');
            record(s, {
              status: 'cancelled',
              error: 'run stopped after a failed stage',
              endedAt: new Date().toISOString(),
            });
            continue;
          }
          const missing = deps.filter((d) => !hasOutput(d));
          if (missing.length) {
            status.set(s.id, 'skipped');
            record(s, {
              status: 'skipped',
              error: `upstream ${missing.join(', ')} produced no output`,
              endedAt: new Date().toISOString(),
            });
            continue;
          }
          if (running.size >= spec.concurrency) {
            started.delete(s.id);
            continue;
          }
          const isRecompute = recompute.has(s.id);
          const t0 = new Date().toISOString();
          if (!isRecompute) {
            status.set(s.id, 'running');
            record(s, { status: 'running', startedAt: t0, endedAt: null, error: null });
            channel.publish({ type: 'stage-start', runId: run.id, stage: s.id });
          }
          const p = attemptStage(s, !isRecompute)
            .then((r) => {
              if (isRecompute) return;
              status.set(s.id, 'succeeded');
              record(s, {
                status: 'succeeded',
                attempts: r.attempts,
                rows: r.rows,
                details: r.details,
                endedAt: new Date().toISOString(),
                error: null,
              });
              channel.publish({ type: 'stage-end', runId: run.id, stage: s.id, rows: r.rows });
            })
            .catch((err: Error & { attempts?: number; details?: unknown }) => {
              if (isRecompute) {
                // an upstream that succeeded before cannot be rebuilt: its dependents get skipped
                relations.delete(s.id);
                runError ??= err;
                return;
              }
              status.set(s.id, 'failed');
              record(s, {
                status: 'failed',
                attempts: err.attempts ?? 1,
                error: err.message,
                details: err.details ?? null,
                endedAt: new Date().toISOString(),
              });
              channel.publish({ type: 'stage-error', runId: run.id, stage: s.id, error: err.message });
              const pol = policy[s.id]?.onFailure ?? 'fail';
              if (pol !== 'continue') relations.delete(s.id);
              if (pol === 'fail') halted = true;
              if (pol !== 'continue') runError ??= err;
            })
            .finally(() => running.delete(s.id));
          running.set(s.id, p);
        }
        if (running.size === 0) {
          if (order.every((s) => started.has(s.id))) break;
          throw new TributaryError('INTERNAL', `run ${run.id}: stages blocked with nothing running`);
        }
        await Promise.race(running.values());
      }
    } finally {
      instance.closeSync();
    }

    const failed = spec.stages.some((s) => {
      const st = status.get(s.id);
      return (st === 'failed' && (policy[s.id]?.onFailure ?? 'fail') !== 'continue') || st === 'cancelled';
    });
    const storedQuality = this.store.quality(run.id).flatMap((x) => (x.report as QualityReport).results);
    const score = storedQuality.length ? scoreOf(storedQuality).score : null;
    this.store.finishRun(
      run.id,
      failed ? 'failed' : 'succeeded',
      failed ? (runError?.message ?? 'a stage failed') : null,
      score,
    );

    // lineage: quality results attach to the dataset they checked (inputs) and the outputs downstream
    const inputsDone: DatasetInfo[] = [];
    for (const [stageId, info] of inputInfo) {
      const checks = spec.stages.filter(
        (s) => (s.type === 'validate' || s.type === 'quality') && s.inputs[0] === stageId,
      );
      const rs = checks.map((s) => reports.get(s.id)).filter((r) => r !== undefined);
      inputsDone.push(rs.length ? { ...info, quality: mergeReports(rs) } : info);
    }
    for (const o of outputsDone) {
      const st = spec.stages.find((s) => s.type === 'output' && datasetId(s.target, baseDir, s.id) === o.id);
      const up = st ? this.upstream(spec, st.id) : new Set<string>();
      const rs = [...up].map((id) => reports.get(id)).filter((r) => r !== undefined);
      if (rs.length) o.quality = mergeReports(rs);
    }
    await emit(
      runEvent({
        eventType: failed ? 'FAIL' : 'COMPLETE',
        runId: run.id,
        job: spec.name,
        inputs: inputsDone.length ? inputsDone : inputs.map((id) => ({ id, columns: [] })),
        outputs: outputsDone,
        ...(failed && runError ? { error: runError } : {}),
        ...(run.partition ? { nominalTime: nominal(run.partition) } : {}),
      }),
    );
    channel.publish({ type: 'run-end', runId: run.id, pipeline: spec.name, status: failed ? 'failed' : 'succeeded' });
    return { ...this.result(run.id), resumed, reused: false, lineageErrors };
  }

  private upstream(spec: PipelineSpec, id: string): Set<string> {
    const byId = new Map(spec.stages.map((s) => [s.id, s]));
    const seen = new Set<string>();
    const stack = [id];
    while (stack.length) {
      const x = stack.pop()!;
      for (const d of dependencies(byId.get(x)!))
        if (!seen.has(d)) {
          seen.add(d);
          stack.push(d);
        }
    }
    return seen;
  }

  /** The dataset a stage's relation stands for: the first output downstream, else the stage itself. */
  private datasetOfStage(spec: PipelineSpec, id: string, baseDir: string): string {
    const queue = [id];
    const seen = new Set<string>();
    while (queue.length) {
      const x = queue.shift()!;
      for (const s of spec.stages) {
        if (!s.type || seen.has(s.id) || !dependencies(s).includes(x)) continue;
        if (s.type === 'output') return datasetId(s.target, baseDir, s.id);
        seen.add(s.id);
        queue.push(s.id);
      }
    }
    return `sql:${spec.name}.${id}`;
  }
}

/** Binder and parser errors are the spec's fault: not worth a retry, and named by field. */
function sqlError(err: Error, field: string): Error {
  if (/^(Binder|Parser|Catalog) Error/.test(err.message))
    return new TributaryError('INVALID_ARGUMENT', `${field}: ${err.message.split('\n')[0]}`, {
      field,
      cause: err,
      retriable: false,
    });
  return err;
}

function nominal(partition: string): string {
  const d = new Date(
    /^\d{4}-\d\d$/.test(partition)
      ? `${partition}-01T00:00:00Z`
      : /T\d\d$/.test(partition)
        ? `${partition}:00:00Z`
        : partition.length === 10
          ? `${partition}T00:00:00Z`
          : partition,
  );
  return Number.isNaN(d.getTime()) ? new Date().toISOString() : d.toISOString();
}

function mergeReports(rs: QualityReport[]): NonNullable<DatasetInfo['quality']> {
  const columnMetrics: QualityReport['columnMetrics'] = {};
  for (const r of rs) Object.assign(columnMetrics, r.columnMetrics);
  return { results: rs.flatMap((r) => r.results), columnMetrics, rowCount: rs[0]?.rowCount ?? 0 };
}
