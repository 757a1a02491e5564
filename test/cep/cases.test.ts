// The Flink CEP cases of the shared reference cep-cases.md (sections 1-8), fed to the NFA in the listed order.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Pattern, AfterMatchSkipStrategy as Skip, type SkipStrategy } from '../../src/cep/index.ts';
import { type E, events, is, run, sorted } from './helpers.ts';

const any = () => true;
const expectMatches = (p: Pattern<E>, input: string, expected: string[]) =>
  assert.deepEqual(sorted(run(p, events(input)).matches), sorted(expected));
const expectMatchesInOrder = (p: Pattern<E>, input: string, expected: string[]) =>
  assert.deepEqual(run(p, events(input)).matches, expected);

describe('1. contiguity between stages', () => {
  const abcde = 'a@1 b@2 c@3 d@4 e@5';
  test('1a followedBy', () =>
    expectMatches(Pattern.begin<E>('S').where(any).followedBy('E').where(any), abcde, ['a,b', 'b,c', 'c,d', 'd,e']));
  test('1b followedByAny', () =>
    expectMatches(Pattern.begin<E>('S').where(any).followedByAny('E').where(any), abcde, [
      'a,b',
      'a,c',
      'a,d',
      'a,e',
      'b,c',
      'b,d',
      'b,e',
      'c,d',
      'c,e',
      'd,e',
    ]));
  test('1c followedBy oneOrMore', () =>
    expectMatches(Pattern.begin<E>('S').where(any).followedBy('E').where(any).oneOrMore(), abcde, [
      'a,b,c,d,e',
      'a,b,c,d',
      'a,b,c',
      'a,b',
      'b,c,d,e',
      'b,c,d',
      'b,c',
      'c,d,e',
      'c,d',
      'd,e',
    ]));
  test('1d next', () => {
    const p = () => Pattern.begin<E>('M').where(is('a')).next('E').where(is('b'));
    expectMatches(p(), 'a@3 b@5', ['a,b']);
    expectMatches(p(), 'a@3 c@4 b@5', []);
  });
  test('1e docs: strict, relaxed, non-deterministic', () => {
    const input = 'a c b1 b2';
    expectMatches(Pattern.begin<E>('A').where(is('a')).next('B').where(is('b')), input, []);
    expectMatches(Pattern.begin<E>('A').where(is('a')).followedBy('B').where(is('b')), input, ['a,b1']);
    expectMatches(Pattern.begin<E>('A').where(is('a')).followedByAny('B').where(is('b')), input, ['a,b1', 'a,b2']);
  });
});

describe('2. looping stages', () => {
  test('2a followedBy zero-or-more', () =>
    expectMatches(
      Pattern.begin<E>('S')
        .where(is('c'))
        .followedBy('M')
        .where(is('a'))
        .oneOrMore()
        .optional()
        .followedBy('E')
        .where(is('b')),
      'c@1 a1@3 a2@4 d@5 a3@6 b@7',
      ['c,a1,a2,a3,b', 'c,a1,a2,b', 'c,a1,b', 'c,b'],
    ));
  test('2b followedByAny oneOrMore allowCombinations', () =>
    expectMatches(
      Pattern.begin<E>('S')
        .where(is('c'))
        .followedByAny('M')
        .where(is('a'))
        .oneOrMore()
        .allowCombinations()
        .followedByAny('E')
        .where(is('b')),
      'c@1 a1@3 a2@4 b@6',
      ['c,a1,a2,b', 'c,a1,b', 'c,a2,b'],
    ));
  test('2c followedByAny oneOrMore', () =>
    expectMatches(
      Pattern.begin<E>('S')
        .where(is('c'))
        .followedByAny('M')
        .where(is('a'))
        .oneOrMore()
        .followedByAny('E')
        .where(is('b')),
      'c a1 a2 a3 b',
      ['c,a1,a2,a3,b', 'c,a1,a2,b', 'c,a2,a3,b', 'c,a3,b', 'c,a2,b', 'c,a1,b'],
    ));
  test('2d begins with zero-or-more', () =>
    expectMatches(
      Pattern.begin<E>('M').where(is('a')).oneOrMore().optional().followedBy('E').where(is('b')),
      'a1@3 a2@4 a3@5 b@6',
      ['a1,a2,a3,b', 'a1,a2,b', 'a2,a3,b', 'a1,b', 'a2,b', 'a3,b', 'b'],
    ));
  test('2e consecutive vs relaxed inside the loop', () => {
    const p = (consec: boolean) => {
      const m = Pattern.begin<E>('S').where(is('C')).followedBy('M').where(is('A')).oneOrMore();
      if (consec) m.consecutive();
      return m.followedBy('E').where(is('B'));
    };
    const input = 'C D A1 A2 A3 D A4 B';
    expectMatches(p(true), input, ['C,A1,B', 'C,A1,A2,B', 'C,A1,A2,A3,B']);
    expectMatches(p(false), input, ['C,A1,B', 'C,A1,A2,B', 'C,A1,A2,A3,B', 'C,A1,A2,A3,A4,B']);
  });
  test('2f next zero-or-more consecutive', () =>
    expectMatches(
      Pattern.begin<E>('S')
        .where(is('start'))
        .next('M')
        .where(is('middle'))
        .oneOrMore()
        .optional()
        .consecutive()
        .followedBy('E')
        .where(is('end')),
      'start@1 event@2 middle@3 middle@4 middle@5 end@6',
      ['start,end'],
    ));
});

describe('3. times(n)', () => {
  const p3a = () =>
    Pattern.begin<E>('S')
      .where(is('c'))
      .next('M')
      .where(is('a'))
      .times(2)
      .allowCombinations()
      .followedBy('E')
      .where(is('b'));
  test('3a', () => expectMatches(p3a(), 'c@1 a1@2 a2@3 a3@4 b@6', ['c,a1,a2,b', 'c,a1,a3,b']));
  test('3b', () => expectMatches(p3a(), 'c@1 a1@2 f@3 a2@4 f@5 a3@6 b@7', ['c,a1,a2,b', 'c,a1,a3,b']));
  test('3c consecutive', () =>
    expectMatches(
      Pattern.begin<E>('S')
        .where(is('c'))
        .next('M')
        .where(is('a'))
        .times(2)
        .consecutive()
        .followedBy('E')
        .where(is('b')),
      'c a1 f a2 a3 b',
      [],
    ));
  test('3d starts with times', () =>
    expectMatches(
      Pattern.begin<E>('M').where(is('a')).times(2).consecutive().followedBy('E').where(is('b')),
      'a1@2 a2@3 a3@4 b@6',
      ['a1,a2,b', 'a2,a3,b'],
    ));
  test('3e followedByAny times allowCombinations; followedBy without', () => {
    expectMatches(
      Pattern.begin<E>('S')
        .where(is('c'))
        .followedByAny('M')
        .where(is('a'))
        .times(2)
        .allowCombinations()
        .followedBy('E')
        .where(is('b')),
      'c a1 a2 a3 b',
      ['c,a1,a2,b', 'c,a2,a3,b', 'c,a1,a3,b'],
    );
    expectMatches(
      Pattern.begin<E>('S').where(is('c')).followedBy('M').where(is('a')).times(2).followedBy('E').where(is('b')),
      'c a1 a2 a3 b',
      ['c,a1,a2,b'],
    );
  });
  test('times(from, to)', () =>
    expectMatches(Pattern.begin<E>('M').where(is('a')).times(2, 3).consecutive(), 'a1 a2 a3 x', [
      'a1,a2',
      'a1,a2,a3',
      'a2,a3',
    ]));
});

describe('4. greedy', () => {
  const p = (optional: boolean) => {
    const m = Pattern.begin<E>('S').where(is('c')).followedBy('M').where(is('a')).oneOrMore();
    if (optional) m.optional();
    return m.greedy().followedBy('E').where(is('d'));
  };
  test('4a', () => {
    expectMatches(p(true), 'c@1 a1@2 a2@3 a3@4 d@5', ['c,a1,a2,a3,d']);
    expectMatches(p(false), 'c@1 a1@2 a2@3 a3@4 d@5', ['c,a1,a2,a3,d']);
  });
  test('4b', () => expectMatches(p(true), 'c dummy a1 dummy a2 dummy a3 d', ['c,a1,a2,a3,d']));
  test('4c', () => expectMatches(p(true), 'c a1 a2 dummy d', ['c,a1,a2,d']));
  test('4d', () => expectMatches(p(true), 'c dummy d', ['c,d']));
  test('4e greedy until', () => {
    const pu = () =>
      Pattern.begin<E>('S')
        .where(is('c'))
        .followedBy('M')
        .where(is('a'))
        .oneOrMore()
        .optional()
        .greedy()
        .until((e) => e.price > 3)
        .followedBy('E')
        .where(is('d'));
    expectMatches(pu(), 'c(1) a1(2) a2(3) a3(3) a(4) d(3)', ['c,a1,a2,a3,d']);
    expectMatches(pu(), 'c(1) a(4) a1(2) a2(3) a3(3) d(3)', ['c,d']);
  });
});

test('greedy times(from, to): only the longest run before the next stage', () => {
  const p = (greedy: boolean) => {
    const m = Pattern.begin<E>('M').where(is('a')).times(1, 3).consecutive();
    if (greedy) m.greedy();
    return m.followedBy('E').where(is('b'));
  };
  expectMatches(p(false), 'a1 a2 a3 b', ['a1,b', 'a1,a2,b', 'a1,a2,a3,b', 'a2,b', 'a2,a3,b', 'a3,b']);
  expectMatches(p(true), 'a1 a2 a3 b', ['a1,a2,a3,b', 'a2,a3,b', 'a3,b']);
});

describe('5. until', () => {
  const p = (inner: 'none' | 'comb' | 'consec') => {
    const m = Pattern.begin<E>('S').where(is('c')).followedBy('M').where(is('a')).oneOrMore();
    if (inner === 'comb') m.allowCombinations();
    if (inner === 'consec') m.consecutive();
    return m
      .until((e) => e.price === 5)
      .followedBy('E')
      .where((e) => e.price === 5);
  };
  test('5a', () => expectMatches(p('none'), 'c(1)@1 a1(2)@3 a2(3)@4 brk(5)@6 ign(6)@7', ['c,a1,a2,brk', 'c,a1,brk']));
  test('5b', () =>
    expectMatches(p('comb'), 'c(1) a1(2) a2(3) a3(4) brk(5) ign(6)', [
      'c,a1,a2,a3,brk',
      'c,a1,a2,brk',
      'c,a1,a3,brk',
      'c,a1,brk',
    ]));
  test('5c', () => expectMatches(p('consec'), 'c(1) a1(2) b(3) a3(4) brk(5) ign(6)', ['c,a1,brk']));
});

describe('6. negation', () => {
  const input = 'a1@1 c1@2 b1@3 c2@4 d@5';
  test('6a notNext', () =>
    expectMatches(
      Pattern.begin<E>('S')
        .where(is('a'))
        .notNext('N')
        .where(is('b'))
        .followedByAny('M')
        .where(is('c'))
        .followedBy('E')
        .where(is('d')),
      input,
      ['a1,c1,d', 'a1,c2,d'],
    ));
  test('6b notFollowedBy', () =>
    expectMatches(
      Pattern.begin<E>('S')
        .where(is('a'))
        .notFollowedBy('N')
        .where(is('b'))
        .followedByAny('M')
        .where(is('c'))
        .followedBy('E')
        .where(is('d')),
      input,
      ['a1,c1,d'],
    ));
  test('6c notNext violated', () =>
    expectMatches(
      Pattern.begin<E>('S')
        .where(is('a'))
        .notNext('N')
        .where(is('b'))
        .followedBy('M')
        .where(is('c'))
        .followedBy('E')
        .where(is('d')),
      'a1@1 b1@2 c1@3 c2@4 d@5',
      [],
    ));
  test('6d notNext at the end', () =>
    expectMatches(
      Pattern.begin<E>('S')
        .where(is('a'))
        .followedByAny('M')
        .where(is('c'))
        .followedByAny('E')
        .where(is('d'))
        .notNext('N')
        .where(is('b')),
      'a c1 c2 d b',
      [],
    ));
  test('6e notFollowedBy before an optional times', () =>
    expectMatches(
      Pattern.begin<E>('S')
        .where(is('a'))
        .notFollowedBy('N')
        .where(is('b'))
        .followedByAny('M')
        .where(is('c'))
        .times(2)
        .optional()
        .followedBy('E')
        .where(is('d')),
      'a1 d1 e b1 c1 c2 d2',
      ['a1,d1'],
    ));
  test('6f notFollowedBy after times', () =>
    expectMatches(
      Pattern.begin<E>('S')
        .where(is('a'))
        .followedByAny('M')
        .where(is('b'))
        .times(2)
        .notFollowedBy('N')
        .where(is('c'))
        .followedBy('E')
        .where(is('d')),
      'a1 b1 c b2 d',
      [],
    ));
  test('6g notFollowedBy last, with within: matches complete on timeout', () => {
    const p = Pattern.begin<E>('S').where(is('start')).notFollowedBy('N').where(is('middle')).within(5);
    const r = run(p, events('start@1 middle@4 start@5 start@11 middle@18'));
    assert.deepEqual(r.matches, ['start', 'start']);
    assert.deepEqual(
      r.matchList.map((m) => m.S?.[0]?.ts),
      [5, 11],
    );
  });
  test('notFollowedBy last without within is rejected', () =>
    assert.throws(() => run(Pattern.begin<E>('S').where(is('a')).notFollowedBy('N').where(is('b')), []), /within/));
});

describe('7. within', () => {
  const input = 'start1@1 start2@2 middle@3 foobar@4 end@11 end@13';
  test('7a first-and-last', () =>
    expectMatches(
      Pattern.begin<E>('S')
        .where(is('start'))
        .followedBy('M')
        .where(is('middle'))
        .followedBy('E')
        .where(is('end'))
        .within(10),
      input,
      ['start2,middle,end'],
    ));
  test('7b timeouts', () => {
    const r = run(
      Pattern.begin<E>('S')
        .where(is('start'))
        .followedByAny('M')
        .where(is('middle'))
        .followedByAny('E')
        .where(is('end'))
        .within(10),
      events(input),
    );
    assert.deepEqual(r.matches, ['start2,middle,end']);
    assert.equal(r.matchList[0]?.E?.[0]?.ts, 11);
    assert.deepEqual(
      r.timeouts.map((t) => `${t.match}@${t.ts}`).sort(),
      ['start1,middle@11', 'start1@11', 'start2,middle@12', 'start2@12'].sort(),
    );
  });
  test('7c previous-and-current', () =>
    expectMatches(
      Pattern.begin<E>('S')
        .where(is('start'))
        .followedBy('M')
        .where(is('middle'))
        .followedBy('E')
        .where(is('end'))
        .within(9, 'previousAndCurrent'),
      input,
      ['start1,middle,end', 'start2,middle,end'],
    ));
});

describe('8. after-match skip strategies', () => {
  const a6 = 'a1 a2 a3 a4 a5 a6';
  const s3 = (skip: SkipStrategy) => Pattern.begin<E>('S', skip).where(is('a')).times(3);
  test('8a', () => {
    expectMatches(s3(Skip.noSkip()), a6, ['a1,a2,a3', 'a2,a3,a4', 'a3,a4,a5', 'a4,a5,a6']);
    expectMatches(s3(Skip.skipPastLastEvent()), a6, ['a1,a2,a3', 'a4,a5,a6']);
  });
  test('8b', () => {
    const p = (s: SkipStrategy) => Pattern.begin<E>('S', s).where(is('a')).followedByAny('E').where(is('b'));
    expectMatches(p(Skip.noSkip()), 'a1 b1 a2 b2', ['a1,b1', 'a1,b2', 'a2,b2']);
    expectMatches(p(Skip.skipToNext()), 'a1 b1 a2 b2', ['a1,b1', 'a2,b2']);
  });
  test('8c', () => {
    const p = (s: SkipStrategy) => Pattern.begin<E>('S', s).where(is('a')).next('E').where(is('b')).oneOrMore();
    expectMatches(p(Skip.noSkip()), 'a1 b1 b2 b3', ['a1,b1,b2,b3', 'a1,b1,b2', 'a1,b1']);
    expectMatches(p(Skip.skipToNext()), 'a1 b1 b2 b3', ['a1,b1']);
  });
  test('8d skipToFirst / skipToLast', () => {
    const p = (s: SkipStrategy) =>
      Pattern.begin<E>('S', s)
        .where((e) => e.name.includes('a'))
        .times(2)
        .next('E')
        .where((e) => e.name.includes('b'))
        .times(2);
    expectMatches(p(Skip.skipToFirst('E')), 'ab1 ab2 ab3 ab4 ab5 ab6', ['ab1,ab2,ab3,ab4', 'ab3,ab4,ab5,ab6']);
    expectMatches(p(Skip.skipToLast('E')), 'ab1 ab2 ab3 ab4 ab5 ab6 ab7', ['ab1,ab2,ab3,ab4', 'ab4,ab5,ab6,ab7']);
  });
  test('8e skipPastLastEvent with followedByAny', () =>
    expectMatches(
      Pattern.begin<E>('A', Skip.skipPastLastEvent())
        .where(is('a'))
        .followedByAny('B')
        .where(is('b'))
        .followedByAny('C')
        .where(is('c'))
        .followedBy('D')
        .where(is('d')),
      'a1 a2 b1 b2 c1 c2 d1 d2',
      ['a1,b1,c1,d1'],
    ));
  test('8f skipPastLastEvent with next', () =>
    expectMatches(
      Pattern.begin<E>('A', Skip.skipPastLastEvent()).where(is('a')).next('B').where(is('b')),
      'a1 c a2 b2',
      ['a2,b2'],
    ));
  test('8g skipToFirst(B) consecutive', () =>
    expectMatches(
      Pattern.begin<E>('A', Skip.skipToFirst('B')).where(is('a')).next('B').where(is('b')).oneOrMore().consecutive(),
      'a1 b1 a2 b2 b3 a3 b4',
      ['a1,b1', 'a2,b2', 'a3,b4'],
    ));
  test('8h skip to a stage without events: no skip, or throws with throwOnMiss', () => {
    const p = (s: SkipStrategy) =>
      Pattern.begin<E>('A', s).where(is('a')).next('B').where(is('b')).optional().next('C').where(is('c'));
    expectMatches(p(Skip.skipToFirst('B')), 'a1 c1 a2 c2 a3 b3 c3', ['a1,c1', 'a2,c2', 'a3,b3,c3']);
    assert.throws(() => run(p(Skip.skipToFirst('B', true)), events('a1 c1')), /matched no event/);
    assert.throws(() => run(Pattern.begin<E>('A', Skip.skipToFirst('A', true)).where(is('a')), events('a1')), /loop/);
    assert.throws(
      () =>
        Pattern.begin<E>('A', Skip.skipToFirst('X')).where(is('a')) &&
        run(Pattern.begin<E>('A', Skip.skipToFirst('X')), []),
      /not in the pattern/,
    );
  });
  test('8i docs: b+ c and a b+', () => {
    const bc = (s: SkipStrategy) =>
      Pattern.begin<E>('b', s).where(is('b')).oneOrMore().consecutive().next('c').where(is('c'));
    const input = 'b1 b2 b3 c';
    expectMatches(bc(Skip.noSkip()), input, ['b1,b2,b3,c', 'b2,b3,c', 'b3,c']);
    expectMatches(bc(Skip.skipToNext()), input, ['b1,b2,b3,c', 'b2,b3,c', 'b3,c']);
    expectMatches(bc(Skip.skipPastLastEvent()), input, ['b1,b2,b3,c']);
    expectMatches(bc(Skip.skipToFirst('b')), input, ['b1,b2,b3,c', 'b2,b3,c', 'b3,c']);
    expectMatches(bc(Skip.skipToLast('b')), input, ['b1,b2,b3,c', 'b3,c']);
    const ab = (s: SkipStrategy) =>
      Pattern.begin<E>('a', s).where(is('a')).next('b').where(is('b')).oneOrMore().consecutive();
    expectMatches(ab(Skip.noSkip()), 'a b1 b2 b3', ['a,b1', 'a,b1,b2', 'a,b1,b2,b3']);
    expectMatchesInOrder(ab(Skip.skipToNext()), 'a b1 b2 b3', ['a,b1']);
  });
  test('9g times(2) skipPastLastEvent', () =>
    expectMatches(Pattern.begin<E>('S', Skip.skipPastLastEvent()).where(is('a')).times(2), 'a1 a2 a3 a4', [
      'a1,a2',
      'a3,a4',
    ]));
});

describe('group patterns and conditions', () => {
  test('group oneOrMore: (a b)+ c', () =>
    expectMatches(
      Pattern.begin<E>('S')
        .where(is('s'))
        .next(Pattern.begin<E>('A').where(is('a')).next('B').where(is('b')))
        .oneOrMore()
        .consecutive()
        .next('C')
        .where(is('c')),
      's a1 b1 a2 b2 c',
      ['s,a1,a2,b1,b2,c'],
    ));
  test('group followedBy times(2)', () => {
    const r = run(
      Pattern.begin<E>('S')
        .where(is('s'))
        .followedBy(Pattern.begin<E>('A').where(is('a')).followedBy('B').where(is('b')))
        .times(2)
        .followedBy('C')
        .where(is('c')),
      events('s a1 b1 x a2 b2 c'),
    );
    assert.deepEqual(r.matches, ['s,a1,a2,b1,b2,c']);
  });
  test('or and iterative conditions', () => {
    // A run of strictly rising prices after a start, read through the events already matched.
    const p = Pattern.begin<E>('S')
      .where(is('s'))
      .next('R')
      .where((e, ctx) => {
        const prev = ctx.getEventsForPattern('R');
        const last =
          prev.length > 0 ? (prev[prev.length - 1] as E).price : (ctx.getEventsForPattern('S')[0]?.price ?? 0);
        return e.price > last;
      })
      .oneOrMore()
      .consecutive()
      .next('X')
      .where(is('x'))
      .or(is('y'));
    expectMatches(p, 's(1) p1(2) p2(3) p3(2) x', []);
    expectMatches(p, 's(1) p1(2) p2(3) y', ['s,p1,p2,y']);
  });
  test('subtype narrows with a type guard', () => {
    const p = Pattern.begin<E>('S')
      .subtype((e): e is E & { name: 'a' } => e.name === 'a')
      .followedBy('T')
      .where(is('b'));
    expectMatches(p, 'x a1 b1', ['a1,b1']);
  });
  test('malformed patterns name the stage', () => {
    assert.throws(() => Pattern.begin<E>('S').where(is('a')).until(is('b')), /stage "S".*looping/);
    assert.throws(() => Pattern.begin<E>('S').oneOrMore().times(2), /quantifier/);
    assert.throws(() => run(Pattern.begin<E>('S').next('S'), []), /Duplicate stage name/);
    assert.throws(() => Pattern.begin<E>('S').next('N').optional().notNext('X'), /optional path to NOT/);
    assert.throws(() => Pattern.begin<E>('S').times(0), /times: expected an integer >= 1/);
  });
});
