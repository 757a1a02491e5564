import { type Database, open, type RootDatabase } from 'lmdb';
import { invalidArgument, TributaryError } from '../core/index.ts';

/**
 * State stores. Every store is a typed view over an ordered `Backend` whose keys are tuples
 * `[encodedUserKey, ...numbers]`; the in-memory backend serves the test driver and in-memory jobs, the LMDB
 * backend persists state (writes are buffered in an overlay and written in one LMDB transaction per commit,
 * together with the checkpoint of the input offsets they match). Every write can also be sent to a
 * changelog so that a task's state can be rebuilt elsewhere.
 */
export type StoreKey = readonly (string | number)[];

export interface Backend {
  get(key: StoreKey): unknown;
  /** Returns false when the key certainly existed already (true: new, or not known cheaply). */
  put(key: StoreKey, value: unknown): boolean;
  delete(key: StoreKey): void;
  /** Entries with from <= key < to in key order. */
  range(from: StoreKey, to: StoreKey): [StoreKey, unknown][];
  entries(): [StoreKey, unknown][];
  count(): number;
}

export function compareKeys(a: StoreKey, b: StoreKey): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i] as string | number;
    const y = b[i] as string | number;
    if (x === y) continue;
    const tx = typeof x;
    const ty = typeof y;
    // LMDB's ordered-binary puts numbers before strings; keep the same order in memory.
    if (tx !== ty) return tx === 'number' ? -1 : 1;
    return x < y ? -1 : 1;
  }
  return a.length - b.length;
}

// The key parts after the first, as one Map key.
const encodeRest = (key: StoreKey): string | number =>
  key.length === 1 ? '' : key.length === 2 ? (key[1] as string | number) : JSON.stringify(key.slice(1));

type Entry = [StoreKey, unknown];
// Session keys (key, end, start): two numbers after the first part, kept in nested Maps (by start, then end: a
// growing session keeps its start) rather than as text.
const twoNumbers = (key: StoreKey): boolean =>
  key.length === 3 && typeof key[1] === 'number' && typeof key[2] === 'number';

const NO_HEAD = Symbol('no head');

export class MemoryBackend implements Backend {
  // Grouped by the first key component so that per-key range scans (windows, sessions) stay small.
  private readonly groups = new Map<string | number, Map<string | number, Entry>>();
  private readonly sessions = new Map<string | number, Map<number, Map<number, Entry>>>();
  private size = 0;
  // The group of the last head looked up: an aggregation reads and writes one key several times per record (a
  // hopping window: every window the record falls in).
  private lastHead: unknown = NO_HEAD;
  private lastGroup: Map<string | number, Entry> | undefined;
  // The entry the last get() found, and where: an aggregation's put follows its get of the same key.
  private lastEntryGroup: Map<string | number, Entry> | undefined;
  private lastRest: string | number = '';
  private lastEntry: Entry | undefined;

  private groupOf(head: string | number): Map<string | number, Entry> | undefined {
    if (head === this.lastHead) return this.lastGroup;
    const g = this.groups.get(head);
    this.lastHead = head;
    this.lastGroup = g;
    return g;
  }

  get(key: StoreKey): unknown {
    const head = key[0] as string;
    if (twoNumbers(key))
      return this.sessions
        .get(head)
        ?.get(key[2] as number)
        ?.get(key[1] as number)?.[1];
    const g = this.groupOf(head);
    if (g === undefined) return undefined;
    const rest = encodeRest(key);
    const e = g.get(rest);
    this.lastEntryGroup = g;
    this.lastRest = rest;
    this.lastEntry = e;
    return e?.[1];
  }
  put(key: StoreKey, value: unknown): boolean {
    const head = key[0] as string;
    let g: Map<string | number, Entry> | undefined;
    let rest: string | number;
    if (twoNumbers(key)) {
      let byStart = this.sessions.get(head);
      if (byStart === undefined) {
        byStart = new Map();
        this.sessions.set(head, byStart);
      }
      let byEnd = byStart.get(key[2] as number);
      if (byEnd === undefined) {
        byEnd = new Map();
        byStart.set(key[2] as number, byEnd);
      }
      g = byEnd as Map<string | number, Entry>;
      rest = key[1] as number;
    } else {
      g = this.groupOf(head);
      if (g === undefined) {
        g = new Map();
        this.groups.set(head, g);
        this.lastGroup = g;
      }
      rest = encodeRest(key);
    }
    const m = g as Map<string | number, Entry>;
    const entry = m === this.lastEntryGroup && rest === this.lastRest ? this.lastEntry : m.get(rest);
    if (entry !== undefined) {
      // An update (an aggregate's every record): the entry is only read by this class, so it changes in place.
      entry[1] = value;
      return false;
    }
    this.size++;
    m.set(rest, [key, value]);
    this.lastEntryGroup = undefined;
    return true;
  }
  delete(key: StoreKey): void {
    const head = key[0] as string;
    if (twoNumbers(key)) {
      const byStart = this.sessions.get(head);
      const g = byStart?.get(key[2] as number);
      if (g?.delete(key[1] as number)) {
        this.size--;
        if (g.size === 0 && (byStart?.size ?? 0) > 1) byStart?.delete(key[2] as number);
        this.sweep();
      }
      return;
    }
    this.lastEntryGroup = undefined;
    const g = this.groupOf(head);
    if (g?.delete(encodeRest(key))) {
      this.size--;
      this.sweep();
    }
  }
  // Empty groups stay a while (a session replaced by its merge is deleted then put again at once); they are
  // swept when they outnumber the entries.
  private sweep(): void {
    if (this.groups.size > 1024 && this.groups.size > 2 * this.size) {
      for (const [h, x] of this.groups) if (x.size === 0) this.groups.delete(h);
      this.lastHead = NO_HEAD;
      this.lastEntryGroup = undefined;
    }
    if (this.sessions.size > 1024 && this.sessions.size > 2 * this.size)
      for (const [h, byStart] of this.sessions) {
        for (const [start, g] of byStart) if (g.size === 0) byStart.delete(start);
        if (byStart.size === 0) this.sessions.delete(h);
      }
  }
  private *groupEntries(head: string | number | undefined): Generator<Entry> {
    if (head === undefined) {
      for (const g of this.groups.values()) yield* g.values();
      for (const byEnd of this.sessions.values()) for (const g of byEnd.values()) yield* g.values();
      return;
    }
    const g = this.groups.get(head);
    if (g !== undefined) yield* g.values();
    const byEnd = this.sessions.get(head);
    if (byEnd !== undefined) for (const x of byEnd.values()) yield* x.values();
  }
  range(from: StoreKey, to: StoreKey): [StoreKey, unknown][] {
    const out: Entry[] = [];
    const head = from.length > 0 && from[0] === to[0] ? (from[0] as string | number) : undefined;
    for (const e of this.groupEntries(head)) if (compareKeys(e[0], from) >= 0 && compareKeys(e[0], to) < 0) out.push(e);
    return out.length > 1 ? out.sort((a, b) => compareKeys(a[0], b[0])) : out;
  }
  entries(): [StoreKey, unknown][] {
    return [...this.groupEntries(undefined)].sort((a, b) => compareKeys(a[0], b[0]));
  }
  count(): number {
    return this.size;
  }
}

const DELETED = Symbol('deleted');
// lmdb-js stores a one-element array key as the bare element; give tuples back.
const asTuple = (k: unknown): StoreKey => (Array.isArray(k) ? (k as StoreKey) : [k as string | number]);

// Key parts are numbers or JSON-encoded strings (control characters escaped), so joining on NUL is unambiguous
// and much cheaper than JSON.stringify of the tuple.
const overlayKey = (key: StoreKey): string => (key.length === 1 ? String(key[0]) : key.join('\u0000'));

/** LMDB-backed: reads go through a write overlay; `flush` writes the overlay in one transaction. */
export class LmdbBackend implements Backend {
  private readonly db: Database;
  private readonly overlay = new Map<string, [StoreKey, unknown]>();

  constructor(db: Database) {
    this.db = db;
  }
  get(key: StoreKey): unknown {
    const o = this.overlay.get(overlayKey(key));
    if (o !== undefined) return o[1] === DELETED ? undefined : o[1];
    return this.db.get(key as (string | number)[]);
  }
  put(key: StoreKey, value: unknown): boolean {
    const k = overlayKey(key);
    const isNew = !this.overlay.has(k);
    this.overlay.set(k, [key, value]);
    return isNew;
  }
  delete(key: StoreKey): void {
    this.overlay.set(overlayKey(key), [key, DELETED]);
  }
  range(from: StoreKey, to: StoreKey): [StoreKey, unknown][] {
    const merged = new Map<string, [StoreKey, unknown]>();
    for (const { key, value } of this.db.getRange({
      start: from as (string | number)[],
      end: to as (string | number)[],
    })) {
      const k = asTuple(key);
      merged.set(overlayKey(k), [k, value]);
    }
    for (const [enc, e] of this.overlay)
      if (compareKeys(e[0], from) >= 0 && compareKeys(e[0], to) < 0) merged.set(enc, e);
    return [...merged.values()].filter((e) => e[1] !== DELETED).sort((a, b) => compareKeys(a[0], b[0]));
  }
  entries(): [StoreKey, unknown][] {
    const merged = new Map<string, [StoreKey, unknown]>();
    for (const { key, value } of this.db.getRange({})) {
      const k = asTuple(key);
      merged.set(overlayKey(k), [k, value]);
    }
    for (const [enc, e] of this.overlay) merged.set(enc, e);
    return [...merged.values()].filter((e) => e[1] !== DELETED).sort((a, b) => compareKeys(a[0], b[0]));
  }
  count(): number {
    return this.entries().length;
  }
  /** Writes the overlay; call inside the root's transactionSync. */
  writeOverlay(): void {
    for (const e of this.overlay.values()) {
      if (e[1] === DELETED) this.db.removeSync(e[0] as (string | number)[]);
      else this.db.putSync(e[0] as (string | number)[], e[1]);
    }
    this.overlay.clear();
  }
  clear(): void {
    this.overlay.clear();
    this.db.clearSync();
  }
}

/** One LMDB environment per task directory: the stores of the task and its offset checkpoint. */
export class LmdbEnv {
  readonly root: RootDatabase;
  private readonly backends = new Map<string, LmdbBackend>();
  private readonly meta: Database;

  constructor(path: string) {
    this.root = open({ path, maxDbs: 64, compression: false });
    this.meta = this.root.openDB({ name: '__checkpoint' });
  }
  backend(storeName: string): LmdbBackend {
    let b = this.backends.get(storeName);
    if (b === undefined) {
      b = new LmdbBackend(this.root.openDB({ name: `store:${storeName}` }));
      this.backends.set(storeName, b);
    }
    return b;
  }
  /** The checkpoint written with the last flush: input positions and changelog offsets the stores match. */
  checkpoint(): Record<string, string> | undefined {
    return this.meta.get('checkpoint') as Record<string, string> | undefined;
  }
  /** Writes every store's overlay and the checkpoint atomically. */
  flush(checkpoint: Record<string, string> | null): void {
    this.root.transactionSync(() => {
      for (const b of this.backends.values()) b.writeOverlay();
      if (checkpoint === null) this.meta.removeSync('checkpoint');
      else this.meta.putSync('checkpoint', checkpoint);
    });
  }
  wipe(): void {
    this.root.transactionSync(() => {
      for (const b of this.backends.values()) b.clear();
      this.meta.removeSync('checkpoint');
    });
  }
  async close(): Promise<void> {
    await this.root.close();
  }
}

/** Receives every store write when change logging is on (key tuple, stored value or null on delete). */
export type ChangeLogger = (store: string, key: StoreKey, value: unknown) => void;

export type StoreType = 'keyValue' | 'window' | 'session';

export interface StoreSpec {
  name: string;
  type: StoreType;
  /** Window/session stores: how long windows are kept after stream time passes their end. */
  retentionMs?: number;
  logging: boolean;
  /** Stores for GlobalKTables are filled from their topic and never changelogged. */
  global?: boolean;
}

// The last primitive key encoded: an aggregation reads then writes the same key, so this halves the encoding.
let lastKey: unknown;
let lastEncoded = 'null';
/** The JSON text of a key (numbers without going through JSON.stringify: same text, several times cheaper). */
export const encodeKey = (key: unknown): string => {
  if (key === lastKey) return lastEncoded;
  const t = typeof key;
  const e =
    t === 'number'
      ? Number.isFinite(key)
        ? String(key)
        : 'null'
      : ((JSON.stringify(key) as string | undefined) ?? 'null');
  if (t === 'string' || t === 'number') {
    lastKey = key;
    lastEncoded = e;
  }
  return e;
};
const decodeKey = <K>(s: string | number): K => JSON.parse(String(s)) as K;

abstract class BaseStore {
  readonly name: string;
  protected readonly backend: Backend;
  protected readonly logger: ChangeLogger | null;

  constructor(name: string, backend: Backend, logger: ChangeLogger | null) {
    this.name = name;
    this.backend = backend;
    this.logger = logger;
  }
  /** Returns true when the key may be new (see Backend.put). */
  protected write(key: StoreKey, value: unknown): boolean {
    let isNew = false;
    if (value === undefined || value === null) this.backend.delete(key);
    else isNew = this.backend.put(key, value);
    this.logger?.(this.name, key, value ?? null);
    return isNew;
  }
  /** Applies a changelog record while restoring (not logged again). */
  restore(key: StoreKey, value: unknown): void {
    if (value === null) this.backend.delete(key);
    else this.backend.put(key, value);
  }
  approximateNumEntries(): number {
    return this.backend.count();
  }
  /** Whether what is written survives a restart (persisted, or logged to a changelog). */
  get durable(): boolean {
    return this.logger !== null || !(this.backend instanceof MemoryBackend);
  }
}

/** Read side of a key-value store, also what interactive queries get. */
export interface ReadOnlyKeyValueStore<K, V> {
  get(key: K): V | null;
  /** Keys in encoded order (JSON of the key) between from and to inclusive; either bound may be omitted. */
  range(from?: K, to?: K): [K, V][];
  all(): [K, V][];
  approximateNumEntries(): number;
}

export interface KeyValueStore<K, V> extends ReadOnlyKeyValueStore<K, V> {
  readonly name: string;
  put(key: K, value: V | null): void;
  putIfAbsent(key: K, value: V): V | null;
  delete(key: K): V | null;
}

/** Stored as [value, timestamp]; `getWithTimestamp` serves the DSL's timestamped semantics. */
export class KeyValueStoreImpl<K, V> extends BaseStore implements KeyValueStore<K, V> {
  getWithTimestamp(key: K): [V, number] | null {
    return (this.backend.get([encodeKey(key)]) as [V, number] | undefined) ?? null;
  }
  get(key: K): V | null {
    return this.getWithTimestamp(key)?.[0] ?? null;
  }
  putWithTimestamp(key: K, value: V | null, timestamp: number): void {
    this.write([encodeKey(key)], value === null ? null : [value, timestamp]);
  }
  put(key: K, value: V | null): void {
    this.putWithTimestamp(key, value, 0);
  }
  putIfAbsent(key: K, value: V): V | null {
    const old = this.get(key);
    if (old === null) this.put(key, value);
    return old;
  }
  delete(key: K): V | null {
    const old = this.get(key);
    if (old !== null) this.write([encodeKey(key)], null);
    return old;
  }
  range(from?: K, to?: K): [K, V][] {
    const lo = from === undefined ? '' : encodeKey(from);
    const hi = to === undefined ? undefined : encodeKey(to);
    return this.all().filter(([k]) => {
      const e = encodeKey(k);
      return e >= lo && (hi === undefined || e <= hi);
    });
  }
  all(): [K, V][] {
    return this.backend.entries().map(([k, v]) => [decodeKey<K>(k[0] as string), (v as [V, number])[0]]);
  }
}

export interface WindowStoreEntry<V> {
  start: number;
  value: V;
  timestamp: number;
}

export interface ReadOnlyWindowStore<K, V> {
  fetch(key: K, windowStart: number): V | null;
  /** Windows of `key` whose start lies in [timeFrom, timeTo], by start. */
  fetchRange(key: K, timeFrom: number, timeTo: number): WindowStoreEntry<V>[];
  all(): { key: K; start: number; value: V; timestamp: number }[];
}

export interface WindowStore<K, V> extends ReadOnlyWindowStore<K, V> {
  readonly name: string;
  put(key: K, value: V | null, windowStart: number, timestamp?: number): void;
}

/**
 * Window and session keys in creation order, so that entries past retention are dropped as stream time advances
 * (Kafka Streams drops whole time segments). Creation order is time order up to out-of-orderness, so an entry
 * may outlive its retention by that much; reads filter expired entries anyway. Expiry deletes from the backend
 * without changelog records: the changelog topic has its own retention.
 */
class ExpiryQueue {
  private keys: StoreKey[] = [];
  private head = 0;
  private seeded = false;
  /** The key part holding the entry's time (window start, session end). */
  private readonly part: number;
  constructor(part: number) {
    this.part = part;
  }
  push(key: StoreKey): void {
    this.keys.push(key);
  }
  expire(backend: Backend, before: number): void {
    if (!this.seeded) {
      // State restored from disk is not in the queue yet: take it once, in time order.
      this.seeded = true;
      const existing = backend.entries().map((e) => e[0]);
      if (existing.length > 0) {
        existing.sort((a, b) => (a[this.part] as number) - (b[this.part] as number));
        this.keys = existing.concat(this.keys.slice(this.head));
        this.head = 0;
      }
    }
    const keys = this.keys;
    let h = this.head;
    while (h < keys.length && ((keys[h] as StoreKey)[this.part] as number) < before)
      backend.delete(keys[h++] as StoreKey);
    this.head = h;
    if (h > 1024 && h * 2 > keys.length) {
      this.keys = keys.slice(h);
      this.head = 0;
    }
  }
}

export class WindowStoreImpl<K, V> extends BaseStore implements WindowStore<K, V> {
  readonly retentionMs: number;
  private observed = Number.NEGATIVE_INFINITY;

  constructor(name: string, backend: Backend, logger: ChangeLogger | null, retentionMs: number) {
    super(name, backend, logger);
    this.retentionMs = retentionMs;
  }
  private readonly expiry = new ExpiryQueue(1);
  private expired(start: number): boolean {
    return start < this.observed - this.retentionMs;
  }
  override restore(key: StoreKey, value: unknown): void {
    super.restore(key, value);
    if (value !== null) this.expiry.push(key);
    if ((key[1] as number) > this.observed) this.observed = key[1] as number;
  }
  fetchWithTimestamp(key: K, windowStart: number): [V, number] | null {
    if (this.expired(windowStart)) return null;
    return (this.backend.get([encodeKey(key), windowStart]) as [V, number] | undefined) ?? null;
  }
  fetch(key: K, windowStart: number): V | null {
    return this.fetchWithTimestamp(key, windowStart)?.[0] ?? null;
  }
  put(key: K, value: V | null, windowStart: number, timestamp = windowStart): void {
    if (windowStart > this.observed) {
      this.observed = windowStart;
      this.expiry.expire(this.backend, this.observed - this.retentionMs);
    }
    if (this.expired(windowStart)) return;
    const sk: StoreKey = [encodeKey(key), windowStart];
    if (this.write(sk, value === null ? null : [value, timestamp])) this.expiry.push(sk);
  }
  /**
   * put() of a window read with fetchWithTimestamp: its [value, timestamp] pair is reused. An aggregate replaces
   * its pair on every record; pairs allocated per update lived long enough to be promoted and made most of the
   * old-generation garbage (backends and changelogs serialize at flush, so an updated pair is what they write).
   */
  update(key: K, windowStart: number, pair: [V, number] | null, value: V, timestamp: number): void {
    if (pair === null || value === null) {
      this.put(key, value, windowStart, timestamp);
      return;
    }
    if (this.expired(windowStart)) return;
    pair[0] = value;
    pair[1] = timestamp;
    this.write([encodeKey(key), windowStart], pair);
  }
  fetchRange(key: K, timeFrom: number, timeTo: number): WindowStoreEntry<V>[] {
    const k = encodeKey(key);
    return this.backend
      .range([k, Math.max(timeFrom, this.observed - this.retentionMs)], [k, timeTo + 0.5])
      .map(([sk, v]) => ({ start: sk[1] as number, value: (v as [V, number])[0], timestamp: (v as [V, number])[1] }));
  }
  all(): { key: K; start: number; value: V; timestamp: number }[] {
    return this.backend
      .entries()
      .filter(([sk]) => !this.expired(sk[1] as number))
      .map(([sk, v]) => ({
        key: decodeKey<K>(sk[0] as string),
        start: sk[1] as number,
        value: (v as [V, number])[0],
        timestamp: (v as [V, number])[1],
      }));
  }
}

export interface Session<K, V> {
  key: K;
  start: number;
  end: number;
  value: V;
}

export interface ReadOnlySessionStore<K, V> {
  /** Sessions of `key` with end >= earliestSessionEnd and start <= latestSessionStart. */
  findSessions(key: K, earliestSessionEnd: number, latestSessionStart: number): Session<K, V>[];
  fetch(key: K): Session<K, V>[];
  all(): Session<K, V>[];
}

export interface SessionStore<K, V> extends ReadOnlySessionStore<K, V> {
  readonly name: string;
  put(key: K, start: number, end: number, value: V): void;
  remove(key: K, start: number, end: number): void;
}

export class SessionStoreImpl<K, V> extends BaseStore implements SessionStore<K, V> {
  readonly retentionMs: number;
  private observed = Number.NEGATIVE_INFINITY;

  constructor(name: string, backend: Backend, logger: ChangeLogger | null, retentionMs: number) {
    super(name, backend, logger);
    this.retentionMs = retentionMs;
  }
  private readonly expiry = new ExpiryQueue(1);
  override restore(key: StoreKey, value: unknown): void {
    super.restore(key, value);
    if (value !== null) this.expiry.push(key);
    if ((key[1] as number) > this.observed) this.observed = key[1] as number;
  }
  findSessions(key: K, earliestSessionEnd: number, latestSessionStart: number): Session<K, V>[] {
    const k = encodeKey(key);
    const lo = Math.max(earliestSessionEnd, this.observed - this.retentionMs);
    return this.backend
      .range([k, lo], [k, Number.POSITIVE_INFINITY])
      .filter(([sk]) => (sk[2] as number) <= latestSessionStart)
      .map(([sk, v]) => ({ key, end: sk[1] as number, start: sk[2] as number, value: v as V }))
      .sort((a, b) => a.start - b.start);
  }
  fetch(key: K): Session<K, V>[] {
    return this.findSessions(key, Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY);
  }
  put(key: K, start: number, end: number, value: V): void {
    if (end > this.observed) {
      this.observed = end;
      this.expiry.expire(this.backend, this.observed - this.retentionMs);
    }
    const sk: StoreKey = [encodeKey(key), end, start];
    if (this.write(sk, value)) this.expiry.push(sk);
  }
  remove(key: K, start: number, end: number): void {
    this.write([encodeKey(key), end, start], null);
  }
  all(): Session<K, V>[] {
    return this.backend
      .entries()
      .filter(([sk]) => (sk[1] as number) >= this.observed - this.retentionMs)
      .map(([sk, v]) => ({
        key: decodeKey<K>(sk[0] as string),
        end: sk[1] as number,
        start: sk[2] as number,
        value: v as V,
      }));
  }
}

export type AnyStore =
  | KeyValueStoreImpl<unknown, unknown>
  | WindowStoreImpl<unknown, unknown>
  | SessionStoreImpl<unknown, unknown>;

export function createStore(spec: StoreSpec, backend: Backend, logger: ChangeLogger | null): AnyStore {
  const log = spec.logging ? logger : null;
  switch (spec.type) {
    case 'keyValue':
      return new KeyValueStoreImpl(spec.name, backend, log);
    case 'window':
      return new WindowStoreImpl(spec.name, backend, log, spec.retentionMs ?? 86_400_000);
    case 'session':
      return new SessionStoreImpl(spec.name, backend, log, spec.retentionMs ?? 86_400_000);
    default:
      throw invalidArgument('store.type', "'keyValue', 'window' or 'session'", spec.type);
  }
}

export function storeNotFound(name: string, known: string[]): TributaryError {
  return new TributaryError(
    'NOT_FOUND',
    `state store ${JSON.stringify(name)} does not exist; known stores: ${known.join(', ') || '(none)'}`,
  );
}
