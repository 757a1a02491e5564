import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { quietLogger, startKafkaBroker } from '../../src/kafka/index.ts';
import { embeddedClient, openLog } from '../../src/log/index.ts';
import { Serdes, TopologyTestDriver } from '../../src/streams/index.ts';
import { eosTopology, fmtW, L, perKey, S } from './fixtures/eos-topology.ts';

const EVENTS = 6000;
const PARTITIONS = 4;
const job = path.join(import.meta.dirname, 'fixtures', 'group-job.ts');

interface Instance {
  child: ChildProcess;
  lines: string[];
  exited: Promise<number | null>;
}

function startInstance(port: number, id: string, stateDir: string): Instance {
  const child = spawn(process.execPath, [job, String(port), id, stateDir], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  let buf = '';
  child.stdout?.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, lines, exited };
}

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('two instances share a job over the Kafka broker; one is killed; the survivor finishes with exactly-once results', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'streams-failover-'));
  const log = await openLog({ dataDir: path.join(dir, 'log'), cleanerIntervalMs: 0 });
  const broker = await startKafkaBroker({ log, port: 0, logger: quietLogger });
  const client = embeddedClient(log);
  const instances: Instance[] = [];
  try {
    const admin = client.admin();
    for (const t of ['events', 'counts-out', 'windows-out']) await admin.createTopic(t, { partitions: PARTITIONS });
    const input: [string, string, number][] = [];
    for (let i = 0; i < EVENTS; i++) input.push([`u${(i * 7) % 40}`, `e${i}`, i * 10]);
    const p = client.producer();
    const records = input.map(([k, v, ts]) => ({ topic: 'events', key: k, value: v, timestamp: ts }));
    // The first half before the instances start, the second once they share the partitions: instance a then has
    // work to commit whenever it got to the first half.
    await p.send(records.slice(0, EVENTS / 2));
    // One far-future event per partition closes every window in every task.
    const flush = Array.from({ length: PARTITIONS }, (_, i) => ({
      topic: 'events',
      key: `flush${i}`,
      value: 'f',
      timestamp: EVENTS * 10 + 1_000_000,
      partition: i,
    }));

    const a = startInstance(broker.port, 'a', path.join(dir, 'state-a'));
    const b = startInstance(broker.port, 'b', path.join(dir, 'state-b'));
    instances.push(a, b);
    // Both run a share of the partitions, and the one to kill has committed some work.
    const sharing = () => {
      const last = (x: Instance) => x.lines.filter((l) => l.startsWith('running ')).at(-1);
      const pa = last(a)?.slice(8) ?? '';
      const pb = last(b)?.slice(8) ?? '';
      return pa !== '' && pb !== '' && pa.split(',').length + pb.split(',').length === PARTITIONS;
    };
    await until('both instances to share the partitions', sharing);
    const commitsOf = (x: Instance) => x.lines.filter((l) => l.startsWith('commit ')).length;
    const base = commitsOf(a);
    await p.send([...records.slice(EVENTS / 2), ...flush]);
    await until('instance a to commit', () => commitsOf(a) >= base + 1);
    a.child.kill('SIGKILL');
    await a.exited;

    // The survivor takes over every partition and processes all input.
    const all = `running ${Array.from({ length: PARTITIONS }, (_, i) => i).join(',')}`;
    await until('b to own every partition', () => b.lines.includes(all));
    const ends = (await admin.describeTopic('events')).partitions.map((x) => x.highWatermark);
    await until(
      'all input committed',
      async () => {
        const committed = await admin.fetchOffsets('eos');
        return ends.every(
          (end, i) => (committed.find((c) => c.topic === 'events' && c.partition === i)?.offset ?? -1n) >= end,
        );
      },
      90_000,
    );
    b.child.kill('SIGTERM');
    assert.equal(await b.exited, 0);

    const read = async (topic: string) => {
      const c = client.consumer({ isolation: 'read_committed', autoOffsetReset: 'earliest', maxPollRecords: 5000 });
      c.assign(Array.from({ length: PARTITIONS }, (_, i) => ({ topic, partition: i })));
      const out: { key: Buffer | null; value: Buffer | null }[] = [];
      // The killed instance's open transaction holds read_committed readers back until it times out and is
      // aborted: read until every partition's position passes its end.
      const ends = (await admin.describeTopic(topic)).partitions.map((x) => x.highWatermark);
      const deadline = Date.now() + 60_000;
      while (ends.some((end, i) => (c.position({ topic, partition: i }) ?? 0n) < end)) {
        if (Date.now() > deadline) throw new Error(`read_committed reader of ${topic} stuck before the end`);
        out.push(...(await c.poll(50)));
      }
      await c.close();
      return out;
    };
    const d = new TopologyTestDriver(eosTopology());
    const ti = d.createInputTopic('events', S, S);
    for (const [k, v, ts] of input) ti.pipeInput(k, v, ts);
    for (const f of flush) ti.pipeInput(f.key, f.value, f.timestamp);
    const counts = (await read('counts-out')).map((r) => ({
      key: S.deserialize('', r.key),
      value: L.deserialize('', r.value),
    }));
    assert.deepEqual(perKey(counts), perKey(d.createOutputTopic('counts-out', S, L).readRecordsToList()));
    const W = Serdes.Windowed(S);
    const windows = (await read('windows-out'))
      .map((r) => fmtW(W.deserialize('', r.key), L.deserialize('', r.value)))
      .sort();
    const expected = d
      .createOutputTopic('windows-out', W, L)
      .readRecordsToList()
      .map((r) => fmtW(r.key, r.value))
      .sort();
    assert.ok(expected.length > 0);
    assert.deepEqual(windows, expected);
    await p.close();
    await admin.close();
  } finally {
    for (const i of instances) i.child.kill('SIGKILL');
    await client.close();
    await broker.close();
    await log.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
