/**
 * A JSON job spec for the common job shape: source topics -> filter -> projection -> key -> optional window and
 * aggregations -> output topic. Jobs arrive at runtime (the server submits them), so every spec is validated
 * and errors name the offending field.
 */
import { z } from 'zod';
import { parseDuration, TributaryError } from '../core/index.ts';
import type { KTable } from './dsl.ts';
import { StreamsBuilder, Suppressed } from './dsl.ts';
import { Serdes } from './serdes.ts';
import type { Topology } from './topology.ts';
import type { Windowed } from './types.ts';
import { SessionWindows, SlidingWindows, TimeWindows } from './windows.ts';

const duration = z.union([z.number().nonnegative(), z.string().min(1)]);
const path = z.string().min(1).describe('a dotted field path, e.g. "user.id"');
const scalar = z.union([z.string(), z.number(), z.boolean(), z.null()]);

const condition = z.object({
  field: path,
  op: z.enum(['eq', 'ne', 'gt', 'gte', 'lt', 'lte', 'in', 'exists', 'contains', 'startsWith']),
  value: z.union([scalar, z.array(scalar)]).optional(),
});
export type FilterSpec =
  | z.infer<typeof condition>
  | { all: FilterSpec[] }
  | { any: FilterSpec[] }
  | { not: FilterSpec };
const filter: z.ZodType<FilterSpec> = z.lazy(() =>
  z.union([
    condition,
    z.object({ all: z.array(filter) }),
    z.object({ any: z.array(filter) }),
    z.object({ not: filter }),
  ]),
);

const aggregation = z.object({
  name: z.string().min(1),
  fn: z.enum(['count', 'sum', 'avg', 'min', 'max', 'distinct', 'countBy', 'first', 'last']),
  field: path.optional(),
});

export const jobSpecSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, ".", "_" or "-"'),
    source: z.object({
      topics: z.array(z.string().min(1)).min(1),
      /** Field holding the event time (epoch ms or ISO string); default the record timestamp. */
      timestampField: path.optional(),
    }),
    filter: filter.optional(),
    /** Output field -> input field path. Omitted: the whole value. */
    project: z.record(z.string(), path).optional(),
    /** Field of the (projected) value to key by; omitted: keep the record key. */
    key: path.optional(),
    window: z
      .discriminatedUnion('type', [
        z.object({ type: z.literal('tumbling'), size: duration, grace: duration.optional() }),
        z.object({ type: z.literal('hopping'), size: duration, advance: duration, grace: duration.optional() }),
        z.object({ type: z.literal('sliding'), timeDifference: duration, grace: duration.optional() }),
        z.object({ type: z.literal('session'), gap: duration, grace: duration.optional() }),
      ])
      .optional(),
    aggregations: z.array(aggregation).min(1).optional(),
    /** 'final' emits each window once when it closes; 'updates' emits every change. */
    emit: z.enum(['final', 'updates']).default('updates'),
    retention: duration.optional(),
    output: z.object({ topic: z.string().min(1) }),
  })
  .superRefine((s, ctx) => {
    if (s.window !== undefined && s.aggregations === undefined)
      ctx.addIssue({ code: 'custom', path: ['aggregations'], message: 'a windowed job needs aggregations' });
    if (s.emit === 'final' && s.window === undefined)
      ctx.addIssue({ code: 'custom', path: ['emit'], message: "'final' needs a window" });
    for (const [i, a] of (s.aggregations ?? []).entries())
      if (a.fn !== 'count' && a.field === undefined)
        ctx.addIssue({ code: 'custom', path: ['aggregations', i, 'field'], message: `${a.fn} needs a field` });
  });

export type JobSpec = z.input<typeof jobSpecSchema>;

/** Validates a spec; throws INVALID_ARGUMENT naming the first bad field. */
export function parseJobSpec(input: unknown): z.output<typeof jobSpecSchema> {
  const r = jobSpecSchema.safeParse(input);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const field = issue === undefined ? 'spec' : ['spec', ...issue.path.map(String)].join('.');
  throw new TributaryError('INVALID_ARGUMENT', `${field}: ${issue?.message ?? 'invalid job spec'}`, { field });
}

function get(value: unknown, p: string): unknown {
  let cur = value;
  for (const part of p.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

export function compileFilter(f: FilterSpec): (v: unknown) => boolean {
  if ('all' in f) {
    const fs = f.all.map(compileFilter);
    return (v) => fs.every((g) => g(v));
  }
  if ('any' in f) {
    const fs = f.any.map(compileFilter);
    return (v) => fs.some((g) => g(v));
  }
  if ('not' in f) {
    const g = compileFilter(f.not);
    return (v) => !g(v);
  }
  const { field, op, value } = f;
  return (v) => {
    const x = get(v, field);
    switch (op) {
      case 'eq':
        return x === value;
      case 'ne':
        return x !== value;
      case 'gt':
        return typeof x === typeof value && (x as number) > (value as number);
      case 'gte':
        return typeof x === typeof value && (x as number) >= (value as number);
      case 'lt':
        return typeof x === typeof value && (x as number) < (value as number);
      case 'lte':
        return typeof x === typeof value && (x as number) <= (value as number);
      case 'in':
        return Array.isArray(value) && value.includes(x as never);
      case 'exists':
        return x !== undefined && x !== null;
      case 'contains':
        return (
          (typeof x === 'string' && typeof value === 'string' && x.includes(value)) ||
          (Array.isArray(x) && x.includes(value))
        );
      case 'startsWith':
        return typeof x === 'string' && typeof value === 'string' && x.startsWith(value);
      default:
        return false;
    }
  };
}

type Acc = Record<string, unknown>;

/** Builds the topology of a spec (JSON values in and out; keys are strings). */
export function compileJobSpec(input: unknown): Topology {
  const spec = parseJobSpec(input);
  const J = Serdes.JSON<unknown>();
  const S = Serdes.String();
  const b = new StreamsBuilder();
  const tsField = spec.source.timestampField;
  let s = b.stream<string, unknown>(spec.source.topics, {
    keySerde: S,
    valueSerde: J,
    ...(tsField === undefined
      ? {}
      : {
          timestampExtractor: (r) => {
            const t = get(r.value, tsField);
            const n = typeof t === 'string' ? Date.parse(t) : Number(t);
            return Number.isFinite(n) ? n : r.timestamp;
          },
        }),
  });
  if (spec.filter !== undefined) {
    const f = compileFilter(spec.filter);
    s = s.filter((_k, v) => f(v));
  }
  if (spec.project !== undefined) {
    const fields = Object.entries(spec.project);
    s = s.mapValues<unknown>((v) => Object.fromEntries(fields.map(([out, from]) => [out, get(v, from) ?? null])));
  }
  const keyField = spec.key;
  const keyed = keyField === undefined ? s : s.selectKey((_k, v) => String(get(v, keyField) ?? ''));
  const aggs = spec.aggregations;
  if (aggs === undefined) {
    keyed.to(spec.output.topic, { keySerde: S, valueSerde: J });
    return b.build();
  }
  const init = (): Acc => {
    const a: Acc = {};
    for (const g of aggs) {
      if (g.fn === 'count') a[g.name] = 0;
      else if (g.fn === 'sum') a[g.name] = 0;
      else if (g.fn === 'avg') a[g.name] = [0, 0];
      else if (g.fn === 'distinct') a[g.name] = [];
      else if (g.fn === 'countBy') a[g.name] = {};
      else a[g.name] = null;
    }
    return a;
  };
  const step = (_k: string, v: unknown, a: Acc): Acc => {
    const n: Acc = { ...a };
    for (const g of aggs) {
      const x = g.field === undefined ? undefined : get(v, g.field);
      const num = typeof x === 'number' ? x : Number.NaN;
      switch (g.fn) {
        case 'count':
          n[g.name] = (a[g.name] as number) + 1;
          break;
        case 'sum':
          if (!Number.isNaN(num)) n[g.name] = (a[g.name] as number) + num;
          break;
        case 'avg':
          if (!Number.isNaN(num)) {
            const [sum, c] = a[g.name] as [number, number];
            n[g.name] = [sum + num, c + 1];
          }
          break;
        case 'min':
          if (!Number.isNaN(num)) n[g.name] = a[g.name] === null ? num : Math.min(a[g.name] as number, num);
          break;
        case 'max':
          if (!Number.isNaN(num)) n[g.name] = a[g.name] === null ? num : Math.max(a[g.name] as number, num);
          break;
        case 'distinct': {
          const set = a[g.name] as unknown[];
          if (x !== undefined && !set.includes(x)) n[g.name] = [...set, x];
          break;
        }
        case 'countBy': {
          const m = a[g.name] as Record<string, number>;
          const k = String(x);
          n[g.name] = { ...m, [k]: (m[k] ?? 0) + 1 };
          break;
        }
        case 'first':
          if (a[g.name] === null && x !== undefined) n[g.name] = x;
          break;
        case 'last':
          if (x !== undefined) n[g.name] = x;
          break;
      }
    }
    return n;
  };
  const merge = (_k: string, x: Acc, y: Acc): Acc => {
    const n: Acc = {};
    for (const g of aggs) {
      const a = x[g.name];
      const c = y[g.name];
      if (g.fn === 'count' || g.fn === 'sum') n[g.name] = (a as number) + (c as number);
      else if (g.fn === 'avg')
        n[g.name] = [(a as number[])[0]! + (c as number[])[0]!, (a as number[])[1]! + (c as number[])[1]!];
      else if (g.fn === 'min') n[g.name] = a === null ? c : c === null ? a : Math.min(a as number, c as number);
      else if (g.fn === 'max') n[g.name] = a === null ? c : c === null ? a : Math.max(a as number, c as number);
      else if (g.fn === 'distinct') n[g.name] = [...new Set([...(a as unknown[]), ...(c as unknown[])])];
      else if (g.fn === 'countBy') {
        const m = { ...(a as Record<string, number>) };
        for (const [k, v] of Object.entries(c as Record<string, number>)) m[k] = (m[k] ?? 0) + v;
        n[g.name] = m;
      } else if (g.fn === 'first') n[g.name] = a ?? c;
      else n[g.name] = c ?? a;
    }
    return n;
  };
  const finish = (a: Acc): Acc => {
    const out: Acc = {};
    for (const g of aggs) {
      const v = a[g.name];
      if (g.fn === 'avg') {
        const [sum, c] = v as [number, number];
        out[g.name] = c === 0 ? null : sum / c;
      } else if (g.fn === 'distinct') out[g.name] = (v as unknown[]).length;
      else out[g.name] = v;
    }
    return out;
  };
  const grouped = keyed.groupByKey({ name: `${spec.name}-by-key` });
  const materialized = {
    storeName: `${spec.name}-store`,
    ...(spec.retention === undefined ? {} : { retention: spec.retention }),
  };
  const w = spec.window;
  if (w === undefined) {
    grouped
      .aggregate(init, step, { storeName: materialized.storeName })
      .toStream()
      .mapValues<Acc>((a, k) => ({ key: k, ...finish(a) }))
      .to(spec.output.topic, { keySerde: S, valueSerde: Serdes.JSON<Acc>() });
    return b.build();
  }
  const grace = (g: string | number | undefined) => (g === undefined ? 0 : parseDuration(g, 'spec.window.grace'));
  let table: KTable<Windowed<string>, Acc>;
  if (w.type === 'session') {
    table = grouped
      .windowedBy(SessionWindows.ofInactivityGapAndGrace(w.gap, grace(w.grace)))
      .aggregate(init, step, merge, materialized);
  } else if (w.type === 'sliding') {
    table = grouped
      .windowedBy(SlidingWindows.ofTimeDifferenceAndGrace(w.timeDifference, grace(w.grace)))
      .aggregate(init, step, materialized);
  } else {
    let tw = TimeWindows.ofSizeAndGrace(w.size, grace(w.grace));
    if (w.type === 'hopping') tw = tw.advanceBy(w.advance);
    table = grouped.windowedBy(tw).aggregate(init, step, materialized);
  }
  if (spec.emit === 'final') table = table.suppress(Suppressed.untilWindowCloses());
  table
    .toStream()
    .mapValues<Acc | null>((a, k) =>
      // Session merges forward tombstones for the sessions they replace: pass them on as tombstones.
      a === null ? null : { key: k.key, windowStart: k.window.start, windowEnd: k.window.end, ...finish(a) },
    )
    .to(spec.output.topic, { keySerde: S, valueSerde: Serdes.JSON<Acc | null>() });
  return b.build();
}
