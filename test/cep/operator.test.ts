// The CEP operator through the streams TopologyTestDriver: event-time buffering (cep-cases.md section 9),
// timeouts, late data, processing time, the seed pattern's alerts, pattern replacement, stored state.
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import fs, { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import {
  CEP,
  type CepOptions,
  compile,
  freeze,
  type Match,
  Nfa,
  Pattern,
  patternFromJson,
  thaw,
} from '../../src/cep/index.ts';
import { type KStream, LmdbEnv, Serdes, StreamsBuilder, TopologyTestDriver } from '../../src/streams/index.ts';

interface Ev {
  id: number;
  name: string;
  price: number;
}
const S = Serdes.String();
const J = Serdes.JSON;
const is = (n: string) => (e: Ev) => e.name === n;
const ids = (m: Match<Ev>) =>
  Object.values(m)
    .flat()
    .map((e) => e.id)
    .join(',');

function setup(pattern: Pattern<Ev>, opts: CepOptions<Ev> = {}) {
  const b = new StreamsBuilder();
  const stream = b.stream<string, Ev>('events', { keySerde: S, valueSerde: J() }) as KStream<string, Ev>;
  const ps = CEP.pattern(stream, pattern, opts);
  ps.select((m) => ids(m)).to('matches', { keySerde: S, valueSerde: J() });
  ps.timeouts().to('timeouts', { keySerde: S, valueSerde: J() });
  ps.lateData().to('late', { keySerde: S, valueSerde: J() });
  const d = new TopologyTestDriver(b.build());
  const input = d.createInputTopic('events', S, J());
  const read = (topic: string) => d.createOutputTopic(topic, S, J()).readRecordsToList();
  return { d, ps, input, read, b };
}

const chain = () =>
  Pattern.begin<Ev>('start')
    .where(is('start'))
    .followedByAny('middle')
    .where(is('middle'))
    .followedByAny('end')
    .where(is('end'));
// Watermark = last timestamp - 5, as in Flink's CEPITCase.
const wm5: CepOptions<Ev> = { maxOutOfOrderness: 4 };

describe('event time (CEPITCase)', () => {
  test('9a out-of-order input is replayed in timestamp order', () => {
    const { input, read } = setup(chain(), wm5);
    const feed: [number, string, number][] = [
      [1, 'start', 5],
      [2, 'middle', 1],
      [3, 'end', 3],
      [4, 'end', 10],
      [5, 'middle', 7],
      [5, 'middle', 100],
    ];
    for (const [id, name, ts] of feed) input.pipeInput('k', { id, name, price: 0 }, ts);
    assert.deepEqual(
      read('matches').map((r) => r.value),
      ['1,5,4'],
    );
    assert.deepEqual(read('late'), []);
  });

  test('9b ties within one timestamp follow the comparator', () => {
    const seen: string[] = [];
    const b = new StreamsBuilder();
    const ps = CEP.pattern(b.stream<string, Ev>('events', { keySerde: S, valueSerde: J() }), chain(), {
      ...wm5,
      comparator: (x, y) => x.price - y.price,
    });
    ps.process<string>((m, ctx) => {
      seen.push(ids(m));
      ctx.emit(ids(m));
    });
    const d = new TopologyTestDriver(b.build());
    const input = d.createInputTopic('events', S, J());
    input.pipeInput('k', { id: 1, name: 'start', price: 1 }, 5);
    input.pipeInput('k', { id: 5, name: 'middle', price: 6 }, 7);
    input.pipeInput('k', { id: 6, name: 'middle', price: 5 }, 7);
    input.pipeInput('k', { id: 4, name: 'end', price: 1 }, 10);
    input.pipeInput('k', { id: 9, name: 'flush', price: 0 }, 100);
    // Price 5.0 sorts first, so the match through #6 is found first.
    assert.deepEqual(seen, ['1,6,4', '1,5,4']);
  });

  test('9c keyed: each key matches on its own', () => {
    const { input, read } = setup(chain(), wm5);
    const feed: [number, string, number][] = [
      [1, 'start', 5],
      [1, 'middle', 1],
      [2, 'middle', 4],
      [2, 'start', 3],
      [1, 'end', 3],
      [3, 'start', 5],
      [1, 'end', 10],
      [2, 'end', 8],
      [1, 'middle', 7],
      [3, 'middle', 9],
      [3, 'end', 7],
    ];
    for (const [id, name, ts] of feed) input.pipeInput(String(id), { id, name, price: 0 }, ts);
    input.pipeInput('flush', { id: 0, name: 'x', price: 0 }, 100);
    assert.deepEqual(
      read('matches')
        .map((r) => `${r.key}:${r.value}`)
        .sort(),
      ['1:1,1,1', '2:2,2,2'],
    );
  });

  test('9d timeouts are reported with the first event + window', () => {
    const { input, read } = setup(chain().within(3), wm5);
    const feed: [string, number, number][] = [
      ['start', 1, 1],
      ['middle', 2, 5],
      ['start', 2, 4],
      ['end', 2, 6],
    ];
    for (const [name, price, ts] of feed) input.pipeInput('k', { id: price, name, price }, ts);
    input.pipeInput('other', { id: 0, name: 'x', price: 0 }, 100);
    assert.deepEqual(
      read('matches').map((r) => r.value),
      ['2,2,2'],
    );
    const t = read('timeouts').map((r) => r.value as { match: Match<Ev>; timeoutTimestamp: number });
    assert.deepEqual(t.map((x) => x.match.start?.[0]?.price).sort(), [1, 2, 2]);
    assert.deepEqual(t.map((x) => x.timeoutTimestamp).sort(), [4, 7, 7]);
  });

  test('9f OR condition', () => {
    const p = Pattern.begin<Ev>('start')
      .where(is('start'))
      .followedByAny('middle')
      .where((e) => e.price === 2)
      .or((e) => e.price === 5)
      .followedByAny('end')
      .where(is('end'));
    const { input, read } = setup(p);
    const feed: [number, string, number][] = [
      [1, 'start', 0],
      [2, 'middle', 2],
      [3, 'end', 0],
      [4, 'start', 0],
      [5, 'middle', 5],
      [6, 'end', 0],
    ];
    for (const [i, [id, name, price]] of feed.entries()) input.pipeInput('k', { id, name, price }, i + 1);
    input.pipeInput('k', { id: 0, name: 'x', price: 0 }, 100);
    assert.deepEqual(
      read('matches')
        .map((r) => r.value)
        .sort(),
      ['1,2,3', '1,2,6', '1,5,6', '4,5,6'],
    );
  });

  test('9e an event at or behind the watermark goes to the late-data output', () => {
    const { input, read, d } = setup(chain(), wm5);
    input.pipeInput('k', { id: 1, name: 'start', price: 0 }, 20); // watermark 15
    input.pipeInput('k', { id: 2, name: 'middle', price: 0 }, 15); // at the watermark: late
    input.pipeInput('k', { id: 3, name: 'middle', price: 0 }, 16);
    input.pipeInput('k', { id: 4, name: 'end', price: 0 }, 30);
    input.pipeInput('k', { id: 5, name: 'x', price: 0 }, 100);
    assert.deepEqual(
      read('late').map((r) => (r.value as Ev).id),
      [2],
    );
    // 16 was buffered and replayed before start@20: no match with it.
    assert.deepEqual(read('matches'), []);
    assert.equal(d.getKeyValueStore('cep-meta').get('__watermark'), 95);
  });

  test('9g skipPastLastEvent through the operator', () => {
    const { input, read } = setup(Pattern.begin<Ev>('a', { kind: 'skipPastLastEvent' }).where(is('a')).times(2));
    for (let i = 1; i <= 4; i++) input.pipeInput('k', { id: i, name: 'a', price: 0 }, i);
    input.pipeInput('k', { id: 0, name: 'x', price: 0 }, 100);
    assert.deepEqual(
      read('matches').map((r) => r.value),
      ['1,2', '3,4'],
    );
  });
});

test('processing time: events in arrival order, timeouts on wall-clock time', () => {
  const { input, read, d } = setup(chain().within(1000), { timeMode: 'processing', timeoutCheckIntervalMs: 100 });
  input.pipeInput('k', { id: 1, name: 'start', price: 0 }, 999_999);
  input.pipeInput('k', { id: 2, name: 'middle', price: 0 }, 5);
  d.advanceWallClockTime(500);
  input.pipeInput('k', { id: 3, name: 'end', price: 0 }, 1);
  assert.deepEqual(
    read('matches').map((r) => r.value),
    ['1,2,3'],
  );
  d.advanceWallClockTime(600);
  const t = read('timeouts').map((r) => r.value as { match: Match<Ev>; timeoutTimestamp: number });
  assert.deepEqual(t.map((x) => ids(x.match)).sort(), ['1', '1,2']);
  assert.deepEqual(read('late'), []);
});

describe('seed pattern: high-value purchase alerts', () => {
  interface Event {
    eventId: string;
    userId: string;
    eventType: string;
    value: number;
    timestamp: number;
  }
  const json = JSON.parse(
    readFileSync(new URL('../../examples/patterns/high-value-purchase.json', import.meta.url), 'utf8'),
  );
  const severity = (amount: number) => (amount >= 10_000 ? 'high' : amount >= 5000 ? 'medium' : 'low');
  function job() {
    const b = new StreamsBuilder();
    const events = b
      .stream<string, Event>('events', {
        keySerde: S,
        valueSerde: J(),
        timestampExtractor: (r) => (r.value as Event).timestamp,
      })
      .selectKey((_k, v) => v.userId);
    const ps = CEP.pattern(events, patternFromJson<Event>(json), { maxOutOfOrderness: '1m' });
    ps.select((m, user) => {
      const login = m.start?.[0] as Event;
      const purchase = m.middle?.[0] as Event;
      const logout = m.end?.[0] as Event;
      return {
        user,
        amount: purchase.value,
        sessionMs: logout.timestamp - login.timestamp,
        severity: severity(purchase.value),
        eventIds: [login.eventId, purchase.eventId, logout.eventId],
      };
    }).to('alerts', { keySerde: S, valueSerde: J() });
    ps.timeouts().to('alert-timeouts', { keySerde: S, valueSerde: J() });
    return new TopologyTestDriver(b.build());
  }
  const min = 60_000;
  let n = 0;
  const ev = (userId: string, eventType: string, value: number, timestamp: number): Event => ({
    eventId: `e${++n}`,
    userId,
    eventType,
    value,
    timestamp,
  });

  test('alerts with user, amount, session duration and severity; out-of-order input; timeouts', () => {
    const d = job();
    const input = d.createInputTopic('events', S, J());
    const feed = [
      ev('ann', 'LOGIN', 0, 0),
      ev('bob', 'LOGIN', 0, 1 * min),
      ev('ann', 'PURCHASE', 12_000, 2 * min),
      ev('bob', 'PURCHASE', 500, 2 * min), // too small: no alert for bob
      ev('cat', 'LOGIN', 0, 3 * min + 30_000),
      ev('ann', 'BROWSE', 0, 4 * min),
      ev('cat', 'PURCHASE', 6000, 4 * min), // arrives before cat's LOGIN below? no: cat LOGIN at 3.5m came first
      ev('ann', 'LOGOUT', 0, 10 * min),
      ev('cat', 'LOGOUT', 0, 9 * min), // out of order by a minute: still in time
      ev('dan', 'LOGIN', 0, 10 * min),
      ev('dan', 'PURCHASE', 2000, 11 * min), // dan never logs out: times out at 40m
      ev('eve', 'PURCHASE', 3000, 12 * min),
      ev('eve', 'LOGIN', 0, 11 * min + 30_000), // out of order: LOGIN is replayed first, then next PURCHASE
      ev('eve', 'LOGOUT', 0, 13 * min),
      ev('zed', 'TICK', 0, 60 * min), // moves the watermark past everything
    ];
    for (const e of feed) input.pipeInput(e.userId, e);
    const alerts = d
      .createOutputTopic('alerts', S, J())
      .readRecordsToList()
      .map((r) => r.value as { user: string; amount: number; sessionMs: number; severity: string });
    assert.deepEqual(alerts.map((a) => `${a.user}:${a.amount}:${a.sessionMs / min}m:${a.severity}`).sort(), [
      'ann:12000:10m:high',
      'cat:6000:5.5m:medium',
      'eve:3000:1.5m:low',
    ]);
    const timeouts = d
      .createOutputTopic('alert-timeouts', S, J())
      .readRecordsToList()
      .map((r) => `${r.key}@${(r.value as { timeoutTimestamp: number }).timeoutTimestamp / min}m`);
    assert.ok(timeouts.includes('dan@40m'), `dan's partial match times out: ${timeouts.join(' ')}`);
    // Finished or expired keys leave nothing behind; zed's event still waits for the watermark.
    assert.deepEqual(
      d
        .getKeyValueStore('cep-nfa')
        .all()
        .map(([k]) => k),
      ['"zed"'],
    );
  });
});

test('NFA state is stored per key and survives a freeze/thaw through JSON with shared nodes', () => {
  const p = Pattern.begin<Ev>('s')
    .where(is('s'))
    .followedByAny('m')
    .where(is('m'))
    .oneOrMore()
    .allowCombinations()
    .followedBy('e')
    .where(is('e'));
  const nfa = new Nfa(compile(p));
  const names = ['s', 'm', 'm', 'x', 'm', 's', 'm', 'e', 'm', 'e'];
  const whole = nfa.initialState();
  const resumed = nfa.initialState();
  let a: string[] = [];
  let b: string[] = [];
  let state = resumed;
  names.forEach((name, i) => {
    const e = { id: i, ts: i, value: { id: i, name, price: 0 } };
    a = a.concat(nfa.process(whole, e).map(ids));
    const frozen = JSON.parse(JSON.stringify(freeze(state)));
    if (i === 4) assert.ok(frozen.n.length < frozen.p.length * 3, 'partial matches share buffer nodes');
    state = thaw(frozen);
    b = b.concat(nfa.process(state, e).map(ids));
  });
  assert.ok(a.length > 5);
  assert.deepEqual(b, a);
});

test('the pattern can be replaced for some keys while other keys keep their partial matches', () => {
  const { input, read, ps, d } = setup(chain());
  input.pipeInput('a', { id: 1, name: 'start', price: 0 }, 1);
  input.pipeInput('b', { id: 2, name: 'start', price: 0 }, 2);
  input.pipeInput('a', { id: 3, name: 'middle', price: 0 }, 3);
  input.pipeInput('b', { id: 4, name: 'middle', price: 0 }, 4);
  const p2 = Pattern.begin<Ev>('start').where('name == "middle"').next('end').where('name == "end"');
  ps.updatePattern(p2, { keys: ['b'] });
  input.pipeInput('a', { id: 5, name: 'end', price: 0 }, 5);
  // b's partial match from start#2 is dropped; middle#4 was still buffered (watermark 3), so the new pattern sees it.
  input.pipeInput('b', { id: 6, name: 'end', price: 0 }, 6);
  input.pipeInput('b', { id: 7, name: 'middle', price: 0 }, 7);
  input.pipeInput('b', { id: 8, name: 'end', price: 0 }, 8);
  input.pipeInput('z', { id: 9, name: 'x', price: 0 }, 100);
  assert.deepEqual(
    read('matches').map((r) => `${r.key}:${r.value}`),
    ['a:1,3,5', 'b:4,6', 'b:7,8'],
  );
  // The replaced pattern is stored (as JSON) so a restarted job resumes with it.
  const stored = d
    .getKeyValueStore<string, { perKey: Record<string, [string, unknown]> }>('cep-meta')
    .get('__patterns');
  assert.equal(stored?.perKey['"b"']?.[0], 'v1');
  assert.deepEqual(
    (stored?.perKey['"b"']?.[1] as { stages: { name: string }[] } | undefined)?.stages.map((s) => s.name),
    ['start', 'end'],
  );
});

test("idle inputs: the engine's watermark (eventTime idleTimeout) flushes buffered events and times out partial matches", () => {
  const b = new StreamsBuilder();
  const ps = CEP.pattern(b.stream<string, Ev>('events', { keySerde: S, valueSerde: J() }), chain().within(50));
  ps.select((m) => ids(m)).to('matches', { keySerde: S, valueSerde: J() });
  ps.timeouts().to('timeouts', { keySerde: S, valueSerde: J() });
  const d = new TopologyTestDriver(b.build(), { eventTime: { maxOutOfOrderness: 0, idleTimeout: 1000 } });
  const input = d.createInputTopic('events', S, J<Ev>());
  input.pipeInput('k', { id: 1, name: 'start', price: 0 }, 10);
  input.pipeInput('k', { id: 2, name: 'middle', price: 0 }, 20);
  input.pipeInput('k', { id: 3, name: 'end', price: 0 }, 30);
  const matches = d.createOutputTopic('matches', S, J());
  assert.deepEqual(matches.readValuesToList(), [], 'end@30 waits for the watermark');
  d.advanceWallClockTime(5000);
  assert.deepEqual(matches.readValuesToList(), ['1,2,3']);
  const t = d.createOutputTopic('timeouts', S, J()).readValuesToList();
  assert.deepEqual(
    t.map((x) => (x as { timeoutTimestamp: number }).timeoutTimestamp),
    [60, 60],
    'the partial matches [start] and [start, middle] expire once event time passes 60',
  );
});

test('restart on LMDB: partial matches, buffered events, the watermark and replaced patterns are restored', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cep-lmdb-'));
  try {
    const topology = () => {
      const b = new StreamsBuilder();
      const ps = CEP.pattern(b.stream<string, Ev>('events', { keySerde: S, valueSerde: J() }), chain());
      ps.select((m) => ids(m)).to('matches', { keySerde: S, valueSerde: J() });
      return { topology: b.build(), ps };
    };
    const env = new LmdbEnv(dir);
    const one = topology();
    const d = new TopologyTestDriver(one.topology, { lmdb: env });
    const input = d.createInputTopic('events', S, J<Ev>());
    input.pipeInput('a', { id: 1, name: 'start', price: 0 }, 1);
    input.pipeInput('a', { id: 2, name: 'middle', price: 0 }, 2);
    one.ps.updatePattern(Pattern.begin<Ev>('start').where("name == 'middle'").next('end').where("name == 'end'"), {
      keys: ['b'],
    });
    input.pipeInput('b', { id: 3, name: 'middle', price: 0 }, 3); // buffered: the watermark is 2
    env.flush({ 'events:0': '3' });
    d.close();
    await env.close();

    const env2 = new LmdbEnv(dir);
    const two = topology(); // built with the original pattern: the stored replacement for b wins
    const d2 = new TopologyTestDriver(two.topology, { lmdb: env2 });
    const input2 = d2.createInputTopic('events', S, J<Ev>());
    input2.pipeInput('b', { id: 4, name: 'end', price: 0 }, 4);
    input2.pipeInput('a', { id: 5, name: 'end', price: 0 }, 5);
    input2.pipeInput('z', { id: 6, name: 'x', price: 0 }, 100);
    assert.deepEqual(
      d2
        .createOutputTopic('matches', S, J())
        .readRecordsToList()
        .map((r) => `${r.key}:${r.value}`),
      ['b:3,4', 'a:1,2,5'],
    );
    assert.equal(d2.getKeyValueStore('cep-meta').get('__watermark'), 99);
    d2.close();
    await env2.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('diagnostics: matches, timeouts, late events and pattern updates are published', () => {
  const seen: string[] = [];
  const subs = ['match', 'timeout', 'late', 'pattern-updated'].map((e) => {
    const fn = () => seen.push(e);
    diagnostics.subscribe(`tributary:cep:${e}`, fn);
    return () => diagnostics.unsubscribe(`tributary:cep:${e}`, fn);
  });
  try {
    const { input, ps } = setup(chain().within(10));
    input.pipeInput('k', { id: 1, name: 'start', price: 0 }, 1);
    input.pipeInput('k', { id: 2, name: 'middle', price: 0 }, 2);
    input.pipeInput('k', { id: 3, name: 'end', price: 0 }, 3);
    input.pipeInput('k', { id: 4, name: 'x', price: 0 }, 1); // late
    input.pipeInput('z', { id: 5, name: 'x', price: 0 }, 100);
    ps.updatePattern(chain());
    assert.deepEqual([...new Set(seen)].sort(), ['late', 'match', 'pattern-updated', 'timeout']);
  } finally {
    for (const u of subs) u();
  }
});

test('a re-keyed stream is repartitioned before matching, so every event of a key meets in one task', () => {
  const describe = (rekey: boolean) => {
    const b = new StreamsBuilder();
    let s = b.stream<string, Ev>('events', { keySerde: S, valueSerde: J() });
    if (rekey) s = s.selectKey((_k, v) => v.name);
    CEP.pattern(s, chain()).select((m) => ids(m));
    return b.build().describe().toString();
  };
  assert.match(describe(true), /cep-repartition/);
  assert.doesNotMatch(describe(false), /repartition/);
});
