import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  canonicalRows,
  decodeEvent,
  encodeEvent,
  NEXMARK_QUERIES,
  NexmarkGenerator,
  referenceResults,
  runInMemory,
} from '../../src/streams/index.ts';

describe('nexmark generator', () => {
  it('follows the integer model: 1 person, 3 auctions, 46 bids per 50 events, ids from 1000', () => {
    const g = new NexmarkGenerator({ seed: 7 });
    const evs = [...g.events(500)];
    for (let n = 0; n < evs.length; n++) {
      const e = evs[n] as (typeof evs)[number];
      const rem = n % 50;
      assert.equal(e.event_type, rem < 1 ? 0 : rem < 4 ? 1 : 2, `event ${n}`);
      if (e.event_type === 0) assert.equal(e.person.id, 1000 + Math.floor(n / 50));
      if (e.event_type === 1) assert.equal(e.auction.id, 1000 + Math.floor(n / 50) * 3 + rem - 1);
      if (e.event_type === 1) {
        assert.ok(e.auction.expires > e.auction.dateTime);
        assert.ok(e.auction.expires - e.auction.dateTime <= g.maxAuctionLengthMs());
        assert.ok(e.auction.category >= 10 && e.auction.category < 15);
        assert.ok(e.auction.reserve >= e.auction.initialBid);
      }
      if (e.event_type === 2) {
        assert.ok(e.bid.auction >= 1000 && e.bid.auction <= 1000 + (Math.floor(n / 50) + 1) * 3 + 10);
        assert.ok(e.bid.bidder >= 1000 && e.bid.bidder <= 1000 + Math.floor(n / 50) + 10);
        assert.ok(Number.isInteger(e.bid.price) && e.bid.price >= 100);
      }
    }
    // Event time: 10,000 events per second by default, non-decreasing.
    assert.equal(g.timestamp(10_000) - g.timestamp(0), 1000);
  });

  it('is deterministic per seed and differs across seeds', () => {
    const a = [...new NexmarkGenerator({ seed: 3 }).events(300)];
    const b = [...new NexmarkGenerator({ seed: 3 }).events(300)];
    const c = [...new NexmarkGenerator({ seed: 4 }).events(300)];
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
    // Any event can be generated on its own.
    assert.deepEqual(new NexmarkGenerator({ seed: 3 }).event(123), a[123]);
  });

  it('round-trips events through the binary serde', () => {
    for (const e of new NexmarkGenerator({ seed: 11 }).events(200)) assert.deepEqual(decodeEvent(encodeEvent(e)), e);
  });

  it('rejects a bad configuration with the field named', () => {
    assert.throws(() => new NexmarkGenerator({ eventsPerSecond: 0 }), /nexmark\.eventsPerSecond/);
    assert.throws(() => new NexmarkGenerator({ bidProportion: 1.5 }), /nexmark\.bidProportion/);
  });
});

// 100,000 events at 1,000 events/s: 100 s of event time, so 10 tumbling, ~50 hopping windows and many sessions.
describe('nexmark queries equal the reference evaluator on 100,000 events', () => {
  for (const q of NEXMARK_QUERIES)
    it(q, () => {
      const { rows, events } = runInMemory(q, 100_000, { seed: 42, eventsPerSecond: 1000 });
      const want = referenceResults(q, events);
      assert.ok(want.length > 0, `${q}: the reference has rows to compare`);
      assert.deepEqual(canonicalRows(rows), canonicalRows(want));
    });
});
