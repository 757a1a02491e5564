/**
 * Kafka wire primitives used by the generated codecs: a `Writer` that grows one buffer (large byte
 * blocks such as record batches are kept by reference, not copied) and a bounds-checked `Reader` over a
 * Buffer with an offset. Every decoding failure is a `TributaryError` naming the field.
 */
import { TributaryError } from '../core/index.ts';

/** Kafka INVALID_REQUEST: the broker answers malformed requests with it (or closes the connection). */
const INVALID_REQUEST = 42;
/** Byte blocks at least this large are referenced instead of copied into the writer's buffer. */
const REFERENCE_THRESHOLD = 2048;

export const ZERO_UUID = '00000000-0000-0000-0000-000000000000';
export const EMPTY_BUFFER: Buffer = Buffer.alloc(0);

const HEX: string[] = [];
for (let i = 0; i < 256; i++) HEX.push(i.toString(16).padStart(2, '0'));

function malformed(field: string, expected: string): TributaryError {
  return new TributaryError('INVALID_ARGUMENT', `${field}: expected ${expected}`, {
    field,
    kafkaErrorCode: INVALID_REQUEST,
  });
}

function badValue(field: string, expected: string, got: unknown): TributaryError {
  return new TributaryError('INVALID_ARGUMENT', `${field}: expected ${expected}, got ${String(got)}`, { field });
}

export class Reader {
  buf: Buffer;
  offset: number;
  end: number;

  constructor(buf: Buffer, offset = 0, end = buf.length) {
    this.buf = buf;
    this.offset = offset;
    this.end = end;
  }

  get remaining(): number {
    return this.end - this.offset;
  }

  need(n: number, field: string): void {
    if (n > this.end - this.offset) {
      throw malformed(field, `${n} more bytes at offset ${this.offset}, the message ends at ${this.end}`);
    }
  }

  bool(field: string): boolean {
    return this.int8(field) !== 0;
  }

  int8(field: string): number {
    this.need(1, field);
    const b = this.buf[this.offset++]!;
    return (b << 24) >> 24;
  }

  int16(field: string): number {
    this.need(2, field);
    const b = this.buf;
    const o = this.offset;
    this.offset = o + 2;
    return ((b[o]! << 24) | (b[o + 1]! << 16)) >> 16;
  }

  uint16(field: string): number {
    this.need(2, field);
    const b = this.buf;
    const o = this.offset;
    this.offset = o + 2;
    return (b[o]! << 8) | b[o + 1]!;
  }

  int32(field: string): number {
    this.need(4, field);
    const b = this.buf;
    const o = this.offset;
    this.offset = o + 4;
    return (b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!;
  }

  uint32(field: string): number {
    return this.int32(field) >>> 0;
  }

  int64(field: string): bigint {
    this.need(8, field);
    const v = this.buf.readBigInt64BE(this.offset);
    this.offset += 8;
    return v;
  }

  float64(field: string): number {
    this.need(8, field);
    const v = this.buf.readDoubleBE(this.offset);
    this.offset += 8;
    return v;
  }

  uuid(field: string): string {
    this.need(16, field);
    const b = this.buf;
    const o = this.offset;
    this.offset = o + 16;
    let s = '';
    for (let i = 0; i < 16; i++) {
      if (i === 4 || i === 6 || i === 8 || i === 10) s += '-';
      s += HEX[b[o + i]!];
    }
    return s;
  }

  /** Unsigned varint of at most 32 bits (the flexible protocol's lengths and tags). */
  uvarint(field: string): number {
    let value = 0;
    let shift = 0;
    for (let i = 0; i < 5; i++) {
      if (this.offset >= this.end) throw malformed(field, 'an unsigned varint, the message ends inside it');
      const b = this.buf[this.offset++]!;
      value += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) {
        if (value > 0xffffffff) break;
        return value;
      }
      shift += 7;
    }
    throw malformed(field, 'an unsigned varint of at most 32 bits');
  }

  /** Zig-zag varint (record fields). */
  varint(field: string): number {
    const u = this.uvarint(field);
    return u % 2 === 0 ? u / 2 : -(u + 1) / 2;
  }

  private length(flex: boolean, nullable: boolean, field: string): number {
    let n: number;
    if (flex) n = this.uvarint(field) - 1;
    else n = this.int16(field);
    if (n < -1 || (n === -1 && !nullable)) throw malformed(field, nullable ? 'a length >= -1' : 'a length >= 0');
    return n;
  }

  string(flex: boolean, field: string): string {
    const n = this.length(flex, false, field);
    this.need(n, field);
    const s = this.buf.toString('utf8', this.offset, this.offset + n);
    this.offset += n;
    return s;
  }

  nullableString(flex: boolean, nullable: boolean, field: string): string | null {
    const n = this.length(flex, nullable, field);
    if (n === -1) return null;
    this.need(n, field);
    const s = this.buf.toString('utf8', this.offset, this.offset + n);
    this.offset += n;
    return s;
  }

  private bytesLength(flex: boolean, nullable: boolean, field: string): number {
    let n: number;
    if (flex) n = this.uvarint(field) - 1;
    else n = this.int32(field);
    if (n < -1 || (n === -1 && !nullable)) throw malformed(field, nullable ? 'a length >= -1' : 'a length >= 0');
    return n;
  }

  /** A slice of the input (no copy). */
  bytes(flex: boolean, field: string): Buffer {
    const n = this.bytesLength(flex, false, field);
    this.need(n, field);
    const b = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return b;
  }

  nullableBytes(flex: boolean, nullable: boolean, field: string): Buffer | null {
    const n = this.bytesLength(flex, nullable, field);
    if (n === -1) return null;
    this.need(n, field);
    const b = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return b;
  }

  /** Array element count, -1 for a null array. Bounded by the bytes left so garbage cannot allocate. */
  arrayLength(flex: boolean, nullable: boolean, field: string): number {
    let n: number;
    if (flex) n = this.uvarint(field) - 1;
    else n = this.int32(field);
    if (n < -1 || (n === -1 && !nullable))
      throw malformed(field, nullable ? 'an array length >= -1' : 'an array length >= 0');
    if (n > this.end - this.offset) throw malformed(field, `an array length <= ${this.end - this.offset} (bytes left)`);
    return n;
  }

  /** Restricts reading to the next `size` bytes (a tagged field); returns where it ends. */
  limit(size: number, field: string): number {
    this.need(size, field);
    const end = this.offset + size;
    return end;
  }

  skipTaggedFields(field: string): void {
    const n = this.uvarint(field);
    for (let i = 0; i < n; i++) {
      this.uvarint(field);
      const size = this.uvarint(field);
      this.need(size, field);
      this.offset += size;
    }
  }
}

export class Writer {
  buf: Buffer;
  pos: number;
  /** Start of the part of `buf` not yet moved to `chunks`. */
  private start: number;
  private chunks: Buffer[] | null;
  private chunkBytes: number;

  constructor(initialSize = 256) {
    this.buf = Buffer.allocUnsafe(initialSize);
    this.pos = 0;
    this.start = 0;
    this.chunks = null;
    this.chunkBytes = 0;
  }

  get length(): number {
    return this.chunkBytes + this.pos - this.start;
  }

  ensure(n: number): void {
    if (this.pos + n > this.buf.length) this.grow(n);
  }

  private grow(n: number): void {
    const used = this.pos - this.start;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, used + n, 256));
    this.buf.copy(next, 0, this.start, this.pos);
    this.buf = next;
    this.start = 0;
    this.pos = used;
  }

  bool(x: boolean): void {
    this.int8(x ? 1 : 0);
  }

  int8(x: number): void {
    this.ensure(1);
    this.buf[this.pos++] = x & 0xff;
  }

  int16(x: number): void {
    this.ensure(2);
    const b = this.buf;
    const p = this.pos;
    b[p] = (x >>> 8) & 0xff;
    b[p + 1] = x & 0xff;
    this.pos = p + 2;
  }

  uint16(x: number): void {
    this.int16(x);
  }

  int32(x: number): void {
    this.ensure(4);
    const b = this.buf;
    const p = this.pos;
    b[p] = (x >>> 24) & 0xff;
    b[p + 1] = (x >>> 16) & 0xff;
    b[p + 2] = (x >>> 8) & 0xff;
    b[p + 3] = x & 0xff;
    this.pos = p + 4;
  }

  uint32(x: number): void {
    this.int32(x | 0);
  }

  int64(x: bigint): void {
    this.ensure(8);
    this.buf.writeBigInt64BE(BigInt.asIntN(64, x), this.pos);
    this.pos += 8;
  }

  float64(x: number): void {
    this.ensure(8);
    this.buf.writeDoubleBE(x, this.pos);
    this.pos += 8;
  }

  uuid(x: string, field: string): void {
    const hex = x.replaceAll('-', '');
    if (hex.length !== 32 || !/^[0-9a-fA-F]{32}$/.test(hex)) throw badValue(field, 'a UUID', x);
    this.ensure(16);
    this.buf.write(hex, this.pos, 16, 'hex');
    this.pos += 16;
  }

  uvarint(x: number): void {
    this.ensure(5);
    const b = this.buf;
    let v = x >>> 0;
    while (v >= 0x80) {
      b[this.pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    b[this.pos++] = v;
  }

  varint(x: number): void {
    this.uvarint(x >= 0 ? x * 2 : -x * 2 - 1);
  }

  string(s: string, flex: boolean, field: string): void {
    if (typeof s !== 'string') throw badValue(field, 'a string', s);
    const n = Buffer.byteLength(s);
    if (flex) this.uvarint(n + 1);
    else {
      if (n > 0x7fff) throw badValue(field, 'a string of at most 32767 bytes', `${n} bytes`);
      this.int16(n);
    }
    this.ensure(n);
    this.pos += this.buf.write(s, this.pos, n, 'utf8');
  }

  nullableString(s: string | null, flex: boolean, nullable: boolean, field: string): void {
    if (s === null || s === undefined) {
      if (!nullable) throw badValue(field, 'a string (null is not allowed in this version)', s);
      if (flex) this.uvarint(0);
      else this.int16(-1);
      return;
    }
    this.string(s, flex, field);
  }

  bytes(b: Buffer, flex: boolean, field: string): void {
    if (!((b as unknown) instanceof Uint8Array)) throw badValue(field, 'a Buffer', b);
    if (flex) this.uvarint(b.length + 1);
    else this.int32(b.length);
    this.raw(b);
  }

  nullableBytes(b: Buffer | null, flex: boolean, nullable: boolean, field: string): void {
    if (b === null || b === undefined) {
      if (!nullable) throw badValue(field, 'bytes (null is not allowed in this version)', b);
      if (flex) this.uvarint(0);
      else this.int32(-1);
      return;
    }
    this.bytes(b, flex, field);
  }

  arrayLength(a: readonly unknown[] | null, flex: boolean, nullable: boolean, field: string): void {
    if (a === null || a === undefined) {
      if (!nullable) throw badValue(field, 'an array (null is not allowed in this version)', a);
      if (flex) this.uvarint(0);
      else this.int32(-1);
      return;
    }
    if (flex) this.uvarint(a.length + 1);
    else this.int32(a.length);
  }

  /** Appends bytes; large blocks are kept by reference (no copy) and written with the rest in one writev. */
  raw(b: Uint8Array): void {
    const n = b.length;
    if (n >= REFERENCE_THRESHOLD) {
      if (this.chunks === null) this.chunks = [];
      if (this.pos > this.start) {
        this.chunks.push(this.buf.subarray(this.start, this.pos));
        this.chunkBytes += this.pos - this.start;
      }
      this.chunks.push(Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, n));
      this.chunkBytes += n;
      this.start = this.pos;
      return;
    }
    this.ensure(n);
    this.buf.set(b, this.pos);
    this.pos += n;
  }

  /** Overwrites the first four bytes (a frame's size prefix, written first as a placeholder). */
  patchFirstInt32(x: number): void {
    const target = this.chunks !== null && this.chunks.length > 0 ? this.chunks[0]! : this.buf.subarray(this.start);
    target.writeInt32BE(x, 0);
  }

  toBuffers(): Buffer[] {
    const tail = this.buf.subarray(this.start, this.pos);
    if (this.chunks === null) return [tail];
    return tail.length > 0 ? [...this.chunks, tail] : this.chunks.slice();
  }

  toBuffer(): Buffer {
    if (this.chunks === null) return this.buf.subarray(this.start, this.pos);
    return Buffer.concat(this.toBuffers(), this.length);
  }
}

/** Generated codec for one message (request, response, header or data schema). */
export interface MessageCodec<T> {
  readonly name: string;
  readonly apiKey: number;
  readonly minVersion: number;
  readonly maxVersion: number;
  /** First flexible version, or -1 if none. */
  readonly flexibleFrom: number;
  write(w: Writer, version: number, value: T): void;
  encode(version: number, value: T): Buffer;
  decode(version: number, r: Reader): T;
}

export function unsupportedVersion(name: string, version: number, min: number, max: number): TributaryError {
  return new TributaryError('UNSUPPORTED', `${name}: version ${version} is not supported (valid ${min}-${max})`, {
    field: 'version',
    kafkaErrorCode: 35,
  });
}
