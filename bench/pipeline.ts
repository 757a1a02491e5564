// Pipeline benchmarks, each beside a baseline measured in the same run:
//  1. orchestration overhead per stage: a chain of trivial stages vs the same statements run on DuckDB
//     directly (issue figure: under 5 ms per stage);
//  2. a 10-stage pipeline over PIPELINE_BENCH_ROWS rows (default 10,000,000) vs the same work written as
//     hand-written DuckDB SQL (issue figure: within 1.3x).
//   node bench/pipeline.ts
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { DuckDBInstance } from '@duckdb/node-api';
import { type PipelineInput, PipelineRunner } from '../src/pipeline/index.ts';

const ROWS = Number(process.env.PIPELINE_BENCH_ROWS ?? 10_000_000);
const CHAIN = Number(process.env.PIPELINE_BENCH_STAGES ?? 100);
const REPEAT = Number(process.env.PIPELINE_BENCH_REPEAT ?? 3);
// big runs: fewer repetitions unless asked for
const BIG_REPEAT = Number(process.env.PIPELINE_BENCH_REPEAT ?? (ROWS >= 5_000_000 ? 3 : REPEAT));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipeline-bench-'));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

// ---- 1. overhead per stage ----
async function overhead(): Promise<void> {
  const stages: PipelineInput['stages'] = [{ id: 's0', type: 'ingest', source: { kind: 'sql', sql: 'SELECT 1 AS x' } }];
  for (let i = 1; i < CHAIN; i++)
    stages.push({ id: `s${i}`, type: 'transform', inputs: [`s${i - 1}`], rules: [{ filter: 'x > 0' }] });
  const pipeTimes: number[] = [];
  const sqlTimes: number[] = [];
  for (let r = 0; r < REPEAT; r++) {
    const runner = new PipelineRunner({ dataDir: path.join(dir, `o${r}`) });
    let t0 = performance.now();
    const res = await runner.run({ name: `overhead${r}`, stages });
    pipeTimes.push(performance.now() - t0);
    if (res.run.status !== 'succeeded') throw new Error(res.run.error ?? 'failed');
    await runner.close();
    // baseline: the statements the stages run, straight on DuckDB
    const inst = await DuckDBInstance.create(':memory:');
    const c = await inst.connect();
    t0 = performance.now();
    await c.run('CREATE TABLE s0 AS SELECT 1 AS x');
    for (let i = 1; i < CHAIN; i++)
      await c.run(`CREATE VIEW s${i} AS SELECT * FROM (SELECT * FROM s${i - 1}) WHERE x > 0`);
    await c.runAndReadAll(`SELECT count(*) FROM s${CHAIN - 1}`);
    sqlTimes.push(performance.now() - t0);
    c.closeSync();
    inst.closeSync();
  }
  const p = median(pipeTimes);
  const s = median(sqlTimes);
  console.log(
    `orchestration: ${CHAIN} stages in ${p.toFixed(0)} ms (run history, lineage, describe), plain DuckDB ${s.toFixed(0)} ms`,
  );
  console.log(
    `  overhead per stage: ${((p - s) / CHAIN).toFixed(2)} ms  (total per stage ${(p / CHAIN).toFixed(2)} ms)`,
  );
}

// ---- 2. 10 stages over many rows vs hand-written SQL ----
const SOURCE = `SELECT range AS id, range % 100000 AS customer, (range * 7919) % 100000 / 100.0 AS amount,
  CASE range % 4 WHEN 0 THEN 'placed' WHEN 1 THEN 'shipped' WHEN 2 THEN 'delivered' ELSE 'returned' END AS status,
  TIMESTAMP '2024-01-01' + to_seconds(range % 2592000) AS ts FROM range(${ROWS})`;
const CUSTOMERS = `SELECT range AS customer, 'c' || range AS name, CAST(range % 20 AS INTEGER) AS region FROM range(100000)`;

function tenStages(out: string): PipelineInput {
  return {
    name: 'ten',
    stages: [
      { id: 'orders', type: 'ingest', source: { kind: 'sql', sql: SOURCE } },
      { id: 'customers', type: 'ingest', source: { kind: 'sql', sql: CUSTOMERS } },
      {
        id: 'typed',
        type: 'transform',
        inputs: ['orders'],
        rules: [
          {
            map: { id: 'id', customer: 'customer', amount: 'amount', status: 'upper(status)', day: 'CAST(ts AS DATE)' },
          },
        ],
      },
      { id: 'valid', type: 'transform', inputs: ['typed'], rules: [{ filter: "status <> 'RETURNED' AND amount > 1" }] },
      {
        id: 'taxed',
        type: 'transform',
        inputs: ['valid'],
        rules: [{ map: { gross: 'round(amount * 1.19, 2)' }, keep: true }],
      },
      {
        id: 'joined',
        type: 'enrich',
        inputs: ['taxed'],
        lookup: { from: 'customers', on: ['customer'], columns: ['region'] },
      },
      {
        id: 'checked',
        type: 'quality',
        inputs: ['joined'],
        checks: [
          { type: 'not_null', column: 'region' },
          { type: 'range', column: 'amount', min: 0, max: 1000 },
        ],
      },
      {
        id: 'daily',
        type: 'transform',
        inputs: ['checked'],
        rules: [{ aggregate: { groupBy: ['region', 'day'], measures: { orders: 'count(*)', revenue: 'sum(gross)' } } }],
      },
      {
        id: 'ranked',
        type: 'transform',
        inputs: ['daily'],
        rules: [{ window: { partitionBy: ['region'], orderBy: ['revenue DESC'], columns: { rnk: 'rank()' } } }],
      },
      { id: 'out', type: 'output', inputs: ['ranked'], target: { kind: 'file', path: out } },
    ],
  };
}

async function handWritten(out: string): Promise<void> {
  const inst = await DuckDBInstance.create(':memory:');
  const c = await inst.connect();
  await c.run(`CREATE TABLE orders AS ${SOURCE}`);
  await c.run(`CREATE TABLE customers AS ${CUSTOMERS}`);
  await c.run(`CREATE VIEW joined AS
    WITH typed AS (SELECT id, customer, amount, upper(status) AS status, CAST(ts AS DATE) AS day FROM orders),
    valid AS (SELECT * FROM typed WHERE status <> 'RETURNED' AND amount > 1),
    taxed AS (SELECT *, round(amount * 1.19, 2) AS gross FROM valid)
    SELECT t.*, c.region FROM taxed t LEFT JOIN customers c ON t.customer = c.customer`);
  await c.runAndReadAll(
    'SELECT count(*), count(region), count_if(NOT coalesce(amount IS NULL OR (amount >= 0 AND amount <= 1000), false)) FROM joined',
  );
  await c.run(`COPY (WITH daily AS (SELECT region, day, count(*) AS orders, sum(gross) AS revenue FROM joined GROUP BY region, day)
    SELECT *, rank() OVER (PARTITION BY region ORDER BY revenue DESC) AS rnk FROM daily) TO '${out}' (FORMAT csv, HEADER)`);
  c.closeSync();
  inst.closeSync();
}

async function tenStageFigure(): Promise<void> {
  const pipeTimes: number[] = [];
  const sqlTimes: number[] = [];
  const reps = Math.max(1, BIG_REPEAT);
  for (let r = 0; r < reps; r++) {
    // alternate the order so neither side always runs on a warm cache
    const sides = r % 2 === 0 ? ['sql', 'pipe'] : ['pipe', 'sql'];
    for (const side of sides) {
      const out = path.join(dir, `${side}${r}.csv`);
      const t0 = performance.now();
      if (side === 'sql') {
        await handWritten(out);
        sqlTimes.push(performance.now() - t0);
      } else {
        const runner = new PipelineRunner({ dataDir: path.join(dir, `p${r}`) });
        const res = await runner.run(tenStages(out), { force: true });
        pipeTimes.push(performance.now() - t0);
        await runner.close();
        if (res.run.status !== 'succeeded') throw new Error(res.run.error ?? 'failed');
      }
    }
    const a = fs.readFileSync(path.join(dir, `sql${r}.csv`), 'utf8').split('\n').length;
    const b = fs.readFileSync(path.join(dir, `pipe${r}.csv`), 'utf8').split('\n').length;
    if (a !== b) throw new Error(`outputs differ: ${a} vs ${b} lines`);
  }
  const p = median(pipeTimes);
  const s = median(sqlTimes);
  // each repetition runs both sides back to back: their ratio is what holds on a shared machine
  const ratios = pipeTimes.map((t, i) => t / sqlTimes[i]!);
  console.log(
    `10-stage pipeline over ${ROWS.toLocaleString('en-US')} rows: ${(p / 1000).toFixed(2)} s; hand-written DuckDB SQL ${(s / 1000).toFixed(2)} s`,
  );
  console.log(
    `  ratio ${median(ratios).toFixed(2)}x (median of back-to-back pairs: ${ratios.map((x) => x.toFixed(2)).join(', ')})`,
  );
}

try {
  await overhead();
  await tenStageFigure();
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
