/** Child process for stream-crash.test.ts: `run DIR` produces and ingests until killed; `verify DIR` reports totals. */
import path from 'node:path';
import { embeddedClient, openLog } from '../../src/log/index.ts';
import { OlapEngine } from '../../src/olap/index.ts';

const [mode, dir] = process.argv.slice(2) as [string, string];
const TOPIC = 'events';
const log = await openLog({ dataDir: path.join(dir, 'log'), cleanerIntervalMs: 0 });
const client = embeddedClient(log);
const admin = client.admin();
if (!(await admin.listTopics()).includes(TOPIC))
  await admin.createTopic(TOPIC, { partitions: 2, config: { 'flush.messages': 1 } });
const engine = await OlapEngine.open({ dataDir: path.join(dir, 'olap'), logClient: client });
if (!engine.supervisors.has(TOPIC)) {
  await engine.submitSupervisor({
    type: 'kafka',
    spec: {
      dataSchema: {
        dataSource: TOPIC,
        timestampSpec: { column: 'ts', format: 'millis' },
        dimensionsSpec: { dimensions: ['k'] },
        metricsSpec: [
          { type: 'count', name: 'count' },
          { type: 'longSum', name: 'v', fieldName: 'v' },
        ],
        granularitySpec: { segmentGranularity: 'hour', queryGranularity: 'minute', rollup: true },
      },
      ioConfig: { topic: TOPIC, useEarliestOffset: true, inputFormat: { type: 'json' } },
      tuningConfig: { type: 'kafka', intermediatePersistPeriod: 'PT1S' },
    },
  });
}
const totals = async () => {
  const r = (await engine.query(
    {
      queryType: 'timeseries',
      dataSource: TOPIC,
      granularity: 'all',
      aggregations: [
        { type: 'longSum', name: 'n', fieldName: 'count' },
        { type: 'longSum', name: 'v', fieldName: 'v' },
      ],
    },
    { useCache: false },
  )) as { result: { n: bigint; v: bigint } }[];
  return r.length ? { n: Number(r[0]!.result.n), v: Number(r[0]!.result.v) } : { n: 0, v: 0 };
};
if (mode === 'run') {
  const producer = client.producer();
  let i = 0;
  for (;;) {
    const batch = Array.from({ length: 20 }, () => {
      i++;
      return {
        topic: TOPIC,
        key: `k${i % 5}`,
        value: JSON.stringify({ ts: 1_600_000_000_000 + i * 1000, k: `k${i % 5}`, v: i }),
      };
    });
    await producer.send(batch);
    const segs = engine.store.datasources.get(TOPIC)?.segments.length ?? 0;
    process.stdout.write(`produced ${i} persisted ${segs}\n`);
    await new Promise((r) => setTimeout(r, 10));
  }
} else {
  const d = await admin.describeTopic(TOPIC);
  const records = d.partitions.reduce((a, p) => a + Number(p.highWatermark - p.logStartOffset), 0);
  let t = await totals();
  for (let k = 0; k < 400 && t.n < records; k++) {
    await new Promise((r) => setTimeout(r, 25));
    t = await totals();
  }
  // What the topic really holds (a kill mid-send may leave a partial batch): read it all back.
  const consumer = client.consumer({ autoCommit: false });
  consumer.assign(d.partitions.map((p) => ({ topic: TOPIC, partition: p.partition })));
  for (const p of d.partitions) consumer.seek({ topic: TOPIC, partition: p.partition }, p.logStartOffset);
  let seen = 0;
  let expectedV = 0;
  while (seen < records) {
    for (const rec of await consumer.poll(200)) {
      seen++;
      expectedV += (JSON.parse(rec.value!.toString()) as { v: number }).v;
    }
  }
  await consumer.close();
  process.stdout.write(`${JSON.stringify({ records, rows: t.n, v: t.v, expectedV })}\n`);
  await engine.close();
  await admin.close();
  await client.close();
  await log.close();
}
