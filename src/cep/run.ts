import { invalidArgument } from '../core/index.ts';
import { patternFromJson } from './json.ts';
import { compile, type Match, Nfa, type NfaState } from './nfa.ts';

export interface RunResult {
  matches: { key: unknown; timestamp: number; match: Match<unknown> }[];
  timeouts: { key: unknown; timeoutTimestamp: number; match: Match<unknown> }[];
  events: number;
  keys: number;
}

function get(value: unknown, path: string): unknown {
  let cur = value;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, part)) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/** The event time of an event: epoch ms, or an ISO-8601 string. */
function timeOf(event: unknown, field: string, where: string): number {
  const t = get(event, field);
  if (typeof t === 'number' && Number.isFinite(t)) return t;
  if (typeof t === 'string') {
    const ms = Date.parse(t);
    if (!Number.isNaN(ms)) return ms;
  }
  throw invalidArgument(`${where}.${field}`, 'an epoch-ms number or an ISO-8601 time', t);
}

/**
 * Runs a JSON pattern over events per key in event-time order (ties keep file order), then ends event time so
 * that every partial match with a window times out: what `tributary cep run` prints.
 */
export function runPattern(
  patternJson: unknown,
  events: unknown[],
  opts: { key: string; time: string; source?: string },
): RunResult {
  const nfa = new Nfa<unknown>(compile(patternFromJson<unknown>(patternJson)));
  const src = opts.source ?? 'events';
  const rows = events.map((e, i) => {
    const where = `${src}[${i + 1}]`;
    if (e === null || typeof e !== 'object' || Array.isArray(e)) throw invalidArgument(where, 'a JSON object', e);
    const key = get(e, opts.key);
    if (key === undefined) throw invalidArgument(`${where}.${opts.key}`, 'a key value (the --key field)', key);
    return { e, i, key, ts: timeOf(e, opts.time, where) };
  });
  rows.sort((a, b) => a.ts - b.ts || a.i - b.i);
  const states = new Map<string, { st: NfaState<unknown>; key: unknown; seq: number }>();
  const out: RunResult = { matches: [], timeouts: [], events: rows.length, keys: 0 };
  const advance = (s: { st: NfaState<unknown>; key: unknown }, time: number) => {
    const r = nfa.advanceTime(s.st, time);
    for (const t of r.timeouts) out.timeouts.push({ key: s.key, timeoutTimestamp: t.timestamp, match: t.match });
    for (const m of r.matches) out.matches.push({ key: s.key, timestamp: time, match: m });
  };
  for (const r of rows) {
    const ek = JSON.stringify(r.key) ?? 'null';
    let s = states.get(ek);
    if (s === undefined) {
      s = { st: nfa.initialState(), key: r.key, seq: 0 };
      states.set(ek, s);
    }
    advance(s, r.ts);
    for (const m of nfa.process(s.st, { id: s.seq++, ts: r.ts, value: r.e }))
      out.matches.push({ key: r.key, timestamp: r.ts, match: m });
  }
  // End of input: event time jumps to the end, as Flink's final watermark does.
  for (const s of states.values()) advance(s, Number.MAX_SAFE_INTEGER);
  out.keys = states.size;
  return out;
}
