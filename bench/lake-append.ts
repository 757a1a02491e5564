// Lake benchmarks: append throughput vs DuckDB writing the same rows straight to Parquet, commit
// latency, and pruning on a 1,000-file table. Rows: LAKE_BENCH_ROWS (default 10,000,000).
//   node bench/lake-append.ts
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { DuckDBInstance } from '@duckdb/node-api';
import { createTable, SqliteCatalog } from '../src/lake/index.ts';

const ROWS = Number(process.env.LAKE_BENCH_ROWS ?? 10_000_000);
const PARTITION = process.env.LAKE_BENCH_PARTITION ?? 'day(ts)';
const REPEATS = Number(process.env.LAKE_BENCH_REPEATS ?? 2);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lake-bench-'));

// 10 columns; ts spans 30 days so day(ts) makes 30 partitions, x16 buckets of user_id
const source = `SELECT range AS id,
  TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_microseconds(CAST(range * (30 * 86400000000 // ${ROWS}) AS BIGINT)) AS ts,
  range % 100000 AS user_id,
  CAST(range % 1000 AS INTEGER) AS item,
  (range % 9973) * 0.5 AS price,
  'name-' || (range % 5000) AS name,
  range % 7 = 0 AS flag,
  CAST(range % 86400 AS INTEGER) AS secs,
  hash(range) AS h,
  CAST(range % 50 AS VARCHAR) AS code
FROM range(${ROWS})`;

const schema = {
  fields: [
    { id: 1, name: 'id', required: true, type: 'long' },
    { id: 2, name: 'ts', required: false, type: 'timestamptz' },
    { id: 3, name: 'user_id', required: false, type: 'long' },
    { id: 4, name: 'item', required: false, type: 'int' },
    { id: 5, name: 'price', required: false, type: 'double' },
    { id: 6, name: 'name', required: false, type: 'string' },
    { id: 7, name: 'flag', required: false, type: 'boolean' },
    { id: 8, name: 'secs', required: false, type: 'int' },
    { id: 9, name: 'h', required: false, type: 'long' },
    { id: 10, name: 'code', required: false, type: 'string' },
  ],
};

const fmt = (n: number) => n.toLocaleString('en-US', { maximumFractionDigits: 0 });

async function main(): Promise<void> {
  console.log(
    `lake-append: ${fmt(ROWS)} rows x 10 columns, table partitioned by ${PARTITION}; ${os.cpus().length} cpus, load average ${os.loadavg()[0]?.toFixed(1)}`,
  );
  const inst = await DuckDBInstance.create(':memory:');
  const c = await inst.connect();
  // the source typed as the table wants it (h is UBIGINT from hash(); cast so both sides write the same)
  const typed = `SELECT id, ts, user_id, item, price, name, flag, secs, CAST(h >> 1 AS BIGINT) AS h, code FROM (${source})`;

  const catalog = new SqliteCatalog({ warehouse: path.join(dir, 'wh') });
  await catalog.createNamespace(['bench']);
  // machine noise (shared CI boxes) moves single runs by 2-3x: interleave the three writers and take
  // the best of LAKE_BENCH_REPEATS runs of each, so every side gets the same chances
  let baseSingle = Number.POSITIVE_INFINITY;
  let basePart = Number.POSITIVE_INFINITY;
  let ours = Number.POSITIVE_INFINITY;
  let r: Awaited<ReturnType<Awaited<ReturnType<typeof createTable>>['append']>> | undefined;
  const runs: string[] = [];
  for (let rep = 0; rep < REPEATS; rep++) {
    // baseline 1: DuckDB COPY to one Parquet file
    let t0 = performance.now();
    await c.run(`COPY (${typed}) TO '${path.join(dir, `baseline${rep}.parquet`)}' (FORMAT parquet, COMPRESSION zstd)`);
    const single = performance.now() - t0;
    fs.rmSync(path.join(dir, `baseline${rep}.parquet`), { force: true });
    // baseline 2: DuckDB COPY partitioned by day (hive directories), no Iceberg
    t0 = performance.now();
    await c.run(
      `COPY (SELECT *, CAST(ts AS DATE) AS d FROM (${typed})) TO '${path.join(dir, `baseline-part${rep}`)}' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (d))`,
    );
    const part = performance.now() - t0;
    fs.rmSync(path.join(dir, `baseline-part${rep}`), { recursive: true, force: true });
    const table = await createTable(
      catalog,
      { namespace: ['bench'], name: `events${rep}` },
      { schema, partition: PARTITION },
    );
    t0 = performance.now();
    r = await table.append({ sql: typed });
    const mine = performance.now() - t0;
    runs.push(
      `${(ROWS / single / 1000).toFixed(2)}M / ${(ROWS / part / 1000).toFixed(2)}M / ${(ROWS / mine / 1000).toFixed(2)}M rows/s (load ${os.loadavg()[0]?.toFixed(1)})`,
    );
    baseSingle = Math.min(baseSingle, single);
    basePart = Math.min(basePart, part);
    ours = Math.min(ours, mine);
  }
  c.closeSync();
  console.log(`  runs (one-file COPY / partitioned COPY / Tributary append): ${runs.join('; ')}`);
  const rps = (ms: number) => (ROWS / ms) * 1000;
  console.log(
    `  DuckDB COPY, one file:             ${fmt(rps(baseSingle))} rows/s (${(baseSingle / 1000).toFixed(2)} s)`,
  );
  console.log(
    `  DuckDB COPY, PARTITION_BY day (hive dirs, no Iceberg): ${fmt(rps(basePart))} rows/s (${(basePart / 1000).toFixed(2)} s)`,
  );
  console.log(
    `  Tributary append (Iceberg commit): ${fmt(rps(ours))} rows/s (${(ours / 1000).toFixed(2)} s, ${r?.addedFiles} files)`,
  );
  console.log(
    `  ratio vs one-file COPY: ${((rps(ours) / rps(baseSingle)) * 100).toFixed(0)}%; vs partitioned COPY: ${((rps(ours) / rps(basePart)) * 100).toFixed(0)}% (target >= 80%)`,
  );

  // commit latency: small appends (write + commit) and metadata-only commits
  const small = await createTable(
    catalog,
    { namespace: ['bench'], name: 'small' },
    { schema: { fields: schema.fields.slice(0, 3) } },
  );
  const appendMs: number[] = [];
  for (let i = 0; i < 40; i++) {
    const s = performance.now();
    await small.append([{ id: i, ts: '2024-01-01T00:00:00Z', user_id: i }]);
    appendMs.push(performance.now() - s);
  }
  const metaMs: number[] = [];
  for (let i = 0; i < 40; i++) {
    const s = performance.now();
    await small.setProperties({ counter: String(i) });
    metaMs.push(performance.now() - s);
  }
  const p50 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  console.log(
    `  commit latency p50: one-row append ${p50(appendMs).toFixed(1)} ms (write Parquet + manifests + CAS); metadata-only commit ${p50(metaMs).toFixed(1)} ms (target < 50 ms)`,
  );

  // pruning: 1,000 files (truncate(1000, id) over 1,000,000 ids), point lookups
  const prune = await createTable(
    catalog,
    { namespace: ['bench'], name: 'prune' },
    {
      schema: {
        fields: [
          { id: 1, name: 'id', required: true, type: 'long' },
          { id: 2, name: 'v', required: false, type: 'long' },
          { id: 3, name: 's', required: false, type: 'string' },
        ],
      },
      partition: 'truncate(1000, id)',
    },
  );
  await prune.append({ sql: "SELECT range AS id, range * 7 AS v, 'x' || range AS s FROM range(1000000)" });
  let t0 = performance.now();
  const full = await prune.scan({ columns: ['id'] });
  const fullMs = performance.now() - t0;
  t0 = performance.now();
  const byPart = await prune.scan({ filter: 'id = 123456' });
  const partMs = performance.now() - t0;
  t0 = performance.now();
  const byStats = await prune.scan({ filter: 'v = 864192' });
  const statsMs = performance.now() - t0;
  console.log(`  pruning on ${full.filesTotal} files: full scan ${full.rows.length} rows in ${fullMs.toFixed(0)} ms;`);
  console.log(
    `    id = 123456 (partition): read ${byPart.filesScanned} of ${byPart.filesTotal} files, ${byPart.rows.length} row, ${partMs.toFixed(0)} ms`,
  );
  console.log(
    `    v = 864192 (min/max stats only): read ${byStats.filesScanned} of ${byStats.filesTotal} files, ${byStats.rows.length} row, ${statsMs.toFixed(0)} ms`,
  );
  await catalog.close();
  fs.rmSync(dir, { recursive: true, force: true });
}

await main();
