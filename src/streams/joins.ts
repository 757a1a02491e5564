import { Node, withValue } from './node.ts';
import type { KeyValueStoreImpl } from './stores.ts';
import type { Change, StreamRecord } from './types.ts';
import type { JoinWindows } from './windows.ts';

type Rec = StreamRecord<unknown, unknown>;
export type ValueJoiner<L, R, O> = (left: L, right: R, key: unknown) => O;
export type JoinKind = 'inner' | 'left' | 'outer';

/** KStream-KTable and KStream-GlobalKTable joins: stream records look the key up; table updates never emit. */
export class StreamTableJoinNode extends Node {
  private store!: KeyValueStoreImpl<unknown, unknown>;
  private readonly storeName: string;
  private readonly joiner: ValueJoiner<unknown, unknown, unknown>;
  private readonly left: boolean;
  private readonly keySelector: ((key: unknown, value: unknown) => unknown) | undefined;
  constructor(
    name: string,
    storeName: string,
    joiner: ValueJoiner<unknown, unknown, unknown>,
    left: boolean,
    keySelector?: (key: unknown, value: unknown) => unknown,
  ) {
    super(name);
    this.storeName = storeName;
    this.joiner = joiner;
    this.left = left;
    this.keySelector = keySelector;
  }
  override init(task: Parameters<Node['init']>[0]): void {
    super.init(task);
    this.store = task.store(this.storeName) as KeyValueStoreImpl<unknown, unknown>;
  }
  process(rec: Rec): void {
    const lookup = this.keySelector === undefined ? rec.key : this.keySelector(rec.key, rec.value);
    if (lookup === null || lookup === undefined || rec.value === null) {
      this.task.metrics.skippedRecords++;
      return;
    }
    const other = this.store.get(lookup);
    if (other === null && !this.left) return;
    this.forward(withValue(rec, this.joiner(rec.value, other, rec.key)));
  }
}

interface Buffered {
  key: unknown;
  value: unknown;
  ts: number;
  headers: StreamRecord<unknown, unknown>['headers'];
}

/**
 * KStream-KTable join against a versioned table with a grace period: stream records wait until stream time passes
 * their timestamp plus grace, then join the table version valid at their timestamp (Kafka Streams 3.5+).
 */
export class VersionedStreamTableJoinNode extends Node {
  private versions!: KeyValueStoreImpl<unknown, [number, unknown][]>;
  private buffer!: KeyValueStoreImpl<string, Buffered>;
  private readonly names: [versions: string, buffer: string];
  private readonly joiner: ValueJoiner<unknown, unknown, unknown>;
  private readonly left: boolean;
  private readonly graceMs: number;
  private seq = 0;
  constructor(
    name: string,
    stores: [versions: string, buffer: string],
    joiner: ValueJoiner<unknown, unknown, unknown>,
    left: boolean,
    graceMs: number,
  ) {
    super(name);
    this.names = stores;
    this.joiner = joiner;
    this.left = left;
    this.graceMs = graceMs;
  }
  override init(task: Parameters<Node['init']>[0]): void {
    super.init(task);
    this.versions = task.store(this.names[0]) as KeyValueStoreImpl<unknown, [number, unknown][]>;
    this.buffer = task.store(this.names[1]) as KeyValueStoreImpl<string, Buffered>;
    for (const [k] of this.buffer.all()) this.seq = Math.max(this.seq, Number(k.slice(k.indexOf(':') + 1)) + 1);
  }
  private join(b: Buffered): void {
    let asOf: unknown = null;
    for (const [vts, v] of this.versions.get(b.key) ?? []) {
      if (vts > b.ts) break;
      asOf = v;
    }
    if (asOf === null && !this.left) return;
    this.forward({ key: b.key, value: this.joiner(b.value, asOf, b.key), timestamp: b.ts, headers: b.headers });
  }
  process(rec: Rec): void {
    if (rec.key === null || rec.key === undefined || rec.value === null) {
      this.task.metrics.skippedRecords++;
      return;
    }
    const b: Buffered = { key: rec.key, value: rec.value, ts: rec.timestamp, headers: rec.headers };
    if (this.graceMs === 0) {
      this.join(b);
      return;
    }
    this.buffer.put(heldKey(rec.timestamp, this.seq++), b);
    this.flush(Math.max(this.time, rec.timestamp));
  }
  protected override advance(t: number): void {
    this.flush(t);
  }
  private flush(now: number): void {
    for (const [k, b] of this.buffer.all()) {
      if (b.ts + this.graceMs > now) break; // sorted by timestamp
      this.buffer.delete(k);
      this.join(b);
    }
  }
}

/**
 * One side of a KTable-KTable join. Both input tables are materialized; the result is materialized too so that
 * the emitted change carries the previous join result as its old value.
 */
export class TableTableJoinNode extends Node {
  private own!: KeyValueStoreImpl<unknown, unknown>;
  private other!: KeyValueStoreImpl<unknown, unknown>;
  private result!: KeyValueStoreImpl<unknown, unknown>;
  private readonly names: [string, string, string];
  private readonly joiner: ValueJoiner<unknown, unknown, unknown>;
  private readonly kind: JoinKind;
  private readonly isLeftSide: boolean;
  constructor(
    name: string,
    stores: [own: string, other: string, result: string],
    joiner: ValueJoiner<unknown, unknown, unknown>,
    kind: JoinKind,
    isLeftSide: boolean,
  ) {
    super(name);
    this.names = stores;
    this.joiner = joiner;
    this.kind = kind;
    this.isLeftSide = isLeftSide;
  }
  override init(task: Parameters<Node['init']>[0]): void {
    super.init(task);
    this.own = task.store(this.names[0]) as KeyValueStoreImpl<unknown, unknown>;
    this.other = task.store(this.names[1]) as KeyValueStoreImpl<unknown, unknown>;
    this.result = task.store(this.names[2]) as KeyValueStoreImpl<unknown, unknown>;
  }
  process(rec: Rec): void {
    const c = rec.value as Change<unknown>;
    const o = this.other.getWithTimestamp(rec.key);
    const l = this.isLeftSide ? c.newValue : (o?.[0] ?? null);
    const r = this.isLeftSide ? (o?.[0] ?? null) : c.newValue;
    let next: unknown = null;
    if (this.kind === 'inner') next = l !== null && r !== null ? this.joiner(l, r, rec.key) : null;
    else if (this.kind === 'left') next = l !== null ? this.joiner(l, r, rec.key) : null;
    else next = l !== null || r !== null ? this.joiner(l, r, rec.key) : null;
    const old = this.result.get(rec.key);
    if (next === null && old === null) return;
    const ts = Math.max(rec.timestamp, o?.[1] ?? Number.NEGATIVE_INFINITY);
    this.result.putWithTimestamp(rec.key, next, ts);
    this.forward({ ...rec, value: { newValue: next, oldValue: old }, timestamp: ts });
  }
}

type Stored = [ts: number, value: unknown, seq: number];
interface Held {
  left: boolean;
  key: unknown;
  value: unknown;
  ts: number;
  seq: number;
}

const seqCounters = new WeakMap<object, Map<string, number>>();

const heldKey = (ts: number, seq: number): string =>
  `${String(ts + 1e15).padStart(17, '0')}:${String(seq).padStart(12, '0')}`;

/**
 * One side of a windowed KStream-KStream join. Both sides share three stores: the records of each side per key
 * and, for left/outer joins, the records still without a partner. Unmatched records are emitted (with null for
 * the missing side) once event time passes their window end plus grace, in timestamp order.
 */
export class StreamStreamJoinNode extends Node {
  private own!: KeyValueStoreImpl<unknown, Stored[]>;
  private other!: KeyValueStoreImpl<unknown, Stored[]>;
  private held: KeyValueStoreImpl<string, Held> | undefined;
  private readonly names: [string, string, string | undefined];
  private readonly joiner: ValueJoiner<unknown, unknown, unknown>;
  private readonly windows: JoinWindows;
  private readonly isLeftSide: boolean;
  /** Whether this side's unmatched records are emitted (left side of left/outer joins, right side of outer). */
  private readonly emitsUnmatched: boolean;
  constructor(
    name: string,
    stores: [own: string, other: string, held: string | undefined],
    joiner: ValueJoiner<unknown, unknown, unknown>,
    windows: JoinWindows,
    kind: JoinKind,
    isLeftSide: boolean,
  ) {
    super(name);
    this.names = stores;
    this.joiner = joiner;
    this.windows = windows;
    this.isLeftSide = isLeftSide;
    this.emitsUnmatched = kind === 'outer' || (kind === 'left' && isLeftSide);
  }
  override init(task: Parameters<Node['init']>[0]): void {
    super.init(task);
    this.own = task.store(this.names[0]) as KeyValueStoreImpl<unknown, Stored[]>;
    this.other = task.store(this.names[1]) as KeyValueStoreImpl<unknown, Stored[]>;
    if (this.names[2] !== undefined) this.held = task.store(this.names[2]) as KeyValueStoreImpl<string, Held>;
  }
  private get span(): number {
    return this.windows.beforeMs + this.windows.afterMs + this.windows.graceMs;
  }
  private output(rec: Rec, otherValue: unknown, otherTs: number): void {
    const [l, r] = this.isLeftSide ? [rec.value, otherValue] : [otherValue, rec.value];
    this.forward({ ...rec, value: this.joiner(l, r, rec.key), timestamp: Math.max(rec.timestamp, otherTs) });
  }
  process(rec: Rec): void {
    if (rec.key === null || rec.key === undefined || rec.value === null) {
      this.task.metrics.skippedRecords++;
      return;
    }
    const t = rec.timestamp;
    const now = Math.max(this.time, t);
    const w = this.windows;
    // Window of this record in the other side's time: left sees [t-before, t+after], right the mirror image.
    const lo = this.isLeftSide ? t - w.beforeMs : t - w.afterMs;
    const hi = this.isLeftSide ? t + w.afterMs : t + w.beforeMs;
    const closesAt = hi + w.graceMs;
    const late = closesAt < now;
    let matched = false;
    const others = this.other.get(rec.key) ?? [];
    for (const [ots, ov, oseq] of others) {
      if (ots < lo || ots > hi) continue;
      matched = true;
      this.output(rec, ov, ots);
      if (this.held !== undefined) this.held.delete(heldKey(ots, oseq));
    }
    if (late) {
      // Its window has closed already: nothing can match it later, so an unmatched record is final now.
      if (!matched && this.emitsUnmatched) this.output(rec, null, Number.NEGATIVE_INFINITY);
      return;
    }
    const seq = this.nextSeq();
    // Records arrive roughly in time order: prune (a copy) only when the oldest has left the span, else append.
    const keep = now - this.span;
    let mine = this.own.get(rec.key) ?? [];
    if (mine.length > 0 && (mine[0] as Stored)[0] < keep) mine = mine.filter((s) => s[0] >= keep);
    mine.push([t, rec.value, seq]);
    this.own.putWithTimestamp(rec.key, mine, t);
    if (!matched && this.emitsUnmatched && this.held !== undefined)
      this.held.put(heldKey(t, seq), { left: this.isLeftSide, key: rec.key, value: rec.value, ts: t, seq });
  }
  private nextSeq(): number {
    // One counter per join, shared by both sides (through the held store's name), so that held-record keys
    // (timestamp, seq) never collide; after a restart it continues above every stored sequence number.
    const counters = seqCounters.get(this.task) ?? new Map<string, number>();
    seqCounters.set(this.task, counters);
    const id = this.names[2] ?? this.names[0];
    let n = counters.get(id);
    if (n === undefined) {
      n = 0;
      for (const store of [this.own, this.other])
        for (const [, list] of store.all()) for (const r of list) n = Math.max(n, r[2]);
      if (this.held !== undefined) for (const [, h] of this.held.all()) n = Math.max(n, h.seq);
    }
    counters.set(id, n + 1);
    return n + 1;
  }
  protected override advance(now: number): void {
    if (this.held === undefined || !this.isLeftSide) return; // the left side's node flushes for both
    const w = this.windows;
    for (const [k, h] of this.held.all()) {
      const closesAt = h.ts + (h.left ? w.afterMs : w.beforeMs) + w.graceMs;
      if (closesAt >= now) {
        if (h.ts + w.afterMs + w.beforeMs + w.graceMs >= now) break; // sorted by ts: nothing later can be due
        continue;
      }
      this.held.delete(k);
      const [l, r] = h.left ? [h.value, null] : [null, h.value];
      this.forward({ key: h.key, value: this.joiner(l, r, h.key), timestamp: h.ts, headers: [] });
    }
  }
}
