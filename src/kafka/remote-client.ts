/**
 * The record-level `LogClient` (Producer / Consumer / Admin of src/log/api.ts) over a remote Kafka cluster
 * with @platformatic/kafka, so code written against the embedded log runs unchanged against Apache Kafka,
 * Redpanda or our own broker. The consumer polls with the client's Fetch API and its classic group
 * membership (heartbeats and rejoins are the library's); offsets are committed explicitly.
 */
import { randomUUID } from 'node:crypto';
import {
  Admin as KafkaAdmin,
  Consumer as KafkaConsumer,
  Producer as KafkaProducer,
  type RecordsBatch,
} from '@platformatic/kafka';
import { type ErrorCode, invalidArgument, TributaryError } from '../core/index.ts';
import type {
  Admin,
  ConsumedRecord,
  Consumer,
  ConsumerOptions,
  Header,
  LogClient,
  Producer,
  ProducerOptions,
  ProducerRecord,
  RecordMetadata,
  TopicConfig,
  TopicPartition,
} from '../log/index.ts';
import { partitionForKey } from '../log/index.ts';

export interface RemoteClientOptions {
  /** `host:port` of one or more brokers. */
  bootstrapBrokers: string[];
  clientId?: string;
  sasl?: { mechanism: 'PLAIN' | 'SCRAM-SHA-256'; username: string; password: string };
  /** How often the library retries a failed operation (its default is 3). */
  retries?: number;
}

const CONTROL_BATCH = 0x20;
const TRANSACTIONAL_BATCH = 0x10;
const LOG_APPEND_TIME = 0x08;

type Bytes = Buffer;
/** How long a consumer reuses topic metadata (leaders) between polls; a fetch error refreshes it at once. */
const METADATA_MAX_AGE_MS = 5_000;
/** Largest piece of a send, in bytes: below the brokers' default `max.message.bytes` (1 MiB) with room to spare. */
const SEND_PIECE_BYTES = 512 * 1024;
type Transaction = Awaited<ReturnType<KafkaProducer<Bytes, Bytes, Bytes, Bytes>['beginTransaction']>>;

function toBuffer(v: Buffer | string | null | undefined): Buffer | undefined {
  if (v === null || v === undefined) return undefined;
  return typeof v === 'string' ? Buffer.from(v) : v;
}

function key(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

function base(options: RemoteClientOptions, suffix: string) {
  return {
    clientId: `${options.clientId ?? 'tributary'}-${suffix}`,
    bootstrapBrokers: options.bootstrapBrokers,
    ...(options.sasl === undefined ? {} : { sasl: options.sasl }),
    ...(options.retries === undefined ? {} : { retries: options.retries }),
  };
}

/** A `LogClient` over a Kafka cluster. */
export function remoteClient(options: RemoteClientOptions): LogClient {
  const open = new Set<{ close(): Promise<void> }>();
  const track = <T extends { close(): Promise<void> }>(c: T): T => {
    open.add(c);
    return c;
  };
  return {
    producer: (o) => track(new RemoteProducer(options, o ?? {})),
    consumer: (o) => track(new RemoteConsumer(options, o ?? {})),
    admin: () => track(new RemoteAdmin(options)),
    async close() {
      await Promise.allSettled([...open].map((c) => c.close()));
      open.clear();
    },
  };
}

class RemoteProducer implements Producer {
  readonly #options: RemoteClientOptions;
  readonly #producer: KafkaProducer<Bytes, Bytes, Bytes, Bytes>;
  readonly #partitioner: ProducerOptions['partitioner'];
  #admin: KafkaAdmin | null = null;
  #chain: Promise<unknown> = Promise.resolve();
  #tx: Transaction | null = null;
  readonly #roundRobin = new Map<string, number>();

  constructor(options: RemoteClientOptions, po: ProducerOptions) {
    this.#options = options;
    this.#partitioner = po.partitioner;
    this.#producer = new KafkaProducer({
      ...base(options, 'producer'),
      idempotent: po.transactionalId !== undefined || (po.idempotent ?? true),
      ...(po.transactionalId === undefined ? {} : { transactionalId: po.transactionalId }),
      compression: po.compression ?? 'none',
      acks: -1,
      autocreateTopics: false,
      // InitProducerId's "no current producer" is -1/-1 (the library's default 0/0 names producer 0)
      producerId: -1n,
      producerEpoch: -1,
    });
  }

  /** Sends run one after another so each partition's records keep the order of the send calls. */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(fn);
    this.#chain = run.catch(() => {});
    return run;
  }

  send(records: ProducerRecord[]): Promise<RecordMetadata[]> {
    return this.#serial(() => this.#send(records));
  }

  async #send(records: ProducerRecord[]): Promise<RecordMetadata[]> {
    if (records.length === 0) return [];
    const topics = [...new Set(records.map((r) => r.topic))];
    const metadata = await this.#producer.metadata({ topics });
    const now = BigInt(Date.now());
    const messages = records.map((r) => {
      const count = metadata.topics.get(r.topic)?.partitionsCount ?? 0;
      if (count === 0) throw new TributaryError('NOT_FOUND', `topic ${r.topic} does not exist`);
      const k = toBuffer(r.key);
      let partition = r.partition;
      if (partition === undefined) {
        if (this.#partitioner !== undefined) partition = this.#partitioner(r, count);
        else if (k !== undefined) partition = partitionForKey(k, count);
        else {
          const next = this.#roundRobin.get(r.topic) ?? 0;
          this.#roundRobin.set(r.topic, next + 1);
          partition = next % count;
        }
      }
      return {
        topic: r.topic,
        partition,
        key: k,
        value: toBuffer(r.value) as Buffer,
        timestamp: r.timestamp === undefined ? now : BigInt(r.timestamp),
        headers: new Map((r.headers ?? []).map(([hk, hv]) => [Buffer.from(hk), hv] as [Buffer, Buffer])),
      };
    });
    // The library sends one batch per partition per call: keep each call under the brokers' default message size
    // limit (1 MiB) by sending large lists in pieces, in order.
    const out: RecordMetadata[] = [];
    for (let from = 0; from < messages.length; ) {
      let to = from;
      let bytes = 0;
      while (to < messages.length && (to === from || bytes < SEND_PIECE_BYTES)) {
        const m = messages[to++]!;
        bytes += 64 + (m.key?.length ?? 0) + ((m.value as Buffer | undefined)?.length ?? 0);
        for (const [hk, hv] of m.headers) bytes += hk.length + ((hv as Buffer | null)?.length ?? 0);
      }
      const piece = messages.slice(from, to);
      const result =
        this.#tx !== null ? await this.#tx.send({ messages: piece }) : await this.#producer.send({ messages: piece });
      // record i's offset is its partition batch's base + its rank in that batch
      const bases = new Map<string, bigint>();
      for (const o of result.offsets ?? []) bases.set(key(o.topic, o.partition), o.offset);
      const seen = new Map<string, bigint>();
      for (const m of piece) {
        const k = key(m.topic, m.partition);
        const rank = seen.get(k) ?? 0n;
        seen.set(k, rank + 1n);
        const baseOffset = bases.get(k);
        if (baseOffset === undefined)
          throw new TributaryError('INTERNAL', `no offset returned for ${m.topic}/${m.partition}`);
        out.push({ topic: m.topic, partition: m.partition, offset: baseOffset + rank, timestamp: m.timestamp });
      }
      from = to;
    }
    return out;
  }

  flush(): Promise<void> {
    return this.#serial(async () => {});
  }

  beginTransaction(): Promise<void> {
    return this.#serial(async () => {
      if (this.#tx !== null) throw new TributaryError('CONFLICT', 'a transaction is already open');
      this.#tx = await this.#producer.beginTransaction();
    });
  }

  sendOffsetsToTransaction(groupId: string, offsets: (TopicPartition & { offset: bigint })[]): Promise<void> {
    return this.#serial(async () => {
      const tx = this.#requireTx();
      this.#admin ??= new KafkaAdmin(base(this.#options, 'txn-admin'));
      const [coordinator] = await this.#admin.findCoordinator({ keyType: 0, keys: [groupId] });
      // the library takes a consumer (for its group id) and consumed messages (it commits offset + 1)
      await tx.addConsumer({ groupId } as unknown as KafkaConsumer<Bytes, Bytes, Bytes, Bytes>);
      for (const o of offsets) {
        await tx.addOffset({
          topic: o.topic,
          partition: o.partition,
          offset: o.offset - 1n,
          metadata: { consumer: { groupId, generationId: -1, memberId: '', coordinatorId: coordinator?.nodeId } },
        } as never);
      }
    });
  }

  commitTransaction(): Promise<void> {
    return this.#serial(async () => {
      await this.#requireTx().commit();
      this.#tx = null;
    });
  }

  abortTransaction(): Promise<void> {
    return this.#serial(async () => {
      await this.#requireTx().abort();
      this.#tx = null;
    });
  }

  #requireTx(): Transaction {
    if (this.#tx === null) throw new TributaryError('CONFLICT', 'no transaction is open (call beginTransaction)');
    return this.#tx;
  }

  async close(): Promise<void> {
    await this.#chain;
    await this.#admin?.close();
    await this.#producer.close();
  }
}

class RemoteConsumer implements Consumer {
  readonly #consumer: KafkaConsumer<Bytes, Bytes, Bytes, Bytes>;
  readonly #admin: KafkaAdmin;
  readonly #options: ConsumerOptions;
  readonly #grouped: boolean;
  #subscribed = false;
  /** Fetched records not yet returned (beyond maxPollRecords), by partition, starting at its position. */
  readonly #pending = new Map<string, ConsumedRecord[]>();
  #metadataCache:
    | {
        topics: string;
        at: number;
        metadata: Awaited<ReturnType<KafkaConsumer<Bytes, Bytes, Bytes, Bytes>['metadata']>>;
      }
    | undefined;
  #assigned: TopicPartition[] = [];
  readonly #positions = new Map<string, bigint>();

  constructor(options: RemoteClientOptions, co: ConsumerOptions) {
    this.#options = co;
    this.#grouped = co.groupId !== undefined;
    this.#consumer = new KafkaConsumer({
      ...base(options, 'consumer'),
      // without a group the consumer never joins one; the library needs an id regardless
      groupId: co.groupId ?? `tributary-assign-${randomUUID()}`,
      sessionTimeout: co.sessionTimeoutMs ?? 10_000,
      heartbeatInterval: (co as { heartbeatIntervalMs?: number }).heartbeatIntervalMs ?? 500,
      rebalanceTimeout: (co as { rebalanceTimeoutMs?: number }).rebalanceTimeoutMs ?? 30_000,
      isolationLevel: this.#isolationLevel(),
      autocommit: false,
    });
    this.#admin = new KafkaAdmin(base(options, 'consumer-admin'));
  }

  #isolationLevel(): number {
    return (this.#options.isolation ?? 'read_committed') === 'read_committed' ? 1 : 0;
  }

  async subscribe(topics: string[]): Promise<void> {
    if (!this.#grouped) throw invalidArgument('groupId', 'a group id to subscribe (or use assign)');
    for (const t of topics) this.#consumer.topics.track(t);
    this.#subscribed = true;
    await this.#consumer.joinGroup({
      sessionTimeout: this.#options.sessionTimeoutMs ?? 10_000,
      heartbeatInterval: (this.#options as { heartbeatIntervalMs?: number }).heartbeatIntervalMs ?? 500,
      rebalanceTimeout: (this.#options as { rebalanceTimeoutMs?: number }).rebalanceTimeoutMs ?? 30_000,
    });
  }

  assign(partitions: TopicPartition[]): void {
    this.#assigned = partitions.map((p) => ({ topic: p.topic, partition: p.partition }));
  }

  seek(partition: TopicPartition, offset: bigint): void {
    this.#positions.set(key(partition.topic, partition.partition), offset);
  }

  assignment(): TopicPartition[] {
    if (!this.#subscribed) return this.#assigned.slice();
    return (this.#consumer.assignments ?? []).flatMap((a) =>
      a.partitions.map((partition) => ({ topic: a.topic, partition })),
    );
  }

  position(partition: TopicPartition): bigint | undefined {
    return this.#positions.get(key(partition.topic, partition.partition));
  }

  /** Starting offsets for partitions without a position: the committed offset, else the reset policy. */
  async #initPositions(partitions: TopicPartition[]): Promise<void> {
    const missing = partitions.filter((p) => !this.#positions.has(key(p.topic, p.partition)));
    if (missing.length === 0) return;
    const byTopic = new Map<string, number[]>();
    for (const p of missing) byTopic.set(p.topic, [...(byTopic.get(p.topic) ?? []), p.partition]);
    if (this.#grouped) {
      const groups = await this.#admin.listConsumerGroupOffsets({
        groups: [
          {
            groupId: this.#consumer.groupId,
            topics: [...byTopic].map(([name, partitionIndexes]) => ({ name, partitionIndexes })),
          },
        ],
      });
      for (const t of groups[0]?.topics ?? []) {
        for (const p of t.partitions) {
          if (p.committedOffset >= 0n) this.#positions.set(key(t.name, p.partitionIndex), p.committedOffset);
        }
      }
    }
    const reset = missing.filter((p) => !this.#positions.has(key(p.topic, p.partition)));
    if (reset.length === 0) return;
    const timestamp = (this.#options.autoOffsetReset ?? 'latest') === 'earliest' ? -2n : -1n;
    const listed = await this.#admin.listOffsets({
      topics: [...byTopic].map(([name, ps]) => ({
        name,
        partitions: ps.map((partitionIndex) => ({ partitionIndex, timestamp })),
      })),
      isolationLevel: this.#isolationLevel() as 0 | 1,
    });
    for (const t of listed) {
      for (const p of t.partitions) {
        const k = key(t.name, p.partitionIndex);
        if (!this.#positions.has(k)) this.#positions.set(k, p.offset);
      }
    }
  }

  /** Topic metadata, reused for a few seconds (a metadata round trip per poll halved the fetch rate). */
  async #metadata(
    topics: string[],
  ): Promise<Awaited<ReturnType<KafkaConsumer<Bytes, Bytes, Bytes, Bytes>['metadata']>>> {
    const k = topics.join('\u0000');
    const c = this.#metadataCache;
    if (c !== undefined && c.topics === k && Date.now() - c.at < METADATA_MAX_AGE_MS) return c.metadata;
    const metadata = await this.#consumer.metadata({ topics });
    this.#metadataCache = { topics: k, at: Date.now(), metadata };
    return metadata;
  }

  async poll(timeoutMs: number): Promise<ConsumedRecord[]> {
    const partitions = this.assignment();
    if (partitions.length === 0) {
      await new Promise((r) => setTimeout(r, Math.min(timeoutMs, 50)));
      return [];
    }
    const assignedKeys = new Set(partitions.map((p) => key(p.topic, p.partition)));
    for (const k of this.#positions.keys()) if (this.#subscribed && !assignedKeys.has(k)) this.#positions.delete(k);
    await this.#initPositions(partitions);
    const max = this.#options.maxPollRecords ?? 500;
    // Records fetched by an earlier poll beyond maxPollRecords are served first, while they still start at the
    // partition's position (a seek or a lost assignment drops them).
    if (this.#pending.size > 0) {
      const out: ConsumedRecord[] = [];
      for (const [k, list] of this.#pending) {
        if (!assignedKeys.has(k) || list[0]?.offset !== this.#positions.get(k)) {
          this.#pending.delete(k);
          continue;
        }
        const take = list.splice(0, Math.max(0, max - out.length));
        out.push(...take);
        if (take.length > 0) this.#positions.set(k, (take.at(-1) as ConsumedRecord).offset + 1n);
        if (list.length === 0) this.#pending.delete(k);
        if (out.length >= max) break;
      }
      if (out.length > 0) return out;
    }
    const topics = [...new Set(partitions.map((p) => p.topic))];
    let metadata = await this.#metadata(topics);
    if (partitions.some((p) => metadata.topics.get(p.topic)?.partitions[p.partition]?.leader === undefined)) {
      this.#metadataCache = undefined; // a partition the cached metadata does not know yet
      metadata = await this.#metadata(topics);
    }
    const nameById = new Map<string, string>();
    const byNode = new Map<number, Map<string, { partition: number; fetchOffset: bigint }[]>>();
    for (const p of partitions) {
      const t = metadata.topics.get(p.topic);
      const leader = t?.partitions[p.partition]?.leader;
      if (t === undefined || leader === undefined) continue;
      nameById.set(t.id, p.topic);
      let topicsOfNode = byNode.get(leader);
      if (topicsOfNode === undefined) {
        topicsOfNode = new Map();
        byNode.set(leader, topicsOfNode);
      }
      const list = topicsOfNode.get(t.id) ?? [];
      list.push({ partition: p.partition, fetchOffset: this.#positions.get(key(p.topic, p.partition)) ?? 0n });
      topicsOfNode.set(t.id, list);
    }
    const out: ConsumedRecord[] = [];
    const responses = await Promise.all(
      [...byNode].map(([node, topicsOfNode]) =>
        this.#consumer.fetch({
          node,
          maxWaitTime: Math.max(0, timeoutMs),
          minBytes: 1,
          maxBytes: 16 * 1024 * 1024,
          isolationLevel: this.#isolationLevel(),
          topics: [...topicsOfNode].map(([topicId, ps]) => ({
            topicId,
            partitions: ps.map((p) => ({
              partition: p.partition,
              currentLeaderEpoch: -1,
              fetchOffset: p.fetchOffset,
              lastFetchedEpoch: -1,
              partitionMaxBytes: 1024 * 1024,
            })),
          })),
        }),
      ),
    );
    for (const response of responses) {
      for (const t of response.responses) {
        const topic = nameById.get(t.topicId) ?? t.topicId;
        for (const p of t.partitions) {
          const k = key(topic, p.partitionIndex);
          if (p.errorCode !== 0) {
            // out of range: start again from the reset policy
            if (p.errorCode === 1) this.#positions.delete(k);
            this.#metadataCache = undefined; // leadership may have moved
            continue;
          }
          const from = this.#positions.get(k) ?? 0n;
          const got = this.#records(topic, p.partitionIndex, p.records ?? [], p.abortedTransactions ?? [], from);
          const take = got.slice(0, Math.max(0, max - out.length));
          if (take.length < got.length) this.#pending.set(k, got.slice(take.length));
          out.push(...take);
          const last = take.at(-1);
          if (last !== undefined) this.#positions.set(k, last.offset + 1n);
          else if (take.length === got.length) {
            // nothing visible (control or aborted batches): move past what was fetched
            const end = lastOffset(p.records ?? []);
            if (end !== undefined && end + 1n > from) this.#positions.set(k, end + 1n);
          }
        }
      }
    }
    return out;
  }

  /** Records of the fetched batches at or after `from`, minus control records and (read_committed) aborted ones. */
  #records(
    topic: string,
    partition: number,
    batches: RecordsBatch[],
    aborted: { producerId: bigint; firstOffset: bigint }[],
    from: bigint,
  ): ConsumedRecord[] {
    const out: ConsumedRecord[] = [];
    const pending = [...aborted].sort((a, b) => (a.firstOffset < b.firstOffset ? -1 : 1));
    const active = new Set<bigint>();
    const committedOnly = this.#isolationLevel() === 1;
    for (const b of batches) {
      while (pending.length > 0 && pending[0]!.firstOffset <= b.firstOffset + BigInt(b.lastOffsetDelta)) {
        active.add(pending.shift()!.producerId);
      }
      if (b.attributes & CONTROL_BATCH) {
        active.delete(b.producerId);
        continue;
      }
      if (committedOnly && b.attributes & TRANSACTIONAL_BATCH && active.has(b.producerId)) continue;
      for (const r of b.records) {
        const offset = b.firstOffset + BigInt(r.offsetDelta);
        if (offset < from) continue;
        const headers: Header[] = r.headers.map(([hk, hv]) => [hk?.toString() ?? '', hv ?? Buffer.alloc(0)]);
        out.push({
          topic,
          partition,
          offset,
          timestamp: b.attributes & LOG_APPEND_TIME ? b.maxTimestamp : b.firstTimestamp + BigInt(r.timestampDelta),
          key: r.key ?? null,
          value: r.value ?? null,
          headers,
        });
      }
    }
    return out;
  }

  async commit(offsets?: (TopicPartition & { offset: bigint })[]): Promise<void> {
    if (!this.#grouped) throw invalidArgument('groupId', 'a group id to commit offsets');
    const list =
      offsets ??
      this.assignment().flatMap((tp) => {
        const offset = this.#positions.get(key(tp.topic, tp.partition));
        return offset === undefined ? [] : [{ ...tp, offset }];
      });
    if (list.length === 0) return;
    if (!this.#subscribed && this.#consumer.memberId === null) {
      // A consumer that assigned its partitions is no group member: commit as Kafka's standalone consumers do,
      // with an empty member id and generation -1 (the library would send a null member id, which brokers refuse).
      this.#consumer.memberId = '';
      this.#consumer.generationId = -1;
    }
    await this.#consumer.commit({ offsets: list.map((o) => ({ ...o, leaderEpoch: -1 })) });
  }

  async close(): Promise<void> {
    await this.#admin.close();
    await this.#consumer.close(true);
  }
}

function lastOffset(batches: RecordsBatch[]): bigint | undefined {
  const b = batches.at(-1);
  return b === undefined ? undefined : b.firstOffset + BigInt(b.lastOffsetDelta);
}

interface ProtocolErrorShape {
  apiCode?: number;
  serverErrorMessage?: string | null;
  message?: string;
  canRetry?: boolean;
  errors?: unknown;
}

/** The first error in @platformatic/kafka's error tree that carries a Kafka error code. */
function protocolError(err: unknown, depth = 0): ProtocolErrorShape | undefined {
  if (err === null || typeof err !== 'object' || depth > 4) return undefined;
  const e = err as ProtocolErrorShape;
  if (typeof e.apiCode === 'number') return e;
  const nested = e.errors;
  const children = Array.isArray(nested) ? nested : nested && typeof nested === 'object' ? Object.values(nested) : [];
  for (const child of children) {
    const found = protocolError(child, depth + 1);
    if (found) return found;
  }
  return undefined;
}

const CODE_FOR_KAFKA_ERROR: Record<number, ErrorCode> = {
  3: 'NOT_FOUND', // UNKNOWN_TOPIC_OR_PARTITION
  17: 'INVALID_ARGUMENT', // INVALID_TOPIC_EXCEPTION
  36: 'ALREADY_EXISTS', // TOPIC_ALREADY_EXISTS
  37: 'INVALID_ARGUMENT', // INVALID_PARTITIONS
  40: 'INVALID_ARGUMENT', // INVALID_CONFIG
  42: 'INVALID_ARGUMENT', // INVALID_REQUEST
};

/** Admin errors as the embedded admin throws them, so code behaves the same on both implementations. */
async function asTributaryError<T>(what: string, action: () => Promise<T>): Promise<T> {
  try {
    return await action();
  } catch (err) {
    const found = protocolError(err);
    if (found?.apiCode === undefined) throw err;
    const code = CODE_FOR_KAFKA_ERROR[found.apiCode] ?? (found.canRetry ? 'UNAVAILABLE' : 'INTERNAL');
    throw new TributaryError(code, `${what}: ${found.serverErrorMessage ?? found.message ?? 'failed'}`, {
      cause: err,
      kafkaErrorCode: found.apiCode,
    });
  }
}

class RemoteAdmin implements Admin {
  readonly #admin: KafkaAdmin;

  constructor(options: RemoteClientOptions) {
    this.#admin = new KafkaAdmin(base(options, 'admin'));
  }

  async createTopic(name: string, options: { partitions: number; config?: TopicConfig }): Promise<void> {
    const configs = Object.entries(options.config ?? {})
      .filter(([, v]) => v !== undefined)
      .map(([n, v]) => ({ name: n, value: String(v) }));
    await asTributaryError(`create topic ${name}`, () =>
      this.#admin.createTopics({ topics: [name], partitions: options.partitions, replicas: 1, configs }),
    );
  }

  async deleteTopic(name: string): Promise<void> {
    await asTributaryError(`delete topic ${name}`, () => this.#admin.deleteTopics({ topics: [name] }));
  }

  listTopics(): Promise<string[]> {
    return this.#admin.listTopics();
  }

  async describeTopic(
    name: string,
  ): Promise<{ name: string; partitions: { partition: number; highWatermark: bigint; logStartOffset: bigint }[] }> {
    const md = await this.#admin.metadata({ topics: [name], autocreateTopics: false }).catch(async (err: unknown) => {
      // The client reports an unknown topic as a plain error; tell it apart by asking for the topic list.
      if (!(await this.#admin.listTopics()).includes(name)) {
        throw new TributaryError('NOT_FOUND', `topic ${name} does not exist`, { cause: err, kafkaErrorCode: 3 });
      }
      throw err;
    });
    const t = md.topics.get(name);
    if (t === undefined) throw new TributaryError('NOT_FOUND', `topic ${name} does not exist`);
    const indexes = Array.from({ length: t.partitionsCount }, (_, i) => i);
    const offsets = async (timestamp: bigint) =>
      (
        await this.#admin.listOffsets({
          topics: [{ name, partitions: indexes.map((partitionIndex) => ({ partitionIndex, timestamp })) }],
          isolationLevel: 0,
        })
      )[0]?.partitions ?? [];
    const [latest, earliest] = await Promise.all([offsets(-1n), offsets(-2n)]);
    return {
      name,
      partitions: indexes.map((partition) => ({
        partition,
        highWatermark: latest.find((p) => p.partitionIndex === partition)?.offset ?? 0n,
        logStartOffset: earliest.find((p) => p.partitionIndex === partition)?.offset ?? 0n,
      })),
    };
  }

  async createPartitions(name: string, totalCount: number): Promise<void> {
    await asTributaryError(`create partitions of ${name}`, () =>
      this.#admin.createPartitions({ topics: [{ name, count: totalCount, assignments: [] }] }),
    );
  }

  async listGroups(): Promise<string[]> {
    return [...(await this.#admin.listGroups()).keys()];
  }

  async fetchOffsets(groupId: string): Promise<(TopicPartition & { offset: bigint })[]> {
    const groups = await this.#admin.listConsumerGroupOffsets({ groups: [groupId] });
    return (groups[0]?.topics ?? [])
      .flatMap((t) =>
        t.partitions
          .filter((p) => p.committedOffset >= 0n)
          .map((p) => ({ topic: t.name, partition: p.partitionIndex, offset: p.committedOffset })),
      )
      .sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition);
  }

  async close(): Promise<void> {
    await this.#admin.close();
  }
}
