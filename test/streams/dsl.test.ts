import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import fc from 'fast-check';
import { isTributaryError } from '../../src/core/index.ts';
import {
  defaultPartition,
  Serdes,
  type SessionStore,
  StreamsBuilder,
  Suppressed,
  TopologyTestDriver,
  type WindowStore,
} from '../../src/streams/index.ts';
import { fmt, S } from './helpers.ts';

const J = Serdes.JSON<{ user: string; amount: number }>();

test('stateless operators: filter, filterNot, map, mapValues, flatMap, selectKey, peek, foreach', () => {
  const b = new StreamsBuilder();
  const peeked: string[] = [];
  const seen: string[] = [];
  const src = b.stream<string, { user: string; amount: number }>('orders', { keySerde: S, valueSerde: J });
  src
    .filter((_k, v) => v.amount > 10)
    .mapValues((v) => v.amount * 2)
    .to('big', { keySerde: S, valueSerde: Serdes.Long() });
  src
    .filterNot((_k, v) => v.amount > 10)
    .selectKey((_k, v) => v.user)
    .mapValues((v) => String(v.amount))
    .to('small', { keySerde: S, valueSerde: S });
  src
    .flatMap((k, v) => [
      [`${k}-a`, v.amount],
      [`${k}-b`, -v.amount],
    ])
    .peek((k) => peeked.push(k))
    .map((k, v) => [k.toUpperCase(), String(v)])
    .to('flat', { keySerde: S, valueSerde: S });
  src.foreach((k, v, ts) => seen.push(`${k}=${v.user}@${ts}`));
  const d = new TopologyTestDriver(b.build());
  const input = d.createInputTopic('orders', S, J);
  input.pipeInput('o1', { user: 'ann', amount: 5 }, 100);
  input.pipeInput('o2', { user: 'bob', amount: 50 }, 200);
  assert.deepEqual(d.createOutputTopic('big', S, Serdes.Long()).readRecordsToList().map(fmt), ['o2:100@200']);
  assert.deepEqual(d.createOutputTopic('small', S, S).readRecordsToList().map(fmt), ['ann:5@100']);
  assert.deepEqual(d.createOutputTopic('flat', S, S).readKeyValuesToList(), [
    ['O1-A', '5'],
    ['O1-B', '-5'],
    ['O2-A', '50'],
    ['O2-B', '-50'],
  ]);
  assert.deepEqual(peeked, ['o1-a', 'o1-b', 'o2-a', 'o2-b']);
  assert.deepEqual(seen, ['o1=ann@100', 'o2=bob@200']);
});

test('split() routes each record to the first matching branch; merge() combines streams', () => {
  const b = new StreamsBuilder();
  const src = b.stream<string, string>('in', { keySerde: S, valueSerde: S });
  const branches = src
    .split('b-')
    .branch((_k, v) => v.startsWith('a'), 'a')
    .branch((_k, v) => v.length > 3, 'long')
    .defaultBranch('rest');
  assert.deepEqual([...branches.keys()], ['b-a', 'b-long', 'b-rest']);
  branches.get('b-a')?.to('a', { keySerde: S, valueSerde: S });
  branches.get('b-long')?.to('long', { keySerde: S, valueSerde: S });
  branches.get('b-rest')?.to('rest', { keySerde: S, valueSerde: S });
  const [x, y] = src.branch(
    (_k, v) => v === 'x',
    (_k, v) => v === 'y',
  );
  x?.merge(y as NonNullable<typeof y>).to('xy', { keySerde: S, valueSerde: S });
  const d = new TopologyTestDriver(b.build());
  const input = d.createInputTopic('in', S, S);
  for (const v of ['apple', 'banana', 'kiwi', 'ab', 'x', 'y', 'z']) input.pipeInput('k', v, 1);
  assert.deepEqual(d.createOutputTopic('a', S, S).readValuesToList(), ['apple', 'ab']);
  assert.deepEqual(d.createOutputTopic('long', S, S).readValuesToList(), ['banana', 'kiwi']);
  assert.deepEqual(d.createOutputTopic('rest', S, S).readValuesToList(), ['x', 'y', 'z']);
  assert.deepEqual(d.createOutputTopic('xy', S, S).readValuesToList(), ['x', 'y']);
});

test('to() with a topic extractor and a partitioner; headers pass through', () => {
  const b = new StreamsBuilder();
  b.stream<string, string>('in', { keySerde: S, valueSerde: S })
    .mapHeaders((h) => [...h, ['seen', Buffer.from('1')]])
    .to((k) => `out-${k}`, { keySerde: S, valueSerde: S, partitioner: (_t, _k, v) => (v === 'p3' ? 3 : undefined) });
  const d = new TopologyTestDriver(b.build());
  d.createInputTopic('in', S, S).pipeInput('x', 'p3', 5, [['h', Buffer.from('v')]]);
  const r = d.createOutputTopic('out-x', S, S).readRecord();
  assert.equal(r.value, 'p3');
  assert.deepEqual(
    r.headers.map(([k, v]) => `${k}=${v.toString()}`),
    ['h=v', 'seen=1'],
  );
});

test('groupBy repartitions by the new key through an internal topic before counting', () => {
  const b = new StreamsBuilder();
  b.stream<string, string>('words', { keySerde: S, valueSerde: S })
    .flatMapValues((line) => line.split(' '))
    .groupBy((_k, w) => w)
    .count({ storeName: 'counts' })
    .toStream()
    .to('counts-out', { keySerde: S, valueSerde: Serdes.Long() });
  const topology = b.build();
  assert.equal(topology.internalTopics().length, 1);
  const d = new TopologyTestDriver(topology, { applicationId: 'wc' });
  const input = d.createInputTopic('words', S, S);
  input.pipeInput(null, 'a b a', 1);
  input.pipeInput(null, 'b c', 2);
  const out = d.createOutputTopic('counts-out', S, Serdes.Long());
  assert.deepEqual(out.readKeyValuesToList(), [
    ['a', 1],
    ['b', 1],
    ['a', 2],
    ['b', 2],
    ['c', 1],
  ]);
  const store = d.getKeyValueStore<string, number>('counts');
  assert.equal(store.get('a'), 2);
  assert.deepEqual(store.all(), [
    ['a', 2],
    ['b', 2],
    ['c', 1],
  ]);
  assert.ok(d.producedTopicNames().includes('wc-counts-changelog'));
});

test('reduce and aggregate on grouped streams skip null keys and values', () => {
  const b = new StreamsBuilder();
  const g = b.stream<string, string>('in', { keySerde: S, valueSerde: S }).groupByKey();
  g.reduce((a, v) => a + v, { storeName: 'r' });
  g.aggregate(
    () => [] as string[],
    (_k, v, a) => [...a, v],
    { storeName: 'agg' },
  );
  const d = new TopologyTestDriver(b.build());
  const input = d.createInputTopic('in', S, S);
  input.pipeInput('k', 'x', 1);
  input.pipeInput(null, 'lost', 2);
  input.pipeInput('k', null, 3);
  input.pipeInput('k', 'y', 4);
  assert.equal(d.getKeyValueStore<string, string>('r').get('k'), 'xy');
  assert.deepEqual(d.getKeyValueStore<string, string[]>('agg').get('k'), ['x', 'y']);
  assert.equal(d.metrics.skippedRecords, 4);
});

test('KTable-KTable joins (inner, left, outer) emit changes on both sides', () => {
  const b = new StreamsBuilder();
  const l = b.table<string, string>('l', { keySerde: S, valueSerde: S });
  const r = b.table<string, string>('r', { keySerde: S, valueSerde: S });
  l.join(r, (a, c) => `${a}+${c}`)
    .toStream()
    .to('inner', { keySerde: S, valueSerde: S });
  l.leftJoin(r, (a, c) => `${a}+${c}`)
    .toStream()
    .to('left', { keySerde: S, valueSerde: S });
  l.outerJoin(r, (a, c) => `${a}+${c}`)
    .toStream()
    .to('outer', { keySerde: S, valueSerde: S });
  const d = new TopologyTestDriver(b.build());
  const li = d.createInputTopic('l', S, S);
  const ri = d.createInputTopic('r', S, S);
  li.pipeInput('k', 'L1', 1);
  ri.pipeInput('k', 'R1', 2);
  ri.pipeInput('j', 'R2', 3);
  li.pipeInput('k', null, 4);
  const read = (t: string) => d.createOutputTopic(t, S, S).readRecordsToList().map(fmt);
  assert.deepEqual(read('inner'), ['k:L1+R1@2', 'k:null@4']);
  assert.deepEqual(read('left'), ['k:L1+null@1', 'k:L1+R1@2', 'k:null@4']);
  assert.deepEqual(read('outer'), ['k:L1+null@1', 'k:L1+R1@2', 'j:null+R2@3', 'k:null+R1@4']);
});

test('KTable groupBy aggregates with adder and subtractor', () => {
  const b = new StreamsBuilder();
  // user -> region; count users per region
  b.table<string, string>('users', { keySerde: S, valueSerde: S })
    .groupBy((user, region) => [region, user])
    .count({ storeName: 'per-region' });
  const d = new TopologyTestDriver(b.build());
  const input = d.createInputTopic('users', S, S);
  input.pipeInput('ann', 'eu', 1);
  input.pipeInput('bob', 'eu', 2);
  input.pipeInput('ann', 'us', 3);
  input.pipeInput('bob', null, 4);
  const store = d.getKeyValueStore<string, number>('per-region');
  assert.equal(store.get('eu'), 0);
  assert.equal(store.get('us'), 1);
});

test('KTable groupBy with Grouped serdes: keys and values keep their types through the repartition topic', () => {
  const b = new StreamsBuilder();
  // user -> region; per region the users as Buffers (JSON would turn them into plain objects), by a Long key.
  b.table<string, string>('users', { keySerde: S, valueSerde: S })
    .groupBy((user, region) => [region.length, region === 'none' ? null : Buffer.from(user)], {
      keySerde: Serdes.Long(),
      valueSerde: Serdes.Bytes(),
    })
    .aggregate<string>(
      () => '',
      (_k, v, agg) => `${agg}+${Buffer.isBuffer(v) ? v.toString() : String(v)}`,
      (_k, v, agg) => `${agg}-${Buffer.isBuffer(v) ? v.toString() : String(v)}`,
      { storeName: 'users-by-region-length' },
    );
  const d = new TopologyTestDriver(b.build());
  const input = d.createInputTopic('users', S, S);
  input.pipeInput('ann', 'eu', 1);
  input.pipeInput('bob', 'eu', 2);
  input.pipeInput('ann', 'usa', 3);
  input.pipeInput('cy', 'none', 4);
  const store = d.getKeyValueStore<number, string>('users-by-region-length');
  assert.equal(store.get(2), '+ann+bob-ann');
  assert.equal(store.get(3), '+ann');
  assert.equal(store.get(4), '+null', 'a null value crosses as null');
});

test('KTable filter and mapValues forward changes and tombstones', () => {
  const b = new StreamsBuilder();
  b.table<string, string>('t', { keySerde: S, valueSerde: S })
    .filter((_k, v) => v !== 'hide')
    .mapValues((v) => v.toUpperCase())
    .toStream()
    .to('out', { keySerde: S, valueSerde: S });
  const d = new TopologyTestDriver(b.build());
  const input = d.createInputTopic('t', S, S);
  input.pipeInput('a', 'x', 1);
  input.pipeInput('a', 'hide', 2);
  input.pipeInput('b', 'hide', 3);
  input.pipeInput('b', 'y', 4);
  assert.deepEqual(d.createOutputTopic('out', S, S).readRecordsToList().map(fmt), ['a:X@1', 'a:null@2', 'b:Y@4']);
});

test('KStream-GlobalKTable join looks up a derived key; left join keeps misses', () => {
  const b = new StreamsBuilder();
  const users = b.globalTable<string, string>('users', { keySerde: S, valueSerde: S });
  const orders = b.stream<string, { user: string; amount: number }>('orders', { keySerde: S, valueSerde: J });
  orders
    .join(
      users,
      (_k, v) => v.user,
      (o, name) => `${name}:${o.amount}`,
    )
    .to('inner', { keySerde: S, valueSerde: S });
  orders
    .leftJoin(
      users,
      (_k, v) => v.user,
      (o, name) => `${name}:${o.amount}`,
    )
    .to('left', { keySerde: S, valueSerde: S });
  const d = new TopologyTestDriver(b.build());
  d.createInputTopic('users', S, S).pipeInput('u1', 'Ann', 0);
  const o = d.createInputTopic('orders', S, J);
  o.pipeInput('o1', { user: 'u1', amount: 3 }, 10);
  o.pipeInput('o2', { user: 'u2', amount: 4 }, 11);
  assert.deepEqual(d.createOutputTopic('inner', S, S).readRecordsToList().map(fmt), ['o1:Ann:3@10']);
  assert.deepEqual(d.createOutputTopic('left', S, S).readRecordsToList().map(fmt), ['o1:Ann:3@10', 'o2:null:4@11']);
});

test('topology description lists sub-topologies, processors, stores and sinks', () => {
  const b = new StreamsBuilder();
  b.stream<string, string>('in', { keySerde: S, valueSerde: S })
    .filter(() => true)
    .groupBy((_k, v) => v)
    .count({ storeName: 'c' })
    .toStream()
    .to('out');
  b.globalTable('g');
  const desc = b.build().describe();
  assert.equal(desc.subtopologies.length, 2);
  const text = desc.toString();
  assert.match(text, /Source: KSTREAM-SOURCE-0000000000 \(topics: \[in\]\)/);
  assert.match(text, /Processor: KSTREAM-AGGREGATE-\d+ \(stores: \[c\]\)/);
  assert.match(text, /Sink: KSTREAM-SINK-\d+ \(topic: out\)/);
  assert.match(text, /global store/);
  const first = desc.subtopologies[0];
  assert.ok(first?.nodes.some((n) => n.kind === 'sink' && n.topic?.endsWith('-repartition')));
});

test('builder rejects bad input with precise errors', () => {
  const b = new StreamsBuilder();
  assert.throws(
    () => b.stream([]),
    (e) => isTributaryError(e, 'INVALID_ARGUMENT') && /topics/.test(e.message),
  );
  b.stream('a').groupByKey().count({ storeName: 'x' });
  assert.throws(
    () => b.stream('b').groupByKey().count({ storeName: 'x' }),
    (e) => isTributaryError(e, 'INVALID_ARGUMENT') && /x/.test(e.message),
  );
  const d = new TopologyTestDriver(b.build());
  assert.throws(() => d.createInputTopic('nope', S, S), /input topic/);
});

test('serdes round-trip and report corrupt data', () => {
  fc.assert(
    fc.property(fc.string(), fc.integer({ min: -1e12, max: 1e12 }), (s, n) => {
      assert.equal(Serdes.String().deserialize('t', Serdes.String().serialize('t', s)), s);
      assert.equal(Serdes.Long().deserialize('t', Serdes.Long().serialize('t', n)), n);
      assert.deepEqual(Serdes.JSON().deserialize('t', Serdes.JSON().serialize('t', { s, n })), { s, n });
      const w = Serdes.Windowed(Serdes.String());
      assert.deepEqual(w.deserialize('t', w.serialize('t', { key: s, window: { start: n, end: n + 5 } })), {
        key: s,
        window: { start: n, end: n + 5 },
      });
    }),
  );
  assert.equal(Serdes.String().serialize('t', null), null);
  assert.throws(
    () => Serdes.JSON().deserialize('t', Buffer.from('{bad')),
    (e) => isTributaryError(e, 'CORRUPT_DATA'),
  );
  const custom = Serdes.from<number>(
    (v) => Buffer.from([v]),
    (b) => b[0] as number,
  );
  assert.equal(custom.deserialize('t', custom.serialize('t', 7)), 7);
});

test('default partitioner agrees with kafkajs (an independent murmur2 port of the Java client)', () => {
  const require = createRequire(import.meta.url);
  const kafkajsMurmur2 = require('kafkajs/src/producer/partitioners/default/murmur2.js') as (k: Buffer) => number;
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 40 }), fc.integer({ min: 1, max: 1000 }), (bytes, n) => {
      const key = Buffer.from(bytes);
      assert.equal(defaultPartition(key, n), (kafkajsMurmur2(key) & 0x7fffffff) % n);
    }),
  );
});

test('Avro serde: bare body and Confluent wire format; invalid values and wrong ids are rejected', () => {
  const schema = {
    type: 'record',
    name: 'Click',
    fields: [
      { name: 'user', type: 'string' },
      { name: 'n', type: 'int' },
    ],
  };
  const bare = Serdes.Avro<{ user: string; n: number }>(schema);
  const bytes = bare.serialize('t', { user: 'ann', n: 3 });
  assert.deepEqual(bytes, Buffer.from([6, 0x61, 0x6e, 0x6e, 6])); // zig-zag length 3, "ann", zig-zag 3
  const plain = (v: unknown) => JSON.parse(JSON.stringify(v)); // avsc decodes records as instances of their class
  assert.deepEqual(plain(bare.deserialize('t', bytes)), { user: 'ann', n: 3 });
  const wire = Serdes.Avro<{ user: string; n: number }>(schema, { schemaId: 42 });
  const w = wire.serialize('t', { user: 'b', n: -1 }) as Buffer;
  assert.deepEqual([...w.subarray(0, 5)], [0, 0, 0, 0, 42]);
  assert.deepEqual(plain(wire.deserialize('t', w)), { user: 'b', n: -1 });
  assert.throws(
    () => bare.serialize('t', { user: 'x', n: 'no' } as never),
    (e) => isTributaryError(e, 'INVALID_ARGUMENT') && /value\.n/.test(e.message),
  );
  assert.throws(
    () => Serdes.Avro(schema, { schemaId: 7 }).deserialize('t', w),
    (e) => isTributaryError(e, 'CORRUPT_DATA'),
  );
});

test('suppress(untilTimeLimit) emits the latest value per key once the limit passed since its first buffered update', () => {
  const b = new StreamsBuilder();
  b.stream<string, string>('in', { keySerde: S, valueSerde: S })
    .groupByKey()
    .count()
    .suppress(Suppressed.untilTimeLimit(10))
    .toStream()
    .to('out', { keySerde: S, valueSerde: Serdes.Long() });
  const d = new TopologyTestDriver(b.build());
  const input = d.createInputTopic('in', S, S);
  const out = d.createOutputTopic('out', S, Serdes.Long());
  input.pipeInput('a', 'x', 0);
  input.pipeInput('a', 'x', 5);
  input.pipeInput('b', 'x', 8);
  assert.deepEqual(out.readRecordsToList().map(fmt), []);
  input.pipeInput('a', 'x', 9); // still within 10 of a's first buffered update (0)
  input.pipeInput('c', 'x', 10); // a is due at 10: emitted with its latest count
  assert.deepEqual(out.readRecordsToList().map(fmt), ['a:3@9']);
  input.pipeInput('c', 'x', 30);
  assert.deepEqual(out.readRecordsToList().map(fmt), ['b:1@8', 'c:2@30'], 'c was first buffered at 10: due at 20');
});

test('Processor API with window and session stores', () => {
  const b = new StreamsBuilder();
  b.addStateStore({ name: 'w', type: 'window', retention: 100 });
  b.addStateStore({ name: 's', type: 'session' });
  b.stream<string, string>('in', { keySerde: S, valueSerde: S }).process<string, string>(
    () => ({
      process(rec, ctx) {
        const w = ctx.getStateStore<WindowStore<string, number>>('w');
        const start = rec.timestamp - (rec.timestamp % 10);
        w.put(rec.key, (w.fetch(rec.key, start) ?? 0) + 1, start, rec.timestamp);
        const s = ctx.getStateStore<SessionStore<string, number>>('s');
        const [last] = s.findSessions(rec.key, rec.timestamp - 5, rec.timestamp + 5);
        if (last !== undefined) s.remove(rec.key, last.start, last.end);
        s.put(
          rec.key,
          Math.min(last?.start ?? rec.timestamp, rec.timestamp),
          Math.max(last?.end ?? rec.timestamp, rec.timestamp),
          (last?.value ?? 0) + 1,
        );
      },
    }),
    'w',
    's',
  );
  const d = new TopologyTestDriver(b.build());
  const input = d.createInputTopic('in', S, S);
  for (const ts of [1, 3, 12, 30]) input.pipeInput('k', 'v', ts);
  assert.deepEqual(
    d
      .getWindowStore<string, number>('w')
      .fetchRange('k', 0, 100)
      .map((e) => [e.start, e.value]),
    [
      [0, 2],
      [10, 1],
      [30, 1],
    ],
  );
  assert.deepEqual(
    d
      .getSessionStore<string, number>('s')
      .fetch('k')
      .map((x) => [x.start, x.end, x.value]),
    [
      [1, 3, 2],
      [12, 12, 1],
      [30, 30, 1],
    ],
  );
});

test('through() writes to a topic and reads it back; toChangeStream() carries old values', () => {
  const b = new StreamsBuilder();
  b.stream<string, string>('in', { keySerde: S, valueSerde: S })
    .mapValues((v) => v.toUpperCase())
    .through('mid', { keySerde: S, valueSerde: S })
    .groupByKey()
    .reduce((a, v) => `${a}${v}`)
    .toChangeStream()
    .mapValues((c) => `${c.oldValue}->${c.newValue}`)
    .to('out', { keySerde: S, valueSerde: S });
  const d = new TopologyTestDriver(b.build());
  const input = d.createInputTopic('in', S, S);
  input.pipeInput('k', 'a', 1);
  input.pipeInput('k', 'b', 2);
  assert.deepEqual(d.createOutputTopic('mid', S, S).readValuesToList(), ['A', 'B']);
  assert.deepEqual(d.createOutputTopic('out', S, S).readValuesToList(), ['null->A', 'A->AB']);
});
