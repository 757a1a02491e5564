import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isTributaryError } from '../../src/core/index.ts';
import { compileJobSpec, parseJobSpec, Serdes, TopologyTestDriver } from '../../src/streams/index.ts';

const S = Serdes.String();
const J = Serdes.JSON<Record<string, unknown>>();

test('JSON job spec: filter, projection, key, tumbling window, aggregations, final results', () => {
  const topology = compileJobSpec({
    name: 'spend',
    source: { topics: ['events'], timestampField: 'at' },
    filter: {
      all: [{ field: 'type', op: 'in', value: ['buy', 'refund'] }, { not: { field: 'test', op: 'eq', value: true } }],
    },
    project: { user: 'user.id', amount: 'amount', type: 'type' },
    key: 'user',
    window: { type: 'tumbling', size: '1m', grace: 0 },
    aggregations: [
      { name: 'n', fn: 'count' },
      { name: 'total', fn: 'sum', field: 'amount' },
      { name: 'avg', fn: 'avg', field: 'amount' },
      { name: 'min', fn: 'min', field: 'amount' },
      { name: 'max', fn: 'max', field: 'amount' },
      { name: 'types', fn: 'countBy', field: 'type' },
      { name: 'kinds', fn: 'distinct', field: 'type' },
    ],
    emit: 'final',
    output: { topic: 'spend-out' },
  });
  const d = new TopologyTestDriver(topology);
  const input = d.createInputTopic('events', S, J);
  const e = (user: string, type: string, amount: number, at: number, extra: object = {}) => ({
    user: { id: user },
    type,
    amount,
    at,
    ...extra,
  });
  input.pipeInput(null, e('ann', 'buy', 10, 1000), 0);
  input.pipeInput(null, e('ann', 'view', 99, 2000), 0); // filtered out
  input.pipeInput(null, e('ann', 'refund', -4, 3000), 0);
  input.pipeInput(null, e('bob', 'buy', 7, 4000, { test: true }), 0); // filtered out
  input.pipeInput(null, e('bob', 'buy', 5, 59_000), 0);
  input.pipeInput(null, e('ann', 'buy', 1, 61_000), 0); // closes [0, 60 s)
  const out = d.createOutputTopic('spend-out', Serdes.Windowed(S), J).readValuesToList();
  assert.deepEqual(out, [
    {
      key: 'ann',
      windowStart: 0,
      windowEnd: 60_000,
      n: 2,
      total: 6,
      avg: 3,
      min: -4,
      max: 10,
      types: { buy: 1, refund: 1 },
      kinds: 2,
    },
    {
      key: 'bob',
      windowStart: 0,
      windowEnd: 60_000,
      n: 1,
      total: 5,
      avg: 5,
      min: 5,
      max: 5,
      types: { buy: 1 },
      kinds: 1,
    },
  ]);
});

test('JSON job spec: session windows merge aggregates; stateless jobs just filter and project', () => {
  const d = new TopologyTestDriver(
    compileJobSpec({
      name: 'sessions',
      source: { topics: ['clicks'] },
      key: 'u',
      window: { type: 'session', gap: 10 },
      aggregations: [
        { name: 'n', fn: 'count' },
        { name: 'first', fn: 'first', field: 'page' },
        { name: 'last', fn: 'last', field: 'page' },
      ],
      output: { topic: 'sessions-out' },
    }),
  );
  const c = d.createInputTopic('clicks', S, J);
  c.pipeInput(null, { u: 'a', page: 'p1' }, 0);
  c.pipeInput(null, { u: 'a', page: 'p3' }, 18);
  c.pipeInput(null, { u: 'a', page: 'p2' }, 9); // bridges both sessions
  const out = d.createOutputTopic('sessions-out', Serdes.Windowed(S), J).readValuesToList();
  assert.deepEqual(out.at(-1), { key: 'a', windowStart: 0, windowEnd: 18, n: 3, first: 'p1', last: 'p2' });

  const p = new TopologyTestDriver(
    compileJobSpec({
      name: 'proj',
      source: { topics: ['in'] },
      filter: {
        any: [
          { field: 'n', op: 'gte', value: 10 },
          { field: 's', op: 'startsWith', value: 'x' },
        ],
      },
      project: { v: 'n' },
      output: { topic: 'out' },
    }),
  );
  const i = p.createInputTopic('in', S, J);
  for (const v of [{ n: 1 }, { n: 10 }, { n: 2, s: 'xy' }, { s: 'y' }]) i.pipeInput('k', v, 0);
  assert.deepEqual(p.createOutputTopic('out', S, J).readValuesToList(), [{ v: 10 }, { v: 2 }]);
});

test('JSON job spec errors name the field', () => {
  const bad = (spec: unknown, field: RegExp) =>
    assert.throws(
      () => parseJobSpec(spec),
      (e) => isTributaryError(e, 'INVALID_ARGUMENT') && field.test(e.message),
    );
  bad({ name: 'x', source: { topics: [] }, output: { topic: 'o' } }, /^spec\.source\.topics:/);
  bad({ name: 'x y', source: { topics: ['a'] }, output: { topic: 'o' } }, /^spec\.name:/);
  bad(
    { name: 'x', source: { topics: ['a'] }, window: { type: 'tumbling', size: 5 }, output: { topic: 'o' } },
    /^spec\.aggregations:/,
  );
  bad(
    {
      name: 'x',
      source: { topics: ['a'] },
      window: { type: 'tumbling', size: 5 },
      aggregations: [{ name: 's', fn: 'sum' }],
      output: { topic: 'o' },
    },
    /^spec\.aggregations\.0\.field:/,
  );
  bad(
    {
      name: 'x',
      source: { topics: ['a'] },
      window: { type: 'cubic' },
      aggregations: [{ name: 'n', fn: 'count' }],
      output: { topic: 'o' },
    },
    /^spec\.window/,
  );
});
