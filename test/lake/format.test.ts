import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  applyTransform,
  bigintToMinBytes,
  fromBytes,
  icebergHash,
  minBytesToBigint,
  murmur3,
  parseJson,
  parseTableMetadata,
  parseTransform,
  readAvroFile,
  readManifest,
  readManifestList,
  serializeTableMetadata,
  stringifyJson,
  toBytes,
  toInternal,
  toPublic,
  writeManifest,
  writeManifestList,
} from '../../src/lake/index.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const RUST = path.resolve(ROOT, '../shared/fixtures/iceberg/iceberg-rust/crates/iceberg/testdata');

const internal = (t: string, v: unknown): unknown => {
  const c = toInternal(t, v);
  assert.ok(c.ok, `toInternal(${t}, ${String(v)})`);
  return c.value;
};

describe('bucket hash: the spec Appendix B test vectors', () => {
  const vectors: [string, unknown, number][] = [
    ['int', 34, 2017239379],
    ['long', 34n, 2017239379],
    ['decimal(4,2)', '14.20', -500754589],
    ['date', '2017-11-16', -653330422],
    ['time', '22:31:08', -662762989],
    ['timestamp', '2017-11-16T22:31:08', -2047944441],
    ['timestamptz', '2017-11-16T14:31:08-08:00', -2047944441],
    ['timestamp_ns', '2017-11-16T22:31:08.000001001', -1207196810],
    ['string', 'iceberg', 1210000089],
    ['uuid', 'f79c3e09-677c-4bbd-a479-3f349cb785e7', 1488055340],
    ['fixed[4]', Uint8Array.of(0, 1, 2, 3), -188683207],
    ['binary', Uint8Array.of(0, 1, 2, 3), -188683207],
  ];
  for (const [t, v, h] of vectors) {
    it(`${t} ${v instanceof Uint8Array ? '00 01 02 03' : String(v)} -> ${h}`, () => {
      assert.equal(icebergHash(t, internal(t, v)), h);
    });
  }
  it('the string "34" hashes differently from the int 34 (spec promotion note)', () => {
    assert.equal(icebergHash('string', '34'), -427558391);
  });
  it('murmur3 of empty input is 0', () => assert.equal(murmur3(new Uint8Array(0)), 0));
  it('bucket[4] of the rename_column fixture ids matches what Spark wrote', () => {
    const b = parseTransform('bucket[4]');
    assert.deepEqual(
      [1, 2, 3, 4].map((id) => applyTransform(b, 'int', id)),
      [0, 0, 3, 2],
    );
  });
});

describe('partition transforms', () => {
  it('truncate examples from the spec', () => {
    const t10 = parseTransform('truncate[10]');
    assert.equal(applyTransform(t10, 'int', 1), 0);
    assert.equal(applyTransform(t10, 'int', -1), -10);
    assert.equal(applyTransform(t10, 'long', -1n), -10n);
    assert.equal(
      applyTransform(parseTransform('truncate[50]'), 'decimal(9,2)', internal('decimal(9,2)', '10.65')),
      1050n,
    );
    assert.equal(applyTransform(parseTransform('truncate[3]'), 'string', 'iceberg'), 'ice');
    assert.equal(
      applyTransform(parseTransform('truncate[2]'), 'string', '🐇🐇🐇'),
      '🐇🐇',
      'truncates code points, not UTF-16 units',
    );
    assert.deepEqual(
      applyTransform(parseTransform('truncate[3]'), 'binary', Uint8Array.of(1, 2, 3, 4, 5)),
      Uint8Array.of(1, 2, 3),
    );
  });
  it('year, month, day, hour count from 1970 and floor before it', () => {
    const ts = internal('timestamp', '2017-11-16T22:31:08');
    assert.equal(applyTransform(parseTransform('year'), 'timestamp', ts), 47);
    assert.equal(applyTransform(parseTransform('month'), 'timestamp', ts), 47 * 12 + 10);
    assert.equal(applyTransform(parseTransform('day'), 'timestamp', ts), 17486);
    assert.equal(applyTransform(parseTransform('hour'), 'timestamp', ts), 17486 * 24 + 22);
    assert.equal(applyTransform(parseTransform('day'), 'date', internal('date', '1969-12-31')), -1);
    assert.equal(applyTransform(parseTransform('hour'), 'timestamp', internal('timestamp', '1969-12-31T23:59:59')), -1);
    assert.equal(applyTransform(parseTransform('year'), 'date', internal('date', '1969-06-01')), -1);
    assert.equal(applyTransform(parseTransform('month'), 'date', internal('date', '1969-12-01')), -1);
    assert.equal(applyTransform(parseTransform('void'), 'int', 5), null);
    assert.equal(applyTransform(parseTransform('bucket[16]'), 'int', null), null);
  });
  it('rejects unknown transforms with the accepted list', () => {
    assert.throws(() => parseTransform('bucket(4)'), /identity, bucket\[N\]/);
  });
});

describe('single-value serialization (Appendix D)', () => {
  it('round-trips every primitive', () => {
    const cases: [string, unknown][] = [
      ['boolean', true],
      ['int', -7],
      ['long', 2n ** 62n],
      ['float', 1.5],
      ['double', -2.25],
      ['date', '2024-02-29'],
      ['time', '01:02:03.000004'],
      ['timestamp', '2024-01-02T03:04:05.123456'],
      ['timestamptz', '2024-01-02T03:04:05.123456+00:00'],
      ['string', 'héllo'],
      ['uuid', 'f79c3e09-677c-4bbd-a479-3f349cb785e7'],
      ['decimal(10,2)', '-12345.67'],
      ['binary', Uint8Array.of(9, 8)],
    ];
    for (const [t, v] of cases) {
      const iv = internal(t, v);
      assert.deepEqual(toPublic(t, fromBytes(t, toBytes(t, iv))), v instanceof Uint8Array ? v : v, t);
    }
    assert.deepEqual([...toBytes('int', 1)], [1, 0, 0, 0], 'little-endian');
    assert.deepEqual([...toBytes('decimal(9,2)', 1420n)], [0x05, 0x8c], 'minimal big-endian');
  });
  it('decimal minimal bytes round-trip (property)', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: -(2n ** 100n), max: 2n ** 100n }),
        (v) => minBytesToBigint(bigintToMinBytes(v)) === v,
      ),
    );
  });
  it('write validation names what was expected', () => {
    const r = toInternal('int', 2 ** 40);
    assert.ok(!r.ok && /32-bit integer/.test(r.reason));
    const d = toInternal('decimal(4,2)', '123.45');
    assert.ok(!d.ok && /at most 4 digits/.test(d.reason));
  });
});

describe('string order', () => {
  it('compares strings in UTF-8 byte order, like Parquet statistics (property)', async () => {
    const { compareUtf8 } = await import('../../src/lake/index.ts');
    assert.ok(compareUtf8('\u{1F407}', '\uFFFD') > 0, 'a code point above U+FFFF sorts after U+FFFD');
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), fc.string({ unit: 'grapheme' }), (a, b) => {
        const bytes = Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
        return Math.sign(compareUtf8(a, b)) === bytes;
      }),
    );
  });
});

describe('table metadata JSON', () => {
  it('keeps 64-bit snapshot ids exact through parse and serialize', () => {
    const text = fs.readFileSync(`${RUST}/table_metadata/TableMetadataV2Valid.json`, 'utf8');
    const md = parseTableMetadata(text);
    assert.equal(md['current-snapshot-id'], 3055729675574597004n);
    assert.equal(md.snapshots[1]?.['parent-snapshot-id'], 3051729675574597004n);
    const again = parseTableMetadata(serializeTableMetadata(md));
    assert.deepEqual(again, md);
    assert.match(serializeTableMetadata(md), /"current-snapshot-id": 3055729675574597004/);
  });
  it('reads minimal v2 and upgrades v1', () => {
    const min = parseTableMetadata(fs.readFileSync(`${RUST}/table_metadata/TableMetadataV2ValidMinimal.json`, 'utf8'));
    assert.equal(min['current-snapshot-id'], undefined);
    const v1 = parseTableMetadata(fs.readFileSync(`${RUST}/table_metadata/TableMetadataV1Valid.json`, 'utf8'));
    assert.equal(v1['format-version'], 2);
    assert.ok(v1['partition-specs'].length >= 1);
  });
  it('rejects invalid metadata naming the field', () => {
    const bad = (f: string) => fs.readFileSync(`${RUST}/table_metadata/${f}.json`, 'utf8');
    assert.throws(() => parseTableMetadata(bad('TableMetadataV2MissingSchemas')), /metadata\.schemas/);
    assert.throws(() => parseTableMetadata(bad('TableMetadataV2MissingPartitionSpecs')), /partition-specs/);
    assert.throws(() => parseTableMetadata(bad('TableMetadataV2MissingSortOrder')), /sort-orders/);
    assert.throws(() => parseTableMetadata(bad('TableMetadataV2MissingLastPartitionId')), /last-partition-id/);
    assert.throws(() => parseTableMetadata(bad('TableMetadataV2CurrentSchemaNotFound')), /current-schema-id/);
    assert.throws(() => parseTableMetadata(bad('TableMetadataUnsupportedVersion')), /format-version/);
  });
  it('JSON helpers keep bigint ids', () => {
    assert.deepEqual(parseJson('{"snapshot-id": 9223372036854775807}'), { 'snapshot-id': 9223372036854775807n });
    assert.equal(stringifyJson({ 'snapshot-id': 9223372036854775807n }), '{"snapshot-id":9223372036854775807}');
  });
});

describe('Avro manifests and manifest lists', () => {
  it('reads manifest lists written by iceberg-rust', async () => {
    for (const f of ['manifest-list-v2-1.avro', 'manifest-list-v2-2.avro']) {
      const list = await readManifestList(fs.readFileSync(`${RUST}/manifests_lists/${f}`), f);
      assert.ok(list.length >= 1);
      assert.equal(typeof list[0]?.addedSnapshotId, 'bigint');
    }
  });
  it('writes manifests with field ids and the required header keys, and reads them back', async () => {
    const schema = {
      type: 'struct' as const,
      'schema-id': 3,
      fields: [
        { id: 1, name: 'id', required: true, type: 'long' },
        { id: 2, name: 'd', required: false, type: 'decimal(9,2)' },
      ],
    };
    const spec = {
      'spec-id': 0,
      fields: [
        { 'source-id': 1, 'field-id': 1000, name: 'id_bucket', transform: 'bucket[8]' },
        { 'source-id': 2, 'field-id': 1001, name: 'd', transform: 'identity' },
      ],
    };
    const pfields = [
      { id: 1000, name: 'id_bucket', required: false, type: 'int' },
      { id: 1001, name: 'd', required: false, type: 'decimal(9,2)' },
    ];
    const big = 9007199254740993n; // 2^53 + 1: would lose precision as a double
    const buf = writeManifest(
      [
        {
          status: 0,
          snapshotId: big,
          sequenceNumber: 4,
          fileSequenceNumber: 4,
          dataFile: {
            content: 0,
            filePath: '/t/data/a.parquet',
            fileFormat: 'PARQUET',
            partition: [3, -1234n],
            recordCount: 10,
            fileSizeInBytes: 1000,
            valueCounts: new Map([[1, 10]]),
            nullValueCounts: new Map([[1, 0]]),
            lowerBounds: new Map([[1, toBytes('long', 5n)]]),
            upperBounds: new Map([[1, toBytes('long', 50n)]]),
          },
        },
      ],
      { schema, spec, partitionFields: pfields, content: 0 },
    );
    const avro = await readAvroFile(buf);
    for (const k of ['schema', 'schema-id', 'partition-spec', 'partition-spec-id', 'format-version', 'content'])
      assert.ok(k in avro.metadata, k);
    assert.match(avro.metadata['avro.schema'] as string, /"field-id":102/);
    const mf = {
      manifestPath: 'm.avro',
      manifestLength: buf.length,
      partitionSpecId: 0,
      content: 0 as const,
      sequenceNumber: 4,
      minSequenceNumber: 4,
      addedSnapshotId: big,
      addedFilesCount: 0,
      existingFilesCount: 1,
      deletedFilesCount: 0,
      addedRowsCount: 0,
      existingRowsCount: 10,
      deletedRowsCount: 0,
    };
    const entries = await readManifest(buf, { manifest: mf, partitionFields: pfields });
    assert.equal(entries[0]?.snapshotId, big);
    assert.deepEqual(entries[0]?.dataFile.partition, [3, -1234n]);
    assert.equal(fromBytes('long', entries[0]?.dataFile.upperBounds?.get(1) as Uint8Array), 50n);
    const list = writeManifestList([mf], { snapshotId: big, sequenceNumber: 4 });
    const back = await readManifestList(list, 'list');
    assert.deepEqual(back[0], mf);
    assert.match((await readAvroFile(list)).metadata['avro.schema'] as string, /"field-id":500/);
  });
});
