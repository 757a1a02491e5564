import { channel, invalidArgument, parseDuration, publish, TimeHeap } from '../core/index.ts';
import type { KeyValueStore, KStream, Processor, ProcessorContext, StreamRecord } from '../streams/index.ts';
import { patternFromJson, patternToJson } from './json.ts';
import {
  type BufNode,
  type CompiledNfa,
  type ComputationState,
  compile,
  type Match,
  Nfa,
  type NfaState,
  type Timeout,
} from './nfa.ts';
import type { Pattern } from './pattern.ts';

export type TimeMode = 'event' | 'processing';

export interface CepOptions<V> {
  /** Names the operator's stores (`<name>-nfa`, `<name>-meta`); unique per job (default `cep`). */
  name?: string;
  /** Event time (default): events are buffered and processed in timestamp order as the watermark passes them. */
  timeMode?: TimeMode;
  /**
   * Bounded out-of-orderness of the operator's watermark: after each record the watermark becomes
   * max timestamp seen - maxOutOfOrderness - 1 (Flink's convention), never going back. Default 0.
   */
  maxOutOfOrderness?: string | number;
  /** Orders events with the same timestamp (Flink's EventComparator); default arrival order. */
  comparator?: (a: V, b: V) => number;
  /** Processing-time mode: how often (wall-clock ms) partial matches are checked for timeouts (default 1000). */
  timeoutCheckIntervalMs?: number;
}

/** What the operator forwards; `select`, `process`, `timeouts()` and `lateData()` read their kind. */
export type CepOutput<V> =
  | { kind: 'match'; match: Match<V> }
  | { kind: 'timeout'; match: Match<V>; timeoutTimestamp: number }
  | { kind: 'late'; event: V };

interface StoredNfa {
  /** Nodes of the shared buffer: [stage, event index, previous node index or -1]. */
  n: [string, number, number][];
  /** Events: [id, timestamp, value]. */
  e: [number, number, unknown][];
  /** Partial matches: [state, node index or -1, startTs, prevTs, startId]. */
  p: [number, number, number, number, number][];
  /** Completed matches held back by the skip strategy. */
  c: [number, number, number, number, number][];
}

/** One key's state as stored: NFA, events waiting for the watermark, next event id, pattern version. */
interface KeyState {
  nfa: StoredNfa | null;
  /** [timestamp, values in arrival order], ascending by timestamp. */
  buf: [number, unknown[]][];
  seq: number;
  pv: string;
  /** Earliest time at which advanceTime can change something (window end); null when none. */
  exp: number | null;
}

interface Live<V> {
  nfa: NfaState<V>;
  st: KeyState;
  /** The last frozen NFA and the arrays it was frozen from: NFA state is replaced, never mutated, on change. */
  frozen: StoredNfa | null;
  frozenFrom: [unknown, unknown] | null;
}

/** A pattern and the id that marks state built with it. */
interface Version<V> {
  id: string;
  pattern: Pattern<V>;
  nfa: Nfa<V>;
  json: unknown;
}

/** Diagnostics: one event per match, timeout and late event (free when no one subscribes). */
const matchChannel = channel('cep', 'match');
const timeoutChannel = channel('cep', 'timeout');
const lateChannel = channel('cep', 'late');
const patternChannel = channel('cep', 'pattern-updated');

const META_PATTERNS = '__patterns';
const META_WATERMARK = '__watermark';

function version<V>(pattern: Pattern<V>, id: string): Version<V> {
  let json: unknown = null;
  try {
    json = patternToJson(pattern);
  } catch {
    json = null; // function conditions: the pattern lives only in code
  }
  return { id, pattern, nfa: new Nfa<V>(compile(pattern)), json };
}

/**
 * A keyed stream matched against a pattern (Flink's PatternStream). Results go through one processor whose
 * NFA state lives in the streams state stores, so it is restored and committed with the job (exactly-once).
 */
export class PatternStream<K, V> {
  /** The operator's tagged output: matches, timeouts and late events. */
  readonly output: KStream<K, CepOutput<V>>;
  readonly storeNames: { nfa: string; meta: string };
  private current: Version<V>;
  private readonly perKey = new Map<string, Version<V>>();
  /** Bumped on every pattern change; processors re-read patterns when it moves. */
  epoch = 0;
  private nextId = 1;

  constructor(stream: KStream<K, V>, pattern: Pattern<V>, opts: CepOptions<V> = {}) {
    const name = opts.name ?? 'cep';
    this.storeNames = { nfa: `${name}-nfa`, meta: `${name}-meta` };
    this.current = version(pattern, 'v0');
    const builder = stream.builder;
    builder.addStateStore({ name: this.storeNames.nfa, type: 'keyValue' });
    builder.addStateStore({ name: this.storeNames.meta, type: 'keyValue' });
    const timeMode = opts.timeMode ?? 'event';
    if (timeMode !== 'event' && timeMode !== 'processing')
      throw invalidArgument('cep.timeMode', "'event' or 'processing'", timeMode);
    const ooo =
      opts.maxOutOfOrderness === undefined ? 0 : parseDuration(opts.maxOutOfOrderness, 'cep.maxOutOfOrderness');
    // Matching is per key within a task: a re-keyed stream goes through a repartition topic first, as a
    // Kafka Streams aggregation does, so that all events of a key meet in one task.
    const keyed = stream.keyChanged ? stream.repartition({ name: `${name}-repartition` }) : stream;
    this.output = keyed.process<K, CepOutput<V>>(
      () => new CepProcessor<K, V>(this, timeMode, ooo, opts.comparator, opts.timeoutCheckIntervalMs ?? 1000),
      this.storeNames.nfa,
      this.storeNames.meta,
    );
  }

  /**
   * Replaces the pattern in the running job. With `keys`, only those keys switch (the others keep their
   * pattern and partial matches); a switched key drops its partial matches but keeps events not yet processed.
   */
  updatePattern(pattern: Pattern<V>, opts: { keys?: K[] } = {}): void {
    const v = version(pattern, `v${this.nextId++}`);
    if (opts.keys === undefined) {
      this.current = v;
      this.perKey.clear();
    } else for (const k of opts.keys) this.perKey.set(JSON.stringify(k) ?? 'null', v);
    this.epoch++;
    publish(patternChannel, () => ({ store: this.storeNames.nfa, version: v.id, keys: opts.keys?.length ?? null }));
  }
  /** @internal */
  versionFor(encodedKey: string): Version<V> {
    return this.perKey.get(encodedKey) ?? this.current;
  }
  /** @internal the JSON form persisted in the meta store, so a restarted job resumes with the replaced patterns. */
  snapshotPatterns(): unknown {
    const perKey: Record<string, [string, unknown]> = {};
    for (const [k, v] of this.perKey) perKey[k] = [v.id, v.json];
    return { current: [this.current.id, this.current.json], perKey, nextId: this.nextId };
  }
  /** @internal */
  restorePatterns(snap: unknown): void {
    const s = snap as { current: [string, unknown]; perKey: Record<string, [string, unknown]>; nextId: number };
    if (s.current[0] !== this.current.id && s.current[1] !== null)
      this.current = version(patternFromJson<V>(s.current[1]), s.current[0]);
    for (const [k, [id, json]] of Object.entries(s.perKey))
      if (json !== null && this.perKey.get(k)?.id !== id) this.perKey.set(k, version(patternFromJson<V>(json), id));
    this.nextId = Math.max(this.nextId, s.nextId);
  }

  /** Matches mapped by `fn` (Flink's select). */
  select<R>(fn: (match: Match<V>, key: K, timestamp: number) => R): KStream<K, R> {
    return this.output
      .flatMapValues((v) => (v.kind === 'match' ? [v] : []))
      .process<K, R>(() => ({
        process(rec, ctx) {
          const m = rec.value as { match: Match<V> };
          ctx.forward({
            key: rec.key,
            value: fn(m.match, rec.key, rec.timestamp),
            timestamp: rec.timestamp,
            headers: [],
          });
        },
      }));
  }
  /** Matches handed to `fn`, which emits any number of results (Flink's PatternProcessFunction). */
  process<R>(fn: (match: Match<V>, ctx: { key: K; timestamp: number; emit(value: R): void }) => void): KStream<K, R> {
    return this.output.process<K, R>(() => ({
      process(rec, ctx) {
        if (rec.value.kind !== 'match') return;
        fn(rec.value.match, {
          key: rec.key,
          timestamp: rec.timestamp,
          emit: (value) => ctx.forward({ key: rec.key, value, timestamp: rec.timestamp, headers: [] }),
        });
      },
    }));
  }
  /** Partial matches that expired (within): their events so far and the timeout timestamp. */
  timeouts(): KStream<K, { match: Match<V>; timeoutTimestamp: number }> {
    return this.output.flatMapValues((v) =>
      v.kind === 'timeout' ? [{ match: v.match, timeoutTimestamp: v.timeoutTimestamp }] : [],
    );
  }
  /** Events that arrived at or behind the watermark (event-time mode). */
  lateData(): KStream<K, V> {
    return this.output.flatMapValues((v) => (v.kind === 'late' ? [v.event] : []));
  }
}

/** Flink's CEP entry point. */
export const CEP = {
  pattern<K, V>(stream: KStream<K, V>, pattern: Pattern<V>, opts: CepOptions<V> = {}): PatternStream<K, V> {
    return new PatternStream(stream, pattern, opts);
  },
};

class CepProcessor<K, V> implements Processor<K, V, K, CepOutput<V>> {
  private readonly owner: PatternStream<K, V>;
  private readonly mode: TimeMode;
  private readonly ooo: number;
  private readonly comparator: ((a: V, b: V) => number) | undefined;
  private readonly checkInterval: number;
  private store!: KeyValueStore<string, KeyState>;
  private meta!: KeyValueStore<string, unknown>;
  private ctx!: ProcessorContext<K, CepOutput<V>>;
  private readonly live = new Map<string, Live<V>>();
  private readonly keys = new Map<string, K>();
  /** Keys by due time; stale entries are skipped when popped. */
  private readonly due = new TimeHeap<string>();
  private watermark = Number.NEGATIVE_INFINITY;
  private epoch = -1;

  constructor(
    owner: PatternStream<K, V>,
    mode: TimeMode,
    ooo: number,
    comparator: ((a: V, b: V) => number) | undefined,
    checkInterval: number,
  ) {
    this.owner = owner;
    this.mode = mode;
    this.ooo = ooo;
    this.comparator = comparator;
    this.checkInterval = checkInterval;
  }

  init(ctx: ProcessorContext<K, CepOutput<V>>): void {
    this.ctx = ctx;
    this.store = ctx.getStateStore<KeyValueStore<string, KeyState>>(this.owner.storeNames.nfa);
    this.meta = ctx.getStateStore<KeyValueStore<string, unknown>>(this.owner.storeNames.meta);
    const wm = this.meta.get(META_WATERMARK);
    if (typeof wm === 'number') this.watermark = wm;
    const pats = this.meta.get(META_PATTERNS);
    if (pats !== null) this.owner.restorePatterns(pats);
    this.epoch = this.owner.epoch;
    // Timers are not stored: rebuild the due times of every key from its stored state.
    for (const [k, st] of this.store.all()) {
      const next = nextDue(st);
      if (next !== null) this.due.push(next, k);
    }
    if (this.mode === 'processing')
      ctx.schedule(this.checkInterval, 'wall-clock', (now) => {
        this.advanceDue(now, now);
      });
    // The engine's event time also moves the watermark, so that idle inputs (watermark mode) flush buffered events.
    else ctx.schedule(1, 'stream-time', (t) => this.advanceWatermark(t - this.ooo - 1));
  }

  private advanceWatermark(wm: number): void {
    if (!(wm > this.watermark)) return;
    this.watermark = wm;
    this.meta.put(META_WATERMARK, wm);
    this.advanceDue(wm, wm);
  }

  private syncPatterns(): void {
    if (this.epoch === this.owner.epoch) return;
    this.epoch = this.owner.epoch;
    this.meta.put(META_PATTERNS, this.owner.snapshotPatterns());
  }

  private load(ek: string): Live<V> {
    let l = this.live.get(ek);
    const v = this.owner.versionFor(ek);
    if (l === undefined) {
      const st = this.store.get(ek);
      if (st === null)
        l = {
          nfa: v.nfa.initialState(),
          st: { nfa: null, buf: [], seq: 0, pv: v.id, exp: null },
          frozen: null,
          frozenFrom: null,
        };
      else
        l = {
          nfa: st.nfa === null ? v.nfa.initialState() : thaw<V>(st.nfa),
          st: { ...st, buf: st.buf.slice() },
          frozen: null,
          frozenFrom: null,
        };
      this.live.set(ek, l);
    }
    if (l.st.pv !== v.id) {
      // The key's pattern changed: partial matches of the old pattern cannot continue in the new NFA.
      l.nfa = v.nfa.initialState();
      l.st.pv = v.id;
    }
    return l;
  }

  private save(ek: string, l: Live<V>): void {
    const nfa = this.owner.versionFor(ek).nfa;
    l.st.exp = expiry(nfa.compiled, l.nfa);
    const empty = l.st.buf.length === 0 && l.nfa.completed.length === 0 && l.nfa.partials.length <= 1;
    if (empty && l.nfa.partials.every((p) => p.startId < 0)) {
      // Nothing to remember but the event counter, which only needs to grow while partial matches exist.
      this.store.delete(ek);
      this.live.delete(ek);
      this.keys.delete(ek);
      return;
    }
    const from = l.frozenFrom;
    if (l.frozen === null || from === null || from[0] !== l.nfa.partials || from[1] !== l.nfa.completed) {
      l.frozen = freeze(l.nfa);
      l.frozenFrom = [l.nfa.partials, l.nfa.completed];
    }
    this.store.put(ek, { nfa: l.frozen, buf: l.st.buf.slice(), seq: l.st.seq, pv: l.st.pv, exp: l.st.exp });
    const next = nextDue(l.st);
    if (next !== null) this.due.push(next, ek);
  }

  process(rec: StreamRecord<K, V>, ctx: ProcessorContext<K, CepOutput<V>>): void {
    this.syncPatterns();
    const ek = JSON.stringify(rec.key) ?? 'null';
    this.keys.set(ek, rec.key);
    if (this.mode === 'processing') {
      const now = ctx.currentSystemTimeMs();
      const l = this.load(ek);
      this.runEvents(ek, rec.key, l, now, [rec.value]);
      this.save(ek, l);
      this.advanceDue(now, now);
      return;
    }
    if (rec.timestamp <= this.watermark) {
      publish(lateChannel, () => ({ taskId: ctx.taskId, timestamp: rec.timestamp, watermark: this.watermark }));
      ctx.forward({ key: rec.key, value: { kind: 'late', event: rec.value }, timestamp: rec.timestamp, headers: [] });
      return;
    }
    const l = this.load(ek);
    insertBuffered(l.st.buf, rec.timestamp, rec.value);
    this.save(ek, l);
    this.advanceWatermark(rec.timestamp - this.ooo - 1);
  }

  /** Flushes every key with buffered events or expiring partial matches at or before `upTo`. */
  private advanceDue(upTo: number, time: number): void {
    while (this.due.size > 0 && this.due.peek() <= upTo) {
      const ek = this.due.pop();
      const st = this.live.get(ek)?.st ?? this.store.get(ek);
      if (st === null) continue;
      const next = nextDue(st);
      if (next === null || next > upTo) continue; // stale entry
      const l = this.load(ek);
      const key = this.keyOf(ek);
      if (this.mode === 'event') {
        while (l.st.buf.length > 0 && (l.st.buf[0] as [number, unknown[]])[0] <= upTo) {
          const [ts, stored] = l.st.buf.shift() as [number, V[]];
          const values = this.comparator === undefined ? stored : [...stored].sort(this.comparator);
          this.runEvents(ek, key, l, ts, values);
        }
      }
      this.runAdvance(ek, key, l, time);
      this.save(ek, l);
    }
  }

  private keyOf(ek: string): K {
    let k = this.keys.get(ek);
    if (k === undefined) {
      k = JSON.parse(ek) as K;
      this.keys.set(ek, k);
    }
    return k;
  }

  private runEvents(ek: string, key: K, l: Live<V>, ts: number, values: V[]): void {
    const nfa = this.owner.versionFor(ek).nfa;
    this.runAdvance(ek, key, l, ts);
    for (const value of values) {
      const matches = nfa.process(l.nfa, { id: l.st.seq++, ts, value });
      for (const match of matches) this.emitMatch(key, match, ts);
    }
  }

  private runAdvance(ek: string, key: K, l: Live<V>, time: number): void {
    const nfa = this.owner.versionFor(ek).nfa;
    const { matches, timeouts } = nfa.advanceTime(l.nfa, time);
    for (const t of timeouts) this.emitTimeout(key, t);
    for (const match of matches) this.emitMatch(key, match, time);
  }

  private emitMatch(key: K, match: Match<V>, timestamp: number): void {
    publish(matchChannel, () => ({ taskId: this.ctx.taskId, timestamp }));
    this.ctx.forward({ key, value: { kind: 'match', match }, timestamp, headers: [] });
  }

  private emitTimeout(key: K, t: Timeout<V>): void {
    publish(timeoutChannel, () => ({ taskId: this.ctx.taskId, timestamp: t.timestamp }));
    this.ctx.forward({
      key,
      value: { kind: 'timeout', match: t.match, timeoutTimestamp: t.timestamp },
      timestamp: t.timestamp,
      headers: [],
    });
  }
}

function insertBuffered(buf: [number, unknown[]][], ts: number, value: unknown): void {
  let i = buf.length;
  while (i > 0 && (buf[i - 1] as [number, unknown[]])[0] > ts) i--;
  const prev = buf[i - 1];
  // Copy on write: the stored state may share these tuples.
  if (prev !== undefined && prev[0] === ts) buf[i - 1] = [ts, [...prev[1], value]];
  else buf.splice(i, 0, [ts, [value]]);
}

function nextDue(st: KeyState): number | null {
  const b = st.buf[0]?.[0];
  if (b === undefined) return st.exp;
  return st.exp === null ? b : Math.min(b, st.exp);
}

/** The earliest time at which a partial match of this key times out (or a pending match completes). */
function expiry<V>(c: CompiledNfa<V>, s: NfaState<V>): number | null {
  if (c.window === 0 && c.gapWindow === 0) return null;
  let min = Number.POSITIVE_INFINITY;
  for (const p of s.partials) {
    if (p.startId < 0) continue;
    if (c.window > 0) min = Math.min(min, p.startTs + c.window);
    if (c.gapWindow > 0) min = Math.min(min, p.prevTs + c.gapWindow);
  }
  return Number.isFinite(min) ? min : null;
}

/** Flattens the shared buffer to tables (shared nodes are written once). */
export function freeze<V>(s: NfaState<V>): StoredNfa {
  const nodes = new Map<BufNode<V>, number>();
  const evs = new Map<object, number>();
  const out: StoredNfa = { n: [], e: [], p: [], c: [] };
  const node = (n: BufNode<V> | null): number => {
    if (n === null) return -1;
    const seen = nodes.get(n);
    if (seen !== undefined) return seen;
    const prev = node(n.prev);
    let ei = evs.get(n.ev);
    if (ei === undefined) {
      ei = out.e.length;
      evs.set(n.ev, ei);
      out.e.push([n.ev.id, n.ev.ts, n.ev.value]);
    }
    const idx = out.n.length;
    out.n.push([n.stage, ei, prev]);
    nodes.set(n, idx);
    return idx;
  };
  const cs = (c: ComputationState<V>): [number, number, number, number, number] => [
    c.state,
    node(c.node),
    c.startTs,
    c.prevTs,
    c.startId,
  ];
  out.p = s.partials.map(cs);
  out.c = s.completed.map(cs);
  return out;
}

export function thaw<V>(s: StoredNfa): NfaState<V> {
  const evs = s.e.map(([id, ts, value]) => ({ id, ts, value: value as V }));
  const nodes: BufNode<V>[] = [];
  for (const [stage, ei, prev] of s.n)
    nodes.push({ stage, ev: evs[ei] as BufNode<V>['ev'], prev: prev < 0 ? null : (nodes[prev] as BufNode<V>) });
  const cs = ([state, n, startTs, prevTs, startId]: [number, number, number, number, number]): ComputationState<V> => ({
    state,
    node: n < 0 ? null : (nodes[n] as BufNode<V>),
    startTs,
    prevTs,
    startId,
  });
  return { partials: s.p.map(cs), completed: s.c.map(cs) };
}
