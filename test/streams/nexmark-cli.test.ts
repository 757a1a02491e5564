import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { it } from 'node:test';
import { Command } from 'commander';
import { registerBenchCommands } from '../../src/cli/bench.ts';
import { canonicalRows, type NexmarkEvent, referenceResults } from '../../src/streams/index.ts';

it('tributary bench nexmark runs a query over the embedded log and dumps events and results', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nexmark-cli-'));
  const logs: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => logs.push(a.join(' '));
  try {
    const program = new Command('tributary').exitOverride();
    registerBenchCommands(program);
    const ev = path.join(dir, 'events.ndjson');
    const res = path.join(dir, 'results.ndjson');
    await program.parseAsync(
      ['bench', 'nexmark', '--query', 'q5', '--events', '20000', '--seed', '5', '--rate', '1000'].concat([
        '--dump-events',
        ev,
        '--dump-results',
        res,
      ]),
      { from: 'user' },
    );
    console.log = log;
    const events = fs
      .readFileSync(ev, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as NexmarkEvent);
    assert.equal(events.length, 20_000);
    assert.deepEqual(Object.keys(events[0] as object), ['event_type', 'person', 'auction', 'bid']);
    const rows = fs
      .readFileSync(res, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    // The dumped results are what the query computes over the dumped events.
    const want = referenceResults('q5', events);
    assert.ok(want.length > 0);
    assert.deepEqual(canonicalRows(rows), canonicalRows(want));
    assert.ok(logs.some((l) => /events\/s/.test(l) && /job/.test(l)));
    assert.ok(logs.some((l) => /hand-written loop/.test(l)));
    assert.ok(logs.some((l) => /equal to/.test(l)));
  } finally {
    console.log = log;
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

it('tributary bench nexmark rejects an unknown query', async () => {
  const program = new Command('tributary').exitOverride();
  registerBenchCommands(program);
  await assert.rejects(program.parseAsync(['bench', 'nexmark', '--query', 'q99'], { from: 'user' }), /--query/);
});
