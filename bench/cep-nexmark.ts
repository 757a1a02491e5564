// Bids/s through the Nexmark CEP queries q0-q3 (examples/patterns/nexmark-q*.json, MATCH_RECOGNIZE partitioned by
// auction and bidder), beside a baseline loop that does the same generation and per-partition state lookup with a
// trivial update, in the same run. Bids follow the Nexmark generator's shape (seeded): hot auctions and bidders,
// log-scaled prices, 46 bids per 50 events at 1 event/ms.
// Usage: node bench/cep-nexmark.ts [--bids N]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { compile, Nfa, type NfaState, patternFromJson } from '../src/cep/index.ts';

const { values } = parseArgs({ options: { bids: { type: 'string', default: '1000000' } } });
const N = Number(values.bids);

interface Bid {
  auction: number;
  bidder: number;
  price: number;
  dateTime: number;
}

function* bids(n: number): Generator<Bid> {
  let seed = 1;
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x80000000;
  };
  for (let i = 0; i < n; i++) {
    const event = Math.floor(i / 46) * 50 + (i % 46) + 4; // bids are events 4..49 of each 50
    const auctions = 1000 + Math.floor((event / 50) * 3);
    const persons = 1000 + Math.floor(event / 50);
    // Hot auctions/bidders: most bids go to a few recent ones, as in the Nexmark generator.
    const auction =
      rnd() < 0.9
        ? auctions - (Math.floor(rnd() * 10) % Math.max(1, auctions - 1000))
        : 1000 + Math.floor(rnd() * (auctions - 999));
    const bidder =
      rnd() < 0.9
        ? persons - (Math.floor(rnd() * 4) % Math.max(1, persons - 1000))
        : 1000 + Math.floor(rnd() * (persons - 999));
    const price = Math.round(10 ** (rnd() * 6) * 100) / 100;
    yield { auction, bidder, price, dateTime: event };
  }
}

const keyOf = (b: Bid) => b.auction * 1_000_003 + b.bidder;

function baseline(): number {
  const last = new Map<number, number>();
  const t0 = performance.now();
  let check = 0;
  for (const b of bids(N)) {
    const k = keyOf(b);
    const prev = last.get(k);
    if (prev !== undefined && b.price < prev) check++;
    last.set(k, b.price);
  }
  if (check < 0) console.log(check);
  return performance.now() - t0;
}

function query(q: number): { ms: number; matches: number; timeouts: number; maxLive: number } {
  const json = JSON.parse(readFileSync(new URL(`../examples/patterns/nexmark-q${q}.json`, import.meta.url), 'utf8'));
  const nfa = new Nfa<Bid>(compile(patternFromJson<Bid>(json)));
  const keys = new Map<number, { st: NfaState<Bid>; seq: number }>();
  let matches = 0;
  let timeouts = 0;
  let maxLive = 0;
  let i = 0;
  const t0 = performance.now();
  for (const b of bids(N)) {
    const k = keyOf(b);
    let s = keys.get(k);
    if (s === undefined) {
      s = { st: nfa.initialState(), seq: 0 };
      keys.set(k, s);
    }
    timeouts += nfa.advanceTime(s.st, b.dateTime).timeouts.length;
    matches += nfa.process(s.st, { id: s.seq++, ts: b.dateTime, value: b }).length;
    if (s.st.partials.length === 1 && s.st.completed.length === 0) keys.delete(k);
    if ((++i & 0xffff) === 0) maxLive = Math.max(maxLive, keys.size);
  }
  return { ms: performance.now() - t0, matches, timeouts, maxLive };
}

const rate = (ms: number) => Math.round(N / (ms / 1000)).toLocaleString('en-US');
console.log(`Nexmark CEP, ${N.toLocaleString('en-US')} bids`);
const base = baseline();
console.log(`baseline (generate + per-partition lookup): ${rate(base)} bids/s`);
for (const q of [0, 1, 2, 3]) {
  const r = query(q);
  console.log(
    `q${q}: ${rate(r.ms)} bids/s (${(base / r.ms).toFixed(2)} of baseline; ${r.matches} matches, ${r.timeouts} timeouts, max live partitions ${r.maxLive})`,
  );
}
