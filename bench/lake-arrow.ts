// Arrow input: append an apache-arrow Table (and its IPC bytes) beside the same rows as JS objects and
// as a DuckDB query, in the same run. Rows: LAKE_ARROW_ROWS (default 200,000).
//   node bench/lake-arrow.ts
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Table as ArrowTable, Float64, Int64, tableToIPC, Utf8, vectorFromArray } from 'apache-arrow';
import { createTable, SqliteCatalog } from '../src/lake/index.ts';

const ROWS = Number(process.env.LAKE_ARROW_ROWS ?? 200_000);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lake-arrow-bench-'));
const schema = {
  fields: [
    { id: 1, name: 'id', required: true, type: 'long' },
    { id: 2, name: 'v', required: false, type: 'double' },
    { id: 3, name: 's', required: false, type: 'string' },
  ],
};

async function main(): Promise<void> {
  console.log(
    `lake-arrow: ${ROWS.toLocaleString('en-US')} rows x 3 columns; ${os.cpus().length} cpus, load average ${os.loadavg()[0]?.toFixed(1)}`,
  );
  const ids = Array.from({ length: ROWS }, (_, i) => BigInt(i));
  const vs = Array.from({ length: ROWS }, (_, i) => i * 0.5);
  const ss = Array.from({ length: ROWS }, (_, i) => `s${i % 1000}`);
  const arrow = new ArrowTable({
    id: vectorFromArray(ids, new Int64()),
    v: vectorFromArray(vs, new Float64()),
    s: vectorFromArray(ss, new Utf8()),
  });
  const ipc = tableToIPC(arrow, 'stream');
  const rows = ids.map((id, i) => ({ id, v: vs[i], s: ss[i] }));
  const catalog = new SqliteCatalog({ warehouse: dir });
  await catalog.createNamespace(['b']);
  const inputs: [string, Parameters<Awaited<ReturnType<typeof createTable>>['append']>[0]][] = [
    [
      'DuckDB query (baseline)',
      { sql: `SELECT range AS id, range * 0.5 AS v, 's' || (range % 1000) AS s FROM range(${ROWS})` },
    ],
    ['JS rows', rows],
    ['Arrow Table', arrow],
    ['Arrow IPC stream bytes', { arrow: ipc }],
  ];
  for (const [label, input] of inputs) {
    const t = await createTable(catalog, { namespace: ['b'], name: label.replace(/\W+/g, '_') }, { schema });
    const t0 = performance.now();
    const r = await t.append(input);
    const ms = performance.now() - t0;
    console.log(
      `  ${label.padEnd(24)} ${((ROWS / ms) * 1000).toLocaleString('en-US', { maximumFractionDigits: 0 })} rows/s (${r.addedRows} rows, ${ms.toFixed(0)} ms)`,
    );
  }
  await catalog.close();
  fs.rmSync(dir, { recursive: true, force: true });
}

await main();
