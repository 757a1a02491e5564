import type { DuckDBConnection } from '@duckdb/node-api';
import { parseDuration } from '../core/index.ts';
import { describe, jsonSafe, lit, q, queryRows, sqlValue } from './duck.ts';
import type { Check } from './spec.ts';

export const DIMENSIONS = ['completeness', 'validity', 'uniqueness', 'freshness', 'consistency'] as const;
export type Dimension = (typeof DIMENSIONS)[number];

export interface CheckResult {
  name: string;
  type: Check['type'];
  column?: string;
  severity: 'warn' | 'error';
  dimension: Dimension;
  weight: number;
  success: boolean;
  observedValue: unknown;
  expected: string;
  rowCount: number;
  unexpectedCount: number;
  unexpectedPercent: number;
  /** Pass rate used by the score: 1 - unexpected share for row checks, 1/0 for dataset checks. */
  passRate: number;
  sample: Record<string, unknown>[];
  /** The row predicate a passing row satisfies (row-level checks only). */
  predicate?: string;
}

export interface ColumnMetrics {
  nullCount: number;
  /** Only for columns a uniqueness check reads. */
  distinctCount?: number;
  count: number;
  min?: number;
  max?: number;
}

export interface QualityReport {
  dataset: string;
  rowCount: number;
  results: CheckResult[];
  columnMetrics: Record<string, ColumnMetrics>;
  score: QualityScore;
}

export interface QualityScore {
  score: number;
  dimensions: Partial<Record<Dimension, number>>;
}

const DEFAULT_DIMENSION: Record<Check['type'], Dimension> = {
  not_null: 'completeness',
  row_count: 'completeness',
  unique: 'uniqueness',
  accepted_values: 'validity',
  range: 'validity',
  regex: 'validity',
  schema_match: 'validity',
  freshness: 'freshness',
  referential_integrity: 'consistency',
  custom_sql: 'consistency',
};

/** Weighted pass rate per dimension, and their mean over the dimensions present. */
export function scoreOf(results: readonly Pick<CheckResult, 'dimension' | 'weight' | 'passRate'>[]): QualityScore {
  const acc = new Map<Dimension, { w: number; s: number }>();
  for (const r of results) {
    const a = acc.get(r.dimension) ?? { w: 0, s: 0 };
    a.w += r.weight;
    a.s += r.weight * r.passRate;
    acc.set(r.dimension, a);
  }
  const dimensions: Partial<Record<Dimension, number>> = {};
  let sum = 0;
  let n = 0;
  for (const d of DIMENSIONS) {
    const a = acc.get(d);
    if (!a || a.w === 0) continue;
    dimensions[d] = a.s / a.w;
    sum += a.s / a.w;
    n++;
  }
  return { score: n ? sum / n : 1, dimensions };
}

function num(v: unknown): number {
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'number') return v;
  if (v === null || v === undefined) return 0;
  return Number(v);
}

/** The predicate a passing row satisfies, for row-level checks (NULL counts as passing except not_null). */
function rowPredicate(check: Check): string | undefined {
  switch (check.type) {
    case 'not_null':
      return `${q(check.column)} IS NOT NULL`;
    case 'accepted_values':
      return `${q(check.column)} IS NULL OR ${q(check.column)} IN (${check.values.map(sqlValue).join(', ')})`;
    case 'range': {
      const p: string[] = [];
      if (check.min !== undefined) p.push(`${q(check.column)} >= ${check.min}`);
      if (check.max !== undefined) p.push(`${q(check.column)} <= ${check.max}`);
      return `${q(check.column)} IS NULL OR (${p.join(' AND ') || 'TRUE'})`;
    }
    case 'regex':
      return `${q(check.column)} IS NULL OR regexp_full_match(CAST(${q(check.column)} AS VARCHAR), ${lit(check.pattern)})`;
    case 'referential_integrity':
      return `${q(check.column)} IS NULL OR ${q(check.column)} IN (SELECT ${q(check.toColumn)} FROM ${q(check.to)})`;
    case 'custom_sql':
      return check.where;
    default:
      return undefined;
  }
}

export function checkName(c: Check): string {
  if (c.name) return c.name;
  return 'column' in c && c.column ? `${c.type}(${c.column})` : c.type;
}

function isNumericType(t: string): boolean {
  return /^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|FLOAT|DOUBLE|DECIMAL)/i.test(t);
}

/**
 * Runs checks over a relation. Column metrics (null count, distinct count, min, max) and every row
 * predicate are computed in one aggregate query, once per column and predicate, and shared by the
 * checks that use them.
 */
export async function runChecks(
  c: DuckDBConnection,
  relation: string,
  dataset: string,
  checks: Check[],
  opts: { sampleSize?: number; now?: Date } = {},
): Promise<QualityReport> {
  const sampleSize = opts.sampleSize ?? 5;
  const cols = await describe(c, q(relation));
  const colType = new Map(cols.map((x) => [x.name, x.type]));
  const metricCols = new Set<string>();
  for (const ch of checks) if ('column' in ch && ch.column && colType.has(ch.column)) metricCols.add(ch.column);
  const exprs: string[] = ['count(*) AS "rows"'];
  const metricAlias = new Map<string, string>();
  const addMetric = (key: string, expr: string): string => {
    let a = metricAlias.get(key);
    if (!a) {
      a = `m${metricAlias.size}`;
      metricAlias.set(key, a);
      exprs.push(`${expr} AS ${a}`);
    }
    return a;
  };
  // distinct counts cost a hash table per column: only for columns a uniqueness check reads
  const distinctCols = new Set(
    checks.filter((ch) => ch.type === 'unique').map((ch) => (ch as { column: string }).column),
  );
  for (const col of metricCols) {
    addMetric(`count:${col}`, `count(${q(col)})`);
    if (distinctCols.has(col)) addMetric(`distinct:${col}`, `count(DISTINCT ${q(col)})`);
    const t = colType.get(col)!;
    if (isNumericType(t)) {
      addMetric(`min:${col}`, `min(${q(col)})::DOUBLE`);
      addMetric(`max:${col}`, `max(${q(col)})::DOUBLE`);
    } else if (/^(DATE|TIMESTAMP)/i.test(t)) {
      addMetric(`maxts:${col}`, `epoch_ms(max(${q(col)})::TIMESTAMP)`);
    }
  }
  const predicates = new Map<Check, string>();
  for (const ch of checks) {
    if ('column' in ch && ch.column && !colType.has(ch.column)) continue;
    const p = rowPredicate(ch);
    if (p) {
      predicates.set(ch, p);
      addMetric(`fail:${p}`, `count_if(NOT coalesce((${p}), false))`);
    }
  }
  const [row] = await queryRows(c, `SELECT ${exprs.join(', ')} FROM ${q(relation)}`);
  const m = (key: string): unknown => row?.[metricAlias.get(key) ?? ''];
  const rowCount = num(row?.rows);
  const columnMetrics: Record<string, ColumnMetrics> = {};
  for (const col of metricCols) {
    const cm: ColumnMetrics = { count: num(m(`count:${col}`)), nullCount: rowCount - num(m(`count:${col}`)) };
    if (distinctCols.has(col)) cm.distinctCount = num(m(`distinct:${col}`));
    if (m(`min:${col}`) !== undefined && m(`min:${col}`) !== null) cm.min = num(m(`min:${col}`));
    if (m(`max:${col}`) !== undefined && m(`max:${col}`) !== null) cm.max = num(m(`max:${col}`));
    columnMetrics[col] = cm;
  }

  const results: CheckResult[] = [];
  for (const ch of checks) {
    const base = {
      name: checkName(ch),
      type: ch.type,
      severity: ch.severity,
      dimension: ch.dimension ?? DEFAULT_DIMENSION[ch.type],
      weight: ch.weight,
      rowCount,
    };
    const column = 'column' in ch ? ch.column : undefined;
    let unexpected = 0;
    let observed: unknown;
    let expected = '';
    let rowLevel = false;
    let aggregateOk = true;
    let predicate: string | undefined;
    let failingSql: string | undefined;
    if (column !== undefined && !colType.has(column)) {
      results.push({
        ...base,
        column,
        success: false,
        observedValue: 'missing column',
        expected: `column "${column}" present`,
        unexpectedCount: rowCount,
        unexpectedPercent: 100,
        passRate: 0,
        sample: [],
      });
      continue;
    }
    switch (ch.type) {
      case 'unique': {
        const cm = columnMetrics[ch.column]!;
        unexpected = cm.count - cm.distinctCount!;
        observed = cm.distinctCount;
        expected = `${cm.count} distinct values`;
        rowLevel = true;
        predicate = `count(*) OVER (PARTITION BY ${q(ch.column)}) = 1 OR ${q(ch.column)} IS NULL`;
        failingSql = `SELECT * FROM ${q(relation)} QUALIFY NOT (${predicate})`;
        break;
      }
      case 'row_count':
        observed = rowCount;
        expected = `${ch.min ?? 0}..${ch.max ?? '∞'}`;
        aggregateOk = (ch.min === undefined || rowCount >= ch.min) && (ch.max === undefined || rowCount <= ch.max);
        break;
      case 'freshness': {
        const maxAgeMs = parseDuration(ch.maxAge, 'maxAge');
        const newest = m(`maxts:${ch.column}`);
        const now = ch.now ? Date.parse(ch.now) : (opts.now ?? new Date()).getTime();
        const age = newest === null || newest === undefined ? Number.POSITIVE_INFINITY : now - num(newest);
        observed = Number.isFinite(age) ? `${Math.round(age / 1000)}s` : 'no values';
        expected = `newest value within ${ch.maxAge}`;
        aggregateOk = age <= maxAgeMs;
        break;
      }
      case 'schema_match': {
        const problems: string[] = [];
        for (const [name, type] of Object.entries(ch.columns)) {
          const t = colType.get(name);
          if (t === undefined) problems.push(`missing ${name}`);
          else if (type !== null && t.toUpperCase() !== type.toUpperCase())
            problems.push(`${name} is ${t}, expected ${type}`);
        }
        if (!ch.allowExtra) for (const n of colType.keys()) if (!(n in ch.columns)) problems.push(`unexpected ${n}`);
        observed = problems.length ? problems.join('; ') : 'match';
        expected = Object.entries(ch.columns)
          .map(([k, v]) => `${k}${v ? ` ${v}` : ''}`)
          .join(', ');
        aggregateOk = problems.length === 0;
        break;
      }
      default: {
        if (ch.type === 'custom_sql' && ch.sql && !ch.where) {
          failingSql = ch.sql.replaceAll('{{input}}', q(relation));
          const [cnt] = await queryRows(c, `SELECT count(*) AS n FROM (${failingSql})`);
          unexpected = num(cnt?.n);
          observed = unexpected;
          expected = '0 failing rows';
          rowLevel = true;
          break;
        }
        predicate = predicates.get(ch)!;
        unexpected = num(m(`fail:${predicate}`));
        observed = unexpected;
        expected = predicate;
        rowLevel = true;
        failingSql = `SELECT * FROM ${q(relation)} WHERE NOT coalesce((${predicate}), false)`;
      }
    }
    let success: boolean;
    let passRate: number;
    let unexpectedPercent = 0;
    if (rowLevel) {
      unexpectedPercent = rowCount ? (unexpected / rowCount) * 100 : 0;
      passRate = rowCount ? 1 - unexpected / rowCount : 1;
      success = passRate >= ch.mostly;
    } else {
      success = aggregateOk;
      passRate = aggregateOk ? 1 : 0;
    }
    let sample: Record<string, unknown>[] = [];
    if (unexpected > 0 && failingSql && sampleSize > 0)
      sample = (await queryRows(c, `SELECT * FROM (${failingSql}) LIMIT ${sampleSize}`)).map(
        (r) => jsonSafe(r) as Record<string, unknown>,
      );
    const res: CheckResult = {
      ...base,
      success,
      observedValue: jsonSafe(observed),
      expected,
      unexpectedCount: unexpected,
      unexpectedPercent,
      passRate,
      sample,
    };
    if (column !== undefined) res.column = column;
    if (predicate !== undefined) res.predicate = predicate;
    results.push(res);
  }
  return { dataset, rowCount, results, columnMetrics, score: scoreOf(results) };
}
