import { invalidArgument } from '../core/index.ts';
import { lit, num } from './sql.ts';
import { parsePeriod, periodSqlInterval } from './time.ts';

/** Resolves a column name used in an expression to SQL (throws for unknown columns if it wants to). */
export type ColumnResolver = (name: string) => string;

type Tok = { k: 'num' | 'str' | 'id' | 'op' | 'eof'; v: string };

function tokenize(src: string, field: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(src[i + 1] ?? ''))) {
      const m = /^(\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)/.exec(src.slice(i))!;
      out.push({ k: 'num', v: m[0] });
      i += m[0].length;
      continue;
    }
    if (c === "'" || c === '"') {
      let j = i + 1;
      let s = '';
      while (j < src.length && src[j] !== c) {
        if (src[j] === '\\' && j + 1 < src.length) {
          const n = src[j + 1]!;
          if (n === 'u') {
            s += String.fromCharCode(Number.parseInt(src.slice(j + 2, j + 6), 16));
            j += 6;
            continue;
          }
          s += n === 'n' ? '\n' : n === 't' ? '\t' : n;
          j += 2;
          continue;
        }
        s += src[j];
        j++;
      }
      if (j >= src.length) throw invalidArgument(field, 'a closed quote in the expression', src);
      out.push({ k: c === "'" ? 'str' : 'id', v: s });
      i = j + 1;
      continue;
    }
    if (/[A-Za-z_$]/.test(c)) {
      const m = /^[A-Za-z_$][A-Za-z0-9_$.]*/.exec(src.slice(i))!;
      out.push({ k: 'id', v: m[0] });
      i += m[0].length;
      continue;
    }
    const two = src.slice(i, i + 2);
    if (['<=', '>=', '==', '!=', '&&', '||'].includes(two)) {
      out.push({ k: 'op', v: two });
      i += 2;
      continue;
    }
    if ('+-*/%^<>!(),[]'.includes(c)) {
      out.push({ k: 'op', v: c });
      i++;
      continue;
    }
    throw invalidArgument(field, 'a Druid expression', src);
  }
  out.push({ k: 'eof', v: '' });
  return out;
}

const BINARY: [string[], number][] = [
  [['||'], 1],
  [['&&'], 2],
  [['<', '<=', '>', '>=', '==', '!='], 3],
  [['+', '-'], 4],
  [['*', '/', '%'], 5],
  [['^'], 6],
];

function truthy(x: string): string {
  return `coalesce(TRY_CAST(${x} AS DOUBLE) <> 0, lower(TRY_CAST(${x} AS VARCHAR)) = 'true', false)`;
}

/** Translates a Druid native expression into a DuckDB SQL expression. */
export function exprToSql(src: string, resolve: ColumnResolver, field: string): string {
  const toks = tokenize(src, field);
  let p = 0;
  const peek = () => toks[p]!;
  const next = () => toks[p++]!;
  const expect = (v: string) => {
    const t = next();
    if (t.v !== v || t.k !== 'op') throw invalidArgument(field, `"${v}" in the expression`, src);
  };
  const parseBinary = (level: number): string => {
    if (level >= BINARY.length) return parseUnary();
    let left = parseBinary(level + 1);
    for (;;) {
      const t = peek();
      const ops = BINARY[level]![0];
      if (t.k !== 'op' || !ops.includes(t.v)) return left;
      next();
      // ^ is right-associative
      const right = t.v === '^' ? parseBinary(level) : parseBinary(level + 1);
      left = binary(t.v, left, right);
    }
  };
  const binary = (op: string, a: string, b: string): string => {
    switch (op) {
      case '||':
        return `(${truthy(a)} OR ${truthy(b)})::BIGINT`;
      case '&&':
        return `(${truthy(a)} AND ${truthy(b)})::BIGINT`;
      case '==':
        return `(${a} = ${b})::BIGINT`;
      case '!=':
        return `(${a} <> ${b})::BIGINT`;
      case '<':
      case '<=':
      case '>':
      case '>=':
        return `(${a} ${op} ${b})::BIGINT`;
      case '^':
        return `pow(${a}, ${b})`;
      case '%':
        return `fmod(${a}, ${b})`;
      default:
        return `(${a} ${op} ${b})`;
    }
  };
  const parseUnary = (): string => {
    const t = peek();
    if (t.k === 'op' && t.v === '-') {
      next();
      return `(-(${parseUnary()}))`;
    }
    if (t.k === 'op' && t.v === '!') {
      next();
      return `(NOT ${truthy(parseUnary())})::BIGINT`;
    }
    return parsePrimary();
  };
  const parsePrimary = (): string => {
    const t = next();
    if (t.k === 'num') return /[.eE]/.test(t.v) ? `${Number(t.v)}::DOUBLE` : `${t.v}::BIGINT`;
    if (t.k === 'str') return lit(t.v);
    if (t.k === 'op' && t.v === '(') {
      const e = parseBinary(0);
      expect(')');
      return e;
    }
    if (t.k === 'op' && t.v === '[') {
      const items: string[] = [];
      if (!(peek().k === 'op' && peek().v === ']')) {
        do items.push(parseBinary(0));
        while (peek().v === ',' && next());
      }
      expect(']');
      return `[${items.join(', ')}]`;
    }
    if (t.k === 'id') {
      if (peek().k === 'op' && peek().v === '(' && toks[p - 1]!.k === 'id') {
        next();
        const args: string[] = [];
        const raw: Tok[] = [];
        if (!(peek().k === 'op' && peek().v === ')')) {
          do {
            raw.push(peek());
            args.push(parseBinary(0));
          } while (peek().v === ',' && next());
        }
        expect(')');
        return call(t.v, args, raw);
      }
      if (t.v === 'null') return 'NULL';
      return resolve(t.v);
    }
    throw invalidArgument(field, 'a Druid expression', src);
  };
  const strArg = (raw: Tok[], i: number, what: string): string => {
    const t = raw[i];
    if (t?.k !== 'str') throw invalidArgument(field, `${what} as a string literal`, src);
    return t.v;
  };
  const call = (name: string, a: string[], raw: Tok[]): string => {
    const n = name.toLowerCase();
    const need = (min: number, max = min) => {
      if (a.length < min || a.length > max)
        throw invalidArgument(field, `${min}..${max} arguments to ${name}`, a.length);
    };
    switch (n) {
      case 'concat':
        return `concat(${a.join(', ')})`;
      case 'lower':
      case 'upper':
      case 'abs':
      case 'floor':
      case 'ceil':
      case 'sqrt':
      case 'exp':
      case 'trim':
      case 'ltrim':
      case 'rtrim':
        need(1);
        return `${n}(${a[0]})`;
      case 'log':
        need(1);
        return `ln(${a[0]})`;
      case 'log10':
        need(1);
        return `log10(${a[0]})`;
      case 'round':
        need(1, 2);
        return `round(${a.join(', ')})`;
      case 'pow':
        need(2);
        return `pow(${a[0]}, ${a[1]})`;
      case 'div':
        need(2);
        return `(${a[0]} // ${a[1]})`;
      case 'strlen':
        need(1);
        return `length(${a[0]})::BIGINT`;
      case 'substring':
        need(3);
        return `substring(${a[0]}, (${a[1]}) + 1, ${a[2]})`;
      case 'left':
      case 'right':
        need(2);
        return `${n}(${a[0]}, ${a[1]})`;
      case 'replace':
        need(3);
        return `replace(${a[0]}, ${a[1]}, ${a[2]})`;
      case 'strpos':
        need(2, 3);
        return `(strpos(${a[0]}, ${a[1]}) - 1)::BIGINT`;
      case 'contains_string':
        need(2);
        return `contains(${a[0]}, ${a[1]})::BIGINT`;
      case 'icontains_string':
        need(2);
        return `contains(lower(${a[0]}), lower(${a[1]}))::BIGINT`;
      case 'like':
        need(2, 3);
        return `(${a[0]} LIKE ${a[1]}${a[2] ? ` ESCAPE ${a[2]}` : ''})::BIGINT`;
      case 'regexp_extract':
        need(2, 3);
        return `nullif(regexp_extract(${a[0]}, ${a[1]}, ${a[2] ?? '0'}), '')`;
      case 'regexp_like':
        need(2);
        return `regexp_matches(${a[0]}, ${a[1]})::BIGINT`;
      case 'lpad':
      case 'rpad':
        need(3);
        return `${n}(${a[0]}, ${a[1]}::INTEGER, ${a[2]})`;
      case 'nvl':
        need(2);
        return `coalesce(${a[0]}, ${a[1]})`;
      case 'isnull':
        need(1);
        return `(${a[0]} IS NULL)::BIGINT`;
      case 'notnull':
        need(1);
        return `(${a[0]} IS NOT NULL)::BIGINT`;
      case 'if':
        need(3);
        return `CASE WHEN ${truthy(a[0]!)} THEN ${a[1]} ELSE ${a[2]} END`;
      case 'case_searched': {
        if (a.length < 2) throw invalidArgument(field, 'at least 2 arguments to case_searched', src);
        let s = 'CASE';
        for (let i = 0; i + 1 < a.length; i += 2) s += ` WHEN ${truthy(a[i]!)} THEN ${a[i + 1]}`;
        return `${s}${a.length % 2 ? ` ELSE ${a[a.length - 1]}` : ''} END`;
      }
      case 'case_simple': {
        if (a.length < 3) throw invalidArgument(field, 'at least 3 arguments to case_simple', src);
        let s = `CASE ${a[0]}`;
        for (let i = 1; i + 1 < a.length; i += 2) s += ` WHEN ${a[i]} THEN ${a[i + 1]}`;
        return `${s}${a.length % 2 === 0 ? ` ELSE ${a[a.length - 1]}` : ''} END`;
      }
      case 'greatest':
      case 'least':
        return `${n}(${a.join(', ')})`;
      case 'cast': {
        need(2);
        const ty = strArg(raw, 1, 'the cast type').toUpperCase();
        const map: Record<string, string> = { LONG: 'BIGINT', DOUBLE: 'DOUBLE', FLOAT: 'FLOAT', STRING: 'VARCHAR' };
        if (!map[ty]) throw invalidArgument(field, 'cast type LONG, DOUBLE, FLOAT or STRING', ty);
        return `TRY_CAST(${a[0]} AS ${map[ty]})`;
      }
      case 'timestamp': {
        need(1, 2);
        return `epoch_ms(TRY_CAST(${a[0]} AS TIMESTAMPTZ))`;
      }
      case 'timestamp_floor':
      case 'timestamp_ceil': {
        need(2, 4);
        const period = parsePeriod(strArg(raw, 1, 'the period'), field);
        const tz = raw[3]?.k === 'str' ? raw[3].v : 'UTC';
        const b = `epoch_ms(time_bucket(${periodSqlInterval(period)}, make_timestamptz((${a[0]})::BIGINT * 1000), ${lit(tz)}))`;
        return n === 'timestamp_floor' ? b : `epoch_ms(make_timestamptz(${b} * 1000) + ${periodSqlInterval(period)})`;
      }
      case 'timestamp_shift': {
        need(3, 4);
        const period = parsePeriod(strArg(raw, 1, 'the period'), field);
        return `epoch_ms(make_timestamptz((${a[0]})::BIGINT * 1000) + (${a[2]}) * ${periodSqlInterval(period)})`;
      }
      case 'timestamp_extract': {
        need(2, 3);
        const unit = strArg(raw, 1, 'the unit').toLowerCase();
        const units: Record<string, string> = {
          epoch: 'epoch',
          second: 'second',
          minute: 'minute',
          hour: 'hour',
          day: 'day',
          dow: 'isodow',
          doy: 'doy',
          week: 'week',
          month: 'month',
          quarter: 'quarter',
          year: 'year',
          millisecond: 'millisecond',
        };
        if (!units[unit])
          throw invalidArgument(field, `a timestamp_extract unit (${Object.keys(units).join(', ')})`, unit);
        return `date_part(${lit(units[unit])}, make_timestamp((${a[0]})::BIGINT * 1000))::BIGINT`;
      }
      case 'timestamp_format': {
        need(1, 3);
        const fmt = raw[1]?.k === 'str' ? jodaToStrftime(raw[1].v) : '%Y-%m-%dT%H:%M:%S.%gZ';
        return `strftime(make_timestamp((${a[0]})::BIGINT * 1000), ${lit(fmt)})`;
      }
      case 'timestamp_parse': {
        need(1, 3);
        if (raw[1]?.k === 'str') return `epoch_ms(try_strptime(${a[0]}, ${lit(jodaToStrftime(raw[1].v))}))`;
        return `epoch_ms(TRY_CAST(${a[0]} AS TIMESTAMPTZ))`;
      }
      default:
        throw invalidArgument(field, `a known expression function, not ${name}`, src);
    }
  };
  const out = parseBinary(0);
  if (peek().k !== 'eof') throw invalidArgument(field, 'the end of the expression', src);
  return out;
}

/** Converts a Joda-time pattern to a strftime/strptime one (the common letters). */
export function jodaToStrftime(p: string): string {
  const map: [RegExp, string][] = [
    [/yyyy/g, '%Y'],
    [/yy/g, '%y'],
    [/MMMM/g, '%B'],
    [/MMM/g, '%b'],
    [/MM/g, '%m'],
    [/dd/g, '%d'],
    [/HH/g, '%H'],
    [/hh/g, '%I'],
    [/mm/g, '%M'],
    [/ss/g, '%S'],
    [/SSS/g, '%g'],
    [/a/g, '%p'],
    [/EEEE/g, '%A'],
    [/EEE/g, '%a'],
    [/Z/g, '%z'],
  ];
  let s = p.replace(/%/g, '%%').replace(/'([^']*)'/g, (_m, q: string) => q.replaceAll('%', '%%'));
  for (const [re, rep] of map) s = s.replace(re, rep);
  return s;
}

export { num };

/** Evaluates a Druid expression over named values in JS (post-aggregators); longs are bigint, doubles number. */
export function evalExpr(src: string, vars: (name: string) => unknown, field: string): unknown {
  const toks = tokenize(src, field);
  let p = 0;
  const peek = () => toks[p]!;
  const next = () => toks[p++]!;
  type V = unknown;
  const numOf = (v: V): number =>
    typeof v === 'bigint' ? Number(v) : typeof v === 'number' ? v : v === null || v === undefined ? 0 : Number(v);
  const isLong = (v: V) => typeof v === 'bigint';
  const truth = (v: V) => (typeof v === 'string' ? v.toLowerCase() === 'true' : numOf(v) !== 0);
  const arith = (op: string, a: V, b: V): V => {
    if (op === '+' && (typeof a === 'string' || typeof b === 'string')) return `${a ?? ''}${b ?? ''}`;
    if (isLong(a) && isLong(b)) {
      const x = a as bigint;
      const y = b as bigint;
      switch (op) {
        case '+':
          return x + y;
        case '-':
          return x - y;
        case '*':
          return x * y;
        case '/':
          return y === 0n ? 0n : x / y;
        case '%':
          return y === 0n ? 0n : x % y;
        case '^':
          return x ** y;
      }
    }
    const x = numOf(a);
    const y = numOf(b);
    switch (op) {
      case '+':
        return x + y;
      case '-':
        return x - y;
      case '*':
        return x * y;
      case '/':
        return x / y;
      case '%':
        return x % y;
      default:
        return x ** y;
    }
  };
  const cmp = (op: string, a: V, b: V): bigint => {
    const [x, y] = typeof a === 'string' && typeof b === 'string' ? [a, b] : [numOf(a), numOf(b)];
    const r =
      op === '<'
        ? x < y
        : op === '<='
          ? x <= y
          : op === '>'
            ? x > y
            : op === '>='
              ? x >= y
              : op === '=='
                ? x === y
                : x !== y;
    return r ? 1n : 0n;
  };
  const binary = (level: number): V => {
    if (level >= BINARY.length) return unary();
    let left = binary(level + 1);
    for (;;) {
      const t = peek();
      if (t.k !== 'op' || !BINARY[level]![0].includes(t.v)) return left;
      next();
      const right = t.v === '^' ? binary(level) : binary(level + 1);
      if (t.v === '&&') left = truth(left) && truth(right) ? 1n : 0n;
      else if (t.v === '||') left = truth(left) || truth(right) ? 1n : 0n;
      else if (['<', '<=', '>', '>=', '==', '!='].includes(t.v)) left = cmp(t.v, left, right);
      else left = arith(t.v, left, right);
    }
  };
  const unary = (): V => {
    const t = peek();
    if (t.k === 'op' && t.v === '-') {
      next();
      const v = unary();
      return isLong(v) ? -(v as bigint) : -numOf(v);
    }
    if (t.k === 'op' && t.v === '!') {
      next();
      return truth(unary()) ? 0n : 1n;
    }
    return primary();
  };
  const primary = (): V => {
    const t = next();
    if (t.k === 'num') return /[.eE]/.test(t.v) ? Number(t.v) : BigInt(t.v);
    if (t.k === 'str') return t.v;
    if (t.k === 'op' && t.v === '(') {
      const v = binary(0);
      if (next().v !== ')') throw invalidArgument(field, '")" in the expression', src);
      return v;
    }
    if (t.k === 'id') {
      if (peek().k === 'op' && peek().v === '(') {
        next();
        const args: V[] = [];
        if (peek().v !== ')') {
          do args.push(binary(0));
          while (peek().v === ',' && next());
        }
        if (next().v !== ')') throw invalidArgument(field, '")" in the expression', src);
        const f = t.v.toLowerCase();
        const a0 = args[0];
        switch (f) {
          case 'abs':
            return isLong(a0) ? ((a0 as bigint) < 0n ? -(a0 as bigint) : a0) : Math.abs(numOf(a0));
          case 'floor':
          case 'ceil':
          case 'round':
          case 'sqrt':
          case 'exp':
            return isLong(a0) ? a0 : Math[f](numOf(a0));
          case 'log':
            return Math.log(numOf(a0));
          case 'log10':
            return Math.log10(numOf(a0));
          case 'pow':
            return numOf(a0) ** numOf(args[1]);
          case 'greatest':
          case 'least': {
            const nums = args.map(numOf);
            const r = f === 'greatest' ? Math.max(...nums) : Math.min(...nums);
            return args.every(isLong) ? BigInt(r) : r;
          }
          case 'if':
            return truth(a0) ? args[1] : args[2];
          case 'nvl':
            return a0 ?? args[1];
          case 'concat':
            return args.map((x) => (x === null || x === undefined ? '' : String(x))).join('');
          case 'cast': {
            const ty = String(args[1]).toUpperCase();
            if (ty === 'LONG') return BigInt(Math.trunc(numOf(a0)));
            if (ty === 'DOUBLE' || ty === 'FLOAT') return numOf(a0);
            return a0 === null || a0 === undefined ? null : String(a0);
          }
          default:
            throw invalidArgument(field, `a function supported in post-aggregator expressions, not ${t.v}`, src);
        }
      }
      if (t.v === 'null') return null;
      return vars(t.v);
    }
    throw invalidArgument(field, 'a Druid expression', src);
  };
  const v = binary(0);
  if (peek().k !== 'eof') throw invalidArgument(field, 'the end of the expression', src);
  return v;
}
