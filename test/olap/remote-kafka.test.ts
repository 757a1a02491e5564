import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { quietLogger, startKafkaBroker } from '../../src/kafka/index.ts';
import { embeddedClient, openLog } from '../../src/log/index.ts';
import { OlapEngine } from '../../src/olap/index.ts';
import { tempDir } from './helpers.ts';

test('a supervisor without an embedded log reads the Kafka cluster named by bootstrap.servers', async () => {
  const dir = tempDir();
  const log = await openLog({ dataDir: path.join(dir, 'log'), cleanerIntervalMs: 0 });
  const broker = await startKafkaBroker({ log, port: 0, logger: quietLogger });
  const producerSide = embeddedClient(log);
  const engine = await OlapEngine.open({ dataDir: path.join(dir, 'olap') });
  try {
    await log.createTopic('clicks', { partitions: 2 });
    await engine.submitSupervisor({
      type: 'kafka',
      spec: {
        dataSchema: {
          dataSource: 'clicks',
          timestampSpec: { column: 'ts', format: 'millis' },
          dimensionsSpec: { dimensions: ['page'] },
          metricsSpec: [{ type: 'count', name: 'count' }],
          granularitySpec: { segmentGranularity: 'hour', queryGranularity: 'minute' },
        },
        ioConfig: {
          topic: 'clicks',
          useEarliestOffset: true,
          consumerProperties: { 'bootstrap.servers': `127.0.0.1:${broker.port}` },
          inputFormat: { type: 'json' },
        },
      },
    });
    const p = producerSide.producer();
    await p.send(
      Array.from({ length: 40 }, (_, i) => ({
        topic: 'clicks',
        key: `k${i}`,
        value: JSON.stringify({ ts: 1_700_000_000_000 + i, page: `p${i % 4}` }),
      })),
    );
    await p.close();
    let n = 0n;
    for (let i = 0; i < 400 && n !== 40n; i++) {
      const r = (await engine.query(
        {
          queryType: 'timeseries',
          dataSource: 'clicks',
          intervals: ['2023/2024'],
          granularity: 'all',
          aggregations: [{ type: 'longSum', name: 'n', fieldName: 'count' }],
        },
        { useCache: false },
      )) as { result: { n: bigint } }[];
      n = r[0]?.result.n ?? 0n;
      if (n !== 40n) await new Promise((res) => setTimeout(res, 25));
    }
    assert.equal(n, 40n);
  } finally {
    await engine.close();
    await producerSide.close();
    await broker.close();
    await log.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
