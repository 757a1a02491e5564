// Events/s through the seed pattern (LOGIN, next PURCHASE > 1000, followedBy LOGOUT, within 30 min, per user):
// the CEP NFA compiled from examples/patterns/high-value-purchase.json beside a hand-written state machine for
// the same pattern, in the same run, on the same generated events; both must find the same matches and timeouts.
// `--operator` also runs the full CEP operator (state stores, event-time buffer) through the TopologyTestDriver.
// Usage: node bench/cep-throughput.ts [--events N] [--users U] [--operator]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { CEP, compile, Nfa, type NfaState, patternFromJson } from '../src/cep/index.ts';
import { Serdes, StreamsBuilder, TopologyTestDriver } from '../src/streams/index.ts';

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '2000000' },
    users: { type: 'string', default: '100000' },
    operator: { type: 'boolean', default: false },
  },
});
const N = Number(values.events);
const U = Number(values.users);
const WINDOW = 30 * 60_000;
const STEP_MS = 2;

interface Event {
  eventId: number;
  userId: number;
  eventType: string;
  value: number;
  timestamp: number;
}

/** Deterministic event stream: each user cycles LOGIN -> BROWSE/PURCHASE* -> LOGOUT, users interleaved at random. */
function* generate(n: number): Generator<Event> {
  let seed = 42;
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x80000000;
  };
  const phase = new Uint8Array(U);
  for (let i = 0; i < n; i++) {
    const userId = Math.floor(rnd() * U);
    let eventType: string;
    let value = 0;
    if (phase[userId] === 0) {
      eventType = 'LOGIN';
      phase[userId] = 1;
    } else {
      const r = rnd();
      if (r < 0.45) {
        eventType = 'PURCHASE';
        value = Math.floor(rnd() * 2500);
      } else if (r < 0.75) eventType = 'BROWSE';
      else {
        eventType = 'LOGOUT';
        phase[userId] = 0;
      }
    }
    yield { eventId: i, userId, eventType, value, timestamp: i * STEP_MS };
  }
}

function handWritten(): { ms: number; matches: number; timeouts: number; maxLive: number } {
  // Per user: the LOGIN that the next event may extend (strict), and LOGIN+PURCHASE pairs awaiting a LOGOUT.
  interface S {
    login: number; // timestamp, -1 none
    pending: number[]; // login timestamps of [LOGIN, PURCHASE] partial matches
  }
  const users = new Map<number, S>();
  let matches = 0;
  let timeouts = 0;
  let maxLive = 0;
  const t0 = performance.now();
  for (const e of generate(N)) {
    let s = users.get(e.userId);
    if (s === undefined) {
      s = { login: -1, pending: [] };
      users.set(e.userId, s);
    }
    const t = e.timestamp;
    if (s.login >= 0 && t - s.login >= WINDOW) {
      s.login = -1;
      timeouts++;
    }
    if (s.pending.length > 0) {
      const before = s.pending.length;
      s.pending = s.pending.filter((l) => t - l < WINDOW);
      timeouts += before - s.pending.length;
    }
    if (e.eventType === 'LOGOUT') {
      matches += s.pending.length;
      s.pending = [];
    }
    if (s.login >= 0 && e.eventType === 'PURCHASE' && e.value > 1000) s.pending.push(s.login);
    s.login = e.eventType === 'LOGIN' ? t : -1;
    if (s.login < 0 && s.pending.length === 0) users.delete(e.userId);
    if ((e.eventId & 0xffff) === 0) maxLive = Math.max(maxLive, users.size);
  }
  return { ms: performance.now() - t0, matches, timeouts, maxLive };
}

const pattern = JSON.parse(
  readFileSync(new URL('../examples/patterns/high-value-purchase.json', import.meta.url), 'utf8'),
) as unknown;

function viaNfa(): { ms: number; matches: number; timeouts: number; maxLive: number } {
  const nfa = new Nfa<Event>(compile(patternFromJson<Event>(pattern)));
  const users = new Map<number, { st: NfaState<Event>; seq: number }>();
  let matches = 0;
  let timeouts = 0;
  let maxLive = 0;
  const t0 = performance.now();
  for (const e of generate(N)) {
    let s = users.get(e.userId);
    if (s === undefined) {
      s = { st: nfa.initialState(), seq: 0 };
      users.set(e.userId, s);
    }
    timeouts += nfa.advanceTime(s.st, e.timestamp).timeouts.length;
    matches += nfa.process(s.st, { id: s.seq++, ts: e.timestamp, value: e }).length;
    // Only the start state left: the key needs no state (bounded memory as partial matches finish or expire).
    if (s.st.partials.length === 1 && s.st.completed.length === 0) users.delete(e.userId);
    if ((e.eventId & 0xffff) === 0) maxLive = Math.max(maxLive, users.size);
  }
  return { ms: performance.now() - t0, matches, timeouts, maxLive };
}

function viaOperator(n: number): { ms: number; matches: number; timeouts: number } {
  const S = Serdes.String();
  const b = new StreamsBuilder();
  const ps = CEP.pattern(
    b.stream<string, Event>('events', { keySerde: S, valueSerde: Serdes.JSON<Event>() }),
    patternFromJson<Event>(pattern),
  );
  let matches = 0;
  let timeouts = 0;
  ps.output.foreach((_k, v) => {
    if (v.kind === 'match') matches++;
    else if (v.kind === 'timeout') timeouts++;
  });
  const d = new TopologyTestDriver(b.build());
  const input = d.createInputTopic('events', S, Serdes.JSON<Event>());
  const t0 = performance.now();
  for (const e of generate(n)) input.pipeInput(String(e.userId), e, e.timestamp);
  return { ms: performance.now() - t0, matches, timeouts };
}

const rate = (n: number, ms: number) => Math.round(n / (ms / 1000)).toLocaleString('en-US');
console.log(`seed pattern, ${N.toLocaleString('en-US')} events, ${U.toLocaleString('en-US')} users`);
const base = handWritten();
console.log(
  `hand-written state machine: ${rate(N, base.ms)} events/s (${base.matches} matches, ${base.timeouts} timeouts, max live keys ${base.maxLive})`,
);
const heap0 = process.memoryUsage().heapUsed;
const cep = viaNfa();
const heap1 = process.memoryUsage().heapUsed;
console.log(
  `CEP NFA (JSON pattern):     ${rate(N, cep.ms)} events/s (${cep.matches} matches, ${cep.timeouts} timeouts, max live keys ${cep.maxLive}, heap +${Math.round((heap1 - heap0) / 1e6)} MB)`,
);
console.log(`ratio CEP / hand-written: ${(base.ms / cep.ms).toFixed(2)}`);
if (cep.matches !== base.matches || cep.timeouts !== base.timeouts)
  console.error('MISMATCH: the two implementations disagree on matches or timeouts');
if (values.operator) {
  const n = Math.min(N, 500_000);
  const op = viaOperator(n);
  console.log(
    `CEP operator (test driver, event time, state store): ${rate(n, op.ms)} events/s over ${n.toLocaleString('en-US')} events (${op.matches} matches, ${op.timeouts} timeouts)`,
  );
}
