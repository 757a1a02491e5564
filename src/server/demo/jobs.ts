/**
 * The demo's stream jobs: (1) validate -> enrich (geo, profile, session; 500 ms budget with fallback) -> re-key by
 * country -> 5-minute windows; (2) the CEP job: LOGIN -> PURCHASE > 1000 -> LOGOUT within 30 minutes, and
 * 5-minute analytics per event type.
 */

import { CEP, patternFromJson } from '../../cep/index.ts';
import { Serdes, StreamsBuilder, Suppressed, TimeWindows, type Topology, type Windowed } from '../../streams/index.ts';
import { type CommerceEvent, geolocate, type UserProfile, validateEvent } from './generator.ts';

export const TOPICS = {
  raw: 'commerce-events',
  enriched: 'commerce-events-enriched',
  deadLetter: 'commerce-events-dlq',
  stats: 'commerce-stats-5m',
  alerts: 'commerce-alerts',
  analytics: 'commerce-analytics-5m',
} as const;

export interface EnrichedEvent extends CommerceEvent {
  country: string;
  city: string | null;
  tier: string | null;
  sessionId: string | null;
  /** false when the enrichment budget ran out: the minimal event. */
  enriched: boolean;
}

export interface CountryWindow {
  country: string;
  windowStart: number;
  windowEnd: number;
  count: number;
  revenue: number;
  average: number;
  min: number;
  max: number;
  distinctUsers: number;
  eventTypes: Record<string, number>;
}

export interface TypeWindow {
  /** Window start, ISO-8601 (the datasource's timestamp). */
  windowStart: string;
  eventType: string;
  events: number;
  value: number;
  users: number;
}

export interface Alert {
  userId: string;
  loginAt: number;
  purchaseAt: number;
  logoutAt: number;
  amount: number;
  country: string;
  sessionMs: number;
}

export interface EnrichmentCounters {
  calls: number;
  slow: number;
}

/**
 * Enrichment services the job calls asynchronously: geolocation from the bundled IP table, the user profile
 * from the profile table (loaded from the lake), the session from the session tracker. The profile service is
 * slow now and then (every `slowEvery`-th call takes `slowMs`), which the 500 ms budget turns into a fallback.
 */
export function enrichmentServices(
  profiles: Map<string, UserProfile>,
  counters: EnrichmentCounters,
  opts: { slowEvery?: number; slowMs?: number } = {},
) {
  const slowEvery = opts.slowEvery ?? 4999;
  const slowMs = opts.slowMs ?? 800;
  const sessions = new Map<string, string>();
  const wait = (ms: number, signal: AbortSignal) =>
    new Promise<void>((resolve, reject) => {
      const t = setTimeout(resolve, ms);
      signal.addEventListener('abort', () => {
        clearTimeout(t);
        reject(new Error('aborted'));
      });
    });
  return {
    async geolocate(ip: string) {
      return geolocate(ip) ?? null;
    },
    async profile(userId: string, signal: AbortSignal) {
      counters.calls++;
      if (counters.calls % slowEvery === 0) {
        counters.slow++;
        await wait(slowMs, signal);
      }
      return profiles.get(userId) ?? null;
    },
    async session(e: CommerceEvent) {
      if (e.eventType === 'LOGIN' || !sessions.has(e.userId)) sessions.set(e.userId, `${e.userId}-${e.timestamp}`);
      const id = sessions.get(e.userId) ?? null;
      if (e.eventType === 'LOGOUT') sessions.delete(e.userId);
      return id;
    },
  };
}

interface CountryAcc {
  count: number;
  revenue: number;
  min: number;
  max: number;
  users: string[];
  types: Record<string, number>;
}

/** Job 1: validate, enrich, write enriched events, re-key by country and aggregate 5-minute windows. */
export function enrichmentJob(
  services: ReturnType<typeof enrichmentServices>,
  opts: { timeoutMs?: number } = {},
): Topology {
  const S = Serdes.String();
  const J = Serdes.JSON<unknown>();
  const b = new StreamsBuilder();
  const raw = b.stream<string, unknown>(TOPICS.raw, { keySerde: S, valueSerde: J });
  const branches = raw
    .split()
    .branch((_k, v) => validateEvent(v), 'valid')
    .defaultBranch('invalid');
  branches
    .get('invalid')
    ?.mapValues((v): unknown => ({ reason: 'invalid event', value: v }))
    .to(TOPICS.deadLetter, { keySerde: S, valueSerde: J });
  const valid = branches.get('valid')?.mapValues((v) => v as CommerceEvent);
  if (valid === undefined) throw new Error('unreachable: split() returned no valid branch');
  const minimal = (e: CommerceEvent): EnrichedEvent => ({
    ...e,
    country: 'unknown',
    city: null,
    tier: null,
    sessionId: null,
    enriched: false,
  });
  const enriched = valid.mapValuesAsync<EnrichedEvent>(
    async (e, _k, signal) => {
      const [geo, profile, sessionId] = await Promise.all([
        services.geolocate(e.ip),
        services.profile(e.userId, signal),
        services.session(e),
      ]);
      return {
        ...e,
        country: geo?.country ?? 'unknown',
        city: geo?.city ?? null,
        tier: profile?.tier ?? null,
        sessionId,
        enriched: true,
      };
    },
    { timeoutMs: opts.timeoutMs ?? 500, concurrency: 64, fallback: (e) => minimal(e), mode: 'ordered' },
  );
  enriched.to(TOPICS.enriched, { keySerde: S, valueSerde: Serdes.JSON<EnrichedEvent>() });
  enriched
    .groupBy((_k, e) => e.country, { name: 'by-country' })
    .windowedBy(TimeWindows.ofSizeAndGrace(5 * 60_000, 60_000))
    .aggregate<CountryAcc>(
      () => ({ count: 0, revenue: 0, min: Number.MAX_VALUE, max: 0, users: [], types: {} }),
      (_c, e, a) => ({
        count: a.count + 1,
        revenue: a.revenue + (e.eventType === 'PURCHASE' ? e.value : 0),
        min: Math.min(a.min, e.value),
        max: Math.max(a.max, e.value),
        users: a.users.includes(e.userId) ? a.users : [...a.users, e.userId],
        types: { ...a.types, [e.eventType]: (a.types[e.eventType] ?? 0) + 1 },
      }),
      { storeName: 'country-5m', retention: '24h' },
    )
    .suppress(Suppressed.untilWindowCloses())
    .toStream()
    .mapValues(
      (a, k: Windowed<string>): CountryWindow => ({
        country: k.key,
        windowStart: k.window.start,
        windowEnd: k.window.end,
        count: a.count,
        revenue: Math.round(a.revenue * 100) / 100,
        average: a.count === 0 ? 0 : Math.round((a.revenue / a.count) * 100) / 100,
        min: a.min,
        max: a.max,
        distinctUsers: a.users.length,
        eventTypes: a.types,
      }),
    )
    .selectKey((_k, v) => v.country)
    .to(TOPICS.stats, { keySerde: S, valueSerde: Serdes.JSON<CountryWindow>() });
  return b.build();
}

interface TypeAcc {
  events: number;
  value: number;
  users: string[];
}

/** Job 2: the CEP pattern per user, and 5-minute analytics per event type. */
export function cepJob(patternJson: unknown): Topology {
  const S = Serdes.String();
  const b = new StreamsBuilder();
  const events = b.stream<string, EnrichedEvent>(TOPICS.enriched, {
    keySerde: S,
    valueSerde: Serdes.JSON<EnrichedEvent>(),
  });
  const matches = CEP.pattern(events, patternFromJson<EnrichedEvent>(patternJson), {
    name: 'high-value-purchase',
    maxOutOfOrderness: '5m',
  });
  matches
    .select((m, userId): Alert => {
      const login = m.start?.[0];
      const purchase = m.middle?.[0];
      const logout = m.end?.[0];
      return {
        userId,
        loginAt: login?.timestamp ?? 0,
        purchaseAt: purchase?.timestamp ?? 0,
        logoutAt: logout?.timestamp ?? 0,
        amount: purchase?.value ?? 0,
        country: purchase?.country ?? 'unknown',
        sessionMs: (logout?.timestamp ?? 0) - (login?.timestamp ?? 0),
      };
    })
    .to(TOPICS.alerts, { keySerde: S, valueSerde: Serdes.JSON<Alert>() });
  events
    .groupBy((_k, e) => e.eventType, { name: 'by-type' })
    .windowedBy(TimeWindows.ofSizeAndGrace(5 * 60_000, 5 * 60_000))
    .aggregate<TypeAcc>(
      () => ({ events: 0, value: 0, users: [] }),
      (_t, e, a) => ({
        events: a.events + 1,
        value: a.value + e.value,
        users: a.users.includes(e.userId) ? a.users : [...a.users, e.userId],
      }),
      { storeName: 'type-5m', retention: '24h' },
    )
    .suppress(Suppressed.untilWindowCloses())
    .toStream()
    .mapValues(
      (a, k: Windowed<string>): TypeWindow => ({
        windowStart: new Date(k.window.start).toISOString(),
        eventType: k.key,
        events: a.events,
        value: Math.round(a.value * 100) / 100,
        users: a.users.length,
      }),
    )
    .selectKey((_k, v) => v.eventType)
    .to(TOPICS.analytics, { keySerde: S, valueSerde: Serdes.JSON<TypeWindow>() });
  return b.build();
}
