import assert from 'node:assert/strict';
import { test } from 'node:test';
import avro from 'avsc';
import { Serdes } from '../../src/streams/index.ts';

// The compiled writer behind Serdes.Avro must produce exactly avsc's bytes; avsc is the independent reader here.
const schema = {
  type: 'record',
  name: 'Row',
  fields: [
    { name: 'l', type: 'long' },
    { name: 'i', type: 'int' },
    { name: 'd', type: 'double' },
    { name: 'f', type: 'float' },
    { name: 's', type: 'string' },
    { name: 'b', type: 'boolean' },
    { name: 'y', type: 'bytes' },
    { name: 'ns', type: ['null', 'string'] },
    { name: 'ln', type: ['long', 'null'] },
    { name: 'n', type: 'null' },
  ],
};
const type = avro.Type.forSchema(schema as avro.Schema);

let seed = 7;
const rand = () => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648;
};
const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!;
const LONGS = [
  0,
  1,
  -1,
  63,
  64,
  -64,
  -65,
  2 ** 31 - 1,
  -(2 ** 31),
  2 ** 32,
  2 ** 35 + 7,
  1704067200000,
  -1704067200000,
];
// avsc writes longs with float arithmetic, exact only within ±2^52; beyond, a BigInt varint decoder checks below.
LONGS.push(2 ** 52, -(2 ** 52), -(2 ** 52) + 3);
const CHARS = ['a', 'z', ' ', 'é', '€', '😀', '\u0000'];
// Lengths around the boundaries where the length prefix grows (63/64 bytes, 8191/8192 bytes).
const LENGTHS = [0, 1, 21, 22, 31, 32, 63, 64, 65, 2730, 2731, 4096, 8191, 8192, 9000];
const str = () => {
  const n = pick(LENGTHS);
  const c = pick(CHARS);
  let s = '';
  // Whole code points: a lone surrogate is not a string Avro can carry (avsc and Buffer differ on it).
  for (let k = 0; k < n; k++) s += rand() < 0.9 ? c : pick(CHARS);
  return s;
};
const row = () => ({
  l: rand() < 0.5 ? pick(LONGS) : Math.round((rand() - 0.5) * 2 ** (rand() * 53)),
  i: rand() < 0.5 ? pick([0, -1, 2 ** 31 - 1, -(2 ** 31)]) : Math.round((rand() - 0.5) * 2 ** 31),
  d: pick([0, -0, 1.5, -1e300, Number.NaN, Number.POSITIVE_INFINITY, rand()]),
  f: pick([0, 1.5, -2.25, rand()]),
  s: str(),
  b: rand() < 0.5,
  y: Buffer.from(str(), 'utf8'),
  ns: rand() < 0.3 ? null : str(),
  ln: rand() < 0.3 ? null : pick(LONGS),
  n: null,
});

test('Avro serde writes the bytes avsc writes, for every field kind and string length boundary', () => {
  const serde = Serdes.Avro<ReturnType<typeof row>>(schema);
  const wire = Serdes.Avro<ReturnType<typeof row>>(schema, { schemaId: 513 });
  for (let n = 0; n < 3000; n++) {
    const v = row();
    const want = type.toBuffer(v);
    assert.deepEqual(serde.serialize('t', v), want, `row ${n}: ${JSON.stringify({ ...v, y: undefined })}`);
    const w = wire.serialize('t', v)!;
    assert.deepEqual(w.subarray(5), want);
    assert.equal(w.readInt32BE(1), 513);
  }
});

test("Avro serde: longs up to avsc's limit ±(2^53 - 2) are exact zig-zag varints", () => {
  const serde = Serdes.Avro<{ v: number }>({ type: 'record', name: 'L', fields: [{ name: 'v', type: 'long' }] });
  const decode = (b: Buffer): bigint => {
    let n = 0n;
    for (let i = b.length - 1; i >= 0; i--) n = (n << 7n) | BigInt(b[i]! & 0x7f);
    return n & 1n ? -(n >> 1n) - 1n : n >> 1n;
  };
  const max = Number.MAX_SAFE_INTEGER - 1;
  for (const v of [max, -max, max - 1, -max + 1, 2 ** 52 + 1, -(2 ** 52) - 1, 2 ** 53 - 4, -(2 ** 53) + 5]) {
    const b = serde.serialize('t', { v })!;
    for (let i = 0; i < b.length - 1; i++) assert.ok(b[i]! & 0x80, 'continuation bits');
    assert.equal(decode(b), BigInt(v));
  }
});

test("Avro serde with longs: 'bigint' reads and writes all 64 bits; the default refuses them with the way out", () => {
  const L = {
    type: 'record',
    name: 'L',
    fields: [
      { name: 'v', type: 'long' },
      { name: 'o', type: ['null', 'long'] },
    ],
  };
  const big = Serdes.Avro<{ v: bigint | number; o: bigint | null }>(L, { longs: 'bigint' });
  // The zig-zag varint of a long, written independently of avsc and of our writer.
  const varint = (n: bigint): number[] => {
    let z = BigInt.asUintN(64, (n << 1n) ^ (n >> 63n));
    const out: number[] = [];
    while (z >= 0x80n) {
      out.push(Number(z & 0x7fn) | 0x80);
      z >>= 7n;
    }
    return [...out, Number(z)];
  };
  for (const v of [2n ** 60n + 1n, -(2n ** 63n), 2n ** 63n - 1n, 0n, -1n, 12345n]) {
    const b = big.serialize('t', { v, o: v }) as Buffer;
    assert.deepEqual([...b], [...varint(v), 2, ...varint(v)], `bytes of ${v}`);
    const back = big.deserialize('t', b) as { v: bigint; o: bigint };
    assert.deepEqual([back.v, back.o], [v, v]);
  }
  // Safe-integer numbers are still accepted and written as the same long.
  assert.deepEqual(big.serialize('t', { v: 42, o: null }), big.serialize('t', { v: 42n, o: null }));
  assert.throws(() => big.serialize('t', { v: 2n ** 63n, o: null }), /value\.v/);
  assert.throws(() => Serdes.Avro(L, { longs: 'strings' as never }), /longs/);
  const plain = Serdes.Avro<{ v: number; o: null }>(L);
  assert.throws(
    () => plain.deserialize('t', big.serialize('t', { v: 2n ** 60n, o: null })),
    (e: Error) => e.name === 'TributaryError' && /longs: 'bigint'/.test(e.message),
  );
  assert.deepEqual(
    { ...(plain.deserialize('t', big.serialize('t', { v: 2n ** 52n, o: null })) as object) },
    {
      v: 2 ** 52,
      o: null,
    },
  );
});

test('Avro serde: buffers already returned stay intact while later rows are written', () => {
  const serde = Serdes.Avro<ReturnType<typeof row>>(schema);
  const kept: [ReturnType<typeof row>, Buffer][] = [];
  for (let n = 0; n < 2000; n++) {
    const v = row();
    kept.push([v, serde.serialize('t', v)!]);
  }
  for (const [v, b] of kept) assert.deepEqual(b, type.toBuffer(v));
});

test('Avro serde: values the compiled writer refuses get avsc encoding or a precise error', () => {
  const withDefault = {
    type: 'record',
    name: 'D',
    fields: [
      { name: 'a', type: 'long' },
      { name: 'b', type: 'string', default: 'x' },
    ],
  };
  const t = avro.Type.forSchema(withDefault as avro.Schema);
  const serde = Serdes.Avro<{ a: number; b?: string }>(withDefault);
  // A missing field with a default: avsc writes the default.
  assert.deepEqual(serde.serialize('t', { a: 5 }), t.toBuffer({ a: 5 }));
  assert.throws(() => serde.serialize('t', { a: 1.5, b: 'y' }), /value\.a/);
  assert.throws(() => serde.serialize('t', { a: 2 ** 60, b: 'y' }), /value\.a/);
  assert.throws(() => serde.serialize('t', { a: Number.MAX_SAFE_INTEGER, b: 'y' }), /value\.a/);
  assert.throws(() => serde.serialize('t', { a: 1, b: 7 as unknown as string }), /value\.b/);
  const ints = Serdes.Avro<{ i: number }>({ type: 'record', name: 'I', fields: [{ name: 'i', type: 'int' }] });
  assert.throws(() => ints.serialize('t', { i: 2 ** 31 }), /value\.i/);
});
