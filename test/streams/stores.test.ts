import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { changelogTopic, Serdes, StreamsBuilder, TimeWindows, TopologyTestDriver } from '../../src/streams/index.ts';
import { compareKeys, LmdbEnv, MemoryBackend, SessionStoreImpl, WindowStoreImpl } from '../../src/streams/stores.ts';
import { S } from './helpers.ts';

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'streams-stores-'));
}

function countTopology() {
  const b = new StreamsBuilder();
  const g = b.stream<string, string>('in', { keySerde: S, valueSerde: S }).groupByKey();
  g.count({ storeName: 'counts' });
  g.windowedBy(TimeWindows.ofSizeWithNoGrace(10)).count({ storeName: 'windowed', retention: 30 });
  return b.build();
}

test('LMDB stores persist state and the offset checkpoint atomically across reopen', async () => {
  const dir = tmp();
  try {
    const env = new LmdbEnv(dir);
    const d = new TopologyTestDriver(countTopology(), { lmdb: env });
    const input = d.createInputTopic('in', S, S);
    for (const [k, ts] of [
      ['a', 1],
      ['b', 2],
      ['a', 15],
    ] as const)
      input.pipeInput(k, 'v', ts);
    assert.equal(d.getKeyValueStore<string, number>('counts').get('a'), 2, 'reads see unflushed writes');
    env.flush({ 'in:0': '3' });
    input.pipeInput('a', 'v', 16); // written to the overlay only: lost on crash
    d.close();
    await env.close();

    const env2 = new LmdbEnv(dir);
    assert.deepEqual(env2.checkpoint(), { 'in:0': '3' });
    const d2 = new TopologyTestDriver(countTopology(), { lmdb: env2 });
    assert.deepEqual(d2.getKeyValueStore<string, number>('counts').all(), [
      ['a', 2],
      ['b', 1],
    ]);
    const w = d2.getWindowStore<string, number>('windowed');
    assert.deepEqual(
      w.fetchRange('a', 0, 100).map((e) => [e.start, e.value]),
      [
        [0, 1],
        [10, 1],
      ],
    );
    d2.close();
    await env2.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('changelog records rebuild identical state in a fresh task', () => {
  const d = new TopologyTestDriver(countTopology(), { applicationId: 'app' });
  const input = d.createInputTopic('in', S, S);
  for (let i = 0; i < 50; i++) input.pipeInput(`k${i % 7}`, 'v', i * 3);
  const fresh = new TopologyTestDriver(countTopology(), { applicationId: 'app' });
  for (const store of ['counts', 'windowed']) {
    const out = d.createOutputTopic(changelogTopic('app', store), Serdes.Bytes(), Serdes.Bytes());
    for (const r of out.readRecordsToList()) fresh.task.restore(store, r.key, r.value);
  }
  assert.deepEqual(fresh.getKeyValueStore('counts').all(), d.getKeyValueStore('counts').all());
  assert.deepEqual(fresh.getWindowStore('windowed').all(), d.getWindowStore('windowed').all());
});

test('window store retention hides and drops expired windows as stream time advances', () => {
  const s = new WindowStoreImpl<string, number>('w', new MemoryBackend(), null, 100);
  s.put('k', 1, 0);
  s.put('k', 2, 50);
  s.put('j', 9, 60);
  s.put('k', 2, 50); // an update: queued once
  assert.equal(s.approximateNumEntries(), 3);
  s.put('k', 3, 150);
  assert.equal(s.fetch('k', 0), null, 'window 0 is older than 150 - 100');
  assert.equal(s.fetch('k', 50), 2);
  assert.deepEqual(
    s.fetchRange('k', 0, 200).map((e) => e.start),
    [50, 150],
  );
  assert.equal(s.approximateNumEntries(), 3, 'window 0 is gone from the backend');
  s.put('k', 4, 400);
  assert.deepEqual(
    s.all().map((e) => `${e.key}@${e.start}`),
    ['k@400'],
  );
  assert.equal(s.approximateNumEntries(), 1, 'every expired window is gone');
});

test('session store drops sessions past retention as stream time advances; restored state too', () => {
  const backend = new MemoryBackend();
  const s = new SessionStoreImpl<string, number>('s', backend, null, 100);
  s.put('a', 0, 10, 1);
  s.put('b', 5, 20, 2);
  s.remove('a', 0, 10);
  s.put('a', 0, 30, 3); // the merged session replaces the old one
  s.put('c', 200, 200, 4);
  assert.deepEqual(
    s.all().map((x) => `${x.key}[${x.start},${x.end}]`),
    ['c[200,200]'],
  );
  assert.equal(backend.count(), 1);
  // A store over existing state (a restart) finds what expires in it.
  const again = new SessionStoreImpl<string, number>('s', backend, null, 100);
  again.put('d', 400, 400, 5);
  assert.equal(backend.count(), 1);
});

test('session store finds overlapping sessions', () => {
  const s = new SessionStoreImpl<string, number>('s', new MemoryBackend(), null, 1e9);
  s.put('k', 0, 10, 1);
  s.put('k', 20, 30, 2);
  s.put('j', 0, 100, 3);
  assert.deepEqual(
    s.findSessions('k', 5, 25).map((x) => x.value),
    [1, 2],
  );
  assert.deepEqual(
    s.findSessions('k', 11, 25).map((x) => x.value),
    [2],
  );
  s.remove('k', 20, 30);
  assert.deepEqual(
    s.fetch('k').map((x) => x.value),
    [1],
  );
});

test('memory and LMDB backends agree on ordered range scans (property)', async () => {
  const dir = tmp();
  const env = new LmdbEnv(dir);
  try {
    let round = 0;
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom('"a"', '"b"'), fc.integer({ min: -50, max: 50 }), fc.boolean()), {
          maxLength: 40,
        }),
        fc.integer({ min: -60, max: 60 }),
        fc.integer({ min: 0, max: 60 }),
        (ops, from, len) => {
          const mem = new MemoryBackend();
          const lm = env.backend(`p${round++}`);
          for (const [k, n, del] of ops) {
            for (const b of [mem, lm]) {
              if (del) b.delete([k, n]);
              else b.put([k, n], n * 2);
            }
          }
          if (round % 2 === 0) env.flush(null); // half the rounds read through LMDB, half through the overlay
          for (const k of ['"a"', '"b"']) {
            assert.deepEqual(lm.range([k, from], [k, from + len]), mem.range([k, from], [k, from + len]));
          }
          assert.deepEqual(lm.entries(), mem.entries());
          const sorted = mem.entries().map((e) => e[0]);
          for (let i = 1; i < sorted.length; i++)
            assert.ok(compareKeys(sorted[i - 1] as never, sorted[i] as never) < 0);
        },
      ),
      { numRuns: 40 },
    );
  } finally {
    await env.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
