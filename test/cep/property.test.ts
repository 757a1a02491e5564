// Property: on random event sequences, the NFA's matches equal those of a brute-force reference matcher that
// enumerates index sequences (stages without loops on longer inputs, with loops on short ones).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { compile, freeze, Nfa, Pattern, type SkipStrategy, thaw } from '../../src/cep/index.ts';

type Contiguity = 'next' | 'followedBy' | 'followedByAny';
interface PosStage {
  kind: 'pos';
  letter: string;
  contiguity: Contiguity;
  min: number;
  max: number; // Infinity for loops
  optional: boolean;
  inner: 'default' | 'consecutive' | 'allowCombinations';
}
interface NotStage {
  kind: 'notNext' | 'notFollowedBy';
  letter: string;
}
type Stage = PosStage | NotStage;
interface Ev {
  i: number;
  letter: string;
}

function build(stages: Stage[], within: number | null): Pattern<Ev> {
  let p: Pattern<Ev> | null = null;
  stages.forEach((s, k) => {
    const name = `s${k}`;
    const cond = (e: Ev) => e.letter === s.letter;
    if (p === null) p = Pattern.begin<Ev>(name);
    else if (s.kind === 'pos') p = p[s.contiguity](name);
    else p = p[s.kind](name);
    p.where(cond);
    if (s.kind !== 'pos') return;
    if (s.max === Number.POSITIVE_INFINITY) {
      if (s.min === 1) p.oneOrMore();
      else p.timesOrMore(s.min);
    } else if (s.min !== 1 || s.max !== 1) {
      if (s.min === s.max) p.times(s.min);
      else p.times(s.min, s.max);
    }
    if (s.inner === 'consecutive') p.consecutive();
    if (s.inner === 'allowCombinations') p.allowCombinations();
    if (s.optional) p.optional();
  });
  const last = p as unknown as Pattern<Ev>;
  if (within !== null) last.within(within);
  return last;
}

/** Enumerates every match by brute force over index sequences. */
function reference(stages: Stage[], ev: string[], within: number | null): string[] {
  const out: string[] = [];
  const n = ev.length;
  const fits = (j: number, s: { letter: string }) => ev[j] === s.letter;
  const rec = (si: number, prev: number, acc: number[], nots: NotStage[]): void => {
    if (si === stages.length) {
      if (acc.length === 0) return;
      let end = acc[acc.length - 1] as number;
      for (const nt of nots) {
        // notNext at the end: the match completes when the next event arrives and is not the NOT event.
        if (prev + 1 >= n || fits(prev + 1, nt)) return;
        end = prev + 1;
      }
      if (within !== null && end - (acc[0] as number) >= within) return;
      out.push(acc.join(','));
      return;
    }
    const s = stages[si] as Stage;
    if (s.kind !== 'pos') {
      rec(si + 1, prev, acc, [...nots, s]);
      return;
    }
    if (s.optional) rec(si + 1, prev, acc, nots);
    const firstCandidates: number[] = [];
    for (let j = prev + 1; j < n; j++) {
      if (!fits(j, s)) {
        if (s.contiguity === 'next' && acc.length > 0) break;
        continue;
      }
      if (acc.length > 0 && s.contiguity === 'next' && j !== prev + 1) break;
      firstCandidates.push(j);
      if (acc.length > 0 && s.contiguity === 'followedBy') break;
    }
    for (const j1 of firstCandidates) {
      let ok = true;
      for (const nt of nots) {
        if (nt.kind === 'notNext' && (prev + 1 >= n || fits(prev + 1, nt))) ok = false;
        if (nt.kind === 'notFollowedBy') for (let q = prev + 1; q < j1; q++) if (fits(q, nt)) ok = false;
      }
      if (!ok) continue;
      const takeMore = (taken: number[]): void => {
        if (taken.length >= s.min) rec(si + 1, taken[taken.length - 1] as number, [...acc, ...taken], []);
        if (taken.length >= s.max) return;
        const last = taken[taken.length - 1] as number;
        for (let j = last + 1; j < n; j++) {
          if (!fits(j, s)) {
            if (s.inner === 'consecutive') break;
            continue;
          }
          takeMore([...taken, j]);
          if (s.inner !== 'allowCombinations') break;
        }
      };
      takeMore([j1]);
    }
  };
  rec(0, -1, [], []);
  return out.sort();
}

function nfaMatches(stages: Stage[], ev: string[], within: number | null): string[] {
  const nfa = new Nfa(compile(build(stages, within)));
  const st = nfa.initialState();
  const out: string[] = [];
  const collect = (ms: Record<string, Ev[]>[]) => {
    for (const m of ms)
      out.push(
        Object.values(m)
          .flat()
          .map((e) => e.i)
          .sort((a, b) => a - b)
          .join(','),
      );
  };
  ev.forEach((letter, i) => {
    collect(nfa.advanceTime(st, i).matches);
    collect(nfa.process(st, { id: i, ts: i, value: { i, letter } }));
  });
  return out.sort();
}

const letters = ['a', 'b', 'c'];
const posStage = (loops: boolean): fc.Arbitrary<PosStage> =>
  fc
    .record({
      letter: fc.constantFrom(...letters),
      contiguity: fc.constantFrom<Contiguity>('next', 'followedBy', 'followedByAny'),
      q: loops
        ? fc.constantFrom('one', 'times2', 'times1to2', 'times2to3', 'oneOrMore', 'twoOrMore')
        : fc.constant('one'),
      optional: fc.boolean(),
      inner: fc.constantFrom<PosStage['inner']>('default', 'consecutive', 'allowCombinations'),
    })
    .map(({ letter, contiguity, q, optional, inner }) => {
      const [min, max] = (
        {
          one: [1, 1],
          times2: [2, 2],
          times1to2: [1, 2],
          times2to3: [2, 3],
          oneOrMore: [1, Number.POSITIVE_INFINITY],
          twoOrMore: [2, Number.POSITIVE_INFINITY],
        } as Record<string, [number, number]>
      )[q] as [number, number];
      return { kind: 'pos', letter, contiguity, min, max, optional, inner: q === 'one' ? 'default' : inner };
    });

/** Stage lists the API accepts and whose NOT stages sit between mandatory single stages (their own letter). */
const stagesArb = (loops: boolean, maxStages: number): fc.Arbitrary<Stage[]> =>
  fc
    .tuple(
      fc.array(posStage(loops), { minLength: 1, maxLength: maxStages }),
      fc.array(fc.record({ at: fc.nat(), kind: fc.constantFrom<NotStage['kind']>('notNext', 'notFollowedBy') }), {
        maxLength: 1,
      }),
    )
    .map(([pos, nots]) => {
      const out: Stage[] = [...pos];
      for (const nt of nots) {
        const at = 1 + (nt.at % out.length);
        const before = out[at - 1] as Stage;
        const after = out[at];
        const single = (s: Stage | undefined) => s?.kind === 'pos' && !s.optional && s.min === 1 && s.max === 1;
        if (!single(before)) continue;
        if (after === undefined ? nt.kind !== 'notNext' : !single(after)) continue;
        out.splice(at, 0, { kind: nt.kind, letter: 'x' });
      }
      return out;
    })
    .filter((s) => s.some((x) => x.kind === 'pos' && !x.optional));

test('property: single stages (next / followedBy / followedByAny / optional / NOT) equal the reference', () => {
  fc.assert(
    fc.property(
      stagesArb(false, 4),
      fc.array(fc.constantFrom('a', 'b', 'c', 'x'), { maxLength: 10 }),
      fc.option(fc.integer({ min: 1, max: 6 }), { nil: null }),
      (stages, ev, within) => {
        assert.deepEqual(nfaMatches(stages, ev, within), reference(stages, ev, within));
      },
    ),
    { numRuns: 400 },
  );
});

test('property: quantifiers and loops on short sequences equal the reference', () => {
  fc.assert(
    fc.property(
      stagesArb(true, 3),
      fc.array(fc.constantFrom('a', 'b', 'c', 'x'), { maxLength: 7 }),
      fc.option(fc.integer({ min: 2, max: 6 }), { nil: null }),
      (stages, ev, within) => {
        assert.deepEqual(nfaMatches(stages, ev, within), reference(stages, ev, within));
      },
    ),
    { numRuns: 400 },
  );
});

test('property: freezing and thawing the NFA state (through JSON) after every event changes no result', () => {
  fc.assert(
    fc.property(
      stagesArb(true, 3),
      fc.array(fc.constantFrom('a', 'b', 'c', 'x'), { maxLength: 8 }),
      fc.option(fc.integer({ min: 2, max: 6 }), { nil: null }),
      (stages, ev, within) => {
        const nfa = new Nfa(compile(build(stages, within)));
        let st = nfa.initialState();
        const out: string[] = [];
        ev.forEach((letter, i) => {
          const adv = nfa.advanceTime(st, i);
          for (const m of adv.matches) out.push(JSON.stringify(m));
          for (const t of adv.timeouts) out.push(`timeout ${t.timestamp} ${JSON.stringify(t.match)}`);
          for (const m of nfa.process(st, { id: i, ts: i, value: { i, letter } })) out.push(JSON.stringify(m));
          st = thaw(JSON.parse(JSON.stringify(freeze(st))));
        });
        const expected: string[] = [];
        const whole = nfa.initialState();
        ev.forEach((letter, i) => {
          const adv = nfa.advanceTime(whole, i);
          for (const m of adv.matches) expected.push(JSON.stringify(m));
          for (const t of adv.timeouts) expected.push(`timeout ${t.timestamp} ${JSON.stringify(t.match)}`);
          for (const m of nfa.process(whole, { id: i, ts: i, value: { i, letter } })) expected.push(JSON.stringify(m));
        });
        assert.deepEqual(out, expected);
      },
    ),
    { numRuns: 200 },
  );
});

/** The deterministic match (next / followedBy single stages) starting at `s`, or null. */
function matchFrom(letters: string[], contiguity: ('next' | 'followedBy')[], ev: string[], s: number): number[] | null {
  if (ev[s] !== letters[0]) return null;
  const path = [s];
  for (let k = 1; k < letters.length; k++) {
    const prev = path[path.length - 1] as number;
    let j = -1;
    if (contiguity[k] === 'next') j = ev[prev + 1] === letters[k] ? prev + 1 : -1;
    else for (let q = prev + 1; q < ev.length && j < 0; q++) if (ev[q] === letters[k]) j = q;
    if (j < 0) return null;
    path.push(j);
  }
  return path;
}

test('property: skipPastLastEvent and skipToNext on next/followedBy chains equal a leftmost scan', () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.constantFrom('a', 'b', 'c'), fc.constantFrom<'next' | 'followedBy'>('next', 'followedBy')), {
        minLength: 1,
        maxLength: 4,
      }),
      fc.array(fc.constantFrom('a', 'b', 'c'), { maxLength: 14 }),
      (spec, ev) => {
        const letters = spec.map(([l]) => l);
        const contiguity = spec.map(([, c]) => c);
        const run = (skip: SkipStrategy) => {
          let p = Pattern.begin<{ i: number; letter: string }>('s0', skip).where((e) => e.letter === letters[0]);
          for (let k = 1; k < spec.length; k++)
            p = p[contiguity[k] as 'next' | 'followedBy'](`s${k}`).where((e) => e.letter === letters[k]);
          const nfa = new Nfa(compile(p));
          const st = nfa.initialState();
          const out: string[] = [];
          ev.forEach((letter, i) => {
            for (const m of nfa.process(st, { id: i, ts: i, value: { i, letter } }))
              out.push(
                Object.values(m)
                  .flat()
                  .map((e) => e.i)
                  .join(','),
              );
          });
          return out;
        };
        const all: number[][] = [];
        for (let s = 0; s < ev.length; s++) {
          const m = matchFrom(letters, contiguity, ev, s);
          if (m !== null) all.push(m);
        }
        const leftmost: string[] = [];
        let lastEnd = -1;
        for (const m of all)
          if ((m[0] as number) > lastEnd) {
            leftmost.push(m.join(','));
            lastEnd = m[m.length - 1] as number;
          }
        assert.deepEqual(run({ kind: 'skipPastLastEvent' }), leftmost);
        assert.deepEqual([...run({ kind: 'skipToNext' })].sort(), all.map((m) => m.join(',')).sort());
      },
    ),
    { numRuns: 300 },
  );
});
