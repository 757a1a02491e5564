import { TimeHeap } from '../core/index.ts';
import { Node, withKeyValue, withValue } from './node.ts';
import type { KeyValueStoreImpl, SessionStoreImpl, WindowStoreImpl } from './stores.ts';
import { encodeKey } from './stores.ts';
import type { Change, StreamRecord, Window, Windowed } from './types.ts';
import type { SessionWindows, SlidingWindows, TimeWindows } from './windows.ts';

type Rec = StreamRecord<unknown, unknown>;
export type Initializer<A> = () => A;
export type Aggregator<K, V, A> = (key: K, value: V, aggregate: A) => A;
export type Merger<K, A> = (key: K, left: A, right: A) => A;

const change = (newValue: unknown, oldValue: unknown): Change<unknown> => ({
  newValue: newValue ?? null,
  oldValue: oldValue ?? null,
});

/** Base for nodes with state: resolves stores lazily after init. */
abstract class StatefulNode extends Node {
  /** Event time used for closing decisions: in stream-time mode it includes the record being processed. */
  protected now(ts: number): number {
    return this.time > ts ? this.time : this.watermarkMode ? this.time : ts;
  }
  protected get watermarkMode(): boolean {
    return this.task.watermarkMode;
  }
}

/** Materializes a KTable from its topic (or from a stream via toTable): forwards (new, old) changes. */
export class TableSourceNode extends StatefulNode {
  private store!: KeyValueStoreImpl<unknown, unknown>;
  private versions: KeyValueStoreImpl<unknown, [number, unknown][]> | undefined;
  private readonly storeName: string;
  private readonly versioned: { store: string; historyRetentionMs: number } | undefined;
  constructor(name: string, storeName: string, versioned?: { store: string; historyRetentionMs: number }) {
    super(name);
    this.storeName = storeName;
    this.versioned = versioned;
  }
  override init(task: Parameters<Node['init']>[0]): void {
    super.init(task);
    this.store = task.store(this.storeName) as KeyValueStoreImpl<unknown, unknown>;
    if (this.versioned !== undefined)
      this.versions = task.store(this.versioned.store) as KeyValueStoreImpl<unknown, [number, unknown][]>;
  }
  process(rec: Rec): void {
    if (rec.key === null || rec.key === undefined) {
      this.task.metrics.skippedRecords++;
      return;
    }
    if (this.versions !== undefined && this.versioned !== undefined) {
      // Versioned table: keep every version within the history retention (plus the one valid at its start).
      const list = [...(this.versions.get(rec.key) ?? [])];
      let i = list.length;
      while (i > 0 && (list[i - 1] as [number, unknown])[0] > rec.timestamp) i--;
      if (i > 0 && (list[i - 1] as [number, unknown])[0] === rec.timestamp) list[i - 1] = [rec.timestamp, rec.value];
      else list.splice(i, 0, [rec.timestamp, rec.value]);
      const horizon = this.now(rec.timestamp) - this.versioned.historyRetentionMs;
      let drop = 0;
      while (drop + 1 < list.length && (list[drop + 1] as [number, unknown])[0] <= horizon) drop++;
      this.versions.putWithTimestamp(rec.key, list.slice(drop), rec.timestamp);
      // An out-of-order update is history: the latest value stays the newest version.
      if ((list.at(-1) as [number, unknown])[0] > rec.timestamp) return;
    }
    const old = this.store.get(rec.key);
    if (old === null && rec.value === null) return;
    this.store.putWithTimestamp(rec.key, rec.value, rec.timestamp);
    this.forward(withValue(rec, change(rec.value, old)));
  }
}

/** filter / filterNot / mapValues on a KTable: applies to the new value, materializes, forwards the change. */
export class TableTransformNode extends StatefulNode {
  private store!: KeyValueStoreImpl<unknown, unknown>;
  private readonly storeName: string;
  private readonly fn: (key: unknown, value: unknown) => unknown;
  constructor(name: string, storeName: string, fn: (key: unknown, value: unknown) => unknown) {
    super(name);
    this.storeName = storeName;
    this.fn = fn;
  }
  override init(task: Parameters<Node['init']>[0]): void {
    super.init(task);
    this.store = task.store(this.storeName) as KeyValueStoreImpl<unknown, unknown>;
  }
  process(rec: Rec): void {
    const c = rec.value as Change<unknown>;
    const next = c.newValue === null ? null : (this.fn(rec.key, c.newValue) ?? null);
    const old = this.store.get(rec.key);
    if (next === null && old === null) return;
    this.store.putWithTimestamp(rec.key, next, rec.timestamp);
    this.forward(withValue(rec, change(next, old)));
  }
}

/** KGroupedStream count/reduce/aggregate into a key-value store. */
export class AggregateNode extends StatefulNode {
  private store!: KeyValueStoreImpl<unknown, unknown>;
  private readonly storeName: string;
  private readonly init0: Initializer<unknown>;
  private readonly agg: Aggregator<unknown, unknown, unknown>;
  constructor(name: string, storeName: string, init: Initializer<unknown>, agg: Aggregator<unknown, unknown, unknown>) {
    super(name);
    this.storeName = storeName;
    this.init0 = init;
    this.agg = agg;
  }
  override init(task: Parameters<Node['init']>[0]): void {
    super.init(task);
    this.store = task.store(this.storeName) as KeyValueStoreImpl<unknown, unknown>;
  }
  process(rec: Rec): void {
    if (rec.key === null || rec.key === undefined || rec.value === null || rec.value === undefined) {
      this.task.metrics.skippedRecords++;
      return;
    }
    const old = this.store.getWithTimestamp(rec.key);
    const next = this.agg(rec.key, rec.value, old === null ? this.init0() : old[0]);
    const ts = old === null ? rec.timestamp : Math.max(old[1], rec.timestamp);
    this.store.putWithTimestamp(rec.key, next, ts);
    this.forward({ key: rec.key, value: change(next, old?.[0]), timestamp: ts, headers: rec.headers });
  }
}

/** Turns a KTable change into subtract(old)/add(new) records for re-grouping by a new key. */
export function tableRegroup(
  selector: (key: unknown, value: unknown) => [unknown, unknown],
): (rec: Rec, node: Node) => void {
  return (rec, node) => {
    const c = rec.value as Change<unknown>;
    if (c.oldValue !== null) {
      const [k, v] = selector(rec.key, c.oldValue);
      node.forward(withKeyValue(rec, k, { s: v }));
    }
    if (c.newValue !== null) {
      const [k, v] = selector(rec.key, c.newValue);
      node.forward(withKeyValue(rec, k, { a: v }));
    }
  };
}

/** KGroupedTable aggregate: adder for new values, subtractor for replaced ones. */
export class TableAggregateNode extends StatefulNode {
  private store!: KeyValueStoreImpl<unknown, unknown>;
  private readonly storeName: string;
  private readonly init0: Initializer<unknown>;
  private readonly adder: Aggregator<unknown, unknown, unknown>;
  private readonly subtractor: Aggregator<unknown, unknown, unknown>;
  constructor(
    name: string,
    storeName: string,
    init: Initializer<unknown>,
    adder: Aggregator<unknown, unknown, unknown>,
    subtractor: Aggregator<unknown, unknown, unknown>,
  ) {
    super(name);
    this.storeName = storeName;
    this.init0 = init;
    this.adder = adder;
    this.subtractor = subtractor;
  }
  override init(task: Parameters<Node['init']>[0]): void {
    super.init(task);
    this.store = task.store(this.storeName) as KeyValueStoreImpl<unknown, unknown>;
  }
  process(rec: Rec): void {
    if (rec.key === null || rec.key === undefined) return;
    const op = rec.value as { a?: unknown; s?: unknown };
    const old = this.store.getWithTimestamp(rec.key);
    const base = old === null ? this.init0() : old[0];
    const next = 'a' in op ? this.adder(rec.key, op.a, base) : this.subtractor(rec.key, op.s, base);
    const ts = old === null ? rec.timestamp : Math.max(old[1], rec.timestamp);
    this.store.putWithTimestamp(rec.key, next, ts);
    this.forward({ key: rec.key, value: change(next, old?.[0]), timestamp: ts, headers: rec.headers });
  }
}

/**
 * Tumbling/hopping window aggregation (Kafka Streams' KStreamWindowAggregate): emits every update, or with
 * `emitTimeStore` (EmitStrategy.onWindowClose) each window's final value once event time passes its end plus grace.
 */
export class WindowAggregateNode extends StatefulNode {
  private store!: WindowStoreImpl<unknown, unknown>;
  private readonly storeName: string;
  private readonly windows: TimeWindows;
  private readonly init0: Initializer<unknown>;
  private readonly agg: Aggregator<unknown, unknown, unknown>;
  private readonly emitTimeStoreName: string | null;
  private emitTime: KeyValueStoreImpl<string, number> | null = null;
  /** Emit-final: the keys of each window not emitted yet, by window start (starts ascending in `openStarts`). */
  private readonly openKeys = new Map<number, unknown[]>();
  private openStarts: number[] = [];
  /** Emit-final: the latest window start written (the store drops windows past retention from it). */
  private latestStart = Number.NEGATIVE_INFINITY;
  constructor(
    name: string,
    storeName: string,
    windows: TimeWindows,
    init: Initializer<unknown>,
    agg: Aggregator<unknown, unknown, unknown>,
    emitTimeStoreName: string | null = null,
  ) {
    super(name);
    this.storeName = storeName;
    this.windows = windows;
    this.init0 = init;
    this.agg = agg;
    this.emitTimeStoreName = emitTimeStoreName;
  }
  override init(task: Parameters<Node['init']>[0]): void {
    super.init(task);
    this.store = task.store(this.storeName) as WindowStoreImpl<unknown, unknown>;
    if (this.emitTimeStoreName === null) return;
    this.emitTime = task.store(this.emitTimeStoreName) as KeyValueStoreImpl<string, number>;
    // Windows ending at or before the emitted time minus grace have been emitted.
    const emittedUpTo = this.emitTime.get(EMITTED) ?? Number.NEGATIVE_INFINITY;
    // Restored state: the windows not emitted before the restart are open again.
    for (const e of this.store.all())
      if (e.start + this.windows.sizeMs + this.windows.graceMs > emittedUpTo) this.track(e.start, e.key);
  }
  private track(start: number, key: unknown): void {
    let keys = this.openKeys.get(start);
    if (keys === undefined) {
      keys = [];
      this.openKeys.set(start, keys);
      const starts = this.openStarts;
      let i = starts.length;
      while (i > 0 && (starts[i - 1] as number) > start) i--;
      starts.splice(i, 0, start);
    }
    keys.push(key);
  }
  process(rec: Rec): void {
    if (rec.key === null || rec.key === undefined || rec.value === null || rec.value === undefined) {
      this.task.metrics.skippedRecords++;
      return;
    }
    const closeTime = this.now(rec.timestamp) - this.windows.graceMs;
    const final = this.emitTime !== null;
    const windows = this.windows.windowsFor(rec.timestamp);
    if (final && windows.length > 0 && (windows[windows.length - 1] as Window).start > this.latestStart) {
      // Writing a later window makes the store drop windows past retention. In watermark mode an open window can
      // get there before the watermark passes its end (retention = size + grace, out-of-orderness > 0): emit it
      // first, with the value it ends with (no record can change a window the store dropped).
      this.latestStart = (windows[windows.length - 1] as Window).start;
      const horizon = this.latestStart - this.store.retentionMs;
      if (this.openStarts.length > 0 && (this.openStarts[0] as number) < horizon)
        this.emitOpen((start) => start < horizon);
    }
    for (const w of windows) {
      if (w.end <= closeTime) {
        this.task.metrics.droppedRecords++;
        this.task.metrics.maxLateness = Math.max(
          this.task.metrics.maxLateness,
          closeTime + this.windows.graceMs - rec.timestamp,
        );
        continue;
      }
      const old = this.store.fetchWithTimestamp(rec.key, w.start);
      const oldValue = old === null ? undefined : old[0];
      const next = this.agg(rec.key, rec.value, old === null ? this.init0() : oldValue);
      const ts = old === null ? rec.timestamp : Math.max(old[1], rec.timestamp);
      this.store.update(rec.key, w.start, old, next, ts);
      if (final) {
        if (old === null) this.track(w.start, rec.key);
        continue;
      }
      const key: Windowed<unknown> = { key: rec.key, window: w };
      this.forward({ key, value: change(next, oldValue), timestamp: ts, headers: rec.headers });
    }
  }
  protected override advance(t: number): void {
    if (this.emitTime === null) return;
    const { sizeMs, graceMs } = this.windows;
    if (this.emitOpen((start) => start + sizeMs + graceMs <= t)) this.emitTime.put(EMITTED, t);
  }
  /** Emits the open windows whose start passes `closed` (a prefix of the starts); returns whether there were any. */
  private emitOpen(closed: (start: number) => boolean): boolean {
    const { sizeMs } = this.windows;
    const starts = this.openStarts;
    let n = 0;
    while (n < starts.length && closed(starts[n] as number)) n++;
    if (n === 0) return false;
    for (const start of starts.slice(0, n)) {
      const keys = this.openKeys.get(start) as unknown[];
      this.openKeys.delete(start);
      const window: Window = { start, end: start + sizeMs };
      for (const key of keys) {
        const pair = this.store.fetchWithTimestamp(key, start);
        if (pair === null) continue;
        this.forward({ key: { key, window }, value: change(pair[0], null), timestamp: pair[1], headers: [] });
      }
    }
    this.openStarts = starts.slice(n);
    return true;
  }
}

const EMITTED = 'emitted';
/** The change an open session's buffer entry holds: unused (the value is read from the store at emission). */
const FINAL: Change<unknown> = { newValue: null, oldValue: null };

/**
 * Sliding windows (Kafka Streams' SlidingWindows semantics). For each record at t the windows are [t-d, t] and,
 * when a later record falls in (t, t+d], [t+1, t+1+d]. Aggregates are recomputed from the raw records of the key
 * kept for 2d + grace (a raw-record buffer instead of Kafka's incremental window reuse: simpler and exact).
 */
export class SlidingAggregateNode extends StatefulNode {
  private store!: WindowStoreImpl<unknown, unknown>;
  private raw!: KeyValueStoreImpl<unknown, [number, unknown, number][]>;
  private readonly storeName: string;
  private readonly rawStoreName: string;
  private readonly windows: SlidingWindows;
  private readonly init0: Initializer<unknown>;
  private readonly agg: Aggregator<unknown, unknown, unknown>;
  private seq = 0;
  constructor(
    name: string,
    storeName: string,
    rawStoreName: string,
    windows: SlidingWindows,
    init: Initializer<unknown>,
    agg: Aggregator<unknown, unknown, unknown>,
  ) {
    super(name);
    this.storeName = storeName;
    this.rawStoreName = rawStoreName;
    this.windows = windows;
    this.init0 = init;
    this.agg = agg;
  }
  override init(task: Parameters<Node['init']>[0]): void {
    super.init(task);
    this.store = task.store(this.storeName) as WindowStoreImpl<unknown, unknown>;
    this.raw = task.store(this.rawStoreName) as KeyValueStoreImpl<unknown, [number, unknown, number][]>;
  }
  process(rec: Rec): void {
    if (rec.key === null || rec.key === undefined || rec.value === null || rec.value === undefined) {
      this.task.metrics.skippedRecords++;
      return;
    }
    const d = this.windows.timeDifferenceMs;
    const closeTime = this.now(rec.timestamp) - this.windows.graceMs;
    const t = rec.timestamp;
    // Records that can still matter: any open window reaches back at most d before its end.
    const keep = closeTime - 2 * d - 1;
    const before = (this.raw.get(rec.key) ?? []).filter((r) => r[0] >= keep);
    const after = [...before, [t, rec.value, this.seq++] as [number, unknown, number]];
    after.sort((a, b) => a[0] - b[0] || a[2] - b[2]);
    this.raw.putWithTimestamp(rec.key, after, t);
    const times = after.map((r) => r[0]);
    const hasIn = (lo: number, hi: number): boolean => times.some((x) => x >= lo && x <= hi);
    // Candidate windows: those containing t, plus the new right window of t.
    const starts = new Set<number>();
    for (const x of times) {
      if (x >= t && x - d <= t) starts.add(x - d); // left window of x contains t
      if (x < t && x + 1 <= t && t <= x + 1 + d && hasIn(x + 1, x + d)) starts.add(x + 1); // right window of x
    }
    // The right window of t does not contain t: it only needs emitting when it is new.
    if (hasIn(t + 1, t + d) && this.store.fetch(rec.key, t + 1) === null) starts.add(t + 1);
    for (const start of [...starts].sort((a, b) => a - b)) {
      const end = start + d;
      if (end <= closeTime) {
        if (start <= t) this.task.metrics.droppedRecords++;
        continue;
      }
      let acc = this.init0();
      let maxTs = Number.NEGATIVE_INFINITY;
      for (const r of after)
        if (r[0] >= start && r[0] <= end) {
          acc = this.agg(rec.key, r[1], acc);
          if (r[0] > maxTs) maxTs = r[0];
        }
      const old = this.store.fetch(rec.key, start);
      this.store.put(rec.key, acc, start, maxTs);
      const key: Windowed<unknown> = { key: rec.key, window: { start, end } };
      this.forward({ key, value: change(acc, old), timestamp: maxTs, headers: rec.headers });
    }
  }
}

/** Session windows with merging (Kafka Streams' KStreamSessionWindowAggregate). */
export class SessionAggregateNode extends StatefulNode {
  private store!: SessionStoreImpl<unknown, unknown>;
  private readonly storeName: string;
  private readonly windows: SessionWindows;
  private readonly init0: Initializer<unknown>;
  private readonly agg: Aggregator<unknown, unknown, unknown>;
  private readonly merger: Merger<unknown, unknown>;
  private readonly emitTimeStoreName: string | null;
  private emitTime: KeyValueStoreImpl<string, number> | null = null;
  /**
   * Emit-final: the sessions not emitted yet, by key then start (a growing session keeps its start), in the keyed
   * buffer suppress uses for sessions; an entry's timestamp is its session's end.
   */
  private readonly open = new KeyedBuffer();
  constructor(
    name: string,
    storeName: string,
    windows: SessionWindows,
    init: Initializer<unknown>,
    agg: Aggregator<unknown, unknown, unknown>,
    merger: Merger<unknown, unknown>,
    emitTimeStoreName: string | null = null,
  ) {
    super(name);
    this.storeName = storeName;
    this.windows = windows;
    this.init0 = init;
    this.agg = agg;
    this.merger = merger;
    this.emitTimeStoreName = emitTimeStoreName;
  }
  override init(task: Parameters<Node['init']>[0]): void {
    super.init(task);
    this.store = task.store(this.storeName) as SessionStoreImpl<unknown, unknown>;
    if (this.emitTimeStoreName === null) return;
    this.emitTime = task.store(this.emitTimeStoreName) as KeyValueStoreImpl<string, number>;
    const emittedUpTo = this.emitTime.get(EMITTED) ?? Number.NEGATIVE_INFINITY;
    // Restored state: the sessions not emitted before the restart are open again.
    for (const s of this.store.all()) if (this.dueOf(s.end) > emittedUpTo) this.track(s.key, s.start, s.end);
  }
  /** A session closes once event time passes its end plus grace (its end is inclusive). */
  private dueOf(end: number): number {
    return end + this.windows.graceMs + 1;
  }
  private track(key: unknown, start: number, end: number): void {
    const k = encodeKey(key);
    const due = this.dueOf(end);
    const b = this.open.get(Number.NaN, k, start);
    if (b === undefined) this.open.set(due, k, start, { key, value: FINAL, timestamp: end, due, seq: 0, headers: [] });
    else {
      b.timestamp = end;
      b.due = due;
      this.open.set(due, k, start, b);
    }
  }
  process(rec: Rec): void {
    this.aggregate(rec);
    // In stream-time mode sessions close after the record that moved time is in: it may still merge into a session
    // its time makes due (the gap reaches further back than the grace), as Kafka Streams emits after processing.
    if (this.emitTime !== null && !this.watermarkMode) this.emitClosed(this.now(rec.timestamp));
  }
  private aggregate(rec: Rec): void {
    if (rec.key === null || rec.key === undefined || rec.value === null || rec.value === undefined) {
      this.task.metrics.skippedRecords++;
      return;
    }
    const t = rec.timestamp;
    const gap = this.windows.gapMs;
    const closeTime = this.now(t) - this.windows.graceMs;
    const overlapping = this.store.findSessions(rec.key, t - gap, t + gap);
    let acc = this.init0();
    let start = t;
    let end = t;
    for (const s of overlapping) {
      acc = this.merger(rec.key, acc, s.value);
      start = Math.min(start, s.start);
      end = Math.max(end, s.end);
    }
    if (end < closeTime) {
      this.task.metrics.droppedRecords++;
      this.task.metrics.maxLateness = Math.max(this.task.metrics.maxLateness, closeTime - end);
      return;
    }
    const final = this.emitTime !== null;
    for (const s of overlapping) {
      this.store.remove(rec.key, s.start, s.end);
      if (final) {
        // The merged session keeps the earliest start: its entry is the one track() updates below.
        if (s.start !== start) this.open.delete(Number.NaN, encodeKey(rec.key), s.start);
        continue;
      }
      const key: Windowed<unknown> = { key: rec.key, window: { start: s.start, end: s.end } };
      this.forward({ key, value: change(null, s.value), timestamp: s.end, headers: rec.headers });
    }
    acc = this.agg(rec.key, rec.value, acc);
    this.store.put(rec.key, start, end, acc);
    if (final) {
      this.track(rec.key, start, end);
      return;
    }
    const key: Windowed<unknown> = { key: rec.key, window: { start, end } };
    this.forward({ key, value: change(acc, null), timestamp: end, headers: rec.headers });
  }
  protected override advance(t: number): void {
    // In watermark mode the watermark closes sessions, also when no record arrives.
    if (this.watermarkMode) this.emitClosed(t);
  }
  private emitClosed(t: number): void {
    const emitTime = this.emitTime;
    if (emitTime === null || !(this.open.nextDue() <= t)) return;
    const closed: { key: unknown; start: number; end: number }[] = [];
    this.open.takeDue(t, (_k, start, b) => closed.push({ key: b.key, start, end: b.timestamp }));
    // Sessions close in end order; among equal ends, by start.
    closed.sort((a, b) => a.end - b.end || a.start - b.start);
    for (const s of closed) {
      const found = this.store.findSessions(s.key, s.end, s.start).find((x) => x.start === s.start && x.end === s.end);
      if (found === undefined) continue;
      const window: Window = { start: s.start, end: s.end };
      this.forward({ key: { key: s.key, window }, value: change(found.value, null), timestamp: s.end, headers: [] });
    }
    emitTime.put(EMITTED, t);
  }
}

export type SuppressMode =
  | { kind: 'untilWindowCloses'; window: 'time' | 'session'; graceMs: number }
  | { kind: 'untilTimeLimit'; limitMs: number };

interface Buffered {
  key: unknown;
  value: Change<unknown>;
  timestamp: number;
  due: number;
  seq: number;
  headers: StreamRecord<unknown, unknown>['headers'];
}

/**
 * suppress(): holds the latest change per key until its window closes (final results) or a time limit passes.
 * The buffer is mirrored in a logged key-value store so that it survives restarts under exactly-once (only when
 * that store is persisted or logged).
 */
export class SuppressNode extends StatefulNode {
  private store!: KeyValueStoreImpl<string, Buffered>;
  private readonly storeName: string;
  private readonly mode: SuppressMode;
  private readonly buffer: DueBuffer;
  private mirror = true;
  private seq = 0;
  private observed = Number.NEGATIVE_INFINITY;
  constructor(name: string, storeName: string, mode: SuppressMode) {
    super(name);
    this.storeName = storeName;
    this.mode = mode;
    // Time windows: every key of a window shares its due time, so group by it. Sessions and time limits: due
    // times differ per key.
    this.buffer = mode.kind === 'untilWindowCloses' && mode.window === 'time' ? new GroupedBuffer() : new KeyedBuffer();
  }
  override init(task: Parameters<Node['init']>[0]): void {
    super.init(task);
    this.store = task.store(this.storeName) as KeyValueStoreImpl<string, Buffered>;
    // The mirror only serves restarts: a store that is neither persisted nor logged would be written for nothing.
    this.mirror = this.store.durable;
    for (const [, b] of this.store.all()) {
      this.buffer.set(b.due, this.keyOf(b.key), this.subOf(b.key), b);
      this.seq = Math.max(this.seq, b.seq + 1);
      this.observed = Math.max(this.observed, b.timestamp);
    }
  }
  /** The buffer key: the record key (of a windowed key, the inner one). */
  private keyOf(key: unknown): string {
    return encodeKey(this.mode.kind === 'untilTimeLimit' ? key : (key as Windowed<unknown>).key);
  }
  /**
   * Second part of the buffer key: the window start of sessions (a session that grows keeps its start); the
   * windows of one time-window suppression share one size, so there the due time fixes the window.
   */
  private subOf(key: unknown): number {
    return this.mode.kind === 'untilWindowCloses' && this.mode.window === 'session'
      ? (key as Windowed<unknown>).window.start
      : 0;
  }
  process(rec: Rec): void {
    const k = this.keyOf(rec.key);
    const sub = this.subOf(rec.key);
    let due: number;
    let prev: Buffered | undefined;
    if (this.mode.kind === 'untilTimeLimit') {
      prev = this.buffer.get(Number.NaN, k, sub);
      // A newer value replaces the buffered one but does not restart its timer (Kafka Streams untilTimeLimit).
      due = prev === undefined ? rec.timestamp + this.mode.limitMs : prev.due;
    } else {
      // Time windows close at end + grace (end exclusive); sessions one ms later (end inclusive).
      const w = (rec.key as Windowed<unknown>).window;
      due = w.end + this.mode.graceMs + (this.mode.window === 'session' ? 1 : 0);
      prev = this.buffer.get(due, k, sub);
    }
    const c = rec.value as Change<unknown>;
    if (c.newValue === null && this.mode.kind === 'untilWindowCloses') {
      // Final results never emit tombstones: drop what is buffered for the key rather than buffer the tombstone
      // (merged sessions would otherwise leave one per merge in the buffer until their window closes).
      if (prev !== undefined) {
        this.buffer.delete(prev.due, k, sub);
        if (this.mirror) this.store.delete(mirrorKey(prev.due, k, sub));
      }
      if (rec.timestamp > this.observed) this.observed = rec.timestamp;
      this.evict(this.watermarkMode ? this.time : this.observed);
      return;
    }
    if (prev !== undefined && prev.due !== due) {
      // A session that grew without a tombstone for its earlier extent: the new one replaces it.
      this.buffer.delete(prev.due, k, sub);
      if (this.mirror) this.store.delete(mirrorKey(prev.due, k, sub));
    }
    let b: Buffered;
    if (prev !== undefined && prev.due === due) {
      // The buffer's own objects (forwarded only once taken out): updated in place, nothing allocated per record.
      // The old value stays the oldest so that the emitted change spans everything suppressed.
      // Its key equals the record's (same due time and key). Headers are the latest record's; two empty lists are
      // alike, and keeping the old one keeps the record's young objects out of the buffer.
      b = prev;
      b.value.newValue = c.newValue;
      b.timestamp = rec.timestamp;
      if (rec.headers.length > 0 || b.headers.length > 0) b.headers = rec.headers;
    } else {
      b = {
        key: rec.key,
        value: { newValue: c.newValue, oldValue: prev === undefined ? c.oldValue : prev.value.oldValue },
        timestamp: rec.timestamp,
        due,
        seq: prev === undefined ? this.seq++ : prev.seq,
        headers: rec.headers,
      };
      this.buffer.set(due, k, sub, b);
    }
    if (this.mirror) this.store.put(mirrorKey(due, k, sub), b);
    // Kafka Streams evicts only when a record arrives (its time = max timestamp seen by this processor), so a
    // tombstone that follows a record in the same step is buffered before anything is emitted.
    if (rec.timestamp > this.observed) this.observed = rec.timestamp;
    this.evict(this.watermarkMode ? this.time : this.observed);
  }
  protected override advance(t: number): void {
    // In watermark mode windows close on the watermark alone, also when no record arrives.
    if (this.watermarkMode) this.evict(t);
  }
  private evict(now: number): void {
    if (!(this.buffer.nextDue() <= now)) return;
    const due: Buffered[] = [];
    this.buffer.takeDue(now, (k, sub, b) => {
      due.push(b);
      if (this.mirror) this.store.delete(mirrorKey(b.due, k, sub));
    });
    if (due.length === 0) return;
    due.sort(
      (a, b) =>
        a.timestamp - b.timestamp ||
        ((a.key as Windowed<unknown>).window?.start ?? 0) - ((b.key as Windowed<unknown>).window?.start ?? 0) ||
        a.seq - b.seq,
    );
    for (const b of due) {
      // Final results never need tombstones for windows that ended up empty.
      if (this.mode.kind === 'untilWindowCloses' && b.value.newValue === null) continue;
      this.forward({ key: b.key, value: b.value, timestamp: b.timestamp, headers: b.headers });
    }
  }
}

const mirrorKey = (due: number, key: string, sub: number): string => `${due}|${sub}|${key}`;

/**
 * The suppression buffer: changes by (key, sub), taken out in due-time order. Keys are two parts rather than one
 * composed string: building and hashing "<key>@<epoch ms>" strings per record costs several times more.
 */
interface DueBuffer {
  /** `due` is NaN when unknown (time limits: the key's first arrival fixed it). */
  get(due: number, key: string, sub: number): Buffered | undefined;
  set(due: number, key: string, sub: number, b: Buffered): void;
  delete(due: number, key: string, sub: number): void;
  /** The earliest due time buffered (+Infinity when empty; may be a group emptied since). */
  nextDue(): number;
  /** Removes every entry due at `now` or earlier, calling `each` for it. */
  takeDue(now: number, each: (key: string, sub: number, b: Buffered) => void): void;
}

/** Grouped by due time: one Map per group, a heap of the groups (time windows: `sub` is unused). */
class GroupedBuffer implements DueBuffer {
  private readonly groups = new Map<number, Map<string, Buffered>>();
  private readonly heap = new TimeHeap<number>();
  // The group of the last due time looked up: a record's set follows its get.
  private lastDue = Number.NaN;
  private lastGroup: Map<string, Buffered> | undefined;
  private group(due: number): Map<string, Buffered> | undefined {
    if (due !== this.lastDue) {
      this.lastDue = due;
      this.lastGroup = this.groups.get(due);
    }
    return this.lastGroup;
  }
  get(due: number, key: string): Buffered | undefined {
    return this.group(due)?.get(key);
  }
  set(due: number, key: string, _sub: number, b: Buffered): void {
    let g = this.group(due);
    if (g === undefined) {
      g = new Map();
      this.groups.set(due, g);
      this.heap.push(due, due);
      this.lastGroup = g;
    }
    g.set(key, b);
  }
  delete(due: number, key: string): void {
    this.groups.get(due)?.delete(key);
  }
  nextDue(): number {
    return this.heap.peek();
  }
  takeDue(now: number, each: (key: string, sub: number, b: Buffered) => void): void {
    while (this.heap.peek() <= now) {
      const d = this.heap.pop();
      const g = this.groups.get(d);
      if (g === undefined) continue;
      this.groups.delete(d);
      if (d === this.lastDue) this.lastDue = Number.NaN;
      for (const [k, b] of g) each(k, 0, b);
    }
  }
}

/** A (key, sub) of the keyed buffer: its change (if any) and the due time of its one heap entry. */
interface Slot {
  key: string;
  sub: number;
  b: Buffered | undefined;
  /** Due time of the slot's heap entry, or NaN when it has none. */
  queued: number;
}

/**
 * Slots by key then sub, and a heap with at most one entry per slot: a slot whose due time moved later (a growing
 * session) keeps its entry, which is pushed again with the new due time when it comes up.
 */
class KeyedBuffer implements DueBuffer {
  private readonly slots = new Map<string, Map<number, Slot>>();
  private readonly heap = new TimeHeap<Slot>();
  get(_due: number, key: string, sub: number): Buffered | undefined {
    return this.slots.get(key)?.get(sub)?.b;
  }
  set(_due: number, key: string, sub: number, b: Buffered): void {
    let m = this.slots.get(key);
    if (m === undefined) {
      m = new Map();
      this.slots.set(key, m);
    }
    let slot = m.get(sub);
    if (slot === undefined) {
      slot = { key, sub, b, queued: Number.NaN };
      m.set(sub, slot);
    } else slot.b = b;
    if (!(slot.queued <= b.due)) {
      slot.queued = b.due;
      this.heap.push(b.due, slot);
    }
  }
  delete(_due: number, key: string, sub: number): void {
    const slot = this.slots.get(key)?.get(sub);
    if (slot !== undefined) slot.b = undefined;
  }
  nextDue(): number {
    return this.heap.peek();
  }
  takeDue(now: number, each: (key: string, sub: number, b: Buffered) => void): void {
    const heap = this.heap;
    while (heap.peek() <= now) {
      const due = heap.peek();
      const slot = heap.pop();
      if (slot.queued !== due) continue; // superseded by an earlier entry of the slot
      const b = slot.b;
      if (b !== undefined && b.due > now) {
        slot.queued = b.due;
        heap.push(b.due, slot);
        continue;
      }
      const m = this.slots.get(slot.key);
      m?.delete(slot.sub);
      if (m !== undefined && m.size === 0) this.slots.delete(slot.key);
      if (b !== undefined) each(slot.key, slot.sub, b);
    }
  }
}

/**
 * Kafka Streams' record cache for an aggregation's output: keeps the latest change per key and forwards it when
 * the task commits, so a key updated many times between commits is emitted once (old value = the value before
 * the first held update). Changes whose new and old values are both null are dropped.
 */
export class CacheNode extends Node {
  /** Held updates in first-arrival order (flushed in that order). */
  private held: { rec: Rec }[] = [];
  /** Key -> held entry; windowed keys: inner key -> window start -> window end -> held entry (no key text built). */
  private readonly index = new Map<string, unknown>();
  private readonly windowed: boolean;
  constructor(name: string, windowed = false) {
    super(name);
    this.windowed = windowed;
  }
  private slotMap(key: unknown): [Map<unknown, unknown>, unknown] {
    if (!this.windowed) return [this.index, encodeKey(key)];
    const w = key as Windowed<unknown>;
    const k = encodeKey(w.key);
    let byStart = this.index.get(k) as Map<number, Map<number, unknown>> | undefined;
    if (byStart === undefined) {
      byStart = new Map();
      this.index.set(k, byStart);
    }
    let byEnd = byStart.get(w.window.start);
    if (byEnd === undefined) {
      byEnd = new Map();
      byStart.set(w.window.start, byEnd);
    }
    return [byEnd as Map<unknown, unknown>, w.window.end];
  }
  process(rec: Rec): void {
    const [m, k] = this.slotMap(rec.key);
    const prev = m.get(k) as { rec: Rec } | undefined;
    if (prev === undefined) {
      const entry = { rec };
      m.set(k, entry);
      this.held.push(entry);
      return;
    }
    const c = rec.value as Change<unknown>;
    prev.rec = { ...rec, value: change(c.newValue, (prev.rec.value as Change<unknown>).oldValue) };
  }
  override flushCache(): void {
    if (this.held.length === 0) return;
    const all = this.held;
    this.held = [];
    this.index.clear();
    for (const { rec: r } of all) {
      const c = r.value as Change<unknown>;
      if (c.newValue === null && c.oldValue === null) continue;
      this.forward(r);
    }
  }
}
