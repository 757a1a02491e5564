import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { embeddedClient, openLog } from '../../src/log/index.ts';
import { Serdes, TopologyTestDriver, type Windowed } from '../../src/streams/index.ts';
import { eosTopology, L, S } from './fixtures/eos-topology.ts';

// The 1,000,000 events (TRIBUTARY_EOS_EVENTS overrides for quick local runs).
const EVENTS = Number(process.env.TRIBUTARY_EOS_EVENTS ?? 1_000_000); // ~30 s on 2 cores
const KEYS = 50;
// Commit after which the first run is killed (raise it with the event count to kill mid-way through a big run).
const KILL_AT = Number(process.env.TRIBUTARY_EOS_KILL_AT ?? 5);
const node = process.execPath;
const job = path.join(import.meta.dirname, 'fixtures', 'eos-job.ts');

function run(
  dataDir: string,
  stateDir: string,
  onLine: (line: string, child: ChildProcess) => void,
): Promise<number | null> {
  const child = spawn(node, [job, dataDir, stateDir], { stdio: ['ignore', 'pipe', 'inherit'] });
  let buf = '';
  child.stdout?.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      onLine(buf.slice(0, i), child);
      buf = buf.slice(i + 1);
    }
  });
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve(signal === 'SIGKILL' ? null : code)));
}

function events(): [string, string, number, number][] {
  const out: [string, string, number, number][] = [];
  for (let i = 0; i < EVENTS; i++) out.push([`u${(i * 7) % KEYS}`, `e${i}`, i * 10, i % 2]);
  // One late-timestamped event per partition closes every window in every task.
  out.push(['flush0', 'f', EVENTS * 10 + 1_000_000, 0], ['flush1', 'f', EVENTS * 10 + 1_000_000, 1]);
  return out;
}

test(`kill -9 during an exactly-once job over ${EVENTS} events; the restarted job's committed output equals an uninterrupted run`, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'streams-eos-kill-'));
  const dataDir = path.join(dir, 'log');
  const stateDir = path.join(dir, 'state');
  try {
    const input = events();
    {
      const log = await openLog({ dataDir, cleanerIntervalMs: 0 });
      const client = embeddedClient(log);
      const admin = client.admin();
      for (const t of ['events', 'counts-out', 'windows-out']) await admin.createTopic(t, { partitions: 2 });
      const p = client.producer({ lingerMs: 0 });
      for (let i = 0; i < input.length; i += 2000)
        await p.send(
          input
            .slice(i, i + 2000)
            .map(([k, v, ts, partition]) => ({ topic: 'events', key: k, value: v, timestamp: ts, partition })),
        );
      await client.close();
      await log.close();
    }

    // First run: killed with SIGKILL after a few commits.
    let killedAfter = 0;
    const first = await run(dataDir, stateDir, (line, child) => {
      const m = /^commit (\d+)$/.exec(line);
      if (m !== null && Number(m[1]) === KILL_AT) {
        killedAfter = KILL_AT;
        child.kill('SIGKILL');
      }
    });
    assert.equal(first, null, 'the first run was killed before finishing');
    assert.equal(killedAfter, KILL_AT);

    // Second run: resumes from the last commit and finishes.
    let restored = -1;
    const second = await run(dataDir, stateDir, (line) => {
      const m = /^restored (\d+)$/.exec(line);
      if (m !== null) restored = Number(m[1]);
    });
    assert.equal(second, 0);
    process.stderr.write(
      `eos-kill: ${EVENTS} events, killed after commit ${KILL_AT}, restart restored ${restored} changelog records\n`,
    );
    assert.ok(restored >= 0);

    // Read both outputs read_committed.
    const log = await openLog({ dataDir, cleanerIntervalMs: 0 });
    const client = embeddedClient(log);
    const read = async (topic: string) => {
      const c = client.consumer({ isolation: 'read_committed', autoOffsetReset: 'earliest', maxPollRecords: 5000 });
      c.assign([
        { topic, partition: 0 },
        { topic, partition: 1 },
      ]);
      const out: { key: Buffer | null; value: Buffer | null }[] = [];
      for (let idle = 0; idle < 3; ) {
        const recs = await c.poll(50);
        idle = recs.length === 0 ? idle + 1 : 0;
        out.push(...recs);
      }
      await c.close();
      return out;
    };
    const counts = await read('counts-out');
    const windows = await read('windows-out');
    await client.close();
    await log.close();

    // The uninterrupted run, in memory.
    const d = new TopologyTestDriver(eosTopology());
    const ti = d.createInputTopic('events', S, S);
    for (const [k, v, ts] of input) ti.pipeInput(k, v, ts);
    const expectedCounts = d.createOutputTopic('counts-out', S, L).readRecordsToList();
    const expectedWindows = d.createOutputTopic('windows-out', Serdes.Windowed(S), L).readRecordsToList();

    const perKey = (rows: { key: string | null; value: number | null }[]) => {
      const m = new Map<string, number[]>();
      for (const r of rows) {
        const list = m.get(String(r.key));
        if (list === undefined) m.set(String(r.key), [r.value as number]);
        else list.push(r.value as number);
      }
      return m;
    };
    const actualCounts = perKey(
      counts.map((r) => ({ key: S.deserialize('', r.key), value: L.deserialize('', r.value) })),
    );
    assert.deepEqual(actualCounts, perKey(expectedCounts), 'every count update exactly once, in order per key');
    const W = Serdes.Windowed(S);
    const fmtW = (k: Windowed<string> | null, v: number | null) => `${k?.key}@${k?.window.start}=${v}`;
    const actualW = windows.map((r) => fmtW(W.deserialize('', r.key), L.deserialize('', r.value))).sort();
    const expectedW = expectedWindows.map((r) => fmtW(r.key, r.value)).sort();
    assert.ok(expectedW.length >= (EVENTS * 10) / 1000, 'windows closed');
    assert.equal(actualW.length, expectedW.length);
    assert.deepEqual(actualW, expectedW, 'every final window exactly once');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
