import { z } from 'zod';
import { parseDuration, TributaryError } from '../core/index.ts';
import { parseExpression } from './expr.ts';
import { type Cond, Pattern, type SkipStrategy } from './pattern.ts';

/**
 * The JSON form of a pattern: stages in order, each with its contiguity to the previous stage, a condition as an
 * expression (see expr.ts), a quantifier, and optionally an inner group of stages.
 */
export interface StageJson {
  name?: string;
  contiguity?: 'next' | 'followedBy' | 'followedByAny' | 'notNext' | 'notFollowedBy';
  where?: string;
  group?: StageJson[];
  times?: number | { from: number; to: number };
  oneOrMore?: boolean;
  timesOrMore?: number;
  optional?: boolean;
  greedy?: boolean;
  inner?: 'consecutive' | 'allowCombinations';
  until?: string;
  within?: string | number | { duration: string | number; type: 'firstAndLast' | 'previousAndCurrent' };
}

export interface PatternJson {
  name?: string;
  description?: string;
  skip?:
    | 'noSkip'
    | 'skipToNext'
    | 'skipPastLastEvent'
    | { strategy: 'skipToFirst' | 'skipToLast'; stage: string; throwOnMiss?: boolean };
  within?: StageJson['within'];
  stages: StageJson[];
}

const expression = z.string().superRefine((s, ctx) => {
  try {
    parseExpression(s);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});
const count = (min: number) =>
  z
    .number({ error: `expected an integer >= ${min}` })
    .int(`expected an integer >= ${min}`)
    .min(min, `expected an integer >= ${min}`);
const duration = z.union([z.string(), z.number()]).superRefine((d, ctx) => {
  try {
    if (!(parseDuration(d) > 0)) ctx.addIssue({ code: 'custom', message: 'expected a positive duration' });
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});
const within = z.union([duration, z.strictObject({ duration, type: z.enum(['firstAndLast', 'previousAndCurrent']) })]);

const stageSchema: z.ZodType<StageJson> = z.lazy(() =>
  z
    .strictObject({
      name: z.string().min(1, 'expected a non-empty stage name').optional(),
      contiguity: z.enum(['next', 'followedBy', 'followedByAny', 'notNext', 'notFollowedBy']).optional(),
      where: expression.optional(),
      group: z.array(stageSchema).min(1, 'expected at least one stage in the group').optional(),
      times: z.union([count(1), z.strictObject({ from: count(0), to: count(1) })]).optional(),
      oneOrMore: z.boolean().optional(),
      timesOrMore: count(0).optional(),
      optional: z.boolean().optional(),
      greedy: z.boolean().optional(),
      inner: z.enum(['consecutive', 'allowCombinations']).optional(),
      until: expression.optional(),
      within: within.optional(),
    })
    .superRefine((s, ctx) => {
      const quantifiers = [s.times !== undefined, s.oneOrMore === true, s.timesOrMore !== undefined].filter(Boolean);
      if (quantifiers.length > 1)
        ctx.addIssue({ code: 'custom', message: 'use only one of times, oneOrMore and timesOrMore' });
      if (s.group === undefined && s.name === undefined)
        ctx.addIssue({ code: 'custom', path: ['name'], message: 'expected a stage name' });
      if (s.group !== undefined && s.where !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['where'],
          message: 'a group stage takes its conditions from its stages',
        });
      if (typeof s.times === 'object' && s.times.to < s.times.from)
        ctx.addIssue({ code: 'custom', path: ['times', 'to'], message: 'expected to >= from' });
    }),
);

export const patternJsonSchema: z.ZodType<PatternJson> = z.strictObject({
  name: z.string().optional(),
  description: z.string().optional(),
  skip: z
    .union([
      z.enum(['noSkip', 'skipToNext', 'skipPastLastEvent']),
      z.strictObject({
        strategy: z.enum(['skipToFirst', 'skipToLast']),
        stage: z.string().min(1),
        throwOnMiss: z.boolean().optional(),
      }),
    ])
    .optional(),
  within: within.optional(),
  stages: z.array(stageSchema).min(1, 'expected at least one stage'),
});

/** Validates a JSON pattern and builds it; errors name the field, e.g. `pattern.stages.1.where: ...`. */
export function patternFromJson<T = unknown>(input: unknown): Pattern<T> {
  const r = patternJsonSchema.safeParse(input);
  if (!r.success) {
    const issue = r.error.issues[0];
    const field = ['pattern', ...(issue?.path ?? []).map(String)].join('.');
    throw new TributaryError('INVALID_ARGUMENT', `${field}: ${issue?.message ?? 'invalid pattern'}`, { field });
  }
  const spec = r.data;
  const skip = skipFromJson(spec.skip);
  const p = build<T>(spec.stages, skip, 'pattern.stages');
  if (spec.within !== undefined) applyWithin(p, spec.within);
  if (spec.name !== undefined) p.meta.name = spec.name;
  if (spec.description !== undefined) p.meta.description = spec.description;
  return p;
}

function skipFromJson(s: PatternJson['skip']): SkipStrategy {
  if (s === undefined || s === 'noSkip') return { kind: 'noSkip' };
  if (s === 'skipToNext') return { kind: 'skipToNext' };
  if (s === 'skipPastLastEvent') return { kind: 'skipPastLastEvent' };
  return { kind: s.strategy, name: s.stage, throwOnMiss: s.throwOnMiss ?? false };
}

function applyWithin<T>(p: Pattern<T>, w: NonNullable<StageJson['within']>): void {
  if (typeof w === 'object') p.within(w.duration, w.type);
  else p.within(w);
}

function build<T>(stages: StageJson[], skip: SkipStrategy, path: string): Pattern<T> {
  let p: Pattern<T> | null = null;
  for (const [i, s] of stages.entries()) {
    const at = `${path}.${i}`;
    try {
      const target: string | Pattern<T> =
        s.group !== undefined ? build<T>(s.group, skip, `${at}.group`) : (s.name as string);
      if (p === null) {
        if (s.contiguity !== undefined)
          throw new TributaryError('INVALID_ARGUMENT', `${at}.contiguity: the first stage has no contiguity`, {
            field: `${at}.contiguity`,
          });
        p = Pattern.begin<T>(target, skip);
      } else {
        const c = s.contiguity ?? 'followedBy';
        if ((c === 'notNext' || c === 'notFollowedBy') && typeof target !== 'string')
          throw new TributaryError('INVALID_ARGUMENT', `${at}.group: a NOT stage cannot be a group`, {
            field: `${at}.group`,
          });
        p = p[c](target as string);
      }
      if (s.where !== undefined) p.where(s.where);
      if (s.times !== undefined) {
        if (typeof s.times === 'number') p.times(s.times);
        else p.times(s.times.from, s.times.to);
      }
      if (s.oneOrMore === true) p.oneOrMore();
      if (s.timesOrMore !== undefined) p.timesOrMore(s.timesOrMore);
      if (s.inner === 'consecutive') p.consecutive();
      if (s.inner === 'allowCombinations') p.allowCombinations();
      if (s.until !== undefined) p.until(s.until);
      if (s.optional === true) p.optional();
      if (s.greedy === true) p.greedy();
      if (s.within !== undefined) applyWithin(p, s.within);
    } catch (err) {
      if (err instanceof TributaryError && err.message.startsWith('pattern.')) throw err;
      const msg = err instanceof Error ? err.message : String(err);
      throw new TributaryError('INVALID_ARGUMENT', `${at}: ${msg}`, { field: at, cause: err });
    }
  }
  return p as Pattern<T>;
}

/** The JSON form of a pattern; throws if a condition is a function (only expressions have a JSON form). */
export function patternToJson<T>(last: Pattern<T>): PatternJson {
  const stages = last.stages();
  const first = stages[0] as Pattern<T>;
  const out: PatternJson = { stages: stagesToJson(stages) };
  const s = first.skipStrategy;
  if (s.kind === 'skipToNext' || s.kind === 'skipPastLastEvent') out.skip = s.kind;
  else if (s.kind === 'skipToFirst' || s.kind === 'skipToLast')
    out.skip = { strategy: s.kind, stage: s.name, ...(s.throwOnMiss ? { throwOnMiss: true } : {}) };
  return {
    ...(last.meta.name === undefined ? {} : { name: last.meta.name }),
    ...(last.meta.description === undefined ? {} : { description: last.meta.description }),
    ...(out.skip === undefined ? {} : { skip: out.skip }),
    stages: out.stages,
  };
}

function stagesToJson<T>(stages: Pattern<T>[]): StageJson[] {
  return stages.map((p, i) => {
    const j: StageJson = {};
    if (p.group !== null) j.group = stagesToJson(p.group.stages());
    else j.name = p.name;
    const q = p.quantifier;
    if (i > 0)
      j.contiguity = (
        {
          strict: 'next',
          skipTillNext: 'followedBy',
          skipTillAny: 'followedByAny',
          notNext: 'notNext',
          notFollow: 'notFollowedBy',
        } as const
      )[q.consuming];
    if (p.condition !== null) j.where = condToExpr(p.condition, p.name);
    const t = p.timesRange ?? { from: 1, to: 1 };
    // timesOrMore(0) and times(0, n) are stored as optional stages starting at 1, as Flink does.
    if (q.kind === 'looping') {
      if (t.from === 1) j.oneOrMore = true;
      else j.timesOrMore = t.from;
    } else if (q.kind === 'times') {
      j.times = t.from === t.to ? t.from : { from: t.from, to: t.to };
    }
    if (q.inner === 'strict') j.inner = 'consecutive';
    if (q.inner === 'skipTillAny') j.inner = 'allowCombinations';
    if (p.untilCondition !== null) j.until = condToExpr(p.untilCondition, p.name);
    if (q.optional) j.optional = true;
    if (q.greedy) j.greedy = true;
    const w = p.windows;
    if (w.firstAndLast !== undefined) j.within = w.firstAndLast;
    if (w.previousAndCurrent !== undefined) j.within = { duration: w.previousAndCurrent, type: 'previousAndCurrent' };
    return j;
  });
}

function condToExpr<T>(c: Cond<T>, stage: string): string {
  switch (c.kind) {
    case 'expr':
      return c.source;
    case 'and':
      return `(${condToExpr(c.left, stage)}) && (${condToExpr(c.right, stage)})`;
    case 'or':
      return `(${condToExpr(c.left, stage)}) || (${condToExpr(c.right, stage)})`;
    case 'not':
      return `!(${condToExpr(c.inner, stage)})`;
    case 'fn':
      throw new TributaryError(
        'UNSUPPORTED',
        `stage ${JSON.stringify(stage)}: a function condition has no JSON form; use an expression string in where()`,
        { field: `pattern.${stage}` },
      );
  }
}
