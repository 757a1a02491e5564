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

/** The hand-written state machine for the seed pattern. */
function handWritten() {
  // Per user: the LOGIN that the next event may extend (strict), and LOGIN+PURCHASE pairs awaiting a LOGOUT.
  interface S {
    login: number; // timestamp, -1 none
    pending: number[]; // login timestamps of [LOGIN, PURCHASE] partial matches
  }
  const users = new Map<number, S>();
  const r = { ms: 0, matches: 0, timeouts: 0, maxLive: 0 };
  const run = (chunk: Event[]) => {
    const t0 = performance.now();
    for (const e of chunk) {
      let s = users.get(e.userId);
      if (s === undefined) {
        s = { login: -1, pending: [] };
        users.set(e.userId, s);
      }
      const t = e.timestamp;
      if (s.login >= 0 && t - s.login >= WINDOW) {
        s.login = -1;
        r.timeouts++;
      }
      if (s.pending.length > 0) {
        const before = s.pending.length;
        s.pending = s.pending.filter((l) => t - l < WINDOW);
        r.timeouts += before - s.pending.length;
      }
      if (e.eventType === 'LOGOUT') {
        r.matches += s.pending.length;
        s.pending = [];
      }
      if (s.login >= 0 && e.eventType === 'PURCHASE' && e.value > 1000) s.pending.push(s.login);
      s.login = e.eventType === 'LOGIN' ? t : -1;
      if (s.login < 0 && s.pending.length === 0) users.delete(e.userId);
    }
    r.ms += performance.now() - t0;
    r.maxLive = Math.max(r.maxLive, users.size);
  };
  return { r, run };
}

const pattern = JSON.parse(
  readFileSync(new URL('../examples/patterns/high-value-purchase.json', import.meta.url), 'utf8'),
) as unknown;

/** The CEP NFA compiled from the JSON pattern, one NFA state per user (dropped when only the start state is left). */
function viaNfa() {
  const nfa = new Nfa<Event>(compile(patternFromJson<Event>(pattern)));
  const users = new Map<number, { st: NfaState<Event>; seq: number }>();
  const r = { ms: 0, matches: 0, timeouts: 0, maxLive: 0 };
  const run = (chunk: Event[]) => {
    const t0 = performance.now();
    for (const e of chunk) {
      let s = users.get(e.userId);
      if (s === undefined) {
        s = { st: nfa.initialState(), seq: 0 };
        users.set(e.userId, s);
      }
      r.timeouts += nfa.advanceTime(s.st, e.timestamp).timeouts.length;
      r.matches += nfa.process(s.st, { id: s.seq++, ts: e.timestamp, value: e }).length;
      // Only the start state left: the key needs no state (memory stays bounded as partial matches end or expire).
      if (s.st.partials.length === 1 && s.st.completed.length === 0) users.delete(e.userId);
    }
    r.ms += performance.now() - t0;
    r.maxLive = Math.max(r.maxLive, users.size);
  };
  return { r, run };
}

function viaOperator() {
  const S = Serdes.String();
  const b = new StreamsBuilder();
  const ps = CEP.pattern(
    b.stream<string, Event>('events', { keySerde: S, valueSerde: Serdes.JSON<Event>() }),
    patternFromJson<Event>(pattern),
  );
  const r = { ms: 0, matches: 0, timeouts: 0, n: 0 };
  ps.output.foreach((_k, v) => {
    if (v.kind === 'match') r.matches++;
    else if (v.kind === 'timeout') r.timeouts++;
  });
  const d = new TopologyTestDriver(b.build());
  const input = d.createInputTopic('events', S, Serdes.JSON<Event>());
  const run = (chunk: Event[]) => {
    const t0 = performance.now();
    for (const e of chunk) input.pipeInput(String(e.userId), e, e.timestamp);
    r.ms += performance.now() - t0;
    r.n += chunk.length;
  };
  return { r, run };
}

const rate = (n: number, ms: number) => Math.round(n / (ms / 1000)).toLocaleString('en-US');
console.log(`seed pattern, ${N.toLocaleString('en-US')} events, ${U.toLocaleString('en-US')} users`);
// Events are generated in chunks outside the timed loops; each chunk goes through both engines in turn.
const base = handWritten();
const cep = viaNfa();
const op = values.operator ? viaOperator() : null;
const OP_LIMIT = 500_000;
const heap0 = process.memoryUsage().heapUsed;
let chunk: Event[] = [];
let maxHeap = 0;
const flush = () => {
  base.run(chunk);
  cep.run(chunk);
  if (op !== null && op.r.n < OP_LIMIT) op.run(chunk);
  chunk = [];
  maxHeap = Math.max(maxHeap, process.memoryUsage().heapUsed - heap0);
};
for (const e of generate(N)) {
  chunk.push(e);
  if (chunk.length === 100_000) flush();
}
flush();
const b = base.r;
const c = cep.r;
console.log(
  `hand-written state machine: ${rate(N, b.ms)} events/s (${b.matches} matches, ${b.timeouts} timeouts, max live keys ${b.maxLive})`,
);
console.log(
  `CEP NFA (JSON pattern):     ${rate(N, c.ms)} events/s (${c.matches} matches, ${c.timeouts} timeouts, max live keys ${c.maxLive})`,
);
console.log(`ratio CEP / hand-written: ${(b.ms / c.ms).toFixed(2)}; max heap growth ${Math.round(maxHeap / 1e6)} MB`);
if (c.matches !== b.matches || c.timeouts !== b.timeouts)
  console.error('MISMATCH: the two implementations disagree on matches or timeouts');
if (op !== null)
  console.log(
    `CEP operator (test driver, serdes, event-time buffer, state store): ${rate(op.r.n, op.r.ms)} events/s over the first ${op.r.n.toLocaleString('en-US')} events (${op.r.matches} matches, ${op.r.timeouts} timeouts)`,
  );
