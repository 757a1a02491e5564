import type { DuckDBConnection } from '@duckdb/node-api';
import { invalidArgument, TributaryError } from '../core/index.ts';
import { jodaToStrftime } from './expr.ts';
import { ident } from './sql.ts';
import type { SegmentStore } from './store.ts';
import { parsePeriod } from './time.ts';

/** DuckDB macros implementing Druid SQL functions (created once per database). */
export const SQL_MACROS = [
  `CREATE OR REPLACE MACRO time_floor(t, p) AS time_bucket(CAST(p AS INTERVAL), t), (t, p, o, tz) AS timezone('UTC', time_bucket(CAST(p AS INTERVAL), timezone('UTC', t), coalesce(tz, 'UTC')))`,
  `CREATE OR REPLACE MACRO time_ceil(t, p) AS time_bucket(CAST(p AS INTERVAL), t) + CASE WHEN time_bucket(CAST(p AS INTERVAL), t) = t THEN INTERVAL 0 SECOND ELSE CAST(p AS INTERVAL) END`,
  `CREATE OR REPLACE MACRO time_shift(t, p, n) AS t + n * CAST(p AS INTERVAL), (t, p, n, tz) AS t + n * CAST(p AS INTERVAL)`,
  `CREATE OR REPLACE MACRO time_format(t) AS strftime(t, '%Y-%m-%dT%H:%M:%S.%gZ'), (t, f) AS strftime(t, f), (t, f, tz) AS strftime(timezone(tz, timezone('UTC', t)), f)`,
  `CREATE OR REPLACE MACRO time_parse(s) AS TRY_CAST(s AS TIMESTAMP), (s, f) AS try_strptime(s, f), (s, f, tz) AS try_strptime(s, f)`,
  `CREATE OR REPLACE MACRO time_extract(t, u) AS date_part(u, t)::BIGINT, (t, u, tz) AS date_part(u, timezone(tz, timezone('UTC', t)))::BIGINT`,
  `CREATE OR REPLACE MACRO millis_to_timestamp(ms) AS make_timestamp(ms * 1000)`,
  `CREATE OR REPLACE MACRO timestamp_to_millis(t) AS epoch_ms(t)`,
  `CREATE OR REPLACE MACRO druid_floor_to(t, u) AS date_trunc(u, t)`,
  `CREATE OR REPLACE MACRO druid_ceil_to(t, u) AS CASE WHEN date_trunc(u, t) = t THEN t ELSE date_trunc(u, t) + CAST('1 ' || u AS INTERVAL) END`,
  `CREATE OR REPLACE MACRO druid_theta_estimate(s) AS CASE WHEN len(s) < 16384 THEN len(s)::DOUBLE ELSE 16383 / (s[16384]::DOUBLE / 18446744073709551616.0) END`,
  `CREATE OR REPLACE MACRO druid_hll_estimate(u) AS (SELECT CASE WHEN count(DISTINCT e) <= 512 THEN count(DISTINCT e)::DOUBLE ELSE (SELECT CASE WHEN est <= 2.5 * 4096 AND zeros > 0 THEN 4096 * ln(4096 / zeros) ELSE est END FROM (SELECT 0.7213 / (1 + 1.079 / 4096) * 4096 * 4096 / (sum(pow(2, -r)) + (4096 - count(*))) AS est, 4096 - count(*) AS zeros FROM (SELECT e2 >> 20 AS b, max(e2 & 63) AS r FROM unnest(u) t2(e2) GROUP BY b))) END FROM unnest(u) t(e))`,
  `CREATE OR REPLACE MACRO druid_wquantile(s, q) AS (SELECT v FROM (SELECT e.v AS v, sum(e.w) OVER (ORDER BY e.v ROWS UNBOUNDED PRECEDING) AS cw, sum(e.w) OVER () AS n FROM (SELECT unnest(s) AS e)) WHERE cw > least(n - 1, floor(q * n)) ORDER BY v LIMIT 1)`,
];

const DENY =
  /^(getenv|current_setting|read_.*|parquet_.*|sniff_.*|glob|duckdb_.*|pragma_.*|enable_.*|disable_.*|checkpoint|force_checkpoint|query|query_table|json_serialize_sql|json_deserialize_sql|json_execute_serialized_sql|install|load|export_.*|import_.*|setseed|which_secret|secret.*|.*_secrets?)$/i;

type Node = Record<string, unknown>;

function walk(n: unknown, visit: (o: Node) => void): void {
  if (Array.isArray(n)) {
    for (const x of n) walk(x, visit);
    return;
  }
  if (n && typeof n === 'object') {
    visit(n as Node);
    for (const v of Object.values(n as Node)) walk(v, visit);
  }
}

function constantString(n: unknown): string | undefined {
  const o = n as Node | undefined;
  if (o?.class !== 'CONSTANT') return undefined;
  const v = o.value as { is_null?: boolean; value?: unknown } | undefined;
  return typeof v?.value === 'string' ? v.value : undefined;
}

function setConstant(n: unknown, value: string): void {
  ((n as Node).value as { value: unknown }).value = value;
}

function fn(name: string, children: unknown[]): Node {
  return {
    class: 'FUNCTION',
    type: 'FUNCTION',
    alias: '',
    query_location: 0,
    function_name: name,
    schema: '',
    children,
    filter: null,
    order_bys: { type: 'ORDER_MODIFIER', orders: [] },
    distinct: false,
    is_operator: false,
    export_state: false,
    catalog: '',
  };
}

function periodToInterval(p: string, field: string): string {
  const x = parsePeriod(p, field);
  return `${x.years * 12 + x.months} months ${x.weeks * 7 + x.days} days ${((x.hours * 60 + x.minutes) * 60 + x.seconds) * 1000 + x.millis} milliseconds`;
}

/** Rewrites `FLOOR(expr TO unit)` / `CEIL(expr TO unit)`, which DuckDB's parser does not know. */
function rewriteFloorTo(sql: string): string {
  const re =
    /\b(FLOOR|CEIL)\s*\(\s*([^()]*?(?:\([^()]*\)[^()]*?)*)\s+TO\s+(YEAR|QUARTER|MONTH|WEEK|DAY|HOUR|MINUTE|SECOND|MILLISECOND)\s*\)/gi;
  return sql.replace(
    re,
    (_m, f: string, e: string, u: string) => `druid_${f.toLowerCase()}_to(${e}, '${u.toLowerCase()}')`,
  );
}

/**
 * Translates Druid SQL into DuckDB SQL: parses with DuckDB's own parser (json_serialize_sql), refuses
 * anything but one SELECT over known datasources with allowed functions, maps Druid functions, and
 * prints the tree back (json_deserialize_sql), so user text never reaches DuckDB unparsed.
 */
export async function translateSql(conn: DuckDBConnection, store: SegmentStore, sql: string): Promise<string> {
  const pre = rewriteFloorTo(sql.trim().replace(/;\s*$/, ''));
  const r = await conn.runAndReadAll('SELECT json_serialize_sql($1::VARCHAR) AS j', [pre]);
  // query_location can be 2^64-1, which a JS number cannot carry back; it only feeds error messages.
  const tree = JSON.parse(
    String(r.getRowObjectsJS()[0]!.j).replace(/"query_location":\d+/g, '"query_location":0'),
  ) as Node;
  if (tree.error) {
    const msg = String(tree.error_message ?? 'cannot parse');
    throw new TributaryError(
      'INVALID_ARGUMENT',
      /Only SELECT/.test(msg) ? 'query: only SELECT statements are supported' : `query: ${msg}`,
      {
        field: 'query',
      },
    );
  }
  const stmts = tree.statements as unknown[];
  if (stmts.length !== 1) throw invalidArgument('query', 'exactly one SELECT statement', `${stmts.length} statements`);
  const ctes = new Set<string>();
  walk(stmts, (o) => {
    const map = (o.cte_map as { map?: { key: string }[] } | undefined)?.map;
    if (Array.isArray(map)) for (const m of map) ctes.add(m.key.toLowerCase());
  });
  const sketchCols = new Map<string, string>();
  const sources = new Map<string, string>();
  for (const [name, meta] of store.datasources) {
    sources.set(name.toLowerCase(), name);
    for (const c of meta.columns)
      if (c.kind === 'theta' || c.kind === 'hll' || c.kind === 'quantiles')
        sketchCols.set(c.name.toLowerCase(), c.kind);
  }
  const sketchKind = (n: unknown): string | undefined => {
    const o = n as Node;
    if (o?.class !== 'COLUMN_REF') return undefined;
    const names = o.column_names as string[];
    return sketchCols.get(String(names[names.length - 1]).toLowerCase());
  };
  // LOOKUP(expr, 'name'): a scalar subquery on the lookup table, parsed by DuckDB from a template.
  const lookupTemplates = new Map<string, Node>();
  const wanted = new Set<string>();
  walk(stmts, (o) => {
    if (o.class === 'FUNCTION' && String(o.function_name).toLowerCase() === 'lookup') {
      const name = constantString((o.children as unknown[])[1]);
      if (name === undefined || !store.lookups.has(name))
        throw invalidArgument('query', 'LOOKUP(expr, name) with the name of a registered lookup', name);
      wanted.add(name);
    }
  });
  for (const name of wanted) {
    const t = await conn.runAndReadAll('SELECT json_serialize_sql($1::VARCHAR) AS j', [
      `SELECT (SELECT l.v FROM lookup.${ident(name)} l WHERE l.k = CAST(__olap_lookup_arg AS VARCHAR))`,
    ]);
    const parsed = JSON.parse(
      String(t.getRowObjectsJS()[0]!.j).replace(/"query_location":\d+/g, '"query_location":0'),
    ) as Node;
    const stmt = (parsed.statements as { node: { select_list: Node[] } }[])[0]!;
    lookupTemplates.set(name, stmt.node.select_list[0]!);
  }
  walk(stmts, (o) => {
    if (o.type === 'TABLE_FUNCTION')
      throw invalidArgument('query', 'tables that are datasources (table functions are not allowed)');
    if (o.type === 'BASE_TABLE') {
      const schema = String(o.schema_name ?? '');
      const t = String(o.table_name);
      if (schema === '' && ctes.has(t.toLowerCase())) return;
      if (schema.toLowerCase() === 'lookup' && store.lookups.has(t)) {
        o.schema_name = 'lookup';
        o.catalog_name = '';
        return;
      }
      if (
        schema.toUpperCase() === 'INFORMATION_SCHEMA' &&
        ['SCHEMATA', 'TABLES', 'COLUMNS'].includes(t.toUpperCase())
      ) {
        o.schema_name = 'olap_info';
        o.table_name = t.toUpperCase();
        o.catalog_name = '';
        return;
      }
      if ((schema === '' || schema.toLowerCase() === 'druid') && o.catalog_name === '') {
        const real = store.datasources.has(t) ? t : sources.get(t.toLowerCase());
        if (real) {
          const rel = store.sqlRelation(real);
          o.schema_name = rel.schema;
          o.table_name = rel.table;
          return;
        }
      }
      throw new TributaryError('NOT_FOUND', `Object '${t}' not found`, { field: 'query' });
    }
    if (o.class === 'FUNCTION') {
      const name = String(o.function_name).toLowerCase();
      if (o.schema !== '' && o.schema !== undefined)
        throw invalidArgument('query', 'unqualified function names', `${o.schema}.${name}`);
      if (DENY.test(name)) throw invalidArgument('query', `an allowed function, not ${name}`);
      const ch = o.children as unknown[];
      const k = sketchKind(ch[0]);
      // The replacement keeps the call's alias (`APPROX_COUNT_DISTINCT_DS_HLL(x) AS buyers` stays `buyers`).
      const alias = o.alias;
      const replace = (n: Node) => {
        for (const key of Object.keys(o)) delete o[key];
        Object.assign(o, n);
        o.alias = alias;
      };
      const agg = (inner: string, arg: unknown, distinct = false) => {
        const f = fn(inner, [arg]);
        f.distinct = distinct;
        return f;
      };
      switch (name) {
        case 'lookup': {
          const name = constantString(ch[1])!;
          const node = structuredClone(lookupTemplates.get(name)!);
          walk(node, (n) => {
            const cols = n.column_names as string[] | undefined;
            if (n.class === 'COLUMN_REF' && cols?.[0] === '__olap_lookup_arg') {
              for (const key of Object.keys(n)) delete n[key];
              Object.assign(n, structuredClone(ch[0] as Node));
            }
          });
          node.alias = '';
          replace(ch[2] !== undefined ? fn('ifnull', [node, ch[2]]) : node);
          break;
        }
        case 'time_floor':
        case 'time_ceil':
        case 'time_shift': {
          const p = constantString(ch[1]);
          if (p !== undefined) setConstant(ch[1], periodToInterval(p, `query.${name}`));
          break;
        }
        case 'time_format':
        case 'time_parse': {
          const f = constantString(ch[1]);
          if (f !== undefined) setConstant(ch[1], jodaToStrftime(f));
          break;
        }
        case 'approx_count_distinct':
        case 'approx_count_distinct_ds_hll':
        case 'approx_count_distinct_builtin':
        case 'hll_sketch_estimate':
        case 'ds_hll': {
          const set =
            k === 'hll'
              ? fn('list_distinct', [fn('flatten', [agg('list', ch[0])])])
              : fn('list', [fn('druid_hll', [fn('hash', [fn('to_varchar_druid', [ch[0]])])])]);
          if (k !== 'hll') (set as Node).distinct = true;
          if (name === 'ds_hll') replace(set);
          else if (name === 'hll_sketch_estimate') replace(fn('druid_hll_estimate', [ch[0]]));
          else replace(fn('round', [fn('druid_hll_estimate', [set])]));
          if (name !== 'ds_hll' && name !== 'hll_sketch_estimate')
            replace(fn('to_bigint_druid', [{ ...o, alias: '' }]));
          break;
        }
        case 'approx_count_distinct_ds_theta':
        case 'ds_theta':
        case 'theta_sketch_estimate': {
          if (name === 'theta_sketch_estimate') {
            replace(fn('druid_theta_estimate', [ch[0]]));
            break;
          }
          let set: Node;
          if (k === 'theta') set = fn('list_distinct', [fn('flatten', [agg('list', ch[0])])]);
          // A dictionary-encoded (ENUM) string column hashes its values, not its codes.
          else
            set = agg(
              'list',
              fn('hash', [isDictionaryColumn(store, ch[0]) ? fn('to_varchar_druid', [ch[0]]) : ch[0]]),
              true,
            );
          const sketch = fn('list_slice', [fn('list_sort', [set]), num(1), num(16384)]);
          replace(name === 'ds_theta' ? sketch : fn('druid_theta_estimate', [sketch]));
          break;
        }
        case 'approx_quantile':
        case 'approx_quantile_ds':
        case 'ds_get_quantile':
        case 'ds_quantiles_sketch': {
          const sketch =
            k === 'quantiles'
              ? fn('druid_qs_merge', [fn('flatten', [agg('list', ch[0])]), num(128)])
              : fn('druid_qs_build', [
                  fn('list_filter_nulls_druid', [agg('list', fn('to_double_druid', [ch[0]]))]),
                  num(128),
                ]);
          if (name === 'ds_quantiles_sketch') replace(sketch);
          else if (name === 'ds_get_quantile') replace(fn('druid_wquantile', [ch[0], ch[1]]));
          else replace(fn('druid_wquantile', [sketch, ch[1]]));
          break;
        }
      }
    }
  });
  const out = await conn.runAndReadAll('SELECT json_deserialize_sql($1::VARCHAR::JSON) AS s', [JSON.stringify(tree)]);
  return String(out.getRowObjectsJS()[0]!.s);
}

/** Whether a node is a reference to a column some datasource stores dictionary-encoded (always a string column). */
function isDictionaryColumn(store: SegmentStore, n: unknown): boolean {
  const o = n as Node | undefined;
  const names = o?.class === 'COLUMN_REF' ? (o.column_names as string[] | undefined) : undefined;
  const col = names?.[names.length - 1];
  if (col === undefined) return false;
  for (const [ds, dicts] of store.dictionaries)
    for (const name of dicts.keys())
      if (name.toLowerCase() === col.toLowerCase() && store.datasources.has(ds)) return true;
  return false;
}

function num(v: number): Node {
  return {
    class: 'CONSTANT',
    type: 'VALUE_CONSTANT',
    alias: '',
    query_location: 0,
    value: { type: { id: 'INTEGER', type_info: null }, is_null: false, value: v },
  };
}

export const SQL_HELPER_MACROS = [
  `CREATE OR REPLACE MACRO to_varchar_druid(x) AS CAST(x AS VARCHAR)`,
  `CREATE OR REPLACE MACRO to_double_druid(x) AS TRY_CAST(x AS DOUBLE)`,
  `CREATE OR REPLACE MACRO to_bigint_druid(x) AS CAST(x AS BIGINT)`,
  `CREATE OR REPLACE MACRO list_filter_nulls_druid(l) AS coalesce(list_filter(l, lambda x: x IS NOT NULL), [])`,
];
