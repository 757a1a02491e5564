import { invalidArgument, TributaryError } from '../core/index.ts';
import { bigintToMinBytes, uuidToBytes } from './conversions.ts';
import { type IcebergType, isPrimitive, parseDecimal } from './types.ts';

/** MurmurHash3 x86 32-bit, seed 0 (the Iceberg bucket hash). */
export function murmur3(data: Uint8Array, seed = 0): number {
  const c1 = 0xcc9e2d51;
  const c2 = 0x1b873593;
  let h = seed >>> 0;
  const n = data.length;
  const blocks = n & ~3;
  for (let i = 0; i < blocks; i += 4) {
    let k =
      (data[i] as number) |
      ((data[i + 1] as number) << 8) |
      ((data[i + 2] as number) << 16) |
      ((data[i + 3] as number) << 24);
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  let k = 0;
  const tail = n & 3;
  if (tail === 3) k ^= (data[blocks + 2] as number) << 16;
  if (tail >= 2) k ^= (data[blocks + 1] as number) << 8;
  if (tail >= 1) {
    k ^= data[blocks] as number;
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
  }
  h ^= n;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}

const longBuf = Buffer.alloc(8);
function hashLong(v: bigint): number {
  longBuf.writeBigInt64LE(BigInt.asIntN(64, v));
  return murmur3(longBuf);
}

/** Appendix B hash of an internal value. */
export function icebergHash(t: IcebergType, v: unknown): number {
  if (!isPrimitive(t)) throw new TributaryError('UNSUPPORTED', 'bucket of a nested type');
  if (parseDecimal(t)) return murmur3(bigintToMinBytes(v as bigint));
  switch (t) {
    case 'int':
    case 'date':
      return hashLong(BigInt(v as number));
    case 'long':
    case 'time':
    case 'timestamp':
    case 'timestamptz':
      return hashLong(v as bigint);
    case 'timestamp_ns':
    case 'timestamptz_ns': {
      // hashed as micros so ns and us columns bucket alike
      const x = v as bigint;
      const q = x / 1000n;
      return hashLong(x % 1000n !== 0n && x < 0n ? q - 1n : q);
    }
    case 'string':
      return murmur3(Buffer.from(v as string, 'utf8'));
    case 'uuid':
      return murmur3(uuidToBytes(v as string));
    case 'boolean':
    case 'float':
    case 'double':
      throw new TributaryError('UNSUPPORTED', `bucket transform on ${t}`);
    default:
      return murmur3(v as Uint8Array);
  }
}

export type Transform =
  | { kind: 'identity' }
  | { kind: 'bucket'; n: number }
  | { kind: 'truncate'; w: number }
  | { kind: 'year' }
  | { kind: 'month' }
  | { kind: 'day' }
  | { kind: 'hour' }
  | { kind: 'void' };

export function parseTransform(s: string): Transform {
  const t = s.trim();
  if (t === 'identity' || t === 'year' || t === 'month' || t === 'day' || t === 'hour' || t === 'void')
    return { kind: t };
  const b = /^bucket\[(\d+)\]$/.exec(t);
  if (b) return { kind: 'bucket', n: Number(b[1]) };
  const tr = /^truncate\[(\d+)\]$/.exec(t);
  if (tr) return { kind: 'truncate', w: Number(tr[1]) };
  throw invalidArgument('transform', 'identity, bucket[N], truncate[W], year, month, day, hour or void', s);
}

export function transformToString(t: Transform): string {
  if (t.kind === 'bucket') return `bucket[${t.n}]`;
  if (t.kind === 'truncate') return `truncate[${t.w}]`;
  return t.kind;
}

/** The partition value type a transform produces. */
export function transformResultType(t: Transform, source: IcebergType): IcebergType {
  switch (t.kind) {
    case 'identity':
    case 'truncate':
    case 'void':
      return source;
    case 'bucket':
    case 'year':
    case 'month':
    case 'hour':
      return 'int';
    case 'day':
      return 'date';
  }
}

export function canTransform(t: Transform, source: IcebergType): boolean {
  if (!isPrimitive(source)) return t.kind === 'void';
  switch (t.kind) {
    case 'identity':
    case 'void':
      return true;
    case 'bucket':
      return !['boolean', 'float', 'double'].includes(source);
    case 'truncate':
      return ['int', 'long', 'string', 'binary'].includes(source) || !!parseDecimal(source);
    case 'year':
    case 'month':
    case 'day':
      return ['date', 'timestamp', 'timestamptz', 'timestamp_ns', 'timestamptz_ns'].includes(source);
    case 'hour':
      return ['timestamp', 'timestamptz', 'timestamp_ns', 'timestamptz_ns'].includes(source);
  }
}

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}

const MICROS_PER_DAY = 86_400_000_000n;

function toMicros(source: IcebergType, v: unknown): bigint {
  if (source === 'date') return BigInt(v as number) * MICROS_PER_DAY;
  if (source === 'timestamp_ns' || source === 'timestamptz_ns') return floorDiv(v as bigint, 1000n);
  return v as bigint;
}

function daysToYmd(days: number): { y: number; m: number } {
  const d = new Date(days * 86_400_000);
  return { y: d.getUTCFullYear(), m: d.getUTCMonth() };
}

/** Applies a transform to an internal value; null stays null. */
export function applyTransform(t: Transform, source: IcebergType, v: unknown): unknown {
  if (v === null || v === undefined) return null;
  switch (t.kind) {
    case 'identity':
      return v;
    case 'void':
      return null;
    case 'bucket':
      return (icebergHash(source, v) & 0x7fffffff) % t.n;
    case 'truncate': {
      if (source === 'int') {
        const x = v as number;
        return x - (((x % t.w) + t.w) % t.w);
      }
      if (source === 'long' || parseDecimal(source as string)) {
        const x = v as bigint;
        const w = BigInt(t.w);
        return x - (((x % w) + w) % w);
      }
      if (source === 'string') {
        const cps = Array.from(v as string);
        return cps.length <= t.w ? v : cps.slice(0, t.w).join('');
      }
      return (v as Uint8Array).subarray(0, t.w);
    }
    case 'year':
    case 'month':
    case 'day': {
      const days = Number(floorDiv(toMicros(source, v), MICROS_PER_DAY));
      if (t.kind === 'day') return days;
      const { y, m } = daysToYmd(days);
      return t.kind === 'year' ? y - 1970 : (y - 1970) * 12 + m;
    }
    case 'hour':
      return Number(floorDiv(toMicros(source, v), 3_600_000_000n));
  }
}

/** Human-readable partition value for paths (spec's toHumanString). */
export function humanPartitionValue(t: Transform, v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (t.kind === 'year') return String(1970 + (v as number));
  if (t.kind === 'month') {
    const n = v as number;
    const y = 1970 + Math.floor(n / 12);
    return `${y}-${String((((n % 12) + 12) % 12) + 1).padStart(2, '0')}`;
  }
  if (t.kind === 'day') return new Date((v as number) * 86_400_000).toISOString().slice(0, 10);
  if (t.kind === 'hour') return new Date((v as number) * 3_600_000).toISOString().slice(0, 13);
  if (v instanceof Uint8Array) return Buffer.from(v).toString('base64url');
  return String(v);
}
