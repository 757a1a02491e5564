import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  AfterMatchSkipStrategy,
  compileExpression,
  Pattern,
  type PatternJson,
  patternFromJson,
  patternToJson,
} from '../../src/cep/index.ts';
import { run } from './helpers.ts';

const ctx = (stages: Record<string, unknown[]> = {}) => ({
  getEventsForPattern: (n: string) => stages[n] ?? [],
  timestamp: () => 42,
});

describe('expressions', () => {
  test('operators, fields, literals', () => {
    const t = (src: string, ev: unknown, stages?: Record<string, unknown[]>) => compileExpression(src)(ev, ctx(stages));
    assert.equal(t("eventType == 'LOGIN' && value > 1000", { eventType: 'LOGIN', value: 1001 }), true);
    assert.equal(t("eventType == 'LOGIN' && value > 1000", { eventType: 'LOGIN', value: 1000 }), false);
    assert.equal(t('user.id == "u1" || !(a < 2)', { user: { id: 'u2' }, a: 3 }), true);
    assert.equal(t('x in [1, 2, "three"]', { x: 'three' }), true);
    assert.equal(t('-x + 2 * 3 % 4 == 0', { x: 2 }), true);
    assert.equal(t('missing > 1', {}), false, 'missing fields never compare');
    assert.equal(t('missing == null', {}), true);
    assert.equal(t('n == 10 && m == n', { n: 10n, m: 10 }), true, 'bigint fields equal numbers');
    assert.equal(t('timestamp() == 42', {}), true);
    assert.equal(t('startsWith(lower(name), "ab") && len(name) == 3', { name: 'ABc' }), true);
    assert.equal(t('constructor == null && __proto__ == null', {}), true, 'no prototype fields');
  });
  test('aggregates over matched events', () => {
    const stages = { A: [{ price: 10 }, { price: 20 }, { price: 30 }], S: [{ price: 5 }] };
    const t = (src: string) => compileExpression(src)({ price: 25 }, ctx(stages));
    assert.equal(t('count("A") == 3 && sum("A", "price") == 60 && avg("A", "price") == 20'), true);
    assert.equal(t('min("A", "price") == 10 && max("A", "price") == 30'), true);
    assert.equal(t('first("A", "price") == 10 && last("A", "price") == 30 && last("A", "price", 1) == 20'), true);
    assert.equal(t('price < last("A", "price") && price > first("S", "price")'), true);
    assert.equal(t('last("B", "price") == null'), true);
  });
  test('errors name the position', () => {
    assert.throws(() => compileExpression('a == '), /expression "a == " at 5: unexpected end/);
    assert.throws(() => compileExpression('a # b'), /unexpected character "#"/);
    assert.throws(() => compileExpression('foo(1)'), /unknown function foo\(\)/);
    assert.throws(() => compileExpression('sum(A, "x")'), /stage name and a field name as string literals/);
    assert.throws(() => compileExpression('"abc'), /unterminated string/);
  });
});

describe('JSON patterns', () => {
  test('the seed pattern validates and matches', () => {
    const json = JSON.parse(
      readFileSync(new URL('../../examples/patterns/high-value-purchase.json', import.meta.url), 'utf8'),
    );
    const p = patternFromJson<Record<string, unknown>>(json);
    assert.deepEqual(
      p.stages().map((s) => s.name),
      ['start', 'middle', 'end'],
    );
    assert.equal(p.windows.firstAndLast, 30 * 60_000);
    const back = patternToJson(p);
    assert.equal(back.name, 'high-value-purchase');
    assert.equal(back.description, json.description);
    assert.equal(back.stages[2]?.within, 30 * 60_000, 'the top-level within is kept on the last stage');
    const ev = (eventType: string, value: number, timestamp: number) => ({
      eventType,
      value,
      timestamp,
      label: eventType,
      name: '',
      price: 0,
      ts: timestamp,
    });
    const r = run(
      p as never,
      [ev('LOGIN', 0, 0), ev('PURCHASE', 5000, 1000), ev('BROWSE', 0, 2000), ev('LOGOUT', 0, 3000)] as never,
    );
    assert.deepEqual(r.matches, ['LOGIN,PURCHASE,LOGOUT']);
  });

  test('precise validation errors', () => {
    const bad = (j: unknown, re: RegExp) => assert.throws(() => patternFromJson(j), re);
    bad({}, /pattern\.stages: /);
    bad({ stages: [] }, /pattern\.stages: expected at least one stage/);
    bad({ stages: [{ name: 'a', where: 'x >' }] }, /pattern\.stages\.0\.where: expression "x >" at 3/);
    bad({ stages: [{ name: 'a' }, { name: 'b', contiguity: 'soon' }] }, /pattern\.stages\.1\.contiguity/);
    bad({ stages: [{ name: 'a', times: 0 }] }, /pattern\.stages\.0\.times/);
    bad({ stages: [{ name: 'a', times: 2, oneOrMore: true }] }, /pattern\.stages\.0: use only one of/);
    bad({ stages: [{ name: 'a', until: 'x == 1' }] }, /pattern\.stages\.0: .*looping/);
    bad({ stages: [{ name: 'a', contiguity: 'next' }] }, /pattern\.stages\.0\.contiguity: the first stage/);
    bad({ stages: [{ name: 'a' }], extra: 1 }, /pattern: .*extra/i);
    bad({ stages: [{ name: 'a' }], within: '-5m' }, /pattern\.within/);
    bad({ skip: { strategy: 'skipToFirst' }, stages: [{ name: 'a' }] }, /pattern\.skip/);
  });

  test('round trip Pattern -> JSON -> Pattern for every feature', () => {
    const p = Pattern.begin<unknown>('s', AfterMatchSkipStrategy.skipToLast('m', true))
      .where("kind == 'c'")
      .or('price > 3')
      .next('m')
      .where("kind == 'a'")
      .oneOrMore()
      .greedy()
      .allowCombinations()
      .until('price == 5')
      .notFollowedBy('n')
      .where("kind == 'x'")
      .followedByAny(Pattern.begin<unknown>('g1').where('a == 1').next('g2').where('b == 2'))
      .times(1, 3)
      .consecutive()
      .notNext('nn')
      .where('z == 1')
      .followedBy('e')
      .where('price >= 5')
      .timesOrMore(2)
      .within('10s', 'previousAndCurrent')
      .within('1m');
    const j = patternToJson(p);
    const again = patternToJson(patternFromJson(JSON.parse(JSON.stringify(j))));
    assert.deepEqual(again, j);
    assert.equal(j.skip && typeof j.skip === 'object' && j.skip.strategy, 'skipToLast');
    assert.equal(j.stages[0]?.where, "(kind == 'c') || (price > 3)");
    assert.deepEqual(
      j.stages[3]?.group?.map((g) => g.name),
      ['g1', 'g2'],
    );
  });

  test('function conditions have no JSON form', () => {
    assert.throws(
      () => patternToJson(Pattern.begin('a').where(() => true)),
      /stage "a": a function condition has no JSON form/,
    );
  });

  test('property: generated JSON patterns round-trip unchanged', () => {
    const stage = (i: number) =>
      fc.record(
        {
          name: fc.constant(`s${i}`),
          contiguity: fc.constantFrom('next', 'followedBy', 'followedByAny'),
          where: fc.constantFrom('x > 1', "k == 'a'", 'count("s0") < 3'),
          times: fc.oneof(fc.integer({ min: 1, max: 3 }), fc.constant({ from: 1, to: 3 })),
          optional: fc.constant(true),
          inner: fc.constantFrom('consecutive', 'allowCombinations'),
        },
        { requiredKeys: ['name', 'contiguity'] },
      );
    fc.assert(
      fc.property(
        fc.tuple(stage(0), stage(1), stage(2)),
        fc.constantFrom('noSkip', 'skipToNext', 'skipPastLastEvent'),
        (st, skip) => {
          const stages = st.map((s, i) => {
            const { contiguity, ...rest } = s;
            const out: Record<string, unknown> = i === 0 ? rest : s;
            if (out.inner !== undefined && out.times === undefined) delete out.inner;
            return out;
          });
          const j = { skip, stages } as PatternJson;
          const once = patternToJson(patternFromJson(j));
          assert.deepEqual(patternToJson(patternFromJson(once)), once);
          for (const [i, s] of once.stages.entries()) assert.equal(s.where, stages[i]?.where);
        },
      ),
      { numRuns: 200 },
    );
  });
});
