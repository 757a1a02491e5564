import { invalidArgument, TributaryError } from '../core/index.ts';
import type { Node, OutRecord } from './node.ts';
import type { SourceNode } from './ops.ts';
import { type Serde, Serdes } from './serdes.ts';
import {
  type KeyValueStore,
  KeyValueStoreImpl,
  type LmdbEnv,
  type ReadOnlySessionStore,
  type ReadOnlyWindowStore,
  SessionStoreImpl,
  WindowStoreImpl,
} from './stores.ts';
import { type EventTimeConfig, StreamTask } from './task.ts';
import type { Topology } from './topology.ts';
import type { RecordHeaders, StreamRecord } from './types.ts';

export interface TestDriverConfig {
  applicationId?: string;
  defaultKeySerde?: Serde<unknown>;
  defaultValueSerde?: Serde<unknown>;
  /** Watermark mode (see EventTimeConfig); omit for Kafka Streams' stream time. */
  eventTime?: EventTimeConfig;
  /** Start of the mocked wall clock (epoch ms, default 0). */
  initialWallClockMs?: number;
  /** Persist stores in LMDB under this directory (default: in memory). */
  lmdb?: LmdbEnv;
  /** Write changelog records for logged stores (default true); off when nothing will restore from them. */
  changelog?: boolean;
  /**
   * Receives every record sent to an output (non-internal) topic instead of the driver collecting it: in-process
   * runs send results on to a log as they come.
   */
  onOutput?: (out: OutRecord) => void;
}

/** A record read from an output topic of the test driver. */
export interface TestRecord<K, V> {
  key: K | null;
  value: V | null;
  timestamp: number;
  headers: RecordHeaders;
  partition?: number | undefined;
}

/**
 * Runs a topology synchronously in memory, as Kafka Streams' TopologyTestDriver: pipe records with timestamps,
 * advance the mocked wall clock, read output topics and stores. Repartition topics loop back immediately.
 */
export class TopologyTestDriver {
  readonly task: StreamTask;
  private readonly outputs = new Map<string, OutRecord[]>();
  private readonly internalQueue: OutRecord[] = [];
  private readonly internalTopics: Set<string>;
  private readonly loopTopics: Set<string>;
  private readonly globals = new Map<string, SourceNode>();
  private wall: number;
  private readonly offsets = new Map<string, { next: number }>();
  private draining = false;
  private readonly onOutput: ((out: OutRecord) => void) | undefined;

  constructor(topology: Topology, config: TestDriverConfig = {}) {
    const applicationId = config.applicationId ?? 'test-app';
    this.wall = config.initialWallClockMs ?? 0;
    const env = config.lmdb;
    this.task = new StreamTask({
      applicationId,
      taskId: '0_0',
      partition: 0,
      topology,
      eventTime: config.eventTime,
      defaultKeySerde: config.defaultKeySerde ?? Serdes.JSON(),
      defaultValueSerde: config.defaultValueSerde ?? Serdes.JSON(),
      emit: (out) => this.collect(out),
      wallClock: () => this.wall,
      ...(env === undefined ? {} : { backendFor: (spec) => env.backend(spec.name) }),
      onAsyncOutput: () => this.drainInternal(),
      ...(config.changelog === undefined ? {} : { changelog: config.changelog }),
    });
    this.onOutput = config.onOutput;
    this.task.initialize();
    this.loopTopics = new Set(topology.sourceTopics());
    this.internalTopics = new Set(topology.internalTopics().map((t) => `${applicationId}-${t}`));
    for (const t of this.task.inputTopics()) this.task.registerPartition(t, 0);
    for (const g of topology.globals) {
      const node = g.create() as SourceNode;
      const init = (n: Node): void => {
        n.init(this.task);
        for (const c of n.children) init(c);
      };
      init(node);
      this.globals.set(g.topic, node);
    }
  }

  private collect(out: OutRecord): void {
    if (this.internalTopics.has(out.topic)) {
      this.internalQueue.push(out);
      return;
    }
    // A topic the topology also reads (through(), or to() then stream()) is fed back, and stays readable.
    if (this.loopTopics.has(out.topic)) this.internalQueue.push(out);
    if (this.onOutput !== undefined) {
      this.onOutput(out);
      return;
    }
    let list = this.outputs.get(out.topic);
    if (list === undefined) {
      list = [];
      this.outputs.set(out.topic, list);
    }
    list.push(out);
  }

  private lastOffsetTopic: string | null = null;
  private lastOffsets = { next: 0 };
  private nextOffset(topic: string): number {
    if (topic === this.lastOffsetTopic) return this.lastOffsets.next++;
    let c = this.offsets.get(topic);
    if (c === undefined) {
      c = { next: 0 };
      this.offsets.set(topic, c);
    }
    this.lastOffsetTopic = topic;
    this.lastOffsets = c;
    return c.next++;
  }

  private drainInternal(): void {
    if (this.draining) return;
    this.draining = true;
    const q = this.internalQueue;
    let taken = 0;
    try {
      for (;;) {
        // By index, not shift() (linear in the queue length): processing a record may queue more.
        for (; taken < q.length; ) {
          const r = q[taken++] as OutRecord;
          this.task.process(r.topic, 0, this.nextOffset(r.topic), r.key, r.value, r.timestamp, r.headers);
        }
        // Watermark markers follow the records written before them, as on the log.
        const markers = this.task.watermarkMarkers();
        if (markers.length === 0) break;
        for (const m of markers) q.push(m);
      }
    } finally {
      if (taken > 0) q.splice(0, taken);
      this.draining = false;
    }
  }

  /** Forwards what record caches hold, as a commit would (done whenever outputs are read). */
  flushCaches(): void {
    this.task.flushCaches();
    this.drainInternal();
  }

  /** Pipes one serialized record into a topic. */
  pipeRaw(
    topic: string,
    key: Buffer | null,
    value: Buffer | null,
    timestamp: number,
    headers: RecordHeaders = [],
  ): void {
    if (!Number.isFinite(timestamp)) throw invalidArgument('timestamp', 'a finite epoch-ms number', timestamp);
    const g = this.globals.get(topic);
    if (g !== undefined) {
      g.process(g.extract(topic, 0, key, value, timestamp, headers));
      return;
    }
    this.task.process(topic, 0, this.nextOffset(topic), key, value, timestamp, headers);
    this.drainInternal();
  }

  /**
   * Pipes one record that is already an object into a source topic (no serde on the way in), as an in-process
   * source such as a data generator feeds a job.
   */
  pipeValue(topic: string, key: unknown, value: unknown, timestamp: number, headers: RecordHeaders = []): void {
    if (!Number.isFinite(timestamp)) throw invalidArgument('timestamp', 'a finite epoch-ms number', timestamp);
    this.task.processValue(topic, 0, this.nextOffset(topic), key, value, timestamp, headers);
    this.drainInternal();
  }

  createInputTopic<K, V>(
    topic: string,
    keySerde: Serde<K>,
    valueSerde: Serde<V>,
    opts: { startTimestamp?: number; autoAdvance?: number } = {},
  ): TestInputTopic<K, V> {
    const known = [...this.task.inputTopics(), ...this.globals.keys()];
    if (!known.includes(topic))
      throw invalidArgument('topic', `an input topic of the topology (${known.join(', ')})`, topic);
    return new TestInputTopic(this, topic, keySerde, valueSerde, opts.startTimestamp ?? 0, opts.autoAdvance ?? 0);
  }

  createOutputTopic<K, V>(topic: string, keySerde: Serde<K>, valueSerde: Serde<V>): TestOutputTopic<K, V> {
    return new TestOutputTopic(this, topic, keySerde, valueSerde);
  }

  /** @internal */
  take(topic: string, n: number): OutRecord[] {
    this.flushCaches();
    this.task.flushChangelog();
    const list = this.outputs.get(topic) ?? [];
    return list.splice(0, n);
  }
  /** @internal */
  queued(topic: string): number {
    this.flushCaches();
    this.task.flushChangelog();
    return this.outputs.get(topic)?.length ?? 0;
  }
  /** Topics that received output so far (including changelog topics). */
  producedTopicNames(): string[] {
    this.flushCaches();
    this.task.flushChangelog();
    return [...this.outputs.keys()];
  }

  advanceWallClockTime(ms: number): void {
    if (!(ms >= 0)) throw invalidArgument('advanceWallClockTime', 'a non-negative number of ms', ms);
    this.wall += ms;
    this.task.advanceWallClock();
    this.drainInternal();
  }

  /** Waits until every async call has completed and its result has been forwarded. */
  async settle(): Promise<void> {
    for (let i = 0; this.task.pendingAsync() > 0; i++) {
      await new Promise((r) => setImmediate(r));
      this.task.drainAsync();
      if (i > 1e6) throw new TributaryError('TIMEOUT', 'async calls did not settle');
    }
    this.task.drainAsync();
    this.drainInternal();
  }

  get metrics() {
    return this.task.metrics;
  }
  /** Event time of the task (stream time, or the watermark in watermark mode). */
  streamTime(): number {
    return this.task.currentTime();
  }

  getKeyValueStore<K, V>(name: string): KeyValueStore<K, V> {
    const s = this.task.store(name);
    if (!(s instanceof KeyValueStoreImpl)) throw invalidArgument('store', `a key-value store (${name} is not)`);
    return s as KeyValueStore<K, V>;
  }
  getWindowStore<K, V>(name: string): ReadOnlyWindowStore<K, V> {
    const s = this.task.store(name);
    if (!(s instanceof WindowStoreImpl)) throw invalidArgument('store', `a window store (${name} is not)`);
    return s as ReadOnlyWindowStore<K, V>;
  }
  getSessionStore<K, V>(name: string): ReadOnlySessionStore<K, V> {
    const s = this.task.store(name);
    if (!(s instanceof SessionStoreImpl)) throw invalidArgument('store', `a session store (${name} is not)`);
    return s as ReadOnlySessionStore<K, V>;
  }

  close(): void {
    this.task.close();
  }
}

export class TestInputTopic<K, V> {
  private readonly driver: TopologyTestDriver;
  private readonly topic: string;
  private readonly keySerde: Serde<K>;
  private readonly valueSerde: Serde<V>;
  private nextTs: number;
  private readonly advance: number;

  constructor(
    driver: TopologyTestDriver,
    topic: string,
    keySerde: Serde<K>,
    valueSerde: Serde<V>,
    start: number,
    advance: number,
  ) {
    this.driver = driver;
    this.topic = topic;
    this.keySerde = keySerde;
    this.valueSerde = valueSerde;
    this.nextTs = start;
    this.advance = advance;
  }
  pipeInput(key: K | null, value: V | null, timestamp?: number, headers: RecordHeaders = []): void {
    const ts = timestamp ?? this.nextTs;
    if (timestamp === undefined) this.nextTs += this.advance;
    this.driver.pipeRaw(
      this.topic,
      this.keySerde.serialize(this.topic, key),
      this.valueSerde.serialize(this.topic, value),
      ts,
      headers,
    );
  }
  pipeValueList(values: V[]): void {
    for (const v of values) this.pipeInput(null, v);
  }
  pipeKeyValueList(pairs: [K, V][]): void {
    for (const [k, v] of pairs) this.pipeInput(k, v);
  }
  advanceTime(ms: number): void {
    this.nextTs += ms;
  }
}

export class TestOutputTopic<K, V> {
  private readonly driver: TopologyTestDriver;
  private readonly topic: string;
  private readonly keySerde: Serde<K>;
  private readonly valueSerde: Serde<V>;

  constructor(driver: TopologyTestDriver, topic: string, keySerde: Serde<K>, valueSerde: Serde<V>) {
    this.driver = driver;
    this.topic = topic;
    this.keySerde = keySerde;
    this.valueSerde = valueSerde;
  }
  private decode(r: OutRecord): TestRecord<K, V> {
    return {
      key: this.keySerde.deserialize(this.topic, r.key),
      value: this.valueSerde.deserialize(this.topic, r.value),
      timestamp: r.timestamp,
      headers: r.headers,
      partition: r.partition,
    };
  }
  readRecord(): TestRecord<K, V> {
    const [r] = this.driver.take(this.topic, 1);
    if (r === undefined) throw new TributaryError('NOT_FOUND', `output topic ${this.topic} is empty`);
    return this.decode(r);
  }
  readValue(): V | null {
    return this.readRecord().value;
  }
  readKeyValue(): [K | null, V | null] {
    const r = this.readRecord();
    return [r.key, r.value];
  }
  readRecordsToList(): TestRecord<K, V>[] {
    return this.driver.take(this.topic, Number.MAX_SAFE_INTEGER).map((r) => this.decode(r));
  }
  readValuesToList(): (V | null)[] {
    return this.readRecordsToList().map((r) => r.value);
  }
  readKeyValuesToList(): [K | null, V | null][] {
    return this.readRecordsToList().map((r) => [r.key, r.value]);
  }
  /** Latest value per key (by JSON of the key). */
  readKeyValuesToMap(): Map<string, V | null> {
    const m = new Map<string, V | null>();
    for (const r of this.readRecordsToList()) m.set(JSON.stringify(r.key), r.value);
    return m;
  }
  getQueueSize(): number {
    return this.driver.queued(this.topic);
  }
  isEmpty(): boolean {
    return this.getQueueSize() === 0;
  }
}

export type { StreamRecord };
