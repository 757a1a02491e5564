/** The demo's parts: the seeded generator, the bundled geolocation table, the exactly-once lake sink. */

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { loadTable, SqliteCatalog } from '../../src/lake/index.ts';
import { embeddedClient, openLog } from '../../src/log/index.ts';
import {
  EVENTS_TABLE,
  generate,
  geolocate,
  IP_RANGES,
  OFFSETS_PROPERTY,
  prng,
  runDemo,
  startLakeSink,
  validateEvent,
} from '../../src/server/demo/index.ts';

test('generator: the same seed gives the same events; invalid, out-of-order and a late new field are mixed in', () => {
  const a = generate({ events: 3000, seed: 7 });
  const b = generate({ events: 3000, seed: 7 });
  const c = generate({ events: 3000, seed: 8 });
  assert.deepEqual(a.records, b.records);
  assert.notDeepEqual(a.records, c.records);
  assert.equal(a.records.length, 3000);
  const invalid = a.records.filter((r) => r.kind === 'invalid');
  assert.equal(invalid.length, 60);
  for (const r of invalid) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(r.value);
    } catch {
      parsed = undefined;
    }
    assert.equal(validateEvent(parsed), false, r.value);
  }
  const valid = a.records.filter((r) => r.kind === 'valid');
  for (const r of valid) assert.equal(validateEvent(JSON.parse(r.value)), true, r.value);
  let late = 0;
  let max = 0;
  for (const r of valid) {
    if (r.timestamp < max) late++;
    max = Math.max(max, r.timestamp);
  }
  assert.ok(late > 0, 'some events arrive out of order');
  const withDevice = valid.filter((r) => r.event?.device !== undefined);
  assert.ok(withDevice.length > 0 && withDevice.length < valid.length);
  assert.ok(new Set(valid.map((r) => r.event?.userId)).size > 50, 'many users');
  const types = new Set(valid.map((r) => r.event?.eventType));
  assert.deepEqual([...types].sort(), ['ADD_TO_CART', 'LOGIN', 'LOGOUT', 'PAGE_VIEW', 'PURCHASE']);
});

test('geolocation: binary search over the bundled ranges agrees with a linear scan', () => {
  const toInt = (ip: string) => ip.split('.').reduce((n, p) => n * 256 + Number(p), 0);
  const rnd = prng(3);
  for (let i = 0; i < 5000; i++) {
    const n = Math.floor(rnd() * 2 ** 32);
    const ip = [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
    const linear = IP_RANGES.find((r) => toInt(r.first) <= n && n <= toInt(r.last));
    assert.deepEqual(geolocate(ip), linear ? { country: linear.country, city: linear.city } : undefined, ip);
  }
  for (const r of IP_RANGES) assert.equal(geolocate(r.first)?.country, r.country);
  assert.equal(geolocate('not.an.ip.address'), undefined);
});

test('lake sink: a restarted sink resumes from the offsets in the last snapshot (each event once); a new field adds a column', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-demo-sink-'));
  const log = await openLog({ dataDir: path.join(dir, 'log'), cleanerIntervalMs: 0 });
  const catalog = new SqliteCatalog({ warehouse: path.join(dir, 'lake') });
  try {
    const client = embeddedClient(log);
    await log.createTopic('enriched', { partitions: 2 });
    const ev = (i: number, device?: string) => ({
      eventId: `e${i}`,
      userId: `u${i % 9}`,
      eventType: 'PAGE_VIEW',
      value: i % 5,
      timestamp: Date.UTC(2026, 0, 1 + (i % 2), 12),
      ip: '2.16.0.1',
      country: 'DE',
      city: 'Frankfurt',
      tier: 'gold',
      sessionId: null,
      enriched: true,
      ...(device ? { device } : {}),
    });
    // Transactional writes, as the stream job does (markers take offsets too).
    const send = async (from: number, to: number, device?: string) => {
      const p = client.producer({ transactionalId: 'writer' });
      await p.beginTransaction();
      await p.send(
        Array.from({ length: to - from }, (_, k) => ({
          topic: 'enriched',
          key: `u${(from + k) % 9}`,
          value: JSON.stringify(ev(from + k, device)),
        })),
      );
      await p.commitTransaction();
      await p.close();
    };
    const drained = async (sink: Awaited<ReturnType<typeof startLakeSink>>, rows: number) => {
      const deadline = Date.now() + 30_000;
      while (sink.stats.rows < rows) {
        if (Date.now() > deadline)
          assert.fail(`sink wrote ${sink.stats.rows} of ${rows} rows: ${sink.stats.lastError}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    await send(0, 600);
    let sink = await startLakeSink({ client, catalog, topic: 'enriched', partitions: 2, flushMs: 100 });
    await drained(sink, 600);
    await sink.stop();

    await send(600, 1000, 'mobile');
    sink = await startLakeSink({ client, catalog, topic: 'enriched', partitions: 2, flushMs: 100 });
    await drained(sink, 400);
    await sink.stop();
    assert.equal(sink.stats.rows, 400, 'the restarted sink wrote only the new events');
    assert.deepEqual(sink.stats.schemaChanges, ['added column device (string)']);

    const table = await loadTable(catalog, EVENTS_TABLE);
    const rows = await table.rows();
    assert.equal(rows.length, 1000);
    assert.equal(new Set(rows.map((r) => r.event_id)).size, 1000);
    assert.equal(rows.filter((r) => r.device === 'mobile').length, 400);
    assert.equal(rows.filter((r) => r.device === null).length, 600);
    const offsets = JSON.parse(table.currentSnapshot()?.summary[OFFSETS_PROPERTY] ?? '{}') as Record<string, string>;
    const ends = log.describeTopic('enriched')?.partitions.map((p) => p.highWatermark) ?? [];
    assert.deepEqual(
      Object.values(offsets)
        .map(BigInt)
        .reduce((a, b) => a + b, 0n),
      ends.reduce((a, b) => a + b, 0n),
      'the snapshot holds the position after the last transaction marker',
    );
    assert.match(
      table
        .spec()
        .fields.map((f) => f.transform)
        .join(','),
      /day,bucket\[16\]/,
    );
  } finally {
    catalog.db.close();
    await log.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('after the demo reports, its stream jobs keep running and the console API lists them until close()', async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-demo-jobs-'));
  const out = { write: () => true } as unknown as NodeJS.WritableStream;
  const demo = await runDemo({ events: 300, dataDir, out });
  try {
    const res = await fetch(`http://127.0.0.1:${demo.platform.httpPort}/api/v1/jobs`);
    const { jobs } = (await res.json()) as { jobs: { id: string; state: string; recordsIn: number }[] };
    for (const id of ['demo-enrich', 'demo-cep']) {
      const job = jobs.find((j) => j.id === id);
      assert.ok(job, `${id} is listed after the report`);
      assert.equal(job.state, 'RUNNING');
      assert.ok(job.recordsIn > 0);
    }
  } finally {
    await demo.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
