/**
 * Stream jobs and CEP pattern jobs submitted over HTTP: validated, run on the embedded log with exactly-once
 * processing, and kept in a registry file in the data directory so that a restarted server runs them again
 * from their committed offsets and changelogs.
 */

import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { CEP, type PatternStream, patternFromJson, patternToJson } from '../cep/index.ts';
import { channel, invalidArgument, isTributaryError, publish, TributaryError } from '../core/index.ts';
import type { LogClient, LogService } from '../log/index.ts';
import {
  compileJobSpec,
  KafkaStreams,
  parseJobSpec,
  Serdes,
  StreamsBuilder,
  type StreamsMetrics,
  type Topology,
} from '../streams/index.ts';
import { parseInput } from './http-errors.ts';

/** Job and pattern ids: they name files, consumer groups and topics, so no "/" and no "." or "..". */
export const resourceName = z
  .string({ error: 'expected a name (string)' })
  .min(1, 'expected a non-empty name')
  .max(100, 'expected at most 100 characters')
  .regex(/^[A-Za-z0-9._-]+$/, 'expected only ASCII letters, digits, ".", "_" and "-"')
  .refine((s) => s !== '.' && s !== '..', 'cannot be "." or ".."');

const topicName = z
  .string({ error: 'expected a topic name (string)' })
  .min(1, 'expected a non-empty topic name')
  .max(249, 'expected at most 249 characters')
  .regex(/^[A-Za-z0-9._-]+$/, 'expected only ASCII letters, digits, ".", "_" and "-"')
  .refine((s) => s !== '.' && s !== '..', 'cannot be "." or ".."');
const fieldPath = z.string({ error: 'expected a field path (string)' }).min(1, 'expected a non-empty field path');
const duration = z.union([z.string().min(1), z.number().nonnegative()], {
  error: 'expected a duration ("5s", "1m") or milliseconds',
});

/** POST /api/v1/patterns: a JSON pattern run over one topic, keyed by a field, matches written to a topic. */
export const patternJobSchema = z.strictObject({
  /** Default: the pattern's name. */
  id: resourceName.optional(),
  pattern: z.unknown().refine((p) => p !== undefined, 'expected a JSON pattern ({ stages: [...] })'),
  source: z.strictObject({
    topic: topicName,
    /** Events are matched per value of this field (dotted path). */
    keyField: fieldPath,
    /** Event time: epoch ms or an ISO-8601 string; default the record timestamp. */
    timeField: fieldPath.optional(),
  }),
  output: z.strictObject({ topic: topicName, timeoutsTopic: topicName.optional() }),
  maxOutOfOrderness: duration.optional(),
});
export type PatternJobSpec = z.input<typeof patternJobSchema>;

/** `attached`: a job that code in this process runs and shows here (see `attach`); not managed over HTTP. */
export type JobKind = 'job' | 'pattern' | 'attached';

/** What the registry file keeps per job. */
export interface JobRecord {
  id: string;
  kind: JobKind;
  /** The job spec, or the pattern job spec (with its current pattern). */
  spec: unknown;
  desired: 'running' | 'paused';
  createdAt: string;
  updatedAt: string;
}

export type JobState = 'STARTING' | 'RUNNING' | 'REBALANCING' | 'PAUSED' | 'ERROR' | 'STOPPING' | 'NOT_RUNNING';

export interface JobSummary {
  id: string;
  kind: JobKind;
  state: JobState;
  sources: string[];
  output: string;
  recordsIn: number;
  recordsOut: number;
  lag: number;
  error?: string;
  createdAt: string;
  updatedAt: string;
}

export interface JobMetrics {
  recordsIn: number;
  recordsOut: number;
  droppedRecords: number;
  lateRecords: number;
  skippedRecords: number;
  /** Records not yet consumed, summed over input partitions (at the last commit). */
  lag: number;
  lagByPartition: Record<string, number>;
  /** The smallest event time over the job's tasks (null before the first record). */
  watermark: number | null;
  /** Entries in the job's state stores, summed over tasks. */
  stateEntries: number;
  commits: number;
  recordsInPerSec: number;
  processLatencyMs: number;
  endToEndLatencyMs: { mean: number; max: number };
  tasks: StreamsMetrics['tasks'];
}

export interface JobDetail extends JobSummary {
  spec: unknown;
  applicationId: string;
  metrics: JobMetrics | null;
  topology: {
    nodes: { id: string; kind: string; subtopology: number; topics?: string[]; topic?: string; stores: string[] }[];
    edges: { from: string; to: string }[];
  };
  operators: { name: string; kind: string; subtopology: number; stores: string[]; stateEntries: number }[];
}

export interface Alert {
  pattern: string;
  key: string;
  timestamp: number;
  match: Record<string, unknown[]>;
}

export interface JobManagerOptions {
  /** The platform's data directory: the registry is `<dataDir>/server/jobs.json`, state `<dataDir>/jobs/state`. */
  dataDir: string;
  log: LogService;
  client: LogClient;
  /** Commit interval of every job (default 100 ms). */
  commitIntervalMs?: number;
}

interface Entry {
  record: JobRecord;
  topology: Topology;
  sources: string[];
  output: string;
  streams: KafkaStreams | undefined;
  patterns: PatternStream<string, unknown> | undefined;
  error: string | undefined;
  /** Serializes lifecycle operations on one job. */
  busy: Promise<unknown>;
  stopping: boolean;
}

const REGISTRY_VERSION = 1;

/** Diagnostics: one event per lifecycle action (submitted, paused, resumed, stopped, pattern-replaced, failed). */
const jobChannel = channel('server', 'job');
const announce = (id: string, kind: JobKind, action: string, error?: unknown): void =>
  publish(jobChannel, () => ({ id, kind, action, ...(error === undefined ? {} : { error }) }));

function get(value: unknown, p: string): unknown {
  let cur = value;
  for (const part of p.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/** Validates an id from a URL or a body. */
export function parseId(raw: unknown, field = 'id'): string {
  return parseInput(resourceName, raw, field);
}

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** Builds a pattern job's topology; returns the operator so that a running job can replace its pattern. */
function patternTopology(
  id: string,
  spec: z.output<typeof patternJobSchema>,
): { topology: Topology; patterns: PatternStream<string, unknown> } {
  const pattern = patternFromJson<unknown>(spec.pattern);
  const S = Serdes.String();
  const J = Serdes.JSON<unknown>();
  const b = new StreamsBuilder();
  const timeField = spec.source.timeField;
  const keyField = spec.source.keyField;
  const events = b
    .stream<string, unknown>(spec.source.topic, {
      keySerde: S,
      valueSerde: J,
      ...(timeField === undefined
        ? {}
        : {
            timestampExtractor: (r) => {
              const t = get(r.value, timeField);
              const n = typeof t === 'string' ? Date.parse(t) : Number(t);
              return Number.isFinite(n) ? n : r.timestamp;
            },
          }),
    })
    // Events without the key field cannot be matched per key: they are dropped here.
    .filter((_k, v) => {
      const k = get(v, keyField);
      return k !== undefined && k !== null;
    })
    .selectKey((_k, v) => String(get(v, keyField)));
  const patterns = CEP.pattern(events, pattern, {
    name: 'cep',
    ...(spec.maxOutOfOrderness === undefined ? {} : { maxOutOfOrderness: spec.maxOutOfOrderness }),
  });
  patterns
    .select((match, key, timestamp): Alert => ({ pattern: id, key, timestamp, match: match as Alert['match'] }))
    .to(spec.output.topic, { keySerde: S, valueSerde: Serdes.JSON<Alert>() });
  if (spec.output.timeoutsTopic !== undefined)
    patterns
      .timeouts()
      .mapValues<unknown>((t, key) => ({ pattern: id, key, timeoutTimestamp: t.timeoutTimestamp, match: t.match }))
      .to(spec.output.timeoutsTopic, { keySerde: S, valueSerde: Serdes.JSON<unknown>() });
  return { topology: b.build(), patterns: patterns as PatternStream<string, unknown> };
}

const normalizedPattern = (json: unknown): string => JSON.stringify(patternToJson(patternFromJson(json)));

/** Runs, pauses, resumes and stops jobs; persists what should run across restarts. */
export class JobManager {
  private readonly options: JobManagerOptions;
  private readonly file: string;
  private readonly stateDir: string;
  private readonly entries = new Map<string, Entry>();
  private writing: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(options: JobManagerOptions) {
    this.options = options;
    this.file = path.join(options.dataDir, 'server', 'jobs.json');
    this.stateDir = path.join(options.dataDir, 'jobs', 'state');
  }

  /** Loads the registry and starts every job that was running when the server stopped. */
  static async open(options: JobManagerOptions): Promise<JobManager> {
    const m = new JobManager(options);
    fs.mkdirSync(path.dirname(m.file), { recursive: true });
    fs.mkdirSync(m.stateDir, { recursive: true });
    for (const record of m.readRegistry()) {
      let entry: Entry;
      try {
        entry = m.build(record);
      } catch (err) {
        // A spec that no longer compiles stays listed, in ERROR, so that it can be seen and deleted.
        entry = {
          record,
          topology: new StreamsBuilder().build(),
          sources: [],
          output: '',
          streams: undefined,
          patterns: undefined,
          error: errorText(err),
          busy: Promise.resolve(),
          stopping: false,
        };
      }
      m.entries.set(record.id, entry);
    }
    // Start failures are reported on the job (state ERROR), never by failing the server.
    for (const e of m.entries.values())
      if (e.record.desired === 'running' && e.error === undefined)
        await m.startEntry(e).catch((err) => {
          e.error = errorText(err);
        });
    return m;
  }

  private readRegistry(): JobRecord[] {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new TributaryError('CORRUPT_DATA', `${this.file}: not JSON (${errorText(err)})`, { cause: err });
    }
    const jobs = (parsed as { jobs?: unknown }).jobs;
    if (!Array.isArray(jobs)) throw new TributaryError('CORRUPT_DATA', `${this.file}: expected { jobs: [...] }`);
    return jobs as JobRecord[];
  }

  /** Writes the registry atomically (temporary file, fsync, rename); writes are serialized. */
  private persist(): Promise<void> {
    const snapshot = JSON.stringify(
      {
        version: REGISTRY_VERSION,
        jobs: [...this.entries.values()].filter((e) => e.record.kind !== 'attached').map((e) => e.record),
      },
      null,
      2,
    );
    this.writing = this.writing.then(async () => {
      const tmp = `${this.file}.${process.pid}.tmp`;
      const fh = await fs.promises.open(tmp, 'w');
      try {
        await fh.writeFile(snapshot);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await fs.promises.rename(tmp, this.file);
    });
    return this.writing;
  }

  private build(record: JobRecord): Entry {
    let topology: Topology;
    let patterns: PatternStream<string, unknown> | undefined;
    let sources: string[];
    let output: string;
    if (record.kind === 'job') {
      const spec = parseJobSpec(record.spec);
      topology = compileJobSpec(record.spec);
      sources = spec.source.topics;
      output = spec.output.topic;
    } else {
      const spec = parseInput(patternJobSchema, record.spec, 'spec');
      ({ topology, patterns } = patternTopology(record.id, spec));
      sources = [spec.source.topic];
      output = spec.output.topic;
    }
    return {
      record,
      topology,
      sources,
      output,
      streams: undefined,
      patterns,
      error: undefined,
      busy: Promise.resolve(),
      stopping: false,
    };
  }

  private applicationId(e: Entry): string {
    if (e.record.kind === 'attached') return e.record.id;
    return `tributary-${e.record.kind}-${e.record.id}`;
  }

  /** Source topics must exist (a job cannot guess their partition count); a missing output topic is created. */
  private async checkTopics(sources: string[], outputs: string[], field: string): Promise<void> {
    const log = this.options.log;
    let partitions = 1;
    for (const [i, t] of sources.entries()) {
      const d = log.describeTopic(t);
      if (d === undefined)
        throw new TributaryError(
          'INVALID_ARGUMENT',
          `${field}${sources.length > 1 ? `.${i}` : ''}: topic ${JSON.stringify(t)} does not exist; create it first`,
          { field },
        );
      partitions = Math.max(partitions, d.partitions.length);
    }
    for (const t of outputs)
      if (log.describeTopic(t) === undefined) {
        try {
          await log.createTopic(t, { partitions });
        } catch (err) {
          if (!isTributaryError(err, 'ALREADY_EXISTS')) throw err;
        }
      }
  }

  private async startEntry(e: Entry): Promise<void> {
    if (this.closed) throw new TributaryError('UNAVAILABLE', 'the server is shutting down');
    e.error = undefined;
    // Pattern jobs rebuild their topology at each start: a fresh operator restores its patterns from state.
    if (e.record.kind === 'pattern' && e.streams !== undefined) {
      const rebuilt = this.build(e.record);
      e.topology = rebuilt.topology;
      e.patterns = rebuilt.patterns;
    }
    const streams = new KafkaStreams(e.topology, {
      applicationId: this.applicationId(e),
      client: this.options.client,
      stateDir: this.stateDir,
      processingGuarantee: 'exactly_once',
      commitIntervalMs: this.options.commitIntervalMs ?? 100,
      // A bad record must not stop a job submitted over HTTP: it is skipped and counted.
      deserializationErrors: 'continue',
    });
    e.streams = streams;
    await streams.start();
    const ps = e.patterns;
    if (ps !== undefined) {
      // The operator restored the pattern it last ran from its state; a pattern replaced while the job was not
      // running must win over it.
      const wanted = normalizedPattern((e.record.spec as { pattern: unknown }).pattern);
      const running = (ps.snapshotPatterns() as { current: [string, unknown] }).current[1];
      if (running === null || JSON.stringify(running) !== wanted)
        ps.updatePattern(patternFromJson((e.record.spec as { pattern: unknown }).pattern));
    }
  }

  /** Runs `fn` after the job's previous lifecycle operation finished. */
  private serial<T>(e: Entry, fn: () => Promise<T>): Promise<T> {
    const next = e.busy.then(fn, fn);
    e.busy = next.catch(() => undefined);
    return next;
  }

  private entry(id: string): Entry {
    const e = this.entries.get(parseId(id));
    if (e === undefined) throw new TributaryError('NOT_FOUND', `job ${JSON.stringify(id)} does not exist`);
    return e;
  }

  /** An entry that HTTP may pause, resume or stop. */
  private managed(id: string): Entry {
    const e = this.entry(id);
    if (e.record.kind === 'attached')
      throw new TributaryError(
        'CONFLICT',
        `job ${JSON.stringify(id)} is run by code in this process (attached); it cannot be paused, resumed or stopped over HTTP`,
        { field: 'id' },
      );
    return e;
  }

  /**
   * Shows a job that code in this process runs (the demo's jobs, say) beside the submitted ones: listed, with
   * metrics and topology, but neither persisted nor managed over HTTP. Returns a function that removes it.
   */
  attach(
    id: string,
    streams: KafkaStreams,
    topology: Topology,
    info: { sources?: string[]; output?: string } = {},
  ): () => void {
    const name = parseId(id);
    if (this.entries.has(name))
      throw new TributaryError('ALREADY_EXISTS', `id: a job named ${JSON.stringify(name)} exists`, { field: 'id' });
    const now = new Date().toISOString();
    const e: Entry = {
      record: { id: name, kind: 'attached', spec: null, desired: 'running', createdAt: now, updatedAt: now },
      topology,
      sources: info.sources ?? topology.sourceTopics(),
      output: info.output ?? '',
      streams,
      patterns: undefined,
      error: undefined,
      busy: Promise.resolve(),
      stopping: false,
    };
    this.entries.set(name, e);
    return () => {
      if (this.entries.get(name) === e) this.entries.delete(name);
    };
  }

  private async add(record: JobRecord, field: string): Promise<JobDetail> {
    if (this.closed) throw new TributaryError('UNAVAILABLE', 'the server is shutting down');
    if (this.entries.has(record.id))
      throw new TributaryError(
        'ALREADY_EXISTS',
        `${field}: a job or pattern named ${JSON.stringify(record.id)} exists; delete it first or choose another name`,
        { field },
      );
    const e = this.build(record);
    const outputs = [e.output];
    if (record.kind === 'pattern') {
      const t = (record.spec as PatternJobSpec).output.timeoutsTopic;
      if (t !== undefined) outputs.push(t);
    }
    // Reserved before the first await, so that a concurrent submission of the same name gets 409.
    this.entries.set(record.id, e);
    let starting = false;
    try {
      await this.checkTopics(e.sources, outputs, record.kind === 'job' ? 'spec.source.topics' : 'spec.source.topic');
      starting = true;
      await this.serial(e, () => this.startEntry(e));
    } catch (err) {
      if (starting) announce(record.id, record.kind, 'failed', err);
      this.entries.delete(record.id);
      await e.streams?.close().catch(() => {});
      throw err;
    }
    await this.persist();
    announce(record.id, record.kind, 'submitted');
    return this.detail(e);
  }

  /** Validates a JSON job spec (errors name the field), starts it and records it. */
  async submitJob(spec: unknown): Promise<JobDetail> {
    const parsed = parseJobSpec(spec);
    compileJobSpec(spec); // compile errors are submission errors, before anything is created
    const now = new Date().toISOString();
    return this.add(
      { id: parsed.name, kind: 'job', spec, desired: 'running', createdAt: now, updatedAt: now },
      'spec.name',
    );
  }

  /** Validates a pattern job (the pattern with `patternFromJson`, the rest with its schema), starts it and records it. */
  async submitPattern(body: unknown): Promise<JobDetail> {
    const spec = parseInput(patternJobSchema, body, 'spec');
    patternFromJson(spec.pattern);
    const name = (spec.pattern as { name?: unknown }).name;
    if (spec.id === undefined && name === undefined)
      throw invalidArgument('spec.id', 'an id for the pattern job (or a pattern with a name)');
    const id = spec.id ?? parseInput(resourceName, name, 'spec.pattern.name');
    const now = new Date().toISOString();
    return this.add(
      { id, kind: 'pattern', spec: { ...spec, id }, desired: 'running', createdAt: now, updatedAt: now },
      spec.id === undefined ? 'spec.pattern.name' : 'spec.id',
    );
  }

  /**
   * Replaces a pattern job's pattern. A running job switches at once (every key drops its partial matches of the
   * old pattern); a paused one starts with the new pattern. Nothing else of the spec may change (409): a
   * different source or output would need a different topology.
   */
  async replacePattern(id: string, body: unknown): Promise<JobDetail> {
    const e = this.entry(id);
    if (e.record.kind !== 'pattern')
      throw new TributaryError(
        'INVALID_ARGUMENT',
        `id: ${JSON.stringify(id)} is a ${e.record.kind === 'job' ? 'stream' : e.record.kind} job, not a pattern`,
        {
          field: 'id',
        },
      );
    // The body is either a whole pattern job spec (only `pattern` may differ) or `{ pattern }`.
    const b = body as { pattern?: unknown } | null;
    if (b === null || typeof b !== 'object' || b.pattern === undefined)
      throw invalidArgument('spec.pattern', 'a JSON pattern ({ stages: [...] })');
    const old = e.record.spec as Record<string, unknown>;
    const next = parseInput(patternJobSchema, { ...old, ...(b as Record<string, unknown>), id: e.record.id }, 'spec');
    for (const k of ['source', 'output', 'maxOutOfOrderness'] as const)
      if (JSON.stringify(next[k]) !== JSON.stringify(old[k]))
        throw new TributaryError(
          'CONFLICT',
          `spec.${k}: only the pattern of a running pattern job can be replaced; delete the job and submit it again to change ${k}`,
          { field: `spec.${k}` },
        );
    const pattern = patternFromJson<unknown>(next.pattern);
    return this.serial(e, async () => {
      if (e.stopping) throw new TributaryError('NOT_FOUND', `job ${JSON.stringify(id)} does not exist`);
      e.patterns?.updatePattern(pattern);
      e.record = { ...e.record, spec: next, updatedAt: new Date().toISOString() };
      await this.persist();
      announce(e.record.id, e.record.kind, 'pattern-replaced');
      return this.detail(e);
    });
  }

  /** Commits what was processed and stops the job; it stays registered (and stays paused across restarts). */
  pause(id: string): Promise<JobDetail> {
    const e = this.managed(id);
    return this.serial(e, async () => {
      if (e.record.desired !== 'paused') {
        await e.streams?.close();
        e.record = { ...e.record, desired: 'paused', updatedAt: new Date().toISOString() };
        await this.persist();
        announce(e.record.id, e.record.kind, 'paused');
      }
      return this.detail(e);
    });
  }

  /** Starts a paused (or failed) job again from its committed offsets. */
  resume(id: string): Promise<JobDetail> {
    const e = this.managed(id);
    return this.serial(e, async () => {
      const st = e.streams?.state;
      if (e.record.desired === 'running' && (st === 'RUNNING' || st === 'REBALANCING')) return this.detail(e);
      await e.streams?.close().catch(() => {});
      e.record = { ...e.record, desired: 'running', updatedAt: new Date().toISOString() };
      await this.persist();
      try {
        await this.startEntry(e);
      } catch (err) {
        e.error = errorText(err);
        announce(e.record.id, e.record.kind, 'failed', err);
        throw err;
      }
      announce(e.record.id, e.record.kind, 'resumed');
      return this.detail(e);
    });
  }

  /** Stops the job (committing its work) and forgets it. Its committed offsets and state remain under its application id. */
  stop(id: string): Promise<JobDetail> {
    const e = this.managed(id);
    return this.serial(e, async () => {
      e.stopping = true;
      await e.streams?.close();
      const d = this.detail(e);
      this.entries.delete(e.record.id);
      await this.persist();
      announce(e.record.id, e.record.kind, 'stopped');
      return { ...d, state: 'NOT_RUNNING' as const };
    });
  }

  private state(e: Entry): JobState {
    if (e.stopping) return 'STOPPING';
    if (e.record.desired === 'paused') return 'PAUSED';
    if (e.error !== undefined) return 'ERROR';
    const s = e.streams?.state;
    if (s === undefined || s === 'CREATED') return 'STARTING';
    if (s === 'PENDING_SHUTDOWN') return 'STOPPING';
    return s;
  }

  private metrics(e: Entry): JobMetrics | null {
    const s = e.streams;
    if (s === undefined) return null;
    const m = s.metrics();
    const times = m.tasks.map((t) => t.eventTime).filter((t) => Number.isFinite(t) && t >= 0);
    let stateEntries = 0;
    for (const t of m.tasks) for (const n of Object.values(t.storeEntries)) stateEntries += n;
    return {
      recordsIn: m.recordsIn,
      recordsOut: m.recordsOut,
      droppedRecords: m.droppedRecords,
      lateRecords: m.lateRecords,
      skippedRecords: m.skippedRecords,
      lag: Object.values(m.lag).reduce((a, b) => a + b, 0),
      lagByPartition: m.lag,
      watermark: times.length === 0 ? null : Math.min(...times),
      stateEntries,
      commits: m.commits,
      recordsInPerSec: m.recordsInPerSec,
      processLatencyMs: m.processLatencyMs,
      endToEndLatencyMs: m.endToEndLatencyMs,
      tasks: m.tasks,
    };
  }

  private summary(e: Entry): JobSummary {
    const m = this.metrics(e);
    return {
      id: e.record.id,
      kind: e.record.kind,
      state: this.state(e),
      sources: e.sources,
      output: e.output,
      recordsIn: m?.recordsIn ?? 0,
      recordsOut: m?.recordsOut ?? 0,
      lag: m?.lag ?? 0,
      ...(e.error !== undefined
        ? { error: e.error }
        : e.streams?.error !== undefined
          ? { error: errorText(e.streams.error) }
          : {}),
      createdAt: e.record.createdAt,
      updatedAt: e.record.updatedAt,
    };
  }

  private detail(e: Entry): JobDetail {
    const m = this.metrics(e);
    const described = e.topology.describe();
    const nodes: JobDetail['topology']['nodes'] = [];
    const edges: JobDetail['topology']['edges'] = [];
    const readers = new Map<string, string[]>();
    for (const s of described.subtopologies)
      for (const n of s.nodes) {
        nodes.push({
          id: n.name,
          kind: n.kind,
          subtopology: s.id,
          ...(n.topics === undefined ? {} : { topics: n.topics }),
          ...(n.topic === undefined ? {} : { topic: n.topic }),
          stores: n.stores,
        });
        for (const p of n.predecessors) edges.push({ from: p, to: n.name });
        for (const t of n.topics ?? []) readers.set(t, [...(readers.get(t) ?? []), n.name]);
      }
    // Repartition topics join sub-topologies: the sink writing one feeds the source reading it.
    for (const n of nodes)
      if (n.topic !== undefined) for (const r of readers.get(n.topic) ?? []) edges.push({ from: n.id, to: r });
    const storeEntries = new Map<string, number>();
    for (const t of m?.tasks ?? [])
      for (const [name, n] of Object.entries(t.storeEntries)) storeEntries.set(name, (storeEntries.get(name) ?? 0) + n);
    return {
      ...this.summary(e),
      spec: e.record.spec,
      applicationId: this.applicationId(e),
      metrics: m,
      topology: { nodes, edges },
      operators: nodes.map((n) => ({
        name: n.id,
        kind: n.kind,
        subtopology: n.subtopology,
        stores: n.stores,
        stateEntries: n.stores.reduce((a, s) => a + (storeEntries.get(s) ?? 0), 0),
      })),
    };
  }

  list(kind?: JobKind): JobSummary[] {
    return [...this.entries.values()]
      .filter((e) => kind === undefined || e.record.kind === kind)
      .map((e) => this.summary(e));
  }

  get(id: string, kind?: JobKind): JobDetail {
    const e = this.entry(id);
    if (kind !== undefined && e.record.kind !== kind)
      throw new TributaryError('NOT_FOUND', `${kind} ${JSON.stringify(id)} does not exist (it is a ${e.record.kind})`);
    return this.detail(e);
  }

  /** Waits until the job processed and committed its input present now (tests, scripts). */
  async waitUntilProcessed(id: string, timeoutMs = 60_000): Promise<void> {
    const s = this.entry(id).streams;
    if (s === undefined) throw new TributaryError('UNAVAILABLE', `job ${JSON.stringify(id)} is not running`);
    await s.waitUntilProcessed(timeoutMs);
  }

  /**
   * The newest committed matches of pattern jobs (read_committed from their output topics), oldest first.
   * With `pattern`, only that job's.
   */
  async alerts(options: { limit?: number; pattern?: string } = {}): Promise<Alert[]> {
    const limit = options.limit ?? 100;
    const wanted = options.pattern === undefined ? undefined : parseId(options.pattern, 'query.pattern');
    const byTopic = new Map<string, Set<string>>();
    for (const e of this.entries.values())
      if (e.record.kind === 'pattern' && (wanted === undefined || e.record.id === wanted))
        byTopic.set(e.output, (byTopic.get(e.output) ?? new Set()).add(e.record.id));
    const out: Alert[] = [];
    for (const [topic, ids] of byTopic) out.push(...(await this.tail(topic, ids, limit)));
    out.sort((a, b) => a.timestamp - b.timestamp);
    return out.slice(-limit);
  }

  /** The newest `limit` alerts of `ids` in a topic: reads back from the end, further while it finds too few. */
  private async tail(topic: string, ids: Set<string>, limit: number): Promise<Alert[]> {
    // Transaction markers and other writers' records take offsets too, so the first window is wider than limit.
    for (let window = BigInt(limit * 2 + 16); ; window *= 4n) {
      const d = this.options.log.describeTopic(topic);
      if (d === undefined) return [];
      const found: Alert[] = [];
      let whole = true;
      const consumer = this.options.client.consumer({ isolation: 'read_committed' });
      try {
        const targets = d.partitions.map((p) => ({ tp: { topic, partition: p.partition }, end: p.lastStableOffset }));
        consumer.assign(targets.map((t) => t.tp));
        for (const p of d.partitions) {
          let from = p.lastStableOffset - window;
          if (from > p.logStartOffset) whole = false;
          else from = p.logStartOffset;
          consumer.seek({ topic, partition: p.partition }, from);
        }
        const deadline = Date.now() + 5000;
        while (!targets.every((t) => (consumer.position(t.tp) ?? 0n) >= t.end) && Date.now() < deadline)
          for (const r of await consumer.poll(50)) {
            try {
              const v = JSON.parse(r.value?.toString('utf8') ?? 'null') as Alert;
              if (v && typeof v === 'object' && ids.has(v.pattern)) found.push(v);
            } catch {
              // not an alert: a topic may be shared with other writers
            }
          }
      } finally {
        await consumer.close();
      }
      if (found.length >= limit || whole) return found;
    }
  }

  /** Stops every job, committing its work; the registry keeps them to run after a restart. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(
      [...this.entries.values()]
        .filter((e) => e.record.kind !== 'attached') // their owners close them
        .map((e) => this.serial(e, async () => e.streams?.close().catch(() => {}))),
    );
    await this.writing.catch(() => {});
  }
}
