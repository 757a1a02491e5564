/**
 * A Kafka broker over a `LogService`, on node:net. One node (id 1) that leads every partition and
 * coordinates every group and transaction. Requests on a connection are read as they arrive (clients
 * pipeline) and processed one at a time, as Kafka does, so responses leave in request order and a
 * producer's batches reach the log in the order it sent them.
 */
import net from 'node:net';
import tls from 'node:tls';
import pino from 'pino';
import { channel, publish, TributaryError } from '../core/index.ts';
import type {
  IsolationLevel,
  LogService,
  OffsetAndMetadata,
  ReadResult,
  TopicConfig,
  TopicPartition,
} from '../log/index.ts';
import { errorMessage, isValidTopicName, KafkaError, toKafkaErrorCode } from './errors.ts';
import type * as G from './generated/index.ts';
import { APIS, type ApiDefinition, ApiVersionsResponseCodec, RequestHeaderCodec } from './generated/index.ts';
import { SaslAuthenticator, type SaslConversation, type SaslOptions } from './sasl.ts';
import { Reader, Writer } from './wire.ts';

export interface BrokerLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface KafkaBrokerOptions {
  log: LogService;
  /** Interface to listen on (default 127.0.0.1). */
  host?: string;
  port: number;
  /** Host name clients are told to connect to (default: the listen host, or 127.0.0.1 for 0.0.0.0). */
  advertisedHost?: string;
  /** Requests larger than this close the connection (default 100 MiB, as Kafka's socket.request.max.bytes). */
  maxRequestBytes?: number;
  /** Metadata requests create unknown topics (default true). */
  autoCreateTopics?: boolean;
  /** Partitions of auto-created topics and of CreateTopics with numPartitions -1 (default 1). */
  defaultPartitions?: number;
  sasl?: SaslOptions;
  /** Serve TLS (Kafka's SSL / SASL_SSL listeners) with this certificate and key (PEM). */
  tls?: { cert: string | Buffer; key: string | Buffer };
  logger?: BrokerLogger;
}

export interface KafkaBroker {
  readonly port: number;
  close(): Promise<void>;
}

/** Diagnostics: one event per answered request, and one per connection closed for bad input. */
const requestChannel = channel('kafka', 'request');
const rejectChannel = channel('kafka', 'error');

const NODE_ID = 1;
const CLUSTER_ID = 'tributary-cluster';
const NO_RESPONSE = Symbol('no response');

/**
 * Advertised version ranges. They must satisfy kcat (librdkafka 2.0.2), kafkajs 2.2.4 and
 * @platformatic/kafka together: librdkafka enables features only if the ranges contain Produce 0, 3, 7
 * and Fetch 4, 10; kafkajs speaks only non-flexible versions; Fetch stops at 12 (13+ needs topic ids in
 * fetch sessions); EndTxn stops at 4 (v5 is transactions v2 with an epoch bump per transaction).
 */
export const SUPPORTED_VERSIONS: ReadonlyMap<number, readonly [number, number]> = new Map([
  [0, [0, 11]], // Produce (v0-2 answer UNSUPPORTED_VERSION: they carry message format v0/v1)
  [1, [4, 12]], // Fetch
  [2, [1, 10]], // ListOffsets
  [3, [0, 12]], // Metadata
  [8, [0, 9]], // OffsetCommit
  [9, [0, 9]], // OffsetFetch
  [10, [0, 6]], // FindCoordinator
  [11, [0, 9]], // JoinGroup
  [12, [0, 4]], // Heartbeat
  [13, [0, 5]], // LeaveGroup
  [14, [0, 5]], // SyncGroup
  [15, [0, 5]], // DescribeGroups
  [16, [0, 5]], // ListGroups
  [17, [0, 1]], // SaslHandshake
  [18, [0, 4]], // ApiVersions
  [19, [0, 7]], // CreateTopics
  [20, [0, 6]], // DeleteTopics
  [22, [0, 5]], // InitProducerId
  [24, [0, 5]], // AddPartitionsToTxn
  [25, [0, 4]], // AddOffsetsToTxn
  [26, [0, 4]], // EndTxn
  [28, [0, 4]], // TxnOffsetCommit
  [32, [0, 4]], // DescribeConfigs
  [36, [0, 2]], // SaslAuthenticate
  [37, [0, 3]], // CreatePartitions
  [42, [0, 2]], // DeleteGroups
]);

const API_VERSIONS_KEYS: G.ApiVersionsResponseApiVersion[] = [...SUPPORTED_VERSIONS.entries()].map(
  ([apiKey, [minVersion, maxVersion]]) => ({ apiKey, minVersion, maxVersion }),
);

const NUMERIC_CONFIGS = new Set([
  'retention.ms',
  'retention.bytes',
  'segment.bytes',
  'segment.ms',
  'segment.index.bytes',
  'index.interval.bytes',
  'flush.messages',
  'flush.ms',
  'max.message.bytes',
  'min.compaction.lag.ms',
  'delete.retention.ms',
  'min.cleanable.dirty.ratio',
]);
const STRING_CONFIGS = new Set(['cleanup.policy', 'message.timestamp.type', 'compression.type']);

/** Kafka topic configs as strings -> `TopicConfig`; configs the log has no use for are ignored. */
export function parseTopicConfigs(configs: { name: string; value: string | null }[]): TopicConfig {
  const out: Record<string, string | number> = {};
  for (const { name, value } of configs) {
    if (value === null) continue;
    if (NUMERIC_CONFIGS.has(name)) {
      const n = Number(value);
      if (value.trim() === '' || !Number.isFinite(n)) {
        throw new TributaryError(
          'INVALID_ARGUMENT',
          `configs.${name}: expected a number, got ${JSON.stringify(value)}`,
          {
            field: `configs.${name}`,
            kafkaErrorCode: KafkaError.INVALID_CONFIG,
          },
        );
      }
      out[name] = n;
    } else if (STRING_CONFIGS.has(name)) {
      if (name === 'cleanup.policy') {
        const v = value
          .split(',')
          .map((s) => s.trim())
          .sort()
          .join(',');
        if (v !== 'delete' && v !== 'compact' && v !== 'compact,delete') {
          throw new TributaryError('INVALID_ARGUMENT', `configs.cleanup.policy: expected delete, compact or both`, {
            field: 'configs.cleanup.policy',
            kafkaErrorCode: KafkaError.INVALID_CONFIG,
          });
        }
        out[name] = v;
      } else out[name] = value;
    }
  }
  return out as TopicConfig;
}

function invalidTopic(name: string | null | undefined): TributaryError {
  return new TributaryError(
    'INVALID_ARGUMENT',
    `topic: expected a name of 1-249 characters from [a-zA-Z0-9._-] (not "." or ".."), got ${JSON.stringify(name)}`,
    { field: 'topic', kafkaErrorCode: KafkaError.INVALID_TOPIC_EXCEPTION },
  );
}

function defaultLogger(): BrokerLogger {
  return pino({ name: 'kafka-broker', level: process.env.TRIBUTARY_LOG_LEVEL ?? 'info' }, pino.destination(2));
}

export async function startKafkaBroker(options: KafkaBrokerOptions): Promise<KafkaBroker> {
  const broker = new Broker(options);
  await broker.listen();
  return broker;
}

interface RequestContext {
  conn: Connection;
  version: number;
  clientId: string;
}

type Handler = (ctx: RequestContext, request: never) => Promise<unknown> | unknown;

class Broker implements KafkaBroker {
  readonly log: LogService;
  readonly logger: BrokerLogger;
  readonly options: KafkaBrokerOptions;
  readonly maxRequestBytes: number;
  readonly autoCreate: boolean;
  readonly defaultPartitions: number;
  readonly sasl: SaslAuthenticator | null;
  readonly connections = new Set<Connection>();
  private readonly server: net.Server;
  port = 0;
  advertisedHost = '127.0.0.1';
  private readonly handlers = new Map<number, Handler>();

  constructor(options: KafkaBrokerOptions) {
    this.options = options;
    this.log = options.log;
    this.logger = options.logger ?? defaultLogger();
    this.maxRequestBytes = options.maxRequestBytes ?? 100 * 1024 * 1024;
    this.autoCreate = options.autoCreateTopics ?? true;
    this.defaultPartitions = options.defaultPartitions ?? 1;
    this.sasl = options.sasl === undefined ? null : new SaslAuthenticator(options.sasl);
    this.server =
      options.tls === undefined
        ? net.createServer({ noDelay: true }, (socket) => this.accept(socket))
        : tls.createServer({ cert: options.tls.cert, key: options.tls.key, noDelay: true }, (socket) =>
            this.accept(socket),
          );
    // A failed TLS handshake never reaches accept(); it must not take the listener down.
    this.server.on('tlsClientError', (err) => this.logger.warn({ err: err.message }, 'kafka TLS handshake failed'));
    this.registerHandlers();
  }

  listen(): Promise<void> {
    const host = this.options.host ?? '127.0.0.1';
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port, host, () => {
        this.server.off('error', reject);
        const addr = this.server.address() as net.AddressInfo;
        this.port = addr.port;
        this.advertisedHost = this.options.advertisedHost ?? (host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host);
        this.server.on('error', (err) => this.logger.error({ err }, 'kafka listener error'));
        this.logger.info({ host, port: this.port }, 'kafka broker listening');
        resolve();
      });
    });
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const c of this.connections) c.destroy();
    await closed;
  }

  private accept(socket: net.Socket): void {
    const conn = new Connection(this, socket);
    this.connections.add(conn);
    socket.on('close', () => this.connections.delete(conn));
  }

  handler(apiKey: number): Handler | undefined {
    return this.handlers.get(apiKey);
  }

  private on<Req>(apiKey: number, fn: (ctx: RequestContext, request: Req) => Promise<unknown> | unknown): void {
    this.handlers.set(apiKey, fn as Handler);
  }

  // ---------------------------------------------------------------- handlers

  private registerHandlers(): void {
    this.on<G.ApiVersionsRequest>(18, () => this.apiVersions(0));
    this.on<G.MetadataRequest>(3, (ctx, req) => this.metadata(ctx, req));
    this.on<G.ProduceRequest>(0, (ctx, req) => this.produce(ctx, req));
    this.on<G.FetchRequest>(1, (ctx, req) => this.fetch(ctx, req));
    this.on<G.ListOffsetsRequest>(2, (_ctx, req) => this.listOffsets(req));
    this.on<G.CreateTopicsRequest>(19, (ctx, req) => this.createTopics(ctx, req));
    this.on<G.DeleteTopicsRequest>(20, (ctx, req) => this.deleteTopics(ctx, req));
    this.on<G.CreatePartitionsRequest>(37, (_ctx, req) => this.createPartitions(req));
    this.on<G.DescribeConfigsRequest>(32, (_ctx, req) => this.describeConfigs(req));
    this.on<G.FindCoordinatorRequest>(10, (ctx, req) => this.findCoordinator(ctx, req));
    this.on<G.JoinGroupRequest>(11, (ctx, req) => this.joinGroup(ctx, req));
    this.on<G.SyncGroupRequest>(14, (ctx, req) => this.syncGroup(ctx, req));
    this.on<G.HeartbeatRequest>(12, (_ctx, req) => this.heartbeat(req));
    this.on<G.LeaveGroupRequest>(13, (ctx, req) => this.leaveGroup(ctx, req));
    this.on<G.OffsetCommitRequest>(8, (_ctx, req) => this.offsetCommit(req));
    this.on<G.OffsetFetchRequest>(9, (ctx, req) => this.offsetFetch(ctx, req));
    this.on<G.DescribeGroupsRequest>(15, (_ctx, req) => this.describeGroups(req));
    this.on<G.ListGroupsRequest>(16, (_ctx, req) => this.listGroups(req));
    this.on<G.DeleteGroupsRequest>(42, (_ctx, req) => this.deleteGroups(req));
    this.on<G.InitProducerIdRequest>(22, (_ctx, req) => this.initProducerId(req));
    this.on<G.AddPartitionsToTxnRequest>(24, (ctx, req) => this.addPartitionsToTxn(ctx, req));
    this.on<G.AddOffsetsToTxnRequest>(25, (_ctx, req) => this.addOffsetsToTxn(req));
    this.on<G.TxnOffsetCommitRequest>(28, (_ctx, req) => this.txnOffsetCommit(req));
    this.on<G.EndTxnRequest>(26, (_ctx, req) => this.endTxn(req));
    this.on<G.SaslHandshakeRequest>(17, (ctx, req) => this.saslHandshake(ctx, req));
    this.on<G.SaslAuthenticateRequest>(36, (ctx, req) => this.saslAuthenticate(ctx, req));
  }

  apiVersions(errorCode: number): G.ApiVersionsResponse {
    return { errorCode, apiKeys: API_VERSIONS_KEYS, throttleTimeMs: 0 };
  }

  private brokerList(): G.MetadataResponseBroker[] {
    return [{ nodeId: NODE_ID, host: this.advertisedHost, port: this.port, rack: null }];
  }

  private async metadata(ctx: RequestContext, req: G.MetadataRequest): Promise<G.MetadataResponse> {
    const v = ctx.version;
    const topics: G.MetadataResponseTopic[] = [];
    // v0: an empty list means every topic; v1+: null means every topic
    const all = req.topics === null || (v === 0 && req.topics.length === 0);
    if (all) {
      for (const t of this.log.listTopics()) topics.push(this.topicMetadata(t.name));
    } else {
      const allowCreate = this.autoCreate && (req.allowAutoTopicCreation ?? true);
      for (const t of req.topics ?? []) {
        let name = t.name;
        if (name === null && t.topicId !== undefined) {
          name = this.log.listTopics({ includeInternal: true }).find((d) => d.topicId === t.topicId)?.name ?? null;
          if (name === null) {
            topics.push({
              errorCode: KafkaError.UNKNOWN_TOPIC_OR_PARTITION,
              name: null,
              topicId: t.topicId,
              isInternal: false,
              partitions: [],
            });
            continue;
          }
        }
        if (!isValidTopicName(name)) {
          topics.push({
            errorCode: KafkaError.INVALID_TOPIC_EXCEPTION,
            name: name ?? '',
            isInternal: false,
            partitions: [],
          });
          continue;
        }
        if (this.log.describeTopic(name) === undefined && allowCreate) {
          try {
            await this.log.createTopic(name, { partitions: this.defaultPartitions });
            this.logger.info({ topic: name }, 'auto-created topic');
          } catch (err) {
            if (toKafkaErrorCode(err) !== KafkaError.TOPIC_ALREADY_EXISTS) {
              topics.push({ errorCode: toKafkaErrorCode(err), name, isInternal: false, partitions: [] });
              continue;
            }
          }
        }
        topics.push(this.topicMetadata(name));
      }
    }
    return {
      throttleTimeMs: 0,
      brokers: this.brokerList(),
      clusterId: CLUSTER_ID,
      controllerId: NODE_ID,
      topics,
      clusterAuthorizedOperations: -2147483648,
    };
  }

  private topicMetadata(name: string): G.MetadataResponseTopic {
    const d = this.log.describeTopic(name);
    if (d === undefined) {
      return { errorCode: KafkaError.UNKNOWN_TOPIC_OR_PARTITION, name, isInternal: false, partitions: [] };
    }
    return {
      errorCode: 0,
      name,
      topicId: d.topicId,
      isInternal: d.internal,
      partitions: d.partitions.map((p) => ({
        errorCode: 0,
        partitionIndex: p.partition,
        leaderId: NODE_ID,
        leaderEpoch: 0,
        replicaNodes: [NODE_ID],
        isrNodes: [NODE_ID],
        offlineReplicas: [],
      })),
      topicAuthorizedOperations: -2147483648,
    };
  }

  private async produce(ctx: RequestContext, req: G.ProduceRequest): Promise<G.ProduceResponse | typeof NO_RESPONSE> {
    const v = ctx.version;
    const responses: G.ProduceResponseTopicProduceResponse[] = [];
    const pending: Promise<void>[] = [];
    for (const topic of req.topicData) {
      const partitionResponses: G.ProduceResponsePartitionProduceResponse[] = [];
      responses.push({ name: topic.name, partitionResponses });
      for (const p of topic.partitionData) {
        const out: G.ProduceResponsePartitionProduceResponse = {
          index: p.index,
          errorCode: 0,
          baseOffset: -1n,
          logAppendTimeMs: -1n,
          logStartOffset: -1n,
          recordErrors: [],
          errorMessage: null,
        };
        partitionResponses.push(out);
        const fail = (code: number, message: string): void => {
          out.errorCode = code;
          out.errorMessage = message;
        };
        if (v < 3) {
          fail(KafkaError.UNSUPPORTED_VERSION, 'Produce v0-2 (message format v0/v1) is not supported');
        } else if (!isValidTopicName(topic.name)) {
          fail(KafkaError.INVALID_TOPIC_EXCEPTION, invalidTopic(topic.name).message);
        } else if (!this.autoCreate && this.log.describeTopic(topic.name) === undefined) {
          fail(KafkaError.UNKNOWN_TOPIC_OR_PARTITION, `topic ${topic.name} does not exist`);
        } else if (p.records === null || p.records.length === 0) {
          fail(KafkaError.CORRUPT_MESSAGE, 'records: expected at least one record batch');
        } else {
          const records = p.records;
          pending.push(
            this.log.append(topic.name, p.index, records).then(
              (r) => {
                out.baseOffset = r.baseOffset;
                out.logAppendTimeMs = r.logAppendTime;
                out.logStartOffset = r.logStartOffset;
              },
              (err: unknown) => {
                fail(toKafkaErrorCode(err), errorMessage(err));
                this.logger.warn(
                  { topic: topic.name, partition: p.index, client: ctx.clientId, err: errorMessage(err) },
                  'produce rejected',
                );
              },
            ),
          );
        }
      }
    }
    if (pending.length > 0) await Promise.all(pending);
    if (req.acks === 0) return NO_RESPONSE;
    return { responses, throttleTimeMs: 0 };
  }

  private async fetch(ctx: RequestContext, req: G.FetchRequest): Promise<G.FetchResponse> {
    const isolation: IsolationLevel = (req.isolationLevel ?? 0) === 1 ? 'read_committed' : 'read_uncommitted';
    const deadline = Date.now() + Math.max(0, req.maxWaitMs);
    const maxBytes = req.maxBytes ?? 0x7fffffff;
    const signal = ctx.conn.signal;
    let result = await this.fetchOnce(req, isolation, maxBytes);
    while (result.bytes < Math.max(1, req.minBytes) && !signal.aborted) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) break;
      const positions = result.positions;
      // a partition error is news the client must act on (as in Kafka, it ends the wait)
      if (result.errors > 0) break;
      if (positions.length === 0) {
        await sleep(remaining, signal);
        break;
      }
      try {
        await this.log.waitForData(positions, remaining, signal);
      } catch {
        break;
      }
      result = await this.fetchOnce(req, isolation, maxBytes);
    }
    return result.response;
  }

  private async fetchOnce(
    req: G.FetchRequest,
    isolation: IsolationLevel,
    maxBytes: number,
  ): Promise<{
    response: G.FetchResponse;
    bytes: number;
    /** Where to wait for more data: past the high watermark or the fetch offset, whichever is later. */
    positions: { topic: string; partition: number; offset: bigint }[];
    errors: number;
  }> {
    let bytes = 0;
    let errors = 0;
    const positions: { topic: string; partition: number; offset: bigint }[] = [];
    const responses: G.FetchResponseFetchableTopicResponse[] = [];
    for (const t of req.topics) {
      const topic = this.resolveFetchTopic(t.topic ?? '');
      const partitions: G.FetchResponsePartitionData[] = [];
      // the response echoes the name as sent (see resolveFetchTopic)
      responses.push({ topic: t.topic ?? '', partitions });
      for (const p of t.partitions) {
        const out: G.FetchResponsePartitionData = {
          partitionIndex: p.partition,
          errorCode: 0,
          highWatermark: -1n,
          lastStableOffset: -1n,
          logStartOffset: -1n,
          abortedTransactions: null,
          preferredReadReplica: -1,
          records: null,
        };
        partitions.push(out);
        // the first batch is always returned whole, later partitions only while the response has room
        const room = bytes === 0 ? p.partitionMaxBytes : Math.min(p.partitionMaxBytes, maxBytes - bytes);
        let r: ReadResult;
        try {
          if (room <= 0) {
            r = await this.log.read(topic, p.partition, p.fetchOffset, { maxBytes: 0, isolation });
            r = { ...r, records: Buffer.alloc(0), abortedTransactions: [] };
          } else {
            r = await this.log.read(topic, p.partition, p.fetchOffset, { maxBytes: room, isolation });
          }
        } catch (err) {
          out.errorCode = toKafkaErrorCode(err);
          errors++;
          continue;
        }
        out.highWatermark = r.highWatermark;
        out.lastStableOffset = r.lastStableOffset;
        out.logStartOffset = r.logStartOffset;
        out.records = r.records;
        positions.push({
          topic,
          partition: p.partition,
          offset: maxOffset(r.highWatermark, p.fetchOffset),
        });
        if (isolation === 'read_committed') {
          out.abortedTransactions = r.abortedTransactions.map((a) => ({
            producerId: a.producerId,
            firstOffset: a.firstOffset,
          }));
        }
        bytes += r.records.length;
      }
    }
    return { response: { throttleTimeMs: 0, errorCode: 0, sessionId: 0, responses }, bytes, positions, errors };
  }

  /**
   * @platformatic/kafka 1.x sends the topic id (as a UUID string) in Fetch v12's topic name field and
   * matches the response by it, so a name that is no topic but is a topic id means that topic.
   */
  private resolveFetchTopic(name: string): string {
    if (name.length !== 36 || this.log.describeTopic(name) !== undefined) return name;
    return this.log.listTopics({ includeInternal: true }).find((d) => d.topicId === name)?.name ?? name;
  }

  private async listOffsets(req: G.ListOffsetsRequest): Promise<G.ListOffsetsResponse> {
    const isolation: IsolationLevel = (req.isolationLevel ?? 0) === 1 ? 'read_committed' : 'read_uncommitted';
    const topics: G.ListOffsetsResponseListOffsetsTopicResponse[] = [];
    for (const t of req.topics) {
      const partitions: G.ListOffsetsResponseListOffsetsPartitionResponse[] = [];
      topics.push({ name: t.name, partitions });
      for (const p of t.partitions) {
        try {
          const r = await this.log.listOffset(t.name, p.partitionIndex, p.timestamp, isolation);
          partitions.push({
            partitionIndex: p.partitionIndex,
            errorCode: 0,
            oldStyleOffsets: r.offset >= 0n ? [r.offset] : [],
            timestamp: r.timestamp,
            offset: r.offset,
            leaderEpoch: 0,
          });
        } catch (err) {
          partitions.push({
            partitionIndex: p.partitionIndex,
            errorCode: toKafkaErrorCode(err),
            oldStyleOffsets: [],
            timestamp: -1n,
            offset: -1n,
            leaderEpoch: -1,
          });
        }
      }
    }
    return { throttleTimeMs: 0, topics };
  }

  private async createTopics(ctx: RequestContext, req: G.CreateTopicsRequest): Promise<G.CreateTopicsResponse> {
    const topics: G.CreateTopicsResponseCreatableTopicResult[] = [];
    for (const t of req.topics) {
      const result: G.CreateTopicsResponseCreatableTopicResult = {
        name: t.name,
        errorCode: 0,
        errorMessage: null,
        numPartitions: -1,
        replicationFactor: -1,
        configs: null,
      };
      topics.push(result);
      try {
        if (!isValidTopicName(t.name)) throw invalidTopic(t.name);
        const partitions = t.numPartitions === -1 ? this.defaultPartitions : t.numPartitions;
        if (!(partitions >= 1) && t.assignments.length === 0) {
          throw new TributaryError('INVALID_ARGUMENT', `numPartitions: expected >= 1, got ${t.numPartitions}`, {
            field: 'numPartitions',
            kafkaErrorCode: KafkaError.INVALID_PARTITIONS,
          });
        }
        const count = t.assignments.length > 0 ? t.assignments.length : partitions;
        const config = parseTopicConfigs(t.configs);
        if (req.validateOnly === true) {
          if (this.log.describeTopic(t.name) !== undefined) {
            throw new TributaryError('ALREADY_EXISTS', `topic ${t.name} already exists`, {
              kafkaErrorCode: KafkaError.TOPIC_ALREADY_EXISTS,
            });
          }
          result.numPartitions = count;
          result.replicationFactor = 1;
          continue;
        }
        const d = await this.log.createTopic(t.name, { partitions: count, config });
        result.topicId = d.topicId;
        result.numPartitions = d.partitions.length;
        result.replicationFactor = 1;
        if (ctx.version >= 5) result.configs = configEntries(d.config);
      } catch (err) {
        result.errorCode = toKafkaErrorCode(err);
        result.errorMessage = errorMessage(err);
      }
    }
    return { throttleTimeMs: 0, topics };
  }

  private async deleteTopics(ctx: RequestContext, req: G.DeleteTopicsRequest): Promise<G.DeleteTopicsResponse> {
    const wanted: { name: string | null; topicId?: string }[] =
      ctx.version >= 6
        ? (req.topics ?? []).map((t) => ({ name: t.name ?? null, topicId: t.topicId }))
        : (req.topicNames ?? []).map((name) => ({ name }));
    const responses: G.DeleteTopicsResponseDeletableTopicResult[] = [];
    for (const w of wanted) {
      let name = w.name;
      if (name === null && w.topicId !== undefined) {
        name = this.log.listTopics({ includeInternal: true }).find((d) => d.topicId === w.topicId)?.name ?? null;
      }
      const result: G.DeleteTopicsResponseDeletableTopicResult = {
        name,
        topicId: w.topicId ?? this.log.describeTopic(name ?? '')?.topicId,
        errorCode: 0,
        errorMessage: null,
      };
      responses.push(result);
      try {
        if (name === null) throw new TributaryError('NOT_FOUND', `topic id ${w.topicId} does not exist`);
        await this.log.deleteTopic(name);
      } catch (err) {
        result.errorCode = toKafkaErrorCode(err);
        result.errorMessage = errorMessage(err);
      }
    }
    return { throttleTimeMs: 0, responses };
  }

  private async createPartitions(req: G.CreatePartitionsRequest): Promise<G.CreatePartitionsResponse> {
    const results: G.CreatePartitionsResponseCreatePartitionsTopicResult[] = [];
    for (const t of req.topics) {
      const result: G.CreatePartitionsResponseCreatePartitionsTopicResult = {
        name: t.name,
        errorCode: 0,
        errorMessage: null,
      };
      results.push(result);
      try {
        const d = this.log.describeTopic(t.name);
        if (d === undefined) throw new TributaryError('NOT_FOUND', `topic ${t.name} does not exist`);
        if (t.count <= d.partitions.length) {
          throw new TributaryError(
            'INVALID_ARGUMENT',
            `count: expected more than the current ${d.partitions.length} partitions, got ${t.count}`,
            { field: 'count', kafkaErrorCode: KafkaError.INVALID_PARTITIONS },
          );
        }
        if (!req.validateOnly) await this.log.createPartitions(t.name, t.count);
      } catch (err) {
        result.errorCode = toKafkaErrorCode(err);
        result.errorMessage = errorMessage(err);
      }
    }
    return { throttleTimeMs: 0, results };
  }

  private describeConfigs(req: G.DescribeConfigsRequest): G.DescribeConfigsResponse {
    const results: G.DescribeConfigsResponseDescribeConfigsResult[] = [];
    for (const res of req.resources) {
      const result: G.DescribeConfigsResponseDescribeConfigsResult = {
        errorCode: 0,
        errorMessage: null,
        resourceType: res.resourceType,
        resourceName: res.resourceName,
        configs: [],
      };
      results.push(result);
      if (res.resourceType === 2) {
        const d = this.log.describeTopic(res.resourceName);
        if (d === undefined) {
          result.errorCode = KafkaError.UNKNOWN_TOPIC_OR_PARTITION;
          result.errorMessage = `topic ${res.resourceName} does not exist`;
          continue;
        }
        const entries = configEntries(d.config);
        result.configs = entries
          .filter((e) => res.configurationKeys === null || res.configurationKeys.includes(e.name))
          .map((e) => ({
            name: e.name,
            value: e.value,
            readOnly: false,
            isDefault: false,
            configSource: 1,
            isSensitive: false,
            synonyms: [],
            configType: 0,
            documentation: null,
          }));
      } else if (res.resourceType === 4) {
        result.configs = [];
      } else {
        result.errorCode = KafkaError.INVALID_REQUEST;
        result.errorMessage = `resourceType: expected 2 (topic) or 4 (broker), got ${res.resourceType}`;
      }
    }
    return { throttleTimeMs: 0, results };
  }

  private findCoordinator(ctx: RequestContext, req: G.FindCoordinatorRequest): G.FindCoordinatorResponse {
    if (ctx.version >= 4) {
      return {
        throttleTimeMs: 0,
        coordinators: (req.coordinatorKeys ?? []).map((key) => ({
          key,
          nodeId: NODE_ID,
          host: this.advertisedHost,
          port: this.port,
          errorCode: 0,
          errorMessage: null,
        })),
      };
    }
    return {
      throttleTimeMs: 0,
      errorCode: 0,
      errorMessage: null,
      nodeId: NODE_ID,
      host: this.advertisedHost,
      port: this.port,
    };
  }

  private async joinGroup(ctx: RequestContext, req: G.JoinGroupRequest): Promise<G.JoinGroupResponse> {
    const v = ctx.version;
    try {
      const r = await this.log.joinGroup(
        {
          groupId: req.groupId,
          sessionTimeoutMs: req.sessionTimeoutMs,
          rebalanceTimeoutMs: req.rebalanceTimeoutMs ?? req.sessionTimeoutMs,
          memberId: req.memberId,
          groupInstanceId: req.groupInstanceId ?? null,
          protocolType: req.protocolType,
          protocols: req.protocols,
          clientId: ctx.clientId,
          clientHost: ctx.conn.remoteHost,
          requireKnownMemberId: v >= 4,
        },
        ctx.conn.signal,
      );
      return {
        throttleTimeMs: 0,
        errorCode: 0,
        generationId: r.generationId,
        protocolType: r.protocolType,
        protocolName: r.protocolName,
        leader: r.leader,
        skipAssignment: false,
        memberId: r.memberId,
        members: r.members.map((m) => ({
          memberId: m.memberId,
          groupInstanceId: m.groupInstanceId,
          metadata: m.metadata,
        })),
      };
    } catch (err) {
      const memberId = (err as { memberId?: unknown }).memberId;
      return {
        throttleTimeMs: 0,
        errorCode: toKafkaErrorCode(err, KafkaError.GROUP_ID_NOT_FOUND),
        generationId: -1,
        protocolType: null,
        protocolName: v >= 7 ? null : '',
        leader: '',
        skipAssignment: false,
        memberId: typeof memberId === 'string' ? memberId : req.memberId,
        members: [],
      };
    }
  }

  private async syncGroup(ctx: RequestContext, req: G.SyncGroupRequest): Promise<G.SyncGroupResponse> {
    try {
      const r = await this.log.syncGroup(req.groupId, req.generationId, req.memberId, req.assignments, ctx.conn.signal);
      return {
        throttleTimeMs: 0,
        errorCode: 0,
        protocolType: r.protocolType,
        protocolName: r.protocolName,
        assignment: r.assignment,
      };
    } catch (err) {
      return {
        throttleTimeMs: 0,
        errorCode: toKafkaErrorCode(err, KafkaError.GROUP_ID_NOT_FOUND),
        protocolType: null,
        protocolName: null,
        assignment: Buffer.alloc(0),
      };
    }
  }

  private async heartbeat(req: G.HeartbeatRequest): Promise<G.HeartbeatResponse> {
    try {
      await this.log.heartbeat(req.groupId, req.generationId, req.memberId);
      return { throttleTimeMs: 0, errorCode: 0 };
    } catch (err) {
      return { throttleTimeMs: 0, errorCode: toKafkaErrorCode(err, KafkaError.GROUP_ID_NOT_FOUND) };
    }
  }

  private async leaveGroup(ctx: RequestContext, req: G.LeaveGroupRequest): Promise<G.LeaveGroupResponse> {
    if (ctx.version < 3) {
      try {
        await this.log.leaveGroup(req.groupId, req.memberId ?? '');
        return { throttleTimeMs: 0, errorCode: 0 };
      } catch (err) {
        return { throttleTimeMs: 0, errorCode: toKafkaErrorCode(err, KafkaError.GROUP_ID_NOT_FOUND) };
      }
    }
    const members: G.LeaveGroupResponseMemberResponse[] = [];
    for (const m of req.members ?? []) {
      let errorCode = 0;
      try {
        await this.log.leaveGroup(req.groupId, m.memberId);
      } catch (err) {
        errorCode = toKafkaErrorCode(err, KafkaError.GROUP_ID_NOT_FOUND);
      }
      members.push({ memberId: m.memberId, groupInstanceId: m.groupInstanceId ?? null, errorCode });
    }
    return { throttleTimeMs: 0, errorCode: 0, members };
  }

  private async offsetCommit(req: G.OffsetCommitRequest): Promise<G.OffsetCommitResponse> {
    const offsets: (TopicPartition & OffsetAndMetadata)[] = [];
    for (const t of req.topics) {
      for (const p of t.partitions) {
        offsets.push({
          topic: t.name,
          partition: p.partitionIndex,
          offset: p.committedOffset,
          leaderEpoch: p.committedLeaderEpoch ?? -1,
          metadata: p.committedMetadata,
        });
      }
    }
    let errorCode = 0;
    try {
      await this.log.commitOffsets(req.groupId, req.generationIdOrMemberEpoch ?? -1, req.memberId ?? '', offsets);
    } catch (err) {
      errorCode = toKafkaErrorCode(err, KafkaError.GROUP_ID_NOT_FOUND);
    }
    return {
      throttleTimeMs: 0,
      topics: req.topics.map((t) => ({
        name: t.name,
        partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode })),
      })),
    };
  }

  private async fetchGroupOffsets(
    groupId: string,
    topics: { name: string; partitionIndexes: number[] }[] | null,
  ): Promise<{ errorCode: number; topics: G.OffsetFetchResponseTopic[] }> {
    const wanted = topics?.flatMap((t) => t.partitionIndexes.map((partition) => ({ topic: t.name, partition })));
    let committed: (TopicPartition & OffsetAndMetadata)[];
    try {
      committed = await this.log.fetchOffsets(groupId, wanted);
    } catch (err) {
      return { errorCode: toKafkaErrorCode(err, KafkaError.GROUP_ID_NOT_FOUND), topics: [] };
    }
    const byKey = new Map(committed.map((c) => [`${c.topic}\u0000${c.partition}`, c]));
    const out = new Map<string, G.OffsetFetchResponsePartition[]>();
    const add = (topic: string, partition: number): void => {
      const c = byKey.get(`${topic}\u0000${partition}`);
      let list = out.get(topic);
      if (list === undefined) {
        list = [];
        out.set(topic, list);
      }
      list.push({
        partitionIndex: partition,
        committedOffset: c?.offset ?? -1n,
        committedLeaderEpoch: c?.leaderEpoch ?? -1,
        metadata: c?.metadata ?? '',
        errorCode: 0,
      });
    };
    if (wanted === undefined) for (const c of committed) add(c.topic, c.partition);
    else for (const w of wanted) add(w.topic, w.partition);
    return { errorCode: 0, topics: [...out.entries()].map(([name, partitions]) => ({ name, partitions })) };
  }

  private async offsetFetch(ctx: RequestContext, req: G.OffsetFetchRequest): Promise<G.OffsetFetchResponse> {
    if (ctx.version >= 8) {
      const groups: G.OffsetFetchResponseGroup[] = [];
      for (const g of req.groups ?? []) {
        const r = await this.fetchGroupOffsets(g.groupId, g.topics);
        groups.push({ groupId: g.groupId, topics: r.topics, errorCode: r.errorCode });
      }
      return { throttleTimeMs: 0, groups };
    }
    const r = await this.fetchGroupOffsets(req.groupId ?? '', req.topics ?? null);
    return { throttleTimeMs: 0, topics: r.topics, errorCode: r.errorCode };
  }

  private describeGroups(req: G.DescribeGroupsRequest): G.DescribeGroupsResponse {
    return {
      throttleTimeMs: 0,
      groups: req.groups.map((groupId) => {
        try {
          const d = this.log.describeGroup(groupId);
          return {
            errorCode: 0,
            groupId,
            groupState: d.state,
            protocolType: d.protocolType,
            protocolData: d.protocol,
            members: d.members.map((m) => ({
              memberId: m.memberId,
              groupInstanceId: m.groupInstanceId,
              clientId: m.clientId,
              clientHost: m.clientHost,
              memberMetadata: m.metadata,
              memberAssignment: m.assignment,
            })),
            authorizedOperations: -2147483648,
          };
        } catch (err) {
          const code = toKafkaErrorCode(err, KafkaError.GROUP_ID_NOT_FOUND);
          const dead = code === KafkaError.GROUP_ID_NOT_FOUND;
          return {
            errorCode: dead ? 0 : code,
            groupId,
            groupState: 'Dead',
            protocolType: '',
            protocolData: '',
            members: [],
            authorizedOperations: -2147483648,
          };
        }
      }),
    };
  }

  private listGroups(req: G.ListGroupsRequest): G.ListGroupsResponse {
    const states = (req.statesFilter ?? []).map((s) => s.toLowerCase());
    const types = (req.typesFilter ?? []).map((s) => s.toLowerCase());
    const groups = this.log
      .listGroups()
      .filter((g) => states.length === 0 || states.includes(g.state.toLowerCase()))
      .filter((_g) => types.length === 0 || types.includes('classic'))
      .map((g) => ({ groupId: g.groupId, protocolType: g.protocolType, groupState: g.state, groupType: 'classic' }));
    return { throttleTimeMs: 0, errorCode: 0, groups };
  }

  private async deleteGroups(req: G.DeleteGroupsRequest): Promise<G.DeleteGroupsResponse> {
    const results: G.DeleteGroupsResponseDeletableGroupResult[] = [];
    for (const groupId of req.groupsNames) {
      let errorCode = 0;
      try {
        await this.log.deleteGroup(groupId);
      } catch (err) {
        errorCode = toKafkaErrorCode(err, KafkaError.GROUP_ID_NOT_FOUND);
      }
      results.push({ groupId, errorCode });
    }
    return { throttleTimeMs: 0, results };
  }

  private async initProducerId(req: G.InitProducerIdRequest): Promise<G.InitProducerIdResponse> {
    try {
      const current =
        req.producerId !== undefined && req.producerId >= 0n
          ? { producerId: req.producerId, producerEpoch: req.producerEpoch ?? -1 }
          : undefined;
      const r = await this.log.initProducerId(req.transactionalId, req.transactionTimeoutMs, current);
      return { throttleTimeMs: 0, errorCode: 0, producerId: r.producerId, producerEpoch: r.producerEpoch };
    } catch (err) {
      return { throttleTimeMs: 0, errorCode: toKafkaErrorCode(err), producerId: -1n, producerEpoch: -1 };
    }
  }

  private async addPartitions(
    transactionalId: string,
    producerId: bigint,
    producerEpoch: number,
    topics: G.AddPartitionsToTxnRequestAddPartitionsToTxnTopic[],
    verifyOnly: boolean,
  ): Promise<G.AddPartitionsToTxnResponseAddPartitionsToTxnTopicResult[]> {
    let code = 0;
    const invalid = topics.find((t) => !isValidTopicName(t.name));
    if (invalid !== undefined) code = KafkaError.INVALID_TOPIC_EXCEPTION;
    else if (!verifyOnly) {
      try {
        await this.log.addPartitionsToTxn(
          transactionalId,
          { producerId, producerEpoch },
          topics.flatMap((t) => t.partitions.map((partition) => ({ topic: t.name, partition }))),
        );
      } catch (err) {
        code = toKafkaErrorCode(err);
      }
    }
    return topics.map((t) => ({
      name: t.name,
      resultsByPartition: t.partitions.map((partitionIndex) => ({ partitionIndex, partitionErrorCode: code })),
    }));
  }

  private async addPartitionsToTxn(
    ctx: RequestContext,
    req: G.AddPartitionsToTxnRequest,
  ): Promise<G.AddPartitionsToTxnResponse> {
    if (ctx.version <= 3) {
      const resultsByTopicV3AndBelow = await this.addPartitions(
        req.v3AndBelowTransactionalId ?? '',
        req.v3AndBelowProducerId ?? -1n,
        req.v3AndBelowProducerEpoch ?? -1,
        req.v3AndBelowTopics ?? [],
        false,
      );
      return { throttleTimeMs: 0, resultsByTopicV3AndBelow };
    }
    const resultsByTransaction: G.AddPartitionsToTxnResponseAddPartitionsToTxnResult[] = [];
    for (const t of req.transactions ?? []) {
      resultsByTransaction.push({
        transactionalId: t.transactionalId,
        topicResults: await this.addPartitions(
          t.transactionalId,
          t.producerId,
          t.producerEpoch,
          t.topics,
          t.verifyOnly === true,
        ),
      });
    }
    return { throttleTimeMs: 0, errorCode: 0, resultsByTransaction };
  }

  private async addOffsetsToTxn(req: G.AddOffsetsToTxnRequest): Promise<G.AddOffsetsToTxnResponse> {
    try {
      await this.log.addOffsetsToTxn(
        req.transactionalId,
        { producerId: req.producerId, producerEpoch: req.producerEpoch },
        req.groupId,
      );
      return { throttleTimeMs: 0, errorCode: 0 };
    } catch (err) {
      return { throttleTimeMs: 0, errorCode: toKafkaErrorCode(err) };
    }
  }

  private async txnOffsetCommit(req: G.TxnOffsetCommitRequest): Promise<G.TxnOffsetCommitResponse> {
    let errorCode = 0;
    try {
      await this.log.txnOffsetCommit(
        req.transactionalId,
        req.groupId,
        { producerId: req.producerId, producerEpoch: req.producerEpoch },
        req.topics.flatMap((t) =>
          t.partitions.map((p) => ({
            topic: t.name,
            partition: p.partitionIndex,
            offset: p.committedOffset,
            leaderEpoch: p.committedLeaderEpoch ?? -1,
            metadata: p.committedMetadata,
          })),
        ),
      );
    } catch (err) {
      errorCode = toKafkaErrorCode(err);
    }
    return {
      throttleTimeMs: 0,
      topics: req.topics.map((t) => ({
        name: t.name,
        partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode })),
      })),
    };
  }

  private async endTxn(req: G.EndTxnRequest): Promise<G.EndTxnResponse> {
    try {
      await this.log.endTxn(
        req.transactionalId,
        { producerId: req.producerId, producerEpoch: req.producerEpoch },
        req.committed,
      );
      return { throttleTimeMs: 0, errorCode: 0, producerId: req.producerId, producerEpoch: req.producerEpoch };
    } catch (err) {
      return { throttleTimeMs: 0, errorCode: toKafkaErrorCode(err), producerId: -1n, producerEpoch: -1 };
    }
  }

  private saslHandshake(ctx: RequestContext, req: G.SaslHandshakeRequest): G.SaslHandshakeResponse {
    const mechanisms = this.sasl?.options.mechanisms ?? [];
    if (this.sasl === null || !this.sasl.supports(req.mechanism)) {
      this.logger.warn({ client: ctx.clientId, mechanism: req.mechanism }, 'unsupported SASL mechanism');
      return { errorCode: KafkaError.UNSUPPORTED_SASL_MECHANISM, mechanisms };
    }
    ctx.conn.sasl = this.sasl.start(req.mechanism);
    // v0: the client then sends raw SASL tokens without Kafka framing of the request
    ctx.conn.rawSasl = ctx.version === 0;
    return { errorCode: 0, mechanisms };
  }

  private saslAuthenticate(ctx: RequestContext, req: G.SaslAuthenticateRequest): G.SaslAuthenticateResponse {
    const step = ctx.conn.saslStep(req.authBytes);
    if ('failed' in step) {
      ctx.conn.closeAfterResponse = true;
      return {
        errorCode: KafkaError.SASL_AUTHENTICATION_FAILED,
        errorMessage: step.failed,
        authBytes: Buffer.alloc(0),
        sessionLifetimeMs: 0n,
      };
    }
    return { errorCode: 0, errorMessage: null, authBytes: step.response, sessionLifetimeMs: 0n };
  }
}

function configEntries(
  config: TopicConfig,
): { name: string; value: string | null; readOnly: boolean; isSensitive: boolean; configSource: number }[] {
  return Object.entries(config)
    .filter(([, value]) => value !== undefined)
    .map(([name, value]) => ({ name, value: String(value), readOnly: false, isSensitive: false, configSource: 1 }));
}

function maxOffset(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Keys that may be used before authentication when SASL is required. */
const PRE_AUTH_APIS = new Set([17, 18, 36]);
/** Stop reading from a client that has this many unprocessed requests queued. */
const MAX_QUEUED = 256;

class Connection {
  readonly broker: Broker;
  readonly socket: net.Socket;
  readonly remoteHost: string;
  private readonly abort = new AbortController();
  private chunks: Buffer[] = [];
  private buffered = 0;
  private need = -1;
  private readonly queue: Buffer[] = [];
  private processing = false;
  private paused = false;
  closed = false;
  authenticated: boolean;
  sasl: SaslConversation | null = null;
  rawSasl = false;
  closeAfterResponse = false;

  constructor(broker: Broker, socket: net.Socket) {
    this.broker = broker;
    this.socket = socket;
    this.remoteHost = socket.remoteAddress ?? '';
    this.authenticated = broker.sasl === null || broker.sasl.options.allowAnonymous === true;
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', (err) => {
      if (!this.closed) broker.logger.info({ remote: this.remoteHost, err: err.message }, 'kafka connection error');
    });
    socket.on('close', () => this.onClose());
  }

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  destroy(): void {
    this.onClose();
    this.socket.destroy();
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.abort.abort();
    this.queue.length = 0;
  }

  /** Logs why and closes the connection (bad input is never fatal to the broker). */
  reject(reason: string, extra: object = {}): void {
    this.broker.logger.warn({ remote: this.remoteHost, ...extra }, `closing kafka connection: ${reason}`);
    publish(rejectChannel, () => ({ remote: this.remoteHost, reason, ...extra }));
    this.destroy();
  }

  private onData(data: Buffer): void {
    if (this.closed) return;
    this.chunks.push(data);
    this.buffered += data.length;
    for (;;) {
      if (this.need < 0) {
        if (this.buffered < 4) break;
        let head = this.chunks[0]!;
        if (head.length < 4) {
          head = Buffer.concat(this.chunks, this.buffered);
          this.chunks = [head];
        }
        const size = head.readInt32BE(0);
        if (size < 0 || size > this.broker.maxRequestBytes) {
          this.reject(
            size < 0
              ? `negative request size ${size}`
              : `request of ${size} bytes exceeds ${this.broker.maxRequestBytes}`,
          );
          return;
        }
        this.need = size + 4;
      }
      if (this.buffered < this.need) break;
      this.queue.push(this.takeFrame(this.need).subarray(4));
      this.need = -1;
    }
    if (this.queue.length >= MAX_QUEUED && !this.paused) {
      this.paused = true;
      this.socket.pause();
    }
    if (!this.processing) void this.pump();
  }

  /**
   * Removes the next `n` buffered bytes: a slice when one chunk holds them (the usual case for small
   * requests), else one copy of exactly those bytes; what follows stays in its chunks uncopied.
   */
  private takeFrame(n: number): Buffer {
    const first = this.chunks[0]!;
    this.buffered -= n;
    if (first.length >= n) {
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.chunks[0]!;
      const take = Math.min(chunk.length, n - filled);
      chunk.copy(out, filled, 0, take);
      filled += take;
      if (take === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(take);
    }
    return out;
  }

  private async pump(): Promise<void> {
    this.processing = true;
    try {
      while (this.queue.length > 0 && !this.closed) {
        const frame = this.queue.shift()!;
        await this.handleFrame(frame);
        // a client that does not read its responses gets no more processing (Kafka mutes it likewise)
        if (this.socket.writableNeedDrain && !this.closed) await this.drained();
        if (this.paused && this.queue.length < MAX_QUEUED / 2) {
          this.paused = false;
          this.socket.resume();
        }
      }
    } catch (err) {
      this.broker.logger.error({ remote: this.remoteHost, err }, 'kafka request failed');
      this.destroy();
    } finally {
      this.processing = false;
    }
  }

  private drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }

  saslStep(token: Buffer): ReturnType<SaslConversation['step']> {
    if (this.sasl === null) return { failed: 'SaslAuthenticate before SaslHandshake' };
    const step = this.sasl.step(token);
    if ('failed' in step) {
      this.broker.logger.warn({ remote: this.remoteHost, reason: step.failed }, 'SASL authentication failed');
      this.sasl = null;
    } else if (step.done) {
      this.authenticated = true;
      this.sasl = null;
      this.broker.logger.info({ remote: this.remoteHost, user: step.user }, 'SASL authenticated');
    }
    return step;
  }

  private async handleFrame(frame: Buffer): Promise<void> {
    if (this.rawSasl) {
      // SaslHandshake v0: this frame is a bare token and the answer a bare size-prefixed token
      const step = this.saslStep(frame);
      if ('failed' in step) {
        this.destroy();
        return;
      }
      if (step.done) this.rawSasl = false;
      const out = Buffer.allocUnsafe(4 + step.response.length);
      out.writeInt32BE(step.response.length, 0);
      step.response.copy(out, 4);
      this.socket.write(out);
      return;
    }
    if (frame.length < 8) {
      this.reject(`request of ${frame.length} bytes is shorter than a request header`);
      return;
    }
    const apiKey = frame.readInt16BE(0);
    const version = frame.readInt16BE(2);
    const correlationId = frame.readInt32BE(4);
    const supported = SUPPORTED_VERSIONS.get(apiKey);
    const api: ApiDefinition | undefined = APIS.get(apiKey);
    const handler = this.broker.handler(apiKey);
    if (supported === undefined || api === undefined || handler === undefined) {
      this.reject(`unsupported api key ${apiKey}`, { apiKey, version });
      return;
    }
    if (version < supported[0] || version > supported[1]) {
      if (apiKey === 18) {
        // Kafka answers an unknown ApiVersions version with v0 and UNSUPPORTED_VERSION so clients retry lower
        this.send(correlationId, false, (w) =>
          ApiVersionsResponseCodec.write(w, 0, this.broker.apiVersions(KafkaError.UNSUPPORTED_VERSION)),
        );
        return;
      }
      this.reject(`unsupported version ${version} of api ${api.name}`, { apiKey, version });
      return;
    }
    if (!this.authenticated && !PRE_AUTH_APIS.has(apiKey)) {
      this.reject(`${api.name} before SASL authentication`, { apiKey });
      return;
    }
    const flexible = api.flexibleFrom >= 0 && version >= api.flexibleFrom;
    let request: unknown;
    let clientId = '';
    try {
      const r = new Reader(frame);
      const header = RequestHeaderCodec.decode(flexible ? 2 : 1, r);
      clientId = header.clientId ?? '';
      request = api.request.decode(version, r);
    } catch (err) {
      this.reject(`malformed ${api.name} v${version} request: ${errorMessage(err)}`, { apiKey, version });
      return;
    }
    const started = requestChannel.hasSubscribers ? performance.now() : 0;
    const response = await handler({ conn: this, version, clientId }, request as never);
    publish(requestChannel, () => ({
      api: api.name,
      apiKey,
      version,
      clientId,
      remote: this.remoteHost,
      durationMs: performance.now() - started,
    }));
    if (this.closed || response === NO_RESPONSE) return;
    // ApiVersions always answers with response header v0
    const headerV1 = flexible && apiKey !== 18;
    this.send(correlationId, headerV1, (w) => api.response.write(w, version, response as never));
    if (this.closeAfterResponse) {
      this.socket.end();
      this.closed = true;
      this.abort.abort();
    }
  }

  private send(correlationId: number, headerV1: boolean, body: (w: Writer) => void): void {
    const w = new Writer(512);
    w.int32(0);
    w.int32(correlationId);
    if (headerV1) w.uvarint(0);
    body(w);
    w.patchFirstInt32(w.length - 4);
    const buffers = w.toBuffers();
    if (buffers.length === 1) {
      this.socket.write(buffers[0]!);
      return;
    }
    // one writev for the header and referenced record batches
    this.socket.cork();
    for (const b of buffers) this.socket.write(b);
    this.socket.uncork();
  }
}
