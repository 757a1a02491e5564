/**
 * `tributary demo --events N --exit`: runs the whole story in a child process and checks its report against
 * what the generator says it produced (the same seed gives the same events).
 */

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { runPattern } from '../../src/cep/index.ts';
import { closingRecords, generate, PATTERN_FILE } from '../../src/server/demo/index.ts';
import type { DemoReport } from '../../src/server/demo/run.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const NODE = path.join(ROOT, 'node_modules/.bin/node');

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(NODE, [path.join(ROOT, 'test/e2e/demo-cli.ts'), 'demo', ...args], { cwd: ROOT });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('tributary demo --events 1500 --exit: every stage ran and the report adds up', async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-demo-test-'));
  try {
    const events = 1500;
    const { code, stdout, stderr } = await run(['--events', String(events), '--exit', '--json', '--data-dir', dataDir]);
    assert.equal(code, 0, stderr);
    // The report is the JSON document at the end of stdout (the broker may log lines before it).
    const at = stdout.indexOf('\n{\n');
    const report = JSON.parse(stdout.startsWith('{\n') ? stdout : stdout.slice(at + 1)) as DemoReport;

    // What the generator produced with the default seed.
    const gen = generate({ events, seed: 42 });
    const closing = closingRecords(gen.last, 12);
    const valid = gen.records.filter((r) => r.kind === 'valid').length + closing.length;
    assert.equal(report.events.produced, events + closing.length);
    assert.equal(report.events.valid, valid);
    assert.ok(report.events.invalid > 0 && report.events.outOfOrder > 0);
    assert.equal(report.deadLetters, report.events.invalid, 'every invalid event is in the dead-letter topic');

    // Every valid event landed exactly once in the lake, and in the datasource.
    const events_ = report.tables.find((t) => t.name === 'demo.events');
    assert.ok(events_);
    assert.equal(events_.rows, valid);
    assert.match(events_.partitionSpec, /day\(ts\).*bucket\[16\]\(user_id\)/);
    assert.ok(events_.columns.includes('device'), 'the new field evolved the schema');
    assert.ok(report.schemaChanges.some((c) => c.includes('device')));
    const ds = report.stages.find((s) => s.stage.startsWith('datasource'));
    assert.equal(ds?.records, valid);

    // The alerts are what the pattern finds over the valid events (reference: runPattern, per user in event time).
    const pattern = JSON.parse(fs.readFileSync(PATTERN_FILE, 'utf8'));
    const validEvents = [...gen.records, ...closing].flatMap((r) => (r.event ? [r.event] : []));
    const reference = runPattern(pattern, validEvents as never, { key: 'userId', time: 'timestamp' });
    assert.ok(reference.matches.length > 0);
    assert.equal(report.alerts.count, reference.matches.length);

    // Windows came out, the pipeline succeeded with quality and lineage, queries answered.
    assert.ok(report.windows.countryWindows > 0 && report.windows.typeWindows > 0);
    assert.equal(report.pipeline.status, 'succeeded');
    assert.ok(report.pipeline.stages.every((s) => s.status === 'succeeded'));
    assert.ok(report.pipeline.quality !== null && report.pipeline.quality > 0.95);
    assert.ok(report.lineage.some((e) => e.from === 'iceberg:demo.events' && e.to === 'iceberg:demo.daily_users'));
    assert.ok(
      report.lineage.some((e) => e.from === 'topic:commerce-events' && e.to === 'topic:commerce-events-enriched'),
    );
    const daily = report.tables.find((t) => t.name === 'demo.daily_users');
    assert.ok(daily && daily.rows > 0);
    for (const q of report.queries) assert.ok(q.rows.length > 0 && !('error' in (q.rows[0] as object)), q.title);
    assert.match(report.consoleUrl, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
