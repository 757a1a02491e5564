/**
 * Per-partition producer state for idempotence and transactions, as Kafka's ProducerStateManager: for each
 * producer id its epoch, the metadata of its last 5 batches (sequence range and offsets, to answer retried
 * duplicates with their original offsets), and the first offset of its open transaction, if any.
 *
 * Snapshots (`<20-digit offset>.snapshot`, JSON) record the state as of an offset; recovery loads the
 * newest usable one and replays the batches after it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { kafkaError } from '../core/index.ts';
import { readFileIfExists, writeFileAtomic } from './fs-util.ts';
import { segmentFileName } from './segment.ts';

/** How many batches per producer are remembered for duplicate detection (Kafka's value). */
export const PRODUCER_BATCHES_KEPT = 5;
const INT32_MAX = 0x7fffffff;

export interface ProducerBatchMeta {
  firstSeq: number;
  lastSeq: number;
  firstOffset: number;
  lastOffset: number;
}

export interface ProducerEntry {
  producerId: bigint;
  epoch: number;
  /** Oldest first, at most PRODUCER_BATCHES_KEPT. */
  batches: ProducerBatchMeta[];
  /** First offset of the producer's open transaction in this partition, -1 if none. */
  txnFirstOffset: number;
  lastTimestamp: number;
  coordinatorEpoch: number;
}

export interface DataBatchInfo {
  producerId: bigint;
  epoch: number;
  baseSequence: number;
  lastOffsetDelta: number;
  transactional: boolean;
}

/** State an append has tentatively reached for a producer, so its later batches in the same append check against it. */
export interface TentativeProducerState {
  epoch: number;
  lastSeq: number;
  inTxn: boolean;
}

/** The sequence number of a batch's last record (sequences wrap at 2^31). */
export function lastSequence(baseSequence: number, lastOffsetDelta: number): number {
  return baseSequence > INT32_MAX - lastOffsetDelta
    ? lastOffsetDelta - (INT32_MAX - baseSequence) - 1
    : baseSequence + lastOffsetDelta;
}

function inSequence(lastSeq: number, nextSeq: number): boolean {
  return nextSeq === lastSeq + 1 || (nextSeq === 0 && lastSeq === INT32_MAX);
}

export class ProducerStateManager {
  readonly producers = new Map<bigint, ProducerEntry>();
  /** producerId -> first offset of its open transaction. */
  readonly ongoing = new Map<bigint, number>();

  /**
   * Checks a data batch of an idempotent or transactional producer. Returns the metadata of the original
   * batch when this one is a retried duplicate; throws INVALID_PRODUCER_EPOCH, OUT_OF_ORDER_SEQUENCE_NUMBER
   * or INVALID_TXN_STATE; otherwise records the tentative state in `tentative` and returns null.
   */
  check(where: string, b: DataBatchInfo, tentative: Map<bigint, TentativeProducerState>): ProducerBatchMeta | null {
    const entry = this.producers.get(b.producerId);
    const pending = tentative.get(b.producerId);
    const currentEpoch = pending?.epoch ?? entry?.epoch ?? -1;
    const lastSeq = lastSequence(b.baseSequence, b.lastOffsetDelta);
    if (b.epoch < currentEpoch) {
      throw kafkaError(
        'INVALID_PRODUCER_EPOCH',
        `${where}: producer ${b.producerId} epoch ${b.epoch} is older than the current epoch ${currentEpoch}`,
      );
    }
    if (!pending && entry && b.epoch === entry.epoch) {
      const duplicate = entry.batches.find((x) => x.firstSeq === b.baseSequence && x.lastSeq === lastSeq);
      if (duplicate) return duplicate;
    }
    if (b.epoch !== currentEpoch) {
      if (b.baseSequence !== 0 && currentEpoch !== -1) {
        throw kafkaError(
          'OUT_OF_ORDER_SEQUENCE_NUMBER',
          `${where}: producer ${b.producerId} started epoch ${b.epoch} at sequence ${b.baseSequence}, expected 0`,
        );
      }
    } else {
      const previous = pending ? pending.lastSeq : (entry?.batches.at(-1)?.lastSeq ?? -1);
      if (!inSequence(previous, b.baseSequence)) {
        throw kafkaError(
          'OUT_OF_ORDER_SEQUENCE_NUMBER',
          `${where}: producer ${b.producerId} epoch ${b.epoch} sent sequence ${b.baseSequence} after ${previous}`,
        );
      }
    }
    const inTxn = pending?.inTxn ?? (entry !== undefined && entry.txnFirstOffset >= 0);
    if (inTxn && !b.transactional) {
      throw kafkaError(
        'INVALID_TXN_STATE',
        `${where}: producer ${b.producerId} sent a non-transactional batch inside its open transaction`,
      );
    }
    tentative.set(b.producerId, { epoch: b.epoch, lastSeq, inTxn: inTxn || b.transactional });
    return null;
  }

  /** Records an appended data batch (also used when replaying the log). */
  apply(b: DataBatchInfo, firstOffset: number, lastOffset: number, timestamp: number): void {
    let entry = this.producers.get(b.producerId);
    if (!entry) {
      entry = {
        producerId: b.producerId,
        epoch: b.epoch,
        batches: [],
        txnFirstOffset: -1,
        lastTimestamp: timestamp,
        coordinatorEpoch: -1,
      };
      this.producers.set(b.producerId, entry);
    }
    if (b.epoch !== entry.epoch) {
      entry.epoch = b.epoch;
      entry.batches = [];
    }
    entry.batches.push({
      firstSeq: b.baseSequence,
      lastSeq: lastSequence(b.baseSequence, b.lastOffsetDelta),
      firstOffset,
      lastOffset,
    });
    if (entry.batches.length > PRODUCER_BATCHES_KEPT) entry.batches.shift();
    if (b.transactional && entry.txnFirstOffset < 0) {
      entry.txnFirstOffset = firstOffset;
      this.ongoing.set(b.producerId, firstOffset);
    }
    entry.lastTimestamp = timestamp;
  }

  /** Throws unless a transaction marker of this epoch may be written (the coordinator was not fenced). */
  checkMarker(where: string, producerId: bigint, epoch: number): void {
    const entry = this.producers.get(producerId);
    if (entry && epoch < entry.epoch) {
      throw kafkaError(
        'INVALID_PRODUCER_EPOCH',
        `${where}: transaction marker epoch ${epoch} is older than producer ${producerId}'s epoch ${entry.epoch}`,
      );
    }
  }

  /**
   * Records a transaction marker; returns the first offset of the transaction it ends, or -1 when the
   * producer wrote nothing to this partition in it.
   */
  applyMarker(producerId: bigint, epoch: number, coordinatorEpoch: number, timestamp: number): number {
    let entry = this.producers.get(producerId);
    if (!entry) {
      entry = { producerId, epoch, batches: [], txnFirstOffset: -1, lastTimestamp: timestamp, coordinatorEpoch };
      this.producers.set(producerId, entry);
    }
    if (epoch > entry.epoch) {
      entry.epoch = epoch;
      entry.batches = [];
    }
    const first = entry.txnFirstOffset;
    entry.txnFirstOffset = -1;
    entry.coordinatorEpoch = coordinatorEpoch;
    entry.lastTimestamp = timestamp;
    this.ongoing.delete(producerId);
    return first;
  }

  /** The first offset of the earliest open transaction (the last stable offset), if any is open. */
  firstUnstableOffset(): number | undefined {
    let min: number | undefined;
    for (const offset of this.ongoing.values()) if (min === undefined || offset < min) min = offset;
    return min;
  }

  /** Forgets producers idle for longer than `expirationMs` with no open transaction. */
  expire(now: number, expirationMs: number): void {
    for (const [id, entry] of this.producers) {
      if (entry.txnFirstOffset < 0 && now - entry.lastTimestamp > expirationMs) this.producers.delete(id);
    }
  }

  clear(): void {
    this.producers.clear();
    this.ongoing.clear();
  }

  // ---- snapshots ----

  writeSnapshot(dir: string, offset: number): void {
    const producers = [...this.producers.values()].map((e) => ({
      id: e.producerId.toString(),
      epoch: e.epoch,
      txn: e.txnFirstOffset,
      ts: e.lastTimestamp,
      ce: e.coordinatorEpoch,
      batches: e.batches.map((b) => [b.firstSeq, b.lastSeq, b.firstOffset, b.lastOffset]),
    }));
    writeFileAtomic(
      path.join(dir, segmentFileName(offset, '.snapshot')),
      JSON.stringify({ version: 1, offset, producers }),
    );
  }

  /** Loads the snapshot taken at `offset`; false (state cleared) if it is unreadable. */
  loadSnapshot(dir: string, offset: number): boolean {
    this.clear();
    const text = readFileIfExists(path.join(dir, segmentFileName(offset, '.snapshot')));
    if (text === undefined) return false;
    try {
      const data = JSON.parse(text) as {
        version: number;
        offset: number;
        producers: { id: string; epoch: number; txn: number; ts: number; ce: number; batches: number[][] }[];
      };
      if (data.version !== 1 || data.offset !== offset) return false;
      for (const p of data.producers) {
        const producerId = BigInt(p.id);
        this.producers.set(producerId, {
          producerId,
          epoch: p.epoch,
          txnFirstOffset: p.txn,
          lastTimestamp: p.ts,
          coordinatorEpoch: p.ce,
          batches: p.batches.map(([firstSeq, lastSeq, firstOffset, lastOffset]) => ({
            firstSeq: firstSeq!,
            lastSeq: lastSeq!,
            firstOffset: firstOffset!,
            lastOffset: lastOffset!,
          })),
        });
        if (p.txn >= 0) this.ongoing.set(producerId, p.txn);
      }
      return true;
    } catch {
      this.clear();
      return false;
    }
  }
}

/** Offsets of the snapshots in a partition directory, ascending. */
export function listSnapshots(dir: string): number[] {
  return fs
    .readdirSync(dir)
    .filter((f) => /^\d{20}\.snapshot$/.test(f))
    .map((f) => Number(f.slice(0, 20)))
    .sort((a, b) => a - b);
}

export function deleteSnapshot(dir: string, offset: number): void {
  fs.rmSync(path.join(dir, segmentFileName(offset, '.snapshot')), { force: true });
}
