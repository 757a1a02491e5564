import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { embeddedClient, openLog } from '../../src/log/index.ts';
import { TopologyTestDriver } from '../../src/streams/index.ts';
import { cepTopology, type Event, J, S } from './fixtures/cep-topology.ts';

const EVENTS = Number(process.env.TRIBUTARY_CEP_EOS_EVENTS ?? 10_000);
const USERS = 100;
const KILL_AT = 5;
const job = path.join(import.meta.dirname, 'fixtures', 'cep-job.ts');

function run(dataDir: string, stateDir: string, onLine: (line: string, child: ChildProcess) => void) {
  const child = spawn(process.execPath, [job, dataDir, stateDir], { stdio: ['ignore', 'pipe', 'inherit'] });
  let buf = '';
  child.stdout?.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      onLine(buf.slice(0, i), child);
      buf = buf.slice(i + 1);
    }
  });
  return new Promise<number | null>((resolve) =>
    child.on('exit', (code, signal) => resolve(signal === 'SIGKILL' ? null : code)),
  );
}

/** Sessions per user (LOGIN, BROWSE/PURCHASE..., LOGOUT), users interleaved; 1 s apart, so some expire. */
function events(): { e: Event; partition: number }[] {
  let seed = 7;
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x80000000;
  };
  const phase = new Array<number>(USERS).fill(0);
  const out: { e: Event; partition: number }[] = [];
  for (let i = 0; i < EVENTS; i++) {
    const u = Math.floor(rnd() * USERS);
    let eventType = 'LOGIN';
    let value = 0;
    if (phase[u] === 1) {
      const r = rnd();
      eventType = r < 0.5 ? 'PURCHASE' : r < 0.75 ? 'BROWSE' : 'LOGOUT';
      if (eventType === 'PURCHASE') value = Math.floor(rnd() * 3000);
    }
    phase[u] = eventType === 'LOGOUT' ? 0 : 1;
    out.push({ e: { eventId: `e${i}`, userId: `u${u}`, eventType, value, timestamp: i * 1000 }, partition: u % 2 });
  }
  // One late event per partition moves each task's watermark past every window.
  const end = EVENTS * 1000 + 3_600_000;
  for (const p of [0, 1])
    out.push({
      e: { eventId: `flush${p}`, userId: `flush${p}`, eventType: 'TICK', value: 0, timestamp: end },
      partition: p,
    });
  return out;
}

test(`kill -9 during an exactly-once CEP job over ${EVENTS} events: after restart no alert is lost or duplicated`, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cep-eos-kill-'));
  const dataDir = path.join(dir, 'log');
  const stateDir = path.join(dir, 'state');
  try {
    const input = events();
    {
      const log = await openLog({ dataDir, cleanerIntervalMs: 0 });
      const client = embeddedClient(log);
      for (const t of ['events', 'alerts', 'alert-timeouts']) await client.admin().createTopic(t, { partitions: 2 });
      const p = client.producer({ lingerMs: 0 });
      const V = J<Event>();
      for (let i = 0; i < input.length; i += 2000)
        await p.send(
          input.slice(i, i + 2000).map(({ e, partition }) => ({
            topic: 'events',
            key: S.serialize('events', e.userId),
            value: V.serialize('events', e),
            timestamp: e.timestamp,
            partition,
          })),
        );
      await client.close();
      await log.close();
    }
    const first = await run(dataDir, stateDir, (line, child) => {
      if (line === `commit ${KILL_AT}`) child.kill('SIGKILL');
    });
    assert.equal(first, null, 'the first run was killed before finishing');
    const second = await run(dataDir, stateDir, () => {});
    assert.equal(second, 0);

    const log = await openLog({ dataDir, cleanerIntervalMs: 0 });
    const client = embeddedClient(log);
    const read = async (topic: string) => {
      const c = client.consumer({ isolation: 'read_committed', autoOffsetReset: 'earliest', maxPollRecords: 5000 });
      c.assign([
        { topic, partition: 0 },
        { topic, partition: 1 },
      ]);
      const out: string[] = [];
      for (let idle = 0; idle < 3; ) {
        const recs = await c.poll(50);
        idle = recs.length === 0 ? idle + 1 : 0;
        for (const r of recs)
          out.push(`${S.deserialize(topic, r.key)} ${JSON.stringify(J().deserialize(topic, r.value))}`);
      }
      await c.close();
      return out.sort();
    };
    const alerts = await read('alerts');
    const timeouts = await read('alert-timeouts');
    await client.close();
    await log.close();

    // The uninterrupted run, in memory (matching is per key, so one task gives the same results).
    const d = new TopologyTestDriver(cepTopology());
    const ti = d.createInputTopic('events', S, J<Event>());
    for (const { e } of input) ti.pipeInput(e.userId, e, e.timestamp);
    const fmt = (r: { key: string | null; value: unknown }) => `${r.key} ${JSON.stringify(r.value)}`;
    const expectedAlerts = d.createOutputTopic('alerts', S, J()).readRecordsToList().map(fmt).sort();
    const expectedTimeouts = d.createOutputTopic('alert-timeouts', S, J()).readRecordsToList().map(fmt).sort();
    assert.ok(expectedAlerts.length > 20, `enough alerts to be meaningful (${expectedAlerts.length})`);
    assert.ok(expectedTimeouts.length > 0);
    assert.deepEqual(alerts, expectedAlerts, 'every alert exactly once');
    assert.deepEqual(timeouts, expectedTimeouts, 'every timeout exactly once');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
