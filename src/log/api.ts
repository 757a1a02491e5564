/**
 * The contract between the embedded log (`src/log`), the Kafka broker (`src/kafka`) and the rest of the
 * platform. Two layers:
 *  - `LogService`: batch-level operations the broker maps Kafka requests onto (raw record batch v2 bytes).
 *  - `Producer` / `Consumer` / `Admin`: record-level clients with two implementations, embedded (over a
 *    `LogService`, no TCP) and remote (over a Kafka cluster with @platformatic/kafka). One conformance
 *    suite runs against both.
 * Errors are `TributaryError`s; `kafkaErrorCode` on the error (see errors.ts) tells the broker what to answer.
 */

export type IsolationLevel = 'read_uncommitted' | 'read_committed';
export type CleanupPolicy = 'delete' | 'compact' | 'compact,delete';

/** Per-topic configuration, in Kafka's names where Kafka has one. Unset fields take broker defaults. */
export interface TopicConfig {
  'cleanup.policy'?: CleanupPolicy;
  'retention.ms'?: number; // -1 = forever
  'retention.bytes'?: number; // per partition, -1 = unlimited
  'segment.bytes'?: number;
  'segment.ms'?: number;
  'segment.index.bytes'?: number;
  'index.interval.bytes'?: number;
  /** fsync after every N messages; 1 = every batch (acknowledged batches survive kill -9 and power loss). */
  'flush.messages'?: number;
  /** fsync at least every N ms. */
  'flush.ms'?: number;
  'max.message.bytes'?: number;
  'message.timestamp.type'?: 'CreateTime' | 'LogAppendTime';
  'min.compaction.lag.ms'?: number;
  'delete.retention.ms'?: number;
  'min.cleanable.dirty.ratio'?: number;
  'compression.type'?: string;
}

export interface TopicPartition {
  topic: string;
  partition: number;
}

export interface PartitionInfo {
  partition: number;
  logStartOffset: bigint;
  highWatermark: bigint;
  lastStableOffset: bigint;
  sizeBytes: number;
  segments: number;
}

export interface TopicDescription {
  name: string;
  topicId: string; // UUID, stable across restarts
  internal: boolean;
  partitions: PartitionInfo[];
  config: Required<Pick<TopicConfig, 'cleanup.policy' | 'retention.ms' | 'retention.bytes' | 'segment.bytes'>> &
    TopicConfig;
  /** The keys set on the topic itself (the rest of `config` are defaults): DescribeConfigs' TOPIC_CONFIG source. */
  overrides?: TopicConfig;
}

export interface AppendResult {
  baseOffset: bigint;
  /** -1n unless the topic uses LogAppendTime. */
  logAppendTime: bigint;
  logStartOffset: bigint;
  /** true when the batch was a retried duplicate of an idempotent producer's batch (original offsets returned). */
  duplicate: boolean;
}

export interface AbortedTransaction {
  producerId: bigint;
  firstOffset: bigint;
}

export interface ReadResult {
  /** Whole record batches (v2), concatenated, exactly as stored. May be empty. */
  records: Buffer;
  highWatermark: bigint;
  lastStableOffset: bigint;
  logStartOffset: bigint;
  /** Only for read_committed: aborted transactions overlapping the returned range. */
  abortedTransactions: AbortedTransaction[];
}

export interface ReadOptions {
  maxBytes: number;
  isolation: IsolationLevel;
}

export interface ProducerIdAndEpoch {
  producerId: bigint;
  producerEpoch: number;
}

export interface OffsetAndMetadata {
  offset: bigint;
  leaderEpoch?: number;
  metadata?: string | null;
}

export interface GroupMemberDescription {
  memberId: string;
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  metadata: Buffer; // the member's subscription in the chosen protocol
  assignment: Buffer;
}

export interface GroupDescription {
  groupId: string;
  state: 'Empty' | 'PreparingRebalance' | 'CompletingRebalance' | 'Stable' | 'Dead';
  protocolType: string;
  protocol: string;
  members: GroupMemberDescription[];
}

export interface JoinGroupRequest {
  groupId: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  memberId: string; // '' on first join
  groupInstanceId: string | null;
  protocolType: string;
  protocols: { name: string; metadata: Buffer }[];
  clientId: string;
  clientHost: string;
  /** Kafka >= JoinGroup v4 makes a new member rejoin with the id it was given (MEMBER_ID_REQUIRED). */
  requireKnownMemberId: boolean;
}

/**
 * `joinGroup` throws this (a `TributaryError` with `kafkaErrorCode` 79 MEMBER_ID_REQUIRED) when
 * `requireKnownMemberId` is set and the member joined with memberId ''; it must rejoin with `memberId`.
 */
export interface MemberIdRequiredError extends Error {
  readonly kafkaErrorCode: 79;
  readonly memberId: string;
}

export function isMemberIdRequired(err: unknown): err is MemberIdRequiredError {
  return (
    err instanceof Error &&
    (err as { kafkaErrorCode?: unknown }).kafkaErrorCode === 79 &&
    typeof (err as { memberId?: unknown }).memberId === 'string'
  );
}

export interface JoinGroupResult {
  generationId: number;
  protocolType: string;
  protocolName: string;
  leader: string;
  memberId: string;
  /** Filled for the leader only. */
  members: { memberId: string; groupInstanceId: string | null; metadata: Buffer }[];
}

/**
 * Where the transaction coordinator hands transactional offset commits (TxnOffsetCommit). The group
 * coordinator stages them per producer id; `complete` makes every group's staged offsets of that producer
 * the committed offsets (commit) or drops them (abort) when the transaction ends. `GroupCoordinator`
 * (src/log/groups.ts) implements it.
 */
export interface TxnOffsetSink {
  stage(groupId: string, producerId: bigint, offsets: (TopicPartition & OffsetAndMetadata)[]): Promise<void>;
  complete(producerId: bigint, commit: boolean): Promise<void>;
}

/**
 * Everything the Kafka broker needs. Implemented by the embedded log; all offsets are bigint.
 * Methods throw `TributaryError` with `kafkaErrorCode` set where a Kafka error code applies.
 */
export interface AppendOptions {
  /**
   * The batches were just built in this process by RecordBatchBuilder and reach the log without I/O in between
   * (the embedded producer): their CRCs are known good and are not computed again. Everything else is checked.
   */
  crcKnownGood?: boolean;
}

export interface LogService {
  readonly dataDir: string;
  /** Grows whenever a topic is created or deleted or gains partitions: clients that cache metadata compare it. */
  readonly metadataVersion: number;

  // topics
  createTopic(name: string, options: { partitions: number; config?: TopicConfig }): Promise<TopicDescription>;
  deleteTopic(name: string): Promise<void>;
  createPartitions(name: string, totalCount: number): Promise<void>;
  listTopics(options?: { includeInternal?: boolean }): TopicDescription[];
  describeTopic(name: string): TopicDescription | undefined;
  alterTopicConfig(name: string, config: TopicConfig): Promise<void>;

  // data
  /** Appends one or more record batches v2 as produced: CRC checked, offsets assigned, idempotence enforced. */
  append(topic: string, partition: number, batches: Buffer, options?: AppendOptions): Promise<AppendResult>;
  read(topic: string, partition: number, fetchOffset: bigint, options: ReadOptions): Promise<ReadResult>;
  /**
   * Resolves when any of the partitions gets data past the given offsets (past the last stable offset for
   * positions with isolation read_committed), or after timeoutMs, or on abort.
   */
  waitForData(
    positions: { topic: string; partition: number; offset: bigint; isolation?: IsolationLevel }[],
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<void>;
  /** timestamp -2n = earliest, -1n = latest, else the first offset whose timestamp >= the timestamp (offset -1n if none). */
  listOffset(
    topic: string,
    partition: number,
    timestamp: bigint,
    isolation: IsolationLevel,
  ): Promise<{ offset: bigint; timestamp: bigint }>;
  deleteRecords(topic: string, partition: number, beforeOffset: bigint): Promise<bigint>;

  // producers and transactions
  initProducerId(
    transactionalId: string | null,
    transactionTimeoutMs: number,
    current?: ProducerIdAndEpoch,
  ): Promise<ProducerIdAndEpoch>;
  addPartitionsToTxn(
    transactionalId: string,
    producer: ProducerIdAndEpoch,
    partitions: TopicPartition[],
  ): Promise<void>;
  addOffsetsToTxn(transactionalId: string, producer: ProducerIdAndEpoch, groupId: string): Promise<void>;
  txnOffsetCommit(
    transactionalId: string,
    groupId: string,
    producer: ProducerIdAndEpoch,
    offsets: (TopicPartition & OffsetAndMetadata)[],
  ): Promise<void>;
  endTxn(transactionalId: string, producer: ProducerIdAndEpoch, commit: boolean): Promise<void>;

  // consumer groups (classic protocol)
  joinGroup(request: JoinGroupRequest, signal?: AbortSignal): Promise<JoinGroupResult>;
  syncGroup(
    groupId: string,
    generationId: number,
    memberId: string,
    assignments: { memberId: string; assignment: Buffer }[],
    signal?: AbortSignal,
  ): Promise<{ protocolType: string; protocolName: string; assignment: Buffer }>;
  heartbeat(groupId: string, generationId: number, memberId: string): Promise<void>;
  leaveGroup(groupId: string, memberId: string): Promise<void>;
  commitOffsets(
    groupId: string,
    generationId: number,
    memberId: string,
    offsets: (TopicPartition & OffsetAndMetadata)[],
  ): Promise<void>;
  fetchOffsets(groupId: string, partitions?: TopicPartition[]): Promise<(TopicPartition & OffsetAndMetadata)[]>;
  describeGroup(groupId: string): GroupDescription;
  listGroups(): { groupId: string; protocolType: string; state: GroupDescription['state'] }[];
  deleteGroup(groupId: string): Promise<void>;

  close(): Promise<void>;
}

// ---- record-level clients (embedded and remote) ----

export type Header = [key: string, value: Buffer];

export interface ProducerRecord {
  topic: string;
  key?: Buffer | string | null;
  value: Buffer | string | null;
  partition?: number;
  timestamp?: number | bigint;
  headers?: Header[];
}

/** Where a sent record landed. The embedded producer computes `offset` and `timestamp` when they are read. */
export interface RecordMetadata {
  topic: string;
  partition: number;
  offset: bigint;
  timestamp: bigint;
}

export interface ConsumedRecord {
  topic: string;
  partition: number;
  offset: bigint;
  timestamp: bigint;
  key: Buffer | null;
  value: Buffer | null;
  headers: Header[];
}

export interface ProducerOptions {
  idempotent?: boolean; // default true
  transactionalId?: string;
  transactionTimeoutMs?: number;
  /** How long records wait to fill a batch (Kafka's linger.ms). */
  lingerMs?: number;
  batchSize?: number;
  compression?: 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd';
  partitioner?: (record: ProducerRecord, partitionCount: number) => number;
}

export interface Producer {
  /** Sends records in batches; resolves per record in order. */
  send(records: ProducerRecord[]): Promise<RecordMetadata[]>;
  flush(): Promise<void>;
  beginTransaction(): Promise<void>;
  sendOffsetsToTransaction(groupId: string, offsets: (TopicPartition & { offset: bigint })[]): Promise<void>;
  commitTransaction(): Promise<void>;
  abortTransaction(): Promise<void>;
  close(): Promise<void>;
}

export interface ConsumerOptions {
  groupId?: string; // without a group the consumer uses assign()
  isolation?: IsolationLevel; // default read_committed, as Kafka clients
  autoOffsetReset?: 'earliest' | 'latest';
  autoCommit?: boolean; // default false: the platform commits explicitly
  sessionTimeoutMs?: number;
  /** How long the group waits for members to rejoin in a rebalance (Kafka's max.poll.interval.ms). */
  rebalanceTimeoutMs?: number;
  /** Kafka's heartbeat.interval.ms: how soon a member notices a rebalance. */
  heartbeatIntervalMs?: number;
  maxPollRecords?: number;
}

export interface Consumer {
  subscribe(topics: string[]): Promise<void>;
  assign(partitions: TopicPartition[]): void;
  seek(partition: TopicPartition, offset: bigint): void;
  /** Returns the next records (possibly none) after waiting at most timeoutMs. */
  poll(timeoutMs: number): Promise<ConsumedRecord[]>;
  /** Commits the given offsets (next offset to read), or the current positions. */
  commit(offsets?: (TopicPartition & { offset: bigint })[]): Promise<void>;
  assignment(): TopicPartition[];
  position(partition: TopicPartition): bigint | undefined;
  close(): Promise<void>;
}

export interface Admin {
  createTopic(name: string, options: { partitions: number; config?: TopicConfig }): Promise<void>;
  deleteTopic(name: string): Promise<void>;
  listTopics(): Promise<string[]>;
  describeTopic(
    name: string,
  ): Promise<{ name: string; partitions: { partition: number; highWatermark: bigint; logStartOffset: bigint }[] }>;
  createPartitions(name: string, totalCount: number): Promise<void>;
  listGroups(): Promise<string[]>;
  fetchOffsets(groupId: string): Promise<(TopicPartition & { offset: bigint })[]>;
  close(): Promise<void>;
}

/** Creates producers, consumers and admins: embedded (`openLog`) or remote (a Kafka cluster). */
export interface LogClient {
  producer(options?: ProducerOptions): Producer;
  consumer(options?: ConsumerOptions): Consumer;
  admin(): Admin;
  close(): Promise<void>;
}
