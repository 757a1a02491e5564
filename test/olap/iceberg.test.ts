import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { createTable, SqliteCatalog } from '../../src/lake/index.ts';
import { OlapEngine } from '../../src/olap/index.ts';
import { tempDir } from './helpers.ts';

test('an Iceberg table of the lake is an input source', async () => {
  const dir = tempDir();
  const catalog = new SqliteCatalog({ warehouse: path.join(dir, 'lake') });
  const engine = await OlapEngine.open({ dataDir: path.join(dir, 'olap'), catalog });
  try {
    await catalog.createNamespace(['db']);
    const table = await createTable(
      catalog,
      { namespace: ['db'], name: 'orders' },
      {
        schema: {
          fields: [
            { id: 1, name: 'id', required: true, type: 'long' },
            { id: 2, name: 'ts', required: false, type: 'timestamptz' },
            { id: 3, name: 'shop', required: false, type: 'string' },
            { id: 4, name: 'amount', required: false, type: 'double' },
          ],
        },
        partition: 'day(ts)',
      },
    );
    const rows = Array.from({ length: 30 }, (_, i) => ({
      id: i,
      ts: new Date(Date.UTC(2023, 4, 1 + (i % 3), i % 24)).toISOString(),
      shop: `s${i % 2}`,
      amount: i * 1.5,
    }));
    await table.append(rows);
    const r = await engine.ingest({
      type: 'index_parallel',
      spec: {
        dataSchema: {
          dataSource: 'orders',
          timestampSpec: { column: 'ts', format: 'iso' },
          dimensionsSpec: { dimensions: ['shop'] },
          metricsSpec: [
            { type: 'count', name: 'count' },
            { type: 'doubleSum', name: 'amount', fieldName: 'amount' },
          ],
          granularitySpec: { segmentGranularity: 'day', queryGranularity: 'day' },
        },
        ioConfig: {
          inputSource: { type: 'iceberg', namespace: 'db', tableName: 'orders' },
          inputFormat: { type: 'parquet' },
        },
      },
    });
    assert.equal(r.rowStats.processed, 30);
    const q = (await engine.query({
      queryType: 'groupBy',
      dataSource: 'orders',
      intervals: ['2023/2024'],
      granularity: 'all',
      dimensions: ['shop'],
      aggregations: [
        { type: 'longSum', name: 'n', fieldName: 'count' },
        { type: 'doubleSum', name: 'amount', fieldName: 'amount' },
      ],
    })) as { event: { shop: string; n: bigint; amount: number } }[];
    const exp = ['s0', 's1'].map((s) => ({
      shop: s,
      n: BigInt(rows.filter((x) => x.shop === s).length),
      amount: rows.filter((x) => x.shop === s).reduce((a, x) => a + x.amount, 0),
    }));
    assert.deepEqual(
      q.map((x) => x.event),
      exp,
    );
    assert.equal(engine.store.datasources.get('orders')!.segments.length, 3);
  } finally {
    await engine.close();
    await catalog.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
