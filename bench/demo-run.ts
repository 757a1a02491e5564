/**
 * Times the demo end to end (`tributary demo --exit` as a function) and prints its per-stage figures, beside a
 * baseline measured in the same run: producing the same records to a bare embedded log.
 *
 *   node bench/demo-run.ts [--events N]   (default: the demo's default event count)
 */

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { embeddedClient, openLog } from '../src/log/index.ts';
import { DEFAULT_EVENTS, generate, runDemo } from '../src/server/demo/index.ts';

const arg = process.argv.indexOf('--events');
const events = arg > 0 ? Number(process.argv[arg + 1]) : DEFAULT_EVENTS;

// Baseline: generate and produce the same records to an embedded log, nothing else.
const baseDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-demo-bench-'));
const tb = performance.now();
const gen = generate({ events, seed: 42 });
const log = await openLog({ dataDir: path.join(baseDir, 'log') });
await log.createTopic('raw', { partitions: 1 });
const producer = embeddedClient(log).producer({ lingerMs: 5 });
for (let i = 0; i < gen.records.length; i += 2000)
  await producer.send(gen.records.slice(i, i + 2000).map((r) => ({ topic: 'raw', key: r.key, value: r.value })));
await producer.close();
await log.close();
const baselineS = (performance.now() - tb) / 1000;
fs.rmSync(baseDir, { recursive: true, force: true });

const t0 = performance.now();
const demo = await runDemo({ events, out: process.stderr, progress: false });
const totalS = (performance.now() - t0) / 1000;
await demo.close();
fs.rmSync(demo.report.dataDir, { recursive: true, force: true });

console.log(`demo, ${events} events, load average ${os.loadavg()[0]?.toFixed(1)} on ${os.cpus().length} cores`);
console.log(`  whole demo (platform start to report): ${totalS.toFixed(1)} s`);
for (const s of demo.report.stages)
  console.log(`  ${s.stage.padEnd(40)} ${String(s.records).padStart(8)} records ${String(s.perSecond).padStart(8)} /s`);
console.log(
  `  baseline: generate + produce to a bare log: ${baselineS.toFixed(2)} s (${Math.round(events / baselineS)} events/s)`,
);
console.log(`  ratio demo / baseline: ${(totalS / baselineS).toFixed(1)}x`);
