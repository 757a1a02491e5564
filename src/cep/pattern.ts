import { invalidArgument, parseDuration, TributaryError } from '../core/index.ts';

/** What a condition sees besides the event: the events already matched by the partial match. */
export interface CepContext<T> {
  /** Events of the partial match that were taken by the stage `name`, in order. */
  getEventsForPattern(name: string): T[];
  /** Timestamp of the event being tested. */
  timestamp(): number;
}

export type ConditionFn<T> = (event: T, ctx: CepContext<T>) => boolean;

/** A condition tree: expressions (serializable), functions (not), and their combinations. */
export type Cond<T> =
  | { kind: 'expr'; source: string; fn: ConditionFn<T> }
  | { kind: 'fn'; fn: ConditionFn<T> }
  | { kind: 'and'; left: Cond<T>; right: Cond<T>; fn: ConditionFn<T> }
  | { kind: 'or'; left: Cond<T>; right: Cond<T>; fn: ConditionFn<T> }
  | { kind: 'not'; inner: Cond<T>; fn: ConditionFn<T> };

export type ConsumingStrategy = 'strict' | 'skipTillNext' | 'skipTillAny' | 'notNext' | 'notFollow';

export interface Quantifier {
  kind: 'single' | 'looping' | 'times';
  consuming: ConsumingStrategy;
  inner: ConsumingStrategy;
  optional: boolean;
  greedy: boolean;
}

export type WithinType = 'firstAndLast' | 'previousAndCurrent';

export type SkipStrategy =
  | { kind: 'noSkip' }
  | { kind: 'skipToNext' }
  | { kind: 'skipPastLastEvent' }
  | { kind: 'skipToFirst'; name: string; throwOnMiss: boolean }
  | { kind: 'skipToLast'; name: string; throwOnMiss: boolean };

/** Flink's AfterMatchSkipStrategy factories. */
export const AfterMatchSkipStrategy = {
  noSkip: (): SkipStrategy => ({ kind: 'noSkip' }),
  skipToNext: (): SkipStrategy => ({ kind: 'skipToNext' }),
  skipPastLastEvent: (): SkipStrategy => ({ kind: 'skipPastLastEvent' }),
  skipToFirst: (name: string, throwOnMiss = false): SkipStrategy => ({ kind: 'skipToFirst', name, throwOnMiss }),
  skipToLast: (name: string, throwOnMiss = false): SkipStrategy => ({ kind: 'skipToLast', name, throwOnMiss }),
};

/** Compiles an expression string to a condition; set by expr.ts (avoids an import cycle). */
let exprCompiler: (<T>(source: string) => ConditionFn<T>) | null = null;
export function setExpressionCompiler(c: <T>(source: string) => ConditionFn<T>): void {
  exprCompiler = c;
}

export function toCond<T>(c: string | ConditionFn<T> | Cond<T>): Cond<T> {
  if (typeof c === 'string') {
    if (exprCompiler === null) throw new TributaryError('INTERNAL', 'expression compiler not loaded');
    return { kind: 'expr', source: c, fn: exprCompiler<T>(c) };
  }
  if (typeof c === 'function') return { kind: 'fn', fn: c };
  return c;
}
export function andCond<T>(left: Cond<T>, right: Cond<T>): Cond<T> {
  const a = left.fn;
  const b = right.fn;
  return { kind: 'and', left, right, fn: (e, ctx) => a(e, ctx) && b(e, ctx) };
}
export function orCond<T>(left: Cond<T>, right: Cond<T>): Cond<T> {
  const a = left.fn;
  const b = right.fn;
  return { kind: 'or', left, right, fn: (e, ctx) => a(e, ctx) || b(e, ctx) };
}

/**
 * Flink CEP's Pattern: a chain of stages from `begin` to the last one, each with a condition, a quantifier and
 * the contiguity to its predecessor. Stage methods (`next`, ...) return a new stage; modifiers (`where`,
 * `oneOrMore`, ...) change this stage and return it.
 */
export class Pattern<T = unknown> {
  readonly name: string;
  readonly previous: Pattern<T> | null;
  /** For a group stage: the last stage of the inner pattern. */
  readonly group: Pattern<T> | null;
  condition: Cond<T> | null = null;
  untilCondition: Cond<T> | null = null;
  quantifier: Quantifier;
  timesRange: { from: number; to: number } | null = null;
  windows: { firstAndLast?: number; previousAndCurrent?: number } = {};
  readonly skipStrategy: SkipStrategy;
  /** Name and description of the whole pattern (kept on its last stage; the JSON form's top-level fields). */
  meta: { name?: string; description?: string } = {};

  protected constructor(
    name: string,
    previous: Pattern<T> | null,
    consuming: ConsumingStrategy,
    skip: SkipStrategy,
    group: Pattern<T> | null = null,
  ) {
    if (typeof name !== 'string' || name.length === 0)
      throw invalidArgument('pattern.name', 'a non-empty stage name', name);
    if (name.includes(':')) throw invalidArgument('pattern.name', 'a stage name without ":"', name);
    this.name = name;
    this.previous = previous;
    this.group = group;
    this.quantifier = { kind: 'single', consuming, inner: 'skipTillNext', optional: false, greedy: false };
    this.skipStrategy = skip;
  }

  static begin<T = unknown>(nameOrGroup: string | Pattern<T>, skip: SkipStrategy = { kind: 'noSkip' }): Pattern<T> {
    if (typeof nameOrGroup === 'string') return new Pattern<T>(nameOrGroup, null, 'skipTillNext', skip);
    return new Pattern<T>(groupName(nameOrGroup), null, 'skipTillNext', skip, nameOrGroup);
  }

  private chain(nameOrGroup: string | Pattern<T>, consuming: ConsumingStrategy): Pattern<T> {
    if (typeof nameOrGroup === 'string') return new Pattern<T>(nameOrGroup, this, consuming, this.skipStrategy);
    return new Pattern<T>(groupName(nameOrGroup), this, consuming, this.skipStrategy, nameOrGroup);
  }
  /** Strict contiguity: the next event must match. */
  next(nameOrGroup: string | Pattern<T>): Pattern<T> {
    return this.chain(nameOrGroup, 'strict');
  }
  /** Relaxed contiguity: non-matching events in between are skipped. */
  followedBy(nameOrGroup: string | Pattern<T>): Pattern<T> {
    return this.chain(nameOrGroup, 'skipTillNext');
  }
  /** Non-deterministic relaxed contiguity: also skips matching events. */
  followedByAny(nameOrGroup: string | Pattern<T>): Pattern<T> {
    return this.chain(nameOrGroup, 'skipTillAny');
  }
  notNext(name: string): Pattern<T> {
    if (this.quantifier.optional)
      throw malformed('Specifying a pattern with an optional path to NOT condition is not supported yet', name);
    return this.chain(name, 'notNext');
  }
  notFollowedBy(name: string): Pattern<T> {
    if (this.quantifier.optional)
      throw malformed('Specifying a pattern with an optional path to NOT condition is not supported yet', name);
    return this.chain(name, 'notFollow');
  }

  where(c: string | ConditionFn<T> | Cond<T>): this {
    const cond = toCond(c);
    this.condition = this.condition === null ? cond : andCond(this.condition, cond);
    return this;
  }
  or(c: string | ConditionFn<T> | Cond<T>): this {
    const cond = toCond(c);
    this.condition = this.condition === null ? cond : orCond(this.condition, cond);
    return this;
  }
  /** Narrows the stage to a subtype (Flink's subtype(Class)): a type guard ANDed with the condition. */
  subtype<S extends T>(guard: (e: T) => e is S): Pattern<T> {
    return this.where((e) => guard(e));
  }
  /** Stop condition of a looping stage: the event that satisfies it ends the loop and is not taken. */
  until(c: string | ConditionFn<T> | Cond<T>): this {
    if (this.quantifier.kind !== 'looping') throw malformed('Only looping patterns can use until()', this.name);
    const cond = toCond(c);
    this.untilCondition = this.untilCondition === null ? cond : orCond(this.untilCondition, cond);
    return this;
  }
  within(duration: string | number, type: WithinType = 'firstAndLast'): this {
    const ms = parseDuration(duration, `pattern ${this.name}.within`);
    if (!(ms > 0)) throw invalidArgument(`pattern ${this.name}.within`, 'a positive duration', duration);
    this.windows[type] = ms;
    return this;
  }

  private checkQuantifiable(): void {
    this.checkNotNot();
    if (this.quantifier.kind !== 'single')
      throw malformed(`Already applied a quantifier (${this.quantifier.kind}) to this pattern`, this.name);
  }
  private checkNotNot(): void {
    if (this.quantifier.consuming === 'notNext' || this.quantifier.consuming === 'notFollow')
      throw malformed('Option not applicable to NOT pattern', this.name);
  }
  oneOrMore(): this {
    this.checkQuantifiable();
    this.quantifier.kind = 'looping';
    this.timesRange = { from: 1, to: 1 };
    return this;
  }
  timesOrMore(n: number): this {
    this.checkQuantifiable();
    checkCount(this.name, 'timesOrMore', n, 0);
    this.quantifier.kind = 'looping';
    if (n === 0) {
      this.quantifier.optional = true;
      this.timesRange = { from: 1, to: 1 };
    } else this.timesRange = { from: n, to: n };
    return this;
  }
  times(from: number, to?: number): this {
    this.checkQuantifiable();
    if (to === undefined) {
      checkCount(this.name, 'times', from, 1);
      this.quantifier.kind = 'times';
      this.timesRange = { from, to: from };
      return this;
    }
    checkCount(this.name, 'times.from', from, 0);
    checkCount(this.name, 'times.to', to, Math.max(1, from));
    this.quantifier.kind = 'times';
    if (from === 0) {
      this.quantifier.optional = true;
      this.timesRange = { from: 1, to };
    } else this.timesRange = { from, to };
    return this;
  }
  optional(): this {
    this.checkNotNot();
    if (this.previous?.quantifier.greedy && this.previous.quantifier.kind !== 'single')
      throw malformed('Optional pattern cannot be preceded by greedy pattern', this.name);
    this.quantifier.optional = true;
    return this;
  }
  greedy(): this {
    this.checkNotNot();
    if (this.group !== null) throw malformed('Option not applicable to group pattern', this.name);
    this.quantifier.greedy = true;
    return this;
  }
  /** Strict contiguity inside a looping or times stage. */
  consecutive(): this {
    if (this.quantifier.kind === 'single' || this.quantifier.inner !== 'skipTillNext')
      throw malformed('consecutive() applies only to looping/times patterns with default contiguity', this.name);
    this.quantifier.inner = 'strict';
    return this;
  }
  /** Non-deterministic relaxed contiguity inside a looping or times stage. */
  allowCombinations(): this {
    if (this.quantifier.kind === 'single' || this.quantifier.inner !== 'skipTillNext')
      throw malformed('allowCombinations() applies only to looping/times patterns with default contiguity', this.name);
    this.quantifier.inner = 'skipTillAny';
    return this;
  }

  /** The stages from begin to this one. */
  stages(): Pattern<T>[] {
    const out: Pattern<T>[] = [];
    for (let p: Pattern<T> | null = this; p !== null; p = p.previous) out.unshift(p);
    return out;
  }
  getCondition(): ConditionFn<T> {
    return this.condition?.fn ?? (() => true);
  }
}

function groupName<T>(inner: Pattern<T>): string {
  // A group is named after its inner stages; the name only appears in errors and the JSON form.
  return `(${inner
    .stages()
    .map((s) => s.name)
    .join(',')})`.replaceAll(':', '');
}

function checkCount(name: string, what: string, n: number, min: number): void {
  if (!Number.isInteger(n) || n < min) throw invalidArgument(`pattern ${name}.${what}`, `an integer >= ${min}`, n);
}

export function malformed(message: string, stage: string): TributaryError {
  return new TributaryError('INVALID_ARGUMENT', `malformed pattern at stage ${JSON.stringify(stage)}: ${message}`, {
    field: `pattern.${stage}`,
  });
}
