import { TributaryError } from '../core/index.ts';
import type { CepContext, ConditionFn, Pattern, SkipStrategy } from './pattern.ts';
import { malformed } from './pattern.ts';

// ---- NFA graph (Flink's NFACompiler, ported: states, TAKE / IGNORE / PROCEED edges) ----

type StateType = 'start' | 'normal' | 'final' | 'stop' | 'pending';
type Action = 'take' | 'ignore' | 'proceed';

interface Transition<T> {
  action: Action;
  source: NState<T>;
  target: NState<T>;
  cond: ConditionFn<T>;
}

export interface NState<T> {
  id: number;
  /** The stage name (several states can share it: ignore copies, times copies). */
  name: string;
  type: StateType;
  transitions: Transition<T>[];
}

const TRUE = (): boolean => true;
const not =
  <T>(c: ConditionFn<T>): ConditionFn<T> =>
  (e, ctx) =>
    !c(e, ctx);
const and =
  <T>(a: ConditionFn<T>, b: ConditionFn<T>): ConditionFn<T> =>
  (e, ctx) =>
    a(e, ctx) && b(e, ctx);

export const FINAL_NAME = '$endState$';

export interface CompiledNfa<T> {
  states: NState<T>[];
  start: NState<T>;
  /** First-and-last window in ms (0: none). */
  window: number;
  /** Window between consecutive matched events in ms (0: none). */
  gapWindow: number;
  skip: SkipStrategy;
  stageNames: string[];
}

/** Compiles a pattern (its last stage) to an NFA, walking the stages from the end as Flink does. */
export function compile<T>(last: Pattern<T>): CompiledNfa<T> {
  const c = new Compiler<T>(last);
  return c.result;
}

class Compiler<T> {
  readonly states: NState<T>[] = [];
  private current: Pattern<T>;
  private following: Pattern<T> | null = null;
  private group: Pattern<T> | null = null;
  private readonly firstOfLoop = new Map<Pattern<T>, boolean>();
  private readonly stopStates = new Map<string, NState<T>>();
  private readonly originalStateMap = new Map<number, NState<T>>();
  private window = 0;
  private gapWindow = 0;
  readonly result: CompiledNfa<T>;

  constructor(last: Pattern<T>) {
    this.current = last;
    const names = new Set<string>();
    const visit = (p: Pattern<T>): void => {
      for (const s of p.stages()) {
        if (s.group !== null) visit(s.group);
        else {
          if (names.has(s.name)) throw malformed('Duplicate stage name', s.name);
          names.add(s.name);
        }
        if (s.windows.firstAndLast !== undefined)
          this.window = this.window === 0 ? s.windows.firstAndLast : Math.min(this.window, s.windows.firstAndLast);
        if (s.windows.previousAndCurrent !== undefined)
          this.gapWindow =
            this.gapWindow === 0
              ? s.windows.previousAndCurrent
              : Math.min(this.gapWindow, s.windows.previousAndCurrent);
      }
    };
    visit(last);
    const stages = last.stages();
    const first = stages[0] as Pattern<T>;
    const skip = first.skipStrategy;
    if (skip.kind === 'skipToFirst' || skip.kind === 'skipToLast') {
      if (!names.has(skip.name))
        throw malformed(`the skip strategy's stage ${JSON.stringify(skip.name)} is not in the pattern`, skip.name);
    }
    if (last.quantifier.consuming === 'notFollow' && this.window === 0 && this.gapWindow === 0)
      throw malformed('notFollowedBy is not supported as the last stage of a pattern without within()', last.name);
    if (first.quantifier.consuming === 'notNext' || first.quantifier.consuming === 'notFollow')
      throw malformed('a pattern cannot begin with a NOT stage', first.name);
    if (this.window > 0 && this.gapWindow > this.window)
      throw malformed('the previous-and-current window cannot be larger than the first-and-last window', last.name);
    const sink = this.createState(FINAL_NAME, 'final');
    const middle = this.createMiddleStates(sink);
    const start = this.convertPattern(middle);
    start.type = 'start';
    this.result = {
      states: this.states,
      start,
      window: this.window,
      gapWindow: this.gapWindow,
      skip,
      stageNames: [...names],
    };
  }

  private createState(name: string, type: StateType): NState<T> {
    const s: NState<T> = { id: this.states.length, name, type, transitions: [] };
    this.states.push(s);
    return s;
  }
  private add(source: NState<T>, action: Action, target: NState<T>, cond: ConditionFn<T>): void {
    source.transitions.push({ action, source, target, cond });
  }

  private createMiddleStates(sinkState: NState<T>): NState<T> {
    let lastSink = sinkState;
    while (this.current.previous !== null) {
      const q = this.current.quantifier;
      if (q.consuming === 'notFollow') {
        if ((this.window > 0 || this.gapWindow > 0) && lastSink.type === 'final') {
          const notFollow = this.createState(this.current.name, 'pending');
          const notCond = this.takeCondition(this.current);
          const stop = this.createStopState(notCond, this.current.name);
          this.add(notFollow, 'proceed', stop, notCond);
          this.add(notFollow, 'ignore', notFollow, not(notCond));
          lastSink = notFollow;
        }
      } else if (q.consuming === 'notNext') {
        const notNext = this.createState(this.current.name, 'normal');
        const notCond = this.takeCondition(this.current);
        const stop = this.createStopState(notCond, this.current.name);
        if (lastSink.type === 'final') this.add(notNext, 'ignore', lastSink, not(notCond));
        else this.add(notNext, 'proceed', lastSink, not(notCond));
        this.add(notNext, 'proceed', stop, notCond);
        lastSink = notNext;
      } else {
        lastSink = this.convertPattern(lastSink);
      }
      this.following = this.current;
      this.current = this.current.previous;
    }
    return lastSink;
  }

  private convertPattern(sinkState: NState<T>): NState<T> {
    const q = this.current.quantifier;
    const times = this.current.timesRange ?? { from: 1, to: 1 };
    let lastSink: NState<T>;
    if (q.kind === 'looping') {
      this.setFirstOfLoop(false);
      const sink = this.copyWithoutTransitiveNots(sinkState);
      const looping = this.createLooping(sink);
      this.setFirstOfLoop(true);
      lastSink = this.createTimesState(looping, sinkState, times);
    } else if (q.kind === 'times') {
      lastSink = this.createTimesState(sinkState, sinkState, times);
    } else {
      lastSink = this.createSingletonState(
        sinkState,
        sinkState,
        this.takeCondition(this.current),
        this.ignoreCondition(this.current),
        q.optional,
      );
    }
    this.addStopStates(lastSink);
    return lastSink;
  }

  private setFirstOfLoop(v: boolean): void {
    if (this.group !== null) this.firstOfLoop.set(this.group, v);
  }
  private isFirstOfLoop(): boolean {
    return this.group !== null && this.firstOfLoop.get(this.group) === true;
  }
  private headOfGroup(p: Pattern<T>): boolean {
    return this.group !== null && p.previous === null;
  }

  private copyWithoutTransitiveNots(sinkState: NState<T>): NState<T> {
    const nots = this.currentNotConditions();
    if (nots.length === 0 || !this.current.quantifier.optional) return sinkState;
    const copy = this.createState(sinkState.name, sinkState.type);
    for (const t of sinkState.transitions) {
      if (t.action === 'proceed') {
        let target = t.target;
        let remove = false;
        if (target.type === 'stop') {
          for (const n of nots) if (target.name === n.name) remove = true;
        } else target = this.copyWithoutTransitiveNots(t.target);
        if (!remove) this.add(copy, t.action, target, t.cond);
      } else this.add(copy, t.action, t.target === t.source ? copy : t.target, t.cond);
    }
    return copy;
  }

  private createStopState(notCond: ConditionFn<T>, name: string): NState<T> {
    let stop = this.stopStates.get(name);
    if (stop === undefined) {
      stop = this.createState(name, 'stop');
      this.add(stop, 'take', stop, notCond);
      this.stopStates.set(name, stop);
    }
    return stop;
  }
  private addStopStates(state: NState<T>): void {
    for (const n of this.currentNotConditions()) {
      const stop = this.createStopState(n.cond, n.name);
      this.add(state, 'proceed', stop, n.cond);
    }
  }
  private addStopStateToLooping(state: NState<T>): void {
    const f = this.following;
    if (f !== null && f.quantifier.consuming === 'notFollow') {
      const notCond = this.takeCondition(f);
      const stop = this.createStopState(notCond, f.name);
      this.add(state, 'proceed', stop, notCond);
    }
  }
  private currentNotConditions(): { cond: ConditionFn<T>; name: string }[] {
    const out: { cond: ConditionFn<T>; name: string }[] = [];
    let p = this.current;
    while (p.previous !== null && (p.previous.quantifier.optional || p.previous.quantifier.consuming === 'notFollow')) {
      p = p.previous;
      if (p.quantifier.consuming === 'notFollow') out.push({ cond: this.takeCondition(p), name: p.name });
    }
    return out;
  }

  private createTimesState(sinkState: NState<T>, proceedState: NState<T>, times: { from: number; to: number }) {
    let lastSink = sinkState;
    this.setFirstOfLoop(false);
    const p = this.current;
    const until = p.untilCondition?.fn ?? null;
    const innerIgnore = extendWithUntil(this.innerIgnoreCondition(p), until, false);
    const take = extendWithUntil(this.takeCondition(p), until, true) as ConditionFn<T>;
    if (p.quantifier.greedy && times.from !== times.to) {
      if (until !== null) this.originalStateMap.set(sinkState.id, this.copy(sinkState));
      this.updateWithGreedyCondition(sinkState, this.takeCondition(p));
    }
    for (let i = times.from; i < times.to; i++) {
      lastSink = this.createSingletonState(lastSink, proceedState, take, innerIgnore, true);
      this.addStopStateToLooping(lastSink);
    }
    for (let i = 0; i < times.from - 1; i++) {
      lastSink = this.createSingletonState(lastSink, null, take, innerIgnore, false);
      this.addStopStateToLooping(lastSink);
    }
    this.setFirstOfLoop(true);
    return this.createSingletonState(lastSink, proceedState, take, this.ignoreCondition(p), p.quantifier.optional);
  }

  private createSingletonState(
    sinkState: NState<T>,
    proceedState: NState<T> | null,
    take: ConditionFn<T>,
    ignore: ConditionFn<T> | null,
    isOptional: boolean,
  ): NState<T> {
    const p = this.current;
    if (p.group !== null) return this.createGroupPatternState(p, sinkState, proceedState, isOptional);
    const single = this.createState(p.name, 'normal');
    const sink = this.copyWithoutTransitiveNots(sinkState);
    this.add(single, 'take', sink, take);
    if (isOptional && proceedState !== null) {
      const until = p.untilCondition?.fn ?? null;
      if (p.quantifier.greedy && until !== null) {
        const original = this.originalStateMap.get(proceedState.id);
        if (original !== undefined) this.add(single, 'proceed', original, until);
        this.add(single, 'proceed', proceedState, not(until));
      } else this.add(single, 'proceed', proceedState, TRUE);
    }
    if (ignore !== null) {
      let ignoreState: NState<T>;
      if (isOptional) {
        ignoreState = this.createState(p.name, 'normal');
        this.add(ignoreState, 'take', sink, take);
        this.add(ignoreState, 'ignore', ignoreState, ignore);
        this.addStopStates(ignoreState);
      } else ignoreState = single;
      this.add(single, 'ignore', ignoreState, ignore);
    }
    return single;
  }

  private createLooping(sinkState: NState<T>): NState<T> {
    const p = this.current;
    if (p.group !== null) return this.createLoopingGroupPatternState(p, sinkState);
    const until = p.untilCondition?.fn ?? null;
    const ignore = extendWithUntil(this.innerIgnoreCondition(p), until, false);
    const take = extendWithUntil(this.takeCondition(p), until, true) as ConditionFn<T>;
    const looping = this.createState(p.name, 'normal');
    if (p.quantifier.greedy) {
      if (until !== null) {
        const copy = this.copy(sinkState);
        this.add(looping, 'proceed', copy, until);
        this.originalStateMap.set(sinkState.id, copy);
      }
      this.add(looping, 'proceed', sinkState, until !== null ? not(until) : TRUE);
      this.updateWithGreedyCondition(sinkState, this.takeCondition(p));
    } else this.add(looping, 'proceed', sinkState, TRUE);
    this.add(looping, 'take', looping, take);
    this.addStopStateToLooping(looping);
    if (ignore !== null) {
      const ignoreState = this.createState(p.name, 'normal');
      this.add(ignoreState, 'take', looping, take);
      this.add(ignoreState, 'ignore', ignoreState, ignore);
      this.add(looping, 'ignore', ignoreState, ignore);
      this.addStopStateToLooping(ignoreState);
    }
    return looping;
  }

  private withGroup(g: Pattern<T>, body: () => NState<T>): NState<T> {
    const oldCurrent = this.current;
    const oldFollowing = this.following;
    const oldGroup = this.group;
    this.group = g;
    this.current = g.group as Pattern<T>;
    this.following = null;
    try {
      return body();
    } finally {
      this.current = oldCurrent;
      this.following = oldFollowing;
      this.group = oldGroup;
    }
  }
  private createGroupPatternState(
    g: Pattern<T>,
    sinkState: NState<T>,
    proceedState: NState<T> | null,
    isOptional: boolean,
  ): NState<T> {
    return this.withGroup(g, () => {
      let lastSink = this.createMiddleStates(sinkState);
      lastSink = this.convertPattern(lastSink);
      if (isOptional && proceedState !== null) this.add(lastSink, 'proceed', proceedState, TRUE);
      return lastSink;
    });
  }
  private createLoopingGroupPatternState(g: Pattern<T>, sinkState: NState<T>): NState<T> {
    return this.withGroup(g, () => {
      const dummy = this.createState('$dummy$', 'normal');
      let lastSink = this.createMiddleStates(dummy);
      lastSink = this.convertPattern(lastSink);
      this.add(lastSink, 'proceed', sinkState, TRUE);
      this.add(dummy, 'proceed', lastSink, TRUE);
      return lastSink;
    });
  }

  private copy(state: NState<T>): NState<T> {
    const c = this.createState(state.name, state.type);
    for (const t of state.transitions) this.add(c, t.action, t.target === t.source ? c : t.target, t.cond);
    return c;
  }
  private updateWithGreedyCondition(state: NState<T>, take: ConditionFn<T>): void {
    for (const t of state.transitions) t.cond = and(t.cond, not(take));
  }

  private takeCondition(p: Pattern<T>): ConditionFn<T> {
    let take = p.getCondition();
    const gu = this.group?.untilCondition?.fn;
    if (gu !== undefined) take = extendWithUntil(take, gu, true) as ConditionFn<T>;
    return take;
  }
  private ignoreFor(p: Pattern<T>, strategy: string): ConditionFn<T> | null {
    let ignore: ConditionFn<T> | null = null;
    if (strategy === 'skipTillNext') ignore = not(p.getCondition());
    else if (strategy === 'skipTillAny') ignore = TRUE;
    const gu = this.group?.untilCondition?.fn;
    if (gu !== undefined) ignore = extendWithUntil(ignore, gu, false);
    return ignore;
  }
  private innerIgnoreCondition(p: Pattern<T>): ConditionFn<T> | null {
    let s = p.quantifier.inner as string;
    if (this.headOfGroup(p)) s = (this.group as Pattern<T>).quantifier.inner;
    return this.ignoreFor(p, s);
  }
  private ignoreCondition(p: Pattern<T>): ConditionFn<T> | null {
    let s = p.quantifier.consuming as string;
    if (this.headOfGroup(p)) {
      const g = this.group as Pattern<T>;
      s = this.isFirstOfLoop() ? g.quantifier.consuming : g.quantifier.inner;
    }
    return this.ignoreFor(p, s);
  }
}

function extendWithUntil<T>(
  cond: ConditionFn<T> | null,
  until: ConditionFn<T> | null,
  isTake: boolean,
): ConditionFn<T> | null {
  if (until !== null && cond !== null) return and(not(until), cond);
  if (until !== null && isTake) return not(until);
  return cond;
}

// ---- runtime: computation states over a shared buffer ----

/** A matched event as the NFA keeps it: a per-key sequence id (orders events), its timestamp and value. */
export interface Ev<T> {
  id: number;
  ts: number;
  value: T;
}

/**
 * The shared buffer: each taken event is a node pointing at the node before it in its partial match.
 * Partial matches that share a prefix share its nodes, so branching never copies event lists (the role
 * Flink's SharedBuffer with Dewey versions plays; here the pointer itself identifies the path).
 */
export interface BufNode<T> {
  stage: string;
  ev: Ev<T>;
  prev: BufNode<T> | null;
}

export interface ComputationState<T> {
  state: number;
  node: BufNode<T> | null;
  startTs: number;
  prevTs: number;
  /** Id of the first event, -1 while in the start state. */
  startId: number;
}

export interface NfaState<T> {
  partials: ComputationState<T>[];
  /** Finished matches held back by a skip strategy until no earlier partial match can finish. */
  completed: ComputationState<T>[];
}

export type Match<T> = Record<string, T[]>;

type AdvanceResult<T> = { matches: Match<T>[]; timeouts: Timeout<T>[] };
const NOTHING: AdvanceResult<never> = Object.freeze({ matches: [], timeouts: [] }) as AdvanceResult<never>;
const NO_MATCHES: Match<never>[] = [];

export interface Timeout<T> {
  match: Match<T>;
  timestamp: number;
}

export class Nfa<T> {
  readonly compiled: CompiledNfa<T>;
  private readonly states: NState<T>[];
  constructor(compiled: CompiledNfa<T>) {
    this.compiled = compiled;
    this.states = compiled.states;
    this.startState = startCs(compiled.start.id);
    this.types = compiled.states.map((st) => st.type);
  }
  private readonly types: StateType[];

  private readonly startState: ComputationState<T>;
  initialState(): NfaState<T> {
    return { partials: [this.startState], completed: [] };
  }

  /** Drops (and reports) partial matches that fell out of the window at `time`; emits pending notFollowedBy matches. */
  advanceTime(nfa: NfaState<T>, time: number): { matches: Match<T>[]; timeouts: Timeout<T>[] } {
    const { window, gapWindow } = this.compiled;
    if (window === 0 && gapWindow === 0 && nfa.completed.length === 0) return NOTHING as AdvanceResult<T>;
    // Most calls expire nothing: check before allocating.
    let any = nfa.completed.length > 0;
    for (let i = 0; !any && i < nfa.partials.length; i++) {
      const cs = nfa.partials[i] as ComputationState<T>;
      if (cs.startId < 0) continue;
      if ((window > 0 && time - cs.startTs >= window) || (gapWindow > 0 && time - cs.prevTs >= gapWindow)) any = true;
    }
    if (!any) return NOTHING as AdvanceResult<T>;
    const matches: Match<T>[] = [];
    const timeouts: Timeout<T>[] = [];
    const kept: ComputationState<T>[] = [];
    const potential: ComputationState<T>[] = [];
    for (const cs of nfa.partials) {
      const isStart = cs.startId < 0;
      const gapOut = !isStart && gapWindow > 0 && time - cs.prevTs >= gapWindow;
      const firstOut = !isStart && window > 0 && time - cs.startTs >= window;
      if (gapOut || firstOut) {
        if ((this.states[cs.state] as NState<T>).type === 'pending') {
          potential.push(cs);
          continue;
        }
        timeouts.push({
          match: materialize(cs.node),
          timestamp: gapOut ? cs.prevTs + gapWindow : cs.startTs + window,
        });
      } else kept.push(cs);
    }
    nfa.partials = kept;
    this.finishMatches(nfa, potential, matches);
    return { matches, timeouts };
  }

  /** Feeds one event; returns the matches it completes (a shared empty array when none: do not mutate). */
  process(nfa: NfaState<T>, ev: Ev<T>): Match<T>[] {
    let potential: ComputationState<T>[] | null = null;
    // Allocated only when some partial match changes (most events leave a key's partial matches as they were).
    let next: ComputationState<T>[] | null = null;
    const out = this.out;
    const partials = nfa.partials;
    for (let pi = 0; pi < partials.length; pi++) {
      const cs = partials[pi] as ComputationState<T>;
      out.length = 0;
      this.computeNextStates(cs, ev, out);
      if (next === null) {
        if (out.length === 1 && out[0] === cs) continue;
        next = partials.slice(0, pi);
      }
      let discard = false;
      for (let i = 0; i < out.length; i++) {
        const n = out[i] as ComputationState<T>;
        const type = this.types[n.state];
        if (type === 'final') {
          if (potential === null) potential = [];
          potential.push(n);
        } else if (type === 'stop') discard = true;
      }
      // A stop state kills the partial match's other branches, but matches it completed stand.
      if (!discard)
        for (let i = 0; i < out.length; i++) {
          const n = out[i] as ComputationState<T>;
          const type = this.types[n.state];
          if (type !== 'final' && type !== 'stop') next.push(n);
        }
    }
    out.length = 0;
    if (next !== null) nfa.partials = next;
    // Without a skip strategy matches go out at once (as Flink's doProcess); held matches are then only the pending
    // notFollowedBy ones, released by advanceTime. With one, held matches are released as earlier partials die.
    if (this.compiled.skip.kind === 'noSkip') {
      if (potential === null) return NO_MATCHES as Match<T>[];
      return potential.map((m) => materialize(m.node));
    }
    if (potential === null && nfa.completed.length === 0) return NO_MATCHES as Match<T>[];
    const matches: Match<T>[] = [];
    this.finishMatches(nfa, potential ?? [], matches);
    return matches;
  }

  private finishMatches(nfa: NfaState<T>, potential: ComputationState<T>[], out: Match<T>[]): void {
    if (potential.length === 0 && nfa.completed.length === 0) return;
    const completed = nfa.completed.concat(potential);
    completed.sort(compareMatches);
    const skip = this.compiled.skip;
    while (completed.length > 0) {
      const earliest = completed[0] as ComputationState<T>;
      let earliestPartial = Number.POSITIVE_INFINITY;
      for (const p of nfa.partials) if (p.startId >= 0 && p.startId < earliestPartial) earliestPartial = p.startId;
      if (earliest.startId > earliestPartial) break;
      completed.shift();
      const path = pathOf(earliest.node);
      const pruning = pruningId(skip, path);
      if (pruning !== null) {
        const strictly = skip.kind === 'skipToFirst' || skip.kind === 'skipToLast';
        const keep = (cs: ComputationState<T>) =>
          cs.startId < 0 || (strictly ? !(cs.startId < pruning) : !(cs.startId <= pruning));
        nfa.partials = nfa.partials.filter(keep);
        for (let i = completed.length - 1; i >= 0; i--)
          if (!keep(completed[i] as ComputationState<T>)) completed.splice(i, 1);
      }
      out.push(materialize(earliest.node));
    }
    nfa.completed = completed;
  }

  // One context object, pointed at the partial match whose edges are being evaluated (conditions run synchronously).
  private ctxNode: BufNode<T> | null = null;
  private ctxPath: BufNode<T>[] | null = null;
  private ctxTs = 0;
  private readonly ctx: CepContext<T> = {
    getEventsForPattern: (name: string): T[] => {
      if (this.ctxPath === null) this.ctxPath = pathOf(this.ctxNode);
      const out: T[] = [];
      for (const n of this.ctxPath) if (n.stage === name) out.push(n.ev.value);
      return out;
    },
    timestamp: () => this.ctxTs,
  };
  private readonly stack: NState<T>[] = [];
  private readonly out: ComputationState<T>[] = [];

  private computeNextStates(cs: ComputationState<T>, ev: Ev<T>, out: ComputationState<T>[]): void {
    this.ctxNode = cs.node;
    this.ctxPath = null;
    this.ctxTs = ev.ts;
    const ctx = this.ctx;
    const value = ev.value;
    const current = this.states[cs.state] as NState<T>;
    const isStart = current.type === 'start';
    // The decision graph: follow PROCEED edges (epsilon moves) to collect the TAKE and IGNORE edges.
    const stack = this.stack;
    stack.push(current);
    while (stack.length > 0) {
      const s = stack.pop() as NState<T>;
      for (const t of s.transitions) {
        // IGNORE edges of the start state are dropped anyway (it is re-added below): skip their condition.
        if (isStart && t.action === 'ignore') continue;
        if (!t.cond(value, ctx)) continue;
        if (t.action === 'proceed') stack.push(t.target);
        else if (t.action === 'ignore') {
          // Computation states are immutable: staying in the same state reuses the object.
          if (!isStart)
            out.push(
              t.target.id === cs.state
                ? cs
                : { state: t.target.id, node: cs.node, startTs: cs.startTs, prevTs: cs.prevTs, startId: cs.startId },
            );
        } else {
          const node: BufNode<T> = { stage: t.source.name, ev, prev: cs.node };
          const startTs = isStart ? ev.ts : cs.startTs;
          const startId = isStart ? ev.id : cs.startId;
          out.push({ state: t.target.id, node, startTs, prevTs: ev.ts, startId });
          const fin = this.findFinalAfterProceed(ctx, t.target, value);
          if (fin !== null) out.push({ state: fin.id, node, startTs, prevTs: ev.ts, startId });
        }
      }
    }
    // The start state stays, so that every event can begin a match; it carries nothing, so it is shared.
    if (isStart) out.push(cs);
  }

  private findFinalAfterProceed(ctx: CepContext<T>, state: NState<T>, value: T): NState<T> | null {
    if (state.transitions.length === 0 || !state.transitions.some((t) => t.action === 'proceed')) return null;
    const stack: NState<T>[] = [state];
    while (stack.length > 0) {
      const s = stack.pop() as NState<T>;
      for (const t of s.transitions) {
        if (t.action === 'proceed' && t.cond(value, ctx)) {
          if (t.target.type === 'final') return t.target;
          stack.push(t.target);
        }
      }
    }
    return null;
  }
}

function startCs<T>(state: number): ComputationState<T> {
  return { state, node: null, startTs: -1, prevTs: -1, startId: -1 };
}

export function pathOf<T>(node: BufNode<T> | null): BufNode<T>[] {
  const out: BufNode<T>[] = [];
  for (let n = node; n !== null; n = n.prev) out.push(n);
  return out.reverse();
}

export function materialize<T>(node: BufNode<T> | null): Match<T> {
  const m: Match<T> = {};
  for (const n of pathOf(node)) {
    const list = m[n.stage];
    if (list === undefined) m[n.stage] = [n.ev.value];
    else list.push(n.ev.value);
  }
  return m;
}

/** Completed matches in order of their first event, then of their events (earliest path first). */
function compareMatches<T>(a: ComputationState<T>, b: ComputationState<T>): number {
  if (a.startId !== b.startId) return a.startId - b.startId;
  const pa = pathOf(a.node);
  const pb = pathOf(b.node);
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const d = (pa[i] as BufNode<T>).ev.id - (pb[i] as BufNode<T>).ev.id;
    if (d !== 0) return d;
  }
  return pa.length - pb.length;
}

function pruningId<T>(skip: SkipStrategy, path: BufNode<T>[]): number | null {
  switch (skip.kind) {
    case 'noSkip':
      return null;
    case 'skipToNext':
      return path.length > 0 ? (path[0] as BufNode<T>).ev.id : null;
    case 'skipPastLastEvent': {
      let max = -1;
      for (const n of path) if (n.ev.id > max) max = n.ev.id;
      return max;
    }
    case 'skipToFirst':
    case 'skipToLast': {
      const ids = path.filter((n) => n.stage === skip.name).map((n) => n.ev.id);
      if (ids.length === 0) {
        if (skip.throwOnMiss)
          throw new TributaryError(
            'INVALID_ARGUMENT',
            `skip strategy: stage ${JSON.stringify(skip.name)} matched no event`,
          );
        return null;
      }
      const id = (skip.kind === 'skipToFirst' ? ids[0] : ids[ids.length - 1]) as number;
      if (skip.throwOnMiss && path.length > 0 && id === (path[0] as BufNode<T>).ev.id)
        throw new TributaryError(
          'INVALID_ARGUMENT',
          `skip strategy: skipping to the first event of the match (stage ${JSON.stringify(skip.name)}) would loop forever`,
        );
      return id;
    }
  }
}
