import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { invalidArgument } from '../core/index.ts';
import { num } from './sql.ts';
import { type SegmentInfo, type SegmentStore, tableSql } from './store.ts';
import { rerollSql } from './stream.ts';
import { addPeriod, type Interval, parseInterval, parsePeriod } from './time.ts';
import { parseWith } from './validate.ts';

const range = (i: Interval) =>
  `"__time" >= make_timestamp(${num(Math.max(i.start, -8.64e15))} * 1000) AND "__time" < make_timestamp(${num(Math.min(i.end, 8.64e15))} * 1000)`;

/**
 * Compacts a datasource: every segment interval (overlapping `interval`) that holds more than one segment
 * partition is rewritten as freshly rolled-up segments, replacing the old ones. Returns the intervals rewritten.
 */
export async function compact(
  store: SegmentStore,
  dataSource: string,
  interval: Interval | undefined,
  maxRowsPerSegment: number,
): Promise<Interval[]> {
  return store.serialize(() =>
    store.withConn(async (c) => {
      const meta = store.datasources.get(dataSource);
      if (!meta) throw invalidArgument('dataSource', 'an existing datasource', dataSource);
      const byInterval = new Map<string, SegmentInfo[]>();
      for (const s of meta.segments) {
        if (interval && !(s.interval.start < interval.end && interval.start < s.interval.end)) continue;
        const k = `${s.interval.start}/${s.interval.end}`;
        byInterval.set(k, [...(byInterval.get(k) ?? []), s]);
      }
      const done: Interval[] = [];
      for (const segs of byInterval.values()) {
        if (segs.length < 2) continue;
        const iv = segs[0]!.interval;
        const current = store.datasources.get(dataSource)!;
        await c.run(
          `CREATE OR REPLACE TEMP TABLE olap_rolled AS ${rerollSql(current.columns, current.rollup, `${num(iv.start)}::BIGINT`, tableSql(dataSource), range(iv))}`,
        );
        const n = Number((await c.runAndReadAll('SELECT count(*) AS n FROM olap_rolled')).getRowObjectsJS()[0]!.n);
        await store.publish(
          c,
          dataSource,
          {
            columns: current.columns,
            stats: { processed: n, processedWithError: 0, thrownAway: 0, unparseable: 0 },
            buckets: [{ seg: iv.start, start: iv.start, end: iv.end, rows: n }],
          },
          { append: false, maxRowsPerSegment, rollup: current.rollup, queryGranularity: current.queryGranularity },
        );
        done.push(iv);
      }
      return done;
    }),
  );
}

const ruleSchema = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('loadForever') }),
  z.looseObject({ type: z.literal('dropForever') }),
  z.looseObject({ type: z.literal('loadByPeriod'), period: z.string(), includeFuture: z.boolean().default(true) }),
  z.looseObject({ type: z.literal('dropByPeriod'), period: z.string(), includeFuture: z.boolean().default(true) }),
  z.looseObject({ type: z.literal('dropBeforeByPeriod'), period: z.string() }),
  z.looseObject({ type: z.literal('loadByInterval'), interval: z.string() }),
  z.looseObject({ type: z.literal('dropByInterval'), interval: z.string() }),
]);
export type RetentionRule = z.output<typeof ruleSchema>;

export function parseRules(value: unknown): RetentionRule[] {
  const rules = parseWith(z.array(ruleSchema), value, 'rules');
  rules.forEach((r, i) => {
    if ('period' in r && typeof r.period === 'string') parsePeriod(r.period, `rules[${i}].period`);
    if ('interval' in r && typeof r.interval === 'string') parseInterval(r.interval, `rules[${i}].interval`);
  });
  return rules;
}

/** Whether Druid's rule chain keeps a segment (first matching rule wins; no match keeps it). */
export function keeps(rules: RetentionRule[], s: Interval, now: number): boolean {
  for (const r of rules) {
    switch (r.type) {
      case 'loadForever':
        return true;
      case 'dropForever':
        return false;
      case 'loadByPeriod':
      case 'dropByPeriod': {
        const from = addPeriod(now, parsePeriod(r.period, 'period'), -1);
        const matches = s.end > from && (r.includeFuture || s.start < now);
        if (matches) return r.type === 'loadByPeriod';
        break;
      }
      case 'dropBeforeByPeriod': {
        const from = addPeriod(now, parsePeriod(r.period, 'period'), -1);
        if (s.end <= from) return false;
        break;
      }
      case 'loadByInterval':
      case 'dropByInterval': {
        const iv = parseInterval(r.interval, 'interval');
        if (s.start >= iv.start && s.end <= iv.end) return r.type === 'loadByInterval';
        break;
      }
    }
  }
  return true;
}

/** Drops the segments the rules do not keep: rows, files and metadata. Returns the dropped segment ids. */
export async function applyRetention(
  store: SegmentStore,
  dataSource: string,
  rules: RetentionRule[],
  now = Date.now(),
): Promise<string[]> {
  return store.serialize(() =>
    store.withConn(async (c) => {
      const meta = store.datasources.get(dataSource);
      if (!meta) return [];
      const drop = meta.segments.filter((s) => !keeps(rules, s.interval, now));
      if (drop.length === 0) return [];
      await c.run('BEGIN TRANSACTION');
      try {
        for (const iv of new Set(drop.map((s) => `${s.interval.start}/${s.interval.end}`))) {
          const [a, b] = iv.split('/').map(Number) as [number, number];
          await c.run(`DELETE FROM ${tableSql(dataSource)} WHERE ${range({ start: a, end: b })}`);
        }
        const next = {
          ...meta,
          segments: meta.segments.filter((s) => !drop.includes(s)),
          generation: meta.generation + 1,
        };
        const dir = store.dsDir(dataSource);
        const metaFile = path.join(dir, 'datasource.json');
        fs.writeFileSync(`${metaFile}.tmp`, JSON.stringify(next, null, 1));
        fs.renameSync(`${metaFile}.tmp`, metaFile);
        await c.run('COMMIT');
        store.datasources.set(dataSource, next);
        for (const s of drop) fs.rmSync(path.join(dir, s.file), { force: true });
      } catch (err) {
        await c.run('ROLLBACK').catch(() => undefined);
        throw err;
      }
      return drop.map((s) => s.id);
    }),
  );
}
