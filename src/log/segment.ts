/**
 * One log segment: `<20-digit baseOffset>.log` holding record batches v2 exactly as appended, with
 *  - `.index`      sparse offset index: 8-byte entries (offset - baseOffset int32, file position int32),
 *                  one per `index.interval.bytes` appended, keyed by the last offset of the indexed batch;
 *  - `.timeindex`  12-byte entries (max timestamp so far int64, its offset - baseOffset int32), increasing;
 *  - `.txnindex`   34-byte entries (version int16, producerId int64, firstOffset int64, lastOffset int64,
 *                  lastStableOffset int64), one per aborted transaction whose ABORT marker is in this segment.
 * The same layouts as Kafka's. Indexes live in memory and are written out when the segment stops being
 * active and on clean shutdown; recovery rebuilds them from the log.
 *
 * Offsets are numbers inside the log (exact up to 2^53, far beyond any offset a log reaches).
 */
import fs from 'node:fs';
import path from 'node:path';
import { crc32c } from './crc32c.ts';
import { readFully, unlinkIfExists, writeFully } from './fs-util.ts';
import { BATCH_HEADER_BYTES, BatchField, LOG_OVERHEAD, MAGIC_V2 } from './record-batch.ts';

export const INDEX_ENTRY_BYTES = 8;
export const TIME_INDEX_ENTRY_BYTES = 12;
export const TXN_INDEX_ENTRY_BYTES = 34;
/** Offsets in a segment are stored relative to its base offset, as int32. */
export const MAX_RELATIVE_OFFSET = 0x7fffffff;
const EMPTY = Buffer.alloc(0);

export function segmentFileName(baseOffset: number, suffix: string): string {
  return `${String(baseOffset).padStart(20, '0')}${suffix}`;
}

export interface AbortedTxnEntry {
  producerId: bigint;
  firstOffset: number;
  lastOffset: number;
  lastStableOffset: number;
}

/** The header fields scans need, read in place. */
export interface BatchHeaderView {
  buf: Buffer;
  /** Position of the batch in `buf`. */
  at: number;
  /** Position of the batch in the segment file. */
  position: number;
  size: number;
  baseOffset: number;
  lastOffset: number;
}

class GrowableInts {
  data = new Int32Array(64);
  length = 0;
  push(v: number): void {
    if (this.length === this.data.length) {
      const next = new Int32Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = v;
  }
  truncate(length: number): void {
    this.length = Math.min(this.length, length);
  }
}

class GrowableFloats {
  data = new Float64Array(64);
  length = 0;
  push(v: number): void {
    if (this.length === this.data.length) {
      const next = new Float64Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = v;
  }
  truncate(length: number): void {
    this.length = Math.min(this.length, length);
  }
}

export class Segment {
  readonly dir: string;
  readonly baseOffset: number;
  /** The log file's current name (`.log`, or `.log.cleaned` / `.log.swap` while the cleaner builds it). */
  logPath: string;
  fd: number;
  size: number;
  /** One past the last offset in the segment; baseOffset when empty. */
  nextOffset: number;
  maxTimestamp = -1;
  offsetOfMaxTimestamp = -1;
  /** The first batch's max timestamp: segment.ms counts from it (as Kafka). -1 when empty. */
  firstBatchTimestamp = -1;
  readonly aborted: AbortedTxnEntry[] = [];
  readonly #indexRel = new GrowableInts();
  readonly #indexPos = new GrowableInts();
  readonly #timeTs = new GrowableFloats();
  readonly #timeRel = new GrowableInts();
  #bytesSinceIndex = 0;
  /** Entries already in the index files, so writes append only new ones. */
  #persisted = { index: 0, time: 0, txn: 0 };
  #syncsInFlight = 0;
  #closeWhenIdle = false;
  #closed = false;

  private constructor(dir: string, baseOffset: number, logPath: string, fd: number, size: number) {
    this.dir = dir;
    this.baseOffset = baseOffset;
    this.logPath = logPath;
    this.fd = fd;
    this.size = size;
    this.nextOffset = baseOffset;
  }

  /** A new empty segment (an existing file of that name is truncated). */
  static create(dir: string, baseOffset: number, suffix = '.log'): Segment {
    const logPath = path.join(dir, segmentFileName(baseOffset, suffix));
    const fd = fs.openSync(logPath, 'w+');
    const segment = new Segment(dir, baseOffset, logPath, fd, 0);
    if (suffix === '.log') segment.#removeIndexFiles();
    return segment;
  }

  /** Opens an existing segment file; indexes are then loaded (`loadIndexes`) or rebuilt (`recover`). */
  static open(dir: string, baseOffset: number): Segment {
    const logPath = path.join(dir, segmentFileName(baseOffset, '.log'));
    const fd = fs.openSync(logPath, 'r+');
    return new Segment(dir, baseOffset, logPath, fd, fs.fstatSync(fd).size);
  }

  indexPath(suffix: '.index' | '.timeindex' | '.txnindex'): string {
    return path.join(this.dir, segmentFileName(this.baseOffset, suffix));
  }

  get indexEntries(): number {
    return this.#indexRel.length;
  }

  /** True when `lastOffset` still fits the index's 32-bit relative offsets. */
  canHoldOffset(lastOffset: number): boolean {
    return lastOffset - this.baseOffset <= MAX_RELATIVE_OFFSET;
  }

  // ---- appending ----

  /** Writes bytes at the end of the file. Index the batches afterwards with `indexBatch`. */
  write(buf: Buffer, start: number, end: number): void {
    try {
      writeFully(this.fd, buf, start, end - start, this.size);
    } catch (err) {
      // drop whatever part of the write landed, so the file stays batch-aligned
      try {
        fs.ftruncateSync(this.fd, this.size);
      } catch {}
      throw err;
    }
    this.size += end - start;
  }

  /** Records a batch just written at `position` in the in-memory indexes. */
  indexBatch(
    position: number,
    size: number,
    lastOffset: number,
    maxTimestamp: number,
    indexIntervalBytes: number,
  ): void {
    if (this.firstBatchTimestamp < 0 && this.nextOffset === this.baseOffset) this.firstBatchTimestamp = maxTimestamp;
    if (maxTimestamp > this.maxTimestamp) {
      this.maxTimestamp = maxTimestamp;
      this.offsetOfMaxTimestamp = lastOffset;
    }
    this.nextOffset = lastOffset + 1;
    if (this.#bytesSinceIndex > indexIntervalBytes) {
      this.#indexRel.push(lastOffset - this.baseOffset);
      this.#indexPos.push(position);
      this.#maybeAppendTimeEntry();
      this.#bytesSinceIndex = 0;
    }
    this.#bytesSinceIndex += size;
  }

  #maybeAppendTimeEntry(): void {
    const n = this.#timeTs.length;
    if (this.maxTimestamp >= 0 && (n === 0 || this.maxTimestamp > this.#timeTs.data[n - 1]!)) {
      this.#timeTs.push(this.maxTimestamp);
      this.#timeRel.push(this.offsetOfMaxTimestamp - this.baseOffset);
    }
  }

  addAbortedTxn(entry: AbortedTxnEntry): void {
    this.aborted.push(entry);
  }

  // ---- lookups ----

  /** File position of the batch containing `offset`, or of the first batch after it; `size` if none. */
  positionOf(offset: number): number {
    const rel = offset - this.baseOffset;
    const rels = this.#indexRel.data;
    let lo = 0;
    let hi = this.#indexRel.length - 1;
    let start = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (rels[mid]! <= rel) {
        start = this.#indexPos.data[mid]!;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    let found = this.size;
    this.scanHeaders(start, this.size, (h) => {
      if (h.lastOffset >= offset) {
        found = h.position;
        return false;
      }
      return true;
    });
    return found;
  }

  /** The offset from which to search for the first record with timestamp >= `timestamp`. */
  searchStartForTimestamp(timestamp: number): number {
    const ts = this.#timeTs.data;
    let lo = 0;
    let hi = this.#timeTs.length - 1;
    let offset = this.baseOffset;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (ts[mid]! < timestamp) {
        offset = this.baseOffset + this.#timeRel.data[mid]!;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return offset;
  }

  /**
   * Whole batches from `position`, at most `maxBytes` of them unless the first alone is bigger (then just
   * that one), never past `limit`.
   */
  read(position: number, maxBytes: number, limit: number): Buffer {
    const available = limit - position;
    if (available <= 0) return EMPTY;
    const want = Math.min(Math.max(maxBytes, LOG_OVERHEAD), available);
    let buf = Buffer.allocUnsafe(want);
    const n = readFully(this.fd, buf, 0, want, position);
    let end = 0;
    while (end + LOG_OVERHEAD <= n) {
      const size = LOG_OVERHEAD + buf.readInt32BE(end + BatchField.batchLength);
      if (end + size > n) break;
      end += size;
    }
    if (end === 0) {
      if (n < LOG_OVERHEAD) return EMPTY;
      const size = Math.min(LOG_OVERHEAD + buf.readInt32BE(BatchField.batchLength), available);
      buf = Buffer.allocUnsafe(size);
      return buf.subarray(0, readFully(this.fd, buf, 0, size, position));
    }
    return end === n ? buf : buf.subarray(0, end);
  }

  /**
   * Visits batch headers from `from` to `to` without reading whole batches: reads 16 KiB windows and walks
   * the length fields. `visit` returns false to stop. Returns the position after the last whole header
   * visited (where a truncated header begins, if any).
   */
  scanHeaders(from: number, to: number, visit: (h: BatchHeaderView) => boolean): number {
    const window = Buffer.allocUnsafe(16 * 1024);
    let pos = from;
    while (pos < to) {
      const n = readFully(this.fd, window, 0, Math.min(window.length, to - pos), pos);
      let at = 0;
      while (at + BATCH_HEADER_BYTES <= n) {
        const size = LOG_OVERHEAD + window.readInt32BE(at + BatchField.batchLength);
        if (size < BATCH_HEADER_BYTES || pos + at + size > to) return pos + at;
        const baseOffset = Number(window.readBigInt64BE(at));
        const view: BatchHeaderView = {
          buf: window,
          at,
          position: pos + at,
          size,
          baseOffset,
          lastOffset: baseOffset + window.readInt32BE(at + BatchField.lastOffsetDelta),
        };
        if (!visit(view)) return pos + at;
        at += size;
      }
      if (at === 0) return pos; // a truncated header
      pos += at;
    }
    return pos;
  }

  /**
   * Visits whole batches from `from` to `to`, reading 1 MiB chunks (or one batch, if larger). `visit`
   * returns false to stop. Returns the position after the last batch visited.
   */
  scanBatches(from: number, to: number, visit: (h: BatchHeaderView) => boolean): number {
    let chunk = Buffer.allocUnsafe(1024 * 1024);
    let pos = from;
    while (pos < to) {
      const n = readFully(this.fd, chunk, 0, Math.min(chunk.length, to - pos), pos);
      let at = 0;
      while (at + BATCH_HEADER_BYTES <= n) {
        const size = LOG_OVERHEAD + chunk.readInt32BE(at + BatchField.batchLength);
        if (size < BATCH_HEADER_BYTES || pos + at + size > to) return pos + at;
        if (at + size > n) break;
        const baseOffset = Number(chunk.readBigInt64BE(at));
        const view: BatchHeaderView = {
          buf: chunk,
          at,
          position: pos + at,
          size,
          baseOffset,
          lastOffset: baseOffset + chunk.readInt32BE(at + BatchField.lastOffsetDelta),
        };
        if (!visit(view)) return pos + at;
        at += size;
      }
      if (at === 0) {
        if (n < BATCH_HEADER_BYTES) return pos;
        chunk = Buffer.allocUnsafe(LOG_OVERHEAD + chunk.readInt32BE(BatchField.batchLength));
        continue;
      }
      pos += at;
    }
    return pos;
  }

  // ---- recovery ----

  /**
   * Rebuilds the indexes by reading every batch, checking length, magic, CRC and increasing offsets; cuts
   * the file at the first bad or torn batch. `onBatch` sees each good batch. Returns the bytes cut.
   */
  recover(indexIntervalBytes: number, onBatch?: (h: BatchHeaderView) => void): number {
    this.#resetIndexes();
    let expected = this.baseOffset;
    const end = this.scanBatches(0, this.size, (h) => {
      const { buf, at, size } = h;
      if (buf[at + BatchField.magic] !== MAGIC_V2) return false;
      if (crc32c(buf, at + BatchField.attributes, at + size) !== buf.readUInt32BE(at + BatchField.crc)) return false;
      if (h.baseOffset < expected || h.lastOffset < h.baseOffset || !this.canHoldOffset(h.lastOffset)) return false;
      expected = h.lastOffset + 1;
      this.indexBatch(
        h.position,
        size,
        h.lastOffset,
        Number(buf.readBigInt64BE(at + BatchField.maxTimestamp)),
        indexIntervalBytes,
      );
      onBatch?.(h);
      return true;
    });
    const cut = this.size - end;
    if (cut > 0) {
      fs.ftruncateSync(this.fd, end);
      this.size = end;
    }
    return cut;
  }

  #resetIndexes(): void {
    this.#indexRel.truncate(0);
    this.#indexPos.truncate(0);
    this.#timeTs.truncate(0);
    this.#timeRel.truncate(0);
    this.aborted.length = 0;
    this.#persisted = { index: 0, time: 0, txn: 0 };
    this.#bytesSinceIndex = 0;
    this.nextOffset = this.baseOffset;
    this.maxTimestamp = -1;
    this.offsetOfMaxTimestamp = -1;
    this.firstBatchTimestamp = -1;
  }

  /**
   * Loads the index files written at the last roll or clean shutdown and reads the batches after the last
   * indexed one. Returns false when the files are missing or inconsistent with the log (then `recover`).
   */
  loadIndexes(): boolean {
    this.#resetIndexes();
    let index: Buffer;
    let time: Buffer;
    let txn: Buffer;
    try {
      index = fs.readFileSync(this.indexPath('.index'));
      time = fs.readFileSync(this.indexPath('.timeindex'));
      txn = fs.readFileSync(this.indexPath('.txnindex'));
    } catch {
      return false;
    }
    if (
      index.length % INDEX_ENTRY_BYTES ||
      time.length % TIME_INDEX_ENTRY_BYTES ||
      txn.length % TXN_INDEX_ENTRY_BYTES
    ) {
      return false;
    }
    let lastRel = -1;
    let lastPos = -1;
    for (let p = 0; p < index.length; p += INDEX_ENTRY_BYTES) {
      const rel = index.readInt32BE(p);
      const pos = index.readInt32BE(p + 4);
      if (rel <= lastRel || pos <= lastPos || pos >= this.size) return false;
      this.#indexRel.push(rel);
      this.#indexPos.push(pos);
      lastRel = rel;
      lastPos = pos;
    }
    let lastTs = -1;
    for (let p = 0; p < time.length; p += TIME_INDEX_ENTRY_BYTES) {
      const ts = Number(time.readBigInt64BE(p));
      const rel = time.readInt32BE(p + 8);
      if (ts <= lastTs || rel < 0) return false;
      this.#timeTs.push(ts);
      this.#timeRel.push(rel);
      lastTs = ts;
    }
    for (let p = 0; p < txn.length; p += TXN_INDEX_ENTRY_BYTES) {
      this.aborted.push({
        producerId: txn.readBigInt64BE(p + 2),
        firstOffset: Number(txn.readBigInt64BE(p + 10)),
        lastOffset: Number(txn.readBigInt64BE(p + 18)),
        lastStableOffset: Number(txn.readBigInt64BE(p + 26)),
      });
    }
    this.#persisted = { index: this.#indexRel.length, time: this.#timeTs.length, txn: this.aborted.length };
    if (this.#timeTs.length > 0) {
      this.maxTimestamp = lastTs;
      this.offsetOfMaxTimestamp = this.baseOffset + this.#timeRel.data[this.#timeTs.length - 1]!;
    }
    // the batches after the last index entry give the end offset and the latest timestamps
    const from = this.#indexPos.length > 0 ? this.#indexPos.data[this.#indexPos.length - 1]! : 0;
    let ok = true;
    let bytesAfter = 0;
    const end = this.scanHeaders(from, this.size, (h) => {
      if (h.lastOffset < h.baseOffset || h.lastOffset < this.nextOffset - 1) {
        ok = false;
        return false;
      }
      const ts = Number(h.buf.readBigInt64BE(h.at + BatchField.maxTimestamp));
      if (ts > this.maxTimestamp) {
        this.maxTimestamp = ts;
        this.offsetOfMaxTimestamp = h.lastOffset;
      }
      this.nextOffset = h.lastOffset + 1;
      bytesAfter += h.size;
      return true;
    });
    if (!ok || end !== this.size) return false;
    this.#bytesSinceIndex = bytesAfter;
    if (this.size > 0) {
      const head = Buffer.allocUnsafe(BATCH_HEADER_BYTES);
      readFully(this.fd, head, 0, BATCH_HEADER_BYTES, 0);
      this.firstBatchTimestamp = Number(head.readBigInt64BE(BatchField.maxTimestamp));
    }
    return true;
  }

  /**
   * Writes index entries not yet in the files (and a final time index entry for the max timestamp);
   * `sync` fsyncs them, for segments that will no longer be rebuilt on recovery.
   */
  writeIndexes(sync: boolean): void {
    this.#maybeAppendTimeEntry();
    const p = this.#persisted;
    const indexCount = this.#indexRel.length - p.index;
    if (indexCount > 0 || p.index === 0 || sync) {
      const buf = Buffer.allocUnsafe(indexCount * INDEX_ENTRY_BYTES);
      for (let i = 0; i < indexCount; i++) {
        buf.writeInt32BE(this.#indexRel.data[p.index + i]!, i * 8);
        buf.writeInt32BE(this.#indexPos.data[p.index + i]!, i * 8 + 4);
      }
      appendToFile(this.indexPath('.index'), buf, p.index === 0, sync);
    }
    const timeCount = this.#timeTs.length - p.time;
    if (timeCount > 0 || p.time === 0 || sync) {
      const buf = Buffer.allocUnsafe(timeCount * TIME_INDEX_ENTRY_BYTES);
      for (let i = 0; i < timeCount; i++) {
        buf.writeBigInt64BE(BigInt(this.#timeTs.data[p.time + i]!), i * 12);
        buf.writeInt32BE(this.#timeRel.data[p.time + i]!, i * 12 + 8);
      }
      appendToFile(this.indexPath('.timeindex'), buf, p.time === 0, sync);
    }
    const txnCount = this.aborted.length - p.txn;
    if (txnCount > 0 || p.txn === 0 || sync) {
      const buf = Buffer.alloc(txnCount * TXN_INDEX_ENTRY_BYTES);
      for (let i = 0; i < txnCount; i++) {
        const e = this.aborted[p.txn + i]!;
        const at = i * TXN_INDEX_ENTRY_BYTES;
        buf.writeInt16BE(0, at);
        buf.writeBigInt64BE(e.producerId, at + 2);
        buf.writeBigInt64BE(BigInt(e.firstOffset), at + 10);
        buf.writeBigInt64BE(BigInt(e.lastOffset), at + 18);
        buf.writeBigInt64BE(BigInt(e.lastStableOffset), at + 26);
      }
      appendToFile(this.indexPath('.txnindex'), buf, p.txn === 0, sync);
    }
    this.#persisted = { index: this.#indexRel.length, time: this.#timeTs.length, txn: this.aborted.length };
  }

  #removeIndexFiles(): void {
    for (const suffix of ['.index', '.timeindex', '.txnindex'] as const) unlinkIfExists(this.indexPath(suffix));
  }

  // ---- durability and lifecycle ----

  /** fdatasync, asynchronously. The fd stays open until it completes even if the segment is closed. */
  sync(): Promise<void> {
    this.#syncsInFlight++;
    return new Promise((resolve, reject) => {
      fs.fdatasync(this.fd, (err) => {
        this.#syncsInFlight--;
        if (this.#closeWhenIdle && this.#syncsInFlight === 0) this.#closeNow();
        if (err) reject(err);
        else resolve();
      });
    });
  }

  syncNow(): void {
    fs.fdatasyncSync(this.fd);
  }

  renameLog(newPath: string): void {
    fs.renameSync(this.logPath, newPath);
    this.logPath = newPath;
  }

  close(): void {
    if (this.#closed) return;
    if (this.#syncsInFlight > 0) this.#closeWhenIdle = true;
    else this.#closeNow();
  }

  #closeNow(): void {
    if (this.#closed) return;
    this.#closed = true;
    fs.closeSync(this.fd);
  }

  /** Closes the segment and deletes its files. */
  delete(): void {
    this.close();
    unlinkIfExists(this.logPath);
    this.#removeIndexFiles();
  }
}

function appendToFile(file: string, data: Buffer, truncate: boolean, sync: boolean): void {
  const fd = fs.openSync(file, truncate ? 'w' : 'a');
  try {
    if (data.length > 0) fs.writeSync(fd, data);
    if (sync) fs.fdatasyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
