/**
 * Seeded commerce event generator for the demo: users with sessions (LOGIN, PAGE_VIEW, ADD_TO_CART, PURCHASE,
 * LOGOUT), a bundled IP-range geolocation table, user profiles, out-of-order and invalid events mixed in.
 * The same seed always gives the same events.
 */

export type EventType = 'LOGIN' | 'PAGE_VIEW' | 'ADD_TO_CART' | 'PURCHASE' | 'LOGOUT';
export const EVENT_TYPES: readonly EventType[] = ['LOGIN', 'PAGE_VIEW', 'ADD_TO_CART', 'PURCHASE', 'LOGOUT'];

export interface CommerceEvent {
  eventId: string;
  userId: string;
  eventType: EventType;
  /** Amount in EUR for carts and purchases, 0 otherwise. */
  value: number;
  /** Event time, epoch ms. */
  timestamp: number;
  ip: string;
  page?: string;
  sku?: string;
  /** Appears only in the later part of the stream (the lake table's schema evolves when it does). */
  device?: string;
}

/** One record as produced: its key, raw value bytes (possibly not JSON) and record timestamp. */
export interface GeneratedRecord {
  key: string;
  value: string;
  timestamp: number;
  kind: 'valid' | 'invalid';
  /** The parsed event for valid records. */
  event?: CommerceEvent;
}

export interface UserProfile {
  userId: string;
  tier: 'bronze' | 'silver' | 'gold' | 'platinum';
  signupYear: number;
}

/** mulberry32: a small, fast, seeded PRNG. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The bundled geolocation table: IPv4 ranges (first..last, inclusive) and where they are. */
export const IP_RANGES: readonly { first: string; last: string; country: string; city: string }[] = [
  { first: '2.16.0.0', last: '2.23.255.255', country: 'DE', city: 'Frankfurt' },
  { first: '5.56.0.0', last: '5.63.255.255', country: 'FR', city: 'Paris' },
  { first: '31.0.0.0', last: '31.15.255.255', country: 'NL', city: 'Amsterdam' },
  { first: '37.64.0.0', last: '37.79.255.255', country: 'ES', city: 'Madrid' },
  { first: '46.16.0.0', last: '46.31.255.255', country: 'IT', city: 'Milan' },
  { first: '51.140.0.0', last: '51.155.255.255', country: 'GB', city: 'London' },
  { first: '63.0.0.0', last: '63.63.255.255', country: 'US', city: 'New York' },
  { first: '64.64.0.0', last: '64.127.255.255', country: 'US', city: 'San Francisco' },
  { first: '101.0.0.0', last: '101.63.255.255', country: 'JP', city: 'Tokyo' },
  { first: '120.0.0.0', last: '120.31.255.255', country: 'SG', city: 'Singapore' },
  { first: '177.0.0.0', last: '177.63.255.255', country: 'BR', city: 'São Paulo' },
  { first: '196.0.0.0', last: '196.31.255.255', country: 'ZA', city: 'Cape Town' },
];

export function ipToInt(ip: string): number | undefined {
  const parts = ip.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    const v = Number(p);
    if (!Number.isInteger(v) || v < 0 || v > 255 || p === '') return undefined;
    n = n * 256 + v;
  }
  return n;
}

function intToIp(n: number): string {
  return [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

const RANGES = IP_RANGES.map((r) => ({ ...r, lo: ipToInt(r.first) ?? 0, hi: ipToInt(r.last) ?? 0 })).sort(
  (a, b) => a.lo - b.lo,
);

/** Looks an IPv4 address up in the bundled table (binary search); undefined when no range holds it. */
export function geolocate(ip: string): { country: string; city: string } | undefined {
  const n = ipToInt(ip);
  if (n === undefined) return undefined;
  let lo = 0;
  let hi = RANGES.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const r = RANGES[mid];
    if (r === undefined) break;
    if (n < r.lo) hi = mid - 1;
    else if (n > r.hi) lo = mid + 1;
    else return { country: r.country, city: r.city };
  }
  return undefined;
}

export interface GeneratorOptions {
  /** Number of records to produce (valid + invalid), before the closing records. */
  events: number;
  seed?: number;
  /** Number of users (default: events / 25, at least 20). */
  users?: number;
  /** Event time of the first session (default 2026-11-24T06:00:00Z). */
  start?: number;
  /** Share of invalid records (default 0.02). */
  invalidRate?: number;
  /** Share of events delivered late, up to `maxDelayMs` behind their neighbours (default 0.05). */
  outOfOrderRate?: number;
  maxDelayMs?: number;
}

export interface GeneratedStream {
  records: GeneratedRecord[];
  profiles: UserProfile[];
  users: string[];
  /** First and last event time. */
  first: number;
  last: number;
}

const TIERS: UserProfile['tier'][] = ['bronze', 'bronze', 'bronze', 'silver', 'silver', 'gold', 'platinum'];
const PAGES = ['/', '/search', '/category/shoes', '/category/books', '/product', '/deals', '/help'];
const DEVICES = ['desktop', 'mobile', 'tablet'];

export const DEFAULT_START = Date.UTC(2026, 10, 24, 6, 0, 0);

/**
 * Generates a reproducible stream: sessions per user spread over about 30 hours of event time, each a LOGIN,
 * page views and carts, sometimes a purchase (sometimes over 1000 right after the login: the CEP pattern),
 * and a LOGOUT. Records come out in event-time order except the out-of-order share; invalid records (not JSON,
 * missing user, non-numeric value, unknown type) are mixed in.
 */
export function generate(opts: GeneratorOptions): GeneratedStream {
  const rnd = prng(opts.seed ?? 42);
  const nUsers = opts.users ?? Math.max(20, Math.floor(opts.events / 25));
  const start = opts.start ?? DEFAULT_START;
  const invalidRate = opts.invalidRate ?? 0.02;
  const oooRate = opts.outOfOrderRate ?? 0.05;
  const maxDelay = opts.maxDelayMs ?? 3 * 60_000;
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;

  const users = Array.from({ length: nUsers }, (_, i) => `u${String(i + 1).padStart(5, '0')}`);
  const profiles: UserProfile[] = users.map((userId) => ({
    userId,
    tier: pick(TIERS),
    signupYear: 2015 + Math.floor(rnd() * 11),
  }));
  const homeIp = new Map<string, string>();
  for (const u of users) {
    // 1 in 20 users browses from an address outside the table (geolocation falls back to "unknown").
    if (rnd() < 0.05) homeIp.set(u, intToIp((10 << 24) + Math.floor(rnd() * 0xffffff)));
    else {
      const r = pick(RANGES);
      homeIp.set(u, intToIp(r.lo + Math.floor(rnd() * (r.hi - r.lo + 1))));
    }
  }

  // Sessions: each a list of events; session starts spread over 30 hours.
  const span = 30 * 3600_000;
  const events: CommerceEvent[] = [];
  let seq = 0;
  const nValidTarget = Math.round(opts.events * (1 - invalidRate));
  while (events.length < nValidTarget) {
    const userId = pick(users);
    let t = start + Math.floor(rnd() * span);
    const ip = homeIp.get(userId) ?? '0.0.0.0';
    const session: Omit<CommerceEvent, 'eventId' | 'device'>[] = [];
    const push = (eventType: EventType, value: number, extra: { page?: string; sku?: string } = {}) => {
      session.push({ userId, eventType, value, timestamp: t, ip, ...extra });
      t += 5_000 + Math.floor(rnd() * 90_000);
    };
    push('LOGIN', 0);
    const highValue = rnd() < 0.08;
    if (highValue)
      push('PURCHASE', Math.round((1000 + rnd() * 4000) * 100) / 100, { sku: `sku-${Math.floor(rnd() * 500)}` });
    const views = 1 + Math.floor(rnd() * 6);
    for (let i = 0; i < views; i++) push('PAGE_VIEW', 0, { page: pick(PAGES) });
    if (rnd() < 0.5) {
      const sku = `sku-${Math.floor(rnd() * 500)}`;
      const price = Math.round((5 + rnd() * (rnd() < 0.1 ? 2500 : 250)) * 100) / 100;
      push('ADD_TO_CART', price, { sku });
      if (rnd() < 0.6) push('PURCHASE', price, { sku });
    }
    if (rnd() < 0.9) push('LOGOUT', 0);
    for (const e of session) events.push({ ...e, eventId: '' });
  }
  events.length = nValidTarget;
  events.sort((a, b) => a.timestamp - b.timestamp || (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0));
  // The new field appears in the second half of the stream.
  const deviceFrom = Math.floor(events.length / 2);
  for (let i = 0; i < events.length; i++) {
    const e = events[i] as CommerceEvent;
    e.eventId = `e${String(++seq).padStart(8, '0')}`;
    if (i >= deviceFrom) e.device = pick(DEVICES);
  }

  const records: GeneratedRecord[] = events.map((event) => ({
    key: event.userId,
    value: JSON.stringify(event),
    timestamp: event.timestamp,
    kind: 'valid',
    event,
  }));
  // Out of order: move a share of records later in the stream by up to maxDelay of event time.
  const late = Math.floor(records.length * oooRate);
  for (let i = 0; i < late; i++) {
    const from = Math.floor(rnd() * records.length);
    const rec = records[from] as GeneratedRecord;
    let to = from;
    while (
      to + 1 < records.length &&
      (records[to + 1] as GeneratedRecord).timestamp <= rec.timestamp + maxDelay * rnd()
    )
      to++;
    if (to === from) continue;
    records.splice(from, 1);
    records.splice(to, 0, rec);
  }
  // Invalid records, at random places.
  const nInvalid = opts.events - records.length;
  for (let i = 0; i < nInvalid; i++) {
    const at = Math.floor(rnd() * (records.length + 1));
    const near = records[Math.min(at, records.length - 1)];
    const ts = near?.timestamp ?? start;
    const userId = pick(users);
    const variants = [
      () => `{"eventId":"bad-${i}","userId":"${userId}","eventType":"PURCHASE","value":`, // truncated JSON
      () => JSON.stringify({ eventId: `bad-${i}`, eventType: 'PAGE_VIEW', value: 0, timestamp: ts }), // no user
      () => JSON.stringify({ eventId: `bad-${i}`, userId, eventType: 'PURCHASE', value: 'lots', timestamp: ts }),
      () => JSON.stringify({ eventId: `bad-${i}`, userId, eventType: 'REFUND?', value: 3, timestamp: ts }),
    ];
    records.splice(at, 0, { key: userId, value: pick(variants)(), timestamp: ts, kind: 'invalid' });
  }
  const valid = events;
  return {
    records,
    profiles,
    users,
    first: valid[0]?.timestamp ?? start,
    last: valid[valid.length - 1]?.timestamp ?? start,
  };
}

/**
 * Closing records: one page view per (event type bucket, country) an hour after the last event, so stream time
 * passes every open window (and every CEP `within`) on every partition and the last results are emitted.
 */
export function closingRecords(last: number, count = 12): GeneratedRecord[] {
  const out: GeneratedRecord[] = [];
  for (let i = 0; i < count; i++) {
    const r = RANGES[i % RANGES.length] ?? RANGES[0];
    const event: CommerceEvent = {
      eventId: `close-${i}`,
      userId: `closer-${i}`,
      eventType: EVENT_TYPES[i % EVENT_TYPES.length] as EventType,
      value: 0,
      timestamp: last + 3600_000 + i,
      ip: intToIp(r?.lo ?? 0),
      device: 'desktop',
    };
    out.push({ key: event.userId, value: JSON.stringify(event), timestamp: event.timestamp, kind: 'valid', event });
  }
  return out;
}

/** Validates a parsed raw value as a commerce event. */
export function validateEvent(v: unknown): v is CommerceEvent {
  if (typeof v !== 'object' || v === null) return false;
  const e = v as Record<string, unknown>;
  return (
    typeof e.eventId === 'string' &&
    typeof e.userId === 'string' &&
    e.userId.length > 0 &&
    typeof e.eventType === 'string' &&
    (EVENT_TYPES as readonly string[]).includes(e.eventType) &&
    typeof e.value === 'number' &&
    Number.isFinite(e.value) &&
    typeof e.timestamp === 'number' &&
    typeof e.ip === 'string'
  );
}
