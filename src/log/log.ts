/**
 * The embedded log: topics of partitions in a data directory, implementing `LogService`.
 *
 *   <dataDir>/__topics/<topic>.json        topic metadata: name, stable topicId, partition count, config overrides
 *   <dataDir>/<topic>-<partition>/         a partition (see partition.ts and segment.ts)
 *   <dataDir>/__transactions/state.jsonl   the transaction coordinator's state
 *   <dataDir>/__consumer_offsets/          the group coordinator's committed offsets (groups.ts)
 *   <dataDir>/.clean-shutdown              written by close(), removed by open: present = trust indexes
 *   <dataDir>/.lock                        the pid of the process that has the log open
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { channel, kafkaError, publish, TributaryError } from '../core/index.ts';
import type {
  AppendOptions,
  AppendResult,
  GroupDescription,
  IsolationLevel,
  JoinGroupRequest,
  JoinGroupResult,
  LogService,
  OffsetAndMetadata,
  PartitionInfo,
  ProducerIdAndEpoch,
  ReadOptions,
  ReadResult,
  TopicConfig,
  TopicDescription,
  TopicPartition,
} from './api.ts';
import { type CompactionResult, compactPartition } from './cleaner.ts';
import { fsyncDir, readFileIfExists, unlinkIfExists, writeFileAtomic } from './fs-util.ts';
import { GroupCoordinator } from './groups.ts';
import { PartitionLog } from './partition.ts';
import {
  definedEntries,
  INTERNAL_TOPICS,
  KAFKA_TOPIC_DEFAULTS,
  type ResolvedTopicConfig,
  resolveTopicConfig,
  validateTopicConfig,
  validateTopicName,
} from './topic-config.ts';
import { DEFAULT_MAX_TRANSACTION_TIMEOUT_MS, TransactionCoordinator } from './txn-coordinator.ts';

export interface OpenLogOptions {
  dataDir: string;
  /** Broker-wide topic defaults, over Kafka's (see KAFKA_TOPIC_DEFAULTS). */
  defaults?: TopicConfig;
  /** Appends to a missing topic create it with `defaultPartitions` partitions. Default true, as Kafka. */
  autoCreateTopics?: boolean;
  defaultPartitions?: number;
  /** How often retention and compaction run on their own; 0 = only when `runCleaner` is called. Default 30 s. */
  cleanerIntervalMs?: number;
  /** Kafka's transaction.max.timeout.ms. Default 15 minutes. */
  maxTransactionTimeoutMs?: number;
  /** Producers idle this long lose their idempotence state (Kafka's producer.id.expiration.ms). Default 1 day. */
  producerIdExpirationMs?: number;
}

export interface CleanerReport {
  segmentsDeleted: number;
  compacted: ({ topic: string; partition: number } & CompactionResult)[];
}

interface TopicState {
  name: string;
  topicId: string;
  internal: boolean;
  overrides: TopicConfig;
  config: ResolvedTopicConfig;
  partitions: PartitionLog[];
}

interface TopicFile {
  name: string;
  topicId: string;
  partitions: number;
  config: TopicConfig;
}

const TICK_MS = 100;
const TXN_EXPIRY_INTERVAL_MS = 1000;
const MAX_PARTITIONS = 100_000;
const openDirs = new Set<string>();
const recoveryChannel = channel('log', 'recovery');
const cleanerChannel = channel('log', 'cleaner');
const errorChannel = channel('log', 'error');

export async function openLog(options: OpenLogOptions): Promise<Log> {
  return Log.open(options);
}

export class Log implements LogService {
  readonly dataDir: string;
  readonly autoCreateTopics: boolean;
  readonly defaultPartitions: number;
  readonly defaults: ResolvedTopicConfig;
  /** Whether the previous process closed the log cleanly, and how many bytes recovery cut from torn tails. */
  readonly recovery: { clean: boolean; bytesTruncated: number };
  /** The group coordinator the consumer group methods delegate to. */
  readonly groups: GroupCoordinator;

  readonly #topics = new Map<string, TopicState>();
  readonly #txn: TransactionCoordinator;
  readonly #options: OpenLogOptions;
  readonly #timer: NodeJS.Timeout;
  #lastCleanerRun = Date.now();
  #lastTxnExpiry = Date.now();
  #txnExpiry: Promise<unknown> | null = null;
  #closed = false;
  #metadataVersion = 0;

  private constructor(options: OpenLogOptions, clean: boolean) {
    this.#options = options;
    this.dataDir = path.resolve(options.dataDir);
    this.autoCreateTopics = options.autoCreateTopics ?? true;
    this.defaultPartitions = options.defaultPartitions ?? 1;
    this.defaults = resolveTopicConfig(KAFKA_TOPIC_DEFAULTS, validateTopicConfig({ ...options.defaults }));
    let bytesTruncated = 0;
    const topicsDir = path.join(this.dataDir, '__topics');
    fs.mkdirSync(topicsDir, { recursive: true });
    for (const file of fs.readdirSync(topicsDir).filter((f) => f.endsWith('.json'))) {
      const meta = JSON.parse(fs.readFileSync(path.join(topicsDir, file), 'utf8')) as TopicFile;
      const overrides = validateTopicConfig({ ...meta.config });
      const config = resolveTopicConfig(this.defaults, overrides);
      const partitions: PartitionLog[] = [];
      for (let i = 0; i < meta.partitions; i++) {
        const dir = this.#partitionDir(meta.name, i);
        const partition = fs.existsSync(dir)
          ? PartitionLog.open({ topic: meta.name, partition: i, dir, config, clean })
          : PartitionLog.create(meta.name, i, dir, config);
        bytesTruncated += partition.recoveredBytesCut;
        partitions.push(partition);
      }
      this.#topics.set(meta.name, {
        name: meta.name,
        topicId: meta.topicId,
        internal: INTERNAL_TOPICS.has(meta.name),
        overrides,
        config,
        partitions,
      });
    }
    this.recovery = { clean, bytesTruncated };
    this.groups = new GroupCoordinator({ dataDir: this.dataDir });
    this.#txn = new TransactionCoordinator({
      dir: path.join(this.dataDir, '__transactions'),
      writeMarkers: (partitions, producerId, epoch, commit) =>
        this.#writeMarkers(partitions, producerId, epoch, commit),
      partitionExists: (tp) => this.#topics.get(tp.topic)?.partitions[tp.partition] !== undefined,
      sink: () => this.groups,
      maxTimeoutMs: options.maxTransactionTimeoutMs ?? DEFAULT_MAX_TRANSACTION_TIMEOUT_MS,
    });
    this.#timer = setInterval(() => this.#tick(), TICK_MS);
    this.#timer.unref();
  }

  static async open(options: OpenLogOptions): Promise<Log> {
    const dataDir = path.resolve(options.dataDir);
    fs.mkdirSync(dataDir, { recursive: true });
    lockDataDir(dataDir);
    try {
      const marker = path.join(dataDir, '.clean-shutdown');
      const clean = fs.existsSync(marker);
      unlinkIfExists(marker);
      fsyncDir(dataDir);
      const log = new Log(options, clean);
      publish(recoveryChannel, () => ({ dataDir, ...log.recovery }));
      // transactions left prepared by the last process are completed, expired ones aborted
      await log.expireTransactions();
      return log;
    } catch (err) {
      unlockDataDir(dataDir);
      throw err;
    }
  }

  #partitionDir(topic: string, partition: number): string {
    return path.join(this.dataDir, `${topic}-${partition}`);
  }

  #topicFile(name: string): string {
    return path.join(this.dataDir, '__topics', `${name}.json`);
  }

  #writeTopicFile(t: TopicState): void {
    const file: TopicFile = { name: t.name, topicId: t.topicId, partitions: t.partitions.length, config: t.overrides };
    writeFileAtomic(this.#topicFile(t.name), JSON.stringify(file, null, 2), { fsync: true });
  }

  #checkOpen(): void {
    if (this.#closed) throw new TributaryError('UNAVAILABLE', `the log in ${this.dataDir} is closed`);
  }

  #topic(name: string): TopicState {
    this.#checkOpen();
    const t = this.#topics.get(name);
    if (!t)
      throw kafkaError('UNKNOWN_TOPIC_OR_PARTITION', `topic ${JSON.stringify(name)} does not exist`, {
        field: 'topic',
      });
    return t;
  }

  #partition(topic: string, partition: number): PartitionLog {
    const p = this.#topic(topic).partitions[partition];
    if (!p) {
      throw kafkaError('UNKNOWN_TOPIC_OR_PARTITION', `topic ${JSON.stringify(topic)} has no partition ${partition}`, {
        field: 'partition',
      });
    }
    return p;
  }

  // ---- topics ----

  async createTopic(name: string, options: { partitions: number; config?: TopicConfig }): Promise<TopicDescription> {
    this.#checkOpen();
    validateTopicName(name);
    if (this.#topics.has(name))
      throw kafkaError('TOPIC_ALREADY_EXISTS', `topic ${JSON.stringify(name)} already exists`);
    const count = options.partitions;
    if (!Number.isInteger(count) || count < 1 || count > MAX_PARTITIONS) {
      throw kafkaError(
        'INVALID_PARTITIONS',
        `partitions: expected an integer from 1 to ${MAX_PARTITIONS}, got ${count}`,
        {
          field: 'partitions',
        },
      );
    }
    const overrides = definedEntries(validateTopicConfig({ ...options.config }));
    const config = resolveTopicConfig(this.defaults, overrides);
    const partitions: PartitionLog[] = [];
    for (let i = 0; i < count; i++) partitions.push(PartitionLog.create(name, i, this.#partitionDir(name, i), config));
    const t: TopicState = {
      name,
      topicId: randomUUID(),
      internal: INTERNAL_TOPICS.has(name),
      overrides,
      config,
      partitions,
    };
    this.#writeTopicFile(t);
    this.#topics.set(name, t);
    this.#metadataVersion++;
    return this.#describe(t);
  }

  async deleteTopic(name: string): Promise<void> {
    const t = this.#topic(name);
    this.#topics.delete(name);
    this.#metadataVersion++;
    unlinkIfExists(this.#topicFile(name));
    fsyncDir(path.dirname(this.#topicFile(name)));
    for (const p of t.partitions) p.destroy();
    this.#txn.forgetTopic(name);
  }

  async createPartitions(name: string, totalCount: number): Promise<void> {
    const t = this.#topic(name);
    if (!Number.isInteger(totalCount) || totalCount <= t.partitions.length || totalCount > MAX_PARTITIONS) {
      throw kafkaError(
        'INVALID_PARTITIONS',
        `topic ${JSON.stringify(name)} has ${t.partitions.length} partitions; the new count must be larger, got ${totalCount}`,
        { field: 'totalCount' },
      );
    }
    for (let i = t.partitions.length; i < totalCount; i++) {
      t.partitions.push(PartitionLog.create(name, i, this.#partitionDir(name, i), t.config));
    }
    this.#writeTopicFile(t);
    this.#metadataVersion++;
  }

  get metadataVersion(): number {
    return this.#metadataVersion;
  }

  listTopics(options: { includeInternal?: boolean } = {}): TopicDescription[] {
    this.#checkOpen();
    return [...this.#topics.values()]
      .filter((t) => options.includeInternal || !t.internal)
      .map((t) => this.#describe(t));
  }

  describeTopic(name: string): TopicDescription | undefined {
    this.#checkOpen();
    const t = this.#topics.get(name);
    return t && this.#describe(t);
  }

  #describe(t: TopicState): TopicDescription {
    const partitions: PartitionInfo[] = t.partitions.map((p) => ({
      partition: p.partition,
      logStartOffset: BigInt(p.logStartOffset),
      highWatermark: BigInt(p.highWatermark),
      lastStableOffset: BigInt(p.lastStableOffset()),
      sizeBytes: p.sizeBytes,
      segments: p.segments.length,
    }));
    return {
      name: t.name,
      topicId: t.topicId,
      internal: t.internal,
      partitions,
      config: { ...t.config },
      overrides: { ...t.overrides },
    };
  }

  /** Sets the given keys; a key set to undefined goes back to the default. */
  async alterTopicConfig(name: string, config: TopicConfig): Promise<void> {
    const t = this.#topic(name);
    const changes = validateTopicConfig({ ...config });
    const overrides: Record<string, unknown> = { ...t.overrides };
    for (const [key, value] of Object.entries(changes)) {
      if (value === undefined) delete overrides[key];
      else overrides[key] = value;
    }
    t.overrides = overrides as TopicConfig;
    t.config = resolveTopicConfig(this.defaults, t.overrides);
    for (const p of t.partitions) p.config = t.config;
    this.#writeTopicFile(t);
  }

  // ---- data ----

  async append(topic: string, partition: number, batches: Buffer, options?: AppendOptions): Promise<AppendResult> {
    this.#checkOpen();
    if (!this.#topics.has(topic) && this.autoCreateTopics) {
      await this.createTopic(topic, { partitions: this.defaultPartitions });
    }
    const p = this.#partition(topic, partition);
    const outcome = p.append(
      batches,
      Date.now(),
      (producerId, epoch) => this.#txn.checkProduce(producerId, epoch, { topic, partition }),
      options?.crcKnownGood === true,
    );
    if (outcome.durable) await outcome.durable;
    return {
      baseOffset: BigInt(outcome.baseOffset),
      logAppendTime: BigInt(outcome.logAppendTime),
      logStartOffset: BigInt(p.logStartOffset),
      duplicate: outcome.duplicate,
    };
  }

  async read(topic: string, partition: number, fetchOffset: bigint, options: ReadOptions): Promise<ReadResult> {
    const r = this.#partition(topic, partition).read(Number(fetchOffset), options.maxBytes, options.isolation);
    return {
      records: r.records,
      highWatermark: BigInt(r.highWatermark),
      lastStableOffset: BigInt(r.lastStableOffset),
      logStartOffset: BigInt(r.logStartOffset),
      abortedTransactions: r.abortedTransactions,
    };
  }

  /**
   * Resolves when a partition has data at or past its position (past the last stable offset for a
   * position with isolation read_committed), when a position is out of range or its topic is deleted,
   * after `timeoutMs`, or on abort. Unknown partitions are ignored. Event-driven: appends wake waiters.
   */
  waitForData(
    positions: { topic: string; partition: number; offset: bigint; isolation?: IsolationLevel }[],
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<void> {
    this.#checkOpen();
    const watched: { p: PartitionLog; offset: number; committed: boolean }[] = [];
    for (const pos of positions) {
      const p = this.#topics.get(pos.topic)?.partitions[pos.partition];
      if (p) watched.push({ p, offset: Number(pos.offset), committed: pos.isolation === 'read_committed' });
    }
    const ready = (w: (typeof watched)[number]) =>
      w.p.closed ||
      w.offset < w.p.logStartOffset ||
      (w.committed ? w.p.lastStableOffset() : w.p.highWatermark) > w.offset;
    if (watched.some(ready) || timeoutMs <= 0 || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const unsubscribe: (() => void)[] = [];
      const done = () => {
        for (const off of unsubscribe) off();
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      for (const w of watched) unsubscribe.push(w.p.onAppend(() => ready(w) && done()));
      const timer = setTimeout(done, timeoutMs);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  async listOffset(
    topic: string,
    partition: number,
    timestamp: bigint,
    isolation: IsolationLevel,
  ): Promise<{ offset: bigint; timestamp: bigint }> {
    const r = this.#partition(topic, partition).offsetForTimestamp(Number(timestamp), isolation);
    return { offset: BigInt(r.offset), timestamp: BigInt(r.timestamp) };
  }

  async deleteRecords(topic: string, partition: number, beforeOffset: bigint): Promise<bigint> {
    return BigInt(this.#partition(topic, partition).deleteRecords(Number(beforeOffset)));
  }

  // ---- producers and transactions ----

  initProducerId(
    transactionalId: string | null,
    transactionTimeoutMs: number,
    current?: ProducerIdAndEpoch,
  ): Promise<ProducerIdAndEpoch> {
    this.#checkOpen();
    return this.#txn.initProducerId(transactionalId, transactionTimeoutMs, current);
  }

  addPartitionsToTxn(
    transactionalId: string,
    producer: ProducerIdAndEpoch,
    partitions: TopicPartition[],
  ): Promise<void> {
    this.#checkOpen();
    return this.#txn.addPartitions(transactionalId, producer, partitions);
  }

  addOffsetsToTxn(transactionalId: string, producer: ProducerIdAndEpoch, groupId: string): Promise<void> {
    this.#checkOpen();
    return this.#txn.addOffsets(transactionalId, producer, groupId);
  }

  txnOffsetCommit(
    transactionalId: string,
    groupId: string,
    producer: ProducerIdAndEpoch,
    offsets: (TopicPartition & OffsetAndMetadata)[],
  ): Promise<void> {
    this.#checkOpen();
    return this.#txn.txnOffsetCommit(transactionalId, groupId, producer, offsets);
  }

  endTxn(transactionalId: string, producer: ProducerIdAndEpoch, commit: boolean): Promise<void> {
    this.#checkOpen();
    return this.#txn.endTxn(transactionalId, producer, commit);
  }

  async #writeMarkers(partitions: TopicPartition[], producerId: bigint, epoch: number, commit: boolean): Promise<void> {
    const durable: Promise<void>[] = [];
    const now = Date.now();
    for (const tp of partitions) {
      const p = this.#topics.get(tp.topic)?.partitions[tp.partition];
      if (!p || p.closed) continue;
      const outcome = p.appendMarker(producerId, epoch, commit ? 'COMMIT' : 'ABORT', 0, now);
      if (outcome.durable) durable.push(outcome.durable);
    }
    await Promise.all(durable);
  }

  /** Aborts transactions open past their timeout (fencing their producers); returns their transactional ids. */
  expireTransactions(): Promise<string[]> {
    this.#checkOpen();
    return this.#txn.expire();
  }

  // ---- consumer groups (the group coordinator) ----

  joinGroup(request: JoinGroupRequest, signal?: AbortSignal): Promise<JoinGroupResult> {
    this.#checkOpen();
    return this.groups.joinGroup(request, signal);
  }

  syncGroup(
    groupId: string,
    generationId: number,
    memberId: string,
    assignments: { memberId: string; assignment: Buffer }[],
    signal?: AbortSignal,
  ): Promise<{ protocolType: string; protocolName: string; assignment: Buffer }> {
    this.#checkOpen();
    return this.groups.syncGroup(groupId, generationId, memberId, assignments, signal);
  }

  heartbeat(groupId: string, generationId: number, memberId: string): Promise<void> {
    this.#checkOpen();
    return this.groups.heartbeat(groupId, generationId, memberId);
  }

  leaveGroup(groupId: string, memberId: string): Promise<void> {
    this.#checkOpen();
    return this.groups.leaveGroup(groupId, memberId);
  }

  commitOffsets(
    groupId: string,
    generationId: number,
    memberId: string,
    offsets: (TopicPartition & OffsetAndMetadata)[],
  ): Promise<void> {
    this.#checkOpen();
    return this.groups.commitOffsets(groupId, generationId, memberId, offsets);
  }

  fetchOffsets(groupId: string, partitions?: TopicPartition[]): Promise<(TopicPartition & OffsetAndMetadata)[]> {
    this.#checkOpen();
    return this.groups.fetchOffsets(groupId, partitions);
  }

  describeGroup(groupId: string): GroupDescription {
    this.#checkOpen();
    return this.groups.describeGroup(groupId);
  }

  listGroups(): { groupId: string; protocolType: string; state: GroupDescription['state'] }[] {
    this.#checkOpen();
    return this.groups.listGroups();
  }

  deleteGroup(groupId: string): Promise<void> {
    this.#checkOpen();
    return this.groups.deleteGroup(groupId);
  }

  // ---- maintenance ----

  /**
   * Runs retention (time, size, log start offset) and compaction over every partition now, and forgets
   * idle producers. `force` compacts regardless of `min.cleanable.dirty.ratio`.
   */
  async runCleaner(options: { force?: boolean; now?: number } = {}): Promise<CleanerReport> {
    this.#checkOpen();
    const now = options.now ?? Date.now();
    const report: CleanerReport = { segmentsDeleted: 0, compacted: [] };
    const expiration = this.#options.producerIdExpirationMs ?? 86_400_000;
    for (const t of this.#topics.values()) {
      for (const p of t.partitions) {
        report.segmentsDeleted += p.applyRetention(now);
        const compacted = compactPartition(p, now, options.force);
        if (compacted) report.compacted.push({ topic: t.name, partition: p.partition, ...compacted });
        p.producers.expire(now, expiration);
      }
    }
    this.#lastCleanerRun = now;
    publish(cleanerChannel, () => ({ dataDir: this.dataDir, ...report }));
    return report;
  }

  /** fsyncs every partition. */
  async flush(): Promise<void> {
    this.#checkOpen();
    await Promise.all([...this.#topics.values()].flatMap((t) => t.partitions.map((p) => p.flush())));
  }

  #tick(): void {
    if (this.#closed) return;
    const now = Date.now();
    try {
      for (const t of this.#topics.values()) for (const p of t.partitions) p.tick(now);
      const interval = this.#options.cleanerIntervalMs ?? 30_000;
      if (interval > 0 && now - this.#lastCleanerRun >= interval) {
        this.runCleaner({ now }).catch((err) =>
          publish(errorChannel, () => ({ dataDir: this.dataDir, during: 'cleaner', error: err })),
        );
      }
    } catch (err) {
      publish(errorChannel, () => ({ dataDir: this.dataDir, during: 'tick', error: err }));
    }
    if (this.#txnExpiry === null && now - this.#lastTxnExpiry >= TXN_EXPIRY_INTERVAL_MS) {
      this.#lastTxnExpiry = now;
      this.#txnExpiry = this.#txn
        .expire()
        .catch((err) =>
          publish(errorChannel, () => ({ dataDir: this.dataDir, during: 'transaction expiry', error: err })),
        )
        .finally(() => {
          this.#txnExpiry = null;
        });
    }
  }

  /** Clean shutdown: flushes and checkpoints everything so the next open skips recovery. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#txnExpiry;
    await this.groups.close();
    for (const t of this.#topics.values()) for (const p of t.partitions) await p.close();
    this.#txn.close();
    writeFileAtomic(path.join(this.dataDir, '.clean-shutdown'), String(Date.now()), { fsync: true });
    unlockDataDir(this.dataDir);
  }
}

/** One process, one open log per data directory; a lock file names the process (stale after a crash). */
function lockDataDir(dataDir: string): void {
  if (openDirs.has(dataDir))
    throw new TributaryError('CONFLICT', `the log in ${dataDir} is already open in this process`, { retriable: false });
  const lockFile = path.join(dataDir, '.lock');
  const holder = Number(readFileIfExists(lockFile));
  if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && processAlive(holder)) {
    throw new TributaryError('CONFLICT', `the log in ${dataDir} is open in process ${holder}`, { retriable: false });
  }
  fs.writeFileSync(lockFile, String(process.pid));
  openDirs.add(dataDir);
}

function unlockDataDir(dataDir: string): void {
  openDirs.delete(dataDir);
  unlinkIfExists(path.join(dataDir, '.lock'));
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
