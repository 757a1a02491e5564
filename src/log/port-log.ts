// A log owned by one thread, used from another through a MessagePort: the worker threads of a KafkaStreams
// with numThreads > 1 reach the embedded log this way. Only LogService calls cross (records stay in Kafka's
// batch format); producers and consumers are the embedded ones, running in the calling thread. This is much
// cheaper than the Kafka protocol over loopback TCP: no request framing, no sockets.
import { MessageChannel, type MessagePort, receiveMessageOnPort } from 'node:worker_threads';
import { type ErrorCode, TributaryError } from '../core/index.ts';
import type {
  AppendOptions,
  AppendResult,
  GroupDescription,
  IsolationLevel,
  JoinGroupRequest,
  JoinGroupResult,
  LogClient,
  LogService,
  OffsetAndMetadata,
  ProducerIdAndEpoch,
  ReadOptions,
  ReadResult,
  TopicConfig,
  TopicDescription,
  TopicPartition,
} from './api.ts';
import { type AdminLog, clientOver, type EmbeddedClientOptions } from './client.ts';

/** The LogService methods a port client may call, and which argument (if any) is an AbortSignal. */
const OPS: Record<string, number> = {
  createTopic: -1,
  deleteTopic: -1,
  createPartitions: -1,
  alterTopicConfig: -1,
  listTopics: -1,
  describeTopic: -1,
  append: -1,
  read: -1,
  waitForData: 2,
  listOffset: -1,
  deleteRecords: -1,
  initProducerId: -1,
  addPartitionsToTxn: -1,
  addOffsetsToTxn: -1,
  txnOffsetCommit: -1,
  endTxn: -1,
  joinGroup: 1,
  syncGroup: 4,
  heartbeat: -1,
  leaveGroup: -1,
  commitOffsets: -1,
  fetchOffsets: -1,
  describeGroup: -1,
  listGroups: -1,
  deleteGroup: -1,
};

interface Call {
  id: number;
  op: string;
  args: unknown[];
}

interface AbortCall {
  abort: number;
}

interface PortError {
  message: string;
  name?: string;
  code?: ErrorCode;
  retriable?: boolean;
  field?: string;
  kafkaErrorCode?: number;
  memberId?: string;
  stack?: string;
}

interface Reply {
  id: number;
  value?: unknown;
  error?: PortError;
  /** The log's metadata version and topics, when they changed since the last reply on this port. */
  metadata?: { version: number; topics: TopicDescription[] };
}

/**
 * `value` with its byte arrays (through arrays and plain objects) copied into fresh ArrayBuffers to transfer:
 * cloning a view would copy its whole backing store (a slab or a segment read), and transferring the caller's
 * own buffer would empty it under the caller. The caller's arrays and objects are left as they are.
 */
function pack(value: unknown, transfer: ArrayBuffer[]): unknown {
  if (value instanceof Uint8Array) {
    const copy = new Uint8Array(value.byteLength);
    copy.set(value);
    transfer.push(copy.buffer);
    return copy;
  }
  if (Array.isArray(value)) return value.map((v) => pack(v, transfer));
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const key in value) out[key] = pack((value as Record<string, unknown>)[key], transfer);
    return out;
  }
  return value;
}

/** Byte arrays arrive as Uint8Array: makes them Buffers again (no copy), through arrays and plain objects. */
function revive(value: unknown): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = revive(value[i]);
    return value;
  }
  if (value !== null && typeof value === 'object') {
    for (const key in value) (value as Record<string, unknown>)[key] = revive((value as Record<string, unknown>)[key]);
  }
  return value;
}

function toPortError(err: unknown): PortError {
  if (!(err instanceof Error)) return { message: String(err) };
  const e = err as Error & Partial<TributaryError> & { memberId?: unknown };
  return {
    message: e.message,
    name: e.name,
    ...(e.code === undefined ? {} : { code: e.code, retriable: e.retriable }),
    ...(e.field === undefined ? {} : { field: e.field }),
    ...(e.kafkaErrorCode === undefined ? {} : { kafkaErrorCode: e.kafkaErrorCode }),
    ...(typeof e.memberId === 'string' ? { memberId: e.memberId } : {}),
    ...(e.stack === undefined ? {} : { stack: e.stack }),
  };
}

/** The error as thrown in the log's thread: same class, message, code and Kafka error code. */
function fromPortError(e: PortError): Error {
  let err: Error;
  if (e.code !== undefined) {
    err = new TributaryError(e.code, e.message, {
      ...(e.retriable === undefined ? {} : { retriable: e.retriable }),
      ...(e.field === undefined ? {} : { field: e.field }),
      ...(e.kafkaErrorCode === undefined ? {} : { kafkaErrorCode: e.kafkaErrorCode }),
    });
  } else {
    err = new Error(e.message);
    if (e.name !== undefined) err.name = e.name;
  }
  if (e.memberId !== undefined) Object.assign(err, { memberId: e.memberId });
  if (e.stack !== undefined) err.stack = `${e.stack}\n    at (the log's thread, through a MessagePort)`;
  return err;
}

/**
 * Serves `log` to the other end of `port` (see `connectLogPort`). Stops when either side closes the port;
 * calls still waiting then (a group join, a fetch wait) are aborted.
 */
export function serveLogOnPort(log: LogService, port: MessagePort): { close(): void } {
  let sentVersion = -1;
  const waiting = new Map<number, AbortController>();
  const send = (reply: Reply): void => {
    try {
      const version = log.metadataVersion;
      if (version !== sentVersion) {
        reply.metadata = { version, topics: log.listTopics({ includeInternal: true }) };
        sentVersion = version;
      }
    } catch {
      // the log is closed: the reply says why
    }
    const transfer: ArrayBuffer[] = [];
    const packed = pack(reply, transfer) as Reply;
    port.postMessage(packed, transfer);
  };
  let lookups: MessagePort | undefined;
  // A topic missing from the client's metadata is looked up while the client thread waits (describeTopic is
  // synchronous): the answer goes on the lookup port, then the shared flag wakes the client.
  const serveLookups = (lookupPort: MessagePort, flag: Int32Array): void => {
    lookups = lookupPort;
    lookupPort.on('message', ({ seq, name }: { seq: number; name: string }) => {
      let reply: { seq: number; value?: TopicDescription; error?: PortError };
      try {
        reply = { seq, value: log.describeTopic(name) };
      } catch (err) {
        reply = { seq, error: toPortError(err) };
      }
      lookupPort.postMessage(reply);
      Atomics.store(flag, 0, 1);
      Atomics.notify(flag, 0);
    });
  };
  const run = async (call: Call): Promise<void> => {
    if (call.op === 'hello') {
      const [lookupPort, flag] = call.args as [MessagePort, SharedArrayBuffer];
      serveLookups(lookupPort, new Int32Array(flag));
      send({ id: call.id, value: { dataDir: log.dataDir } });
      return;
    }
    const signalAt = OPS[call.op];
    if (signalAt === undefined) {
      send({ id: call.id, error: toPortError(new TributaryError('UNSUPPORTED', `log port: no operation ${call.op}`)) });
      return;
    }
    const args = revive(call.args) as unknown[];
    let controller: AbortController | undefined;
    if (signalAt >= 0) {
      controller = new AbortController();
      waiting.set(call.id, controller);
      args[signalAt] = controller.signal;
    }
    try {
      const value = await (log as unknown as Record<string, (...a: unknown[]) => unknown>)[call.op]!(...args);
      send({ id: call.id, value });
    } catch (err) {
      send({ id: call.id, error: toPortError(err) });
    } finally {
      if (controller !== undefined) waiting.delete(call.id);
    }
  };
  const stop = (): void => {
    for (const c of waiting.values()) c.abort();
    waiting.clear();
    lookups?.close();
  };
  port.on('message', (m: Call | AbortCall) => {
    if ('abort' in m) waiting.get(m.abort)?.abort();
    else void run(m);
  });
  port.on('close', stop);
  return {
    close() {
      stop();
      port.close();
    },
  };
}

/**
 * The LogService at the other end of a port. Metadata reads (`describeTopic`, `listTopics`) answer from the
 * metadata that came with the last reply, as a Kafka client's metadata cache does (the producer and consumer
 * only read partition counts from them); a topic not in it is looked up in the log's thread, synchronously.
 * Group descriptions need the log's thread: use the admin.
 */
class PortLog implements LogService {
  dataDir = '';
  metadataVersion = -1;
  readonly #port: MessagePort;
  readonly #pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  #topics = new Map<string, TopicDescription>();
  #nextId = 1;
  #closedError: Error | undefined;
  readonly #lookupPort: MessagePort;
  readonly #lookupFlag = new Int32Array(new SharedArrayBuffer(4));
  readonly #lookupRemote: MessagePort;
  #lookupSeq = 0;

  constructor(port: MessagePort) {
    this.#port = port;
    const { port1, port2 } = new MessageChannel();
    this.#lookupPort = port1;
    this.#lookupRemote = port2;
    port.on('message', (m: Reply) => this.#onReply(m));
    port.on('close', () => {
      this.#closedError = new TributaryError('UNAVAILABLE', "log port closed: the log's thread is gone or closed it");
      for (const p of this.#pending.values()) p.reject(this.#closedError);
      this.#pending.clear();
    });
  }

  #onReply(m: Reply): void {
    if (m.metadata !== undefined) {
      this.metadataVersion = m.metadata.version;
      this.#topics = new Map(m.metadata.topics.map((t) => [t.name, t]));
    }
    const p = this.#pending.get(m.id);
    if (p === undefined) return;
    this.#pending.delete(m.id);
    if (m.error !== undefined) p.reject(fromPortError(m.error));
    else p.resolve(revive(m.value));
  }

  call<T>(op: string, args: unknown[], signal?: AbortSignal): Promise<T> {
    if (this.#closedError !== undefined) return Promise.reject(this.#closedError);
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      const transfer: ArrayBuffer[] = [];
      this.#port.postMessage({ id, op, args: pack(args, transfer) as unknown[] } satisfies Call, transfer);
      if (signal !== undefined) {
        const onAbort = (): void => this.#port.postMessage({ abort: id } satisfies AbortCall);
        if (signal.aborted) onAbort();
        else signal.addEventListener('abort', onAbort, { once: true });
      }
    });
  }

  /** The first call: hands the log's thread the lookup port; the reply brings the first metadata. */
  async hello(): Promise<void> {
    const id = this.#nextId++;
    const reply = new Promise<{ dataDir: string }>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
    });
    this.#port.postMessage({ id, op: 'hello', args: [this.#lookupRemote, this.#lookupFlag.buffer] } satisfies Call, [
      this.#lookupRemote,
    ]);
    this.dataDir = (await reply).dataDir;
  }

  close(): Promise<void> {
    this.#port.close();
    this.#lookupPort.close();
    return Promise.resolve();
  }

  /** Asks the log's thread for one topic and waits for the answer (at most 10 s; never call from that thread). */
  #lookup(name: string): TopicDescription | undefined {
    if (this.#closedError !== undefined) throw this.#closedError;
    const seq = ++this.#lookupSeq;
    Atomics.store(this.#lookupFlag, 0, 0);
    this.#lookupPort.postMessage({ seq, name });
    const deadline = Date.now() + 10_000;
    let m: { seq: number; value?: TopicDescription; error?: PortError };
    for (;;) {
      const got = receiveMessageOnPort(this.#lookupPort)?.message as typeof m | undefined;
      if (got?.seq === seq) {
        m = got;
        break;
      }
      if (got !== undefined) continue; // the answer to an earlier lookup that timed out
      const left = deadline - Date.now();
      if (left <= 0 || Atomics.wait(this.#lookupFlag, 0, 0, left) === 'timed-out') {
        throw new TributaryError(
          'TIMEOUT',
          `describeTopic(${JSON.stringify(name)}): the log's thread did not answer in 10 s`,
        );
      }
      Atomics.store(this.#lookupFlag, 0, 0);
    }
    if (m.error !== undefined) throw fromPortError(m.error);
    const found = m.value;
    if (found !== undefined) this.#topics.set(name, revive(found) as TopicDescription);
    return found;
  }

  // ---- metadata, from the last reply ----
  listTopics(options: { includeInternal?: boolean } = {}): TopicDescription[] {
    return [...this.#topics.values()].filter((t) => options.includeInternal || !t.internal);
  }
  describeTopic(name: string): TopicDescription | undefined {
    return this.#topics.get(name) ?? this.#lookup(name);
  }
  describeGroup(groupId: string): GroupDescription {
    throw new TributaryError(
      'UNSUPPORTED',
      `describeGroup(${JSON.stringify(groupId)}) needs the log's own thread; use the admin over the port`,
    );
  }
  listGroups(): { groupId: string; protocolType: string; state: GroupDescription['state'] }[] {
    throw new TributaryError('UNSUPPORTED', "listGroups() needs the log's own thread; use the admin over the port");
  }

  // ---- calls to the log's thread ----
  createTopic(name: string, options: { partitions: number; config?: TopicConfig }): Promise<TopicDescription> {
    return this.call('createTopic', [name, options]);
  }
  deleteTopic(name: string): Promise<void> {
    return this.call('deleteTopic', [name]);
  }
  createPartitions(name: string, totalCount: number): Promise<void> {
    return this.call('createPartitions', [name, totalCount]);
  }
  alterTopicConfig(name: string, config: TopicConfig): Promise<void> {
    return this.call('alterTopicConfig', [name, config]);
  }
  append(topic: string, partition: number, batches: Buffer, options?: AppendOptions): Promise<AppendResult> {
    return this.call(
      'append',
      options === undefined ? [topic, partition, batches] : [topic, partition, batches, options],
    );
  }
  read(topic: string, partition: number, fetchOffset: bigint, options: ReadOptions): Promise<ReadResult> {
    return this.call('read', [topic, partition, fetchOffset, options]);
  }
  waitForData(
    positions: { topic: string; partition: number; offset: bigint; isolation?: IsolationLevel }[],
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<void> {
    if (signal?.aborted) return Promise.resolve();
    return this.call('waitForData', [positions, timeoutMs], signal);
  }
  listOffset(
    topic: string,
    partition: number,
    timestamp: bigint,
    isolation: IsolationLevel,
  ): Promise<{ offset: bigint; timestamp: bigint }> {
    return this.call('listOffset', [topic, partition, timestamp, isolation]);
  }
  deleteRecords(topic: string, partition: number, beforeOffset: bigint): Promise<bigint> {
    return this.call('deleteRecords', [topic, partition, beforeOffset]);
  }
  initProducerId(
    transactionalId: string | null,
    transactionTimeoutMs: number,
    current?: ProducerIdAndEpoch,
  ): Promise<ProducerIdAndEpoch> {
    return this.call('initProducerId', [transactionalId, transactionTimeoutMs, current]);
  }
  addPartitionsToTxn(
    transactionalId: string,
    producer: ProducerIdAndEpoch,
    partitions: TopicPartition[],
  ): Promise<void> {
    return this.call('addPartitionsToTxn', [transactionalId, producer, partitions]);
  }
  addOffsetsToTxn(transactionalId: string, producer: ProducerIdAndEpoch, groupId: string): Promise<void> {
    return this.call('addOffsetsToTxn', [transactionalId, producer, groupId]);
  }
  txnOffsetCommit(
    transactionalId: string,
    groupId: string,
    producer: ProducerIdAndEpoch,
    offsets: (TopicPartition & OffsetAndMetadata)[],
  ): Promise<void> {
    return this.call('txnOffsetCommit', [transactionalId, groupId, producer, offsets]);
  }
  endTxn(transactionalId: string, producer: ProducerIdAndEpoch, commit: boolean): Promise<void> {
    return this.call('endTxn', [transactionalId, producer, commit]);
  }
  joinGroup(request: JoinGroupRequest, signal?: AbortSignal): Promise<JoinGroupResult> {
    return this.call('joinGroup', [request], signal);
  }
  syncGroup(
    groupId: string,
    generationId: number,
    memberId: string,
    assignments: { memberId: string; assignment: Buffer }[],
    signal?: AbortSignal,
  ): Promise<{ protocolType: string; protocolName: string; assignment: Buffer }> {
    return this.call('syncGroup', [groupId, generationId, memberId, assignments], signal);
  }
  heartbeat(groupId: string, generationId: number, memberId: string): Promise<void> {
    return this.call('heartbeat', [groupId, generationId, memberId]);
  }
  leaveGroup(groupId: string, memberId: string): Promise<void> {
    return this.call('leaveGroup', [groupId, memberId]);
  }
  commitOffsets(
    groupId: string,
    generationId: number,
    memberId: string,
    offsets: (TopicPartition & OffsetAndMetadata)[],
  ): Promise<void> {
    return this.call('commitOffsets', [groupId, generationId, memberId, offsets]);
  }
  fetchOffsets(groupId: string, partitions?: TopicPartition[]): Promise<(TopicPartition & OffsetAndMetadata)[]> {
    return this.call('fetchOffsets', partitions === undefined ? [groupId] : [groupId, partitions]);
  }
  deleteGroup(groupId: string): Promise<void> {
    return this.call('deleteGroup', [groupId]);
  }
}

/**
 * A LogClient over a log served on the other end of `port` by `serveLogOnPort` (usually in another thread).
 * Resolves once the first metadata arrived. Closing the client closes the port.
 */
export async function connectLogPort(port: MessagePort, options: EmbeddedClientOptions = {}): Promise<LogClient> {
  const log = new PortLog(port);
  await log.hello();
  const adminLog: AdminLog = {
    createTopic: (name, o) => log.createTopic(name, o),
    deleteTopic: (name) => log.deleteTopic(name),
    createPartitions: (name, count) => log.createPartitions(name, count),
    fetchOffsets: (groupId, partitions) => log.fetchOffsets(groupId, partitions),
    listTopics: () => log.call('listTopics', []),
    describeTopic: (name) => log.call('describeTopic', [name]),
    listGroups: () => log.call('listGroups', []),
  };
  const client = clientOver(log, adminLog, options);
  const close = client.close.bind(client);
  client.close = async () => {
    await close();
    await log.close();
  };
  return client;
}
