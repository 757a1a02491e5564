/**
 * The transaction coordinator: producer ids, transactional ids and their epochs, the partitions and groups
 * in each open transaction, and the two-phase end (Prepare -> markers in every partition -> Complete).
 *
 * State is an append-only JSON-lines file (`<dataDir>/__transactions/state.jsonl`): one line per change
 * of a transactional id (the last line per id wins) and one per producer id block. Replayed and compacted
 * on open; transactions found in a Prepare state are completed, open ones keep their timeout. Lines are
 * fdatasynced before answering when they matter after a power loss (a new producer id block, partitions
 * joining a transaction, the Prepare decision).
 */
import fs from 'node:fs';
import path from 'node:path';
import { kafkaError } from '../core/index.ts';
import type { OffsetAndMetadata, ProducerIdAndEpoch, TopicPartition, TxnOffsetSink } from './api.ts';
import { fsyncDir, readFileIfExists, writeFileAtomic } from './fs-util.ts';

export type TxnState = 'Empty' | 'Ongoing' | 'PrepareCommit' | 'PrepareAbort' | 'CompleteCommit' | 'CompleteAbort';

export interface TxnMetadata {
  transactionalId: string;
  producerId: bigint;
  producerEpoch: number;
  timeoutMs: number;
  state: TxnState;
  /** `topic\0partition` keys. */
  partitions: Set<string>;
  groups: Set<string>;
  startMs: number;
}

export interface TxnCoordinatorOptions {
  dir: string;
  /** Writes COMMIT/ABORT markers to the partitions (skipping deleted ones) and resolves once durable per their flush policy. */
  writeMarkers: (
    partitions: TopicPartition[],
    producerId: bigint,
    producerEpoch: number,
    commit: boolean,
  ) => Promise<void>;
  partitionExists: (tp: TopicPartition) => boolean;
  sink: () => TxnOffsetSink;
  maxTimeoutMs?: number;
  now?: () => number;
}

const PRODUCER_ID_BLOCK = 1000;
const MAX_EPOCH = 32767;
export const DEFAULT_MAX_TRANSACTION_TIMEOUT_MS = 900_000;

interface StateLine {
  id: string;
  pid: string;
  epoch: number;
  timeout: number;
  state: TxnState;
  partitions: string[];
  groups: string[];
  start: number;
}

function tpKey(tp: TopicPartition): string {
  return `${tp.topic}\0${tp.partition}`;
}

function tpOf(key: string): TopicPartition {
  const at = key.lastIndexOf('\0');
  return { topic: key.slice(0, at), partition: Number(key.slice(at + 1)) };
}

export class TransactionCoordinator {
  readonly #options: TxnCoordinatorOptions;
  readonly #file: string;
  readonly #byId = new Map<string, TxnMetadata>();
  readonly #byProducerId = new Map<bigint, TxnMetadata>();
  readonly #now: () => number;
  readonly #maxTimeoutMs: number;
  #fd: number;
  #nextProducerId = 0n;
  #blockEnd = 0n;
  #completing = new Set<string>();

  constructor(options: TxnCoordinatorOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#maxTimeoutMs = options.maxTimeoutMs ?? DEFAULT_MAX_TRANSACTION_TIMEOUT_MS;
    fs.mkdirSync(options.dir, { recursive: true });
    this.#file = path.join(options.dir, 'state.jsonl');
    this.#load();
    this.#fd = fs.openSync(this.#file, 'a');
  }

  #load(): void {
    const text = readFileIfExists(this.#file) ?? '';
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      let parsed: StateLine | { block: string };
      try {
        parsed = JSON.parse(line);
      } catch {
        continue; // the torn tail of an interrupted write
      }
      if ('block' in parsed) {
        const end = BigInt(parsed.block);
        if (end > this.#blockEnd) this.#blockEnd = end;
        continue;
      }
      const meta: TxnMetadata = {
        transactionalId: parsed.id,
        producerId: BigInt(parsed.pid),
        producerEpoch: parsed.epoch,
        timeoutMs: parsed.timeout,
        state: parsed.state,
        partitions: new Set(parsed.partitions),
        groups: new Set(parsed.groups),
        startMs: parsed.start,
      };
      const previous = this.#byId.get(meta.transactionalId);
      if (previous) this.#byProducerId.delete(previous.producerId);
      this.#byId.set(meta.transactionalId, meta);
      this.#byProducerId.set(meta.producerId, meta);
    }
    // ids of the last block may have been handed out: start after it
    this.#nextProducerId = this.#blockEnd;
    const lines = [...this.#byId.values()].map((m) => JSON.stringify(this.#line(m)));
    lines.push(JSON.stringify({ block: this.#blockEnd.toString() }));
    writeFileAtomic(this.#file, `${lines.join('\n')}\n`, { fsync: true });
  }

  #line(m: TxnMetadata): StateLine {
    return {
      id: m.transactionalId,
      pid: m.producerId.toString(),
      epoch: m.producerEpoch,
      timeout: m.timeoutMs,
      state: m.state,
      partitions: [...m.partitions],
      groups: [...m.groups],
      start: m.startMs,
    };
  }

  async #persist(meta: TxnMetadata, sync: boolean): Promise<void> {
    fs.writeSync(this.#fd, `${JSON.stringify(this.#line(meta))}\n`);
    if (sync) await this.#sync();
  }

  #sync(): Promise<void> {
    return new Promise((resolve, reject) => fs.fdatasync(this.#fd, (err) => (err ? reject(err) : resolve())));
  }

  async #allocateProducerId(): Promise<bigint> {
    if (this.#nextProducerId >= this.#blockEnd) {
      this.#blockEnd = this.#nextProducerId + BigInt(PRODUCER_ID_BLOCK);
      fs.writeSync(this.#fd, `${JSON.stringify({ block: this.#blockEnd.toString() })}\n`);
      await this.#sync();
    }
    return this.#nextProducerId++;
  }

  /** Kafka's InitProducerId. */
  async initProducerId(
    transactionalId: string | null,
    transactionTimeoutMs: number,
    current?: ProducerIdAndEpoch,
  ): Promise<ProducerIdAndEpoch> {
    if (transactionalId === null || transactionalId === '')
      return { producerId: await this.#allocateProducerId(), producerEpoch: 0 };
    if (
      !Number.isInteger(transactionTimeoutMs) ||
      transactionTimeoutMs <= 0 ||
      transactionTimeoutMs > this.#maxTimeoutMs
    ) {
      throw kafkaError(
        'INVALID_TRANSACTION_TIMEOUT',
        `transaction timeout ${transactionTimeoutMs} ms must be between 1 and ${this.#maxTimeoutMs}`,
        { field: 'transactionTimeoutMs' },
      );
    }
    let meta = this.#byId.get(transactionalId);
    if (!meta) {
      meta = {
        transactionalId,
        producerId: await this.#allocateProducerId(),
        producerEpoch: 0,
        timeoutMs: transactionTimeoutMs,
        state: 'Empty',
        partitions: new Set(),
        groups: new Set(),
        startMs: -1,
      };
      this.#byId.set(transactionalId, meta);
      this.#byProducerId.set(meta.producerId, meta);
      await this.#persist(meta, true);
      return { producerId: meta.producerId, producerEpoch: 0 };
    }
    if (current && (current.producerId !== meta.producerId || current.producerEpoch !== meta.producerEpoch)) {
      throw kafkaError(
        'PRODUCER_FENCED',
        `transactional id ${JSON.stringify(transactionalId)} now belongs to producer ${meta.producerId} epoch ${meta.producerEpoch}`,
      );
    }
    if (meta.state === 'PrepareCommit' || meta.state === 'PrepareAbort' || this.#completing.has(transactionalId)) {
      throw kafkaError(
        'CONCURRENT_TRANSACTIONS',
        `transactional id ${JSON.stringify(transactionalId)} is completing a transaction`,
      );
    }
    if (meta.state === 'Ongoing') await this.#abortWithBump(meta);
    await this.#bumpEpoch(meta);
    meta.timeoutMs = transactionTimeoutMs;
    meta.state = 'Empty';
    meta.partitions = new Set();
    meta.groups = new Set();
    await this.#persist(meta, true);
    return { producerId: meta.producerId, producerEpoch: meta.producerEpoch };
  }

  async #bumpEpoch(meta: TxnMetadata): Promise<void> {
    if (meta.producerEpoch < MAX_EPOCH - 1) {
      meta.producerEpoch++;
      return;
    }
    // epochs exhausted: a fresh producer id
    this.#byProducerId.delete(meta.producerId);
    meta.producerId = await this.#allocateProducerId();
    meta.producerEpoch = 0;
    this.#byProducerId.set(meta.producerId, meta);
  }

  /** Aborts an open transaction under a bumped epoch, fencing the producer that was running it. */
  async #abortWithBump(meta: TxnMetadata): Promise<void> {
    if (meta.producerEpoch < MAX_EPOCH - 1) meta.producerEpoch++;
    await this.#prepareAndComplete(meta, false);
  }

  /** Records the decision (the commit point), then writes the markers and settles the offsets. */
  async #prepareAndComplete(meta: TxnMetadata, commit: boolean): Promise<void> {
    meta.state = commit ? 'PrepareCommit' : 'PrepareAbort';
    this.#completing.add(meta.transactionalId);
    try {
      await this.#persist(meta, true);
      await this.#complete(meta);
    } finally {
      this.#completing.delete(meta.transactionalId);
    }
  }

  #check(transactionalId: string, producer: ProducerIdAndEpoch): TxnMetadata {
    const meta = this.#byId.get(transactionalId);
    if (!meta || meta.producerId !== producer.producerId) {
      throw kafkaError(
        'INVALID_PRODUCER_ID_MAPPING',
        `producer ${producer.producerId} is not the producer of transactional id ${JSON.stringify(transactionalId)}`,
      );
    }
    if (meta.producerEpoch !== producer.producerEpoch) {
      throw kafkaError(
        'PRODUCER_FENCED',
        `producer ${producer.producerId} epoch ${producer.producerEpoch} was fenced by epoch ${meta.producerEpoch}`,
      );
    }
    if (meta.state === 'PrepareCommit' || meta.state === 'PrepareAbort' || this.#completing.has(transactionalId)) {
      throw kafkaError(
        'CONCURRENT_TRANSACTIONS',
        `transactional id ${JSON.stringify(transactionalId)} is completing a transaction`,
      );
    }
    return meta;
  }

  #begin(meta: TxnMetadata): boolean {
    if (meta.state === 'Ongoing') return false;
    meta.state = 'Ongoing';
    meta.partitions = new Set();
    meta.groups = new Set();
    meta.startMs = this.#now();
    return true;
  }

  async addPartitions(
    transactionalId: string,
    producer: ProducerIdAndEpoch,
    partitions: TopicPartition[],
  ): Promise<void> {
    const meta = this.#check(transactionalId, producer);
    partitions.forEach((tp, i) => {
      if (!this.#options.partitionExists(tp)) {
        throw kafkaError('UNKNOWN_TOPIC_OR_PARTITION', `${tp.topic}-${tp.partition} does not exist`, {
          field: `partitions[${i}]`,
        });
      }
    });
    let changed = this.#begin(meta);
    for (const tp of partitions) {
      const key = tpKey(tp);
      if (!meta.partitions.has(key)) {
        meta.partitions.add(key);
        changed = true;
      }
    }
    if (changed) await this.#persist(meta, true);
  }

  async addOffsets(transactionalId: string, producer: ProducerIdAndEpoch, groupId: string): Promise<void> {
    const meta = this.#check(transactionalId, producer);
    let changed = this.#begin(meta);
    if (!meta.groups.has(groupId)) {
      meta.groups.add(groupId);
      changed = true;
    }
    if (changed) await this.#persist(meta, false);
  }

  async txnOffsetCommit(
    transactionalId: string,
    groupId: string,
    producer: ProducerIdAndEpoch,
    offsets: (TopicPartition & OffsetAndMetadata)[],
  ): Promise<void> {
    const meta = this.#check(transactionalId, producer);
    if (meta.state !== 'Ongoing') {
      throw kafkaError(
        'INVALID_TXN_STATE',
        `transactional id ${JSON.stringify(transactionalId)} has no open transaction to commit offsets in`,
      );
    }
    if (!meta.groups.has(groupId)) {
      meta.groups.add(groupId);
      await this.#persist(meta, false);
    }
    await this.#options.sink().stage(groupId, meta.producerId, offsets);
  }

  async endTxn(transactionalId: string, producer: ProducerIdAndEpoch, commit: boolean): Promise<void> {
    const meta = this.#check(transactionalId, producer);
    const wanted = commit ? 'CompleteCommit' : 'CompleteAbort';
    if (meta.state === wanted) return; // a retried EndTxn
    if (meta.state !== 'Ongoing') {
      throw kafkaError(
        'INVALID_TXN_STATE',
        `transactional id ${JSON.stringify(transactionalId)} cannot ${commit ? 'commit' : 'abort'} in state ${meta.state}`,
      );
    }
    await this.#prepareAndComplete(meta, commit);
  }

  /** Writes the markers of a prepared transaction, settles its offsets, and marks it complete. */
  async #complete(meta: TxnMetadata): Promise<void> {
    const commit = meta.state === 'PrepareCommit';
    const partitions = [...meta.partitions].map(tpOf);
    await this.#options.writeMarkers(partitions, meta.producerId, meta.producerEpoch, commit);
    await this.#options.sink().complete(meta.producerId, commit);
    meta.state = commit ? 'CompleteCommit' : 'CompleteAbort';
    meta.partitions = new Set();
    meta.groups = new Set();
    await this.#persist(meta, false);
  }

  /**
   * Aborts (with an epoch bump, fencing the producer) every transaction open longer than its timeout, and
   * retries completing prepared ones. Returns the transactional ids aborted.
   */
  async expire(): Promise<string[]> {
    const now = this.#now();
    const aborted: string[] = [];
    for (const meta of [...this.#byId.values()]) {
      if (this.#completing.has(meta.transactionalId)) continue;
      if (meta.state === 'Ongoing' && now - meta.startMs > meta.timeoutMs) {
        await this.#abortWithBump(meta);
        aborted.push(meta.transactionalId);
      } else if (meta.state === 'PrepareCommit' || meta.state === 'PrepareAbort') {
        // prepared by an earlier process, or its completion failed: finish it
        this.#completing.add(meta.transactionalId);
        try {
          await this.#complete(meta);
        } finally {
          this.#completing.delete(meta.transactionalId);
        }
      }
    }
    return aborted;
  }

  /**
   * Checks a transactional batch: its producer, if transactional here, must have the partition in its open
   * transaction and the current epoch.
   */
  checkProduce(producerId: bigint, producerEpoch: number, tp: TopicPartition): void {
    const meta = this.#byProducerId.get(producerId);
    if (!meta) return;
    if (producerEpoch < meta.producerEpoch) {
      throw kafkaError(
        'INVALID_PRODUCER_EPOCH',
        `producer ${producerId} epoch ${producerEpoch} was fenced by epoch ${meta.producerEpoch}`,
      );
    }
    if (meta.state !== 'Ongoing' || !meta.partitions.has(tpKey(tp))) {
      throw kafkaError(
        'INVALID_TXN_STATE',
        `producer ${producerId} wrote to ${tp.topic}-${tp.partition} without adding it to its transaction`,
      );
    }
  }

  describe(transactionalId: string): Readonly<TxnMetadata> | undefined {
    return this.#byId.get(transactionalId);
  }

  /** Forgets a topic's partitions in open transactions (topic deletion). */
  forgetTopic(topic: string): void {
    for (const meta of this.#byId.values()) {
      for (const key of meta.partitions) if (tpOf(key).topic === topic) meta.partitions.delete(key);
    }
  }

  sync(): Promise<void> {
    return this.#sync();
  }

  close(): void {
    fs.fdatasyncSync(this.#fd);
    fs.closeSync(this.#fd);
    fsyncDir(path.dirname(this.#file));
  }
}
