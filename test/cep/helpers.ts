import { compile, type Match, Nfa, type Pattern } from '../../src/cep/index.ts';

export interface E {
  label: string;
  name: string;
  price: number;
  ts: number;
}

/** `a1(2)@3` -> label a1, name a, price 2, ts 3; a missing ts is the position (1-based). */
export function events(spec: string): E[] {
  return spec
    .trim()
    .split(/\s+/)
    .map((tok, i) => {
      const m = /^([A-Za-z]+?)(\d*)(?:\(([\d.]+)\))?(?:@(\d+))?$/.exec(tok);
      if (m === null) throw new Error(`bad event ${tok}`);
      const name = m[1] as string;
      return {
        label: `${name}${m[2]}`,
        name,
        price: m[3] === undefined ? 0 : Number(m[3]),
        ts: m[4] === undefined ? i + 1 : Number(m[4]),
      };
    });
}

export const is =
  (name: string) =>
  (e: E): boolean =>
    e.name === name;

export function flat(m: Match<E>): string {
  return Object.values(m)
    .flat()
    .map((e) => e.label)
    .join(',');
}

/** Feeds events in the given order (NFA-level, as Flink's NFA tests do): advanceTime(ts) then process. */
export function run(
  pattern: Pattern<E>,
  input: E[],
): { matches: string[]; timeouts: { match: string; ts: number }[]; matchList: Match<E>[] } {
  const nfa = new Nfa(compile(pattern));
  const st = nfa.initialState();
  const matchList: Match<E>[] = [];
  const timeouts: { match: string; ts: number }[] = [];
  input.forEach((e, i) => {
    const adv = nfa.advanceTime(st, e.ts);
    matchList.push(...adv.matches);
    for (const t of adv.timeouts) timeouts.push({ match: flat(t.match), ts: t.timestamp });
    matchList.push(...nfa.process(st, { id: i, ts: e.ts, value: e }));
  });
  return { matches: matchList.map(flat), timeouts, matchList };
}

export const sorted = (xs: string[]): string[] => [...xs].sort();
