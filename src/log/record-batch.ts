/**
 * Kafka record batch v2 ("magic 2"): the unit the log stores, the broker moves and clients produce.
 *
 *   0 baseOffset int64 | 8 batchLength int32 | 12 partitionLeaderEpoch int32 | 16 magic int8 | 17 crc uint32
 *  21 attributes int16 | 23 lastOffsetDelta int32 | 27 baseTimestamp int64 | 35 maxTimestamp int64
 *  43 producerId int64 | 51 producerEpoch int16 | 53 baseSequence int32 | 57 recordCount int32 | 61 records
 *
 * batchLength counts the bytes after itself (so a batch occupies 12 + batchLength bytes). The CRC-32C covers
 * attributes to the end, so the broker assigns offsets by patching bytes 0-7 and leaves the CRC alone.
 * Each record: length varint, attributes int8, timestampDelta varlong, offsetDelta varint, key (varint length,
 * -1 = null), value (same), header count varint, headers (key string, value bytes). Varints are zig-zag.
 * A control batch (attribute bit 5) holds one record: key = version int16 + type int16 (0 abort, 1 commit),
 * value = version int16 + coordinatorEpoch int32.
 */
import { invalidArgument, kafkaError } from '../core/index.ts';
import { type CompressionType, compress, compressionCodec, compressionTypeOf, decompress } from './compression.ts';
import { crc32c } from './crc32c.ts';

export const BATCH_HEADER_BYTES = 61;
/** baseOffset + batchLength: the bytes not counted by batchLength. */
export const LOG_OVERHEAD = 12;
export const MAGIC_V2 = 2;

/** Byte positions of the header fields. */
export const BatchField = {
  baseOffset: 0,
  batchLength: 8,
  partitionLeaderEpoch: 12,
  magic: 16,
  crc: 17,
  attributes: 21,
  lastOffsetDelta: 23,
  baseTimestamp: 27,
  maxTimestamp: 35,
  producerId: 43,
  producerEpoch: 51,
  baseSequence: 53,
  recordCount: 57,
} as const;

export const Attributes = {
  compressionMask: 0x07,
  logAppendTime: 0x08,
  transactional: 0x10,
  control: 0x20,
  deleteHorizon: 0x40,
} as const;

export const NO_PRODUCER_ID = -1n;
export const NO_PRODUCER_EPOCH = -1;
export const NO_SEQUENCE = -1;

export type TimestampType = 'CreateTime' | 'LogAppendTime';
export type ControlType = 'ABORT' | 'COMMIT';
/** A record header; Kafka allows a null value. */
export type RecordHeader = readonly [key: string, value: Buffer | null];

export interface RecordBatchHeader {
  baseOffset: bigint;
  batchLength: number;
  partitionLeaderEpoch: number;
  magic: number;
  crc: number;
  attributes: number;
  lastOffsetDelta: number;
  baseTimestamp: bigint;
  maxTimestamp: bigint;
  producerId: bigint;
  producerEpoch: number;
  baseSequence: number;
  recordCount: number;
  compression: CompressionType;
  timestampType: TimestampType;
  isTransactional: boolean;
  isControl: boolean;
}

export interface DecodedRecord {
  offset: bigint;
  /** The record's timestamp: the batch's maxTimestamp when the batch uses LogAppendTime. */
  timestamp: bigint;
  key: Buffer | null;
  value: Buffer | null;
  headers: RecordHeader[];
  offsetDelta: number;
  timestampDelta: number;
}

export interface DecodedBatch extends RecordBatchHeader {
  records: DecodedRecord[];
}

export interface RecordToEncode {
  key?: Buffer | string | null;
  value: Buffer | string | null;
  headers?: readonly (readonly [key: string, value: Buffer | string | null])[];
  /** Milliseconds since the epoch; defaults to now. */
  timestamp?: number | bigint;
}

export interface EncodeBatchOptions {
  baseOffset?: bigint;
  partitionLeaderEpoch?: number;
  compression?: CompressionType;
  timestampType?: TimestampType;
  producerId?: bigint;
  producerEpoch?: number;
  baseSequence?: number;
  transactional?: boolean;
}

function corrupt(message: string): Error {
  return kafkaError('CORRUPT_MESSAGE', `corrupt record batch: ${message}`);
}

// ---- varints ----

function uvarintSize(v: number): number {
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  if (v < 0x10000000) return 4;
  if (v < 0x800000000) return 5;
  let size = 5;
  for (let rest = Math.floor(v / 0x800000000); rest > 0; rest = Math.floor(rest / 128)) size++;
  return size;
}

/** Zig-zag of an integer-valued number (exact up to 2^52 in magnitude). */
function zigzag(v: number): number {
  return v >= 0 ? v * 2 : -v * 2 - 1;
}

function writeUvarint(buf: Uint8Array, pos: number, v: number): number {
  while (v >= 0x80000000) {
    buf[pos++] = (v % 128) | 0x80;
    v = Math.floor(v / 128);
  }
  while (v > 0x7f) {
    buf[pos++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buf[pos++] = v;
  return pos;
}

/** Reads a zig-zag varint (up to 64 bits, returned as a number) at `reader.pos`, advancing it. */
class Reader {
  pos: number;
  readonly buf: Buffer;
  readonly end: number;
  constructor(buf: Buffer, pos: number, end: number) {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
  }

  varint(): number {
    const buf = this.buf;
    let pos = this.pos;
    let result = 0;
    let shift = 0;
    let byte: number;
    do {
      if (pos >= this.end) throw corrupt('varint runs past the end of the records');
      if (shift > 63) throw corrupt('varint longer than 10 bytes');
      byte = buf[pos++]!;
      // 32-bit operations while the result fits in 28 bits, then exact float arithmetic
      if (shift < 28) result |= (byte & 0x7f) << shift;
      else result += (byte & 0x7f) * 2 ** shift;
      shift += 7;
    } while (byte & 0x80);
    this.pos = pos;
    return result % 2 === 0 ? result / 2 : -(result + 1) / 2;
  }

  bytes(): Buffer | null {
    const length = this.varint();
    if (length < 0) return null;
    const start = this.pos;
    if (start + length > this.end) throw corrupt('record field runs past the end of the records');
    this.pos = start + length;
    return this.buf.subarray(start, start + length);
  }
}

// ---- header ----

/** Total bytes of the batch starting at `pos` (12 + batchLength), read from its length field. */
export function batchSizeAt(buf: Buffer, pos = 0): number {
  return LOG_OVERHEAD + buf.readInt32BE(pos + BatchField.batchLength);
}

export function readBatchHeader(buf: Buffer, pos = 0): RecordBatchHeader {
  if (buf.length - pos < BATCH_HEADER_BYTES) throw corrupt(`${buf.length - pos} bytes is shorter than a batch header`);
  const attributes = buf.readInt16BE(pos + BatchField.attributes);
  return {
    baseOffset: buf.readBigInt64BE(pos),
    batchLength: buf.readInt32BE(pos + BatchField.batchLength),
    partitionLeaderEpoch: buf.readInt32BE(pos + BatchField.partitionLeaderEpoch),
    magic: buf.readInt8(pos + BatchField.magic),
    crc: buf.readUInt32BE(pos + BatchField.crc),
    attributes,
    lastOffsetDelta: buf.readInt32BE(pos + BatchField.lastOffsetDelta),
    baseTimestamp: buf.readBigInt64BE(pos + BatchField.baseTimestamp),
    maxTimestamp: buf.readBigInt64BE(pos + BatchField.maxTimestamp),
    producerId: buf.readBigInt64BE(pos + BatchField.producerId),
    producerEpoch: buf.readInt16BE(pos + BatchField.producerEpoch),
    baseSequence: buf.readInt32BE(pos + BatchField.baseSequence),
    recordCount: buf.readInt32BE(pos + BatchField.recordCount),
    compression: compressionTypeOf(attributes & Attributes.compressionMask),
    timestampType: attributes & Attributes.logAppendTime ? 'LogAppendTime' : 'CreateTime',
    isTransactional: (attributes & Attributes.transactional) !== 0,
    isControl: (attributes & Attributes.control) !== 0,
  };
}

/** The CRC-32C the batch at `pos` (of `size` bytes) should carry. */
export function computeBatchCrc(buf: Buffer, pos = 0, size = batchSizeAt(buf, pos)): number {
  return crc32c(buf, pos + BatchField.attributes, pos + size);
}

export function batchCrcValid(buf: Buffer, pos = 0, size = batchSizeAt(buf, pos)): boolean {
  return computeBatchCrc(buf, pos, size) === buf.readUInt32BE(pos + BatchField.crc);
}

/**
 * Checks that `buf[pos, end)` holds a whole, well-formed batch v2 (magic, length, CRC) and returns its size;
 * throws CORRUPT_MESSAGE otherwise. Reads only the header: records are not decoded.
 */
export function validateBatch(buf: Buffer, pos = 0, end = buf.length, checkCrc = true): number {
  if (end - pos < BATCH_HEADER_BYTES) throw corrupt(`${end - pos} trailing bytes are shorter than a batch header`);
  const size = batchSizeAt(buf, pos);
  if (size < BATCH_HEADER_BYTES) throw corrupt(`batchLength ${size - LOG_OVERHEAD} is shorter than the header`);
  if (pos + size > end) throw corrupt(`batch of ${size} bytes is truncated at ${end - pos}`);
  const magic = buf[pos + BatchField.magic];
  if (magic !== MAGIC_V2) throw corrupt(`magic ${magic} (only record batch v2 is supported)`);
  if (checkCrc && !batchCrcValid(buf, pos, size)) throw corrupt('CRC-32C mismatch');
  return size;
}

// ---- encoding ----

function toMillis(t: number | bigint | undefined, now: number): number {
  if (t === undefined) return now;
  return typeof t === 'bigint' ? Number(t) : t;
}

function byteLength(v: Buffer | string): number {
  return typeof v === 'string' ? Buffer.byteLength(v) : v.length;
}

function writeBytes(buf: Buffer, pos: number, v: Buffer | string | null | undefined, length: number): number {
  if (v === null || v === undefined) return writeUvarint(buf, pos, 1); // zig-zag(-1)
  pos = writeUvarint(buf, pos, length * 2);
  if (typeof v === 'string') buf.write(v, pos, length, 'utf8');
  else buf.set(v, pos);
  return pos + length;
}

/**
 * Writes the records of one batch v2 as they arrive (as Kafka's MemoryRecordsBuilder does): each record is encoded
 * once, into a buffer that grows by doubling, with the header's room reserved in front. `build` adds the header and
 * the CRC, compressing the records first when asked.
 */
export class RecordBatchBuilder {
  #buf: Buffer;
  #pos = BATCH_HEADER_BYTES;
  #count = 0;
  #baseTimestamp = 0;
  #maxTimestamp = 0;

  /** `capacity`: the expected size of the records section, to start the buffer at. */
  constructor(capacity = 4096) {
    this.#buf = Buffer.allocUnsafe(BATCH_HEADER_BYTES + Math.max(64, capacity));
  }

  get count(): number {
    return this.#count;
  }
  /** Bytes of the batch so far (uncompressed). */
  get size(): number {
    return this.#pos;
  }

  /** Appends one record; `timestamp` in epoch milliseconds. Checks everything before writing a byte. */
  append(
    key: Buffer | string | null | undefined,
    value: Buffer | string | null,
    headers: RecordToEncode['headers'],
    timestamp: number,
  ): void {
    const i = this.#count;
    if (i === 0) {
      this.#baseTimestamp = timestamp;
      this.#maxTimestamp = timestamp;
    } else if (timestamp > this.#maxTimestamp) this.#maxTimestamp = timestamp;
    const keyLength = key === null || key === undefined ? -1 : byteLength(key);
    const valueLength = value === null ? -1 : byteLength(value);
    const delta = zigzag(timestamp - this.#baseTimestamp);
    let body =
      1 +
      uvarintSize(delta) +
      uvarintSize(i * 2) +
      (keyLength < 0 ? 1 : uvarintSize(keyLength * 2) + keyLength) +
      (valueLength < 0 ? 1 : uvarintSize(valueLength * 2) + valueLength);
    if (headers === undefined || headers.length === 0) body += 1;
    else {
      body += uvarintSize(headers.length * 2);
      for (const [hk, hv] of headers) {
        const hkLength = Buffer.byteLength(hk);
        body += uvarintSize(hkLength * 2) + hkLength;
        body += hv === null ? 1 : uvarintSize(byteLength(hv) * 2) + byteLength(hv);
      }
    }
    const need = this.#pos + uvarintSize(body * 2) + body;
    if (need > this.#buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(need, this.#buf.length * 2));
      this.#buf.copy(grown, 0, 0, this.#pos);
      this.#buf = grown;
    }
    const buf = this.#buf;
    let pos = writeUvarint(buf, this.#pos, body * 2);
    buf[pos++] = 0;
    pos = writeUvarint(buf, pos, delta);
    pos = writeUvarint(buf, pos, i * 2);
    pos = writeBytes(buf, pos, key, keyLength);
    pos = writeBytes(buf, pos, value, valueLength);
    if (headers === undefined || headers.length === 0) buf[pos++] = 0;
    else {
      pos = writeUvarint(buf, pos, headers.length * 2);
      for (const [hk, hv] of headers) {
        pos = writeBytes(buf, pos, hk, Buffer.byteLength(hk));
        pos = writeBytes(buf, pos, hv, hv === null ? -1 : byteLength(hv));
      }
    }
    this.#pos = pos;
    this.#count = i + 1;
  }

  /** The finished batch (offsets 0..count-1 relative to `baseOffset`). The builder is not used after this. */
  build(options: EncodeBatchOptions = {}): Buffer {
    const n = this.#count;
    if (n === 0) throw invalidArgument('records', 'at least one record');
    const compression = options.compression ?? 'none';
    let buf = this.#buf.subarray(0, this.#pos);
    if (compression !== 'none') {
      const compressed = compress(compression, buf.subarray(BATCH_HEADER_BYTES));
      buf = Buffer.allocUnsafe(BATCH_HEADER_BYTES + compressed.length);
      buf.set(compressed, BATCH_HEADER_BYTES);
    }
    let attributes = compressionCodec(compression);
    if (options.timestampType === 'LogAppendTime') attributes |= Attributes.logAppendTime;
    if (options.transactional) attributes |= Attributes.transactional;
    writeHeader(buf, {
      baseOffset: options.baseOffset ?? 0n,
      partitionLeaderEpoch: options.partitionLeaderEpoch ?? -1,
      attributes,
      lastOffsetDelta: n - 1,
      baseTimestamp: this.#baseTimestamp,
      maxTimestamp: this.#maxTimestamp,
      producerId: options.producerId ?? NO_PRODUCER_ID,
      producerEpoch: options.producerEpoch ?? NO_PRODUCER_EPOCH,
      baseSequence: options.baseSequence ?? NO_SEQUENCE,
      recordCount: n,
    });
    return buf;
  }
}

/**
 * Encodes records into one record batch v2 (offsets 0..n-1 relative to `baseOffset`), compressed as asked,
 * CRC set. The first record's timestamp is the base timestamp.
 */
export function encodeRecordBatch(records: readonly RecordToEncode[], options: EncodeBatchOptions = {}): Buffer {
  const n = records.length;
  if (n === 0) throw invalidArgument('records', 'at least one record');
  let estimate = 0;
  for (let i = 0; i < n; i++) {
    const r = records[i]!;
    estimate += 24 + (r.key ? byteLength(r.key) : 0) + (r.value === null ? 0 : byteLength(r.value));
  }
  const builder = new RecordBatchBuilder(estimate);
  const now = Date.now();
  for (let i = 0; i < n; i++) {
    const r = records[i]!;
    builder.append(r.key, r.value, r.headers, toMillis(r.timestamp, now));
  }
  return builder.build(options);
}

interface HeaderFields {
  baseOffset: bigint;
  partitionLeaderEpoch: number;
  attributes: number;
  lastOffsetDelta: number;
  baseTimestamp: number | bigint;
  maxTimestamp: number | bigint;
  producerId: bigint;
  producerEpoch: number;
  baseSequence: number;
  recordCount: number;
}

/** Writes the 61-byte header over `buf` (whose length is the batch size) and sets the CRC. */
function writeHeader(buf: Buffer, h: HeaderFields): void {
  buf.writeBigInt64BE(h.baseOffset, 0);
  buf.writeInt32BE(buf.length - LOG_OVERHEAD, BatchField.batchLength);
  buf.writeInt32BE(h.partitionLeaderEpoch, BatchField.partitionLeaderEpoch);
  buf.writeInt8(MAGIC_V2, BatchField.magic);
  buf.writeInt16BE(h.attributes, BatchField.attributes);
  buf.writeInt32BE(h.lastOffsetDelta, BatchField.lastOffsetDelta);
  buf.writeBigInt64BE(BigInt(h.baseTimestamp), BatchField.baseTimestamp);
  buf.writeBigInt64BE(BigInt(h.maxTimestamp), BatchField.maxTimestamp);
  buf.writeBigInt64BE(h.producerId, BatchField.producerId);
  buf.writeInt16BE(h.producerEpoch, BatchField.producerEpoch);
  buf.writeInt32BE(h.baseSequence, BatchField.baseSequence);
  buf.writeInt32BE(h.recordCount, BatchField.recordCount);
  buf.writeUInt32BE(crc32c(buf, BatchField.attributes), BatchField.crc);
}

/** Rewrites the CRC of the batch at `pos` after a change to its covered bytes. */
export function updateBatchCrc(buf: Buffer, pos = 0): void {
  buf.writeUInt32BE(computeBatchCrc(buf, pos), pos + BatchField.crc);
}

export interface ControlBatchOptions {
  producerId: bigint;
  producerEpoch: number;
  type: ControlType;
  coordinatorEpoch?: number;
  timestamp?: number;
  baseOffset?: bigint;
  partitionLeaderEpoch?: number;
}

/** A transaction marker: a transactional control batch with one COMMIT or ABORT record. */
export function encodeControlBatch(options: ControlBatchOptions): Buffer {
  const key = Buffer.alloc(4);
  key.writeInt16BE(0, 0);
  key.writeInt16BE(options.type === 'COMMIT' ? 1 : 0, 2);
  const value = Buffer.alloc(6);
  value.writeInt16BE(0, 0);
  value.writeInt32BE(options.coordinatorEpoch ?? 0, 2);
  const batch = encodeRecordBatch([{ key, value, timestamp: options.timestamp ?? Date.now() }], {
    baseOffset: options.baseOffset ?? 0n,
    partitionLeaderEpoch: options.partitionLeaderEpoch ?? -1,
    producerId: options.producerId,
    producerEpoch: options.producerEpoch,
    transactional: true,
  });
  batch.writeInt16BE(batch.readInt16BE(BatchField.attributes) | Attributes.control, BatchField.attributes);
  updateBatchCrc(batch);
  return batch;
}

/** Decodes a control record's key (and value): its type and the coordinator epoch. */
export function decodeControlRecord(
  key: Buffer | null,
  value: Buffer | null,
): { type: ControlType | 'UNKNOWN'; coordinatorEpoch: number } {
  if (key === null || key.length < 4) throw corrupt('control record key shorter than 4 bytes');
  const code = key.readInt16BE(2);
  const type = code === 0 ? 'ABORT' : code === 1 ? 'COMMIT' : 'UNKNOWN';
  const coordinatorEpoch = value !== null && value.length >= 6 ? value.readInt32BE(2) : -1;
  return { type, coordinatorEpoch };
}

/** The type of the control batch at `pos` (an uncompressed control batch's first record), read in place. */
export function controlBatchType(buf: Buffer, pos = 0): ControlType | 'UNKNOWN' {
  const batch = decodeRecordBatch(buf.subarray(pos, pos + batchSizeAt(buf, pos)), { verifyCrc: false });
  const first = batch.records[0];
  if (first === undefined) return 'UNKNOWN';
  return decodeControlRecord(first.key, first.value).type;
}

// ---- decoding ----

/** Decompresses (if needed) the records section of the batch at `buf[pos, pos + size)`. */
export function batchRecordsSection(buf: Buffer, pos: number, size: number): Buffer {
  const section = buf.subarray(pos + BATCH_HEADER_BYTES, pos + size);
  const codec = buf.readInt16BE(pos + BatchField.attributes) & Attributes.compressionMask;
  return codec === 0 ? section : decompress(compressionTypeOf(codec), section);
}

/**
 * Reads the records of an uncompressed records section; `visit` gets each record's parsed fields and its
 * raw bytes `[start, end)` (length prefix included) in `section`.
 */
export function scanRecords(
  section: Buffer,
  count: number,
  visit: (r: {
    start: number;
    end: number;
    attributes: number;
    timestampDelta: number;
    offsetDelta: number;
    key: Buffer | null;
    value: Buffer | null;
    headers: RecordHeader[];
  }) => void,
): void {
  const reader = new Reader(section, 0, section.length);
  for (let i = 0; i < count; i++) {
    const start = reader.pos;
    const length = reader.varint();
    const bodyStart = reader.pos;
    const end = bodyStart + length;
    if (length < 0 || end > section.length) throw corrupt(`record ${i} of ${count} runs past the end of the batch`);
    if (bodyStart >= end) throw corrupt(`record ${i} is empty`);
    const recordReader = new Reader(section, bodyStart + 1, end);
    const attributes = section[bodyStart]!;
    const timestampDelta = recordReader.varint();
    const offsetDelta = recordReader.varint();
    const key = recordReader.bytes();
    const value = recordReader.bytes();
    const headerCount = recordReader.varint();
    if (headerCount < 0) throw corrupt(`record ${i} has a negative header count`);
    const headers: RecordHeader[] = [];
    for (let h = 0; h < headerCount; h++) {
      const hk = recordReader.bytes();
      if (hk === null) throw corrupt(`record ${i} has a null header key`);
      headers.push([hk.toString('utf8'), recordReader.bytes()]);
    }
    if (recordReader.pos !== end) throw corrupt(`record ${i} length ${length} disagrees with its fields`);
    reader.pos = end;
    visit({ start, end, attributes, timestampDelta, offsetDelta, key, value, headers });
  }
}

/** Decodes the batch at the start of `buf` (the rest of `buf` is ignored). */
export function decodeRecordBatch(buf: Buffer, options: { verifyCrc?: boolean } = {}): DecodedBatch {
  const header = readBatchHeader(buf, 0);
  if (header.magic !== MAGIC_V2) throw corrupt(`magic ${header.magic} (only record batch v2 is supported)`);
  const size = LOG_OVERHEAD + header.batchLength;
  if (size < BATCH_HEADER_BYTES || size > buf.length) throw corrupt(`batch of ${size} bytes is truncated`);
  if (options.verifyCrc !== false && !batchCrcValid(buf, 0, size)) throw corrupt('CRC-32C mismatch');
  if (header.recordCount < 0) throw corrupt(`negative record count ${header.recordCount}`);
  const section = batchRecordsSection(buf, 0, size);
  const records: DecodedRecord[] = [];
  const logAppendTime = header.timestampType === 'LogAppendTime';
  scanRecords(section, header.recordCount, (r) => {
    records.push({
      offset: header.baseOffset + BigInt(r.offsetDelta),
      timestamp: logAppendTime ? header.maxTimestamp : header.baseTimestamp + BigInt(r.timestampDelta),
      key: r.key,
      value: r.value,
      headers: r.headers,
      offsetDelta: r.offsetDelta,
      timestampDelta: r.timestampDelta,
    });
  });
  return { ...header, records };
}

/**
 * Decodes concatenated batches (a fetch response's records). A partial batch at the end, which Kafka
 * brokers may return when a fetch hits its size limit, is skipped.
 */
export function decodeRecordBatches(buf: Buffer, options: { verifyCrc?: boolean } = {}): DecodedBatch[] {
  const batches: DecodedBatch[] = [];
  let pos = 0;
  while (buf.length - pos >= BATCH_HEADER_BYTES) {
    const size = batchSizeAt(buf, pos);
    if (size < BATCH_HEADER_BYTES) throw corrupt(`batchLength ${size - LOG_OVERHEAD} is shorter than the header`);
    if (pos + size > buf.length) break;
    batches.push(decodeRecordBatch(buf.subarray(pos, pos + size), options));
    pos += size;
  }
  return batches;
}

/**
 * Builds a batch from raw records taken from another batch (compaction): the header fields other than
 * counts, max timestamp, length and CRC are the original's; records keep their offset and timestamp deltas.
 */
export function rebuildBatch(
  original: Buffer,
  rawRecords: readonly Buffer[],
  recordCount: number,
  maxTimestamp: bigint,
): Buffer {
  const codec = original.readInt16BE(BatchField.attributes) & Attributes.compressionMask;
  const joined = rawRecords.length === 1 ? rawRecords[0]! : Buffer.concat(rawRecords);
  const body = codec === 0 ? joined : compress(compressionTypeOf(codec), joined);
  const buf = Buffer.allocUnsafe(BATCH_HEADER_BYTES + body.length);
  original.copy(buf, 0, 0, BATCH_HEADER_BYTES);
  buf.set(body, BATCH_HEADER_BYTES);
  buf.writeInt32BE(buf.length - LOG_OVERHEAD, BatchField.batchLength);
  buf.writeBigInt64BE(maxTimestamp, BatchField.maxTimestamp);
  buf.writeInt32BE(recordCount, BatchField.recordCount);
  updateBatchCrc(buf);
  return buf;
}
