import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { type PipelineInput, PipelineRunner, type RecordBatch } from '../../src/pipeline/index.ts';

let dir: string;
let runner: PipelineRunner;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipeline-dag-'));
  runner = new PipelineRunner({ dataDir: dir });
});
after(async () => {
  await runner.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

// A random DAG: stage i reads a non-empty subset of the stages before it (stage 0 is the source).
const dagArb = fc
  .integer({ min: 2, max: 7 })
  .chain((n) =>
    fc.tuple(
      fc.constant(n),
      fc.tuple(
        ...Array.from({ length: n - 1 }, (_, i) =>
          fc.uniqueArray(fc.integer({ min: 0, max: i }), { minLength: 1, maxLength: 3 }),
        ),
      ),
      fc.integer({ min: 1, max: 4 }),
    ),
  );

test('property: on random DAGs every stage starts after its inputs end, and row counts match a reference evaluator', async () => {
  let seq = 0;
  await fc.assert(
    fc.asyncProperty(dagArb, async ([n, deps, concurrency]) => {
      const events: string[] = [];
      const track = (id: string) =>
        async function trackFn(rows: RecordBatch): Promise<RecordBatch> {
          events.push(`start ${id}`);
          await new Promise((r) => setImmediate(r));
          events.push(`end ${id}`);
          return rows;
        };
      const stages: PipelineInput['stages'] = [
        { id: 's0', type: 'ingest', source: { kind: 'sql', sql: 'SELECT range AS x FROM range(3)' } },
      ];
      deps.forEach((d, j) => {
        const id = `s${j + 1}`;
        const [first, ...rest] = d.map((k) => `s${k}`);
        stages.push({
          id,
          type: 'transform',
          inputs: [first!],
          rules: [...(rest.length ? [{ union: rest }] : []), { fn: track(id) }],
        });
      });
      const sinks = Array.from({ length: n }, (_, i) => i).filter((i) => !deps.some((d) => d.includes(i)));
      for (const i of sinks)
        stages.push({
          id: `out${i}`,
          type: 'output',
          inputs: [`s${i}`],
          target: { kind: 'file', path: path.join(dir, `dag${seq}-s${i}.csv`) },
        });
      const r = await runner.run({ name: `dag${seq++}`, concurrency, stages });
      assert.equal(r.run.status, 'succeeded', r.run.error ?? '');
      // reference: rows(s0) = 3, rows(si) = sum of rows of its inputs (UNION ALL)
      const rows = [3];
      for (const d of deps) rows.push(d.reduce((a, k) => a + rows[k]!, 0));
      for (let i = 1; i < n; i++) {
        const start = events.indexOf(`start s${i}`);
        assert.ok(start >= 0, `s${i} ran`);
        for (const k of deps[i - 1]!)
          if (k > 0) assert.ok(events.indexOf(`end s${k}`) < start, `s${k} ends before s${i} starts`);
      }
      for (const i of sinks)
        assert.equal(r.stages.find((s) => s.stageId === `out${i}`)!.rows, rows[i], `rows of s${i}`);
    }),
    { numRuns: 15 },
  );
});
