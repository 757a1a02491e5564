import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  Table as ArrowTable,
  Bool,
  DateDay,
  Decimal,
  Field,
  Float64,
  Int32,
  Int64,
  List,
  makeData,
  makeVector,
  Struct,
  TimestampMicrosecond,
  TimestampNanosecond,
  tableToIPC,
  Utf8,
  vectorFromArray,
} from 'apache-arrow';
import { isTributaryError } from '../../src/core/index.ts';
import { createTable, type NestedField, SqliteCatalog, type Table } from '../../src/lake/index.ts';
import { tempDir } from './helpers.ts';

/** Timestamp vectors from raw epoch values (Arrow's builder takes only milliseconds). */
function tsVector(values: (bigint | null)[], type: TimestampMicrosecond | TimestampNanosecond) {
  const nullBitmap = new Uint8Array(Math.ceil(values.length / 8));
  values.forEach((v, i) => {
    if (v !== null) nullBitmap[i >> 3] = (nullBitmap[i >> 3] as number) | (1 << (i & 7));
  });
  const data = new BigInt64Array(values.map((v) => v ?? 0n));
  const nullCount = values.filter((v) => v === null).length;
  return makeVector(makeData({ type, length: values.length, nullCount, nullBitmap, data }));
}

const SCHEMA: { fields: NestedField[] } = {
  fields: [
    { id: 1, name: 'i', required: true, type: 'int' },
    { id: 2, name: 'l', required: false, type: 'long' },
    { id: 3, name: 'd', required: false, type: 'double' },
    { id: 4, name: 's', required: false, type: 'string' },
    { id: 5, name: 'ts', required: false, type: 'timestamptz' },
    { id: 6, name: 'day', required: false, type: 'date' },
    { id: 7, name: 'b', required: false, type: 'boolean' },
    {
      id: 8,
      name: 'tags',
      required: false,
      type: { type: 'list', 'element-id': 9, element: 'string', 'element-required': false },
    },
    {
      id: 10,
      name: 'pt',
      required: false,
      type: {
        type: 'struct',
        fields: [
          { id: 11, name: 'x', required: false, type: 'int' },
          { id: 12, name: 'y', required: false, type: 'string' },
        ],
      },
    },
    { id: 13, name: 'amount', required: false, type: 'decimal(10, 2)' },
  ],
};

function sample(): ArrowTable {
  const big = 2n ** 62n + 7n; // beyond float precision: must stay exact
  return new ArrowTable({
    i: vectorFromArray([1, 2, 3], new Int32()),
    l: vectorFromArray([big, -5n, null], new Int64()),
    d: vectorFromArray([1.5, null, -0.25], new Float64()),
    s: vectorFromArray(['a', null, 'ü'], new Utf8()),
    // microsecond precision survives (Arrow's own getter would round to milliseconds)
    ts: tsVector([1_704_164_645_123_456n, null, -1n], new TimestampMicrosecond('UTC')),
    day: vectorFromArray([new Date('2024-02-29T00:00:00Z'), null, new Date('1969-12-31T00:00:00Z')], new DateDay()),
    b: vectorFromArray([true, false, null], new Bool()),
    tags: vectorFromArray([['p', 'q'], [], null], new List(new Field('item', new Utf8(), true))),
    pt: vectorFromArray(
      [{ x: 1, y: 'one' }, null, { x: null, y: 'three' }],
      new Struct([new Field('x', new Int32(), true), new Field('y', new Utf8(), true)]),
    ),
    amount: vectorFromArray(
      [new Uint32Array([12345, 0, 0, 0]), null, new Uint32Array([0xffffff9c, 0xffffffff, 0xffffffff, 0xffffffff])],
      new Decimal(2, 10, 128),
    ),
  });
}

const EXPECTED = [
  {
    i: 1,
    l: 2n ** 62n + 7n,
    d: 1.5,
    s: 'a',
    ts: '2024-01-02T03:04:05.123456+00:00',
    day: '2024-02-29',
    b: true,
    tags: ['p', 'q'],
    pt: { x: 1, y: 'one' },
    amount: '123.45',
  },
  { i: 2, l: -5n, d: null, s: null, ts: null, day: null, b: false, tags: [], pt: null, amount: null },
  {
    i: 3,
    l: null,
    d: -0.25,
    s: 'ü',
    ts: '1969-12-31T23:59:59.999999+00:00',
    day: '1969-12-31',
    b: null,
    tags: null,
    pt: { x: null, y: 'three' },
    amount: '-1.00',
  },
];

describe('writes from Arrow', () => {
  let tmp: ReturnType<typeof tempDir>;
  let catalog: SqliteCatalog;
  let table: Table;
  before(async () => {
    tmp = tempDir();
    catalog = new SqliteCatalog({ warehouse: tmp.dir });
    await catalog.createNamespace(['db']);
    table = await createTable(catalog, { namespace: ['db'], name: 'arrow' }, { schema: SCHEMA, partition: 'day(ts)' });
  });
  after(async () => {
    await catalog.close();
    tmp.cleanup();
  });

  const sorted = async () => (await table.rows()).sort((a, b) => Number(a.i) - Number(b.i));

  it('appends an Arrow Table: every type round-trips through a scan', async () => {
    const r = await table.append(sample());
    assert.equal(r.addedRows, 3);
    assert.deepEqual(await sorted(), EXPECTED);
  });

  it('overwrites from IPC stream bytes and upserts from IPC file bytes', async () => {
    await table.overwrite({ arrow: tableToIPC(sample(), 'stream') });
    assert.deepEqual(await sorted(), EXPECTED);
    const upd = new ArrowTable({
      i: vectorFromArray([2, 4], new Int32()),
      s: vectorFromArray(['two', 'four'], new Utf8()),
      ts: tsVector([1_000_000_000n, 2_000_000_000_123n], new TimestampNanosecond()),
    });
    await table.upsert({ arrow: tableToIPC(upd, 'file') }, { key: ['i'] });
    const rows = await sorted();
    assert.deepEqual(
      rows.map((x) => [x.i, x.s, x.ts, x.l]),
      [
        [1, 'a', '2024-01-02T03:04:05.123456+00:00', 2n ** 62n + 7n],
        [2, 'two', '1970-01-01T00:00:01+00:00', null],
        [3, 'ü', '1969-12-31T23:59:59.999999+00:00', null],
        [4, 'four', '1970-01-01T00:33:20.000000+00:00'.replace('.000000', ''), null],
      ],
    );
  });

  it('validates Arrow rows against the schema, naming rows and fields', async () => {
    const badRows = new ArrowTable({
      i: vectorFromArray([7, null], new Int32()),
      s: vectorFromArray(['ok', 'missing i'], new Utf8()),
    });
    await assert.rejects(
      table.append(badRows),
      (e: unknown) => isTributaryError(e, 'INVALID_ARGUMENT') && /row 1 field "i": required/.test(e.message),
    );
    await assert.rejects(table.append({ arrow: new Uint8Array([1, 2, 3]) }), /Arrow IPC/);
  });

  it('unionByName adds columns with the Arrow type', async () => {
    const extra = new ArrowTable({
      i: vectorFromArray([9], new Int32()),
      when: tsVector([86_400_000_001n], new TimestampMicrosecond()),
      n: vectorFromArray([null], new Int64()),
    });
    await table.append(extra, { unionByName: true });
    const added = table.schema().fields.filter((f) => f.name === 'when' || f.name === 'n');
    assert.deepEqual(
      added.map((f) => [f.name, f.type]),
      [
        ['when', 'timestamp'],
        ['n', 'long'],
      ],
    );
    const row = (await table.rows({ filter: 'i = 9' }))[0];
    assert.equal(row?.when, '1970-01-02T00:00:00.000001');
  });
});
