import { TributaryError } from '../core/index.ts';
import type { CepContext, ConditionFn } from './pattern.ts';
import { setExpressionCompiler } from './pattern.ts';

/**
 * A small, safe expression language for conditions (parsed and interpreted, never eval'd):
 *   eventType == "LOGIN" && value > 1000
 *   price < last("A", "price") || (count("A") == 0 && price < first("start", "price"))
 * Identifiers are event fields (dotted paths: `user.id`); `timestamp()` is the event's timestamp.
 * Aggregates read the events already matched by a stage: count(stage), sum/avg/min/max/first/last(stage, field).
 * Operators: || && ! == != < <= > >= + - * / % unary -, `x in [a, b]`; literals: numbers, "strings" or
 * 'strings', true, false, null. Functions: abs, lower, upper, len, contains, startsWith, endsWith, exists.
 */

type Ast =
  | { t: 'lit'; v: unknown }
  | { t: 'field'; path: string[] }
  | { t: 'un'; op: '!' | '-'; a: Ast }
  | { t: 'bin'; op: string; a: Ast; b: Ast }
  | { t: 'in'; a: Ast; list: Ast[] }
  | { t: 'call'; fn: string; args: Ast[] };

interface Tok {
  k: 'num' | 'str' | 'id' | 'op' | 'end';
  v: string;
  pos: number;
}

const OPS = ['||', '&&', '==', '!=', '<=', '>=', '<', '>', '!', '+', '-', '*', '/', '%', '(', ')', '[', ']', ',', '.'];

function fail(src: string, pos: number, msg: string): TributaryError {
  return new TributaryError('INVALID_ARGUMENT', `expression ${JSON.stringify(src)} at ${pos}: ${msg}`, {
    field: 'condition',
  });
}

function tokenize(src: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i] as string;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(src[i + 1] ?? ''))) {
      const m = /^[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?/.exec(src.slice(i)) as RegExpExecArray;
      out.push({ k: 'num', v: m[0], pos: i });
      i += m[0].length;
      continue;
    }
    if (c === '"' || c === "'") {
      let j = i + 1;
      let s = '';
      while (j < src.length && src[j] !== c) {
        if (src[j] === '\\' && j + 1 < src.length) {
          j++;
          const e = src[j] as string;
          s += e === 'n' ? '\n' : e === 't' ? '\t' : e;
        } else s += src[j];
        j++;
      }
      if (j >= src.length) throw fail(src, i, 'unterminated string');
      out.push({ k: 'str', v: s, pos: i });
      i = j + 1;
      continue;
    }
    if (/[A-Za-z_$]/.test(c)) {
      const m = /^[A-Za-z_$][A-Za-z0-9_$]*/.exec(src.slice(i)) as RegExpExecArray;
      out.push({ k: 'id', v: m[0], pos: i });
      i += m[0].length;
      continue;
    }
    const op = OPS.find((o) => src.startsWith(o, i));
    if (op === undefined) throw fail(src, i, `unexpected character ${JSON.stringify(c)}`);
    out.push({ k: 'op', v: op, pos: i });
    i += op.length;
  }
  out.push({ k: 'end', v: '', pos: src.length });
  return out;
}

const PREC: Record<string, number> = {
  '||': 1,
  '&&': 2,
  '==': 3,
  '!=': 3,
  '<': 4,
  '<=': 4,
  '>': 4,
  '>=': 4,
  in: 4,
  '+': 5,
  '-': 5,
  '*': 6,
  '/': 6,
  '%': 6,
};

const FUNCS: Record<string, [number, number]> = {
  count: [1, 1],
  sum: [2, 2],
  avg: [2, 2],
  min: [2, 2],
  max: [2, 2],
  first: [2, 2],
  last: [2, 3],
  timestamp: [0, 0],
  abs: [1, 1],
  lower: [1, 1],
  upper: [1, 1],
  len: [1, 1],
  contains: [2, 2],
  startsWith: [2, 2],
  endsWith: [2, 2],
  exists: [1, 1],
};
const STAGE_FUNCS = new Set(['count', 'sum', 'avg', 'min', 'max', 'first', 'last']);

export function parseExpression(src: string): Ast {
  if (typeof src !== 'string' || src.trim() === '') throw fail(String(src), 0, 'expected a non-empty expression');
  const toks = tokenize(src);
  let p = 0;
  const peek = () => toks[p] as Tok;
  const eat = (v: string): void => {
    const t = peek();
    if (t.v !== v || (t.k !== 'op' && t.k !== 'id')) throw fail(src, t.pos, `expected ${JSON.stringify(v)}`);
    p++;
  };
  const primary = (): Ast => {
    const t = peek();
    p++;
    if (t.k === 'num') return { t: 'lit', v: Number(t.v) };
    if (t.k === 'str') return { t: 'lit', v: t.v };
    if (t.k === 'op' && (t.v === '!' || t.v === '-')) return { t: 'un', op: t.v, a: binary(7) };
    if (t.k === 'op' && t.v === '(') {
      const e = binary(0);
      eat(')');
      return e;
    }
    if (t.k === 'id') {
      if (t.v === 'true' || t.v === 'false') return { t: 'lit', v: t.v === 'true' };
      if (t.v === 'null') return { t: 'lit', v: null };
      if (peek().v === '(' && peek().k === 'op') {
        p++;
        const arity = FUNCS[t.v];
        if (arity === undefined)
          throw fail(src, t.pos, `unknown function ${t.v}(); known: ${Object.keys(FUNCS).join(', ')}`);
        const args: Ast[] = [];
        if (!(peek().k === 'op' && peek().v === ')')) {
          args.push(binary(0));
          while (peek().k === 'op' && peek().v === ',') {
            p++;
            args.push(binary(0));
          }
        }
        eat(')');
        if (args.length < arity[0] || args.length > arity[1])
          throw fail(
            src,
            t.pos,
            `${t.v}() takes ${arity[0] === arity[1] ? arity[0] : `${arity[0]} to ${arity[1]}`} arguments, got ${args.length}`,
          );
        if (STAGE_FUNCS.has(t.v)) {
          for (const [i, a] of args.entries())
            if (i < 2 && (a.t !== 'lit' || typeof a.v !== 'string'))
              throw fail(src, t.pos, `${t.v}() takes a stage name and a field name as string literals`);
        }
        return { t: 'call', fn: t.v, args };
      }
      const path = [t.v];
      while (peek().k === 'op' && peek().v === '.') {
        p++;
        const n = peek();
        if (n.k !== 'id') throw fail(src, n.pos, 'expected a field name after "."');
        p++;
        path.push(n.v);
      }
      return { t: 'field', path };
    }
    throw fail(src, t.pos, t.k === 'end' ? 'unexpected end of expression' : `unexpected ${JSON.stringify(t.v)}`);
  };
  const binary = (minPrec: number): Ast => {
    let left = primary();
    for (;;) {
      const t = peek();
      const op = t.k === 'op' || (t.k === 'id' && t.v === 'in') ? t.v : '';
      const prec = PREC[op];
      if (prec === undefined || prec <= minPrec) return left;
      p++;
      if (op === 'in') {
        eat('[');
        const list: Ast[] = [];
        if (!(peek().k === 'op' && peek().v === ']')) {
          list.push(binary(0));
          while (peek().k === 'op' && peek().v === ',') {
            p++;
            list.push(binary(0));
          }
        }
        eat(']');
        left = { t: 'in', a: left, list };
      } else left = { t: 'bin', op, a: left, b: binary(prec) };
    }
  };
  const ast = binary(0);
  if (peek().k !== 'end') throw fail(src, peek().pos, `unexpected ${JSON.stringify(peek().v)}`);
  return ast;
}

type Ev = (event: unknown, ctx: CepContext<unknown>) => unknown;

function field(obj: unknown, path: string[]): unknown {
  let o = obj;
  for (const k of path) {
    if (o === null || typeof o !== 'object') return undefined;
    if (!Object.hasOwn(o, k)) return undefined;
    o = (o as Record<string, unknown>)[k];
  }
  return o;
}
const num = (v: unknown): number | null => (typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : null);

function compileAst(a: Ast): Ev {
  switch (a.t) {
    case 'lit': {
      const v = a.v;
      return () => v;
    }
    case 'field': {
      const path = a.path;
      if (path.length === 1) {
        const k = path[0] as string;
        // Own data only: inherited members (constructor, toString, __proto__) read as missing.
        if (k === '__proto__') return () => undefined;
        return (e) => {
          if (e === null || typeof e !== 'object') return undefined;
          const v = (e as Record<string, unknown>)[k];
          return typeof v === 'function' ? undefined : v;
        };
      }
      return (e) => field(e, path);
    }
    case 'un': {
      const x = compileAst(a.a);
      if (a.op === '!') return (e, c) => !truthy(x(e, c));
      return (e, c) => {
        const n = num(x(e, c));
        return n === null ? null : -n;
      };
    }
    case 'in': {
      const x = compileAst(a.a);
      const list = a.list.map(compileAst);
      return (e, c) => {
        const v = x(e, c);
        return list.some((l) => l(e, c) === v);
      };
    }
    case 'bin': {
      const l = compileAst(a.a);
      const r = compileAst(a.b);
      switch (a.op) {
        case '||':
          return (e, c) => truthy(l(e, c)) || truthy(r(e, c));
        case '&&':
          return (e, c) => truthy(l(e, c)) && truthy(r(e, c));
        case '==': {
          // Comparing with a string or number literal needs no normalization.
          const lit = a.b.t === 'lit' && (typeof a.b.v === 'string' || typeof a.b.v === 'number') ? a.b.v : undefined;
          if (lit !== undefined)
            return (e, c) => {
              const v = l(e, c);
              return v === lit || (typeof v === 'bigint' && Number(v) === lit);
            };
          return (e, c) => eq(l(e, c), r(e, c));
        }
        case '!=':
          return (e, c) => !eq(l(e, c), r(e, c));
        case '<':
          return (e, c) => cmp(l(e, c), r(e, c), (d) => d < 0);
        case '<=':
          return (e, c) => cmp(l(e, c), r(e, c), (d) => d <= 0);
        case '>':
          return (e, c) => cmp(l(e, c), r(e, c), (d) => d > 0);
        case '>=':
          return (e, c) => cmp(l(e, c), r(e, c), (d) => d >= 0);
        case '+':
          return (e, c) => {
            const x = l(e, c);
            const y = r(e, c);
            if (typeof x === 'string' || typeof y === 'string') return `${x ?? ''}${y ?? ''}`;
            return arith(x, y, (p, q) => p + q);
          };
        case '-':
          return (e, c) => arith(l(e, c), r(e, c), (p, q) => p - q);
        case '*':
          return (e, c) => arith(l(e, c), r(e, c), (p, q) => p * q);
        case '/':
          return (e, c) => arith(l(e, c), r(e, c), (p, q) => (q === 0 ? Number.NaN : p / q));
        default:
          return (e, c) => arith(l(e, c), r(e, c), (p, q) => (q === 0 ? Number.NaN : p % q));
      }
    }
    case 'call':
      return compileCall(a.fn, a.args);
  }
}

function compileCall(fn: string, args: Ast[]): Ev {
  if (STAGE_FUNCS.has(fn)) {
    const stage = (args[0] as { v: string }).v;
    const path = args.length > 1 ? String((args[1] as { v: string }).v).split('.') : [];
    const offset = args[2] === undefined ? () => 0 : compileAst(args[2]);
    const values = (c: CepContext<unknown>) => c.getEventsForPattern(stage).map((x) => field(x, path));
    switch (fn) {
      case 'count':
        return (_e, c) => c.getEventsForPattern(stage).length;
      case 'sum':
        return (_e, c) => values(c).reduce<number>((s, v) => s + (num(v) ?? 0), 0);
      case 'avg':
        return (_e, c) => {
          const v = values(c);
          return v.length === 0 ? null : v.reduce<number>((s, x) => s + (num(x) ?? 0), 0) / v.length;
        };
      case 'min':
      case 'max':
        return (_e, c) => {
          const v = values(c)
            .map(num)
            .filter((x): x is number => x !== null);
          if (v.length === 0) return null;
          return fn === 'min' ? Math.min(...v) : Math.max(...v);
        };
      case 'first':
        return (_e, c) => {
          const ev = c.getEventsForPattern(stage);
          return ev.length === 0 ? null : field(ev[0], path);
        };
      default:
        return (e, c) => {
          const ev = c.getEventsForPattern(stage);
          const k = num(offset(e, c)) ?? 0;
          const i = ev.length - 1 - k;
          return i < 0 || i >= ev.length ? null : field(ev[i], path);
        };
    }
  }
  const f = args.map(compileAst);
  const a0 = f[0] as Ev;
  const a1 = f[1] as Ev;
  switch (fn) {
    case 'timestamp':
      return (_e, c) => c.timestamp();
    case 'abs':
      return (e, c) => {
        const n = num(a0(e, c));
        return n === null ? null : Math.abs(n);
      };
    case 'lower':
      return (e, c) => String(a0(e, c) ?? '').toLowerCase();
    case 'upper':
      return (e, c) => String(a0(e, c) ?? '').toUpperCase();
    case 'len':
      return (e, c) => {
        const v = a0(e, c);
        return typeof v === 'string' || Array.isArray(v) ? v.length : null;
      };
    case 'contains':
      return (e, c) => {
        const v = a0(e, c);
        const x = a1(e, c);
        if (typeof v === 'string') return typeof x === 'string' && v.includes(x);
        return Array.isArray(v) && v.includes(x);
      };
    case 'startsWith':
      return (e, c) => {
        const v = a0(e, c);
        const x = a1(e, c);
        return typeof v === 'string' && typeof x === 'string' && v.startsWith(x);
      };
    case 'endsWith':
      return (e, c) => {
        const v = a0(e, c);
        const x = a1(e, c);
        return typeof v === 'string' && typeof x === 'string' && v.endsWith(x);
      };
    default:
      return (e, c) => a0(e, c) !== undefined && a0(e, c) !== null;
  }
}

function truthy(v: unknown): boolean {
  return v === true;
}
function eq(a: unknown, b: unknown): boolean {
  if (a === undefined) a = null;
  if (b === undefined) b = null;
  if (typeof a === 'bigint' || typeof b === 'bigint') return num(a) === num(b);
  return a === b;
}
function cmp(a: unknown, b: unknown, ok: (d: number) => boolean): boolean {
  const x = num(a);
  const y = num(b);
  if (x !== null && y !== null) return !Number.isNaN(x - y) && ok(x - y);
  if (typeof a === 'string' && typeof b === 'string') return ok(a < b ? -1 : a > b ? 1 : 0);
  return false; // null, missing or mixed types: never ordered
}
function arith(a: unknown, b: unknown, f: (x: number, y: number) => number): number | null {
  const x = num(a);
  const y = num(b);
  return x === null || y === null ? null : f(x, y);
}

/** Compiles an expression to a condition (true only when the expression evaluates to `true`). */
export function compileExpression<T>(src: string): ConditionFn<T> {
  const ev = compileAst(parseExpression(src));
  return (e, ctx) => ev(e, ctx as CepContext<unknown>) === true;
}

setExpressionCompiler(compileExpression);
