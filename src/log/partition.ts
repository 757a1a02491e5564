/**
 * One partition of a topic: a directory `<dataDir>/<topic>-<partition>` of segments, producer state
 * snapshots and three small checkpoints (`recovery-point`: everything before it was fsynced;
 * `log-start-offset`; `cleaner-offset`: the first offset the cleaner has not compacted).
 *
 * Appends run synchronously up to the write (validation from the batch headers only, offsets patched into
 * bytes 0-7, one write for all batches), so concurrent appends never interleave; only the wait for fsync
 * is asynchronous, and concurrent waiters share one fdatasync (group commit).
 */
import fs from 'node:fs';
import path from 'node:path';
import { kafkaError, TributaryError } from '../core/index.ts';
import type { AbortedTransaction, IsolationLevel } from './api.ts';
import { fsyncDir, readFileIfExists, readFully, writeFileAtomic } from './fs-util.ts';
import {
  type DataBatchInfo,
  deleteSnapshot,
  listSnapshots,
  ProducerStateManager,
  type TentativeProducerState,
} from './producer-state.ts';
import {
  Attributes,
  BATCH_HEADER_BYTES,
  BatchField,
  type ControlType,
  controlBatchType,
  decodeRecordBatch,
  encodeControlBatch,
  LOG_OVERHEAD,
  updateBatchCrc,
  validateBatch,
} from './record-batch.ts';
import { type BatchHeaderView, INDEX_ENTRY_BYTES, Segment, segmentFileName } from './segment.ts';
import { hasDeletion, type ResolvedTopicConfig } from './topic-config.ts';

const EMPTY = Buffer.alloc(0);
/** Snapshots kept besides the newest (recovery may need one before the recovery point). */
const SNAPSHOTS_KEPT = 3;
const CHECKPOINT_INTERVAL_MS = 1000;

export interface AppendOutcome {
  baseOffset: number;
  lastOffset: number;
  logAppendTime: number;
  duplicate: boolean;
  /** Set when the topic's flush policy requires an fsync before acknowledging. */
  durable: Promise<void> | null;
}

export interface PartitionReadResult {
  records: Buffer;
  highWatermark: number;
  lastStableOffset: number;
  logStartOffset: number;
  abortedTransactions: AbortedTransaction[];
}

export interface PartitionOpenOptions {
  topic: string;
  partition: number;
  dir: string;
  config: ResolvedTopicConfig;
  /** Whether the previous process shut down cleanly (indexes and snapshots are then trusted). */
  clean: boolean;
}

interface SyncWaiter {
  target: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** Checks a transactional batch against the transaction coordinator before it is written. */
export type TxnAppendCheck = (producerId: bigint, epoch: number) => void;

export class PartitionLog {
  readonly topic: string;
  readonly partition: number;
  readonly dir: string;
  config: ResolvedTopicConfig;
  readonly segments: Segment[] = [];
  logStartOffset = 0;
  readonly producers = new ProducerStateManager();
  /** First offset the cleaner has not compacted yet. */
  cleanerOffset = 0;
  /** How many bytes the last open's recovery cut from torn or corrupt tails. */
  recoveredBytesCut = 0;

  readonly #dirty = new Set<Segment>();
  #unflushedMessages = 0;
  #lastFlushMs = Date.now();
  #flushedOffset = 0;
  #syncInFlight = false;
  #syncWaiters: SyncWaiter[] = [];
  #recoveryPointWritten = -1;
  #lastCheckpointMs = 0;
  readonly #listeners = new Set<() => void>();
  #readCache: { offset: number; segment: Segment; position: number } | null = null;
  #closed = false;

  private constructor(topic: string, partition: number, dir: string, config: ResolvedTopicConfig) {
    this.topic = topic;
    this.partition = partition;
    this.dir = dir;
    this.config = config;
  }

  get name(): string {
    return `${this.topic}-${this.partition}`;
  }

  get active(): Segment {
    return this.segments[this.segments.length - 1]!;
  }

  get logEndOffset(): number {
    return this.active.nextOffset;
  }

  /** A single-replica log: everything written is committed. */
  get highWatermark(): number {
    return this.active.nextOffset;
  }

  lastStableOffset(): number {
    return this.producers.firstUnstableOffset() ?? this.highWatermark;
  }

  get sizeBytes(): number {
    let size = 0;
    for (const s of this.segments) size += s.size;
    return size;
  }

  /** A new, empty partition (a leftover directory of that name is wiped first). */
  static create(topic: string, partition: number, dir: string, config: ResolvedTopicConfig): PartitionLog {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    fsyncDir(path.dirname(dir));
    const log = new PartitionLog(topic, partition, dir, config);
    log.segments.push(Segment.create(dir, 0));
    fsyncDir(dir);
    return log;
  }

  // ---- opening and recovery ----

  static open(options: PartitionOpenOptions): PartitionLog {
    const { dir } = options;
    const log = new PartitionLog(options.topic, options.partition, dir, options.config);
    log.#finishInterruptedCleaning();
    const bases: number[] = [];
    for (const file of fs.readdirSync(dir)) {
      if (/\.(cleaned|swap|tmp|deleted)$/.test(file)) fs.rmSync(path.join(dir, file), { force: true });
      else if (/^\d{20}\.log$/.test(file)) bases.push(Number(file.slice(0, 20)));
    }
    bases.sort((a, b) => a - b);
    const startCheckpoint = readNumber(path.join(dir, 'log-start-offset'));
    if (bases.length === 0) bases.push(startCheckpoint ?? 0);
    for (const base of bases) {
      log.segments.push(
        fs.existsSync(path.join(dir, segmentFileName(base, '.log')))
          ? Segment.open(dir, base)
          : Segment.create(dir, base),
      );
    }

    // Segments before the recovery point (all of them after a clean shutdown) keep their index files.
    let recoverFrom = log.segments.length;
    if (!options.clean) {
      const point = readNumber(path.join(dir, 'recovery-point'));
      recoverFrom = point === undefined ? 0 : Math.max(0, log.#segmentIndexFor(point));
    }
    for (let i = 0; i < recoverFrom; i++) {
      if (!log.segments[i]!.loadIndexes()) {
        recoverFrom = i;
        break;
      }
    }
    for (let i = recoverFrom; i < log.segments.length; i++) {
      const segment = log.segments[i]!;
      if (i > 0 && segment.baseOffset < log.segments[i - 1]!.nextOffset) {
        // overlaps its predecessor: it and everything after it cannot be trusted
        for (const bad of log.segments.splice(i)) {
          log.recoveredBytesCut += bad.size;
          bad.delete();
        }
        break;
      }
      const cut = segment.recover(log.config['index.interval.bytes']);
      log.recoveredBytesCut += cut;
      if (cut > 0) {
        // nothing after a torn or corrupt batch can be trusted
        for (const later of log.segments.splice(i + 1)) {
          log.recoveredBytesCut += later.size;
          later.delete();
        }
        break;
      }
    }

    const end = log.logEndOffset;
    log.logStartOffset = Math.min(Math.max(startCheckpoint ?? 0, log.segments[0]!.baseOffset), end);
    log.cleanerOffset = Math.min(Math.max(readNumber(path.join(dir, 'cleaner-offset')) ?? 0, log.logStartOffset), end);
    log.#rebuildProducerState(
      recoverFrom < log.segments.length ? log.segments[recoverFrom]!.baseOffset : end,
      recoverFrom,
    );
    if (recoverFrom < log.segments.length) {
      for (const segment of log.segments.slice(recoverFrom)) {
        segment.syncNow();
        if (segment !== log.active) segment.writeIndexes(true);
      }
      fsyncDir(dir);
    }
    log.#flushedOffset = end;
    return log;
  }

  /** Replays producer state from the newest snapshot at or before `replayLimit`, rebuilding txn indexes of recovered segments. */
  #rebuildProducerState(replayLimit: number, recoveredFrom: number): void {
    const end = this.logEndOffset;
    const snapshots = listSnapshots(this.dir);
    for (const offset of snapshots.filter((o) => o > end)) deleteSnapshot(this.dir, offset);
    let from = this.segments[0]!.baseOffset;
    this.producers.clear();
    for (const offset of snapshots.filter((o) => o <= Math.min(replayLimit, end)).reverse()) {
      if (this.producers.loadSnapshot(this.dir, offset)) {
        from = offset;
        break;
      }
    }
    for (let i = this.#segmentIndexFor(from); i < this.segments.length; i++) {
      const segment = this.segments[i]!;
      if (segment.nextOffset <= from) continue;
      const rebuildTxnIndex = i >= recoveredFrom;
      const start = from > segment.baseOffset ? segment.positionOf(from) : 0;
      segment.scanHeaders(start, segment.size, (h) => {
        if (h.baseOffset >= from) this.#replayBatch(segment, h, rebuildTxnIndex);
        return true;
      });
    }
  }

  #replayBatch(segment: Segment, h: BatchHeaderView, rebuildTxnIndex: boolean): void {
    const { buf, at } = h;
    const producerId = buf.readBigInt64BE(at + BatchField.producerId);
    if (producerId < 0n) return;
    const attributes = buf.readInt16BE(at + BatchField.attributes);
    const epoch = buf.readInt16BE(at + BatchField.producerEpoch);
    const timestamp = Number(buf.readBigInt64BE(at + BatchField.maxTimestamp));
    if (attributes & Attributes.control) {
      const whole = Buffer.allocUnsafe(h.size);
      readFully(segment.fd, whole, 0, h.size, h.position);
      const type = controlBatchType(whole);
      const first = this.producers.applyMarker(producerId, epoch, -1, timestamp);
      if (type === 'ABORT' && first >= 0 && rebuildTxnIndex) {
        segment.addAbortedTxn({
          producerId,
          firstOffset: first,
          lastOffset: h.baseOffset,
          lastStableOffset: this.producers.firstUnstableOffset() ?? h.baseOffset + 1,
        });
      }
      return;
    }
    this.producers.apply(
      {
        producerId,
        epoch,
        baseSequence: buf.readInt32BE(at + BatchField.baseSequence),
        lastOffsetDelta: h.lastOffset - h.baseOffset,
        transactional: (attributes & Attributes.transactional) !== 0,
      },
      h.baseOffset,
      h.lastOffset,
      timestamp,
    );
  }

  /** Completes or rolls back a segment swap the cleaner was doing when the process stopped. */
  #finishInterruptedCleaning(): void {
    const manifestPath = path.join(this.dir, 'cleaner-swap.json');
    const text = readFileIfExists(manifestPath);
    if (text === undefined) return;
    const manifest = JSON.parse(text) as { base: number; replaced: number[] };
    const swap = path.join(this.dir, segmentFileName(manifest.base, '.log.swap'));
    if (fs.existsSync(swap)) {
      for (const base of manifest.replaced) {
        for (const suffix of ['.log', '.index', '.timeindex', '.txnindex']) {
          fs.rmSync(path.join(this.dir, segmentFileName(base, suffix)), { force: true });
        }
      }
      fs.renameSync(swap, path.join(this.dir, segmentFileName(manifest.base, '.log')));
    }
    fs.rmSync(manifestPath, { force: true });
    fsyncDir(this.dir);
  }

  // ---- appending ----

  /**
   * Validates and appends one or more record batches v2 (client batches: control batches are refused).
   * Offsets are assigned by patching the caller's buffer.
   */
  append(batches: Buffer, now: number, txnCheck?: TxnAppendCheck, crcKnownGood = false): AppendOutcome {
    this.#checkOpen();
    const where = this.name;
    if (batches.length === 0) throw kafkaError('CORRUPT_MESSAGE', `${where}: no record batch to append`);
    const config = this.config;
    const positions: number[] = [];
    const tentative = new Map<bigint, TentativeProducerState>();
    let offsetCount = 0;
    let records = 0;
    let maxTimestamp = -1;
    for (let pos = 0; pos < batches.length; ) {
      const size = validateBatch(batches, pos, batches.length, !crcKnownGood);
      if (size > config['max.message.bytes']) {
        throw kafkaError(
          'MESSAGE_TOO_LARGE',
          `${where}: a batch of ${size} bytes exceeds max.message.bytes ${config['max.message.bytes']}`,
        );
      }
      const attributes = batches.readInt16BE(pos + BatchField.attributes);
      const count = batches.readInt32BE(pos + BatchField.recordCount);
      const lastOffsetDelta = batches.readInt32BE(pos + BatchField.lastOffsetDelta);
      if (attributes & Attributes.control) {
        throw kafkaError('INVALID_RECORD', `${where}: clients cannot write control batches`);
      }
      if (count < 1 || lastOffsetDelta !== count - 1) {
        throw kafkaError(
          'INVALID_RECORD',
          `${where}: batch has ${count} records but lastOffsetDelta ${lastOffsetDelta}`,
        );
      }
      const ts = Number(batches.readBigInt64BE(pos + BatchField.maxTimestamp));
      if (ts > maxTimestamp) maxTimestamp = ts;
      const producerId = batches.readBigInt64BE(pos + BatchField.producerId);
      const transactional = (attributes & Attributes.transactional) !== 0;
      if (producerId >= 0n) {
        const info: DataBatchInfo = {
          producerId,
          epoch: batches.readInt16BE(pos + BatchField.producerEpoch),
          baseSequence: batches.readInt32BE(pos + BatchField.baseSequence),
          lastOffsetDelta,
          transactional,
        };
        if (transactional) txnCheck?.(producerId, info.epoch);
        const duplicate = this.producers.check(where, info, tentative);
        if (duplicate) {
          return {
            baseOffset: duplicate.firstOffset,
            lastOffset: duplicate.lastOffset,
            logAppendTime: -1,
            duplicate: true,
            // as durable as the original's acknowledgement was
            durable: config['flush.messages'] <= 1 && this.#flushedOffset <= duplicate.lastOffset ? this.flush() : null,
          };
        }
      } else if (transactional) {
        throw kafkaError('INVALID_RECORD', `${where}: a transactional batch needs a producer id`);
      }
      positions.push(pos);
      offsetCount += count;
      records += count;
      pos += size;
    }

    const logAppendTime = config['message.timestamp.type'] === 'LogAppendTime';
    if (logAppendTime) maxTimestamp = now;
    const baseOffset = this.logEndOffset;
    this.#maybeRoll(batches.length, baseOffset + offsetCount - 1, maxTimestamp);
    let offset = baseOffset;
    for (const pos of positions) {
      batches.writeBigInt64BE(BigInt(offset), pos);
      if (logAppendTime) {
        const attributes = batches.readInt16BE(pos + BatchField.attributes);
        batches.writeInt16BE(attributes | Attributes.logAppendTime, pos + BatchField.attributes);
        batches.writeBigInt64BE(BigInt(now), pos + BatchField.maxTimestamp);
        updateBatchCrc(batches, pos);
      }
      offset += batches.readInt32BE(pos + BatchField.lastOffsetDelta) + 1;
    }

    const segment = this.active;
    const start = segment.size;
    segment.write(batches, 0, batches.length);
    this.#dirty.add(segment);
    offset = baseOffset;
    const interval = config['index.interval.bytes'];
    for (const pos of positions) {
      const size = LOG_OVERHEAD + batches.readInt32BE(pos + BatchField.batchLength);
      const lastOffsetDelta = batches.readInt32BE(pos + BatchField.lastOffsetDelta);
      const lastOffset = offset + lastOffsetDelta;
      const ts = Number(batches.readBigInt64BE(pos + BatchField.maxTimestamp));
      segment.indexBatch(start + pos, size, lastOffset, ts, interval);
      const producerId = batches.readBigInt64BE(pos + BatchField.producerId);
      if (producerId >= 0n) {
        const attributes = batches.readInt16BE(pos + BatchField.attributes);
        this.producers.apply(
          {
            producerId,
            epoch: batches.readInt16BE(pos + BatchField.producerEpoch),
            baseSequence: batches.readInt32BE(pos + BatchField.baseSequence),
            lastOffsetDelta,
            transactional: (attributes & Attributes.transactional) !== 0,
          },
          offset,
          lastOffset,
          now,
        );
      }
      offset = lastOffset + 1;
    }
    this.#unflushedMessages += records;
    const durable = this.#unflushedMessages >= config['flush.messages'] ? this.flush() : null;
    this.#notify();
    return { baseOffset, lastOffset: offset - 1, logAppendTime: logAppendTime ? now : -1, duplicate: false, durable };
  }

  /** Writes a COMMIT or ABORT marker for a producer's transaction (the transaction coordinator's call). */
  appendMarker(
    producerId: bigint,
    producerEpoch: number,
    type: ControlType,
    coordinatorEpoch: number,
    now: number,
  ): AppendOutcome {
    this.#checkOpen();
    this.producers.checkMarker(this.name, producerId, producerEpoch);
    const offset = this.logEndOffset;
    const batch = encodeControlBatch({
      producerId,
      producerEpoch,
      type,
      coordinatorEpoch,
      timestamp: now,
      baseOffset: BigInt(offset),
      partitionLeaderEpoch: 0,
    });
    this.#maybeRoll(batch.length, offset, now);
    const segment = this.active;
    const position = segment.size;
    segment.write(batch, 0, batch.length);
    this.#dirty.add(segment);
    segment.indexBatch(position, batch.length, offset, now, this.config['index.interval.bytes']);
    const first = this.producers.applyMarker(producerId, producerEpoch, coordinatorEpoch, now);
    if (type === 'ABORT' && first >= 0) {
      segment.addAbortedTxn({
        producerId,
        firstOffset: first,
        lastOffset: offset,
        lastStableOffset: this.producers.firstUnstableOffset() ?? offset + 1,
      });
    }
    this.#unflushedMessages += 1;
    const durable = this.#unflushedMessages >= this.config['flush.messages'] ? this.flush() : null;
    this.#notify();
    return { baseOffset: offset, lastOffset: offset, logAppendTime: -1, duplicate: false, durable };
  }

  #maybeRoll(bytes: number, lastOffset: number, maxTimestamp: number): void {
    const segment = this.active;
    if (segment.size === 0) return;
    const config = this.config;
    if (
      segment.size + bytes > config['segment.bytes'] ||
      !segment.canHoldOffset(lastOffset) ||
      segment.indexEntries >= Math.floor(config['segment.index.bytes'] / INDEX_ENTRY_BYTES) ||
      (segment.firstBatchTimestamp >= 0 && maxTimestamp - segment.firstBatchTimestamp > config['segment.ms'])
    ) {
      this.roll();
    }
  }

  /** Starts a new active segment at the log end offset (the old one's indexes are written out). */
  roll(): void {
    const old = this.active;
    old.writeIndexes(true);
    const base = this.logEndOffset;
    this.segments.push(Segment.create(this.dir, base));
    fsyncDir(this.dir);
    this.producers.writeSnapshot(this.dir, base);
    this.#pruneSnapshots();
  }

  #pruneSnapshots(): void {
    const snapshots = listSnapshots(this.dir);
    const first = this.segments[0]!.baseOffset;
    snapshots.forEach((offset, i) => {
      const newest = i === snapshots.length - 1;
      if (!newest && (i < snapshots.length - 1 - SNAPSHOTS_KEPT || offset < first)) deleteSnapshot(this.dir, offset);
    });
  }

  // ---- durability ----

  /** Resolves once everything written so far is fsynced. */
  flush(): Promise<void> {
    const target = this.logEndOffset;
    if (this.#flushedOffset >= target && this.#dirty.size === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#syncWaiters.push({ target, resolve, reject });
      this.#kickSync();
    });
  }

  #kickSync(): void {
    if (this.#syncInFlight) return;
    const upTo = this.logEndOffset;
    const segments = [...this.#dirty];
    this.#dirty.clear();
    this.#unflushedMessages = 0;
    this.#lastFlushMs = Date.now();
    if (segments.length === 0) {
      this.#syncDone(upTo);
      return;
    }
    this.#syncInFlight = true;
    Promise.all(segments.map((s) => s.sync())).then(
      () => {
        this.#syncInFlight = false;
        this.#syncDone(upTo);
      },
      (err: unknown) => {
        this.#syncInFlight = false;
        for (const s of segments) this.#dirty.add(s);
        const waiters = this.#syncWaiters;
        this.#syncWaiters = [];
        const failure = new TributaryError('UNAVAILABLE', `${this.name}: fsync failed: ${(err as Error).message}`, {
          cause: err,
        });
        for (const w of waiters) w.reject(failure);
      },
    );
  }

  #syncDone(upTo: number): void {
    this.#flushedOffset = Math.max(this.#flushedOffset, upTo);
    const remaining: SyncWaiter[] = [];
    for (const w of this.#syncWaiters) {
      if (w.target <= this.#flushedOffset) w.resolve();
      else remaining.push(w);
    }
    this.#syncWaiters = remaining;
    if (remaining.length > 0) this.#kickSync();
  }

  /** The periodic part of the flush policy (flush.ms) and the recovery point checkpoint; called by the log's timer. */
  tick(now: number): void {
    if (this.#closed) return;
    if (this.#dirty.size > 0 && !this.#syncInFlight && now - this.#lastFlushMs >= this.config['flush.ms']) {
      this.flush().catch(() => {}); // a failed periodic flush leaves the segments dirty for the next one
    }
    if (this.#flushedOffset !== this.#recoveryPointWritten && now - this.#lastCheckpointMs >= CHECKPOINT_INTERVAL_MS) {
      this.#writeRecoveryPoint();
      this.#lastCheckpointMs = now;
    }
  }

  #writeRecoveryPoint(): void {
    writeFileAtomic(path.join(this.dir, 'recovery-point'), String(this.#flushedOffset));
    this.#recoveryPointWritten = this.#flushedOffset;
  }

  // ---- reading ----

  /** Index of the last segment whose base offset is <= offset (0 if none). */
  #segmentIndexFor(offset: number): number {
    let lo = 0;
    let hi = this.segments.length - 1;
    let found = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.segments[mid]!.baseOffset <= offset) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }

  read(fetchOffset: number, maxBytes: number, isolation: IsolationLevel): PartitionReadResult {
    this.#checkOpen();
    const highWatermark = this.highWatermark;
    const lastStableOffset = this.lastStableOffset();
    if (fetchOffset < this.logStartOffset || fetchOffset > highWatermark) {
      throw kafkaError(
        'OFFSET_OUT_OF_RANGE',
        `${this.name}: offset ${fetchOffset} is outside [${this.logStartOffset}, ${highWatermark}]`,
      );
    }
    const result: PartitionReadResult = {
      records: EMPTY,
      highWatermark,
      lastStableOffset,
      logStartOffset: this.logStartOffset,
      abortedTransactions: [],
    };
    const bound = isolation === 'read_committed' ? lastStableOffset : highWatermark;
    if (fetchOffset >= bound) return result;
    const cache = this.#readCache;
    for (let i = this.#segmentIndexFor(fetchOffset); i < this.segments.length; i++) {
      const segment = this.segments[i]!;
      if (segment.baseOffset >= bound) break;
      if (segment.nextOffset <= fetchOffset) continue;
      const position =
        cache !== null && cache.offset === fetchOffset && cache.segment === segment
          ? cache.position
          : segment.positionOf(fetchOffset);
      const limit = bound >= segment.nextOffset ? segment.size : segment.positionOf(bound);
      if (position >= limit) continue;
      const records = segment.read(position, maxBytes, limit);
      if (records.length === 0) continue;
      const next = lastOffsetIn(records) + 1;
      this.#readCache = { offset: next, segment, position: position + records.length };
      result.records = records;
      if (isolation === 'read_committed') result.abortedTransactions = this.#abortedBetween(i, fetchOffset, next);
      break;
    }
    return result;
  }

  /** Aborted transactions overlapping [from, upTo), from the txn indexes of segment `first` onwards. */
  #abortedBetween(first: number, from: number, upTo: number): AbortedTransaction[] {
    const out: AbortedTransaction[] = [];
    for (let i = first; i < this.segments.length; i++) {
      for (const e of this.segments[i]!.aborted) {
        if (e.lastOffset >= from && e.firstOffset < upTo)
          out.push({ producerId: e.producerId, firstOffset: BigInt(e.firstOffset) });
      }
    }
    return out;
  }

  /**
   * Kafka's ListOffsets: -2 earliest, -1 latest (the LSO for read_committed), -3 the record with the largest
   * timestamp, else the first offset whose timestamp is >= `timestamp`.
   */
  offsetForTimestamp(timestamp: number, isolation: IsolationLevel): { offset: number; timestamp: number } {
    this.#checkOpen();
    const bound = isolation === 'read_committed' ? this.lastStableOffset() : this.highWatermark;
    if (timestamp === -2) return { offset: this.logStartOffset, timestamp: -1 };
    if (timestamp === -1) return { offset: bound, timestamp: -1 };
    const none = { offset: -1, timestamp: -1 };
    if (timestamp === -3) {
      let best: Segment | undefined;
      for (const s of this.segments)
        if (s.maxTimestamp >= 0 && (best === undefined || s.maxTimestamp > best.maxTimestamp)) best = s;
      if (best === undefined) return none;
      const target = best.maxTimestamp;
      const found = this.#findRecord(best, best.searchStartForTimestamp(target), (t) => t >= target);
      return found && found.offset < bound ? found : none;
    }
    for (const segment of this.segments) {
      if (segment.maxTimestamp < timestamp) continue;
      const found = this.#findRecord(segment, segment.searchStartForTimestamp(timestamp), (t) => t >= timestamp);
      if (found) return found.offset < bound ? found : none;
    }
    return none;
  }

  /** The first record at or after `from` in the segment whose timestamp satisfies `match`. */
  #findRecord(
    segment: Segment,
    from: number,
    match: (timestamp: number) => boolean,
  ): { offset: number; timestamp: number } | undefined {
    let found: { offset: number; timestamp: number } | undefined;
    const lowest = Math.max(from, this.logStartOffset);
    segment.scanBatches(segment.positionOf(lowest), segment.size, (h) => {
      const attributes = h.buf.readInt16BE(h.at + BatchField.attributes);
      if (attributes & Attributes.control || h.lastOffset < lowest) return true;
      if (!match(Number(h.buf.readBigInt64BE(h.at + BatchField.maxTimestamp)))) return true;
      const batch = decodeRecordBatch(h.buf.subarray(h.at, h.at + h.size), { verifyCrc: false });
      for (const r of batch.records) {
        if (r.offset >= BigInt(lowest) && match(Number(r.timestamp))) {
          found = { offset: Number(r.offset), timestamp: Number(r.timestamp) };
          return false;
        }
      }
      return true;
    });
    return found;
  }

  // ---- waiting ----

  /** Calls `listener` after every append until the returned function is called. */
  onAppend(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #notify(): void {
    for (const listener of this.#listeners) listener();
  }

  // ---- deletion ----

  /** DeleteRecords: moves the log start offset to `beforeOffset` (-1 = the high watermark). */
  deleteRecords(beforeOffset: number): number {
    this.#checkOpen();
    const target = beforeOffset === -1 ? this.highWatermark : beforeOffset;
    if (target < 0 || target > this.highWatermark) {
      throw kafkaError(
        'OFFSET_OUT_OF_RANGE',
        `${this.name}: cannot delete records before ${beforeOffset}: the high watermark is ${this.highWatermark}`,
      );
    }
    if (target > this.logStartOffset) {
      this.logStartOffset = target;
      this.#deleteSegmentsBelowStart();
      this.#writeStartOffset();
    }
    return this.logStartOffset;
  }

  #deleteSegmentsBelowStart(): void {
    let count = 0;
    while (count < this.segments.length - 1 && this.segments[count + 1]!.baseOffset <= this.logStartOffset) count++;
    this.#deleteOldest(count);
  }

  /** Retention by time and size (whole segments, oldest first); returns the segments deleted. */
  applyRetention(now: number): number {
    this.#checkOpen();
    const before = this.segments.length;
    this.#deleteSegmentsBelowStart();
    const config = this.config;
    if (!hasDeletion(config)) return before - this.segments.length;
    let count = 0;
    const retentionMs = config['retention.ms'];
    if (retentionMs >= 0) {
      while (count < this.segments.length) {
        const segment = this.segments[count]!;
        if (segment === this.active && segment.size === 0) break;
        const newest = segment.maxTimestamp >= 0 ? segment.maxTimestamp : fs.fstatSync(segment.fd).mtimeMs;
        if (now - newest <= retentionMs) break;
        count++;
      }
    }
    const retentionBytes = config['retention.bytes'];
    if (retentionBytes >= 0) {
      let excess = this.sizeBytes - retentionBytes;
      for (let i = 0; i < this.segments.length; i++) {
        const segment = this.segments[i]!;
        if ((segment === this.active && segment.size === 0) || excess - segment.size < 0) break;
        excess -= segment.size;
        count = Math.max(count, i + 1);
      }
    }
    if (count === 0) return before - this.segments.length;
    if (count === this.segments.length) this.roll();
    this.#deleteOldest(count);
    return before - this.segments.length;
  }

  #deleteOldest(count: number): void {
    if (count <= 0) return;
    for (const segment of this.segments.splice(0, count)) {
      this.#dirty.delete(segment);
      segment.delete();
    }
    this.#readCache = null;
    const first = this.segments[0]!.baseOffset;
    if (first > this.logStartOffset) {
      this.logStartOffset = first;
      this.#writeStartOffset();
    }
    this.cleanerOffset = Math.max(this.cleanerOffset, this.logStartOffset);
    this.#pruneSnapshots();
  }

  #writeStartOffset(): void {
    writeFileAtomic(path.join(this.dir, 'log-start-offset'), String(this.logStartOffset));
  }

  /** Replaces `old` (consecutive segments) by `replacement` in the segment list (the cleaner's swap). */
  replaceSegments(old: Segment[], replacement: Segment): void {
    const at = this.segments.indexOf(old[0]!);
    this.segments.splice(at, old.length, replacement);
    for (const s of old) this.#dirty.delete(s);
    this.#readCache = null;
  }

  writeCleanerOffset(offset: number): void {
    this.cleanerOffset = offset;
    writeFileAtomic(path.join(this.dir, 'cleaner-offset'), String(offset));
  }

  // ---- lifecycle ----

  #checkOpen(): void {
    if (this.#closed) throw kafkaError('UNKNOWN_TOPIC_OR_PARTITION', `${this.name} is closed or deleted`);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Clean shutdown: fsync, write indexes, snapshot producer state and checkpoints, close files. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.flush();
    this.#closed = true;
    this.active.writeIndexes(true);
    this.producers.writeSnapshot(this.dir, this.logEndOffset);
    this.#pruneSnapshots();
    this.#writeRecoveryPoint();
    this.#writeStartOffset();
    for (const segment of this.segments) segment.close();
    this.#notify();
  }

  /** Closes without flushing and removes the partition's directory (topic deletion). */
  destroy(): void {
    this.#closed = true;
    for (const segment of this.segments) segment.close();
    const waiters = this.#syncWaiters;
    this.#syncWaiters = [];
    for (const w of waiters) w.reject(kafkaError('UNKNOWN_TOPIC_OR_PARTITION', `${this.name} was deleted`));
    this.#notify();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The last offset of the last batch in a buffer of whole batches. */
export function lastOffsetIn(records: Buffer): number {
  let pos = 0;
  let last = -1;
  while (pos + BATCH_HEADER_BYTES <= records.length) {
    last = Number(records.readBigInt64BE(pos)) + records.readInt32BE(pos + BatchField.lastOffsetDelta);
    pos += LOG_OVERHEAD + records.readInt32BE(pos + BatchField.batchLength);
  }
  return last;
}

function readNumber(file: string): number | undefined {
  const text = readFileIfExists(file);
  if (text === undefined) return undefined;
  const n = Number(text.trim());
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}
