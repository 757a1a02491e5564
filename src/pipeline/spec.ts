import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { isTributaryError, TributaryError } from '../core/index.ts';
import { datasetEntrySchema } from './governance.ts';

/** A batch of records handed to custom TypeScript functions. */
export type RecordBatch = Record<string, unknown>[];
/** A custom transformation over record batches (called once per batch of rows). */
export type BatchFunction = (rows: RecordBatch) => RecordBatch | Promise<RecordBatch>;
/** An async enrichment call: returns the new columns for one row. */
export type CallFunction = (row: Record<string, unknown>, signal: AbortSignal) => Promise<Record<string, unknown>>;

const name = z.string().min(1);
const fnRef = z.union([name, z.custom<BatchFunction>((v) => typeof v === 'function', 'a function')]);
const callRef = z.union([name, z.custom<CallFunction>((v) => typeof v === 'function', 'a function')]);

export const retrySchema = z.strictObject({
  maxAttempts: z.number().int().min(1).default(1),
  initialDelayMs: z.number().min(0).default(100),
  maxDelayMs: z.number().min(0).default(30_000),
  multiplier: z.number().min(1).default(2),
  /** Fraction of the delay added or removed at random (0 = none). */
  jitter: z.number().min(0).max(1).default(0.2),
});
export type RetryPolicy = z.output<typeof retrySchema>;

export const failurePolicySchema = z.enum(['fail', 'continue', 'skip-downstream']);
export type FailurePolicy = z.output<typeof failurePolicySchema>;

// ---- data quality checks ----
const checkBase = {
  name: name.optional(),
  severity: z.enum(['warn', 'error']).default('error'),
  /** Fraction of rows that must pass (1 = all). */
  mostly: z.number().min(0).max(1).default(1),
  dimension: z.enum(['completeness', 'validity', 'uniqueness', 'freshness', 'consistency']).optional(),
  weight: z.number().min(0).default(1),
};
export const checkSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('not_null'), column: name, ...checkBase }),
  z.strictObject({ type: z.literal('unique'), column: name, ...checkBase }),
  z.strictObject({
    type: z.literal('accepted_values'),
    column: name,
    values: z.array(z.union([z.string(), z.number(), z.boolean()])).min(1),
    ...checkBase,
  }),
  z.strictObject({
    type: z.literal('range'),
    column: name,
    min: z.number().optional(),
    max: z.number().optional(),
    ...checkBase,
  }),
  z.strictObject({ type: z.literal('regex'), column: name, pattern: name, ...checkBase }),
  z.strictObject({
    type: z.literal('row_count'),
    min: z.number().int().optional(),
    max: z.number().int().optional(),
    ...checkBase,
  }),
  z.strictObject({
    type: z.literal('freshness'),
    column: name,
    /** Maximum age of the newest value, e.g. "1d", "2h" (core duration syntax). */
    maxAge: z.union([name, z.number()]),
    /** The reference time (ISO); default: when the check runs. */
    now: z.string().optional(),
    ...checkBase,
  }),
  z.strictObject({
    type: z.literal('referential_integrity'),
    column: name,
    /** A stage whose output holds the referenced keys. */
    to: name,
    toColumn: name,
    ...checkBase,
  }),
  z.strictObject({
    type: z.literal('schema_match'),
    /** Column name -> DuckDB type (or null for any type). */
    columns: z.record(z.string(), z.string().nullable()),
    allowExtra: z.boolean().default(true),
    ...checkBase,
  }),
  z.strictObject({
    type: z.literal('custom_sql'),
    /** A predicate every row must satisfy, or a query (over {{input}}) returning the failing rows. */
    where: z.string().optional(),
    sql: z.string().optional(),
    column: name.optional(),
    ...checkBase,
  }),
]);
export type Check = z.output<typeof checkSchema>;
export type CheckInput = z.input<typeof checkSchema>;

// ---- transformation rules ----
export const ruleSchema = z.union([
  z.strictObject({ map: z.record(z.string(), z.string()), keep: z.boolean().default(false) }),
  z.strictObject({ filter: name }),
  z.strictObject({
    aggregate: z.strictObject({ groupBy: z.array(name).default([]), measures: z.record(z.string(), name) }),
  }),
  z.strictObject({
    join: z.strictObject({
      with: name,
      type: z.enum(['inner', 'left', 'right', 'full']).default('inner'),
      /** Join keys: same name on both sides, or left -> right column names. */
      on: z.union([z.array(name).min(1), z.record(z.string(), z.string())]),
      /** Columns to take from the right side (default: all except the keys). */
      columns: z.array(name).optional(),
    }),
  }),
  z.strictObject({ union: z.array(name).min(1), distinct: z.boolean().default(false) }),
  z.strictObject({
    window: z.strictObject({
      partitionBy: z.array(name).default([]),
      orderBy: z.array(name).default([]),
      columns: z.record(z.string(), name),
    }),
  }),
  z.strictObject({ sql: name }),
  z.strictObject({ fn: fnRef, batchSize: z.number().int().min(1).default(10_000) }),
]);
export type Rule = z.output<typeof ruleSchema>;

// ---- sources and targets ----
export const sourceSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('file'),
    path: name,
    format: z.enum(['csv', 'ndjson', 'json', 'parquet']).optional(),
  }),
  z.strictObject({ kind: z.literal('iceberg'), table: name, filter: z.string().optional() }),
  z.strictObject({
    kind: z.literal('topic'),
    topic: name,
    /** Record metadata columns (_key, _partition, _offset, _timestamp). */
    metadata: z.boolean().default(false),
  }),
  z.strictObject({ kind: z.literal('datasource'), dataSource: name, sql: z.string().optional() }),
  z.strictObject({ kind: z.literal('sql'), sql: name, name: name.optional() }),
]);
export type Source = z.output<typeof sourceSchema>;

export const targetSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('iceberg'),
    table: name,
    mode: z.enum(['append', 'overwrite', 'merge']).default('append'),
    key: z.array(name).optional(),
    /** Overwrite only rows matching this filter (lake filter syntax). */
    filter: z.string().optional(),
    partitionBy: z.string().optional(),
  }),
  z.strictObject({
    kind: z.literal('topic'),
    topic: name,
    key: name.optional(),
    partitions: z.number().int().min(1).default(1),
  }),
  z.strictObject({
    kind: z.literal('datasource'),
    dataSource: name,
    timestampColumn: name,
    dimensions: z.array(name).optional(),
    /** Druid metricsSpec entries, e.g. { type: longSum, name: views, fieldName: page_views }. */
    metrics: z.array(z.looseObject({ type: name, name })).optional(),
    segmentGranularity: z.string().default('day'),
    appendToExisting: z.boolean().default(true),
  }),
  z.strictObject({ kind: z.literal('file'), path: name, format: z.enum(['csv', 'ndjson', 'parquet']).optional() }),
]);
export type Target = z.output<typeof targetSchema>;

// ---- stages ----
const stageBase = {
  id: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an identifier ([A-Za-z_][A-Za-z0-9_]*)'),
  description: z.string().optional(),
  timeoutMs: z.number().int().min(1).optional(),
  retry: retrySchema.partial().optional(),
  onFailure: failurePolicySchema.optional(),
};
const inputs = z.array(name).min(1);
export const stageSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('ingest'), source: sourceSchema, ...stageBase }),
  z.strictObject({ type: z.literal('transform'), inputs, rules: z.array(ruleSchema).min(1), ...stageBase }),
  z.strictObject({
    type: z.literal('validate'),
    inputs: inputs.max(1),
    checks: z.array(checkSchema).min(1),
    /** Rows failing error checks go here (an Iceberg table name) and leave the stage's output. */
    quarantine: z.strictObject({ table: name }).optional(),
    ...stageBase,
  }),
  z.strictObject({
    type: z.literal('enrich'),
    inputs: inputs.max(1),
    lookup: z
      .strictObject({
        from: name,
        on: z.union([z.array(name).min(1), z.record(z.string(), z.string())]),
        columns: z.array(name).optional(),
        type: z.enum(['left', 'inner']).default('left'),
      })
      .optional(),
    call: z
      .strictObject({
        fn: callRef,
        timeoutMs: z.number().int().min(1).default(5_000),
        concurrency: z.number().int().min(1).default(8),
        /** On a failed or timed-out call: leave the new columns null, or fail the stage. */
        onError: z.enum(['null', 'fail']).default('fail'),
        columns: z.record(z.string(), z.string()),
      })
      .optional(),
    ...stageBase,
  }),
  z.strictObject({
    type: z.literal('output'),
    inputs: inputs.max(1),
    target: targetSchema,
    /** PII columns the target may not hold: mask them, drop them, or refuse the run (default). */
    pii: z.enum(['mask', 'drop', 'fail']).default('fail'),
    ...stageBase,
  }),
  z.strictObject({
    type: z.literal('quality'),
    inputs: inputs.max(1),
    checks: z.array(checkSchema).min(1),
    ...stageBase,
  }),
]);
export type Stage = z.output<typeof stageSchema>;
export type StageType = Stage['type'];

export const pipelineSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'a name of letters, digits, _ . -'),
  description: z.string().optional(),
  owner: z.string().optional(),
  /** Parameter defaults; `${name}` in any string of the spec is replaced by the value at run time. */
  params: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({}),
  schedule: z.string().optional(),
  /** Governance entries (owner, tags, PII columns...) to record for datasets, keyed `kind:name`. */
  catalog: z.record(z.string(), datasetEntrySchema).default({}),
  defaults: z
    .strictObject({
      timeoutMs: z.number().int().min(1).optional(),
      retry: retrySchema.partial().optional(),
      onFailure: failurePolicySchema.optional(),
    })
    .default({}),
  /** How many stages may run at once. */
  concurrency: z.number().int().min(1).default(4),
  stages: z.array(stageSchema).min(1),
});
export type PipelineSpec = z.output<typeof pipelineSchema>;
export type PipelineInput = z.input<typeof pipelineSchema>;

function zodPath(path: readonly PropertyKey[]): string {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s ? `.${String(p)}` : String(p);
  return s || '(root)';
}

/** The most specific issue of a zod error, as a message naming the field. */
function explain(err: z.ZodError, root: string): TributaryError {
  let issue = err.issues[0]!;
  // union errors: report the branch that got furthest
  while (issue.code === 'invalid_union' && issue.errors.length) {
    const best = issue.errors
      .map((list) => list[0])
      .filter((x) => x !== undefined)
      .sort((a, b) => b.path.length - a.path.length)[0];
    if (!best || best.path.length === 0) break;
    issue = { ...best, path: [...issue.path, ...best.path] } as typeof issue;
  }
  const field = `${root}${issue.path.length ? (typeof issue.path[0] === 'number' ? '' : '.') : ''}${zodPath(issue.path)}`;
  let msg = issue.message;
  if (issue.code === 'unrecognized_keys') msg = `unknown key(s) ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`;
  return new TributaryError('INVALID_ARGUMENT', `${field.replace(/\.\(root\)$/, '')}: ${msg}`, {
    field,
    cause: err,
  });
}

/** Validates a pipeline definition (from TypeScript or parsed YAML) and its DAG; returns it with defaults. */
export function definePipeline(input: PipelineInput | unknown): PipelineSpec {
  const r = pipelineSchema.safeParse(input);
  if (!r.success) throw explain(r.error, 'pipeline');
  const spec = r.data;
  const ids = new Map<string, number>();
  spec.stages.forEach((s, i) => {
    if (ids.has(s.id))
      throw new TributaryError(
        'INVALID_ARGUMENT',
        `pipeline.stages[${i}].id: "${s.id}" is already used by stages[${ids.get(s.id)}]`,
        {
          field: `pipeline.stages[${i}].id`,
        },
      );
    ids.set(s.id, i);
  });
  spec.stages.forEach((s, i) => {
    for (const [field, ref] of stageRefs(s)) {
      if (!ids.has(ref))
        throw new TributaryError(
          'INVALID_ARGUMENT',
          `pipeline.stages[${i}].${field}: expected the id of a stage (${[...ids.keys()].join(', ')}), got "${ref}"`,
          { field: `pipeline.stages[${i}].${field}` },
        );
      if (ref === s.id)
        throw new TributaryError('INVALID_ARGUMENT', `pipeline.stages[${i}].${field}: a stage cannot read itself`, {
          field: `pipeline.stages[${i}].${field}`,
        });
    }
  });
  spec.stages.forEach((s, i) => {
    if (s.type !== 'validate' && s.type !== 'quality') return;
    s.checks.forEach((c, j) => {
      const f = `pipeline.stages[${i}].checks[${j}]`;
      if (c.type === 'custom_sql' && !c.where && !c.sql)
        throw new TributaryError(
          'INVALID_ARGUMENT',
          `${f}: custom_sql needs "where" (a row predicate) or "sql" (a query returning failing rows)`,
          { field: f },
        );
      if (c.type === 'range' && c.min === undefined && c.max === undefined)
        throw new TributaryError('INVALID_ARGUMENT', `${f}: range needs "min" or "max"`, { field: f });
    });
  });
  topoOrder(spec); // throws on cycles
  return spec;
}

/** Every stage a stage reads, with the field that names it. */
export function stageRefs(s: Stage): [string, string][] {
  const out: [string, string][] = [];
  if ('inputs' in s)
    s.inputs.forEach((x, i) => {
      out.push([`inputs[${i}]`, x]);
    });
  if (s.type === 'transform')
    s.rules.forEach((r, i) => {
      if ('join' in r) out.push([`rules[${i}].join.with`, r.join.with]);
      if ('union' in r)
        r.union.forEach((u, j) => {
          out.push([`rules[${i}].union[${j}]`, u]);
        });
    });
  if (s.type === 'enrich' && s.lookup) out.push(['lookup.from', s.lookup.from]);
  if (s.type === 'validate' || s.type === 'quality')
    s.checks.forEach((c, i) => {
      if (c.type === 'referential_integrity') out.push([`checks[${i}].to`, c.to]);
    });
  return out;
}

export function dependencies(s: Stage): string[] {
  return [...new Set(stageRefs(s).map(([, r]) => r))];
}

/** Stages in an order where every stage comes after what it reads; throws naming a cycle. */
export function topoOrder(spec: PipelineSpec): Stage[] {
  const byId = new Map(spec.stages.map((s) => [s.id, s]));
  const state = new Map<string, 1 | 2>();
  const out: Stage[] = [];
  const visit = (s: Stage, path: string[]): void => {
    const st = state.get(s.id);
    if (st === 2) return;
    if (st === 1)
      throw new TributaryError('INVALID_ARGUMENT', `pipeline.stages: cycle ${[...path, s.id].join(' -> ')}`, {
        field: 'pipeline.stages',
      });
    state.set(s.id, 1);
    for (const d of dependencies(s)) visit(byId.get(d)!, [...path, s.id]);
    state.set(s.id, 2);
    out.push(s);
  };
  for (const s of spec.stages) visit(s, []);
  return out;
}

/** Parses a YAML pipeline; errors name the field (and the YAML line for syntax errors). */
export function parsePipelineYaml(text: string): PipelineSpec {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines });
  if (doc.errors.length) {
    const err = doc.errors[0]!;
    throw new TributaryError('INVALID_ARGUMENT', `pipeline YAML: ${err.message.split('\n')[0]}`, { cause: err });
  }
  try {
    return definePipeline(doc.toJS());
  } catch (err) {
    // point at the YAML line of the field (or its closest existing parent)
    if (!isTributaryError(err) || !err.field) throw err;
    const parts = fieldPath(err.field);
    for (let n = parts.length; n >= 0; n--) {
      const node = doc.getIn(parts.slice(0, n), true) as { range?: [number, number, number] } | undefined;
      if (node?.range) {
        const { line, col } = lines.linePos(node.range[0]);
        throw new TributaryError('INVALID_ARGUMENT', `${err.message} (line ${line}, column ${col})`, {
          field: err.field,
          cause: err,
        });
      }
    }
    throw err;
  }
}

/** `pipeline.stages[1].rules[0].map` -> ['stages', 1, 'rules', 0, 'map']. */
function fieldPath(field: string): (string | number)[] {
  const out: (string | number)[] = [];
  for (const m of field.replace(/^pipeline\.?/, '').matchAll(/([^.[\]]+)|\[(\d+)\]/g))
    out.push(m[2] !== undefined ? Number(m[2]) : m[1]!);
  return out;
}

/** Replaces `${name}` in every string of a spec with parameter values; unknown names are an error. */
export function substituteParams<T>(value: T, params: Record<string, string>, field = 'pipeline'): T {
  if (typeof value === 'string') {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_m, k: string) => {
      const v = params[k];
      if (v === undefined)
        throw new TributaryError(
          'INVALID_ARGUMENT',
          `${field}: unknown parameter \${${k}} (known: ${Object.keys(params).join(', ') || 'none'})`,
          {
            field,
          },
        );
      return v;
    }) as T;
  }
  if (Array.isArray(value)) return value.map((v, i) => substituteParams(v, params, `${field}[${i}]`)) as T;
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const o: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) o[k] = substituteParams(v, params, `${field}.${k}`);
    return o as T;
  }
  return value;
}
