import { invalidArgument } from '../core/index.ts';
import { evalExpr } from './expr.ts';
import {
  cdf,
  count,
  finalizeSketch,
  histogram,
  isSketch,
  type QuantilesState,
  quantile,
  rank,
  type SketchState,
  type ThetaState,
  thetaSetOp,
  thetaSetOpEstimate,
} from './sketches.ts';

export type Row = Record<string, unknown>;

export function finalizeValue(v: unknown): unknown {
  return isSketch(v) ? finalizeSketch(v as SketchState) : v;
}

function asNumber(v: unknown): number {
  const f = finalizeValue(v);
  if (f === null || f === undefined) return 0;
  return typeof f === 'bigint' ? Number(f) : Number(f);
}

function obj(v: unknown, field: string): Record<string, unknown> {
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw invalidArgument(field, 'a post-aggregator object', v);
  return v as Record<string, unknown>;
}

function str(o: Record<string, unknown>, key: string, field: string): string {
  const v = o[key];
  if (typeof v !== 'string' || v === '') throw invalidArgument(`${field}.${key}`, 'a non-empty string', v);
  return v;
}

function sketchField(o: Record<string, unknown>, row: Row, field: string): unknown {
  const f = o.field;
  if (f !== undefined) return evalPostAgg(f, row, `${field}.field`);
  return row[str(o, 'fieldName', field)];
}

/** Names a post-aggregator outputs. */
export function postAggName(pa: unknown, field: string): string {
  return str(obj(pa, field), 'name', field);
}

/** Evaluates a Druid post-aggregator against a row of aggregated values. */
export function evalPostAgg(pa: unknown, row: Row, field: string): unknown {
  const o = obj(pa, field);
  const type = o.type;
  switch (type) {
    case 'fieldAccess':
      return row[str(o, 'fieldName', field)] ?? null;
    case 'finalizingFieldAccess':
      return finalizeValue(row[str(o, 'fieldName', field)] ?? null);
    case 'constant': {
      const v = o.value;
      if (typeof v !== 'number') throw invalidArgument(`${field}.value`, 'a number', v);
      return Number.isInteger(v) ? BigInt(v) : v;
    }
    case 'arithmetic': {
      const fn = str(o, 'fn', field);
      const fields = o.fields;
      if (!Array.isArray(fields) || fields.length < 1)
        throw invalidArgument(`${field}.fields`, 'an array of post-aggregators');
      const vals = fields.map((f, i) => asNumber(evalPostAgg(f, row, `${field}.fields[${i}]`)));
      let acc = vals[0]!;
      for (const v of vals.slice(1)) {
        switch (fn) {
          case '+':
            acc += v;
            break;
          case '-':
            acc -= v;
            break;
          case '*':
            acc *= v;
            break;
          case '/':
            acc = v === 0 ? 0 : acc / v;
            break;
          case 'quotient':
            acc /= v;
            break;
          case 'pow':
            acc **= v;
            break;
          default:
            throw invalidArgument(`${field}.fn`, 'one of + - * / quotient pow', fn);
        }
      }
      return acc;
    }
    case 'doubleGreatest':
    case 'doubleLeast':
    case 'longGreatest':
    case 'longLeast': {
      const fields = (o.fields as unknown[]) ?? [];
      const vals = fields.map((f, i) => asNumber(evalPostAgg(f, row, `${field}.fields[${i}]`)));
      const r = type.endsWith('Greatest') ? Math.max(...vals) : Math.min(...vals);
      return type.startsWith('long') ? BigInt(Math.trunc(r)) : r;
    }
    case 'hyperUniqueCardinality':
      return asNumber(row[str(o, 'fieldName', field)]);
    case 'thetaSketchEstimate': {
      const s = sketchField(o, row, field);
      if (!isSketch(s) || s.kind !== 'theta') return asNumber(s);
      return thetaSetOpEstimate(s);
    }
    case 'thetaSketchSetOp': {
      const fields = (o.fields as unknown[]) ?? [];
      const sketches = fields.map((f, i) => evalPostAgg(f, row, `${field}.fields[${i}]`));
      if (!sketches.every((s) => isSketch(s) && s.kind === 'theta'))
        throw invalidArgument(`${field}.fields`, 'theta sketches (fieldAccess on thetaSketch aggregators)');
      const k = typeof o.size === 'number' ? o.size : (sketches[0] as ThetaState).k;
      return thetaSetOp(str(o, 'func', field), sketches as ThetaState[], k);
    }
    case 'HLLSketchEstimate': {
      const s = sketchField(o, row, field);
      const v = asNumber(s);
      return o.round ? BigInt(Math.round(v)) : v;
    }
    case 'HLLSketchEstimateWithBounds': {
      const v = asNumber(sketchField(o, row, field));
      const sd = typeof o.numStdDev === 'number' ? o.numStdDev : 1;
      const rse = 1.04 / 64;
      return [v, v * (1 - sd * rse), v * (1 + sd * rse)];
    }
    case 'quantilesDoublesSketchToQuantile':
    case 'quantilesDoublesSketchToQuantiles':
    case 'quantilesDoublesSketchToHistogram':
    case 'quantilesDoublesSketchToCDF':
    case 'quantilesDoublesSketchToRank':
    case 'quantilesDoublesSketchToString': {
      const s = sketchField(o, row, field);
      if (!isSketch(s) || s.kind !== 'quantiles')
        throw invalidArgument(`${field}.field`, 'a quantilesDoublesSketch (fieldAccess on the aggregator)');
      const q = s as QuantilesState;
      if (type === 'quantilesDoublesSketchToQuantile') return quantile(q, Number(o.fraction));
      if (type === 'quantilesDoublesSketchToQuantiles')
        return ((o.fractions as number[]) ?? []).map((f) => quantile(q, Number(f)));
      if (type === 'quantilesDoublesSketchToCDF') return cdf(q, (o.splitPoints as number[]) ?? []);
      if (type === 'quantilesDoublesSketchToRank') return rank(q, Number(o.value));
      if (type === 'quantilesDoublesSketchToString')
        return `DoublesSketch N=${count(q)}, k=${q.k}, retained=${q.values.length}`;
      let splits = o.splitPoints as number[] | undefined;
      if (!splits) {
        const bins = typeof o.numBins === 'number' ? o.numBins : 10;
        const min = Math.min(...q.values);
        const max = Math.max(...q.values);
        splits = Array.from({ length: bins - 1 }, (_, i) => min + ((max - min) * (i + 1)) / bins);
      }
      return histogram(q, splits);
    }
    case 'expression': {
      const v = evalExpr(str(o, 'expression', field), (n) => finalizeValue(row[n] ?? null), `${field}.expression`);
      return typeof v === 'number' && Number.isInteger(v) && o.outputType === 'LONG' ? BigInt(v) : v;
    }
    default:
      throw invalidArgument(`${field}.type`, 'a supported post-aggregator type', type);
  }
}

function cmpValues(a: unknown, b: unknown): number {
  const fa = finalizeValue(a);
  const fb = finalizeValue(b);
  return asNumber(fa) - asNumber(fb);
}

/** Evaluates a groupBy having spec. */
export function evalHaving(h: unknown, row: Row, field: string): boolean {
  const o = obj(h, field);
  switch (o.type) {
    case 'greaterThan':
      return cmpValues(row[str(o, 'aggregation', field)], o.value) > 0;
    case 'lessThan':
      return cmpValues(row[str(o, 'aggregation', field)], o.value) < 0;
    case 'equalTo':
      return cmpValues(row[str(o, 'aggregation', field)], o.value) === 0;
    case 'and':
      return ((o.havingSpecs as unknown[]) ?? []).every((x, i) => evalHaving(x, row, `${field}.havingSpecs[${i}]`));
    case 'or':
      return ((o.havingSpecs as unknown[]) ?? []).some((x, i) => evalHaving(x, row, `${field}.havingSpecs[${i}]`));
    case 'not':
      return !evalHaving(o.havingSpec, row, `${field}.havingSpec`);
    case 'dimSelector':
      return String(row[str(o, 'dimension', field)] ?? '') === String(o.value ?? '');
    case 'always':
      return true;
    case 'never':
      return false;
    default:
      throw invalidArgument(
        `${field}.type`,
        'a having type (greaterThan, lessThan, equalTo, and, or, not, dimSelector, always, never)',
        o.type,
      );
  }
}
