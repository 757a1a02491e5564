// A direct evaluation of each query's SQL over an array of events, written without the DSL: plain loops and maps,
// final results only (every window closed). Tests and benchmarks compare the DSL's output with it.
import type { Auction, Bid, NexmarkEvent, Person } from './generator.ts';
import type { NexmarkQuery } from './queries.ts';

export type Row = Record<string, unknown>;

const split = (events: Iterable<NexmarkEvent>) => {
  const persons: Person[] = [];
  const auctions: Auction[] = [];
  const bids: Bid[] = [];
  for (const e of events) {
    if (e.event_type === 0) persons.push(e.person);
    else if (e.event_type === 1) auctions.push(e.auction);
    else bids.push(e.bid);
  }
  return { persons, auctions, bids };
};

/** 0.908 * price as DECIMAL(23, 3), computed in integers and read as the nearest double. */
function euro(price: number): number {
  const milli = BigInt(price) * 908n;
  return Number(`${milli / 1000n}.${String(milli % 1000n).padStart(3, '0')}`);
}

export function referenceResults(q: NexmarkQuery, events: Iterable<NexmarkEvent>): Row[] {
  const { persons, auctions, bids } = split(events);
  const rows: Row[] = [];
  switch (q) {
    case 'q0':
      for (const b of bids)
        rows.push({ auction: b.auction, bidder: b.bidder, price: b.price, dateTime: b.dateTime, extra: b.extra });
      break;
    case 'q1':
      for (const b of bids)
        rows.push({ auction: b.auction, bidder: b.bidder, price: euro(b.price), dateTime: b.dateTime, extra: b.extra });
      break;
    case 'q2':
      for (const b of bids) if (b.auction % 123 === 0) rows.push({ auction: b.auction, price: b.price });
      break;
    case 'q3': {
      const byId = new Map<number, Person[]>();
      for (const p of persons)
        if (p.state === 'OR' || p.state === 'ID' || p.state === 'CA') byId.set(p.id, [...(byId.get(p.id) ?? []), p]);
      for (const a of auctions)
        if (a.category === 10)
          for (const p of byId.get(a.seller) ?? []) rows.push({ name: p.name, city: p.city, state: p.state, id: a.id });
      break;
    }
    case 'q4': {
      const best = new Map<number, { category: number; final: number }>();
      const byId = new Map<number, Auction>();
      for (const a of auctions) byId.set(a.id, a);
      for (const b of bids) {
        const a = byId.get(b.auction);
        if (a === undefined || b.dateTime < a.dateTime || b.dateTime > a.expires) continue;
        const cur = best.get(a.id);
        if (cur === undefined || b.price > cur.final) best.set(a.id, { category: a.category, final: b.price });
      }
      const per = new Map<number, { sum: number; n: number }>();
      for (const { category, final } of best.values()) {
        const s = per.get(category) ?? { sum: 0, n: 0 };
        s.sum += final;
        s.n++;
        per.set(category, s);
      }
      for (const [category, s] of per) rows.push({ id: category, final: Math.floor(s.sum / s.n) });
      break;
    }
    case 'q5': {
      // HOP(size 10 s, slide 2 s): a bid at t is in the windows starting at multiples of 2 s in (t - 10 s, t].
      const counts = new Map<number, Map<number, number>>();
      for (const b of bids) {
        const last = b.dateTime - (b.dateTime % 2000);
        for (let s = last; s > b.dateTime - 10_000; s -= 2000) {
          let m = counts.get(s);
          if (m === undefined) {
            m = new Map();
            counts.set(s, m);
          }
          m.set(b.auction, (m.get(b.auction) ?? 0) + 1);
        }
      }
      for (const [s, m] of counts) {
        let maxn = 0;
        for (const n of m.values()) maxn = Math.max(maxn, n);
        for (const [auction, num] of m) if (num >= maxn) rows.push({ auction, num, starttime: s, endtime: s + 10_000 });
      }
      break;
    }
    case 'q7': {
      const maxByEnd = new Map<number, number>();
      for (const b of bids) {
        const end = b.dateTime - (b.dateTime % 10_000) + 10_000;
        maxByEnd.set(end, Math.max(maxByEnd.get(end) ?? Number.NEGATIVE_INFINITY, b.price));
      }
      for (const [end, maxprice] of maxByEnd)
        for (const b of bids)
          if (b.price === maxprice && b.dateTime >= end - 10_000 && b.dateTime <= end)
            // INSERT maps (auction, price, bidder, ...) onto (auction, bidder, price, ...) by position.
            rows.push({ auction: b.auction, bidder: b.price, price: b.bidder, dateTime: b.dateTime, extra: b.extra });
      break;
    }
    case 'q8': {
      const sellers = new Set<string>();
      for (const a of auctions) sellers.add(`${a.seller}@${a.dateTime - (a.dateTime % 10_000)}`);
      const seen = new Set<string>();
      for (const p of persons) {
        const start = p.dateTime - (p.dateTime % 10_000);
        const k = `${p.id}|${p.name}@${start}`;
        if (seen.has(k) || !sellers.has(`${p.id}@${start}`)) continue;
        seen.add(k);
        rows.push({ id: p.id, name: p.name, stime: start });
      }
      break;
    }
    case 'q11': {
      const times = new Map<number, number[]>();
      for (const b of bids) {
        let t = times.get(b.bidder);
        if (t === undefined) {
          t = [];
          times.set(b.bidder, t);
        }
        t.push(b.dateTime);
      }
      for (const [bidder, ts] of times) {
        ts.sort((a, b) => a - b);
        let first = ts[0] as number;
        let last = first;
        let n = 0;
        for (const t of ts) {
          if (t - last > 10_000) {
            rows.push({ bidder, bid_count: n, starttime: first, endtime: last + 10_000 });
            first = t;
            n = 0;
          }
          last = t;
          n++;
        }
        rows.push({ bidder, bid_count: n, starttime: first, endtime: last + 10_000 });
      }
      break;
    }
  }
  return rows;
}

/** Rows as a sorted list of JSON strings with sorted keys: equal lists mean equal multisets of rows. */
export function canonicalRows(rows: Iterable<Row>): string[] {
  const out: string[] = [];
  for (const r of rows)
    out.push(JSON.stringify(Object.fromEntries(Object.entries(r).sort(([a], [b]) => (a < b ? -1 : 1)))));
  return out.sort();
}
