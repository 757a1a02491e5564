import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Worker } from 'node:worker_threads';
import { channel, invalidArgument, publish, TributaryError } from '../core/index.ts';
import type { Admin, ConsumedRecord, Consumer, LogClient, Producer, TopicPartition } from '../log/index.ts';
import { emptyTaskMetrics, type Node, type OutRecord, type TaskMetrics, type TaskRuntime } from './node.ts';
import type { SourceNode } from './ops.ts';
import { type Serde, Serdes } from './serdes.ts';
import { compileJobSpec } from './spec.ts';
import {
  type AnyStore,
  KeyValueStoreImpl,
  LmdbEnv,
  MemoryBackend,
  type ReadOnlyKeyValueStore,
  type ReadOnlySessionStore,
  type ReadOnlyWindowStore,
  type Session,
  SessionStoreImpl,
  type WindowStoreEntry,
  WindowStoreImpl,
} from './stores.ts';
import { changelogTopic, type EventTimeConfig, StreamTask } from './task.ts';
import {
  loadTopology,
  type NormalizedSource,
  normalizeSource,
  type StoreQuery,
  StreamThreads,
  type ThreadInfo,
  type ThreadProgress,
  type TopologySource,
  type WorkerLog,
} from './threads.ts';
import type { Topology } from './topology.ts';

export type StreamsState = 'CREATED' | 'REBALANCING' | 'RUNNING' | 'PENDING_SHUTDOWN' | 'NOT_RUNNING' | 'ERROR';

export interface StreamsConfig {
  applicationId: string;
  client: LogClient;
  /** 'exactly_once' (default): outputs, changelogs and input offsets commit in one log transaction. */
  processingGuarantee?: 'exactly_once' | 'at_least_once';
  /** How often to commit (default 100 ms under exactly-once, 1000 ms under at-least-once). */
  commitIntervalMs?: number;
  /** Persist stores in LMDB under `<stateDir>/<applicationId>/<partition>`; without it stores live in memory and are rebuilt from changelogs at start. */
  stateDir?: string;
  defaultKeySerde?: Serde<unknown>;
  defaultValueSerde?: Serde<unknown>;
  /** Watermark mode (bounded out-of-orderness, idleness, late records); default is Kafka Streams' stream time. */
  eventTime?: EventTimeConfig;
  pollMs?: number;
  maxPollRecords?: number;
  /** Records that fail to deserialize: 'fail' (default), 'continue' (skip, counted), or send them to a dead-letter topic. */
  deserializationErrors?: 'fail' | 'continue' | { deadLetterTopic: string };
  /**
   * Id of this instance: its transactional id is `<applicationId>-<instanceId>`. Default '0' (a restart fences
   * the crashed run at once); in 'group' mode a random id unless given (instances of a group must differ).
   */
  instanceId?: string;
  /**
   * 'all' (default): this instance runs every task. 'group': instances with the same application id share the
   * tasks through the consumer group; when one dies its tasks move to the others, which restore their state from
   * the changelogs and resume from the last commit.
   */
  partitionAssignment?: 'all' | 'group';
  /** Consumer group session timeout in 'group' mode (how fast a dead instance's tasks move). */
  sessionTimeoutMs?: number;
  /**
   * Worker threads (default 1: one polling loop in this thread). With N > 1 the tasks spread over N worker
   * threads, each running one instance in group mode (`<instanceId>-t<n>`, state under `<stateDir>/t<n>`): the
   * topology must be rebuildable in a worker (`KafkaStreams.fromModule` or `fromJobSpec`) and `workerLog` says how
   * the workers reach the log. See docs/streams.md.
   */
  numThreads?: number;
  /**
   * With numThreads > 1: how the worker threads reach the log. `{ log }` (the LogService behind an embedded
   * client): this instance serves its calls to each worker on a MessagePort (no Kafka protocol, no socket). Or
   * the remote cluster's options (`bootstrapBrokers`, `sasl`): each worker connects to it.
   */
  workerLog?: WorkerLog;
  /**
   * How often LMDB state is checkpointed (default 5000 ms; always on close). State is consistent with any
   * checkpoint: a restart replays the changelog from the checkpoint, so this trades fsyncs for replay length.
   */
  stateCheckpointIntervalMs?: number;
  /** Transaction timeout: how long a dead instance's open transaction blocks read_committed readers. */
  transactionTimeoutMs?: number;
  /** Partitions of repartition and changelog topics (default: the most partitions of any source topic). */
  internalTopicPartitions?: number;
  wallClock?: () => number;
}

export type UncaughtExceptionResponse = 'REPLACE_THREAD' | 'SHUTDOWN_CLIENT';

export interface StreamsMetrics extends TaskMetrics {
  commits: number;
  lastCommitMs: number;
  restoredRecords: number;
  rebalances: number;
  /** Partition numbers whose tasks run on this instance. */
  partitions: number[];
  tasks: { taskId: string; eventTime: number; metrics: TaskMetrics; storeEntries: Record<string, number> }[];
  /** Records not yet consumed per input partition at the last commit (end offset - position). */
  lag: Record<string, number>;
  /** Input records per second over the last commit interval. */
  recordsInPerSec: number;
  /** Mean processing time per input record over the last commit interval (ms). */
  processLatencyMs: number;
  /** Mean and max of (wall clock at processing - record timestamp) over the last commit interval (ms). */
  endToEndLatencyMs: { mean: number; max: number };
  /** With numThreads > 1: each worker thread's id, state and partitions (the figures above merge all threads). */
  threads?: ThreadInfo[];
}

/** A read-only store view whose methods answer asynchronously (they may ask worker threads). */
export type AsyncStore<T> = {
  [M in keyof T]: T[M] extends (...a: infer A) => infer R ? (...a: A) => Promise<R> : never;
};

/** Set by the static factories for the constructor: the topology's rebuildable source. */
let pendingSource: NormalizedSource | undefined;

const chState = channel('streams', 'state');
const chCommit = channel('streams', 'commit');

const tpKey = (topic: string, partition: number): string => `${topic}:${partition}`;

/**
 * Runs a topology on the log, as Kafka Streams' KafkaStreams: one task per partition number (task p reads
 * partition p of every source and repartition topic; all source topics of a job are co-partitioned), one
 * polling loop, and under exactly-once one transaction per commit interval holding the outputs, the changelog
 * writes and the input offsets. Local LMDB state is flushed with a checkpoint of its changelog offsets after
 * each commit, so a restart replays only the changelog tail.
 */
export class KafkaStreams {
  private readonly topology: Topology;
  private readonly config: StreamsConfig;
  private readonly eos: boolean;
  private readonly commitIntervalMs: number;
  private readonly wallClock: () => number;
  private _state: StreamsState = 'CREATED';
  private readonly listeners: ((next: StreamsState, prev: StreamsState) => void)[] = [];
  private exceptionHandler: (err: unknown) => UncaughtExceptionResponse = () => 'SHUTDOWN_CLIENT';
  private admin!: Admin;
  private producer: Producer | undefined;
  private consumer: Consumer | undefined;
  private globalConsumer: Consumer | undefined;
  private readonly taskMap = new Map<number, StreamTask>();
  /** At-least-once: the offset commit in flight, and its failure (thrown by the next commit). */
  private offsetCommit: Promise<void> | undefined;
  private offsetCommitError: unknown;
  /** Tasks of the whole job (one per partition number), wherever they run. */
  private taskCount = 1;
  private readonly envs = new Map<number, LmdbEnv>();
  private readonly globalStores = new Map<string, AnyStore>();
  private readonly globalSources = new Map<string, SourceNode>();
  private out: OutRecord[] = [];
  private positions = new Map<string, bigint>();
  private changelogOffsets = new Map<string, bigint>();
  private partitionCounts = new Map<string, number>();
  private stopping = false;
  private loop: Promise<void> | undefined;
  private lastCommit = 0;
  private dirty = false;
  private commits = 0;
  private lastCommitMs = 0;
  private restoredRecords = 0;
  private lag: Record<string, number> = {};
  private rebalances = 0;
  private lastStateFlush = 0;
  // Per commit interval: input count, processing time, end-to-end latency (reset at each commit).
  private window = { records: 0, processMs: 0, e2eSum: 0, e2eMax: 0, since: 0 };
  private rates = { recordsInPerSec: 0, processLatencyMs: 0, e2eMean: 0, e2eMax: 0 };
  /** Whether the open transaction holds sends or offsets (an empty one is kept open, never ended). */
  private txnUsed = false;
  /** This instance's id: its transactional id is `<applicationId>-<instanceId>`. */
  readonly instanceId: string;
  /** Set when the loop stops because of an error. */
  error: unknown;
  /** numThreads > 1: the worker threads that run the tasks (this instance runs none itself). */
  private readonly threads: StreamThreads | undefined;

  /**
   * A job whose topology is built by a module export (a function returning a Topology, called with `args`): worker
   * threads (numThreads > 1) import the module and call it again, so the topology may hold any functions.
   */
  static async fromModule(
    source: TopologySource & { module: string | URL },
    config: StreamsConfig,
  ): Promise<KafkaStreams> {
    const src = normalizeSource(source);
    const topology = await loadTopology(src);
    pendingSource = src;
    try {
      return new KafkaStreams(topology, config);
    } finally {
      pendingSource = undefined;
    }
  }

  /** A job from a JSON job spec (see compileJobSpec); runs with any numThreads. */
  static fromJobSpec(spec: unknown, config: StreamsConfig): KafkaStreams {
    const src = normalizeSource({ jobSpec: spec });
    const topology = compileJobSpec(spec);
    pendingSource = src;
    try {
      return new KafkaStreams(topology, config);
    } finally {
      pendingSource = undefined;
    }
  }

  constructor(topology: Topology, config: StreamsConfig) {
    if (typeof config.applicationId !== 'string' || !/^[A-Za-z0-9._-]+$/.test(config.applicationId))
      throw invalidArgument(
        'applicationId',
        'a non-empty name of letters, digits, ".", "_" or "-"',
        config.applicationId,
      );
    if (config.client === undefined) throw invalidArgument('client', 'a LogClient (embedded or remote)');
    const source = pendingSource;
    pendingSource = undefined;
    const n = config.numThreads ?? 1;
    if (!Number.isInteger(n) || n < 1 || n > 256)
      throw invalidArgument('numThreads', 'an integer from 1 to 256', config.numThreads);
    if (n > 1) {
      if (source === undefined)
        throw new TributaryError(
          'UNSUPPORTED',
          `numThreads: ${n} runs the tasks in worker threads, which must rebuild the topology, and a Topology object ` +
            'holds functions of this thread that cannot be sent to them. Build the job with ' +
            "`await KafkaStreams.fromModule({ module: new URL('./my-topology.ts', import.meta.url), export: 'build', " +
            'args: [...] }, config)` (the export returns the Topology) or `KafkaStreams.fromJobSpec(spec, config)`; or ' +
            "run several instances with partitionAssignment: 'group'",
          { field: 'numThreads' },
        );
      if (config.workerLog === undefined)
        throw invalidArgument(
          'workerLog',
          `how the ${n} worker threads reach the log: { log } (the LogService of the embedded client, served to them ` +
            'on MessagePorts) or { bootstrapBrokers } of the remote cluster',
        );
      for (const f of ['defaultKeySerde', 'defaultValueSerde'] as const)
        if (config[f] !== undefined)
          throw new TributaryError(
            'UNSUPPORTED',
            `${f}: a serde cannot be sent to worker threads (numThreads: ${n}); give serdes in the topology instead`,
            { field: f },
          );
    }
    this.topology = topology;
    this.config = config;
    this.eos = (config.processingGuarantee ?? 'exactly_once') === 'exactly_once';
    this.commitIntervalMs = config.commitIntervalMs ?? (this.eos ? 100 : 1000);
    this.wallClock = config.wallClock ?? Date.now;
    // Alone, a fixed id lets a restart fence its crashed predecessor at once; in a group, instances must differ.
    this.instanceId = config.instanceId ?? (config.partitionAssignment === 'group' ? randomUUID() : '0');
    if (n > 1)
      this.threads = new StreamThreads(
        {
          applicationId: config.applicationId,
          setState: (next) => this.setState(next),
          state: () => this._state,
          handle: (err) => this.exceptionHandler(err),
          failed: (err) => {
            this.error ??= err;
          },
        },
        {
          numThreads: n,
          source: source as NormalizedSource,
          workerLog: config.workerLog as WorkerLog,
          wallClock: config.wallClock,
          config: {
            applicationId: config.applicationId,
            instanceId: this.instanceId,
            ...pick(config, [
              'processingGuarantee',
              'commitIntervalMs',
              'stateDir',
              'eventTime',
              'pollMs',
              'maxPollRecords',
              'deserializationErrors',
              'sessionTimeoutMs',
              'stateCheckpointIntervalMs',
              'transactionTimeoutMs',
              'internalTopicPartitions',
            ]),
          },
        },
      );
  }

  get state(): StreamsState {
    return this._state;
  }
  onStateChange(listener: (next: StreamsState, prev: StreamsState) => void): void {
    this.listeners.push(listener);
  }
  setUncaughtExceptionHandler(handler: (err: unknown) => UncaughtExceptionResponse): void {
    this.exceptionHandler = handler;
  }
  private setState(next: StreamsState): void {
    const prev = this._state;
    if (prev === next) return;
    this._state = next;
    publish(chState, () => ({ applicationId: this.config.applicationId, state: next, previous: prev }));
    for (const l of this.listeners) l(next, prev);
  }

  /** Creates internal topics, restores state, and starts processing. Resolves once RUNNING. */
  async start(): Promise<void> {
    if (this._state !== 'CREATED')
      throw new TributaryError('CONFLICT', `start(): the job is ${this._state}, not CREATED`);
    this.setState('REBALANCING');
    if (this.threads !== undefined) return this.startThreads(this.threads);
    try {
      await this.setup();
    } catch (err) {
      this.error = err;
      this.setState('ERROR');
      await this.shutdownClients();
      throw err;
    }
    this.setState('RUNNING');
    this.loop = this.run();
  }

  /** numThreads > 1: creates the internal topics here (once, before the workers race to), then starts the workers. */
  private async startThreads(threads: StreamThreads): Promise<void> {
    try {
      this.admin = this.config.client.admin();
      await this.ensureTopics();
      await threads.start();
    } catch (err) {
      this.error = err;
      this.setState('ERROR');
      await threads.close().catch(() => {});
      await this.admin?.close().catch(() => {});
      throw err;
    }
  }

  /** numThreads > 1: the live worker threads. */
  workerThreads(): Worker[] {
    return this.threads?.workers() ?? [];
  }

  /** This instance's consumer positions and whether all it processed is committed (reported by worker threads). */
  progress(): ThreadProgress {
    const c = this.consumer;
    const positions: ThreadProgress['positions'] = [];
    if (c === undefined || this._state !== 'RUNNING') return { state: this._state, positions, idle: false };
    const assigned = c.assignment();
    // A new assignment not taken over yet: its positions say nothing about committed work.
    if (this.groupMode && this.assignmentChanged(assigned)) return { state: this._state, positions, idle: false };
    for (const a of assigned) positions.push([a.topic, a.partition, String(c.position(a) ?? 0n)]);
    return { state: this._state, positions, idle: this.out.length === 0 && !this.dirty };
  }

  private internal(name: string): string {
    return `${this.config.applicationId}-${name}`;
  }

  /** Checks the source topics and creates the missing internal topics; returns the task count. */
  private async ensureTopics(): Promise<number> {
    const app = this.config.applicationId;
    const sources = this.topology.sourceTopics();
    let n = 0;
    for (const t of sources) {
      const d = await this.describe(t);
      this.partitionCounts.set(t, d);
      n = Math.max(n, d);
    }
    n = this.config.internalTopicPartitions ?? n;
    if (n < 1) throw invalidArgument('topology', 'at least one source topic');
    const existing = new Set(await this.admin.listTopics());
    const ensure = async (topic: string, config?: Parameters<Admin['createTopic']>[1]['config']): Promise<void> => {
      if (!existing.has(topic)) {
        try {
          await this.admin.createTopic(topic, { partitions: n, ...(config === undefined ? {} : { config }) });
        } catch (err) {
          // Another instance may have created it meanwhile (remote clients report that in their own error type).
          const exists = await this.admin.describeTopic(topic).then(
            () => true,
            () => false,
          );
          if (!exists) throw err;
        }
      }
      this.partitionCounts.set(topic, await this.describe(topic));
    };
    for (const t of this.topology.internalTopics()) await ensure(this.internal(t));
    for (const s of this.topology.changelogStores())
      await ensure(changelogTopic(app, s.name), { 'cleanup.policy': 'compact' });
    for (const g of this.topology.globals) this.partitionCounts.set(g.topic, await this.describe(g.topic));
    return n;
  }

  private async setup(): Promise<void> {
    const app = this.config.applicationId;
    const client = this.config.client;
    this.admin = client.admin();
    const n = await this.ensureTopics();
    this.taskCount = n;

    // The producer first: under exactly-once, initializing it fences a previous incarnation and aborts its
    // open transaction, so that the changelogs read below end at a stable offset.
    this.producer = client.producer(
      this.eos
        ? {
            transactionalId: `${app}-${this.instanceId}`,
            idempotent: true,
            ...(this.config.transactionTimeoutMs === undefined
              ? {}
              : { transactionTimeoutMs: this.config.transactionTimeoutMs }),
          }
        : { idempotent: true },
    );
    if (this.eos) {
      await this.producer.beginTransaction();
      this.txnUsed = false;
    }

    await this.setupGlobals();
    this.consumer = client.consumer({
      groupId: app,
      isolation: 'read_committed',
      autoOffsetReset: 'earliest',
      autoCommit: false,
      ...(this.config.maxPollRecords === undefined ? {} : { maxPollRecords: this.config.maxPollRecords }),
      ...(this.config.sessionTimeoutMs === undefined ? {} : { sessionTimeoutMs: this.config.sessionTimeoutMs }),
    });
    if (this.groupMode) {
      // Tasks are created when the group assigns partitions (the first poll joins the group).
      await this.consumer.subscribe(this.inputTopics());
    } else {
      const all = Array.from({ length: n }, (_, p) => p);
      await this.createTasks(all);
      const assignment: TopicPartition[] = [];
      for (const t of this.inputTopics())
        for (let p = 0; p < (this.partitionCounts.get(t) ?? 0); p++) assignment.push({ topic: t, partition: p });
      this.consumer.assign(assignment);
      await this.seekCommitted(assignment);
    }
    this.lastCommit = this.wallClock();
    this.window.since = this.lastCommit;
  }

  private get groupMode(): boolean {
    return this.config.partitionAssignment === 'group';
  }
  private get tasks(): StreamTask[] {
    return [...this.taskMap.values()];
  }
  private inputTopics(): string[] {
    return [...this.topology.sourceTopics(), ...this.topology.internalTopics().map((t) => this.internal(t))];
  }

  /** Seeks every assigned partition to its committed offset, or to its start when nothing was committed. */
  private async seekCommitted(assignment: TopicPartition[]): Promise<void> {
    const committed = new Map(
      (await this.admin.fetchOffsets(this.config.applicationId)).map((c) => [tpKey(c.topic, c.partition), c.offset]),
    );
    const starts = new Map<string, bigint>();
    for (const topic of new Set(assignment.map((a) => a.topic)))
      for (const p of (await this.admin.describeTopic(topic)).partitions)
        starts.set(tpKey(topic, p.partition), p.logStartOffset);
    for (const a of assignment) {
      const k = tpKey(a.topic, a.partition);
      const c = committed.get(k);
      (this.consumer as Consumer).seek(a, c ?? starts.get(k) ?? 0n);
      if (c !== undefined) this.positions.set(k, c);
    }
  }

  /** Creates, restores and initializes the tasks for these partition numbers. */
  private async createTasks(partitions: number[]): Promise<void> {
    const app = this.config.applicationId;
    const onDeser = this.deserializationHandler();
    for (const p of partitions) {
      let env: LmdbEnv | undefined;
      if (this.config.stateDir !== undefined) {
        const dir = path.join(this.config.stateDir, app, String(p));
        fs.mkdirSync(dir, { recursive: true });
        env = new LmdbEnv(dir);
        this.envs.set(p, env);
      }
      const task = new StreamTask({
        applicationId: app,
        taskId: `0_${p}`,
        partition: p,
        topology: this.topology,
        eventTime: this.config.eventTime,
        defaultKeySerde: this.config.defaultKeySerde ?? Serdes.JSON(),
        defaultValueSerde: this.config.defaultValueSerde ?? Serdes.JSON(),
        emit: (o) => {
          this.out.push(o);
          this.dirty = true;
        },
        wallClock: this.wallClock,
        ...(env === undefined ? {} : { backendFor: (spec) => env.backend(spec.name) }),
        sharedStores: this.globalStores,
        partitionCount: (t) => this.partitionCounts.get(t),
        taskCount: this.taskCount,
        watermarkIntervalMs: 200,
        ...(onDeser === undefined ? {} : { onDeserializationError: onDeser }),
      });
      this.taskMap.set(p, task);
      await this.restore(task, p, env);
      task.initialize();
      for (const t of task.inputTopics()) if ((this.partitionCounts.get(t) ?? 0) > p) task.registerPartition(t, p);
    }
    // Restoring read changelog records, not new output.
    this.out = [];
    // restore() checkpointed every store: the next checkpoint is due an interval from now.
    this.lastStateFlush = this.wallClock();
  }

  private async closeTasks(): Promise<void> {
    for (const t of this.taskMap.values()) t.close();
    for (const e of this.envs.values()) await e.close();
    this.taskMap.clear();
    this.envs.clear();
  }

  /**
   * The group moved partitions: drop uncommitted work (abort the transaction, so nothing this instance did since
   * its last commit is ever visible), then rebuild tasks for the new assignment from committed state.
   */
  private async rebalance(assigned: TopicPartition[]): Promise<void> {
    this.setState('REBALANCING');
    this.rebalances++;
    await this.settleOffsetCommit().catch(() => {}); // a failed commit only means more records read again
    await this.abortWork();
    await this.closeTasks();
    this.out = [];
    this.positions.clear();
    this.changelogOffsets.clear();
    this.dirty = false;
    const parts = [...new Set(assigned.map((a) => a.partition))].sort((a, b) => a - b);
    await this.createTasks(parts);
    await this.seekCommitted(assigned);
    this.setState('RUNNING');
  }

  /** Drops what was done since the last commit: aborts the transaction if it holds anything. */
  private async abortWork(): Promise<void> {
    if (!this.eos || !this.txnUsed || this.producer === undefined) return;
    await this.producer.abortTransaction();
    await this.producer.beginTransaction();
    this.txnUsed = false;
  }

  private assignmentChanged(assigned: TopicPartition[]): boolean {
    const want = new Set(assigned.map((a) => a.partition));
    if (want.size !== this.taskMap.size) return true;
    for (const p of want) if (!this.taskMap.has(p)) return true;
    return false;
  }

  private async describe(topic: string): Promise<number> {
    try {
      return (await this.admin.describeTopic(topic)).partitions.length;
    } catch (err) {
      if (err instanceof TributaryError && err.code === 'NOT_FOUND')
        throw new TributaryError(
          'NOT_FOUND',
          `topic ${JSON.stringify(topic)} read by the topology does not exist; create it first`,
          {
            cause: err,
          },
        );
      throw err;
    }
  }

  private deserializationHandler(): ConstructorParameters<typeof StreamTask>[0]['onDeserializationError'] {
    const h = this.config.deserializationErrors ?? 'fail';
    if (h === 'fail') return undefined;
    if (h === 'continue') return () => 'continue';
    return (error, r) => {
      this.out.push({
        topic: h.deadLetterTopic,
        key: r.key,
        value: r.value,
        timestamp: r.timestamp,
        headers: [
          ...r.headers,
          ['tributary.error', Buffer.from(error instanceof Error ? error.message : String(error))],
          ['tributary.source', Buffer.from(`${r.topic}:${r.partition}:${r.offset}`)],
        ],
      });
      return 'continue';
    };
  }

  /** Reads a changelog partition from `from` to its end into the task's store. */
  private async restore(task: StreamTask, p: number, env: LmdbEnv | undefined): Promise<void> {
    const app = this.config.applicationId;
    let checkpoint = env?.checkpoint();
    const stores = this.topology.changelogStores();
    if (env !== undefined && checkpoint === undefined) env.wipe();
    const consumer = this.config.client.consumer({ isolation: 'read_committed', autoOffsetReset: 'earliest' });
    try {
      for (const s of stores) {
        const topic = changelogTopic(app, s.name);
        const desc = await this.admin.describeTopic(topic);
        const end = desc.partitions.find((x) => x.partition === p)?.highWatermark ?? 0n;
        const startRaw = checkpoint?.[tpKey(topic, p)];
        const start = startRaw === undefined ? 0n : BigInt(startRaw);
        this.changelogOffsets.set(tpKey(topic, p), end);
        if (start >= end) continue;
        consumer.assign([{ topic, partition: p }]);
        consumer.seek({ topic, partition: p }, start);
        for (let idle = 0; idle < 3; ) {
          const recs = await consumer.poll(20);
          if (recs.length === 0) idle++;
          else idle = 0;
          for (const r of recs) {
            task.restore(s.name, r.key, r.value);
            this.restoredRecords++;
          }
          const pos = consumer.position({ topic, partition: p });
          if (pos !== undefined && pos >= end) break;
        }
      }
    } finally {
      await consumer.close();
    }
    if (env !== undefined) {
      checkpoint = Object.fromEntries(
        [...this.changelogOffsets].filter(([k]) => k.endsWith(`:${p}`)).map(([k, v]) => [k, String(v)]),
      );
      env.flush(checkpoint);
    }
  }

  private async setupGlobals(): Promise<void> {
    if (this.topology.globals.length === 0) return;
    const runtime = {
      taskId: 'global',
      applicationId: this.config.applicationId,
      partition: -1,
      metrics: { recordsIn: 0, recordsOut: 0, droppedRecords: 0, lateRecords: 0, maxLateness: 0, skippedRecords: 0 },
      watermarkMode: false,
      defaultKeySerde: this.config.defaultKeySerde ?? Serdes.JSON(),
      defaultValueSerde: this.config.defaultValueSerde ?? Serdes.JSON(),
      store: (name: string) => this.globalStores.get(name) as AnyStore,
      emit: () => {},
      wallClock: this.wallClock,
      currentRecord: () => null,
      partitionCount: () => undefined,
      wake: () => {},
    } satisfies TaskRuntime;
    const parts: TopicPartition[] = [];
    for (const g of this.topology.globals) {
      this.globalStores.set(g.storeName, new KeyValueStoreImpl(g.storeName, new MemoryBackend(), null));
      const node = g.create() as SourceNode;
      const init = (n: Node): void => {
        n.init(runtime);
        for (const c of n.children) init(c);
      };
      init(node);
      this.globalSources.set(g.topic, node);
      for (let p = 0; p < (this.partitionCounts.get(g.topic) ?? 0); p++) parts.push({ topic: g.topic, partition: p });
    }
    this.globalConsumer = this.config.client.consumer({ isolation: 'read_committed', autoOffsetReset: 'earliest' });
    this.globalConsumer.assign(parts);
    // Bootstrap: read every global topic to its current end before processing starts.
    const ends = new Map<string, bigint>();
    for (const g of this.topology.globals)
      for (const p of (await this.admin.describeTopic(g.topic)).partitions)
        ends.set(tpKey(g.topic, p.partition), p.highWatermark);
    for (let idle = 0; idle < 3; ) {
      const n = await this.pollGlobals(20);
      idle = n === 0 ? idle + 1 : 0;
      if (
        [...ends].every(([k, end]) => {
          const [t, p] = [k.slice(0, k.lastIndexOf(':')), Number(k.slice(k.lastIndexOf(':') + 1))];
          return (this.globalConsumer?.position({ topic: t, partition: p }) ?? 0n) >= end;
        })
      )
        break;
    }
  }

  private async pollGlobals(timeoutMs: number): Promise<number> {
    if (this.globalConsumer === undefined) return 0;
    const recs = await this.globalConsumer.poll(timeoutMs);
    for (const r of recs) {
      const src = this.globalSources.get(r.topic);
      if (src === undefined) continue;
      src.process(src.extract(r.topic, r.partition, r.key, r.value, Number(r.timestamp), r.headers));
    }
    return recs.length;
  }

  private async run(): Promise<void> {
    const pollMs = this.config.pollMs ?? 20;
    while (!this.stopping) {
      try {
        const consumer = this.consumer as Consumer;
        const recs = await consumer.poll(pollMs);
        if (this.groupMode) {
          const assigned = consumer.assignment();
          if (this.assignmentChanged(assigned)) {
            // Records polled under the old assignment are read again after seeking to committed offsets.
            await this.rebalance(assigned);
            continue;
          }
        }
        const t0 = performance.now();
        const wall = this.wallClock();
        let e2eSum = 0;
        let e2eMax = this.window.e2eMax;
        // The position of each partition is recorded once per run of its records (a poll returns them grouped by
        // partition), not per record: a key string, a BigInt and a Map write per record were ~6% of a job's time.
        let last: ConsumedRecord | undefined;
        try {
          for (const r of recs) {
            if (last !== undefined && (r.partition !== last.partition || r.topic !== last.topic))
              this.positions.set(tpKey(last.topic, last.partition), last.offset + 1n);
            const ts = Number(r.timestamp);
            const e2e = wall - ts;
            e2eSum += e2e;
            if (e2e > e2eMax) e2eMax = e2e;
            const task = this.taskMap.get(r.partition);
            if (task === undefined)
              throw new TributaryError('INTERNAL', `no task for partition ${r.partition} of ${r.topic}`);
            task.process(r.topic, r.partition, Number(r.offset), r.key, r.value, ts, r.headers);
            last = r;
          }
        } finally {
          if (last !== undefined) {
            this.positions.set(tpKey(last.topic, last.partition), last.offset + 1n);
            this.dirty = true;
          }
          this.window.e2eSum += e2eSum;
          this.window.e2eMax = e2eMax;
        }
        this.window.records += recs.length;
        this.window.processMs += performance.now() - t0;
        for (const t of this.tasks) t.advanceWallClock();
        // Watermarks cross repartition topics as marker records, after the records they follow.
        for (const t of this.tasks)
          for (const m of t.watermarkMarkers()) {
            this.out.push(m);
            this.dirty = true; // under exactly-once, readers see the markers once committed
          }
        if (this.globalConsumer !== undefined) await this.pollGlobals(0);
        if (this.out.length > 0) await this.sendOutputs();
        if (this.dirty && this.wallClock() - this.lastCommit >= this.commitIntervalMs) await this.commit();
      } catch (err) {
        if (this.stopping) break;
        const response = this.exceptionHandler(err);
        publish(channel('streams', 'error'), () => ({
          applicationId: this.config.applicationId,
          error: err,
          response,
        }));
        if (response === 'REPLACE_THREAD') {
          try {
            await this.replaceThread();
            continue;
          } catch (err2) {
            this.error = err2;
          }
        } else this.error = err;
        this.setState('ERROR');
        await this.shutdownClients();
        return;
      }
    }
  }

  /** Drops uncommitted work and rebuilds tasks from the last commit (the 'replace thread' response). */
  private async replaceThread(): Promise<void> {
    this.setState('REBALANCING');
    await this.settleOffsetCommit().catch(() => {});
    await this.abortWork().catch(() => {});
    await this.shutdownClients();
    await this.closeTasks();
    this.out = [];
    this.positions.clear();
    this.changelogOffsets.clear();
    this.globalStores.clear();
    this.globalSources.clear();
    await this.setup();
    this.setState('RUNNING');
  }

  private async sendOutputs(): Promise<void> {
    const batch = this.out;
    this.out = [];
    const producer = this.producer as Producer;
    this.txnUsed = true;
    // Output records are producer records already (an undefined partition lets the producer choose).
    const meta = await producer.send(batch);
    for (const m of meta)
      if (m.topic.endsWith('-changelog')) {
        const k = tpKey(m.topic, m.partition);
        const next = m.offset + 1n;
        if (next > (this.changelogOffsets.get(k) ?? 0n)) this.changelogOffsets.set(k, next);
      }
  }

  private async settleAsync(): Promise<void> {
    while (this.tasks.some((t) => t.pendingAsync() > 0)) {
      await new Promise((r) => setTimeout(r, 1));
      for (const t of this.tasks) t.drainAsync();
    }
    for (const t of this.tasks) t.drainAsync();
  }

  private checkpointState(): void {
    this.envs.forEach((env, p) => {
      const cp: Record<string, string> = {};
      for (const [k, v] of this.changelogOffsets) if (k.endsWith(`:${p}`)) cp[k] = String(v);
      env.flush(cp);
    });
  }

  /** Commits outputs, changelogs and input offsets (one transaction under exactly-once), then checkpoints LMDB. */
  async commit(final = false): Promise<void> {
    const started = this.wallClock();
    await this.settleAsync();
    for (const t of this.tasks) t.flushCaches();
    for (const t of this.tasks) t.flushChangelog();
    if (this.out.length > 0) await this.sendOutputs();
    const producer = this.producer as Producer;
    const offsets = [...this.positions].map(([k, offset]) => {
      const i = k.lastIndexOf(':');
      return { topic: k.slice(0, i), partition: Number(k.slice(i + 1)), offset };
    });
    if (this.eos) {
      if (offsets.length > 0) {
        await producer.sendOffsetsToTransaction(this.config.applicationId, offsets);
        this.txnUsed = true;
      }
      // An empty transaction stays open for the next interval (nothing to commit).
      if (this.txnUsed) await producer.commitTransaction();
    } else {
      await producer.flush();
      // At-least-once: the offset commit (durable once the group's offset file is fsynced) runs while processing
      // goes on; the next commit, a state checkpoint and close wait for it, and report its failure.
      await this.settleOffsetCommit();
      if (offsets.length > 0)
        this.offsetCommit = (this.consumer as Consumer).commit(offsets).catch((err: unknown) => {
          this.offsetCommitError = err;
        });
      if (final) await this.settleOffsetCommit();
    }
    // The stores now match committed offsets: persist them with the changelog positions they reflect.
    if (final || this.wallClock() - this.lastStateFlush >= (this.config.stateCheckpointIntervalMs ?? 5000)) {
      await this.settleOffsetCommit();
      this.lastStateFlush = this.wallClock();
      this.checkpointState();
    }
    if (this.eos && this.txnUsed) {
      await producer.beginTransaction();
      this.txnUsed = false;
    }
    this.dirty = false;
    this.commits++;
    this.lastCommit = this.wallClock();
    this.lastCommitMs = this.lastCommit - started;
    const w = this.window;
    const elapsed = this.lastCommit - w.since;
    this.rates = {
      recordsInPerSec: elapsed > 0 ? (w.records * 1000) / elapsed : 0,
      processLatencyMs: w.records > 0 ? w.processMs / w.records : 0,
      e2eMean: w.records > 0 ? w.e2eSum / w.records : 0,
      e2eMax: w.e2eMax,
    };
    this.window = { records: 0, processMs: 0, e2eSum: 0, e2eMax: 0, since: this.lastCommit };
    publish(chCommit, () => ({ applicationId: this.config.applicationId, offsets, durationMs: this.lastCommitMs }));
    await this.updateLag();
  }

  private async settleOffsetCommit(): Promise<void> {
    const pending = this.offsetCommit;
    this.offsetCommit = undefined;
    if (pending !== undefined) await pending;
    const err = this.offsetCommitError;
    if (err !== undefined) {
      this.offsetCommitError = undefined;
      throw err;
    }
  }

  private async updateLag(): Promise<void> {
    if (this.commits % 10 !== 1) return;
    const lag: Record<string, number> = {};
    for (const t of this.inputTopics()) {
      try {
        for (const p of (await this.admin.describeTopic(t)).partitions) {
          const k = tpKey(t, p.partition);
          lag[k] = Number(p.highWatermark - (this.positions.get(k) ?? 0n));
        }
      } catch {
        // a topic deleted under us: no lag figure
      }
    }
    this.lag = lag;
  }

  /**
   * Waits until every input partition's committed position reached the end of the topic as it was when called
   * (for tests, benchmarks and batch-style runs).
   */
  async waitUntilProcessed(timeoutMs = 60_000): Promise<void> {
    const targets = new Map<string, bigint>();
    for (const t of this.topology.sourceTopics())
      for (const p of (await this.admin.describeTopic(t)).partitions)
        targets.set(tpKey(t, p.partition), p.highWatermark);
    const deadline = Date.now() + timeoutMs;
    if (this.threads !== undefined) return this.waitThreads(this.threads, targets, deadline, timeoutMs);
    for (;;) {
      if (this._state === 'ERROR')
        throw new TributaryError('UNAVAILABLE', 'the job stopped with an error', { cause: this.error });
      const consumer = this.consumer;
      if (this._state !== 'RUNNING' && this._state !== 'REBALANCING')
        throw new TributaryError('UNAVAILABLE', `waitUntilProcessed: the job is ${this._state}`);
      if (consumer === undefined || this._state === 'REBALANCING' || this.taskMap.size === 0) {
        if (Date.now() > deadline)
          throw new TributaryError('TIMEOUT', `waitUntilProcessed: still rebalancing after ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 10));
        continue;
      }
      // Positions move past transaction markers, which committed record offsets never reach.
      const at = (topic: string, partition: number): bigint => consumer.position({ topic, partition }) ?? 0n;
      let done = [...targets].every(([k, end]) => {
        const i = k.lastIndexOf(':');
        return at(k.slice(0, i), Number(k.slice(i + 1))) >= end;
      });
      // Repartition topics must be drained too: their end moves while upstream tasks run.
      if (done)
        for (const t of this.topology.internalTopics()) {
          const topic = this.internal(t);
          for (const p of (await this.admin.describeTopic(topic)).partitions)
            if (at(topic, p.partition) < p.highWatermark) done = false;
        }
      if (done && this.out.length === 0 && !this.dirty) return;
      if (Date.now() > deadline)
        throw new TributaryError('TIMEOUT', `waitUntilProcessed: input not processed within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** waitUntilProcessed with numThreads > 1: every partition's owner thread reports its position past the end. */
  private async waitThreads(
    threads: StreamThreads,
    targets: Map<string, bigint>,
    deadline: number,
    timeoutMs: number,
  ): Promise<void> {
    for (;;) {
      if (this._state === 'ERROR')
        throw new TributaryError('UNAVAILABLE', 'the job stopped with an error', { cause: this.error });
      if (this._state !== 'RUNNING' && this._state !== 'REBALANCING')
        throw new TributaryError('UNAVAILABLE', `waitUntilProcessed: the job is ${this._state}`);
      if (this._state === 'RUNNING') {
        const progress = await threads.progress();
        const at = new Map<string, bigint>();
        let idle = progress.length > 0;
        for (const p of progress) {
          if (!p.idle || p.state !== 'RUNNING') idle = false;
          for (const [t, part, pos] of p.positions) {
            const k = tpKey(t, part);
            const v = BigInt(pos);
            if (v > (at.get(k) ?? -1n)) at.set(k, v);
          }
        }
        let done = idle && [...targets].every(([k, end]) => (at.get(k) ?? -1n) >= end);
        if (done)
          for (const t of this.topology.internalTopics()) {
            const topic = this.internal(t);
            for (const p of (await this.admin.describeTopic(topic)).partitions)
              if ((at.get(tpKey(topic, p.partition)) ?? -1n) < p.highWatermark) done = false;
          }
        if (done) return;
      }
      if (Date.now() > deadline)
        throw new TributaryError('TIMEOUT', `waitUntilProcessed: input not processed within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  private async shutdownClients(): Promise<void> {
    await this.consumer?.close().catch(() => {});
    await this.globalConsumer?.close().catch(() => {});
    await this.producer?.close().catch(() => {});
    this.consumer = undefined;
    this.globalConsumer = undefined;
    this.producer = undefined;
  }

  /** Commits what was processed and stops. */
  async close(): Promise<void> {
    if (this._state === 'NOT_RUNNING') return;
    if (this.threads !== undefined) {
      this.setState('PENDING_SHUTDOWN');
      await this.threads.close().catch((err: unknown) => {
        this.error ??= err;
      });
      await this.admin?.close().catch(() => {});
      this.setState(this.error === undefined ? 'NOT_RUNNING' : 'ERROR');
      return;
    }
    const wasRunning = this._state === 'RUNNING';
    this.setState('PENDING_SHUTDOWN');
    this.stopping = true;
    await this.loop;
    if (wasRunning && this.producer !== undefined) {
      try {
        await this.commit(true);
        await this.abortWork().catch(() => {});
      } catch (err) {
        this.error = err;
      }
    }
    await this.shutdownClients();
    await this.closeTasks();
    await this.admin?.close().catch(() => {});
    this.setState(this.error === undefined ? 'NOT_RUNNING' : 'ERROR');
  }

  /** Metrics of this instance; with numThreads > 1, all threads merged (as their last reports, every 200 ms). */
  metrics(): StreamsMetrics {
    if (this.threads !== undefined) return this.threads.metrics();
    const sum: TaskMetrics = emptyTaskMetrics();
    const tasks = this.tasks.map((t) => {
      for (const k of Object.keys(sum) as (keyof TaskMetrics)[])
        sum[k] = k === 'maxLateness' ? Math.max(sum[k], t.metrics[k]) : sum[k] + t.metrics[k];
      const storeEntries: Record<string, number> = {};
      for (const [n, s] of t.stores) storeEntries[n] = s.approximateNumEntries();
      return { taskId: t.taskId, eventTime: t.currentTime(), metrics: { ...t.metrics }, storeEntries };
    });
    return {
      ...sum,
      commits: this.commits,
      lastCommitMs: this.lastCommitMs,
      restoredRecords: this.restoredRecords,
      rebalances: this.rebalances,
      partitions: [...this.taskMap.keys()].sort((a, b) => a - b),
      tasks,
      lag: { ...this.lag },
      recordsInPerSec: this.rates.recordsInPerSec,
      processLatencyMs: this.rates.processLatencyMs,
      endToEndLatencyMs: { mean: this.rates.e2eMean, max: this.rates.e2eMax },
    };
  }

  // ---- interactive queries: a read-only view over the store in every task of this instance ----

  private storesNamed(name: string): AnyStore[] {
    if (this.threads !== undefined)
      throw new TributaryError(
        'UNSUPPORTED',
        `store ${name}: with numThreads: ${this.config.numThreads} the stores live in worker threads and cannot be read ` +
          'synchronously; use keyValueStoreAsync / windowStoreAsync / sessionStoreAsync (they ask every thread)',
        { field: 'numThreads' },
      );
    const g = this.globalStores.get(name);
    if (g !== undefined) return [g];
    const out = this.tasks.map((t) => t.store(name));
    if (out.length === 0)
      throw new TributaryError('UNAVAILABLE', `store ${name} is not available: the job is ${this._state}`);
    return out;
  }
  keyValueStore<K, V>(name: string): ReadOnlyKeyValueStore<K, V> {
    const stores = this.storesNamed(name);
    if (!stores.every((s) => s instanceof KeyValueStoreImpl))
      throw invalidArgument('store', `a key-value store (${name} is not)`);
    const kv = stores as KeyValueStoreImpl<K, V>[];
    const sorted = (rows: [K, V][]) => rows.sort((a, b) => (JSON.stringify(a[0]) < JSON.stringify(b[0]) ? -1 : 1));
    return {
      get: (key) => {
        for (const s of kv) {
          const v = s.get(key);
          if (v !== null) return v;
        }
        return null;
      },
      range: (from, to) => sorted(kv.flatMap((s) => s.range(from, to))),
      all: () => sorted(kv.flatMap((s) => s.all())),
      approximateNumEntries: () => kv.reduce((n, s) => n + s.approximateNumEntries(), 0),
    };
  }
  windowStore<K, V>(name: string): ReadOnlyWindowStore<K, V> {
    const stores = this.storesNamed(name);
    if (!stores.every((s) => s instanceof WindowStoreImpl))
      throw invalidArgument('store', `a window store (${name} is not)`);
    const ws = stores as WindowStoreImpl<K, V>[];
    return {
      fetch: (key, start) => {
        for (const s of ws) {
          const v = s.fetch(key, start);
          if (v !== null) return v;
        }
        return null;
      },
      fetchRange: (key, from, to) =>
        ws.flatMap((s) => s.fetchRange(key, from, to)).sort((a: WindowStoreEntry<V>, b) => a.start - b.start),
      all: () => ws.flatMap((s) => s.all()),
    };
  }
  sessionStore<K, V>(name: string): ReadOnlySessionStore<K, V> {
    const stores = this.storesNamed(name);
    if (!stores.every((s) => s instanceof SessionStoreImpl))
      throw invalidArgument('store', `a session store (${name} is not)`);
    const ss = stores as SessionStoreImpl<K, V>[];
    const byStart = (a: Session<K, V>, b: Session<K, V>) => a.start - b.start;
    return {
      findSessions: (key, e, l) => ss.flatMap((s) => s.findSessions(key, e, l)).sort(byStart),
      fetch: (key) => ss.flatMap((s) => s.fetch(key)).sort(byStart),
      all: () => ss.flatMap((s) => s.all()),
    };
  }

  // ---- the same queries answered asynchronously: with numThreads > 1 every worker thread answers for its tasks ----

  private ask(kind: StoreQuery['kind'], store: string): (method: string, args: unknown[]) => Promise<unknown[]> {
    const threads = this.threads;
    if (threads !== undefined) return (method, args) => threads.query({ kind, store, method, args });
    return async (method, args) => {
      const view = (kind === 'keyValue'
        ? this.keyValueStore(store)
        : kind === 'window'
          ? this.windowStore(store)
          : this.sessionStore(store)) as unknown as Record<string, (...a: unknown[]) => unknown>;
      return [(view[method] as (...a: unknown[]) => unknown)(...args)];
    };
  }
  keyValueStoreAsync<K, V>(name: string): AsyncStore<ReadOnlyKeyValueStore<K, V>> {
    const q = this.ask('keyValue', name);
    const rows = async (method: string, args: unknown[]) =>
      ((await q(method, args)) as [K, V][][])
        .flat()
        .sort((a, b) => (JSON.stringify(a[0]) < JSON.stringify(b[0]) ? -1 : 1));
    return {
      get: async (key) => firstFound((await q('get', [key])) as (V | null)[]),
      range: (from, to) => rows('range', [from, to]),
      all: () => rows('all', []),
      approximateNumEntries: async () =>
        ((await q('approximateNumEntries', [])) as number[]).reduce((a, b) => a + b, 0),
    };
  }
  windowStoreAsync<K, V>(name: string): AsyncStore<ReadOnlyWindowStore<K, V>> {
    const q = this.ask('window', name);
    return {
      fetch: async (key, start) => firstFound((await q('fetch', [key, start])) as (V | null)[]),
      fetchRange: async (key, from, to) =>
        ((await q('fetchRange', [key, from, to])) as WindowStoreEntry<V>[][]).flat().sort((a, b) => a.start - b.start),
      all: async () => ((await q('all', [])) as { key: K; start: number; value: V; timestamp: number }[][]).flat(),
    };
  }
  sessionStoreAsync<K, V>(name: string): AsyncStore<ReadOnlySessionStore<K, V>> {
    const q = this.ask('session', name);
    const sessions = async (method: string, args: unknown[]) =>
      ((await q(method, args)) as Session<K, V>[][]).flat().sort((a, b) => a.start - b.start);
    return {
      findSessions: (key, e, l) => sessions('findSessions', [key, e, l]),
      fetch: (key) => sessions('fetch', [key]),
      all: () => sessions('all', []),
    };
  }
}

function firstFound<V>(answers: (V | null)[]): V | null {
  for (const a of answers) if (a !== null && a !== undefined) return a;
  return null;
}

function pick<T extends object, F extends keyof T>(o: T, fields: readonly F[]): Partial<Pick<T, F>> {
  const out: Partial<Pick<T, F>> = {};
  for (const f of fields) if (o[f] !== undefined) out[f] = o[f];
  return out;
}
