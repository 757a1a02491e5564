import {
  DuckDBBlobValue,
  DuckDBDateValue,
  DuckDBDecimalValue,
  DuckDBListValue,
  DuckDBMapValue,
  DuckDBStructValue,
  DuckDBTimestampTZValue,
  DuckDBTimestampValue,
  DuckDBTimeValue,
  DuckDBUUIDValue,
} from '@duckdb/node-api';
import { describeValue } from '../core/index.ts';
import { type IcebergType, isPrimitive, parseDecimal, parseFixed } from './types.ts';

/**
 * Two value representations:
 * - public (what rows hold): long -> bigint, decimal -> string, date -> 'YYYY-MM-DD',
 *   time -> 'HH:MM:SS[.ffffff]', timestamp -> 'YYYY-MM-DDTHH:MM:SS[.ffffff]', timestamptz -> same + '+00:00',
 *   binary/fixed -> Uint8Array, uuid -> string, struct -> object, list -> array, map -> [{key, value}].
 * - internal (transforms, bounds, partition tuples): date -> days, time/timestamp -> micros (bigint),
 *   decimal -> unscaled bigint; the rest as public.
 */
export type Row = Record<string, unknown>;

const DAY_MS = 86_400_000;

export function formatDate(days: number): string {
  const d = new Date(days * DAY_MS);
  const y = d.getUTCFullYear();
  const ys = y < 0 ? `-${String(-y).padStart(6, '0')}` : y > 9999 ? `+${y}` : String(y).padStart(4, '0');
  return `${ys}-${String(d.getUTCMonth() + 1).padStart(2, '0')}-${String(d.getUTCDate()).padStart(2, '0')}`;
}

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}

export function formatTime(micros: bigint): string {
  const s = micros / 1_000_000n;
  const frac = micros % 1_000_000n;
  const hh = String(s / 3600n).padStart(2, '0');
  const mm = String((s / 60n) % 60n).padStart(2, '0');
  const ss = String(s % 60n).padStart(2, '0');
  return `${hh}:${mm}:${ss}${frac === 0n ? '' : `.${String(frac).padStart(6, '0')}`}`;
}

export function formatTimestamp(micros: bigint, tz: boolean, unit = 1_000_000n): string {
  const days = floorDiv(micros, 86_400n * unit);
  const rest = micros - days * 86_400n * unit;
  const secs = rest / unit;
  const frac = rest % unit;
  const hh = String(secs / 3600n).padStart(2, '0');
  const mm = String((secs / 60n) % 60n).padStart(2, '0');
  const ss = String(secs % 60n).padStart(2, '0');
  const digits = unit === 1_000_000n ? 6 : 9;
  const f = frac === 0n ? '' : `.${String(frac).padStart(digits, '0')}`;
  return `${formatDate(Number(days))}T${hh}:${mm}:${ss}${f}${tz ? '+00:00' : ''}`;
}

const DATE_RE = /^([+-]?\d{4,6})-(\d{2})-(\d{2})$/;
const TS_RE =
  /^([+-]?\d{4,6})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

export function parseDateString(s: string): number | undefined {
  const m = DATE_RE.exec(s.trim());
  if (!m) return undefined;
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  const back = new Date(ms);
  if (back.getUTCDate() !== Number(m[3])) return undefined;
  return Math.round(ms / DAY_MS);
}

/** Parses an ISO-ish timestamp to micros (or nanos when unit = 1e9) since epoch, UTC. */
export function parseTimestampString(s: string, unit = 1_000_000n): bigint | undefined {
  const m = TS_RE.exec(s.trim());
  if (!m) return undefined;
  const ms = Date.UTC(
    Number(m[1]),
    Number(m[2]) - 1,
    Number(m[3]),
    Number(m[4] ?? 0),
    Number(m[5] ?? 0),
    Number(m[6] ?? 0),
  );
  if (Number.isNaN(ms)) return undefined;
  let v = (BigInt(ms) / 1000n) * unit;
  if (m[7]) {
    const digits = unit === 1_000_000n ? 6 : 9;
    v += BigInt(m[7].padEnd(digits, '0').slice(0, digits));
  }
  const off = m[8];
  if (off && off.toUpperCase() !== 'Z') {
    const sign = off[0] === '-' ? -1n : 1n;
    const body = off.slice(1).replace(':', '');
    const minutes = BigInt(Number(body.slice(0, 2)) * 60 + Number(body.slice(2, 4) || 0));
    v -= sign * minutes * 60n * unit;
  }
  return v;
}

export function parseTimeString(s: string): bigint | undefined {
  const m = /^(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?$/.exec(s.trim());
  if (!m) return undefined;
  const secs = BigInt(Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3] ?? 0));
  return secs * 1_000_000n + BigInt((m[4] ?? '').padEnd(6, '0').slice(0, 6) || '0');
}

export function formatDecimal(unscaled: bigint, scale: number): string {
  const neg = unscaled < 0n;
  const digits = (neg ? -unscaled : unscaled).toString().padStart(scale + 1, '0');
  const body =
    scale === 0 ? digits : `${digits.slice(0, digits.length - scale)}.${digits.slice(digits.length - scale)}`;
  return neg ? `-${body}` : body;
}

export function parseDecimalValue(v: unknown, scale: number): bigint | undefined {
  let s: string;
  if (typeof v === 'bigint') return v * 10n ** BigInt(scale);
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return undefined;
    s = v.toFixed(scale);
  } else if (typeof v === 'string') s = v.trim();
  else return undefined;
  const m = /^([+-]?)(\d*)(?:\.(\d*))?$/.exec(s);
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) return undefined;
  const frac = m[3] ?? '';
  if (frac.length > scale && /[1-9]/.test(frac.slice(scale))) return undefined; // would lose digits
  const unscaled = BigInt((m[2] || '0') + frac.slice(0, scale).padEnd(scale, '0'));
  return m[1] === '-' ? -unscaled : unscaled;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A reason string when `v` does not fit `t`, else the internal value. */
export type Converted = { ok: true; value: unknown } | { ok: false; reason: string };

function bad(expected: string, v: unknown): Converted {
  return { ok: false, reason: `expected ${expected}, got ${describeValue(v)}` };
}

/** Converts a public (user-supplied) value to the internal representation; null stays null. */
export function toInternal(t: IcebergType, v: unknown): Converted {
  if (v === null || v === undefined) return { ok: true, value: null };
  if (isPrimitive(t)) {
    const dec = parseDecimal(t);
    if (dec) {
      const u = parseDecimalValue(v, dec.scale);
      if (u === undefined) return bad(`a decimal with at most ${dec.scale} fraction digits`, v);
      if ((u < 0n ? -u : u).toString().length > dec.precision) return bad(`at most ${dec.precision} digits`, v);
      return { ok: true, value: u };
    }
    const fixed = parseFixed(t);
    if (fixed !== undefined) {
      if (!(v instanceof Uint8Array) || v.length !== fixed) return bad(`${fixed} bytes`, v);
      return { ok: true, value: v };
    }
    switch (t) {
      case 'boolean':
        return typeof v === 'boolean' ? { ok: true, value: v } : bad('a boolean', v);
      case 'int': {
        const n =
          typeof v === 'bigint' ? Number(v) : typeof v === 'string' && /^[+-]?\d+$/.test(v.trim()) ? Number(v) : v;
        if (typeof n !== 'number' || !Number.isInteger(n) || n < -2147483648 || n > 2147483647)
          return bad('a 32-bit integer', v);
        return { ok: true, value: n };
      }
      case 'long': {
        if (typeof v === 'bigint') {
          if (v < -(2n ** 63n) || v >= 2n ** 63n) return bad('a 64-bit integer', v);
          return { ok: true, value: v };
        }
        if (typeof v === 'number' && Number.isSafeInteger(v)) return { ok: true, value: BigInt(v) };
        if (typeof v === 'string' && /^[+-]?\d+$/.test(v.trim())) return toInternal(t, BigInt(v.trim()));
        return bad('a 64-bit integer (bigint or safe integer)', v);
      }
      case 'float':
      case 'double':
        if (typeof v === 'number') return { ok: true, value: t === 'float' ? Math.fround(v) : v };
        if (typeof v === 'bigint') return { ok: true, value: Number(v) };
        if (typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v))) return { ok: true, value: Number(v) };
        return bad('a number', v);
      case 'date': {
        if (v instanceof Date) return { ok: true, value: Math.floor(v.getTime() / DAY_MS) };
        if (typeof v === 'string') {
          const d = parseDateString(v);
          if (d !== undefined) return { ok: true, value: d };
        }
        return bad("a date 'YYYY-MM-DD'", v);
      }
      case 'time': {
        if (typeof v === 'string') {
          const x = parseTimeString(v);
          if (x !== undefined) return { ok: true, value: x };
        }
        if (typeof v === 'bigint') return { ok: true, value: v };
        return bad("a time 'HH:MM:SS[.ffffff]'", v);
      }
      case 'timestamp':
      case 'timestamptz':
      case 'timestamp_ns':
      case 'timestamptz_ns': {
        const unit = t.endsWith('_ns') ? 1_000_000_000n : 1_000_000n;
        if (v instanceof Date) {
          const ms = v.getTime();
          if (Number.isNaN(ms)) return bad('a valid Date', v);
          return { ok: true, value: (BigInt(ms) * unit) / 1000n };
        }
        if (typeof v === 'number' && Number.isFinite(v))
          return { ok: true, value: (BigInt(Math.trunc(v)) * unit) / 1000n };
        if (typeof v === 'bigint') return { ok: true, value: v };
        if (typeof v === 'string') {
          const x = parseTimestampString(v, unit);
          if (x !== undefined) return { ok: true, value: x };
        }
        return bad('a timestamp (ISO string, Date, epoch ms number or epoch micros bigint)', v);
      }
      case 'string':
        return typeof v === 'string' ? { ok: true, value: v } : bad('a string', v);
      case 'uuid':
        return typeof v === 'string' && UUID_RE.test(v)
          ? { ok: true, value: v.toLowerCase() }
          : bad('a UUID string', v);
      case 'binary':
        if (v instanceof Uint8Array) return { ok: true, value: v };
        return bad('a Uint8Array', v);
      default:
        return bad(t, v);
    }
  }
  if (t.type === 'struct') {
    if (typeof v !== 'object' || Array.isArray(v)) return bad('an object', v);
    const o = v as Row;
    const out: Row = {};
    for (const f of t.fields) {
      const c = toInternal(f.type, o[f.name]);
      if (!c.ok) return { ok: false, reason: `${f.name}: ${c.reason}` };
      if (c.value === null && f.required) return { ok: false, reason: `${f.name}: required but null` };
      out[f.name] = c.value;
    }
    return { ok: true, value: out };
  }
  if (t.type === 'list') {
    if (!Array.isArray(v)) return bad('an array', v);
    const out: unknown[] = [];
    for (let i = 0; i < v.length; i++) {
      const c = toInternal(t.element, v[i]);
      if (!c.ok) return { ok: false, reason: `[${i}]: ${c.reason}` };
      if (c.value === null && t['element-required']) return { ok: false, reason: `[${i}]: required element is null` };
      out.push(c.value);
    }
    return { ok: true, value: out };
  }
  const entries: [unknown, unknown][] =
    v instanceof Map
      ? [...v.entries()]
      : Array.isArray(v)
        ? v.map((e: { key: unknown; value: unknown }) => [e.key, e.value])
        : typeof v === 'object'
          ? Object.entries(v as Row)
          : [];
  const out: { key: unknown; value: unknown }[] = [];
  for (const [k, val] of entries) {
    const ck = toInternal(t.key, k);
    if (!ck.ok || ck.value === null) return { ok: false, reason: `map key: ${ck.ok ? 'null' : ck.reason}` };
    const cv = toInternal(t.value, val);
    if (!cv.ok) return { ok: false, reason: `map value: ${cv.reason}` };
    out.push({ key: ck.value, value: cv.value });
  }
  return { ok: true, value: out };
}

/** Internal -> public. */
export function toPublic(t: IcebergType, v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (isPrimitive(t)) {
    const dec = parseDecimal(t);
    if (dec) return formatDecimal(v as bigint, dec.scale);
    switch (t) {
      case 'date':
        return formatDate(v as number);
      case 'time':
        return formatTime(v as bigint);
      case 'timestamp':
        return formatTimestamp(v as bigint, false);
      case 'timestamptz':
        return formatTimestamp(v as bigint, true);
      case 'timestamp_ns':
        return formatTimestamp(v as bigint, false, 1_000_000_000n);
      case 'timestamptz_ns':
        return formatTimestamp(v as bigint, true, 1_000_000_000n);
      default:
        return v;
    }
  }
  if (t.type === 'struct') {
    const o = v as Row;
    const out: Row = {};
    for (const f of t.fields) out[f.name] = toPublic(f.type, o[f.name]);
    return out;
  }
  if (t.type === 'list') return (v as unknown[]).map((x) => toPublic(t.element, x));
  return (v as { key: unknown; value: unknown }[]).map((e) => ({
    key: toPublic(t.key, e.key),
    value: toPublic(t.value, e.value),
  }));
}

/** A DuckDB value (from getRowObjects) -> internal value of Iceberg type `t`. */
export function fromDuck(t: IcebergType, v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (isPrimitive(t)) {
    if (v instanceof DuckDBDecimalValue) {
      const dec = parseDecimal(t);
      const scale = dec?.scale ?? v.scale;
      return v.value * 10n ** BigInt(scale - v.scale);
    }
    if (v instanceof DuckDBDateValue) {
      if (t === 'date') return v.days;
      return BigInt(v.days) * 86_400_000_000n; // date read into a promoted timestamp column
    }
    if (v instanceof DuckDBTimestampTZValue || v instanceof DuckDBTimestampValue) return v.micros;
    if (v instanceof DuckDBTimeValue) return v.micros;
    if (v instanceof DuckDBBlobValue) return v.bytes;
    if (v instanceof DuckDBUUIDValue) return v.toString();
    if (t === 'long' && typeof v === 'number') return BigInt(v);
    if (t === 'int' && typeof v === 'bigint') return Number(v);
    if ((t === 'timestamp_ns' || t === 'timestamptz_ns') && typeof (v as { nanos?: bigint }).nanos === 'bigint')
      return (v as { nanos: bigint }).nanos;
    return v;
  }
  if (t.type === 'struct') {
    const entries = v instanceof DuckDBStructValue ? v.entries : (v as Row);
    const out: Row = {};
    for (const f of t.fields) out[f.name] = fromDuck(f.type, entries[f.name]);
    return out;
  }
  if (t.type === 'list') {
    const items = v instanceof DuckDBListValue ? v.items : (v as unknown[]);
    return items.map((x) => fromDuck(t.element, x));
  }
  const entries = v instanceof DuckDBMapValue ? v.entries : (v as { key: unknown; value: unknown }[]);
  return entries.map((e) => ({ key: fromDuck(t.key, e.key), value: fromDuck(t.value, e.value) }));
}

/** Internal value -> a JSON value DuckDB's read_json casts to the column's type. */
export function toDuckJson(t: IcebergType, v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (isPrimitive(t)) {
    const dec = parseDecimal(t);
    if (dec) return formatDecimal(v as bigint, dec.scale);
    if (parseFixed(t) !== undefined || t === 'binary') return Buffer.from(v as Uint8Array).toString('base64');
    switch (t) {
      case 'long':
      case 'time':
        return t === 'time' ? formatTime(v as bigint) : (v as bigint).toString();
      case 'float':
      case 'double':
        return Number.isFinite(v as number) ? v : String(v);
      case 'date':
        return formatDate(v as number);
      case 'timestamp':
        return formatTimestamp(v as bigint, false).replace('T', ' ');
      case 'timestamptz':
        return formatTimestamp(v as bigint, true).replace('T', ' ');
      case 'timestamp_ns':
        return formatTimestamp(v as bigint, false, 1_000_000_000n).replace('T', ' ');
      case 'timestamptz_ns':
        return formatTimestamp(v as bigint, true, 1_000_000_000n).replace('T', ' ');
      default:
        return v;
    }
  }
  if (t.type === 'struct') {
    const o = v as Row;
    const out: Row = {};
    for (const f of t.fields) out[f.name] = toDuckJson(f.type, o[f.name]);
    return out;
  }
  if (t.type === 'list') return (v as unknown[]).map((x) => toDuckJson(t.element, x));
  const out: Row = {};
  for (const e of v as { key: unknown; value: unknown }[])
    out[String(toDuckJson(t.key, e.key))] = toDuckJson(t.value, e.value);
  return out;
}

/**
 * Strings compare in UTF-8 byte order (as Parquet stats, DuckDB and Spark do). UTF-16 order differs
 * only when a surrogate (a code point above U+FFFF) meets a code unit in U+E000..U+FFFF.
 */
export function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      const xs = x < 0xe000;
      const ys = y < 0xe000;
      if (xs !== ys) return xs ? 1 : -1;
    }
    return x < y ? -1 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

/** Compares two internal values of the same type (nulls first). */
export function compareInternal(a: unknown, b: unknown): number {
  if (a === b) return 0;
  if (a === null || a === undefined) return -1;
  if (b === null || b === undefined) return 1;
  if (a instanceof Uint8Array && b instanceof Uint8Array) return Buffer.compare(a, b);
  if (typeof a === 'string' && typeof b === 'string') return compareUtf8(a, b);
  // mixed bigint/number compare correctly with < and >
  return (a as number) < (b as number) ? -1 : (a as number) > (b as number) ? 1 : 0;
}

export function internalKey(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'bigint') return `${v}n`;
  if (v instanceof Uint8Array) return `b:${Buffer.from(v).toString('hex')}`;
  if (typeof v === 'object') return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? `${x}n` : x));
  return `${typeof v}:${String(v)}`;
}
