import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import {
  compressionsAlgorithms,
  createRecordsBatch,
  crc32c as platformaticCrc32c,
  Reader,
  readRecordsBatch,
} from '@platformatic/kafka';
import fc from 'fast-check';
import { isTributaryError } from '../../src/core/index.ts';
import {
  BatchField,
  COMPRESSION_TYPES,
  type CompressionType,
  compress,
  crc32c,
  crc32cNative,
  crc32cPortable,
  decodeControlRecord,
  decodeRecordBatch,
  decodeRecordBatches,
  decompress,
  encodeControlBatch,
  encodeRecordBatch,
  type RecordToEncode,
  validateBatch,
  xerialSnappyCompress,
} from '../../src/log/index.ts';

const require = createRequire(import.meta.url);
const KafkaJsDecoder = require('kafkajs/src/protocol/decoder');
const kafkaJsBatchDecoder = require('kafkajs/src/protocol/recordBatch/v0/decoder');
const { RecordBatch: KafkaJsRecordBatch } = require('kafkajs/src/protocol/recordBatch/v0');
const KafkaJsRecord = require('kafkajs/src/protocol/recordBatch/record/v0');

test('crc32c gives the standard check value and continues across pieces', () => {
  assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
  assert.equal(crc32c(Buffer.alloc(0)), 0);
  const data = Buffer.from('The quick brown fox jumps over the lazy dog, then again and again and again.');
  const whole = crc32c(data);
  assert.equal(crc32c(data, 30, data.length, crc32c(data, 0, 30)), whole);
});

test('crc32c (native and portable) agrees with an independent implementation at any length and alignment', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 2000 }), fc.nat(7), fc.nat(2000), (bytes, skew, cut) => {
      const backing = Buffer.alloc(bytes.length + skew);
      backing.set(bytes, skew);
      const view = backing.subarray(skew);
      const want = platformaticCrc32c(Buffer.from(bytes));
      assert.equal(crc32c(view), want);
      assert.equal(crc32cPortable(view), want);
      // Continued across two pieces, either side of the native threshold.
      const at = Math.min(cut, view.length);
      assert.equal(crc32c(view, at, view.length, crc32c(view, 0, at)), want);
    }),
    { numRuns: 300 },
  );
  assert.ok(crc32cNative, '@node-rs/crc32 is a dependency and has a binary for this platform');
});

const recordArb = fc.record({
  key: fc.option(fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b))),
  value: fc.option(fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b))),
  headers: fc.array(
    fc.tuple(fc.string({ maxLength: 10 }), fc.option(fc.uint8Array({ maxLength: 20 }).map((b) => Buffer.from(b)))),
    {
      maxLength: 3,
    },
  ),
  timestamp: fc.integer({ min: 0, max: 2 ** 45 }),
}) as fc.Arbitrary<RecordToEncode>;

test('encode then decode returns every field, for every codec', () => {
  fc.assert(
    fc.property(
      fc.array(recordArb, { minLength: 1, maxLength: 30 }),
      fc.constantFrom(...COMPRESSION_TYPES),
      fc.bigInt({ min: 0n, max: 2n ** 62n }),
      (records, compression, baseOffset) => {
        const buf = encodeRecordBatch(records, {
          compression,
          baseOffset,
          producerId: 7n,
          producerEpoch: 3,
          baseSequence: 11,
        });
        assert.equal(validateBatch(buf), buf.length);
        const batch = decodeRecordBatch(buf);
        assert.equal(batch.compression, compression);
        assert.equal(batch.baseOffset, baseOffset);
        assert.equal(batch.recordCount, records.length);
        assert.equal(batch.lastOffsetDelta, records.length - 1);
        assert.equal(batch.producerId, 7n);
        assert.equal(batch.producerEpoch, 3);
        assert.equal(batch.baseSequence, 11);
        assert.equal(batch.maxTimestamp, BigInt(Math.max(...records.map((r) => Number(r.timestamp)))));
        batch.records.forEach((r, i) => {
          const want = records[i]!;
          assert.equal(r.offset, baseOffset + BigInt(i));
          assert.equal(r.timestamp, BigInt(want.timestamp!));
          assert.deepEqual(r.key, want.key ?? null);
          assert.deepEqual(r.value, want.value);
          assert.deepEqual(r.headers, want.headers);
        });
      },
    ),
    { numRuns: 200 },
  );
});

test('strings encode as UTF-8 and negative timestamp deltas survive', () => {
  const buf = encodeRecordBatch([
    { key: 'clé', value: 'välue ✓', timestamp: 5_000, headers: [['h', 'x']] },
    { key: null, value: null, timestamp: 1_000 },
  ]);
  const batch = decodeRecordBatch(buf);
  assert.equal(batch.records[0]!.key!.toString(), 'clé');
  assert.equal(batch.records[0]!.value!.toString(), 'välue ✓');
  assert.equal(batch.records[0]!.headers[0]![1]!.toString(), 'x');
  assert.equal(batch.records[1]!.timestamp, 1_000n);
  assert.equal(batch.records[1]!.value, null);
  assert.equal(batch.maxTimestamp, 5_000n);
});

test('kafkajs decodes our batches and we decode kafkajs batches', async () => {
  const records = [
    {
      key: Buffer.from('k1'),
      value: Buffer.from('v1'),
      headers: [['a', Buffer.from('1')]] as const,
      timestamp: 1_700_000_000_000,
    },
    { key: null, value: Buffer.from('v2'), timestamp: 1_700_000_000_005 },
  ];
  for (const compression of ['none', 'gzip'] as const) {
    const ours = encodeRecordBatch(records, {
      compression,
      baseOffset: 42n,
      producerId: 9n,
      producerEpoch: 1,
      baseSequence: 0,
    });
    const theirs = await kafkaJsBatchDecoder(new KafkaJsDecoder(ours));
    assert.equal(theirs.firstOffset, '42');
    assert.equal(theirs.records.length, 2);
    assert.equal(theirs.records[0].key.toString(), 'k1');
    assert.equal(theirs.records[0].headers.a.toString(), '1');
    assert.equal(theirs.records[1].offset, '43');
    assert.equal(theirs.records[1].timestamp, '1700000000005');
  }

  const encoded = await KafkaJsRecordBatch({
    compression: 1,
    firstOffset: require('kafkajs/src/utils/long').fromInt(5),
    firstTimestamp: 1000,
    maxTimestamp: 1003,
    lastOffsetDelta: 1,
    records: [
      KafkaJsRecord({ offsetDelta: 0, timestampDelta: 0, key: Buffer.from('a'), value: Buffer.from('x') }),
      KafkaJsRecord({
        offsetDelta: 1,
        timestampDelta: 3,
        key: Buffer.from('b'),
        value: Buffer.from('y'),
        headers: { h: 'z' },
      }),
    ],
  });
  const buf = Buffer.from(encoded.buffer);
  validateBatch(buf);
  const batch = decodeRecordBatch(buf);
  assert.equal(batch.compression, 'gzip');
  assert.deepEqual(
    batch.records.map((r) => [r.offset, r.timestamp, r.key!.toString(), r.value!.toString()]),
    [
      [5n, 1000n, 'a', 'x'],
      [6n, 1003n, 'b', 'y'],
    ],
  );
  assert.equal(batch.records[1]!.headers[0]![1]!.toString(), 'z');
});

test('@platformatic/kafka and we read each other with every codec', () => {
  for (const compression of COMPRESSION_TYPES) {
    const ours = encodeRecordBatch(
      [
        { key: 'k', value: 'one', timestamp: 10 },
        { key: 'k2', value: 'two'.repeat(50), timestamp: 12, headers: [['h', Buffer.from('v')]] },
      ],
      { compression, producerId: 3n, producerEpoch: 0, baseSequence: 0 },
    );
    const theirs = readRecordsBatch(Reader.from(ours));
    assert.equal(theirs.records.length, 2, compression);
    assert.equal(String(theirs.records[1]!.value), 'two'.repeat(50));

    const produced = createRecordsBatch(
      [
        { topic: 't', key: Buffer.from('a'), value: Buffer.from('alpha'.repeat(40)), timestamp: 100n },
        { topic: 't', key: Buffer.from('b'), value: Buffer.from('beta'), timestamp: 101n },
      ],
      { compression, producerId: 4n, producerEpoch: 2, partitionLeaderEpoch: 0, sequences: undefined as never },
    );
    const buf = Buffer.from(produced.buffer);
    assert.equal(validateBatch(buf), buf.length, compression);
    const batch = decodeRecordBatch(buf);
    assert.equal(batch.compression, compression);
    assert.deepEqual(
      batch.records.map((r) => r.value!.toString()),
      ['alpha'.repeat(40), 'beta'],
    );
  }
});

test('snappy decoding reads raw blocks and xerial framing; lz4 reads other writers', () => {
  const data = Buffer.from('snappy data '.repeat(10_000));
  assert.deepEqual(decompress('snappy', compress('snappy', data)), data);
  assert.deepEqual(decompress('snappy', xerialSnappyCompress(data, 4096)), data);
  assert.deepEqual(decompress('snappy', compressionsAlgorithms.snappy.compressSync(data) as Buffer), data);
  assert.deepEqual(decompress('lz4', compressionsAlgorithms.lz4.compressSync(data) as Buffer), data);
  assert.deepEqual(compressionsAlgorithms.lz4.decompressSync(compress('lz4', data)), data);
  for (const type of ['gzip', 'zstd'] as CompressionType[])
    assert.deepEqual(decompress(type, compress(type, data)), data);
  assert.throws(
    () => decompress('snappy', Buffer.from('not snappy at all')),
    (err) => isTributaryError(err, 'CORRUPT_DATA'),
  );
});

test('control batches carry their type and coordinator epoch', () => {
  const buf = encodeControlBatch({
    producerId: 12n,
    producerEpoch: 4,
    type: 'COMMIT',
    coordinatorEpoch: 7,
    timestamp: 99,
  });
  validateBatch(buf);
  const batch = decodeRecordBatch(buf);
  assert.ok(batch.isControl && batch.isTransactional);
  assert.equal(batch.producerId, 12n);
  const record = batch.records[0]!;
  assert.deepEqual(decodeControlRecord(record.key, record.value), { type: 'COMMIT', coordinatorEpoch: 7 });
  const abort = decodeRecordBatch(encodeControlBatch({ producerId: 1n, producerEpoch: 0, type: 'ABORT' }));
  assert.equal(decodeControlRecord(abort.records[0]!.key, abort.records[0]!.value).type, 'ABORT');
});

test('validateBatch rejects bad CRC, wrong magic and truncation; decoders never throw anything else', () => {
  const buf = encodeRecordBatch([{ key: 'a', value: 'b' }]);
  const badCrc = Buffer.from(buf);
  badCrc[buf.length - 1]! ^= 1;
  const badMagic = Buffer.from(buf);
  badMagic[BatchField.magic] = 1;
  for (const bad of [badCrc, badMagic, buf.subarray(0, buf.length - 1), buf.subarray(0, 30)]) {
    assert.throws(
      () => validateBatch(bad),
      (err) => isTributaryError(err) && err.kafkaErrorCode === 2,
    );
  }
  // random corruption of the records section (CRC ignored) fails cleanly
  fc.assert(
    fc.property(fc.nat(), fc.integer({ min: 1, max: 255 }), (where, xor) => {
      const copy = Buffer.from(encodeRecordBatch([{ key: 'key', value: 'value', headers: [['h', Buffer.from('v')]] }]));
      const i = 61 + (where % (copy.length - 61));
      copy[i]! ^= xor;
      try {
        decodeRecordBatch(copy, { verifyCrc: false });
      } catch (err) {
        assert.ok(isTributaryError(err, 'CORRUPT_DATA'), String(err));
      }
    }),
  );
});

test('decodeRecordBatches skips a partial trailing batch', () => {
  const a = encodeRecordBatch([{ value: 'a' }], { baseOffset: 0n });
  const b = encodeRecordBatch([{ value: 'b' }], { baseOffset: 1n });
  const batches = decodeRecordBatches(Buffer.concat([a, b, b.subarray(0, 20)]));
  assert.deepEqual(
    batches.map((x) => x.baseOffset),
    [0n, 1n],
  );
});
