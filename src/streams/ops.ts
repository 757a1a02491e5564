import { invalidArgument, TributaryError } from '../core/index.ts';
import { Node, type TaskRuntime } from './node.ts';
import { defaultPartition } from './partitioner.ts';
import { type Serde, Serdes } from './serdes.ts';
import type { AnyStore } from './stores.ts';
import type { RecordHeaders, StreamRecord } from './types.ts';

export type TimestampExtractor = (
  record: { key: unknown; value: unknown; timestamp: number; topic: string; partition: number },
  previousTimestamp: number,
) => number;

/** A source: deserializes raw topic records. The task calls `extract` (for time) then `process`. */
export class SourceNode extends Node {
  private keySerde: Serde<unknown>;
  private valueSerde: Serde<unknown>;
  readonly extractor: TimestampExtractor | undefined;
  private previous = Number.NEGATIVE_INFINITY;

  constructor(
    name: string,
    keySerde: Serde<unknown> | undefined,
    valueSerde: Serde<unknown> | undefined,
    extractor?: TimestampExtractor,
  ) {
    super(name);
    // Unset serdes are filled from the job's defaults at init.
    this.keySerde = keySerde as Serde<unknown>;
    this.valueSerde = valueSerde as Serde<unknown>;
    this.extractor = extractor;
  }
  override init(task: TaskRuntime): void {
    super.init(task);
    this.keySerde ??= task.defaultKeySerde;
    this.valueSerde ??= task.defaultValueSerde;
  }
  extract(
    topic: string,
    partition: number,
    key: Buffer | null,
    value: Buffer | null,
    timestamp: number,
    headers: RecordHeaders,
  ): StreamRecord<unknown, unknown> {
    const k = this.keySerde.deserialize(topic, key);
    const v = this.valueSerde.deserialize(topic, value);
    let ts = timestamp;
    if (this.extractor !== undefined) {
      ts = this.extractor({ key: k, value: v, timestamp, topic, partition }, this.previous);
      if (!Number.isFinite(ts)) throw invalidArgument('timestampExtractor', 'a finite epoch-ms timestamp', ts);
    }
    this.previous = Math.max(this.previous, ts);
    return { key: k, value: v, timestamp: ts, headers };
  }
  /** A record from an in-process source (already objects): only the timestamp extractor applies. */
  wrap(
    topic: string,
    partition: number,
    key: unknown,
    value: unknown,
    timestamp: number,
    headers: RecordHeaders,
  ): StreamRecord<unknown, unknown> {
    let ts = timestamp;
    if (this.extractor !== undefined) {
      ts = this.extractor({ key, value, timestamp, topic, partition }, this.previous);
      if (!Number.isFinite(ts)) throw invalidArgument('timestampExtractor', 'a finite epoch-ms timestamp', ts);
    }
    if (ts > this.previous) this.previous = ts;
    return { key, value, timestamp: ts, headers };
  }
  /** The serialized form of a record of this source (late records of in-process sources go out in it). */
  serialize(topic: string, rec: StreamRecord<unknown, unknown>): { key: Buffer | null; value: Buffer | null } {
    return { key: this.keySerde.serialize(topic, rec.key), value: this.valueSerde.serialize(topic, rec.value) };
  }
  process(rec: StreamRecord<unknown, unknown>): void {
    this.forward(rec);
  }
}

export type Partitioner<K, V> = (topic: string, key: K, value: V, partitionCount: number) => number | undefined;

export class SinkNode extends Node {
  private readonly topicFor: (rec: StreamRecord<unknown, unknown>) => string;
  private keySerde: Serde<unknown>;
  private valueSerde: Serde<unknown>;
  private readonly partitioner: Partitioner<unknown, unknown> | undefined;
  private readonly internal: boolean;
  /** Keys are `Windowed`: the key serde is the inner key's, wrapped in Serdes.Windowed. */
  private readonly windowedKey: boolean;
  private lastTopic = '';
  private lastResolved = '';

  constructor(
    name: string,
    topicFor: (rec: StreamRecord<unknown, unknown>) => string,
    keySerde: Serde<unknown> | undefined,
    valueSerde: Serde<unknown> | undefined,
    partitioner: Partitioner<unknown, unknown> | undefined,
    internal: boolean,
    windowedKey = false,
  ) {
    super(name);
    this.windowedKey = windowedKey;
    this.topicFor = topicFor;
    this.keySerde = keySerde as Serde<unknown>;
    this.valueSerde = valueSerde as Serde<unknown>;
    this.partitioner = partitioner;
    this.internal = internal;
  }
  override init(task: TaskRuntime): void {
    super.init(task);
    this.keySerde ??= task.defaultKeySerde;
    this.valueSerde ??= task.defaultValueSerde;
    if (this.windowedKey) this.keySerde = Serdes.Windowed(this.keySerde) as Serde<unknown>;
  }
  process(rec: StreamRecord<unknown, unknown>): void {
    const t = this.topicFor(rec);
    // Internal (repartition) topics belong to the application: their names carry its id. The name is kept, not
    // rebuilt per record (a fresh string is hashed again by every Map lookup downstream).
    let topic = t;
    if (this.internal) {
      if (t !== this.lastTopic) {
        this.lastTopic = t;
        this.lastResolved = `${this.task.applicationId}-${t}`;
      }
      topic = this.lastResolved;
    }
    const key = this.keySerde.serialize(topic, rec.key);
    const value = this.valueSerde.serialize(topic, rec.value);
    let partition: number | undefined;
    const count = this.task.partitionCount(topic);
    if (count !== undefined) {
      if (this.partitioner !== undefined) partition = this.partitioner(topic, rec.key, rec.value, count);
      if (partition === undefined && key !== null) partition = defaultPartition(key, count);
      if (partition !== undefined && (!Number.isInteger(partition) || partition < 0 || partition >= count))
        throw invalidArgument('partitioner', `a partition in [0, ${count}) for topic ${topic}`, partition);
    }
    this.task.metrics.recordsOut++;
    this.task.emit({ topic, key, value, timestamp: rec.timestamp, headers: rec.headers, partition });
  }
}

// ---- Processor API ----

export interface Cancellable {
  cancel(): void;
}

export interface Timer<K> {
  timestamp: number;
  kind: 'event-time' | 'processing-time';
  key: K | undefined;
}

export interface ProcessorContext<KOut = unknown, VOut = unknown> {
  readonly taskId: string;
  readonly applicationId: string;
  readonly partition: number;
  /** Sends a record to every downstream node, or only to the named child. */
  forward(record: StreamRecord<KOut, VOut>, childName?: string): void;
  getStateStore<S = AnyStore>(name: string): S;
  /** Event time of the task: stream time (max timestamp seen) or the watermark in watermark mode. */
  currentStreamTime(): number;
  currentSystemTimeMs(): number;
  /** Topic, partition and offset of the input record being processed (null inside timers). */
  recordMetadata(): { topic: string; partition: number; offset: number } | null;
  /** Kafka Streams' punctuation: calls back every interval of stream time or of wall-clock time. */
  schedule(intervalMs: number, type: 'stream-time' | 'wall-clock', callback: (timestamp: number) => void): Cancellable;
  /** Flink-style timers: `onTimer` is called once event time (or wall-clock time) reaches the timestamp. */
  registerEventTimeTimer(timestamp: number, key?: unknown): void;
  registerProcessingTimeTimer(timestamp: number, key?: unknown): void;
  deleteEventTimeTimer(timestamp: number, key?: unknown): void;
  deleteProcessingTimeTimer(timestamp: number, key?: unknown): void;
}

export interface Processor<KIn, VIn, KOut = KIn, VOut = VIn> {
  init?(ctx: ProcessorContext<KOut, VOut>): void;
  process(record: StreamRecord<KIn, VIn>, ctx: ProcessorContext<KOut, VOut>): void;
  onTimer?(timer: Timer<unknown>, ctx: ProcessorContext<KOut, VOut>): void;
  close?(): void;
}

interface Punctuation {
  interval: number;
  next: number;
  cb: (ts: number) => void;
  cancelled: boolean;
}

/** Sorted timer set; ties fire in registration order. */
class TimerQueue {
  private items: { ts: number; key: unknown; id: string }[] = [];
  private readonly ids = new Set<string>();
  add(ts: number, key: unknown): void {
    const id = `${ts}|${JSON.stringify(key) ?? ''}`;
    if (this.ids.has(id)) return;
    this.ids.add(id);
    let i = this.items.length;
    while (i > 0 && (this.items[i - 1] as { ts: number }).ts > ts) i--;
    this.items.splice(i, 0, { ts, key, id });
  }
  remove(ts: number, key: unknown): void {
    const id = `${ts}|${JSON.stringify(key) ?? ''}`;
    if (!this.ids.delete(id)) return;
    this.items = this.items.filter((t) => t.id !== id);
  }
  popDue(now: number): { ts: number; key: unknown } | undefined {
    const first = this.items[0];
    if (first === undefined || first.ts > now) return undefined;
    this.items.shift();
    this.ids.delete(first.id);
    return first;
  }
}

export class ProcessorApiNode extends Node {
  private readonly supplier: () => Processor<unknown, unknown, unknown, unknown>;
  private processor!: Processor<unknown, unknown, unknown, unknown>;
  private ctx!: ProcessorContext;
  private readonly storeNames: string[];
  private readonly punctuations: { stream: Punctuation[]; wall: Punctuation[] } = { stream: [], wall: [] };
  private readonly eventTimers = new TimerQueue();
  private readonly wallTimers = new TimerQueue();
  private inTimer = false;

  constructor(name: string, supplier: () => Processor<unknown, unknown, unknown, unknown>, storeNames: string[]) {
    super(name);
    this.supplier = supplier;
    this.storeNames = storeNames;
  }
  override init(task: TaskRuntime): void {
    super.init(task);
    this.processor = this.supplier();
    this.ctx = {
      taskId: task.taskId,
      applicationId: task.applicationId,
      partition: task.partition,
      forward: (rec, child) => this.forward(rec as StreamRecord<unknown, unknown>, child),
      getStateStore: <S>(name: string): S => {
        if (!this.storeNames.includes(name))
          throw new TributaryError(
            'INVALID_ARGUMENT',
            `processor ${this.name} asked for store ${JSON.stringify(name)} which is not connected to it; connected: ${this.storeNames.join(', ') || '(none)'}`,
            { field: 'storeName' },
          );
        return task.store(name) as S;
      },
      currentStreamTime: () => this.time,
      currentSystemTimeMs: () => task.wallClock(),
      recordMetadata: () => (this.inTimer ? null : task.currentRecord()),
      schedule: (intervalMs, type, cb) => {
        if (!(intervalMs > 0)) throw invalidArgument('schedule.intervalMs', 'a positive number of ms', intervalMs);
        const base = type === 'wall-clock' ? task.wallClock() : Number.isFinite(this.time) ? this.time : 0;
        const p: Punctuation = { interval: intervalMs, next: base + intervalMs, cb, cancelled: false };
        (type === 'wall-clock' ? this.punctuations.wall : this.punctuations.stream).push(p);
        return {
          cancel: () => {
            p.cancelled = true;
          },
        };
      },
      registerEventTimeTimer: (ts, key) => this.eventTimers.add(ts, key),
      registerProcessingTimeTimer: (ts, key) => this.wallTimers.add(ts, key),
      deleteEventTimeTimer: (ts, key) => this.eventTimers.remove(ts, key),
      deleteProcessingTimeTimer: (ts, key) => this.wallTimers.remove(ts, key),
    };
    this.processor.init?.(this.ctx);
  }
  process(rec: StreamRecord<unknown, unknown>): void {
    this.processor.process(rec, this.ctx);
  }
  private fire(list: Punctuation[], now: number): void {
    for (const p of list) {
      if (p.cancelled || now < p.next) continue;
      // Like Kafka Streams: one call per advance, then the schedule skips ahead past `now`.
      p.cb(now);
      p.next = now - ((now - p.next) % p.interval) + p.interval;
    }
  }
  private fireTimers(q: TimerQueue, kind: Timer<unknown>['kind'], now: number): void {
    for (let t = q.popDue(now); t !== undefined; t = q.popDue(now)) {
      this.inTimer = true;
      try {
        this.processor.onTimer?.({ timestamp: t.ts, kind, key: t.key }, this.ctx);
      } finally {
        this.inTimer = false;
      }
    }
  }
  protected override advance(t: number): void {
    this.fireTimers(this.eventTimers, 'event-time', t);
    this.fire(this.punctuations.stream, t);
  }
  override onWallClock(now: number): void {
    this.fireTimers(this.wallTimers, 'processing-time', now);
    this.fire(this.punctuations.wall, now);
  }
  override close(): void {
    this.processor.close?.();
  }
}

// ---- async enrichment ----

export interface AsyncOptions<V, R> {
  /** Max calls in flight per task (default 100). */
  concurrency?: number;
  /** Per-call timeout in ms; on timeout the fallback is used (default: no timeout). */
  timeoutMs?: number;
  /** Result used when the call fails or times out; without one the record is dropped and counted as skipped. */
  fallback?: (value: V, error: unknown) => R;
  /** 'ordered' (default) keeps input order; 'unordered' emits results as they complete. */
  mode?: 'ordered' | 'unordered';
}

interface InFlight {
  rec: StreamRecord<unknown, unknown>;
  done: boolean;
  ok: boolean;
  result: unknown;
  seq: number;
}

/**
 * Calls an async function per record without blocking the task: up to `concurrency` calls in flight, the rest
 * queued. Results are forwarded when the task drains (after each batch and when a call completes). Event time
 * downstream is held at the earliest in-flight timestamp so windows never close under a pending record.
 */
export class AsyncNode extends Node {
  private readonly fn: (key: unknown, value: unknown, signal: AbortSignal) => Promise<unknown>;
  private readonly opts: Required<Pick<AsyncOptions<unknown, unknown>, 'concurrency' | 'mode'>> &
    AsyncOptions<unknown, unknown>;
  private readonly inFlight: InFlight[] = [];
  private readonly waiting: InFlight[] = [];
  private running = 0;
  private seq = 0;

  constructor(
    name: string,
    fn: (key: unknown, value: unknown, signal: AbortSignal) => Promise<unknown>,
    opts: AsyncOptions<unknown, unknown>,
  ) {
    super(name);
    const concurrency = opts.concurrency ?? 100;
    if (!Number.isInteger(concurrency) || concurrency < 1)
      throw invalidArgument('async.concurrency', 'a positive integer', concurrency);
    if (opts.timeoutMs !== undefined && !(opts.timeoutMs > 0))
      throw invalidArgument('async.timeoutMs', 'a positive number of ms', opts.timeoutMs);
    this.fn = fn;
    this.opts = { ...opts, concurrency, mode: opts.mode ?? 'ordered' };
  }
  process(rec: StreamRecord<unknown, unknown>): void {
    const e: InFlight = { rec, done: false, ok: false, result: undefined, seq: this.seq++ };
    this.inFlight.push(e);
    if (this.running < this.opts.concurrency) this.start(e);
    else this.waiting.push(e);
  }
  private start(e: InFlight): void {
    this.running++;
    const ac = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const finish = (ok: boolean, result: unknown): void => {
      if (e.done) return;
      if (timer !== undefined) clearTimeout(timer);
      e.done = true;
      e.ok = ok;
      e.result = result;
      this.running--;
      const next = this.waiting.shift();
      if (next !== undefined) this.start(next);
      this.task.wake();
    };
    if (this.opts.timeoutMs !== undefined) {
      timer = setTimeout(() => {
        ac.abort();
        finish(
          false,
          new TributaryError('TIMEOUT', `async call in ${this.name} took longer than ${this.opts.timeoutMs} ms`),
        );
      }, this.opts.timeoutMs);
    }
    let p: Promise<unknown>;
    try {
      p = Promise.resolve(this.fn(e.rec.key, e.rec.value, ac.signal));
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then(
      (r) => finish(true, r),
      (err) => finish(false, err),
    );
  }
  private emitOne(e: InFlight): void {
    if (e.ok) {
      this.forward({ ...e.rec, value: e.result });
    } else if (this.opts.fallback !== undefined) {
      this.forward({ ...e.rec, value: this.opts.fallback(e.rec.value, e.result) });
    } else {
      this.task.metrics.skippedRecords++;
    }
  }
  override drain(): boolean {
    let any = false;
    if (this.opts.mode === 'ordered') {
      while (this.inFlight.length > 0 && (this.inFlight[0] as InFlight).done) {
        this.emitOne(this.inFlight.shift() as InFlight);
        any = true;
      }
    } else {
      for (let i = 0; i < this.inFlight.length; ) {
        const e = this.inFlight[i] as InFlight;
        if (e.done) {
          this.inFlight.splice(i, 1);
          this.emitOne(e);
          any = true;
        } else i++;
      }
    }
    return any;
  }
  override holdsTime(): number {
    let min = Number.POSITIVE_INFINITY;
    for (const e of this.inFlight) if (e.rec.timestamp < min) min = e.rec.timestamp;
    return min;
  }
  override pending(): number {
    return this.inFlight.length;
  }
}
