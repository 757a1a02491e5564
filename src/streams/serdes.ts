import avro from 'avsc';
import { bigIntLongTypeHook, invalidArgument, TributaryError } from '../core/index.ts';
import { compileRecordWriter } from './avro-writer.ts';
import type { Windowed } from './types.ts';

/** Converts values of one type to and from the bytes stored in topics. `null` passes through as a tombstone. */
export interface Serde<T> {
  serialize(topic: string, value: T | null): Buffer | null;
  deserialize(topic: string, data: Buffer | null): T | null;
}

function nullSafe<T>(ser: (value: T) => Buffer, de: (data: Buffer) => T, name: string): Serde<T> {
  return {
    serialize: (_topic, value) => (value === null || value === undefined ? null : ser(value)),
    deserialize: (topic, data) => {
      if (data === null) return null;
      try {
        return de(data);
      } catch (cause) {
        throw new TributaryError(
          'CORRUPT_DATA',
          `${name} serde: cannot deserialize ${data.length} bytes from topic ${topic}: ${(cause as Error).message}`,
          { cause },
        );
      }
    },
  };
}

const stringSerde = nullSafe<string>(
  (v) => {
    if (typeof v !== 'string') throw invalidArgument('value', 'a string for the String serde', v);
    return Buffer.from(v, 'utf8');
  },
  (b) => b.toString('utf8'),
  'String',
);

const bytesSerde = nullSafe<Buffer>(
  (v) => {
    if (!Buffer.isBuffer(v)) throw invalidArgument('value', 'a Buffer for the Bytes serde', v);
    return v;
  },
  (b) => b,
  'Bytes',
);

const jsonSerde = nullSafe<unknown>(
  (v) => Buffer.from(JSON.stringify(v), 'utf8'),
  (b) => JSON.parse(b.toString('utf8')),
  'JSON',
);

const int64Serde = nullSafe<number>(
  (v) => {
    if (!Number.isSafeInteger(v)) throw invalidArgument('value', 'a safe integer for the Long serde', v);
    const b = Buffer.allocUnsafe(8);
    writeLong(b, v, 0);
    return b;
  },
  (b) => {
    if (b.length !== 8) throw new Error(`expected 8 bytes, got ${b.length}`);
    return readLong(b, 0);
  },
  'Long',
);

const doubleSerde = nullSafe<number>(
  (v) => {
    const b = Buffer.alloc(8);
    b.writeDoubleBE(v);
    return b;
  },
  (b) => b.readDoubleBE(0),
  'Double',
);

const TWO32 = 2 ** 32;
/** An 8-byte big-endian long; two 32-bit writes avoid BigInt for the common non-negative case. */
function writeLong(out: Buffer, v: number, at: number): void {
  if (v >= 0 && v < Number.MAX_SAFE_INTEGER) {
    out.writeUInt32BE(Math.floor(v / TWO32), at);
    out.writeUInt32BE(v % TWO32, at + 4);
  } else out.writeBigInt64BE(BigInt(v), at);
}

function readLong(b: Buffer, at: number): number {
  const hi = b.readInt32BE(at);
  if (hi >= 0 && hi < 0x200000) return hi * TWO32 + b.readUInt32BE(at + 4);
  return Number(b.readBigInt64BE(at));
}

/** Windowed key bytes: inner key bytes, then window start and end as 8-byte big-endian ints. */
function windowedSerde<K>(inner: Serde<K>): Serde<Windowed<K>> {
  return {
    serialize(topic, value) {
      if (value === null) return null;
      const k = inner.serialize(topic, value.key) ?? Buffer.alloc(0);
      const out = Buffer.alloc(k.length + 16);
      k.copy(out, 0);
      writeLong(out, value.window.start, k.length);
      writeLong(out, value.window.end, k.length + 8);
      return out;
    },
    deserialize(topic, data) {
      if (data === null) return null;
      if (data.length < 16)
        throw new TributaryError('CORRUPT_DATA', `Windowed serde: expected at least 16 bytes, got ${data.length}`);
      const n = data.length - 16;
      const key = inner.deserialize(topic, data.subarray(0, n)) as K;
      return {
        key,
        window: { start: readLong(data, n), end: readLong(data, n + 8) },
      };
    },
  };
}

export interface AvroSerdeOptions {
  /** Write and expect the Confluent wire format with this schema id. */
  schemaId?: number;
  /**
   * How `long` fields read: 'number' (the default) as JavaScript numbers, refusing values beyond ±2^53 with an
   * error; 'bigint' as BigInt, all 64 bits (Java producers' ids and nanosecond times need it). Either way, writing
   * takes safe-integer numbers; 'bigint' takes BigInt too.
   */
  longs?: 'number' | 'bigint';
}

/**
 * Avro binary encoding of one schema. With `schemaId`, the Confluent wire format (magic byte 0, 4-byte schema
 * id, then the Avro body) that Schema Registry clients read and write; without, the bare Avro body.
 */
function avroSerde<T>(schema: object | string, opts: AvroSerdeOptions = {}): Serde<T> {
  const longs = opts.longs ?? 'number';
  if (longs !== 'number' && longs !== 'bigint') throw invalidArgument('longs', "'number' or 'bigint'", longs);
  let type: avro.Type;
  try {
    type = avro.Type.forSchema(
      schema as avro.Schema,
      longs === 'bigint' ? { typeHook: bigIntLongTypeHook as never } : undefined,
    );
  } catch (cause) {
    throw new TributaryError('INVALID_ARGUMENT', `Avro serde: invalid schema (${(cause as Error).message})`, {
      field: 'schema',
      cause,
    });
  }
  const id = opts.schemaId;
  if (id !== undefined && (!Number.isInteger(id) || id < 0 || id > 0x7fffffff))
    throw invalidArgument('schemaId', 'a non-negative 32-bit schema id', id);
  const fast = compileRecordWriter(type);
  let head: Buffer | null = null;
  if (id !== undefined) {
    head = Buffer.alloc(5);
    head.writeInt32BE(id, 1);
  }
  return nullSafe<T>(
    (v) => {
      if (fast !== null && typeof v === 'object') {
        const bytes = fast(v as Record<string, unknown>, head);
        if (bytes !== null) return bytes;
      }
      if (!type.isValid(v)) {
        const paths: string[] = [];
        type.isValid(v, { errorHook: (p) => paths.push(p.join('.') || '(root)') });
        throw invalidArgument(
          `value.${paths[0] ?? ''}`,
          `a value matching the Avro schema ${type.name ?? type.typeName}`,
        );
      }
      const body = type.toBuffer(v);
      return head === null ? body : Buffer.concat([head, body]);
    },
    (b) => {
      let body = b;
      if (id !== undefined) {
        if (b.length < 5 || b[0] !== 0) throw new Error('not in the Confluent wire format (magic byte 0)');
        const got = b.readInt32BE(1);
        if (got !== id) throw new Error(`schema id ${got}, expected ${id}`);
        body = b.subarray(5);
      }
      try {
        return type.fromBuffer(body) as T;
      } catch (err) {
        if (longs === 'number' && /precision loss/.test((err as Error).message))
          throw new Error("a long beyond ±2^53 does not fit a number: use Serdes.Avro(schema, { longs: 'bigint' })");
        throw err;
      }
    },
    'Avro',
  );
}

export const Serdes = {
  Avro: avroSerde,
  String: (): Serde<string> => stringSerde,
  Bytes: (): Serde<Buffer> => bytesSerde,
  JSON: <T = unknown>(): Serde<T> => jsonSerde as Serde<T>,
  Long: (): Serde<number> => int64Serde,
  Double: (): Serde<number> => doubleSerde,
  Windowed: windowedSerde,
  /** A custom serde from two functions; null handling is done for you. */
  from<T>(serialize: (value: T) => Buffer, deserialize: (data: Buffer) => T, name = 'custom'): Serde<T> {
    return nullSafe(serialize, deserialize, name);
  },
};
