import { invalidArgument } from '../core/index.ts';
import { lit, num } from './sql.ts';

/** A half-open interval [start, end) in epoch milliseconds. */
export interface Interval {
  start: number;
  end: number;
}

export const ETERNITY: Interval = { start: -8.64e15, end: 8.64e15 };

/** Parses an ISO-8601 instant; a missing zone means UTC (as in Druid). */
export function parseInstant(text: string, field: string): number {
  const s = text.trim();
  if (/^-?\d{5,}$/.test(s)) return Number(s); // epoch millis; 4 digits is a year
  const m =
    /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:[T ](\d{2})(?::(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?)?)?)?(Z|[+-]\d{2}(?::?\d{2})?)?$/.exec(
      s,
    );
  if (!m) throw invalidArgument(field, 'an ISO-8601 instant such as 2015-09-12T00:00:00Z', text);
  const ms = m[7] ? Number(m[7].slice(0, 3).padEnd(3, '0')) : 0;
  let t = Date.UTC(
    Number(m[1]),
    Number(m[2] ?? 1) - 1,
    Number(m[3] ?? 1),
    Number(m[4] ?? 0),
    Number(m[5] ?? 0),
    Number(m[6] ?? 0),
    ms,
  );
  const zone = m[8];
  if (zone && zone !== 'Z') {
    const zm = /^([+-])(\d{2}):?(\d{2})?$/.exec(zone)!;
    const off = (Number(zm[2]) * 60 + Number(zm[3] ?? 0)) * 60_000;
    t -= zm[1] === '+' ? off : -off;
  }
  if (Number.isNaN(t)) throw invalidArgument(field, 'a valid ISO-8601 instant', text);
  return t;
}

export interface Period {
  years: number;
  months: number;
  weeks: number;
  days: number;
  hours: number;
  minutes: number;
  seconds: number;
  millis: number;
}

export function parsePeriod(text: string, field: string): Period {
  const m =
    /^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)(?:\.(\d{1,3}))?S)?)?$/.exec(text);
  if (!m || text === 'P' || text.endsWith('T'))
    throw invalidArgument(field, 'an ISO-8601 period such as PT1H or P1D', text);
  const n = (i: number) => Number(m[i] ?? 0);
  return {
    years: n(1),
    months: n(2),
    weeks: n(3),
    days: n(4),
    hours: n(5),
    minutes: n(6),
    seconds: n(7),
    millis: m[8] ? Number(m[8].padEnd(3, '0')) : 0,
  };
}

/** Fixed length in ms, or undefined when the period has calendar parts (months, years). */
export function periodMillis(p: Period): number | undefined {
  if (p.years || p.months) return undefined;
  return ((((p.weeks * 7 + p.days) * 24 + p.hours) * 60 + p.minutes) * 60 + p.seconds) * 1000 + p.millis;
}

export function periodSqlInterval(p: Period): string {
  const parts = [
    `${p.years * 12 + p.months} months`,
    `${p.weeks * 7 + p.days} days`,
    `${((p.hours * 60 + p.minutes) * 60 + p.seconds) * 1000 + p.millis} milliseconds`,
  ];
  return `INTERVAL ${lit(parts.join(' '))}`;
}

/** Adds a period in UTC (calendar-aware). */
export function addPeriod(t: number, p: Period, times = 1): number {
  const d = new Date(t);
  if (p.years || p.months) d.setUTCMonth(d.getUTCMonth() + (p.years * 12 + p.months) * times);
  const fixed = periodMillis({ ...p, years: 0, months: 0 }) ?? 0;
  return d.getTime() + fixed * times;
}

export function parseInterval(text: string, field: string): Interval {
  const parts = text.split('/');
  if (parts.length !== 2) throw invalidArgument(field, 'an ISO-8601 interval "start/end"', text);
  const [a, b] = parts as [string, string];
  let start: number;
  let end: number;
  if (a.startsWith('P')) {
    end = parseInstant(b, field);
    start = addPeriod(end, parsePeriod(a, field), -1);
  } else if (b.startsWith('P')) {
    start = parseInstant(a, field);
    end = addPeriod(start, parsePeriod(b, field));
  } else {
    start = parseInstant(a, field);
    end = parseInstant(b, field);
  }
  if (end < start) throw invalidArgument(field, 'an interval whose end is not before its start', text);
  return { start, end };
}

export function isoMillis(t: number): string {
  if (t <= ETERNITY.start) return '-146136543-09-08T08:23:32.096Z';
  if (t >= ETERNITY.end) return '146140482-04-24T15:36:27.903Z';
  return new Date(t).toISOString();
}

export function formatInterval(i: Interval): string {
  return `${isoMillis(i.start)}/${isoMillis(i.end)}`;
}

const SIMPLE: Record<string, string> = {
  second: 'PT1S',
  minute: 'PT1M',
  five_minute: 'PT5M',
  ten_minute: 'PT10M',
  fifteen_minute: 'PT15M',
  thirty_minute: 'PT30M',
  hour: 'PT1H',
  six_hour: 'PT6H',
  eight_hour: 'PT8H',
  day: 'P1D',
  week: 'P1W',
  month: 'P1M',
  quarter: 'P3M',
  year: 'P1Y',
};

/** A normalized granularity. */
export type Granularity =
  | { kind: 'all' }
  | { kind: 'none' }
  | { kind: 'period'; period: Period; periodText: string; timeZone: string; origin: number | undefined }
  | { kind: 'duration'; duration: number; origin: number };

export function parseGranularity(g: unknown, field: string): Granularity {
  if (g === undefined || g === null) return { kind: 'all' };
  if (typeof g === 'string') {
    const name = g.toLowerCase();
    if (name === 'all') return { kind: 'all' };
    if (name === 'none') return { kind: 'none' };
    const p = SIMPLE[name];
    if (!p)
      throw invalidArgument(field, `a granularity (all, none, ${Object.keys(SIMPLE).join(', ')} or an object)`, g);
    return { kind: 'period', period: parsePeriod(p, field), periodText: p, timeZone: 'UTC', origin: undefined };
  }
  if (typeof g === 'object') {
    const o = g as Record<string, unknown>;
    if (o.type === 'period') {
      if (typeof o.period !== 'string') throw invalidArgument(`${field}.period`, 'an ISO-8601 period string', o.period);
      const timeZone = o.timeZone ?? 'UTC';
      if (typeof timeZone !== 'string' || !/^[A-Za-z0-9_+\-/:]+$/.test(timeZone))
        throw invalidArgument(`${field}.timeZone`, 'a time zone id such as America/Los_Angeles', timeZone);
      const origin =
        o.origin === undefined || o.origin === null ? undefined : parseInstant(String(o.origin), `${field}.origin`);
      return {
        kind: 'period',
        period: parsePeriod(o.period, `${field}.period`),
        periodText: o.period,
        timeZone,
        origin,
      };
    }
    if (o.type === 'duration') {
      const d = Number(o.duration);
      if (!Number.isInteger(d) || d <= 0)
        throw invalidArgument(`${field}.duration`, 'a positive number of milliseconds', o.duration);
      const origin = o.origin === undefined ? 0 : parseInstant(String(o.origin), `${field}.origin`);
      return { kind: 'duration', duration: d, origin };
    }
    if (o.type === 'all' || o.type === 'none') return { kind: o.type };
    if (typeof o.type === 'string' && SIMPLE[o.type.toLowerCase()]) return parseGranularity(o.type, field);
  }
  throw invalidArgument(field, 'a granularity string or {type: period|duration}', g);
}

/** SQL for the bucket start (epoch ms, BIGINT) of a TIMESTAMP expression; NULL for `all`. */
export function bucketSql(g: Granularity, timeExpr: string, minTime?: number): string {
  const ix = bucketIndexSql(g, timeExpr, minTime);
  if (ix) return ix.start(ix.index);
  return bucketSqlGeneral(g, timeExpr, minTime);
}

/**
 * Fixed-width buckets on the integer path as a bucket number (`index`, BIGINT) and the SQL turning a number back
 * into the bucket start (epoch ms): grouping by the number and computing starts after aggregation saves a
 * multiply and an add per row. Undefined when the bucket is not a fixed width from an origin at or before every
 * time (see bucketSql).
 */
export function bucketIndexSql(
  g: Granularity,
  timeExpr: string,
  minTime?: number,
): { index: string; start: (index: string) => string } | undefined {
  let d: number | undefined;
  let o: number | undefined;
  if (g.kind === 'duration') {
    d = g.duration;
    o = g.origin;
  } else if (g.kind === 'period') {
    const fixed = periodMillis(g.period);
    const utc = g.timeZone === 'UTC' || g.timeZone === 'Etc/UTC';
    if (fixed !== undefined && utc && (fixed <= 86_400_000 || g.origin !== undefined)) {
      d = fixed;
      o = g.origin ?? (fixed === 604_800_000 ? Date.UTC(2000, 0, 3) : 0);
    }
  }
  if (d === undefined || o === undefined || minTime === undefined || minTime < o) return undefined;
  const width = d;
  const origin = o;
  const start = (index: string) => `(${num(origin)} + ${num(width)} * ${index})`;
  if (Math.abs(o * 1000) < 2 ** 53 && d * 1000 < 2 ** 53)
    return { index: `((epoch_us(${timeExpr}) - ${num(o * 1000)}) // ${num(d * 1000)})`, start };
  return { index: `((epoch_ms(${timeExpr}) - ${num(o)}) // ${num(d)})`, start };
}

function bucketSqlGeneral(g: Granularity, timeExpr: string, minTime?: number): string {
  // Integer division truncates toward zero: exact floor only when every time is at or after the origin
  // (the caller knows from the query intervals); otherwise floor() over a DOUBLE, which is slower.
  // Bucket start of width d ms from origin o. On the integer path, microseconds skip epoch_ms's per-row division.
  const floorBucket = (d: number, o: number) => {
    if (minTime !== undefined && minTime >= o) {
      if (Math.abs(o * 1000) < 2 ** 53 && d * 1000 < 2 ** 53)
        return `(${num(o)} + ${num(d)} * ((epoch_us(${timeExpr}) - ${num(o * 1000)}) // ${num(d * 1000)}))`;
      return `(${num(o)} + ${num(d)} * ((epoch_ms(${timeExpr}) - ${num(o)}) // ${num(d)}))`;
    }
    return `(${num(o)} + ${num(d)} * floor((epoch_ms(${timeExpr}) - ${num(o)}) / ${num(d)})::BIGINT)`;
  };
  switch (g.kind) {
    case 'all':
      return 'NULL::BIGINT';
    case 'none':
      return `epoch_ms(${timeExpr})`;
    case 'duration': {
      return floorBucket(g.duration, g.origin);
    }
    case 'period': {
      const fixed = periodMillis(g.period);
      const utc = g.timeZone === 'UTC' || g.timeZone === 'Etc/UTC';
      if (fixed !== undefined && utc && (fixed <= 86_400_000 || g.origin !== undefined)) {
        // Fixed-length buckets in UTC: integer arithmetic, the fastest path.
        return floorBucket(fixed, g.origin ?? (fixed === 604_800_000 ? Date.UTC(2000, 0, 3) : 0));
      }
      const iv = periodSqlInterval(g.period);
      const tz = `timezone('UTC', ${timeExpr})`;
      if (g.origin !== undefined) {
        return `epoch_ms(time_bucket(${iv}, ${tz}, make_timestamptz(${num(g.origin * 1000)}::BIGINT)))`;
      }
      if (fixed !== undefined && fixed % 604_800_000 === 0 && fixed > 0) {
        return `epoch_ms(time_bucket(${iv}, ${tz}, ${lit(g.timeZone)}))`;
      }
      return `epoch_ms(time_bucket(${iv}, ${tz}, ${lit(g.timeZone)}))`;
    }
  }
}

/** JS bucket start for UTC periods (used to fill empty timeseries buckets); undefined when not computable here. */
export function bucketStart(g: Granularity, t: number): number | undefined {
  if (g.kind === 'none') return t;
  if (g.kind === 'duration') return g.origin + g.duration * Math.floor((t - g.origin) / g.duration);
  if (g.kind !== 'period' || g.timeZone !== 'UTC' || g.origin !== undefined) return undefined;
  const fixed = periodMillis(g.period);
  if (fixed !== undefined) {
    const o = fixed === 604_800_000 ? Date.UTC(2000, 0, 3) : 0;
    if (fixed > 86_400_000 && fixed !== 604_800_000) return undefined;
    return o + fixed * Math.floor((t - o) / fixed);
  }
  const months = g.period.years * 12 + g.period.months;
  const d = new Date(t);
  const total = d.getUTCFullYear() * 12 + d.getUTCMonth();
  const b = total - ((((total - 2000 * 12) % months) + months) % months);
  return Date.UTC(Math.floor(b / 12), b % 12, 1);
}

export function nextBucket(g: Granularity, t: number): number | undefined {
  if (g.kind === 'duration') return t + g.duration;
  if (g.kind === 'period') return addPeriod(t, g.period);
  return undefined;
}
