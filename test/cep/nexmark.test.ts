// The Nexmark CEP queries (reference/nexmark/queries-cep, MATCH_RECOGNIZE) as JSON patterns, on small bid
// sequences of one (auction, bidder) partition with hand-derived results.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { runPattern } from '../../src/cep/index.ts';

const q = (n: number) =>
  JSON.parse(readFileSync(new URL(`../../examples/patterns/nexmark-q${n}.json`, import.meta.url), 'utf8')) as unknown;
const bids = (prices: number[], stepMs = 1000) =>
  prices.map((price, i) => ({ auction: 1, bidder: 7, price, dateTime: i * stepMs }));
const prices = (r: ReturnType<typeof runPattern>) =>
  r.matches.map((m) =>
    Object.values(m.match)
      .flat()
      .map((b) => (b as { price: number }).price)
      .join(','),
  );
const run = (n: number, input: unknown[]) => runPattern(q(n), input, { key: 'bidder', time: 'dateTime' });

test('q0: V-shaped prices, skip to last PRICE_UP', () => {
  assert.deepEqual(prices(run(0, bids([100, 90, 80, 95, 70, 60, 75]))), ['100,90,80,95', '95,70,60,75']);
  assert.deepEqual(prices(run(0, bids([100, 110, 120]))), []);
});

test('q1: A+ B while the average stays below 10000, skip past last row', () => {
  assert.deepEqual(prices(run(1, bids([5000, 8000, 20000, 3000]))), ['5000,8000,20000']);
});

test('q2: the same with skip to next row', () => {
  assert.deepEqual(prices(run(2, bids([5000, 8000, 20000, 3000]))), ['5000,8000,20000', '8000,20000']);
});

test('q3: a drop of more than 50 within 5 s, skip past last row', () => {
  const input = [
    ...bids([100, 80, 40]),
    { auction: 1, bidder: 7, price: 200, dateTime: 10_000 },
    { auction: 1, bidder: 7, price: 190, dateTime: 11_000 },
    { auction: 1, bidder: 7, price: 180, dateTime: 12_000 },
    { auction: 1, bidder: 7, price: 100, dateTime: 20_000 }, // too late for 200, 190 and 180
  ];
  const r = run(3, input);
  assert.deepEqual(prices(r), ['100,80,40']);
  assert.ok(r.timeouts.length >= 3, 'the drops that came too late time out');
});
