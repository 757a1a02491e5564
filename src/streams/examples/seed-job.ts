/**
 * The seed job of the streams issue: validate -> async enrich (geolocation, user profile, session within a time
 * budget, else a minimal enriched event) -> re-key by country -> 5-minute tumbling windows with 24 h retention
 * (count, total, average, min, max, distinct users, event types) -> output topic.
 */

import { StreamsBuilder, Suppressed } from '../dsl.ts';
import { Serdes } from '../serdes.ts';
import type { Topology } from '../topology.ts';
import type { Windowed } from '../types.ts';
import { TimeWindows } from '../windows.ts';

export interface SeedEvent {
  eventId: string;
  userId: string;
  type: string;
  amount: number;
  ip?: string;
}

export interface EnrichedEvent extends SeedEvent {
  country: string;
  city: string | null;
  tier: string | null;
  sessionId: string | null;
  /** false when the enrichment budget ran out or a lookup failed: the minimal enriched event. */
  enriched: boolean;
}

export interface EnrichmentServices {
  geolocate(ip: string, signal: AbortSignal): Promise<{ country: string; city: string }>;
  profile(userId: string, signal: AbortSignal): Promise<{ tier: string }>;
  session(userId: string, signal: AbortSignal): Promise<{ sessionId: string }>;
}

export interface WindowStats {
  country: string;
  windowStart: number;
  windowEnd: number;
  count: number;
  total: number;
  average: number;
  min: number;
  max: number;
  distinctUsers: number;
  eventTypes: Record<string, number>;
}

interface Acc {
  count: number;
  total: number;
  min: number;
  max: number;
  users: string[];
  types: Record<string, number>;
}

export interface SeedJobOptions {
  input?: string;
  output?: string;
  invalid?: string;
  /** Enrichment budget per event (default 500 ms). */
  enrichTimeoutMs?: number;
  concurrency?: number;
  /** Grace for late events (default 1 minute). */
  grace?: number;
  /** Emit each window once when it closes (default) or every update. */
  emit?: 'final' | 'updates';
}

export function validate(v: unknown): v is SeedEvent {
  if (typeof v !== 'object' || v === null) return false;
  const e = v as Record<string, unknown>;
  return (
    typeof e.eventId === 'string' &&
    typeof e.userId === 'string' &&
    e.userId.length > 0 &&
    typeof e.type === 'string' &&
    typeof e.amount === 'number' &&
    Number.isFinite(e.amount)
  );
}

export function seedJob(services: EnrichmentServices, opts: SeedJobOptions = {}): Topology {
  const J = Serdes.JSON<unknown>();
  const S = Serdes.String();
  const b = new StreamsBuilder();
  const events = b.stream<string, unknown>(opts.input ?? 'events', { keySerde: S, valueSerde: J });
  const checked = events
    .split()
    .branch((_k, v) => validate(v), 'valid')
    .defaultBranch('invalid');
  checked.get('invalid')?.to(opts.invalid ?? 'events-invalid', { keySerde: S, valueSerde: J });
  const valid = checked.get('valid')?.mapValues((v) => v as SeedEvent);
  if (valid === undefined) throw new Error('unreachable: split() returned no valid branch');
  const minimal = (e: SeedEvent): EnrichedEvent => ({
    ...e,
    country: 'unknown',
    city: null,
    tier: null,
    sessionId: null,
    enriched: false,
  });
  const enriched = valid.mapValuesAsync<EnrichedEvent>(
    async (e, _k, signal) => {
      const [geo, profile, session] = await Promise.all([
        e.ip === undefined ? Promise.resolve(null) : services.geolocate(e.ip, signal),
        services.profile(e.userId, signal),
        services.session(e.userId, signal),
      ]);
      return {
        ...e,
        country: geo?.country ?? 'unknown',
        city: geo?.city ?? null,
        tier: profile.tier,
        sessionId: session.sessionId,
        enriched: true,
      };
    },
    {
      timeoutMs: opts.enrichTimeoutMs ?? 500,
      concurrency: opts.concurrency ?? 64,
      fallback: (e) => minimal(e),
      mode: 'ordered',
    },
  );
  const stats = enriched
    .groupBy((_k, e) => e.country, { name: 'by-country' })
    .windowedBy(TimeWindows.ofSizeAndGrace(5 * 60_000, opts.grace ?? 60_000))
    .aggregate<Acc>(
      () => ({
        count: 0,
        total: 0,
        min: Number.POSITIVE_INFINITY,
        max: Number.NEGATIVE_INFINITY,
        users: [],
        types: {},
      }),
      (_country, e, a) => ({
        count: a.count + 1,
        total: a.total + e.amount,
        min: Math.min(a.min, e.amount),
        max: Math.max(a.max, e.amount),
        users: a.users.includes(e.userId) ? a.users : [...a.users, e.userId],
        types: { ...a.types, [e.type]: (a.types[e.type] ?? 0) + 1 },
      }),
      { storeName: 'country-stats', retention: '24h' },
    );
  const emitted = (opts.emit ?? 'final') === 'final' ? stats.suppress(Suppressed.untilWindowCloses()) : stats;
  emitted
    .toStream()
    .mapValues(
      (a, k: Windowed<string>): WindowStats => ({
        country: k.key,
        windowStart: k.window.start,
        windowEnd: k.window.end,
        count: a.count,
        total: a.total,
        average: a.count === 0 ? 0 : a.total / a.count,
        min: a.min,
        max: a.max,
        distinctUsers: a.users.length,
        eventTypes: a.types,
      }),
    )
    .to(opts.output ?? 'event-stats', { keySerde: S, valueSerde: Serdes.JSON<WindowStats>() });
  return b.build();
}
