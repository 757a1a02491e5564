import { Node } from './node.ts';
import type { KeyValueStoreImpl, SessionStoreImpl, WindowStoreImpl } from './stores.ts';
import { encodeKey } from './stores.ts';
import type { Change, StreamRecord, Windowed } from './types.ts';
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
    this.forward({ ...rec, value: change(rec.value, old) });
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
    this.forward({ ...rec, value: change(next, old) });
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
      node.forward({ ...rec, key: k, value: { s: v } });
    }
    if (c.newValue !== null) {
      const [k, v] = selector(rec.key, c.newValue);
      node.forward({ ...rec, key: k, value: { a: v } });
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

/** Tumbling/hopping window aggregation (Kafka Streams' KStreamWindowAggregate with eager emission). */
export class WindowAggregateNode extends StatefulNode {
  private store!: WindowStoreImpl<unknown, unknown>;
  private readonly storeName: string;
  private readonly windows: TimeWindows;
  private readonly init0: Initializer<unknown>;
  private readonly agg: Aggregator<unknown, unknown, unknown>;
  constructor(
    name: string,
    storeName: string,
    windows: TimeWindows,
    init: Initializer<unknown>,
    agg: Aggregator<unknown, unknown, unknown>,
  ) {
    super(name);
    this.storeName = storeName;
    this.windows = windows;
    this.init0 = init;
    this.agg = agg;
  }
  override init(task: Parameters<Node['init']>[0]): void {
    super.init(task);
    this.store = task.store(this.storeName) as WindowStoreImpl<unknown, unknown>;
  }
  process(rec: Rec): void {
    if (rec.key === null || rec.key === undefined || rec.value === null || rec.value === undefined) {
      this.task.metrics.skippedRecords++;
      return;
    }
    const closeTime = this.now(rec.timestamp) - this.windows.graceMs;
    for (const w of this.windows.windowsFor(rec.timestamp)) {
      if (w.end <= closeTime) {
        this.task.metrics.droppedRecords++;
        this.task.metrics.maxLateness = Math.max(
          this.task.metrics.maxLateness,
          closeTime + this.windows.graceMs - rec.timestamp,
        );
        continue;
      }
      const old = this.store.fetchWithTimestamp(rec.key, w.start);
      const next = this.agg(rec.key, rec.value, old === null ? this.init0() : old[0]);
      const ts = old === null ? rec.timestamp : Math.max(old[1], rec.timestamp);
      this.store.put(rec.key, next, w.start, ts);
      const key: Windowed<unknown> = { key: rec.key, window: w };
      this.forward({ key, value: change(next, old?.[0]), timestamp: ts, headers: rec.headers });
    }
  }
}

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
  constructor(
    name: string,
    storeName: string,
    windows: SessionWindows,
    init: Initializer<unknown>,
    agg: Aggregator<unknown, unknown, unknown>,
    merger: Merger<unknown, unknown>,
  ) {
    super(name);
    this.storeName = storeName;
    this.windows = windows;
    this.init0 = init;
    this.agg = agg;
    this.merger = merger;
  }
  override init(task: Parameters<Node['init']>[0]): void {
    super.init(task);
    this.store = task.store(this.storeName) as SessionStoreImpl<unknown, unknown>;
  }
  process(rec: Rec): void {
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
    for (const s of overlapping) {
      this.store.remove(rec.key, s.start, s.end);
      const key: Windowed<unknown> = { key: rec.key, window: { start: s.start, end: s.end } };
      this.forward({ key, value: change(null, s.value), timestamp: s.end, headers: rec.headers });
    }
    acc = this.agg(rec.key, rec.value, acc);
    this.store.put(rec.key, start, end, acc);
    const key: Windowed<unknown> = { key: rec.key, window: { start, end } };
    this.forward({ key, value: change(acc, null), timestamp: end, headers: rec.headers });
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
 * The buffer is grouped by due time, so eviction takes whole groups in due order (a heap of the due times); for
 * final results the due time follows from the window, so a record finds its buffered predecessor without any
 * key object being serialized. The buffer is mirrored in a logged key-value store so that it survives restarts
 * under exactly-once (only when that store is persisted or logged).
 */
export class SuppressNode extends StatefulNode {
  private store!: KeyValueStoreImpl<string, Buffered>;
  private readonly storeName: string;
  private readonly mode: SuppressMode;
  /** Due time -> key within the group -> the buffered change. */
  private readonly buckets = new Map<number, Map<string, Buffered>>();
  /** Min-heap of the due times in `buckets`. */
  private readonly dues: number[] = [];
  /** untilTimeLimit: the due time of each buffered key (its first arrival + the limit). */
  private readonly limitDue = new Map<string, number>();
  private mirror = true;
  private seq = 0;
  private observed = Number.NEGATIVE_INFINITY;
  constructor(name: string, storeName: string, mode: SuppressMode) {
    super(name);
    this.storeName = storeName;
    this.mode = mode;
  }
  override init(task: Parameters<Node['init']>[0]): void {
    super.init(task);
    this.store = task.store(this.storeName) as KeyValueStoreImpl<string, Buffered>;
    // The mirror only serves restarts: a store that is neither persisted nor logged would be written for nothing.
    this.mirror = this.store.durable;
    for (const [, b] of this.store.all()) {
      const k = this.keyOf(b.key);
      this.bucket(b.due).set(k, b);
      if (this.mode.kind === 'untilTimeLimit') this.limitDue.set(k, b.due);
      this.seq = Math.max(this.seq, b.seq + 1);
      this.observed = Math.max(this.observed, b.timestamp);
    }
  }
  /**
   * The key within a due group: the record key; for sessions with the window start too (the windows of one time
   * window suppression share one size, so the end fixes the start).
   */
  private keyOf(key: unknown): string {
    if (this.mode.kind === 'untilTimeLimit') return encodeKey(key);
    const w = key as Windowed<unknown>;
    return this.mode.window === 'session' ? `${encodeKey(w.key)}@${w.window.start}` : encodeKey(w.key);
  }
  private bucket(due: number): Map<string, Buffered> {
    let b = this.buckets.get(due);
    if (b === undefined) {
      b = new Map();
      this.buckets.set(due, b);
      pushHeap(this.dues, due);
    }
    return b;
  }
  process(rec: Rec): void {
    const k = this.keyOf(rec.key);
    let due: number;
    if (this.mode.kind === 'untilTimeLimit') {
      // A newer value replaces the buffered one but does not restart its timer (Kafka Streams untilTimeLimit).
      due = this.limitDue.get(k) ?? rec.timestamp + this.mode.limitMs;
    } else {
      // Time windows close at end + grace (end exclusive); sessions one ms later (end inclusive).
      const w = (rec.key as Windowed<unknown>).window;
      due = w.end + this.mode.graceMs + (this.mode.window === 'session' ? 1 : 0);
    }
    const group = this.buckets.get(due);
    const prev = group?.get(k);
    const c = rec.value as Change<unknown>;
    if (c.newValue === null && this.mode.kind === 'untilWindowCloses') {
      // Final results never emit tombstones: drop what is buffered for the key rather than buffer the tombstone
      // (merged sessions would otherwise leave one per merge in the buffer until their window closes).
      if (prev !== undefined) {
        group?.delete(k);
        if (this.mirror) this.store.delete(`${due}|${k}`);
      }
      if (rec.timestamp > this.observed) this.observed = rec.timestamp;
      this.evict(this.watermarkMode ? this.time : this.observed);
      return;
    }
    const b: Buffered = {
      key: rec.key,
      // Keep the oldest old value so that the emitted change spans everything suppressed.
      value: { newValue: c.newValue, oldValue: prev === undefined ? c.oldValue : prev.value.oldValue },
      timestamp: rec.timestamp,
      due,
      seq: prev === undefined ? this.seq++ : prev.seq,
      headers: rec.headers,
    };
    (group ?? this.bucket(due)).set(k, b);
    if (prev === undefined && this.mode.kind === 'untilTimeLimit') this.limitDue.set(k, due);
    if (this.mirror) this.store.put(`${due}|${k}`, b);
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
    const dues = this.dues;
    if (dues.length === 0 || (dues[0] as number) > now) return;
    const due: Buffered[] = [];
    while (dues.length > 0 && (dues[0] as number) <= now) {
      const d = popHeap(dues);
      const group = this.buckets.get(d);
      if (group === undefined) continue;
      this.buckets.delete(d);
      for (const [k, b] of group) {
        due.push(b);
        if (this.mirror) this.store.delete(`${d}|${k}`);
        if (this.mode.kind === 'untilTimeLimit') this.limitDue.delete(k);
      }
    }
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

/** Binary min-heap of numbers. */
function pushHeap(heap: number[], x: number): void {
  let i = heap.length;
  heap.push(x);
  while (i > 0) {
    const p = (i - 1) >> 1;
    const parent = heap[p] as number;
    if (parent <= x) break;
    heap[i] = parent;
    i = p;
  }
  heap[i] = x;
}
function popHeap(heap: number[]): number {
  const top = heap[0] as number;
  const last = heap.pop() as number;
  const n = heap.length;
  if (n > 0) {
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && (heap[r] as number) < (heap[l] as number) ? r : l;
      if ((heap[c] as number) >= last) break;
      heap[i] = heap[c] as number;
      i = c;
    }
    heap[i] = last;
  }
  return top;
}

/**
 * Kafka Streams' record cache for an aggregation's output: keeps the latest change per key and forwards it when
 * the task commits, so a key updated many times between commits is emitted once (old value = the value before
 * the first held update). Changes whose new and old values are both null are dropped.
 */
export class CacheNode extends Node {
  private readonly held = new Map<string, Rec>();
  process(rec: Rec): void {
    const k = encodeKey(rec.key);
    const prev = this.held.get(k);
    if (prev === undefined) {
      this.held.set(k, rec);
      return;
    }
    const c = rec.value as Change<unknown>;
    this.held.set(k, { ...rec, value: change(c.newValue, (prev.value as Change<unknown>).oldValue) });
  }
  override flushCache(): void {
    if (this.held.size === 0) return;
    const all = [...this.held.values()];
    this.held.clear();
    for (const r of all) {
      const c = r.value as Change<unknown>;
      if (c.newValue === null && c.oldValue === null) continue;
      this.forward(r);
    }
  }
}
