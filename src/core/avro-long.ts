import avro from 'avsc';

/**
 * An Avro `long` read and written as BigInt: all 64 bits, where avsc's default long is a JavaScript number and
 * refuses values beyond ±2^53 ("potential precision loss"). Safe-integer numbers are accepted when writing.
 */
const bigIntLong = avro.types.LongType.__with({
  fromBuffer: (buf: Buffer) => buf.readBigInt64LE(),
  toBuffer: (n: bigint | number) => {
    const buf = Buffer.alloc(8);
    buf.writeBigInt64LE(BigInt(n));
    return buf;
  },
  fromJSON: (v: unknown) => BigInt(v as number),
  toJSON: (n: bigint) => Number(n),
  isValid: (n: unknown) =>
    (typeof n === 'bigint' && n >= -(2n ** 63n) && n < 2n ** 63n) || (typeof n === 'number' && Number.isSafeInteger(n)),
  compare: (a: bigint, b: bigint) => (a === b ? 0 : a < b ? -1 : 1),
});

/** An avsc `typeHook` that makes every `long` of a schema a BigInt long (logical types on long included). */
export function bigIntLongTypeHook(schema: unknown): avro.Type | undefined {
  if (schema === 'long') return bigIntLong as unknown as avro.Type;
  if (schema !== null && typeof schema === 'object' && (schema as { type?: unknown }).type === 'long')
    return bigIntLong as unknown as avro.Type;
  return undefined;
}
