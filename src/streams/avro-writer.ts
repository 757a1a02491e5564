// A fast Avro binary writer for flat record schemas (primitive fields and nullable primitives), the shape of most
// rows written to topics. avsc's generic writer plus its separate validation pass cost ~800 ns for a five-field
// row; this writes each field straight into a shared slab (as Node's Buffer pool does) and checks it on the way.
// Anything it does not handle, or any value that fails a check, goes back to avsc for the bytes or the precise error.
import type avro from 'avsc';

type FieldKind = 'null' | 'boolean' | 'int' | 'long' | 'float' | 'double' | 'string' | 'bytes';
const KINDS = new Set<string>(['null', 'boolean', 'int', 'long', 'float', 'double', 'string', 'bytes']);

interface FieldPlan {
  name: string;
  kind: FieldKind;
  /** For a union ["null", kind] or [kind, "null"]: the branch index of null; -1 when not a union. */
  nullIndex: number;
}

/** Writes `value` (already known to be a plain object) and returns its bytes, or null to defer to avsc. */
export type AvroRecordWriter = (value: Record<string, unknown>, prefix: Buffer | null) => Buffer | null;

/** avsc's long range, ±(2^53 - 2). */
const LONG_MAX = Number.MAX_SAFE_INTEGER - 1;
const SLAB_BYTES = 64 * 1024;
const slabState = { slab: Buffer.allocUnsafe(SLAB_BYTES), used: 0 };

/** The slab with room for `max` more bytes at slabState.used. */
function reserve(max: number): Buffer {
  if (slabState.used + max > slabState.slab.length) {
    slabState.slab = Buffer.allocUnsafe(Math.max(SLAB_BYTES, max));
    slabState.used = 0;
  }
  return slabState.slab;
}

/** Zig-zag varint of a safe integer, split into two 32-bit halves so that no step leaves integer arithmetic. */
function writeLong(b: Buffer, p: number, v: number): number {
  if (v >= 0 && v < 0x40000000) {
    // The zig-zag value fits 31 bits: one 32-bit loop.
    let z = v * 2;
    while (z > 0x7f) {
      b[p++] = (z & 0x7f) | 0x80;
      z >>>= 7;
    }
    b[p++] = z;
    return p;
  }
  let lo: number;
  let hi: number;
  if (v >= 0) {
    lo = v >>> 0;
    hi = (v - lo) / 4294967296;
    hi = ((hi << 1) | (lo >>> 31)) >>> 0;
    lo = (lo << 1) >>> 0;
  } else {
    const a = -v - 1;
    lo = a >>> 0;
    hi = (a - lo) / 4294967296;
    hi = ((hi << 1) | (lo >>> 31)) >>> 0;
    lo = ((lo << 1) | 1) >>> 0;
  }
  while (hi !== 0 || lo > 0x7f) {
    b[p++] = (lo & 0x7f) | 0x80;
    lo = ((lo >>> 7) | (hi << 25)) >>> 0;
    hi >>>= 7;
  }
  b[p++] = lo;
  return p;
}

const varintBytes = (n: number): number => (n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5);

/**
 * Strings up to this many UTF-16 units are copied by a JS loop while they are ASCII: the call into C++ costs more
 * for them (three short strings: ~125-200 ns a row against 260-440); past it Buffer.write wins (a 68-character
 * string: ~175 ns a row against ~265).
 */
const ASCII_LOOP_MAX = 32;

/** A length-prefixed UTF-8 string: written after a guessed prefix, moved if the real prefix is longer. */
function writeString(b: Buffer, p: number, s: string): number {
  const len = s.length;
  if (len <= ASCII_LOOP_MAX) {
    // ASCII strings here take len bytes, under 64: one prefix byte.
    const at = p + 1;
    let i = 0;
    for (; i < len; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      b[at + i] = c;
    }
    if (i === len) {
      b[p] = len * 2;
      return at + len;
    }
  }
  const guess = varintBytes(len * 2);
  const n = b.write(s, p + guess);
  const need = varintBytes(n * 2);
  if (need !== guess) b.copyWithin(p + need, p + guess, p + guess + n);
  p = writeLong(b, p, n);
  return p + n;
}

function plan(type: avro.Type): FieldPlan[] | null {
  if (type.typeName !== 'record') return null;
  const fields = (type as unknown as { fields: { name: string; type: avro.Type }[] }).fields;
  const out: FieldPlan[] = [];
  for (const f of fields) {
    const t = f.type;
    if (KINDS.has(t.typeName)) {
      out.push({ name: f.name, kind: t.typeName as FieldKind, nullIndex: -1 });
      continue;
    }
    if (t.typeName !== 'union:unwrapped') return null;
    const branches = (t as unknown as { types: avro.Type[] }).types.map((b) => b.typeName);
    const nullIndex = branches.indexOf('null');
    const other = branches[1 - nullIndex];
    if (branches.length !== 2 || nullIndex < 0 || other === undefined || other === 'null' || !KINDS.has(other))
      return null;
    out.push({ name: f.name, kind: other as FieldKind, nullIndex });
  }
  return out;
}

/** Checks of a non-null field value, as an expression over `v` that is true when the value is acceptable. */
const CHECK: Record<FieldKind, string> = {
  null: 'v === null',
  boolean: "typeof v === 'boolean'",
  int: "typeof v === 'number' && (v | 0) === v",
  long: "typeof v === 'number' && Number.isInteger(v) && v <= LONG_MAX && v >= -LONG_MAX",
  float: "typeof v === 'number'",
  double: "typeof v === 'number'",
  string: "typeof v === 'string'",
  bytes: 'Buffer.isBuffer(v)',
};
/** Upper bound of a checked value's bytes. */
const MAX: Record<FieldKind, string> = {
  null: '0',
  boolean: '1',
  int: '5',
  long: '10',
  float: '4',
  double: '8',
  string: '10 + v.length * 3',
  bytes: '10 + v.length',
};
const WRITE: Record<FieldKind, string> = {
  null: '',
  boolean: 'b[p++] = v ? 1 : 0;',
  int: 'p = writeLong(b, p, v);',
  long: 'p = writeLong(b, p, v);',
  float: 'b.writeFloatLE(v, p); p += 4;',
  double: 'b.writeDoubleLE(v, p); p += 8;',
  string: 'p = writeString(b, p, v);',
  bytes: 'p = writeLong(b, p, v.length); b.set(v, p); p += v.length;',
};

/**
 * A writer for `type` when it is a record of primitive and nullable primitive fields; null otherwise. The writer
 * returns null for any value it does not accept, so that the caller can ask avsc (which either encodes it, for
 * example a missing field with a default, or explains what is wrong).
 *
 * The writer is generated per schema (as avsc generates its own): every field is read by its literal name, so each
 * read is a monomorphic property load rather than a keyed lookup.
 */
export function compileRecordWriter(type: avro.Type): AvroRecordWriter | null {
  const fields = plan(type);
  if (fields === null) return null;
  // One function per field layout: serdes made again for the same schema (a topology built per run) share its
  // JIT state instead of warming up a new copy of the same code.
  const key = JSON.stringify(fields);
  let writer = writers.get(key);
  if (writer === undefined) {
    writer = generate(fields);
    writers.set(key, writer);
  }
  return writer;
}

const writers = new Map<string, AvroRecordWriter>();

function generate(fields: FieldPlan[]): AvroRecordWriter {
  const read: string[] = [];
  const check: string[] = [];
  const write: string[] = [];
  fields.forEach((f, i) => {
    const v = `f${i}`;
    const sub = (code: string) => code.replace(/\bv\b/g, v);
    read.push(`const ${v} = value[${JSON.stringify(f.name)}];`);
    if (f.nullIndex < 0) {
      check.push(`if (!(${sub(CHECK[f.kind])})) return null; max += ${sub(MAX[f.kind])};`);
      write.push(sub(WRITE[f.kind]));
    } else {
      check.push(
        `if (${v} === null) max += 1; else if (!(${sub(CHECK[f.kind])})) return null; else max += 1 + ${sub(MAX[f.kind])};`,
      );
      write.push(
        `if (${v} === null) b[p++] = ${f.nullIndex * 2}; else { b[p++] = ${(1 - f.nullIndex) * 2}; ${sub(WRITE[f.kind])} }`,
      );
    }
  });
  const body = `return function writeRecord(value, prefix) {
    ${read.join('\n')}
    let max = prefix === null ? 0 : prefix.length;
    ${check.join('\n')}
    const b = reserve(max);
    const start = slabState.used;
    let p = start;
    if (prefix !== null) { b.set(prefix, p); p += prefix.length; }
    ${write.join('\n')}
    slabState.used = p;
    return b.subarray(start, p);
  };`;
  return new Function('reserve', 'slabState', 'writeLong', 'writeString', 'LONG_MAX', 'Buffer', body)(
    reserve,
    slabState,
    writeLong,
    writeString,
    LONG_MAX,
    Buffer,
  ) as AvroRecordWriter;
}
