import { invalidArgument, TributaryError } from '../core/index.ts';
import type {
  AppendOptions,
  AppendResult,
  LogService,
  Producer,
  ProducerIdAndEpoch,
  ProducerOptions,
  ProducerRecord,
  RecordMetadata,
  TopicPartition,
} from './api.ts';
import { partitionForKey, StickyPartitioner } from './client-partitioner.ts';
import { RecordBatchBuilder } from './record-batch.ts';

const DEFAULT_BATCH_SIZE = 512 * 1024;
const MAX_RETRIES = 5;
const INT32_MAX = 0x7fffffff;

/** A send() call: filled in by the batches its records went into. */
interface Call {
  results: RecordMetadata[];
  remaining: number;
  failed: boolean;
  resolve(results: RecordMetadata[]): void;
  reject(err: unknown): void;
}

/** Consecutive records of one call in a batch: the call's records first..first+count-1. */
interface Span {
  call: Call;
  first: number;
  count: number;
}

/** Records for one partition, encoded as they are sent, until sealed. */
interface OpenBatch {
  topic: string;
  partition: number;
  builder: RecordBatchBuilder;
  /** Create times of the records, for their metadata. */
  timestamps: number[];
  spans: Span[];
  timer: NodeJS.Timeout | null;
  /** Set once the batch is closed to new records. */
  sealed: boolean;
}

interface PartitionQueue {
  /** Appends to a partition run one after another: sequence numbers must arrive in order. */
  tail: Promise<void>;
  nextSequence: number;
}

/**
 * A sent record's metadata, its offset and timestamp made on first read (as the Java client's FutureRecordMetadata
 * does): two BigInts per record cost more than the rest of a send when nobody reads them.
 */
class SentRecordMetadata implements RecordMetadata {
  readonly topic: string;
  readonly partition: number;
  readonly #batch: AppendResult;
  readonly #index: number;
  readonly #createTime: number;
  constructor(topic: string, partition: number, batch: AppendResult, index: number, createTime: number) {
    this.topic = topic;
    this.partition = partition;
    this.#batch = batch;
    this.#index = index;
    this.#createTime = createTime;
  }
  get offset(): bigint {
    return this.#batch.baseOffset + BigInt(this.#index);
  }
  get timestamp(): bigint {
    const t = this.#batch.logAppendTime;
    return t >= 0n ? t : BigInt(this.#createTime);
  }
  /** Logged as the plain record it stands for. */
  [Symbol.for('nodejs.util.inspect.custom')](): RecordMetadata {
    return { topic: this.topic, partition: this.partition, offset: this.offset, timestamp: this.timestamp };
  }
}

const sizeBound = (v: Buffer | string | null | undefined): number =>
  v === null || v === undefined ? 1 : 5 + (typeof v === 'string' ? v.length * 3 : v.length);

/** At least the bytes `r` takes in a batch: its fields with their largest varint prefixes. */
function recordBound(r: ProducerRecord): number {
  let n = 21 + sizeBound(r.key) + sizeBound(r.value);
  if (r.headers !== undefined) for (const [k, v] of r.headers) n += sizeBound(k) + sizeBound(v);
  return n;
}

const isBytes = (v: unknown): boolean => typeof v === 'string' || Buffer.isBuffer(v);

/** A record's key, value and timestamp, checked before any of it is encoded. */
function checkRecord(r: ProducerRecord, i: number, ts: number): void {
  if (r.value !== null && !isBytes(r.value))
    throw invalidArgument(`records[${i}].value`, 'a Buffer, a string or null', r.value);
  if (r.key !== null && r.key !== undefined && !isBytes(r.key))
    throw invalidArgument(`records[${i}].key`, 'a Buffer, a string, null or undefined', r.key);
  if (!Number.isFinite(ts)) throw invalidArgument(`records[${i}].timestamp`, 'epoch milliseconds', r.timestamp);
}

/** The producer's batches come straight from its RecordBatchBuilder: the log need not compute their CRCs again. */
const BUILT_HERE: AppendOptions = { crcKnownGood: true };

/**
 * The embedded producer: encodes records into a record batch v2 per partition as they are sent (so a record
 * changed after send() is sent as it was), one append per batch, idempotent by default, transactional with a
 * transactionalId.
 */
export class EmbeddedProducer implements Producer {
  readonly #log: LogService;
  readonly #idempotent: boolean;
  readonly #transactionalId: string | null;
  readonly #transactionTimeoutMs: number;
  readonly #lingerMs: number;
  readonly #batchSize: number;
  readonly #compression: NonNullable<ProducerOptions['compression']>;
  readonly #partitioner: ProducerOptions['partitioner'];
  readonly #sticky = new StickyPartitioner();
  readonly #open = new Map<string, OpenBatch>();
  #lastBatch: OpenBatch | null = null;
  readonly #queues = new Map<string, PartitionQueue>();
  readonly #inFlight = new Set<Promise<void>>();
  #producer: ProducerIdAndEpoch | null = null;
  #initializing: Promise<ProducerIdAndEpoch> | null = null;
  #inTransaction = false;
  #txnPartitions = new Set<string>();
  /** Whether offsets were sent in the open transaction. */
  #txnOffsets = false;
  #txnError: unknown = null;
  #closed = false;

  constructor(log: LogService, options: ProducerOptions = {}) {
    this.#log = log;
    this.#transactionalId = options.transactionalId ?? null;
    this.#idempotent = this.#transactionalId !== null || (options.idempotent ?? true);
    this.#transactionTimeoutMs = options.transactionTimeoutMs ?? 60_000;
    this.#lingerMs = options.lingerMs ?? 0;
    this.#batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
    this.#compression = options.compression ?? 'none';
    this.#partitioner = options.partitioner;
    if (this.#transactionalId === '') {
      throw new TributaryError('INVALID_ARGUMENT', 'transactionalId: expected a non-empty string', {
        field: 'transactionalId',
      });
    }
  }

  send(records: ProducerRecord[]): Promise<RecordMetadata[]> {
    if (this.#closed) return Promise.reject(new TributaryError('UNAVAILABLE', 'the producer is closed'));
    if (this.#transactionalId !== null && !this.#inTransaction) {
      return Promise.reject(
        new TributaryError('CONFLICT', 'a transactional producer sends only between beginTransaction and commit', {
          kafkaErrorCode: 48,
        }),
      );
    }
    if (records.length === 0) return Promise.resolve([]);
    let call!: Call;
    const promise = new Promise<RecordMetadata[]>((resolve, reject) => {
      call = { results: new Array(records.length), remaining: records.length, failed: false, resolve, reject };
    });
    const counts = new Map<string, number>();
    const touched = new Set<OpenBatch>();
    // Consecutive records mostly share a topic and a batch: skip the lookups then.
    let lastTopic: string | null = null;
    let lastCount = 0;
    let lastTouched: OpenBatch | null = null;
    const now = Date.now();
    try {
      for (let i = 0; i < records.length; i++) {
        const r = records[i]!;
        let count = r.topic === lastTopic ? lastCount : counts.get(r.topic);
        if (count === undefined) {
          const described = this.#log.describeTopic(r.topic);
          if (!described) {
            throw new TributaryError(
              'NOT_FOUND',
              `records[${i}].topic: topic ${JSON.stringify(r.topic)} does not exist`,
              {
                field: `records[${i}].topic`,
                kafkaErrorCode: 3,
              },
            );
          }
          count = described.partitions.length;
          counts.set(r.topic, count);
        }
        lastTopic = r.topic;
        lastCount = count;
        const partition = this.#choosePartition(r, count, i);
        let batch = this.#batchFor(r.topic, partition);
        const ts = r.timestamp === undefined ? now : Number(r.timestamp);
        checkRecord(r, i, ts);
        // A record that would take the batch past batchSize starts the next one (as Kafka's accumulator does); a
        // record larger than batchSize goes alone.
        if (batch.builder.count > 0 && batch.builder.size + recordBound(r) > this.#batchSize) {
          this.#seal(batch, count);
          touched.delete(batch);
          batch = this.#batchFor(r.topic, partition);
        }
        batch.builder.append(r.key, r.value, r.headers, ts);
        batch.timestamps.push(ts);
        const span = batch.spans[batch.spans.length - 1];
        if (span !== undefined && span.call === call && span.first + span.count === i) span.count++;
        else batch.spans.push({ call, first: i, count: 1 });
        if (batch !== lastTouched) {
          touched.add(batch);
          lastTouched = batch;
        }
        if (batch.builder.size >= this.#batchSize) {
          this.#seal(batch, count);
          touched.delete(batch);
          lastTouched = null;
        }
      }
    } catch (err) {
      // Records already queued from this call still go out; the call reports the failure.
      call.failed = true;
      for (const b of touched) this.#seal(b, 0);
      call.reject(err);
      return promise;
    }
    for (const b of touched) {
      if (this.#lingerMs <= 0) this.#seal(b, counts.get(b.topic) ?? 0);
      else b.timer ??= setTimeout(() => this.#seal(b, counts.get(b.topic) ?? 0), this.#lingerMs);
    }
    return promise;
  }

  async flush(): Promise<void> {
    for (const b of [...this.#open.values()]) this.#seal(b, 0);
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  async beginTransaction(): Promise<void> {
    this.#requireTransactional('beginTransaction');
    if (this.#inTransaction) {
      throw new TributaryError('CONFLICT', 'beginTransaction: a transaction is already open', { kafkaErrorCode: 48 });
    }
    await this.#init();
    this.#inTransaction = true;
    this.#txnPartitions = new Set();
    this.#txnOffsets = false;
    this.#txnError = null;
  }

  async sendOffsetsToTransaction(groupId: string, offsets: (TopicPartition & { offset: bigint })[]): Promise<void> {
    this.#requireOpenTransaction('sendOffsetsToTransaction');
    const producer = await this.#init();
    this.#txnOffsets = true;
    await this.#log.addOffsetsToTxn(this.#transactionalId!, producer, groupId);
    await this.#log.txnOffsetCommit(
      this.#transactionalId!,
      groupId,
      producer,
      offsets.map((o) => ({ topic: o.topic, partition: o.partition, offset: o.offset, metadata: null })),
    );
  }

  async commitTransaction(): Promise<void> {
    this.#requireOpenTransaction('commitTransaction');
    await this.flush();
    if (this.#txnError !== null) {
      throw new TributaryError('CONFLICT', 'commitTransaction: a send in this transaction failed; abort it', {
        cause: this.#txnError,
        kafkaErrorCode: 48,
      });
    }
    // A transaction that touched no partition and no offsets never reached the coordinator: nothing to end
    // (as Kafka's clients do).
    if (this.#txnPartitions.size > 0 || this.#txnOffsets)
      await this.#log.endTxn(this.#transactionalId!, this.#producer!, true);
    this.#inTransaction = false;
  }

  async abortTransaction(): Promise<void> {
    this.#requireOpenTransaction('abortTransaction');
    await this.flush();
    if (this.#txnPartitions.size > 0 || this.#txnOffsets)
      await this.#log.endTxn(this.#transactionalId!, this.#producer!, false);
    this.#inTransaction = false;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.flush();
    this.#closed = true;
  }

  // ---- internals ----

  #requireTransactional(method: string): void {
    if (this.#transactionalId === null) {
      throw new TributaryError('INVALID_ARGUMENT', `${method}: the producer has no transactionalId`, {
        field: 'transactionalId',
      });
    }
  }

  #requireOpenTransaction(method: string): void {
    this.#requireTransactional(method);
    if (!this.#inTransaction) {
      throw new TributaryError('CONFLICT', `${method}: no transaction is open (call beginTransaction)`, {
        kafkaErrorCode: 48,
      });
    }
  }

  #init(): Promise<ProducerIdAndEpoch> {
    if (this.#producer) return Promise.resolve(this.#producer);
    this.#initializing ??= this.#log
      .initProducerId(this.#transactionalId, this.#transactionTimeoutMs)
      .then((p) => {
        this.#producer = p;
        return p;
      })
      .finally(() => {
        this.#initializing = null;
      });
    return this.#initializing;
  }

  #choosePartition(r: ProducerRecord, count: number, i: number): number {
    let p: number;
    if (r.partition !== undefined) p = r.partition;
    else if (this.#partitioner) p = this.#partitioner(r, count);
    else if (count === 1) p = 0;
    else if (r.key === null || r.key === undefined) p = this.#sticky.partition(r.topic, count);
    else p = partitionForKey(typeof r.key === 'string' ? Buffer.from(r.key, 'utf8') : r.key, count);
    if (!Number.isInteger(p) || p < 0 || p >= count) {
      throw new TributaryError(
        'NOT_FOUND',
        `records[${i}].partition: topic ${JSON.stringify(r.topic)} has partitions 0..${count - 1}, got ${p}`,
        { field: `records[${i}].partition`, kafkaErrorCode: 3 },
      );
    }
    return p;
  }

  #batchFor(topic: string, partition: number): OpenBatch {
    // Consecutive records mostly go to one batch: skip building its key while it is still open.
    const last = this.#lastBatch;
    if (last !== null && last.topic === topic && last.partition === partition && !last.sealed) return last;
    const k = `${topic}\u0000${partition}`;
    let b = this.#open.get(k);
    if (!b) {
      b = {
        topic,
        partition,
        builder: new RecordBatchBuilder(Math.min(this.#batchSize, 16_384)),
        timestamps: [],
        spans: [],
        timer: null,
        sealed: false,
      };
      this.#open.set(k, b);
    }
    this.#lastBatch = b;
    return b;
  }

  /** Closes the batch to new records and queues its append behind the partition's earlier batches. */
  #seal(batch: OpenBatch, stickyCount: number): void {
    const k = `${batch.topic}\u0000${batch.partition}`;
    if (this.#open.get(k) !== batch) return;
    this.#open.delete(k);
    batch.sealed = true;
    if (batch.timer) clearTimeout(batch.timer);
    if (stickyCount > 0) this.#sticky.batchSealed(batch.topic, batch.partition, stickyCount);
    let queue = this.#queues.get(k);
    if (!queue) {
      queue = { tail: Promise.resolve(), nextSequence: 0 };
      this.#queues.set(k, queue);
    }
    const q = queue;
    const run = q.tail.then(() => this.#append(batch, q));
    q.tail = run;
    this.#inFlight.add(run);
    void run.finally(() => this.#inFlight.delete(run));
  }

  async #append(batch: OpenBatch, queue: PartitionQueue): Promise<void> {
    let result: AppendResult;
    try {
      const producer = this.#idempotent ? await this.#init() : null;
      if (this.#transactionalId !== null) {
        const k = `${batch.topic}\u0000${batch.partition}`;
        if (!this.#txnPartitions.has(k)) {
          await this.#log.addPartitionsToTxn(this.#transactionalId, producer!, [
            { topic: batch.topic, partition: batch.partition },
          ]);
          this.#txnPartitions.add(k);
        }
      }
      const bytes = batch.builder.build({
        compression: this.#compression,
        producerId: producer?.producerId ?? -1n,
        producerEpoch: producer?.producerEpoch ?? -1,
        baseSequence: producer ? queue.nextSequence : -1,
        transactional: this.#transactionalId !== null,
      });
      result = await this.#appendWithRetry(batch, bytes);
      // Sequences wrap at int32 max, as Kafka's do.
      if (producer) queue.nextSequence = (queue.nextSequence + batch.timestamps.length) % (INT32_MAX + 1);
    } catch (err) {
      if (this.#inTransaction) this.#txnError = err;
      for (const { call } of batch.spans) {
        if (!call.failed) {
          call.failed = true;
          call.reject(err);
        }
      }
      return;
    }
    let i = 0;
    for (const { call, first, count } of batch.spans) {
      if (!call.failed) {
        const results = call.results;
        for (let k = first; k < first + count; k++, i++)
          results[k] = new SentRecordMetadata(batch.topic, batch.partition, result, i, batch.timestamps[i]!);
        call.remaining -= count;
        if (call.remaining === 0) call.resolve(results);
      } else i += count;
    }
  }

  async #appendWithRetry(batch: OpenBatch, bytes: Buffer): Promise<AppendResult> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#log.append(batch.topic, batch.partition, bytes, BUILT_HERE);
      } catch (err) {
        const retriable = err instanceof TributaryError && err.retriable;
        if (!retriable || attempt >= MAX_RETRIES) throw err;
        await new Promise((r) => setTimeout(r, 10 * 2 ** attempt));
      }
    }
  }
}
