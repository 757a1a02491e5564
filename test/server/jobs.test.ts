import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { embeddedClient } from '../../src/log/index.ts';
import { type Platform, startPlatform } from '../../src/server/index.ts';
import { compileJobSpec, KafkaStreams } from '../../src/streams/index.ts';

type Json = Record<string, unknown>;

let dir: string;
let platform: Platform | undefined;

async function start(): Promise<Platform> {
  platform = await startPlatform({ dataDir: dir, kafkaPort: 0, httpPort: 0, commitIntervalMs: 30 });
  return platform;
}

async function restart(): Promise<Platform> {
  await platform?.close();
  platform = undefined;
  return start();
}

async function http(method: string, route: string, body?: unknown): Promise<{ status: number; json: Json }> {
  const p = platform as Platform;
  const r = await fetch(`http://127.0.0.1:${p.httpPort}${route}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await r.text();
  return { status: r.status, json: text === '' ? {} : (JSON.parse(text) as Json) };
}

async function produce(topic: string, values: { key?: string; value: unknown; timestamp?: number }[]): Promise<void> {
  const producer = embeddedClient((platform as Platform).log).producer();
  try {
    await producer.send(
      values.map((v) => ({
        topic,
        key: v.key ?? null,
        value: typeof v.value === 'string' ? v.value : JSON.stringify(v.value),
        ...(v.timestamp === undefined ? {} : { timestamp: v.timestamp }),
      })),
    );
  } finally {
    await producer.close();
  }
}

/** Every committed record of a topic (read_committed), in offset order per partition. */
async function readCommitted(topic: string): Promise<{ key: string; value: Json }[]> {
  const p = platform as Platform;
  const d = p.log.describeTopic(topic);
  if (d === undefined) return [];
  const consumer = embeddedClient(p.log).consumer({ isolation: 'read_committed' });
  const out: { key: string; value: Json }[] = [];
  try {
    const tps = d.partitions.map((x) => ({ tp: { topic, partition: x.partition }, end: x.lastStableOffset }));
    consumer.assign(tps.map((t) => t.tp));
    for (const t of tps) consumer.seek(t.tp, 0n);
    while (!tps.every((t) => (consumer.position(t.tp) ?? 0n) >= t.end))
      for (const r of await consumer.poll(50))
        out.push({ key: r.key?.toString() ?? '', value: JSON.parse(r.value?.toString() ?? 'null') as Json });
  } finally {
    await consumer.close();
  }
  return out;
}

async function until<T>(what: string, fn: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const v = await fn();
    if (ok(v)) return v;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}; last: ${JSON.stringify(v).slice(0, 500)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Per user, the counts a per-key count emits must be exactly 1..n: no record lost, none counted twice. */
function assertCountsExactlyOnce(rows: { key: string; value: Json }[], perUser: Map<string, number>): void {
  const seen = new Map<string, number[]>();
  for (const r of rows) seen.set(r.key, [...(seen.get(r.key) ?? []), r.value.n as number]);
  for (const [user, n] of perUser)
    assert.deepEqual(
      seen.get(user),
      Array.from({ length: n }, (_, i) => i + 1),
      `counts of ${user}`,
    );
  assert.equal(seen.size, perUser.size);
}

describe('jobs over HTTP', () => {
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-jobs-'));
    await start();
  });
  after(async () => {
    await platform?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('submit, inspect, pause, resume, survive restarts exactly once, stop', async () => {
    const actions: string[] = [];
    const onJob = (m: unknown) => {
      const e = m as { id: string; action: string };
      if (e.id === 'counts') actions.push(e.action);
    };
    diagnostics.subscribe('tributary:server:job', onJob);
    await (platform as Platform).log.createTopic('clicks', { partitions: 2 });
    const spec = {
      name: 'counts',
      source: { topics: ['clicks'] },
      key: 'user',
      aggregations: [{ name: 'n', fn: 'count' }],
      output: { topic: 'counts-out' },
    };

    // Validation names the field and what was expected.
    const bad = await http('POST', '/api/v1/jobs', { ...spec, aggregations: [{ name: 's', fn: 'sum' }] });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error, 'INVALID_ARGUMENT');
    assert.match(String(bad.json.message), /^spec\.aggregations\.0\.field: sum needs a field/);
    const badName = await http('POST', '/api/v1/jobs', { ...spec, name: '../x' });
    assert.equal(badName.status, 400);
    assert.match(String(badName.json.message), /^spec\.name: /);
    const noTopic = await http('POST', '/api/v1/jobs', { ...spec, source: { topics: ['nope'] } });
    assert.equal(noTopic.status, 400);
    assert.match(String(noTopic.json.message), /spec\.source\.topics: topic "nope" does not exist/);
    const notJson = await fetch(`http://127.0.0.1:${(platform as Platform).httpPort}/api/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"name":',
    });
    assert.equal(notJson.status, 400);

    const created = await http('POST', '/api/v1/jobs', spec);
    assert.equal(created.status, 201, JSON.stringify(created.json));
    assert.equal(created.json.id, 'counts');
    assert.equal(created.json.state, 'RUNNING');
    assert.equal((await http('POST', '/api/v1/jobs', spec)).status, 409);
    assert.equal((await http('GET', '/api/v1/jobs/bad$name')).status, 400);
    assert.equal((await http('GET', '/api/v1/jobs/missing')).status, 404);

    const perUser = new Map<string, number>();
    const send = async (n: number) => {
      const batch = Array.from({ length: n }, (_, i) => {
        const user = `u${i % 3}`;
        perUser.set(user, (perUser.get(user) ?? 0) + 1);
        return { key: user, value: { user, i } };
      });
      await produce('clicks', batch);
    };
    const total = () => [...perUser.values()].reduce((a, b) => a + b, 0);
    await send(60);
    let rows = await until(
      '60 counts',
      () => readCommitted('counts-out'),
      (r) => r.length >= total(),
    );
    assertCountsExactlyOnce(rows, perUser);

    const detail = await until(
      'metrics',
      () => http('GET', '/api/v1/jobs/counts'),
      (d) => ((d.json.metrics as Json | null)?.recordsOut as number) >= 60,
    );
    const metrics = detail.json.metrics as Json;
    assert.ok((metrics.recordsIn as number) >= 60);
    assert.ok((metrics.stateEntries as number) >= 3, 'three users in the count store');
    assert.equal(typeof metrics.lag, 'number');
    const topology = detail.json.topology as { nodes: { id: string; kind: string }[]; edges: unknown[] };
    assert.ok(topology.nodes.some((n) => n.kind === 'source'));
    assert.ok(topology.nodes.some((n) => n.kind === 'sink'));
    assert.ok(topology.edges.length >= topology.nodes.length - 1);
    const prom = await (await fetch(`http://127.0.0.1:${(platform as Platform).httpPort}/metrics`)).text();
    const line = prom.split('\n').find((l) => l.startsWith('tributary_job_records_out{job="counts",kind="job"}'));
    assert.ok(line !== undefined && Number(line.split(' ')[1]) >= 60, `job metrics on /metrics: ${line}`);
    const list = await http('GET', '/api/v1/jobs');
    assert.deepEqual(
      (list.json.jobs as Json[]).map((j) => [j.id, j.kind, j.state]),
      [['counts', 'job', 'RUNNING']],
    );

    // Paused: input waits; a paused job stays paused across a restart.
    const paused = await http('POST', '/api/v1/jobs/counts/pause');
    assert.equal(paused.json.state, 'PAUSED');
    await send(30);
    await restart();
    assert.equal((await http('GET', '/api/v1/jobs/counts')).json.state, 'PAUSED');
    const resumed = await http('POST', '/api/v1/jobs/counts/resume');
    assert.equal(resumed.status, 200, JSON.stringify(resumed.json));
    assert.equal(resumed.json.state, 'RUNNING');
    await send(30);
    rows = await until(
      '120 counts',
      () => readCommitted('counts-out'),
      (r) => r.length >= total(),
    );
    assertCountsExactlyOnce(rows, perUser);

    // A running job is started again by the next server, from its committed offsets and state.
    await restart();
    assert.equal((await http('GET', '/api/v1/jobs/counts')).json.state, 'RUNNING');
    await send(30);
    rows = await until(
      '150 counts',
      () => readCommitted('counts-out'),
      (r) => r.length >= total(),
    );
    assert.equal(total(), 150);
    assertCountsExactlyOnce(rows, perUser);

    const stopped = await http('DELETE', '/api/v1/jobs/counts');
    assert.equal(stopped.status, 200);
    assert.equal((await http('GET', '/api/v1/jobs/counts')).status, 404);
    await restart();
    assert.deepEqual((await http('GET', '/api/v1/jobs')).json, { jobs: [] });
    diagnostics.unsubscribe('tributary:server:job', onJob);
    assert.deepEqual(actions, ['submitted', 'paused', 'resumed', 'stopped']);
  });

  test('CEP patterns: submit, alerts, replace a running pattern, restart, pause and stop', async () => {
    const p = platform as Platform;
    await p.log.createTopic('events', { partitions: 1 });
    const T0 = Date.UTC(2026, 0, 1);
    const aThenB = {
      within: '1m',
      stages: [
        { name: 'a', where: "type == 'A'" },
        { name: 'b', contiguity: 'followedBy', where: "type == 'B'" },
      ],
    };
    const job = {
      id: 'ab',
      pattern: aThenB,
      source: { topic: 'events', keyField: 'user', timeField: 'ts' },
      output: { topic: 'ab-alerts' },
    };
    const noId = await http('POST', '/api/v1/patterns', { ...job, id: undefined });
    assert.equal(noId.status, 400);
    assert.match(String(noId.json.message), /^spec\.id: expected an id/);
    const badExpr = await http('POST', '/api/v1/patterns', {
      ...job,
      pattern: { stages: [{ name: 'a', where: "type == 'A" }] },
    });
    assert.equal(badExpr.status, 400);
    assert.match(String(badExpr.json.message), /^pattern\.stages\.0\.where: /);
    const badField = await http('POST', '/api/v1/patterns', { ...job, source: { topic: 'events' } });
    assert.equal(badField.status, 400);
    assert.match(String(badField.json.message), /^spec\.source\.keyField: /);

    const created = await http('POST', '/api/v1/patterns', job);
    assert.equal(created.status, 201, JSON.stringify(created.json));
    assert.equal(created.json.kind, 'pattern');

    const ev = (user: string, type: string, at: number) => ({ value: { user, type, ts: T0 + at } });
    // u1 matches; u2 does not (C is not B); the last event moves the watermark past them.
    await produce('events', [ev('u1', 'A', 0), ev('u2', 'A', 100), ev('u1', 'B', 1000), ev('u2', 'C', 2000)]);
    await produce('events', [ev('z', 'X', 600_000)]);
    const alerts = async () => (await http('GET', '/api/v1/cep/alerts')).json.alerts as Json[];
    let got = await until('the first alert', alerts, (a) => a.length >= 1);
    assert.deepEqual(
      got.map((a) => [a.pattern, a.key, Object.keys(a.match as Json)]),
      [['ab', 'u1', ['a', 'b']]],
    );

    // Replace the running pattern: now A followed by C.
    const aThenC = { ...aThenB, stages: [aThenB.stages[0], { ...aThenB.stages[1], where: "type == 'C'" }] };
    const changeTopic = await http('PUT', '/api/v1/patterns/ab', { ...job, output: { topic: 'other' } });
    assert.equal(changeTopic.status, 409);
    assert.match(String(changeTopic.json.message), /^spec\.output: /);
    const replaced = await http('PUT', '/api/v1/patterns/ab', { pattern: aThenC });
    assert.equal(replaced.status, 200, JSON.stringify(replaced.json));
    await produce('events', [ev('u3', 'A', 700_000), ev('u3', 'B', 701_000), ev('u3', 'C', 702_000)]);
    await produce('events', [ev('z', 'X', 1_400_000)]);
    got = await until('the alert of the new pattern', alerts, (a) => a.length >= 2);
    assert.deepEqual(
      got.map((a) => a.key),
      ['u1', 'u3'],
    );
    assert.equal((((got[1] as Json).match as Json).b as Json[])[0]?.type, 'C');

    // After a restart the job runs the replaced pattern and emits no alert twice.
    await restart();
    const back = await http('GET', '/api/v1/patterns/ab');
    assert.equal(back.json.state, 'RUNNING');
    assert.deepEqual((back.json.spec as Json).pattern, aThenC);
    await produce('events', [ev('u4', 'A', 1_500_000), ev('u4', 'C', 1_501_000), ev('z', 'X', 2_200_000)]);
    got = await until('the alert after the restart', alerts, (a) => a.length >= 3);
    assert.deepEqual(
      got.map((a) => a.key),
      ['u1', 'u3', 'u4'],
    );
    assert.equal(((await http('GET', '/api/v1/cep/alerts?limit=1')).json.alerts as Json[])[0]?.key, 'u4');
    assert.equal((await http('GET', '/api/v1/cep/alerts?limit=0')).status, 400);

    // The jobs list shows pattern jobs too; pattern routes refuse stream jobs' ids and bad names.
    assert.deepEqual(
      ((await http('GET', '/api/v1/patterns')).json.patterns as Json[]).map((j) => j.id),
      ['ab'],
    );
    assert.ok(((await http('GET', '/api/v1/jobs')).json.jobs as Json[]).some((j) => j.id === 'ab'));
    assert.equal((await http('POST', '/api/v1/patterns/a..b%24/pause')).status, 400);
    // Replaced while paused: the resumed job runs the new pattern, not the one its state last ran.
    assert.equal((await http('POST', '/api/v1/patterns/ab/pause')).json.state, 'PAUSED');
    const aThenD = { ...aThenB, stages: [aThenB.stages[0], { ...aThenB.stages[1], where: "type == 'D'" }] };
    const whilePaused = await http('PUT', '/api/v1/patterns/ab', { pattern: aThenD });
    assert.equal(whilePaused.json.state, 'PAUSED');
    assert.equal((await http('POST', '/api/v1/patterns/ab/resume')).json.state, 'RUNNING');
    await produce('events', [
      ev('u5', 'A', 2_300_000),
      ev('u6', 'A', 2_300_500),
      ev('u6', 'C', 2_301_000),
      ev('u5', 'D', 2_302_000),
      ev('z', 'X', 3_000_000),
    ]);
    got = await until('the alert of the pattern replaced while paused', alerts, (a) => a.length >= 4);
    assert.deepEqual(
      got.map((a) => a.key),
      ['u1', 'u3', 'u4', 'u5'],
    );
    assert.equal((await http('DELETE', '/api/v1/patterns/ab')).status, 200);
    assert.deepEqual((await http('GET', '/api/v1/patterns')).json, { patterns: [] });
  });

  test('a job run by code in this process can be attached: listed with metrics, not managed over HTTP', async () => {
    const p = platform as Platform;
    await p.log.createTopic('attached-in', { partitions: 1 });
    await p.log.createTopic('attached-out', { partitions: 1 });
    const topology = compileJobSpec({
      name: 'copy',
      source: { topics: ['attached-in'] },
      output: { topic: 'attached-out' },
    });
    const streams = new KafkaStreams(topology, { applicationId: 'attached-copy', client: embeddedClient(p.log) });
    await streams.start();
    const detach = p.jobs.attach('copy', streams, topology);
    try {
      assert.throws(() => p.jobs.attach('copy', streams, topology), /already|exists/);
      await produce('attached-in', [{ value: { x: 1 } }, { value: { x: 2 } }]);
      const d = await until(
        'the attached job to copy',
        () => http('GET', '/api/v1/jobs/copy'),
        (r) => ((r.json.metrics as Json | null)?.recordsOut as number) >= 2,
      );
      assert.equal(d.json.kind, 'attached');
      assert.equal(d.json.state, 'RUNNING', JSON.stringify(d.json.error));
      assert.deepEqual(d.json.sources, ['attached-in']);
      const pause = await http('POST', '/api/v1/jobs/copy/pause');
      assert.equal(pause.status, 409);
      assert.match(String(pause.json.message), /cannot be paused, resumed or stopped over HTTP/);
    } finally {
      detach();
      await streams.close();
    }
    assert.equal((await http('GET', '/api/v1/jobs/copy')).status, 404);
    await restart();
    assert.equal((await http('GET', '/api/v1/jobs/copy')).status, 404, 'attached jobs are not persisted');
  });
});
