import { invalidArgument, TributaryError } from '../core/index.ts';
import { fromBytes } from './conversions.ts';
import type { DataFile, FieldSummary } from './manifest.ts';
import type { PartitionSpec } from './metadata.ts';
import { applyTransform, parseTransform } from './transforms.ts';
import { fieldByName, type IcebergType, type NestedField, type StructType } from './types.ts';
import { compareInternal, internalKey, toInternal } from './values.ts';

export type CompareOp = 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge';
export type Expr =
  | { op: 'true' }
  | { op: 'false' }
  | { op: 'and'; args: Expr[] }
  | { op: 'or'; args: Expr[] }
  | { op: 'not'; arg: Expr }
  | { op: CompareOp; column: string; value: unknown }
  | { op: 'in'; column: string; values: unknown[] }
  | { op: 'isNull' | 'notNull'; column: string };

/** Builders for filters in code: `and(eq('id', 1), gt('ts', '2024-01-01'))`. */
export const eq = (column: string, value: unknown): Expr => ({ op: 'eq', column, value });
export const ne = (column: string, value: unknown): Expr => ({ op: 'ne', column, value });
export const lt = (column: string, value: unknown): Expr => ({ op: 'lt', column, value });
export const le = (column: string, value: unknown): Expr => ({ op: 'le', column, value });
export const gt = (column: string, value: unknown): Expr => ({ op: 'gt', column, value });
export const ge = (column: string, value: unknown): Expr => ({ op: 'ge', column, value });
export const isIn = (column: string, values: unknown[]): Expr => ({ op: 'in', column, values });
export const isNull = (column: string): Expr => ({ op: 'isNull', column });
export const notNull = (column: string): Expr => ({ op: 'notNull', column });
export const and = (...args: Expr[]): Expr => ({ op: 'and', args });
export const or = (...args: Expr[]): Expr => ({ op: 'or', args });
export const not = (arg: Expr): Expr => ({ op: 'not', arg });

// ---- parser for --where strings ----

type Tok = { k: 'id' | 'num' | 'str' | 'op' | 'kw' | 'punct'; v: string };

function tokenize(s: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < s.length) {
    const ch = s[i] as string;
    if (/\s/.test(ch)) {
      i++;
      continue;
    }
    if (ch === "'") {
      let j = i + 1;
      let v = '';
      for (;;) {
        if (j >= s.length) throw invalidArgument('where', 'a closing quote', s);
        if (s[j] === "'" && s[j + 1] === "'") {
          v += "'";
          j += 2;
        } else if (s[j] === "'") break;
        else v += s[j++];
      }
      out.push({ k: 'str', v });
      i = j + 1;
      continue;
    }
    if (ch === '"' || ch === '`') {
      const j = s.indexOf(ch, i + 1);
      if (j < 0) throw invalidArgument('where', 'a closing quote', s);
      out.push({ k: 'id', v: s.slice(i + 1, j) });
      i = j + 1;
      continue;
    }
    const op = /^(<=|>=|<>|!=|==|=|<|>)/.exec(s.slice(i));
    if (op) {
      out.push({ k: 'op', v: op[0] });
      i += op[0].length;
      continue;
    }
    if (ch === '(' || ch === ')' || ch === ',') {
      out.push({ k: 'punct', v: ch });
      i++;
      continue;
    }
    const num = /^-?\d+(\.\d+)?([eE][+-]?\d+)?/.exec(s.slice(i));
    if (num) {
      out.push({ k: 'num', v: num[0] });
      i += num[0].length;
      continue;
    }
    const id = /^[A-Za-z_][A-Za-z0-9_.]*/.exec(s.slice(i));
    if (id) {
      const up = id[0].toUpperCase();
      if (['AND', 'OR', 'NOT', 'IN', 'IS', 'NULL', 'TRUE', 'FALSE', 'BETWEEN'].includes(up))
        out.push({ k: 'kw', v: up });
      else out.push({ k: 'id', v: id[0] });
      i += id[0].length;
      continue;
    }
    throw invalidArgument('where', `an expression, but found ${JSON.stringify(ch)} at position ${i}`, s);
  }
  return out;
}

/** Parses `a = 1 AND (b > 'x' OR c IS NULL) AND d IN (1, 2)`. */
export function parseExpr(text: string): Expr {
  const toks = tokenize(text);
  let p = 0;
  const peek = (): Tok | undefined => toks[p];
  const fail = (what: string): never => {
    throw invalidArgument('where', `${what} at token ${p + 1}`, text);
  };
  const literal = (): unknown => {
    const t = toks[p++];
    if (!t) return fail('a value');
    if (t.k === 'str') return t.v;
    if (t.k === 'num')
      return t.v.includes('.') || /e/i.test(t.v)
        ? Number(t.v)
        : Number.isSafeInteger(Number(t.v))
          ? Number(t.v)
          : BigInt(t.v);
    if (t.k === 'kw' && t.v === 'TRUE') return true;
    if (t.k === 'kw' && t.v === 'FALSE') return false;
    if (t.k === 'kw' && t.v === 'NULL') return null;
    return fail('a literal');
  };
  const primary = (): Expr => {
    const t = peek();
    if (!t) return fail('an expression');
    if (t.k === 'punct' && t.v === '(') {
      p++;
      const e = orExpr();
      if (peek()?.v !== ')') fail("')'");
      p++;
      return e;
    }
    if (t.k === 'kw' && t.v === 'NOT') {
      p++;
      return not(primary());
    }
    if (t.k === 'kw' && (t.v === 'TRUE' || t.v === 'FALSE')) {
      p++;
      return { op: t.v === 'TRUE' ? 'true' : 'false' };
    }
    if (t.k !== 'id') return fail('a column name');
    p++;
    const col = t.v;
    const n = peek();
    if (n?.k === 'op') {
      p++;
      const map: Record<string, CompareOp> = {
        '=': 'eq',
        '==': 'eq',
        '!=': 'ne',
        '<>': 'ne',
        '<': 'lt',
        '<=': 'le',
        '>': 'gt',
        '>=': 'ge',
      };
      return { op: map[n.v] as CompareOp, column: col, value: literal() };
    }
    if (n?.k === 'kw' && n.v === 'IS') {
      p++;
      let negate = false;
      if (peek()?.v === 'NOT') {
        negate = true;
        p++;
      }
      if (peek()?.v !== 'NULL') fail('NULL');
      p++;
      return negate ? notNull(col) : isNull(col);
    }
    let negIn = false;
    if (n?.k === 'kw' && n.v === 'NOT') {
      negIn = true;
      p++;
    }
    if (peek()?.v === 'IN') {
      p++;
      if (peek()?.v !== '(') fail("'('");
      p++;
      const values = [literal()];
      while (peek()?.v === ',') {
        p++;
        values.push(literal());
      }
      if (peek()?.v !== ')') fail("')'");
      p++;
      return negIn ? not(isIn(col, values)) : isIn(col, values);
    }
    if (peek()?.v === 'BETWEEN') {
      p++;
      const lo = literal();
      if (peek()?.v !== 'AND') fail('AND');
      p++;
      const hi = literal();
      return and(ge(col, lo), le(col, hi));
    }
    return fail('a comparison operator, IS [NOT] NULL or IN');
  };
  const andExpr = (): Expr => {
    const args = [primary()];
    while (peek()?.v === 'AND') {
      p++;
      args.push(primary());
    }
    return args.length === 1 ? (args[0] as Expr) : and(...args);
  };
  const orExpr = (): Expr => {
    const args = [andExpr()];
    while (peek()?.v === 'OR') {
      p++;
      args.push(andExpr());
    }
    return args.length === 1 ? (args[0] as Expr) : or(...args);
  };
  const e = orExpr();
  if (p < toks.length) fail('end of expression');
  return e;
}

// ---- binding (names -> field ids, literals -> internal values) ----

export type Bound =
  | { op: 'true' | 'false' }
  | { op: 'and' | 'or'; args: Bound[] }
  | { op: 'not'; arg: Bound }
  | { op: CompareOp; id: number; type: IcebergType; value: unknown }
  | { op: 'in'; id: number; type: IcebergType; values: unknown[]; keys: Set<string> }
  | { op: 'isNull' | 'notNull'; id: number; type: IcebergType };

export function bindExpr(e: Expr, schema: StructType): Bound {
  const field = (name: string): NestedField => {
    const f = fieldByName(schema, name);
    if (!f)
      throw invalidArgument('where', `a column of the table (${schema.fields.map((x) => x.name).join(', ')})`, name);
    return f;
  };
  const lit = (f: NestedField, v: unknown): unknown => {
    if (v === null) return null;
    let val = v;
    // numbers compare against long columns and strings against dates/timestamps naturally
    if (f.type === 'long' && typeof v === 'number' && !Number.isInteger(v)) return v;
    if ((f.type === 'float' || f.type === 'double') && typeof v === 'number') return v;
    if (f.type === 'int' && typeof v === 'number' && !Number.isInteger(v)) return v;
    if (typeof f.type === 'string' && f.type.startsWith('decimal') && typeof v === 'number') val = String(v);
    const c = toInternal(f.type, val);
    if (!c.ok) throw invalidArgument(`where: ${f.name}`, c.reason.replace(/^expected /, ''));
    return c.value;
  };
  switch (e.op) {
    case 'true':
    case 'false':
      return { op: e.op };
    case 'and':
    case 'or':
      return { op: e.op, args: e.args.map((a) => bindExpr(a, schema)) };
    case 'not':
      return { op: 'not', arg: bindExpr(e.arg, schema) };
    case 'in': {
      const f = field(e.column);
      // an integer column never equals a fractional literal
      const values = e.values.map((v) => lit(f, v)).filter((v) => !fractionalOnIntegral(f.type, v));
      if (values.length === 0) return { op: 'false' };
      return { op: 'in', id: f.id, type: f.type, values, keys: new Set(values.map(internalKey)) };
    }
    case 'isNull':
    case 'notNull': {
      const f = field(e.column);
      return { op: e.op, id: f.id, type: f.type };
    }
    default: {
      const f = field(e.column);
      const value = lit(f, e.value);
      if (fractionalOnIntegral(f.type, value)) {
        // rewrite to integral bounds so transforms (bucket, truncate) and pruning see integers
        const x = value as number;
        const toType = (n: number): unknown => (f.type === 'long' ? BigInt(n) : n);
        switch (e.op) {
          // x = 2.5 is false for any integer x and unknown for null: (x < 0 AND x > 0) has that truth table
          case 'eq':
            return {
              op: 'and',
              args: [
                { op: 'lt', id: f.id, type: f.type, value: toType(0) },
                { op: 'gt', id: f.id, type: f.type, value: toType(0) },
              ],
            };
          // x != 2.5 is true for any integer x and unknown for null
          case 'ne':
            return {
              op: 'or',
              args: [
                { op: 'le', id: f.id, type: f.type, value: toType(0) },
                { op: 'gt', id: f.id, type: f.type, value: toType(0) },
              ],
            };
          case 'lt':
          case 'le':
            return { op: 'le', id: f.id, type: f.type, value: toType(Math.floor(x)) };
          default:
            return { op: 'ge', id: f.id, type: f.type, value: toType(Math.ceil(x)) };
        }
      }
      return { op: e.op, id: f.id, type: f.type, value };
    }
  }
}

function fractionalOnIntegral(t: IcebergType, v: unknown): boolean {
  return (t === 'int' || t === 'long') && typeof v === 'number' && !Number.isInteger(v);
}

/** Field ids an expression reads. */
export function exprFieldIds(b: Bound, out = new Set<number>()): Set<number> {
  if ('id' in b) out.add(b.id);
  else if (b.op === 'and' || b.op === 'or') for (const a of b.args) exprFieldIds(a, out);
  else if (b.op === 'not') exprFieldIds(b.arg, out);
  return out;
}

/** Three-valued evaluation against a row of internal values keyed by field id (`f<id>`). */
export function evalExpr(b: Bound, row: Record<string, unknown>): boolean | null {
  switch (b.op) {
    case 'true':
      return true;
    case 'false':
      return false;
    case 'and': {
      let unknown = false;
      for (const a of b.args) {
        const r = evalExpr(a, row);
        if (r === false) return false;
        if (r === null) unknown = true;
      }
      return unknown ? null : true;
    }
    case 'or': {
      let unknown = false;
      for (const a of b.args) {
        const r = evalExpr(a, row);
        if (r === true) return true;
        if (r === null) unknown = true;
      }
      return unknown ? null : false;
    }
    case 'not': {
      const r = evalExpr(b.arg, row);
      return r === null ? null : !r;
    }
    case 'isNull':
      return row[`f${b.id}`] === null || row[`f${b.id}`] === undefined;
    case 'notNull':
      return !(row[`f${b.id}`] === null || row[`f${b.id}`] === undefined);
    case 'in': {
      const v = row[`f${b.id}`];
      if (v === null || v === undefined) return null;
      return b.keys.has(internalKey(v)) || b.values.some((x) => compareInternal(x, v) === 0);
    }
    default: {
      const v = row[`f${b.id}`];
      if (v === null || v === undefined || b.value === null) return null;
      const c = compareInternal(v, b.value);
      switch (b.op) {
        case 'eq':
          return c === 0;
        case 'ne':
          return c !== 0;
        case 'lt':
          return c < 0;
        case 'le':
          return c <= 0;
        case 'gt':
          return c > 0;
        case 'ge':
          return c >= 0;
      }
    }
  }
  throw new TributaryError('INTERNAL', 'unreachable');
}

/** Pushes NOT down to the leaves so pruning can treat each leaf monotonically. */
export function pushNot(b: Bound, negate = false): Bound {
  switch (b.op) {
    case 'true':
      return negate ? { op: 'false' } : b;
    case 'false':
      return negate ? { op: 'true' } : b;
    case 'and':
    case 'or': {
      const args = b.args.map((a) => pushNot(a, negate));
      return { op: negate ? (b.op === 'and' ? 'or' : 'and') : b.op, args };
    }
    case 'not':
      return pushNot(b.arg, !negate);
    case 'isNull':
      return negate ? { ...b, op: 'notNull' } : b;
    case 'notNull':
      return negate ? { ...b, op: 'isNull' } : b;
    case 'in':
      return negate ? { op: 'not', arg: b } : b; // NOT IN cannot prune
    default: {
      if (!negate) return b;
      const flip: Record<CompareOp, CompareOp> = { eq: 'ne', ne: 'eq', lt: 'ge', le: 'gt', gt: 'le', ge: 'lt' };
      return { ...b, op: flip[b.op] };
    }
  }
}

/** May a data file contain matching rows, judged from its column stats? (false = skip it) */
export function fileMightMatch(b: Bound, file: DataFile): boolean {
  switch (b.op) {
    case 'true':
      return true;
    case 'false':
      return false;
    case 'and':
      return b.args.every((a) => fileMightMatch(a, file));
    case 'or':
      return b.args.some((a) => fileMightMatch(a, file));
    case 'not':
      return true;
    case 'isNull': {
      const n = file.nullValueCounts?.get(b.id);
      return n === undefined || n > 0;
    }
    case 'notNull': {
      const n = file.nullValueCounts?.get(b.id);
      const v = file.valueCounts?.get(b.id);
      return n === undefined || v === undefined || v - n > 0;
    }
    default: {
      const n = file.nullValueCounts?.get(b.id);
      const v = file.valueCounts?.get(b.id);
      if (n !== undefined && v !== undefined && n === v && file.recordCount > 0) return false; // all null
      const lbBytes = file.lowerBounds?.get(b.id);
      const ubBytes = file.upperBounds?.get(b.id);
      let lo: unknown;
      let hi: unknown;
      try {
        lo = lbBytes ? fromBytes(b.type, lbBytes) : undefined;
        hi = ubBytes ? fromBytes(b.type, ubBytes) : undefined;
      } catch {
        return true;
      }
      // string bounds may be truncated prefixes; only trust exact comparisons on the lower bound
      if (b.type === 'string' && typeof hi === 'string') hi = undefined;
      if (b.op === 'in') return b.values.some((x) => rangeMightContain('eq', x, lo, hi));
      return rangeMightContain(b.op, b.value, lo, hi);
    }
  }
}

function rangeMightContain(op: CompareOp, v: unknown, lo: unknown, hi: unknown): boolean {
  if (v === null) return false;
  if (typeof v === 'number' && Number.isNaN(v)) return true;
  const gtLo = lo === undefined ? 1 : compareInternal(v, lo);
  const ltHi = hi === undefined ? -1 : compareInternal(v, hi);
  switch (op) {
    case 'eq':
      return gtLo >= 0 && ltHi <= 0;
    case 'ne':
      return !(lo !== undefined && hi !== undefined && compareInternal(lo, hi) === 0 && compareInternal(lo, v) === 0);
    case 'lt':
      return lo === undefined || compareInternal(lo, v) < 0;
    case 'le':
      return lo === undefined || compareInternal(lo, v) <= 0;
    case 'gt':
      return hi === undefined || compareInternal(hi, v) > 0;
    case 'ge':
      return hi === undefined || compareInternal(hi, v) >= 0;
  }
}

/**
 * `x < v` is `x <= v - 1` on discrete types; projecting that through a transform is tighter
 * (`ts < 2024-01-05T00:00` stays out of day 2024-01-05), as Iceberg's own projections do.
 */
function tighten(op: CompareOp, type: IcebergType, v: unknown): { op: CompareOp; value: unknown } {
  const discrete =
    typeof type === 'string' &&
    (['int', 'long', 'date', 'time', 'timestamp', 'timestamptz', 'timestamp_ns', 'timestamptz_ns'].includes(type) ||
      type.startsWith('decimal'));
  const integral = typeof v === 'bigint' || (typeof v === 'number' && Number.isInteger(v));
  if (!discrete || !integral || (op !== 'lt' && op !== 'gt')) return { op, value: v };
  const step = op === 'lt' ? -1 : 1;
  const value = typeof v === 'bigint' ? v + BigInt(step) : (v as number) + step;
  return { op: op === 'lt' ? 'le' : 'ge', value };
}

/** May a partition (its tuple under `spec`) contain matching rows? Inclusive projection of the filter. */
export function partitionMightMatch(b: Bound, spec: PartitionSpec, tuple: unknown[], schema: StructType): boolean {
  switch (b.op) {
    case 'true':
      return true;
    case 'false':
      return false;
    case 'and':
      return b.args.every((a) => partitionMightMatch(a, spec, tuple, schema));
    case 'or':
      return b.args.some((a) => partitionMightMatch(a, spec, tuple, schema));
    case 'not':
      return true;
    default:
      break;
  }
  for (let i = 0; i < spec.fields.length; i++) {
    const pf = spec.fields[i];
    if (!pf || pf['source-id'] !== b.id) continue;
    const tr = parseTransform(pf.transform);
    const pv = tuple[i];
    if (tr.kind === 'void') continue;
    if (b.op === 'isNull') {
      if (pv !== null && pv !== undefined) return false;
      continue;
    }
    if (b.op === 'notNull') {
      if (tr.kind === 'identity' && (pv === null || pv === undefined)) return false;
      continue;
    }
    // a null partition value means a null source value: no comparison can match
    if (pv === null || pv === undefined) return false;
    const proj = (v: unknown): unknown => applyTransform(tr, b.type, v);
    if (b.op === 'in') {
      if (!b.values.some((x) => x !== null && compareInternal(proj(x), pv) === 0)) return false;
      continue;
    }
    const cmp0 = b as Extract<Bound, { value: unknown }>;
    if (cmp0.value === null) return false;
    const cmp =
      tr.kind === 'identity' || tr.kind === 'bucket' ? cmp0 : { ...cmp0, ...tighten(cmp0.op, cmp0.type, cmp0.value) };
    const pvv = proj(cmp.value);
    const c = compareInternal(pv, pvv);
    if (tr.kind === 'bucket') {
      if (cmp.op === 'eq' && c !== 0) return false;
      continue;
    }
    const exact = tr.kind === 'identity';
    switch (cmp.op) {
      case 'eq':
        if (c !== 0) return false;
        break;
      case 'ne':
        if (exact && c === 0) return false;
        break;
      case 'lt':
        if (exact ? c >= 0 : c > 0) return false;
        break;
      case 'le':
      case 'ge':
      case 'gt':
        if (cmp.op === 'le' && c > 0) return false;
        if (cmp.op === 'ge' && c < 0) return false;
        if (cmp.op === 'gt' && (exact ? c <= 0 : c < 0)) return false;
        break;
    }
  }
  return true;
}

/**
 * May a manifest hold matching files, judged from the manifest list's partition summaries
 * (per partition field: contains_null and lower/upper bounds of the partition values)?
 */
export function manifestMightMatch(
  b: Bound,
  spec: PartitionSpec,
  summaries: FieldSummary[] | undefined,
  partitionFields: NestedField[],
): boolean {
  if (!summaries || summaries.length !== spec.fields.length) return true;
  switch (b.op) {
    case 'true':
      return true;
    case 'false':
      return false;
    case 'and':
      return b.args.every((a) => manifestMightMatch(a, spec, summaries, partitionFields));
    case 'or':
      return b.args.some((a) => manifestMightMatch(a, spec, summaries, partitionFields));
    case 'not':
      return true;
    default:
      break;
  }
  for (let i = 0; i < spec.fields.length; i++) {
    const pf = spec.fields[i];
    const sum = summaries[i];
    const ptype = partitionFields[i]?.type;
    if (!pf || !sum || ptype === undefined || pf['source-id'] !== b.id) continue;
    const tr = parseTransform(pf.transform);
    if (tr.kind === 'void') continue;
    if (b.op === 'isNull') {
      if (!sum.containsNull) return false;
      continue;
    }
    if (b.op === 'notNull') continue;
    if (!sum.lowerBound || !sum.upperBound) {
      // no bounds and nulls present: every partition value is null, so no comparison matches
      if (sum.containsNull && !sum.containsNan) return false;
      continue;
    }
    let lo: unknown;
    let hi: unknown;
    try {
      lo = fromBytes(ptype, sum.lowerBound);
      hi = fromBytes(ptype, sum.upperBound);
    } catch {
      continue;
    }
    const proj = (v: unknown): unknown => applyTransform(tr, b.type, v);
    const inRange = (x: unknown): boolean => compareInternal(x, lo) >= 0 && compareInternal(x, hi) <= 0;
    if (b.op === 'in') {
      if (!b.values.some((x) => x !== null && inRange(proj(x)))) return false;
      continue;
    }
    const cmp0 = b as Extract<Bound, { value: unknown }>;
    if (cmp0.value === null) return false;
    const cmp =
      tr.kind === 'identity' || tr.kind === 'bucket' ? cmp0 : { ...cmp0, ...tighten(cmp0.op, cmp0.type, cmp0.value) };
    const pv = proj(cmp.value);
    if (tr.kind === 'bucket') {
      if (cmp.op === 'eq' && !inRange(pv)) return false;
      continue;
    }
    const exact = tr.kind === 'identity';
    switch (cmp.op) {
      case 'eq':
        if (!inRange(pv)) return false;
        break;
      case 'lt':
        if (exact ? compareInternal(lo, pv) >= 0 : compareInternal(lo, pv) > 0) return false;
        break;
      case 'le':
        if (compareInternal(lo, pv) > 0) return false;
        break;
      case 'gt':
        if (exact ? compareInternal(hi, pv) <= 0 : compareInternal(hi, pv) < 0) return false;
        break;
      case 'ge':
        if (compareInternal(hi, pv) < 0) return false;
        break;
      default:
        break;
    }
  }
  return true;
}
