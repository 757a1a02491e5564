import { TributaryError } from '../core/index.ts';
import { type IcebergType, isPrimitive, parseDecimal, parseFixed } from './types.ts';

/** Minimal two's-complement big-endian bytes of a bigint (decimal unscaled values). */
export function bigintToMinBytes(v: bigint): Uint8Array {
  const bytes: number[] = [];
  let x = v;
  for (;;) {
    const b = Number(x & 0xffn);
    bytes.unshift(b);
    x >>= 8n;
    if ((x === 0n && (b & 0x80) === 0) || (x === -1n && (b & 0x80) !== 0)) break;
  }
  return Uint8Array.from(bytes);
}

export function minBytesToBigint(b: Uint8Array): bigint {
  if (b.length === 0) return 0n;
  let x = 0n;
  for (const byte of b) x = (x << 8n) | BigInt(byte);
  if ((b[0] as number) & 0x80) x -= 1n << BigInt(b.length * 8);
  return x;
}

export function uuidToBytes(u: string): Uint8Array {
  return Uint8Array.from(Buffer.from(u.replaceAll('-', ''), 'hex'));
}
export function bytesToUuid(b: Uint8Array): string {
  const h = Buffer.from(b).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Appendix D: single-value binary serialization of an internal value. */
export function toBytes(t: IcebergType, v: unknown): Uint8Array {
  if (!isPrimitive(t)) throw new TributaryError('UNSUPPORTED', `single-value serialization of ${t.type}`);
  if (parseDecimal(t)) return bigintToMinBytes(v as bigint);
  if (parseFixed(t) !== undefined) return v as Uint8Array;
  const buf = Buffer.alloc(8);
  switch (t) {
    case 'boolean':
      return Uint8Array.of(v ? 1 : 0);
    case 'int':
    case 'date':
      buf.writeInt32LE(v as number);
      return new Uint8Array(buf.subarray(0, 4));
    case 'long':
    case 'time':
    case 'timestamp':
    case 'timestamptz':
    case 'timestamp_ns':
    case 'timestamptz_ns':
      buf.writeBigInt64LE(BigInt(v as bigint));
      return new Uint8Array(buf);
    case 'float':
      buf.writeFloatLE(v as number);
      return new Uint8Array(buf.subarray(0, 4));
    case 'double':
      buf.writeDoubleLE(v as number);
      return new Uint8Array(buf);
    case 'string':
      return new Uint8Array(Buffer.from(v as string, 'utf8'));
    case 'uuid':
      return uuidToBytes(v as string);
    case 'binary':
      return v as Uint8Array;
    default:
      throw new TributaryError('UNSUPPORTED', `single-value serialization of ${t}`);
  }
}

export function fromBytes(t: IcebergType, b: Uint8Array): unknown {
  if (!isPrimitive(t)) throw new TributaryError('UNSUPPORTED', `single-value deserialization of ${t.type}`);
  if (parseDecimal(t)) return minBytesToBigint(b);
  if (parseFixed(t) !== undefined) return b;
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  switch (t) {
    case 'boolean':
      return b[0] !== 0;
    case 'int':
    case 'date':
      return buf.readInt32LE(0);
    case 'long':
    case 'time':
    case 'timestamp':
    case 'timestamptz':
    case 'timestamp_ns':
    case 'timestamptz_ns':
      // Bounds of a column promoted from int/date hold 4 bytes.
      if (b.length === 4) {
        const n = BigInt(buf.readInt32LE(0));
        return t === 'long' ? n : n * 86_400_000_000n;
      }
      return buf.readBigInt64LE(0);
    case 'float':
      return buf.readFloatLE(0);
    case 'double':
      return b.length === 4 ? buf.readFloatLE(0) : buf.readDoubleLE(0);
    case 'string':
      return buf.toString('utf8');
    case 'uuid':
      return bytesToUuid(b);
    case 'binary':
      return b;
    default:
      throw new TributaryError('UNSUPPORTED', `single-value deserialization of ${t}`);
  }
}
