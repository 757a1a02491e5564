/**
 * Batch ingestion with rollup: events/s for the engine beside hand-written DuckDB SQL doing the same
 * rollup (read JSON, bucket by minute, group, write Parquet) in the same run, both on one DuckDB thread.
 * OLAP_BENCH_EVENTS (default 2,000,000) scales it; OLAP_BENCH_THREADS (default 1) sets DuckDB threads.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { OlapEngine } from '../src/olap/index.ts';

const N = Number(process.env.OLAP_BENCH_EVENTS ?? 2_000_000);
const THREADS = Number(process.env.OLAP_BENCH_THREADS ?? 1);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'olap-bench-ingest-'));
const input = path.join(dir, 'events.json');

// The seed's event shape: a click/page event with a handful of dimensions and numeric fields.
{
  const countries = ['US', 'FR', 'DE', 'JP', 'BR', 'IN', 'GB', 'CA'];
  const devices = ['mobile', 'desktop', 'tablet'];
  const types = ['view', 'click', 'purchase', 'scroll'];
  const fd = fs.openSync(input, 'w');
  const start = Date.UTC(2024, 0, 1);
  let buf: string[] = [];
  let seed = 42;
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed;
  };
  for (let i = 0; i < N; i++) {
    buf.push(
      JSON.stringify({
        timestamp: new Date(start + Math.floor((i * 86_400_000) / N)).toISOString(),
        userId: `user-${rnd() % 100_000}`,
        page: `/page/${rnd() % 200}`,
        country: countries[rnd() % countries.length],
        device: devices[rnd() % devices.length],
        eventType: types[rnd() % types.length],
        latencyMs: (rnd() % 5000) / 10,
        bytes: rnd() % 100_000,
      }),
    );
    if (buf.length === 10_000) {
      fs.writeSync(fd, `${buf.join('\n')}\n`);
      buf = [];
    }
  }
  if (buf.length) fs.writeSync(fd, `${buf.join('\n')}\n`);
  fs.closeSync(fd);
}

const spec = {
  type: 'index_parallel',
  spec: {
    dataSchema: {
      dataSource: 'events',
      timestampSpec: { column: 'timestamp', format: 'iso' },
      dimensionsSpec: { dimensions: ['page', 'country', 'device', 'eventType'] },
      metricsSpec: [
        { type: 'count', name: 'count' },
        { type: 'longSum', name: 'bytes', fieldName: 'bytes' },
        { type: 'doubleSum', name: 'latencyMs', fieldName: 'latencyMs' },
        { type: 'doubleMax', name: 'maxLatencyMs', fieldName: 'latencyMs' },
      ],
      granularitySpec: { segmentGranularity: 'hour', queryGranularity: 'minute', rollup: true },
    },
    ioConfig: { type: 'index_parallel', inputSource: { type: 'local', files: [input] }, inputFormat: { type: 'json' } },
    tuningConfig: { type: 'index_parallel', maxRowsPerSegment: 5_000_000 },
  },
};

const engine = await OlapEngine.open({ dataDir: path.join(dir, 'data'), threads: THREADS });
let t0 = performance.now();
const r = await engine.ingest(spec);
const engineMs = performance.now() - t0;
const rows = engine.store.datasources.get('events')!.segments.reduce((a, s) => a + s.rows, 0);
await engine.close();

const db = await DuckDBInstance.create(':memory:', { threads: String(THREADS) });
const c = await db.connect();
await c.run("SET TimeZone = 'UTC'");
fs.mkdirSync(path.join(dir, 'baseline'));
t0 = performance.now();
await c.run(`CREATE TABLE rolled AS SELECT time_bucket(INTERVAL 1 MINUTE, "timestamp") AS __time, page, country, device, "eventType",
  count(*) AS count, sum(bytes) AS bytes, sum("latencyMs") AS "latencyMs", max("latencyMs") AS "maxLatencyMs"
  FROM read_json('${input}', format = 'newline_delimited') GROUP BY ALL`);
await c.run(
  `COPY (SELECT *, date_trunc('hour', __time) AS seg FROM rolled ORDER BY __time) TO '${path.join(dir, 'baseline')}' (FORMAT parquet, PARTITION_BY (seg))`,
);
const baseMs = performance.now() - t0;
c.closeSync();
db.closeSync();

const eps = (ms: number) => Math.round(N / (ms / 1000));
console.log(
  `olap-ingest: ${N} events -> ${rows} rolled-up rows (processed ${r.rowStats.processed}), DuckDB threads=${THREADS}`,
);
console.log(`  engine   : ${engineMs.toFixed(0)} ms  ${eps(engineMs).toLocaleString('en')} events/s`);
console.log(
  `  baseline : ${baseMs.toFixed(0)} ms  ${eps(baseMs).toLocaleString('en')} events/s (hand-written DuckDB SQL)`,
);
console.log(`  ratio    : engine/baseline time = ${(engineMs / baseMs).toFixed(2)}x; target >= 500,000 events/s`);
fs.rmSync(dir, { recursive: true, force: true });
