// numThreads > 1: the parent side of a KafkaStreams whose tasks run in worker threads. Each worker rebuilds the
// topology from a module reference or a JSON job spec (a Topology holds closures of this thread and cannot be
// sent), runs one KafkaStreams instance in group mode (over the embedded log served on a MessagePort, or over
// a Kafka cluster), and so shares the partitions with its sibling threads exactly as instances of one
// application id share them across processes.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { MessageChannel, type MessagePort, Worker } from 'node:worker_threads';
import { channel, type ErrorCode, invalidArgument, publish, TributaryError } from '../core/index.ts';
import type { RemoteClientOptions } from '../kafka/index.ts';
import { type LogService, serveLogOnPort } from '../log/index.ts';
import { emptyTaskMetrics, type TaskMetrics } from './node.ts';
import type { StreamsMetrics, StreamsState, UncaughtExceptionResponse } from './runtime.ts';
import { compileJobSpec } from './spec.ts';
import { Topology } from './topology.ts';

/**
 * A topology that a worker thread can rebuild: a module export (a function returning a Topology, called with
 * `args`), or a JSON job spec (see compileJobSpec).
 */
export type TopologySource =
  | {
      /** A file URL, or a path (relative paths resolve against the current directory). */
      module: string | URL;
      /** The export to call (default 'default'). */
      export?: string;
      /** JSON-serializable arguments passed to the function. */
      args?: unknown[];
    }
  | { jobSpec: unknown };

/**
 * How worker threads reach the log: the embedded log (its LogService calls served to each thread over a
 * MessagePort) or a Kafka cluster.
 */
export type WorkerLog = { log: LogService } | RemoteClientOptions;

/** Per worker thread, in StreamsMetrics.threads. */
export interface ThreadInfo {
  /** Thread number (0 .. numThreads-1); a replacement keeps the number of the thread it replaces. */
  thread: number;
  instanceId: string;
  state: StreamsState | 'STARTING' | 'DEAD';
  partitions: number[];
  /** How many times this thread number was replaced after a failure. */
  replacements: number;
}

/** The config fields that go to the workers as data (functions and clients cannot cross threads). */
export interface WorkerConfig {
  applicationId: string;
  processingGuarantee?: 'exactly_once' | 'at_least_once';
  commitIntervalMs?: number;
  stateDir?: string;
  eventTime?: unknown;
  pollMs?: number;
  maxPollRecords?: number;
  deserializationErrors?: 'fail' | 'continue' | { deadLetterTopic: string };
  instanceId: string;
  sessionTimeoutMs?: number;
  stateCheckpointIntervalMs?: number;
  transactionTimeoutMs?: number;
  internalTopicPartitions?: number;
}

export type NormalizedSource = { module: string; export: string; args: unknown[] } | { jobSpec: unknown };

export interface WorkerInit {
  thread: number;
  source: NormalizedSource;
  config: WorkerConfig;
  /** Exactly one of these: the embedded log's port, or the cluster. */
  logPort?: MessagePort;
  remote?: RemoteClientOptions;
  wallClockOffset: number | undefined;
  metricsIntervalMs: number;
}

/** Progress of one worker: its consumer positions (assigned partitions only) and whether all work is committed. */
export interface ThreadProgress {
  state: StreamsState;
  positions: [topic: string, partition: number, position: string][];
  idle: boolean;
}

/** A read-only store call run in a worker thread (interactive queries across threads). */
export interface StoreQuery {
  kind: 'keyValue' | 'window' | 'session';
  store: string;
  method: string;
  args: unknown[];
}

export type ToWorker =
  | { type: 'close' }
  | { type: 'exit' }
  | { type: 'clock'; offset: number }
  | { type: 'progress'; id: number }
  | { type: 'query'; id: number; query: StoreQuery };

export type SerializedError = { code?: ErrorCode; message: string; field?: string; stack?: string };

export type FromWorker =
  | { type: 'started' }
  | { type: 'state'; state: StreamsState; metrics: StreamsMetrics }
  | { type: 'metrics'; metrics: StreamsMetrics }
  | { type: 'error'; error: SerializedError }
  | { type: 'reply'; id: number; value?: unknown; error?: SerializedError }
  | { type: 'closed'; error?: SerializedError };

export function serializeError(err: unknown): SerializedError {
  if (err instanceof TributaryError)
    return {
      code: err.code,
      message: err.message,
      ...(err.field === undefined ? {} : { field: err.field }),
      ...(err.stack === undefined ? {} : { stack: err.stack }),
    };
  if (err instanceof Error) return { message: err.message, ...(err.stack === undefined ? {} : { stack: err.stack }) };
  return { message: String(err) };
}

export function deserializeError(e: SerializedError, context: string): TributaryError {
  const err = new TributaryError(e.code ?? 'INTERNAL', `${context}: ${e.message}`, {
    ...(e.field === undefined ? {} : { field: e.field }),
  });
  if (e.stack !== undefined) err.stack = `${err.name}: ${context}: ${e.stack}`;
  return err;
}

/** Resolves a module path or URL to the file URL the worker imports. */
export function normalizeSource(src: TopologySource): NormalizedSource {
  if ('jobSpec' in src) return { jobSpec: src.jobSpec };
  const m = src.module;
  let href: string;
  if (m instanceof URL) href = m.href;
  else if (typeof m === 'string' && m.length > 0)
    href = /^(file|data):/.test(m) ? m : pathToFileURL(path.resolve(m)).href;
  else throw invalidArgument('module', 'a file URL or a path to a module exporting a topology builder', m);
  const args = src.args ?? [];
  if (!Array.isArray(args)) throw invalidArgument('args', 'an array of JSON values', args);
  return { module: href, export: src.export ?? 'default', args: structuredClone(args) };
}

/** Builds the topology of a source (in the parent to check it early, and in every worker). */
export async function loadTopology(src: NormalizedSource): Promise<Topology> {
  if ('jobSpec' in src) return compileJobSpec(src.jobSpec);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(src.module)) as Record<string, unknown>;
  } catch (err) {
    throw new TributaryError('NOT_FOUND', `module: cannot import ${src.module}`, { field: 'module', cause: err });
  }
  const fn = mod[src.export];
  if (typeof fn !== 'function')
    throw invalidArgument('export', `the name of a function exported by ${src.module}`, src.export);
  const topology: unknown = await (fn as (...a: unknown[]) => unknown)(...src.args);
  if (!(topology instanceof Topology))
    throw invalidArgument(
      'export',
      `${src.export}(...args) of ${src.module} to return a Topology (StreamsBuilder.build())`,
    );
  return topology;
}

interface ThreadHandle {
  thread: number;
  worker: Worker;
  state: ThreadInfo['state'];
  metrics: StreamsMetrics | undefined;
  /** Set once the thread is closed, failed or replaced: later events from it are ignored. */
  done: boolean;
  /** Resolves when the thread has exited. */
  closed: Promise<void>;
  /** The thread was asked to exit (stopWorker). */
  exitRequested: boolean;
  pending: Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>;
}

/** What the threaded runtime needs from the KafkaStreams that owns it. */
export interface ThreadsHost {
  applicationId: string;
  setState(next: StreamsState): void;
  state(): StreamsState;
  handle(err: unknown): UncaughtExceptionResponse;
  failed(err: unknown): void;
}

export interface ThreadsOptions {
  numThreads: number;
  source: NormalizedSource;
  /** Config for the workers; instanceId is the parent's, each thread gets `<instanceId>-t<n>`. */
  config: WorkerConfig;
  workerLog: WorkerLog;
  wallClock: (() => number) | undefined;
  metricsIntervalMs?: number;
  /** How long close() waits for a worker to commit and stop before terminating it. */
  closeTimeoutMs?: number;
}

/** How long a worker asked to exit may take before it is terminated. */
const EXIT_GRACE_MS = 5000;
/** The exit code of a worker that left when asked to (terminate() and uncaught exceptions give 1). */
export const EXIT_CODE_ASKED = 3;
// thread-worker.ts next to this file from source, thread-worker.js from the build (dist/).
const WORKER_URL = new URL(`./thread-worker${path.extname(new URL(import.meta.url).pathname)}`, import.meta.url);
const chThread = channel('streams', 'thread');

/** Starts and watches the worker threads of one KafkaStreams (numThreads > 1). */
export class StreamThreads {
  private readonly opts: ThreadsOptions;
  private readonly host: ThreadsHost;
  private readonly threads: ThreadHandle[] = [];
  private readonly replacements: number[] = [];
  private clockTimer: ReturnType<typeof setInterval> | undefined;
  private clockOffset: number | undefined;
  private nextId = 0;
  private stopping = false;
  private stopped: Promise<void> | undefined;

  constructor(host: ThreadsHost, opts: ThreadsOptions) {
    this.host = host;
    this.opts = opts;
    for (let i = 0; i < opts.numThreads; i++) this.replacements.push(0);
  }

  /** Starts every worker and resolves once all started. */
  async start(): Promise<void> {
    const clock = this.opts.wallClock;
    if (clock !== undefined) {
      this.clockOffset = clock() - Date.now();
      // The workers follow the parent's clock as an offset from Date.now(), sampled every 20 ms.
      this.clockTimer = setInterval(() => {
        const offset = clock() - Date.now();
        if (this.clockOffset !== undefined && Math.abs(offset - this.clockOffset) < 2) return;
        this.clockOffset = offset;
        for (const t of this.threads) if (!t.done) t.worker.postMessage({ type: 'clock', offset } satisfies ToWorker);
      }, 20);
      this.clockTimer.unref();
    }
    const started = Array.from({ length: this.opts.numThreads }, (_, i) => this.spawn(i));
    const results = await Promise.allSettled(started);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
  }

  private instanceId(thread: number): string {
    return `${this.opts.config.instanceId}-t${thread}`;
  }

  /** Starts the worker for thread number `thread`; resolves when its KafkaStreams started. */
  private spawn(thread: number): Promise<void> {
    const c = this.opts.config;
    const init: WorkerInit = {
      thread,
      source: this.opts.source,
      config: {
        ...c,
        instanceId: this.instanceId(thread),
        ...(c.stateDir === undefined ? {} : { stateDir: path.join(c.stateDir, `t${thread}`) }),
      },
      wallClockOffset: this.clockOffset,
      metricsIntervalMs: this.opts.metricsIntervalMs ?? 200,
    };
    const transferList: MessagePort[] = [];
    const wl = this.opts.workerLog;
    if ('log' in wl) {
      // The port closes when the thread exits; the log's side then aborts what the thread was waiting for.
      const { port1, port2 } = new MessageChannel();
      serveLogOnPort(wl.log, port1);
      init.logPort = port2;
      transferList.push(port2);
    } else init.remote = wl;
    const worker = new Worker(WORKER_URL, {
      workerData: init,
      transferList,
      name: `${c.applicationId}-t${thread}`,
    });
    let onExit: () => void = () => {};
    const h: ThreadHandle = {
      thread,
      worker,
      state: 'STARTING',
      metrics: undefined,
      done: false,
      exitRequested: false,
      closed: new Promise<void>((r) => {
        onExit = r;
      }),
      pending: new Map(),
    };
    const idx = this.threads.findIndex((t) => t.thread === thread);
    if (idx >= 0) this.threads[idx] = h;
    else this.threads.push(h);
    publish(chThread, () => ({ applicationId: c.applicationId, thread, event: 'start' }));
    return new Promise<void>((resolve, reject) => {
      let startedOk = false;
      worker.on('message', (m: FromWorker) => {
        if (h.done && m.type !== 'closed' && m.type !== 'reply') return;
        switch (m.type) {
          case 'started':
            startedOk = true;
            resolve();
            break;
          case 'state':
            h.state = m.state;
            h.metrics = m.metrics;
            if (m.state === 'ERROR') break; // the 'error' message (sent first) is handled
            this.updateState();
            break;
          case 'metrics':
            h.metrics = m.metrics;
            break;
          case 'error': {
            const err = deserializeError(m.error, `thread ${thread} (${this.instanceId(thread)})`);
            if (!startedOk) {
              h.done = true;
              this.stopWorker(h);
              reject(err);
            } else this.threadFailed(h, err);
            break;
          }
          case 'reply': {
            const p = h.pending.get(m.id);
            h.pending.delete(m.id);
            if (m.error !== undefined) p?.reject(deserializeError(m.error, `thread ${thread}`));
            else p?.resolve(m.value);
            break;
          }
          case 'closed':
            if (m.error !== undefined)
              this.host.failed(deserializeError(m.error, `thread ${thread} (${this.instanceId(thread)}) on close`));
            // Committed and closed: nothing the worker still holds open matters.
            void worker.terminate();
            break;
        }
      });
      worker.on('error', (cause) => {
        // An exception the worker did not catch: the thread is dead.
        const err = new TributaryError(
          'UNAVAILABLE',
          `thread ${thread} (${this.instanceId(thread)}) died: ${cause instanceof Error ? cause.message : String(cause)}`,
          { cause },
        );
        if (!startedOk) {
          h.done = true;
          reject(err);
        } else this.threadFailed(h, err);
      });
      worker.on('exit', (code) => {
        for (const p of h.pending.values())
          p.reject(new TributaryError('UNAVAILABLE', `thread ${thread} exited while answering`));
        h.pending.clear();
        onExit();
        if (!startedOk && !h.done) {
          h.done = true;
          reject(new TributaryError('UNAVAILABLE', `thread ${thread} exited with code ${code} while starting`));
        } else if (!h.done)
          this.threadFailed(
            h,
            new TributaryError('UNAVAILABLE', `thread ${thread} (${this.instanceId(thread)}) exited with code ${code}`),
          );
      });
    });
  }

  /** A thread died or its KafkaStreams failed: the uncaught exception handler decides. */
  private threadFailed(h: ThreadHandle, err: unknown): void {
    if (h.done) return;
    h.done = true;
    h.state = 'DEAD';
    this.stopWorker(h);
    if (this.stopping) return;
    const response = this.host.handle(err);
    publish(channel('streams', 'error'), () => ({
      applicationId: this.host.applicationId,
      thread: h.thread,
      error: err,
      response,
    }));
    if (response === 'REPLACE_THREAD') {
      this.replacements[h.thread] = (this.replacements[h.thread] ?? 0) + 1;
      this.host.setState('REBALANCING');
      this.spawn(h.thread).catch((err2: unknown) => {
        // The replacement could not start: the client stops.
        if (this.stopping) return;
        this.host.failed(err2);
        this.host.setState('ERROR');
        void this.stopAll();
      });
      return;
    }
    this.host.failed(err);
    this.host.setState('ERROR');
    void this.stopAll();
  }

  private updateState(): void {
    const s = this.host.state();
    if (s === 'ERROR' || s === 'PENDING_SHUTDOWN' || s === 'NOT_RUNNING' || this.stopping) return;
    const all = this.threads.every((t) => !t.done && t.state === 'RUNNING');
    this.host.setState(all && this.threads.length === this.opts.numThreads ? 'RUNNING' : 'REBALANCING');
  }

  /**
   * Ends a worker that may still hold open state stores. The worker exits itself from its event loop, where no
   * store transaction is open: `worker.terminate()` landing inside an LMDB write transaction deadlocks the
   * thread's exit (lmdb-js's cleanup hook takes the write lock the interrupted transaction still holds).
   * Only a worker that does not act on the message within EXIT_GRACE_MS is terminated.
   */
  private stopWorker(h: ThreadHandle): void {
    if (h.exitRequested) return;
    h.exitRequested = true;
    h.worker.postMessage({ type: 'exit' } satisfies ToWorker);
    const timer = setTimeout(() => void h.worker.terminate(), EXIT_GRACE_MS);
    timer.unref();
    void h.closed.then(() => clearTimeout(timer));
  }

  /** The live worker threads. */
  workers(): Worker[] {
    return this.threads.filter((t) => !t.done).map((t) => t.worker);
  }

  private request<T>(h: ThreadHandle, msg: (id: number) => ToWorker, timeoutMs = 10_000): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        h.pending.delete(id);
        reject(new TributaryError('TIMEOUT', `thread ${h.thread} did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      h.pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      h.worker.postMessage(msg(id));
    });
  }

  /** Progress of every live thread (a thread that dies meanwhile is left out). */
  async progress(): Promise<ThreadProgress[]> {
    const live = this.threads.filter((t) => !t.done);
    const got = await Promise.allSettled(
      live.map((t) => this.request<ThreadProgress>(t, (id) => ({ type: 'progress', id }))),
    );
    return got.flatMap((g) => (g.status === 'fulfilled' ? [g.value] : []));
  }

  /** Runs a read-only store query in every live thread and returns the per-thread answers. */
  async query(q: StoreQuery): Promise<unknown[]> {
    const live = this.threads.filter((t) => !t.done);
    return Promise.all(live.map((t) => this.request<unknown>(t, (id) => ({ type: 'query', id, query: q }))));
  }

  /** Per-thread info and the metrics of all threads merged (from the snapshots the workers send). */
  metrics(): StreamsMetrics & { threads: ThreadInfo[] } {
    const snaps = this.threads
      .filter((t) => !t.done && t.metrics !== undefined)
      .map((t) => t.metrics as StreamsMetrics);
    const m = mergeMetrics(snaps);
    return {
      ...m,
      threads: [...this.threads]
        .sort((a, b) => a.thread - b.thread)
        .map((t) => ({
          thread: t.thread,
          instanceId: this.instanceId(t.thread),
          state: t.state,
          partitions: t.done ? [] : [...(t.metrics?.partitions ?? [])],
          replacements: this.replacements[t.thread] ?? 0,
        })),
    };
  }

  private stopAll(): Promise<void> {
    this.stopped ??= this.stopThreads();
    return this.stopped;
  }

  private async stopThreads(): Promise<void> {
    this.stopping = true;
    if (this.clockTimer !== undefined) clearInterval(this.clockTimer);
    const timeout = this.opts.closeTimeoutMs ?? 30_000;
    await Promise.all(
      this.threads.map(async (t) => {
        if (!t.done) {
          t.done = true;
          t.worker.postMessage({ type: 'close' } satisfies ToWorker);
          const timer = setTimeout(() => this.stopWorker(t), timeout);
          await t.closed;
          clearTimeout(timer);
        } else {
          this.stopWorker(t);
          await t.closed;
        }
      }),
    );
  }

  /** Closes every worker (each commits what it processed). */
  async close(): Promise<void> {
    await this.stopAll();
  }
}

/** Sums counters, merges partitions, tasks and lag; rates add up, latencies are means weighted by rate. */
export function mergeMetrics(snaps: StreamsMetrics[]): StreamsMetrics {
  const sum: TaskMetrics = emptyTaskMetrics();
  let rate = 0;
  let latency = 0;
  let e2eMean = 0;
  let e2eMax = 0;
  for (const s of snaps) {
    for (const k of Object.keys(sum) as (keyof TaskMetrics)[])
      sum[k] = k === 'maxLateness' ? Math.max(sum[k], s[k]) : sum[k] + s[k];
    rate += s.recordsInPerSec;
    latency += s.processLatencyMs * s.recordsInPerSec;
    e2eMean += s.endToEndLatencyMs.mean * s.recordsInPerSec;
    e2eMax = Math.max(e2eMax, s.endToEndLatencyMs.max);
  }
  return {
    ...sum,
    commits: snaps.reduce((n, s) => n + s.commits, 0),
    lastCommitMs: Math.max(0, ...snaps.map((s) => s.lastCommitMs)),
    restoredRecords: snaps.reduce((n, s) => n + s.restoredRecords, 0),
    rebalances: snaps.reduce((n, s) => n + s.rebalances, 0),
    partitions: snaps.flatMap((s) => s.partitions).sort((a, b) => a - b),
    tasks: snaps.flatMap((s) => s.tasks).sort((a, b) => (a.taskId < b.taskId ? -1 : 1)),
    lag: Object.assign({}, ...snaps.map((s) => s.lag)) as Record<string, number>,
    recordsInPerSec: rate,
    processLatencyMs: rate > 0 ? latency / rate : 0,
    endToEndLatencyMs: { mean: rate > 0 ? e2eMean / rate : 0, max: e2eMax },
  };
}
