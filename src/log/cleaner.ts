/**
 * Log compaction (`cleanup.policy=compact`): keeps the latest record per key in the cleanable part of a
 * partition (every segment but the active one, below the last stable offset, older than
 * `min.compaction.lag.ms`). Tombstones (null values) and transaction markers stay for
 * `delete.retention.ms` after their timestamp, then go; records of aborted transactions go at once.
 * Offsets never change: a batch that loses records keeps its base offset and last offset delta.
 *
 * Cleaned segments are written beside the originals (`.log.cleaned`) and swapped in through a manifest
 * (`cleaner-swap.json`) and a `.log.swap` rename, so a crash at any step leaves either the old segments
 * or the new one (PartitionLog.open finishes an interrupted swap).
 */
import path from 'node:path';
import { fsyncDir, unlinkIfExists, writeFileAtomic } from './fs-util.ts';
import type { PartitionLog } from './partition.ts';
import { Attributes, BatchField, batchRecordsSection, rebuildBatch, scanRecords } from './record-batch.ts';
import { MAX_RELATIVE_OFFSET, Segment, segmentFileName } from './segment.ts';
import { hasCompaction } from './topic-config.ts';

export interface CompactionResult {
  segmentsBefore: number;
  segmentsAfter: number;
  bytesBefore: number;
  bytesAfter: number;
  recordsRemoved: number;
}

/**
 * Compacts a partition if its policy says so and enough of it is dirty (`min.cleanable.dirty.ratio`, unless
 * `force`). Returns what it did, or null when there was nothing to clean.
 */
export function compactPartition(log: PartitionLog, now: number, force = false): CompactionResult | null {
  const config = log.config;
  if (!hasCompaction(config)) return null;
  const lastStable = log.lastStableOffset();
  const lag = config['min.compaction.lag.ms'];
  let count = 0;
  while (count < log.segments.length - 1) {
    const segment = log.segments[count]!;
    if (segment.nextOffset > lastStable) break;
    if (lag > 0 && segment.maxTimestamp >= 0 && now - segment.maxTimestamp < lag) break;
    count++;
  }
  if (count === 0) return null;
  const cleanable = log.segments.slice(0, count);
  const cleanableEnd = log.segments[count]!.baseOffset;
  let total = 0;
  let dirty = 0;
  for (const s of cleanable) {
    total += s.size;
    if (s.nextOffset > log.cleanerOffset) dirty += s.size;
  }
  if (!force && (dirty === 0 || dirty / total < config['min.cleanable.dirty.ratio'])) return null;

  const abortedRanges = new Map<bigint, { first: number; last: number }[]>();
  for (const segment of log.segments) {
    for (const e of segment.aborted) {
      const list = abortedRanges.get(e.producerId) ?? [];
      list.push({ first: e.firstOffset, last: e.lastOffset });
      abortedRanges.set(e.producerId, list);
    }
  }
  const isAborted = (buf: Buffer, at: number, baseOffset: number): boolean => {
    if ((buf.readInt16BE(at + BatchField.attributes) & Attributes.transactional) === 0) return false;
    const ranges = abortedRanges.get(buf.readBigInt64BE(at + BatchField.producerId));
    return ranges?.some((r) => r.first <= baseOffset && baseOffset <= r.last) ?? false;
  };

  // Pass 1: the offset of the latest record of every key.
  const latest = new Map<string, number>();
  for (const segment of cleanable) {
    segment.scanBatches(0, segment.size, (h) => {
      const { buf, at } = h;
      if (buf.readInt16BE(at + BatchField.attributes) & Attributes.control || isAborted(buf, at, h.baseOffset))
        return true;
      const section = batchRecordsSection(buf, at, h.size);
      scanRecords(section, buf.readInt32BE(at + BatchField.recordCount), (r) => {
        if (r.key !== null) latest.set(r.key.toString('latin1'), h.baseOffset + r.offsetDelta);
      });
      return true;
    });
  }

  // Pass 2: rewrite groups of consecutive segments, each group into one segment.
  const result: CompactionResult = {
    segmentsBefore: cleanable.length,
    segmentsAfter: 0,
    bytesBefore: total,
    bytesAfter: 0,
    recordsRemoved: 0,
  };
  const deleteRetention = config['delete.retention.ms'];
  const interval = config['index.interval.bytes'];
  for (const group of groupSegments(cleanable, config['segment.bytes'])) {
    const out = Segment.create(log.dir, group[0]!.baseOffset, '.log.cleaned');
    const keptMarkers = new Set<number>();
    const keep = (batch: Buffer, position: number, lastOffset: number) => {
      out.write(batch, 0, batch.length);
      out.indexBatch(
        position,
        batch.length,
        lastOffset,
        Number(batch.readBigInt64BE(BatchField.maxTimestamp)),
        interval,
      );
    };
    for (const segment of group) {
      segment.scanBatches(0, segment.size, (h) => {
        const { buf, at } = h;
        const batch = buf.subarray(at, at + h.size);
        const attributes = batch.readInt16BE(BatchField.attributes);
        const maxTimestamp = Number(batch.readBigInt64BE(BatchField.maxTimestamp));
        const recordCount = batch.readInt32BE(BatchField.recordCount);
        if (attributes & Attributes.control) {
          if (maxTimestamp + deleteRetention < now) result.recordsRemoved += recordCount;
          else {
            keptMarkers.add(h.baseOffset);
            keep(batch, out.size, h.lastOffset);
          }
          return true;
        }
        if (isAborted(buf, at, h.baseOffset)) {
          result.recordsRemoved += recordCount;
          return true;
        }
        const logAppendTime = (attributes & Attributes.logAppendTime) !== 0;
        const baseTimestamp = Number(batch.readBigInt64BE(BatchField.baseTimestamp));
        const section = batchRecordsSection(batch, 0, batch.length);
        const kept: Buffer[] = [];
        let keptMaxTimestamp = -1;
        scanRecords(section, recordCount, (r) => {
          const offset = h.baseOffset + r.offsetDelta;
          const timestamp = logAppendTime ? maxTimestamp : baseTimestamp + r.timestampDelta;
          const superseded = r.key !== null && latest.get(r.key.toString('latin1')) !== offset;
          const expiredTombstone = r.value === null && timestamp + deleteRetention < now;
          if (superseded || expiredTombstone) return;
          kept.push(section.subarray(r.start, r.end));
          if (timestamp > keptMaxTimestamp) keptMaxTimestamp = timestamp;
        });
        result.recordsRemoved += recordCount - kept.length;
        if (kept.length === recordCount) keep(batch, out.size, h.lastOffset);
        else if (kept.length > 0) {
          keep(
            rebuildBatch(batch, kept, kept.length, BigInt(logAppendTime ? maxTimestamp : keptMaxTimestamp)),
            out.size,
            h.lastOffset,
          );
        }
        return true;
      });
      for (const e of segment.aborted) if (keptMarkers.has(e.lastOffset)) out.addAbortedTxn(e);
    }
    swapIn(log, group, out);
    result.bytesAfter += out.size;
    result.segmentsAfter++;
  }
  log.writeCleanerOffset(cleanableEnd);
  return result;
}

/** Consecutive segments whose sizes sum to at most `maxBytes` (at least one each) and whose offsets fit one index. */
function groupSegments(segments: Segment[], maxBytes: number): Segment[][] {
  const groups: Segment[][] = [];
  let current: Segment[] = [];
  let size = 0;
  for (const s of segments) {
    const first = current[0];
    if (first && (size + s.size > maxBytes || s.nextOffset - 1 - first.baseOffset > MAX_RELATIVE_OFFSET)) {
      groups.push(current);
      current = [];
      size = 0;
    }
    current.push(s);
    size += s.size;
  }
  if (current.length > 0) groups.push(current);
  return groups;
}

function swapIn(log: PartitionLog, group: Segment[], out: Segment): void {
  const dir = log.dir;
  const base = out.baseOffset;
  out.syncNow();
  const manifest = path.join(dir, 'cleaner-swap.json');
  writeFileAtomic(manifest, JSON.stringify({ base, replaced: group.map((s) => s.baseOffset) }), { fsync: true });
  out.renameLog(path.join(dir, segmentFileName(base, '.log.swap')));
  fsyncDir(dir);
  for (const old of group) old.delete();
  out.renameLog(path.join(dir, segmentFileName(base, '.log')));
  out.writeIndexes(true);
  unlinkIfExists(manifest);
  fsyncDir(dir);
  log.replaceSegments(group, out);
}
