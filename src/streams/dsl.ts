import { invalidArgument, parseDuration, TributaryError } from '../core/index.ts';
import {
  type JoinKind,
  StreamStreamJoinNode,
  StreamTableJoinNode,
  TableTableJoinNode,
  type ValueJoiner,
  VersionedStreamTableJoinNode,
} from './joins.ts';
import { FnNode, Node, withKeyValue, withValue } from './node.ts';
import {
  AsyncNode,
  type AsyncOptions,
  type Partitioner,
  type Processor,
  ProcessorApiNode,
  SinkNode,
  SourceNode,
  type TimestampExtractor,
} from './ops.ts';
import type { Serde } from './serdes.ts';
import { Serdes } from './serdes.ts';
import {
  AggregateNode,
  type Aggregator,
  CacheNode,
  type Initializer,
  type Merger,
  SessionAggregateNode,
  SlidingAggregateNode,
  type SuppressMode,
  SuppressNode,
  TableAggregateNode,
  TableSourceNode,
  TableTransformNode,
  tableRegroup,
  WindowAggregateNode,
} from './stateful.ts';
import type { StoreSpec, StoreType } from './stores.ts';
import { type GlobalSpec, type NodeSpec, Topology } from './topology.ts';
import type { Change, KeyValue, StreamRecord, Windowed } from './types.ts';
import { type DurationLike, type JoinWindows, SessionWindows, SlidingWindows, TimeWindows } from './windows.ts';

type Rec = StreamRecord<unknown, unknown>;

export interface Consumed<K, V> {
  keySerde?: Serde<K>;
  valueSerde?: Serde<V>;
  timestampExtractor?: TimestampExtractor;
}

/** For windowed keys, serdes name the inner key type; the sink wraps them in Serdes.Windowed. */
export type InnerKey<K> = K extends Windowed<infer I> ? I : K;

export interface Produced<K, V> {
  keySerde?: Serde<InnerKey<K>> | Serde<K>;
  valueSerde?: Serde<V>;
  /** Chooses a partition; return undefined for the default (murmur2 of the serialized key). */
  partitioner?: Partitioner<K, V>;
}

export interface Materialized {
  /** Name of the store (queryable under this name); generated when omitted. */
  storeName?: string;
  /** Window/session stores: how long windows are kept (default max(1 day, size + grace)). */
  retention?: DurationLike;
  /** Write a changelog topic (default true). */
  logging?: boolean;
  /**
   * Kafka Streams' record cache: forward each key's latest update once per commit instead of every update
   * (default false, i.e. Kafka Streams with the cache disabled).
   */
  cache?: boolean;
}

export interface Repartitioned<K, V> {
  name?: string;
  keySerde?: Serde<K>;
  valueSerde?: Serde<V>;
  /** Chooses the repartition topic partition (default murmur2 of the key); the topic has the job's task count. */
  partitioner?: Partitioner<K, V>;
}

/** suppress() configurations. */
export const Suppressed = {
  /** Emit only the final result of each window, once event time passes its end plus grace. */
  untilWindowCloses: (): { kind: 'untilWindowCloses' } => ({ kind: 'untilWindowCloses' }),
  /** Emit the latest value per key once `limit` of event time has passed since it was first buffered. */
  untilTimeLimit: (limit: DurationLike): { kind: 'untilTimeLimit'; limitMs: number } => ({
    kind: 'untilTimeLimit',
    limitMs: parseDuration(limit, 'Suppressed.untilTimeLimit'),
  }),
};
export type SuppressConfig =
  | ReturnType<typeof Suppressed.untilWindowCloses>
  | ReturnType<typeof Suppressed.untilTimeLimit>;

/**
 * When a time-windowed aggregation emits (Kafka Streams' EmitStrategy, KIP-825): on every update (default), or once
 * per window with its final value when event time passes its end plus grace. `onWindowClose` gives what
 * `suppress(untilWindowCloses())` gives without the suppression buffer: updates only touch the window store.
 */
export const EmitStrategy = {
  onWindowUpdate: (): { type: 'onWindowUpdate' } => ({ type: 'onWindowUpdate' }),
  onWindowClose: (): { type: 'onWindowClose' } => ({ type: 'onWindowClose' }),
};
export type EmitStrategyConfig =
  | ReturnType<typeof EmitStrategy.onWindowUpdate>
  | ReturnType<typeof EmitStrategy.onWindowClose>;

function checkEmitStrategy(strategy: EmitStrategyConfig): EmitStrategyConfig {
  if (strategy?.type !== 'onWindowUpdate' && strategy?.type !== 'onWindowClose')
    throw invalidArgument('emitStrategy', 'EmitStrategy.onWindowUpdate() or EmitStrategy.onWindowClose()', strategy);
  return strategy;
}

interface WindowInfo {
  window: 'time' | 'session';
  graceMs: number;
}

/** Builds a topology with the Kafka Streams DSL. */
export class StreamsBuilder {
  private readonly nodes: NodeSpec[] = [];
  private readonly stores = new Map<string, StoreSpec>();
  private readonly globals: GlobalSpec[] = [];
  private counter = 0;
  private built = false;

  /** @internal */
  name(prefix: string): string {
    return `${prefix}-${String(this.counter++).padStart(10, '0')}`;
  }
  /** @internal */
  addNode(spec: NodeSpec): string {
    if (this.built)
      throw new TributaryError('CONFLICT', 'StreamsBuilder.build() was already called; create a new builder');
    if (this.nodes.some((n) => n.name === spec.name))
      throw invalidArgument('name', `a unique processor name (${JSON.stringify(spec.name)} is taken)`);
    this.nodes.push(spec);
    return spec.name;
  }
  /** @internal */
  addStore(spec: StoreSpec): string {
    const existing = this.stores.get(spec.name);
    if (existing !== undefined)
      throw invalidArgument('storeName', `a unique store name (${JSON.stringify(spec.name)} is already used)`);
    this.stores.set(spec.name, spec);
    return spec.name;
  }
  /** @internal inserts a record cache after an aggregation when asked for. */
  cached(nodeName: string, materialized: Materialized, windowed = false): string {
    if (materialized.cache !== true) return nodeName;
    const name = this.name('KTABLE-CACHE');
    this.addNode({
      name,
      kind: 'processor',
      parents: [nodeName],
      stores: [],
      create: () => new CacheNode(name, windowed),
    });
    return name;
  }
  /** @internal */
  addGlobal(spec: GlobalSpec): void {
    this.globals.push(spec);
  }

  stream<K = unknown, V = unknown>(topics: string | string[], consumed: Consumed<K, V> = {}): KStream<K, V> {
    const list = typeof topics === 'string' ? [topics] : topics;
    if (list.length === 0 || list.some((t) => typeof t !== 'string' || t.length === 0))
      throw invalidArgument('topics', 'one or more non-empty topic names', topics);
    const name = this.name('KSTREAM-SOURCE');
    this.addNode({
      name,
      kind: 'source',
      parents: [],
      stores: [],
      topics: list,
      create: () =>
        new SourceNode(
          name,
          consumed.keySerde as Serde<unknown>,
          consumed.valueSerde as Serde<unknown>,
          consumed.timestampExtractor,
        ),
    });
    return new KStream<K, V>(this, name, { keySerde: consumed.keySerde, valueSerde: consumed.valueSerde });
  }

  /**
   * A table from a topic. `versioned` keeps each key's history for `historyRetention` so that stream-table joins
   * with a grace period can join the version valid at a stream record's timestamp.
   */
  table<K = unknown, V = unknown>(
    topic: string,
    consumed: Consumed<K, V> & Materialized & { versioned?: { historyRetention: DurationLike } } = {},
  ): KTable<K, V> {
    const s = this.stream<K, V>(topic, consumed);
    const storeName = consumed.storeName ?? this.name('KTABLE-SOURCE-STATE-STORE');
    const logging = consumed.logging ?? true;
    this.addStore({ name: storeName, type: 'keyValue', logging });
    let versioned: { store: string; historyRetentionMs: number } | undefined;
    if (consumed.versioned !== undefined) {
      versioned = {
        store: `${storeName}-versions`,
        historyRetentionMs: parseDuration(consumed.versioned.historyRetention, 'versioned.historyRetention'),
      };
      this.addStore({ name: versioned.store, type: 'keyValue', logging });
    }
    const name = this.name('KTABLE-SOURCE');
    const stores = versioned === undefined ? [storeName] : [storeName, versioned.store];
    this.addNode({
      name,
      kind: 'processor',
      parents: [s.nodeName],
      stores,
      create: () => new TableSourceNode(name, storeName, versioned),
    });
    return new KTable<K, V>(this, name, storeName, s.serdes, undefined, versioned?.store);
  }

  globalTable<K = unknown, V = unknown>(
    topic: string,
    consumed: Consumed<K, V> & Materialized = {},
  ): GlobalKTable<K, V> {
    const storeName = consumed.storeName ?? this.name('GLOBALKTABLE-STATE-STORE');
    this.addStore({ name: storeName, type: 'keyValue', logging: false, global: true });
    const srcName = this.name('KSTREAM-SOURCE');
    const tabName = this.name('KTABLE-SOURCE');
    this.addGlobal({
      topic,
      storeName,
      create: () => {
        const src = new SourceNode(
          srcName,
          consumed.keySerde as Serde<unknown>,
          consumed.valueSerde as Serde<unknown>,
          consumed.timestampExtractor,
        );
        const tab = new TableSourceNode(tabName, storeName);
        src.children.push(tab);
        return src;
      },
    });
    return new GlobalKTable<K, V>(storeName, topic);
  }

  /** Adds a store for processors (`process(..., storeNames)`). */
  addStateStore(spec: { name: string; type: StoreType; retention?: DurationLike; logging?: boolean }): this {
    this.addStore({
      name: spec.name,
      type: spec.type,
      logging: spec.logging ?? true,
      ...(spec.retention === undefined ? {} : { retentionMs: parseDuration(spec.retention, 'retention') }),
    });
    return this;
  }

  build(): Topology {
    this.built = true;
    for (const n of this.nodes)
      for (const s of n.stores)
        if (!this.stores.has(s))
          throw invalidArgument(`${n.name}.stores`, `a store added to the builder (no store ${JSON.stringify(s)})`);
    return new Topology([...this.nodes], new Map(this.stores), [...this.globals]);
  }
}

interface Serdes2<K, V> {
  keySerde?: Serde<K> | undefined;
  valueSerde?: Serde<V> | undefined;
}

function fnNode(
  builder: StreamsBuilder,
  prefix: string,
  parents: string[],
  fn: (rec: Rec, node: FnNode) => void,
  childName?: string,
): string {
  const name = builder.name(prefix);
  builder.addNode({
    name,
    kind: 'processor',
    parents,
    stores: [],
    create: () => new FnNode(name, fn),
    ...(childName === undefined ? {} : { childName }),
  });
  return name;
}

export class KStream<K, V> {
  /** @internal */ readonly builder: StreamsBuilder;
  /** @internal */ readonly nodeName: string;
  /** @internal */ readonly serdes: Serdes2<K, V>;
  /** @internal key changed since the source: grouping must repartition. */
  readonly keyChanged: boolean;
  /** @internal keys are Windowed (from a windowed table). */
  readonly windowed: boolean;

  constructor(builder: StreamsBuilder, nodeName: string, serdes: Serdes2<K, V>, keyChanged = false, windowed = false) {
    this.builder = builder;
    this.nodeName = nodeName;
    this.serdes = serdes;
    this.keyChanged = keyChanged;
    this.windowed = windowed;
  }
  private next<K2, V2>(
    prefix: string,
    fn: (rec: Rec, node: FnNode) => void,
    keyChanged: boolean,
    serdes: Serdes2<K2, V2>,
  ): KStream<K2, V2> {
    const name = fnNode(this.builder, prefix, [this.nodeName], fn);
    return new KStream<K2, V2>(this.builder, name, serdes, this.keyChanged || keyChanged, this.windowed && !keyChanged);
  }

  filter(predicate: (key: K, value: V) => boolean): KStream<K, V> {
    return this.next(
      'KSTREAM-FILTER',
      (r, n) => predicate(r.key as K, r.value as V) && n.forward(r),
      false,
      this.serdes,
    );
  }
  filterNot(predicate: (key: K, value: V) => boolean): KStream<K, V> {
    return this.next(
      'KSTREAM-FILTER',
      (r, n) => !predicate(r.key as K, r.value as V) && n.forward(r),
      false,
      this.serdes,
    );
  }
  map<K2, V2>(mapper: (key: K, value: V) => KeyValue<K2, V2>): KStream<K2, V2> {
    return this.next(
      'KSTREAM-MAP',
      (r, n) => {
        const [k, v] = mapper(r.key as K, r.value as V);
        n.forward(withKeyValue(r, k, v));
      },
      true,
      {},
    );
  }
  mapValues<V2>(mapper: (value: V, key: K) => V2): KStream<K, V2> {
    return this.next('KSTREAM-MAPVALUES', (r, n) => n.forward(withValue(r, mapper(r.value as V, r.key as K))), false, {
      keySerde: this.serdes.keySerde,
    });
  }
  flatMap<K2, V2>(mapper: (key: K, value: V) => Iterable<KeyValue<K2, V2>>): KStream<K2, V2> {
    return this.next(
      'KSTREAM-FLATMAP',
      (r, n) => {
        for (const [k, v] of mapper(r.key as K, r.value as V)) n.forward(withKeyValue(r, k, v));
      },
      true,
      {},
    );
  }
  flatMapValues<V2>(mapper: (value: V, key: K) => Iterable<V2>): KStream<K, V2> {
    return this.next(
      'KSTREAM-FLATMAPVALUES',
      (r, n) => {
        for (const v of mapper(r.value as V, r.key as K)) n.forward(withValue(r, v));
      },
      false,
      { keySerde: this.serdes.keySerde },
    );
  }
  selectKey<K2>(selector: (key: K, value: V) => K2): KStream<K2, V> {
    return this.next(
      'KSTREAM-KEY-SELECT',
      (r, n) => n.forward(withKeyValue(r, selector(r.key as K, r.value as V), r.value)),
      true,
      {
        valueSerde: this.serdes.valueSerde,
      },
    );
  }
  peek(action: (key: K, value: V) => void): KStream<K, V> {
    return this.next(
      'KSTREAM-PEEK',
      (r, n) => {
        action(r.key as K, r.value as V);
        n.forward(r);
      },
      false,
      this.serdes,
    );
  }
  foreach(action: (key: K, value: V, timestamp: number) => void): void {
    fnNode(this.builder, 'KSTREAM-FOREACH', [this.nodeName], (r) => action(r.key as K, r.value as V, r.timestamp));
  }
  /** Sets or adds headers; the function receives the current headers. */
  mapHeaders(
    fn: (headers: StreamRecord<K, V>['headers'], key: K, value: V) => StreamRecord<K, V>['headers'],
  ): KStream<K, V> {
    return this.next(
      'KSTREAM-HEADERS',
      (r, n) => n.forward({ ...r, headers: fn(r.headers, r.key as K, r.value as V) }),
      false,
      this.serdes,
    );
  }
  /** Splits the stream: each record goes to the first branch whose predicate matches (Kafka's split()). */
  split(prefix = ''): BranchedKStream<K, V> {
    return new BranchedKStream<K, V>(this, prefix);
  }
  /** Legacy branch(): one stream per predicate, first match wins; records matching none are dropped. */
  branch(...predicates: ((key: K, value: V) => boolean)[]): KStream<K, V>[] {
    const sp = this.split();
    predicates.forEach((p, i) => {
      sp.branch(p, String(i));
    });
    const m = sp.noDefaultBranch();
    return predicates.map((_p, i) => m.get(String(i)) as KStream<K, V>);
  }
  merge(other: KStream<K, V>): KStream<K, V> {
    const name = this.builder.name('KSTREAM-MERGE');
    this.builder.addNode({
      name,
      kind: 'processor',
      parents: [this.nodeName, other.nodeName],
      stores: [],
      create: () => new FnNode(name, (r, n) => n.forward(r)),
    });
    return new KStream<K, V>(
      this.builder,
      name,
      this.serdes,
      this.keyChanged || other.keyChanged,
      this.windowed && other.windowed,
    );
  }
  /** Writes to a topic, or to the topic a function picks per record. */
  to(topic: string | ((key: K, value: V, record: StreamRecord<K, V>) => string), produced: Produced<K, V> = {}): void {
    const name = this.builder.name('KSTREAM-SINK');
    const topicFor =
      typeof topic === 'string' ? () => topic : (r: Rec) => topic(r.key as K, r.value as V, r as StreamRecord<K, V>);
    const ks = (produced.keySerde ?? this.serdes.keySerde) as Serde<unknown> | undefined;
    const vs = (produced.valueSerde ?? this.serdes.valueSerde) as Serde<unknown> | undefined;
    this.builder.addNode({
      name,
      kind: 'sink',
      parents: [this.nodeName],
      stores: [],
      sinkTopic: typeof topic === 'string' ? topic : '<dynamic>',
      create: () =>
        new SinkNode(
          name,
          topicFor,
          ks,
          vs,
          produced.partitioner as Partitioner<unknown, unknown> | undefined,
          false,
          this.windowed,
        ),
    });
  }
  /** Writes to an internal topic and reads it back: re-partitions by the current key. */
  repartition(opts: Repartitioned<K, V> = {}): KStream<K, V> {
    const base = opts.name ?? this.builder.name('KSTREAM-REPARTITION');
    const topic = `${base}-repartition`;
    const ks = (opts.keySerde ?? Serdes.JSON()) as Serde<unknown>;
    const vs = (opts.valueSerde ?? Serdes.JSON()) as Serde<unknown>;
    const sink = `${base}-sink`;
    this.builder.addNode({
      name: sink,
      kind: 'sink',
      parents: [this.nodeName],
      stores: [],
      sinkTopic: topic,
      internal: true,
      create: () =>
        new SinkNode(sink, () => topic, ks, vs, opts.partitioner as Partitioner<unknown, unknown> | undefined, true),
    });
    const source = `${base}-source`;
    this.builder.addNode({
      name: source,
      kind: 'source',
      parents: [],
      stores: [],
      topics: [topic],
      internal: true,
      create: () => new SourceNode(source, ks, vs),
    });
    return new KStream<K, V>(
      this.builder,
      source,
      { keySerde: opts.keySerde, valueSerde: opts.valueSerde },
      false,
      false,
    );
  }
  /** Kafka's deprecated through(): to(topic) then stream(topic). */
  through(topic: string, produced: Produced<K, V> = {}): KStream<K, V> {
    this.to(topic, produced);
    return this.builder.stream<K, V>(topic, {
      keySerde: (produced.keySerde as Serde<K> | undefined) ?? this.serdes.keySerde,
      valueSerde: produced.valueSerde ?? this.serdes.valueSerde,
    });
  }
  /** A custom processor (Processor API) with access to the named stores. */
  process<K2 = K, V2 = V>(supplier: () => Processor<K, V, K2, V2>, ...storeNames: string[]): KStream<K2, V2> {
    const name = this.builder.name('KSTREAM-PROCESSOR');
    this.builder.addNode({
      name,
      kind: 'processor',
      parents: [this.nodeName],
      stores: storeNames,
      create: () =>
        new ProcessorApiNode(name, supplier as () => Processor<unknown, unknown, unknown, unknown>, storeNames),
    });
    return new KStream<K2, V2>(this.builder, name, {}, true, false);
  }
  /** Async enrichment (Flink Async I/O): an async call per record with concurrency limit, timeout and fallback. */
  mapValuesAsync<V2>(
    fn: (value: V, key: K, signal: AbortSignal) => Promise<V2>,
    opts: AsyncOptions<V, V2> = {},
  ): KStream<K, V2> {
    const name = this.builder.name('KSTREAM-ASYNC');
    this.builder.addNode({
      name,
      kind: 'processor',
      parents: [this.nodeName],
      stores: [],
      create: () => new AsyncNode(name, (k, v, s) => fn(v as V, k as K, s), opts as AsyncOptions<unknown, unknown>),
    });
    return new KStream<K, V2>(this.builder, name, { keySerde: this.serdes.keySerde }, this.keyChanged, this.windowed);
  }
  groupByKey(grouped: { keySerde?: Serde<K>; valueSerde?: Serde<V>; name?: string } = {}): KGroupedStream<K, V> {
    const s = this.keyChanged
      ? this.repartition({ ...grouped, ...(grouped.name === undefined ? {} : { name: grouped.name }) })
      : this;
    return new KGroupedStream<K, V>(s);
  }
  groupBy<K2>(
    selector: (key: K, value: V) => K2,
    grouped: { keySerde?: Serde<K2>; valueSerde?: Serde<V>; name?: string } = {},
  ): KGroupedStream<K2, V> {
    return this.selectKey(selector).groupByKey(grouped);
  }
  toTable(materialized: Materialized = {}): KTable<K, V> {
    const storeName = materialized.storeName ?? this.builder.name('KSTREAM-TOTABLE-STATE-STORE');
    this.builder.addStore({ name: storeName, type: 'keyValue', logging: materialized.logging ?? true });
    const name = this.builder.name('KSTREAM-TOTABLE');
    this.builder.addNode({
      name,
      kind: 'processor',
      parents: [this.nodeName],
      stores: [storeName],
      create: () => new TableSourceNode(name, storeName),
    });
    return new KTable<K, V>(this.builder, name, storeName, this.serdes);
  }

  /** Windowed inner join with another stream (KStream-KStream), or a lookup join with a table. */
  join<V2, R>(
    other: KStream<K, V2>,
    joiner: ValueJoiner<V, V2, R>,
    windows: JoinWindows,
    opts?: JoinOpts,
  ): KStream<K, R>;
  join<V2, R>(other: KTable<K, V2>, joiner: ValueJoiner<V, V2, R>, opts?: StreamTableJoinOpts): KStream<K, R>;
  join<K2, V2, R>(
    other: GlobalKTable<K2, V2>,
    keySelector: (key: K, value: V) => K2,
    joiner: ValueJoiner<V, V2, R>,
  ): KStream<K, R>;
  join(other: unknown, a: unknown, b?: unknown, c?: unknown): KStream<K, unknown> {
    return this.anyJoin('inner', other, a, b, c);
  }
  leftJoin<V2, R>(
    other: KStream<K, V2>,
    joiner: ValueJoiner<V, V2 | null, R>,
    windows: JoinWindows,
    opts?: JoinOpts,
  ): KStream<K, R>;
  leftJoin<V2, R>(
    other: KTable<K, V2>,
    joiner: ValueJoiner<V, V2 | null, R>,
    opts?: StreamTableJoinOpts,
  ): KStream<K, R>;
  leftJoin<K2, V2, R>(
    other: GlobalKTable<K2, V2>,
    keySelector: (key: K, value: V) => K2,
    joiner: ValueJoiner<V, V2 | null, R>,
  ): KStream<K, R>;
  leftJoin(other: unknown, a: unknown, b?: unknown, c?: unknown): KStream<K, unknown> {
    return this.anyJoin('left', other, a, b, c);
  }
  outerJoin<V2, R>(
    other: KStream<K, V2>,
    joiner: ValueJoiner<V | null, V2 | null, R>,
    windows: JoinWindows,
    opts?: JoinOpts,
  ): KStream<K, R> {
    return this.anyJoin('outer', other, joiner, windows, opts) as KStream<K, R>;
  }
  private anyJoin(kind: JoinKind, other: unknown, a: unknown, b: unknown, c: unknown): KStream<K, unknown> {
    const builder = this.builder;
    if (other instanceof KTable) {
      if (kind === 'outer')
        throw invalidArgument('join', 'a KStream for outerJoin (KStream-KTable joins are inner or left)');
      const self = this.keyChanged ? this.repartition() : this;
      const name = builder.name('KSTREAM-JOIN');
      const st = other.storeName;
      const grace = (b as StreamTableJoinOpts | undefined)?.gracePeriod;
      if (grace !== undefined) {
        const versions = other.versionsStore;
        if (versions === undefined)
          throw invalidArgument('gracePeriod', 'a versioned table (builder.table(topic, { versioned: ... }))');
        const graceMs = parseDuration(grace, 'gracePeriod');
        const buffer = `${name}-buffer`;
        builder.addStore({ name: buffer, type: 'keyValue', logging: true });
        builder.addNode({
          name,
          kind: 'processor',
          parents: [self.nodeName],
          stores: [versions, buffer],
          create: () =>
            new VersionedStreamTableJoinNode(
              name,
              [versions, buffer],
              a as ValueJoiner<unknown, unknown, unknown>,
              kind === 'left',
              graceMs,
            ),
        });
        return new KStream(builder, name, { keySerde: this.serdes.keySerde });
      }
      builder.addNode({
        name,
        kind: 'processor',
        parents: [self.nodeName],
        stores: [st],
        create: () => new StreamTableJoinNode(name, st, a as ValueJoiner<unknown, unknown, unknown>, kind === 'left'),
      });
      return new KStream(builder, name, { keySerde: this.serdes.keySerde });
    }
    if (other instanceof GlobalKTable) {
      if (kind === 'outer')
        throw invalidArgument('join', 'a KStream for outerJoin (KStream-GlobalKTable joins are inner or left)');
      const name = builder.name('KSTREAM-GLOBALJOIN');
      const st = other.storeName;
      const sel = a as (k: unknown, v: unknown) => unknown;
      builder.addNode({
        name,
        kind: 'processor',
        parents: [this.nodeName],
        stores: [st],
        create: () =>
          new StreamTableJoinNode(name, st, b as ValueJoiner<unknown, unknown, unknown>, kind === 'left', sel),
      });
      return new KStream(builder, name, { keySerde: this.serdes.keySerde }, this.keyChanged);
    }
    if (other instanceof KStream) {
      const windows = b as JoinWindows;
      if (windows === undefined || typeof (windows as JoinWindows).beforeMs !== 'number')
        throw invalidArgument('windows', 'JoinWindows for a KStream-KStream join', windows);
      const opts = (c ?? {}) as JoinOpts;
      const left = this.keyChanged ? this.repartition() : this;
      const right = other.keyChanged ? other.repartition() : other;
      const base = opts.name ?? builder.name(`KSTREAM-${kind.toUpperCase()}JOIN`);
      const ls = `${base}-this-store`;
      const rs = `${base}-other-store`;
      const hs = kind === 'inner' ? undefined : `${base}-outer-shared-store`;
      const logging = opts.logging ?? true;
      builder.addStore({ name: ls, type: 'keyValue', logging });
      builder.addStore({ name: rs, type: 'keyValue', logging });
      if (hs !== undefined) builder.addStore({ name: hs, type: 'keyValue', logging });
      const stores = hs === undefined ? [ls, rs] : [ls, rs, hs];
      const joiner = a as ValueJoiner<unknown, unknown, unknown>;
      const ln = `${base}-this`;
      const rn = `${base}-other`;
      builder.addNode({
        name: ln,
        kind: 'processor',
        parents: [left.nodeName],
        stores,
        create: () => new StreamStreamJoinNode(ln, [ls, rs, hs], joiner, windows, kind, true),
      });
      builder.addNode({
        name: rn,
        kind: 'processor',
        parents: [right.nodeName],
        stores,
        create: () => new StreamStreamJoinNode(rn, [rs, ls, hs], joiner, windows, kind, false),
      });
      const mn = `${base}-merge`;
      builder.addNode({
        name: mn,
        kind: 'processor',
        parents: [ln, rn],
        stores: [],
        create: () => new FnNode(mn, (r, n) => n.forward(r)),
      });
      return new KStream(builder, mn, { keySerde: this.serdes.keySerde });
    }
    throw invalidArgument('join.other', 'a KStream, KTable or GlobalKTable', other);
  }
}

export interface StreamTableJoinOpts {
  /** Buffer stream records this long and join the table version valid at their timestamp (versioned tables). */
  gracePeriod?: DurationLike;
}

export interface JoinOpts {
  name?: string;
  logging?: boolean;
}

export class BranchedKStream<K, V> {
  private readonly source: KStream<K, V>;
  private readonly prefix: string;
  private readonly branchNode: string;
  private readonly predicates: { name: string; p: (k: K, v: V) => boolean }[] = [];
  private readonly result = new Map<string, KStream<K, V>>();

  constructor(source: KStream<K, V>, prefix: string) {
    this.source = source;
    this.prefix = prefix;
    const name = source.builder.name('KSTREAM-BRANCH');
    const preds = this.predicates;
    source.builder.addNode({
      name,
      kind: 'processor',
      parents: [source.nodeName],
      stores: [],
      create: () =>
        new FnNode(name, (r, n) => {
          for (const { name: child, p } of preds) {
            if (child === '__default__' || p(r.key as K, r.value as V)) {
              n.forward(r, child);
              return;
            }
          }
        }),
    });
    this.branchNode = name;
  }
  branch(predicate: (key: K, value: V) => boolean, name?: string): this {
    const child = this.prefix + (name ?? String(this.predicates.length + 1));
    this.add(child, predicate);
    return this;
  }
  private add(child: string, p: (k: K, v: V) => boolean): void {
    this.predicates.push({ name: child, p });
    const b = this.source.builder;
    const n = fnNode(b, 'KSTREAM-BRANCHCHILD', [this.branchNode], (r, node) => node.forward(r), child);
    this.result.set(child, new KStream<K, V>(b, n, this.source.serdes, this.source.keyChanged, this.source.windowed));
  }
  defaultBranch(name = '0'): Map<string, KStream<K, V>> {
    this.add(this.prefix + name, () => true);
    return this.result;
  }
  noDefaultBranch(): Map<string, KStream<K, V>> {
    return this.result;
  }
}

function retentionFor(materialized: Materialized, minimum: number): number {
  const r =
    materialized.retention === undefined
      ? Math.max(86_400_000, minimum)
      : parseDuration(materialized.retention, 'Materialized.retention');
  if (r < minimum) throw invalidArgument('Materialized.retention', `at least window size + grace (${minimum} ms)`, r);
  return r;
}

export class KGroupedStream<K, V> {
  private readonly stream: KStream<K, V>;
  constructor(stream: KStream<K, V>) {
    this.stream = stream;
  }
  count(materialized: Materialized = {}): KTable<K, number> {
    return this.aggregate<number>(
      () => 0,
      (_k, _v, a) => a + 1,
      materialized,
    );
  }
  reduce(reducer: (aggregate: V, value: V) => V, materialized: Materialized = {}): KTable<K, V> {
    return this.aggregate<V>(
      () => null as V,
      (_k, v, a) => (a === null ? v : reducer(a, v)),
      materialized,
    );
  }
  aggregate<A>(
    initializer: Initializer<A>,
    aggregator: Aggregator<K, V, A>,
    materialized: Materialized = {},
  ): KTable<K, A> {
    const b = this.stream.builder;
    const storeName = materialized.storeName ?? b.name('KSTREAM-AGGREGATE-STATE-STORE');
    b.addStore({ name: storeName, type: 'keyValue', logging: materialized.logging ?? true });
    const name = b.name('KSTREAM-AGGREGATE');
    b.addNode({
      name,
      kind: 'processor',
      parents: [this.stream.nodeName],
      stores: [storeName],
      create: () =>
        new AggregateNode(name, storeName, initializer, aggregator as Aggregator<unknown, unknown, unknown>),
    });
    return new KTable<K, A>(b, b.cached(name, materialized), storeName, { keySerde: this.stream.serdes.keySerde });
  }
  windowedBy(windows: TimeWindows | SlidingWindows): TimeWindowedKStream<K, V>;
  windowedBy(windows: SessionWindows): SessionWindowedKStream<K, V>;
  windowedBy(
    windows: TimeWindows | SlidingWindows | SessionWindows,
  ): TimeWindowedKStream<K, V> | SessionWindowedKStream<K, V> {
    if (windows instanceof SessionWindows) return new SessionWindowedKStream(this.stream, windows);
    if (windows instanceof TimeWindows || windows instanceof SlidingWindows)
      return new TimeWindowedKStream(this.stream, windows);
    throw invalidArgument('windowedBy', 'TimeWindows, SlidingWindows or SessionWindows', windows);
  }
}

export class TimeWindowedKStream<K, V> {
  private readonly stream: KStream<K, V>;
  private readonly windows: TimeWindows | SlidingWindows;
  private readonly emit: EmitStrategyConfig;
  constructor(
    stream: KStream<K, V>,
    windows: TimeWindows | SlidingWindows,
    emit: EmitStrategyConfig = EmitStrategy.onWindowUpdate(),
  ) {
    this.stream = stream;
    this.windows = windows;
    this.emit = emit;
  }
  /** Emit on every update (default) or only each window's final result (time windows). */
  emitStrategy(strategy: EmitStrategyConfig): TimeWindowedKStream<K, V> {
    checkEmitStrategy(strategy);
    if (strategy.type === 'onWindowClose' && !(this.windows instanceof TimeWindows))
      throw invalidArgument(
        'emitStrategy',
        'EmitStrategy.onWindowUpdate() for sliding windows (for final results use suppress(Suppressed.untilWindowCloses()))',
        'EmitStrategy.onWindowClose()',
      );
    return new TimeWindowedKStream(this.stream, this.windows, strategy);
  }
  count(materialized: Materialized = {}): KTable<Windowed<K>, number> {
    return this.aggregate<number>(
      () => 0,
      (_k, _v, a) => a + 1,
      materialized,
    );
  }
  reduce(reducer: (aggregate: V, value: V) => V, materialized: Materialized = {}): KTable<Windowed<K>, V> {
    return this.aggregate<V>(
      () => null as V,
      (_k, v, a) => (a === null ? v : reducer(a, v)),
      materialized,
    );
  }
  aggregate<A>(
    initializer: Initializer<A>,
    aggregator: Aggregator<K, V, A>,
    materialized: Materialized = {},
  ): KTable<Windowed<K>, A> {
    const b = this.stream.builder;
    const w = this.windows;
    const storeName = materialized.storeName ?? b.name('KSTREAM-AGGREGATE-STATE-STORE');
    const logging = materialized.logging ?? true;
    const name = b.name('KSTREAM-AGGREGATE');
    const agg = aggregator as Aggregator<unknown, unknown, unknown>;
    let node = name;
    if (w instanceof TimeWindows) {
      b.addStore({
        name: storeName,
        type: 'window',
        logging,
        retentionMs: retentionFor(materialized, w.sizeMs + w.graceMs),
      });
      // Emit-final keeps the event time up to which windows were emitted, so that a restart does not emit again.
      const emitTimeStore = this.emit.type === 'onWindowClose' ? `${storeName}-emit-time` : null;
      if (emitTimeStore !== null) b.addStore({ name: emitTimeStore, type: 'keyValue', logging });
      b.addNode({
        name,
        kind: 'processor',
        parents: [this.stream.nodeName],
        stores: emitTimeStore === null ? [storeName] : [storeName, emitTimeStore],
        create: () => new WindowAggregateNode(name, storeName, w, initializer, agg, emitTimeStore),
      });
      // Final results need no record cache.
      if (emitTimeStore === null) node = b.cached(name, materialized, true);
    } else {
      const raw = `${storeName}-records`;
      b.addStore({
        name: storeName,
        type: 'window',
        logging,
        retentionMs: retentionFor(materialized, 2 * w.timeDifferenceMs + w.graceMs),
      });
      b.addStore({ name: raw, type: 'keyValue', logging });
      b.addNode({
        name,
        kind: 'processor',
        parents: [this.stream.nodeName],
        stores: [storeName, raw],
        create: () => new SlidingAggregateNode(name, storeName, raw, w, initializer, agg),
      });
      node = b.cached(name, materialized, true);
    }
    return new KTable<Windowed<K>, A>(
      b,
      node,
      storeName,
      { keySerde: this.stream.serdes.keySerde as Serde<Windowed<K>> | undefined },
      {
        window: 'time',
        graceMs: w.graceMs,
      },
    );
  }
}

export class SessionWindowedKStream<K, V> {
  private readonly stream: KStream<K, V>;
  private readonly windows: SessionWindows;
  private readonly emit: EmitStrategyConfig;
  constructor(
    stream: KStream<K, V>,
    windows: SessionWindows,
    emit: EmitStrategyConfig = EmitStrategy.onWindowUpdate(),
  ) {
    this.stream = stream;
    this.windows = windows;
    this.emit = emit;
  }
  /** Emit on every update (default) or only each session's final result, once it can no longer grow. */
  emitStrategy(strategy: EmitStrategyConfig): SessionWindowedKStream<K, V> {
    return new SessionWindowedKStream(this.stream, this.windows, checkEmitStrategy(strategy));
  }
  count(materialized: Materialized = {}): KTable<Windowed<K>, number> {
    return this.aggregate<number>(
      () => 0,
      (_k, _v, a) => a + 1,
      (_k, a, b) => a + b,
      materialized,
    );
  }
  reduce(reducer: (aggregate: V, value: V) => V, materialized: Materialized = {}): KTable<Windowed<K>, V> {
    const r = (a: V | null, v: V): V => (a === null ? v : reducer(a, v));
    return this.aggregate<V>(
      () => null as V,
      (_k, v, a) => r(a, v),
      (_k, a, b) => (a === null ? b : b === null ? a : reducer(a, b)),
      materialized,
    );
  }
  aggregate<A>(
    initializer: Initializer<A>,
    aggregator: Aggregator<K, V, A>,
    merger: Merger<K, A>,
    materialized: Materialized = {},
  ): KTable<Windowed<K>, A> {
    const b = this.stream.builder;
    const w = this.windows;
    const storeName = materialized.storeName ?? b.name('KSTREAM-AGGREGATE-STATE-STORE');
    const logging = materialized.logging ?? true;
    b.addStore({
      name: storeName,
      type: 'session',
      logging,
      retentionMs: retentionFor(materialized, w.gapMs + w.graceMs),
    });
    const emitTimeStore = this.emit.type === 'onWindowClose' ? `${storeName}-emit-time` : null;
    if (emitTimeStore !== null) b.addStore({ name: emitTimeStore, type: 'keyValue', logging });
    const name = b.name('KSTREAM-AGGREGATE');
    b.addNode({
      name,
      kind: 'processor',
      parents: [this.stream.nodeName],
      stores: emitTimeStore === null ? [storeName] : [storeName, emitTimeStore],
      create: () =>
        new SessionAggregateNode(
          name,
          storeName,
          w,
          initializer,
          aggregator as Aggregator<unknown, unknown, unknown>,
          merger as Merger<unknown, unknown>,
          emitTimeStore,
        ),
    });
    return new KTable<Windowed<K>, A>(
      b,
      emitTimeStore === null ? b.cached(name, materialized, true) : name,
      storeName,
      { keySerde: this.stream.serdes.keySerde as Serde<Windowed<K>> | undefined },
      { window: 'session', graceMs: w.graceMs },
    );
  }
}

export class KTable<K, V> {
  /** @internal */ readonly builder: StreamsBuilder;
  /** @internal */ readonly nodeName: string;
  /** Name of the store holding this table (queryable). */
  readonly storeName: string;
  /** @internal */ readonly serdes: Serdes2<K, V>;
  /** @internal */ readonly windowInfo: WindowInfo | undefined;

  /** @internal the history store of a versioned table */
  readonly versionsStore: string | undefined;

  constructor(
    builder: StreamsBuilder,
    nodeName: string,
    storeName: string,
    serdes: Serdes2<K, V>,
    windowInfo?: WindowInfo,
    versionsStore?: string,
  ) {
    this.builder = builder;
    this.nodeName = nodeName;
    this.storeName = storeName;
    this.serdes = serdes;
    this.windowInfo = windowInfo;
    this.versionsStore = versionsStore;
  }
  private transform<V2>(
    prefix: string,
    fn: (k: unknown, v: unknown) => unknown,
    materialized: Materialized,
  ): KTable<K, V2> {
    if (this.windowInfo !== undefined)
      throw new TributaryError('UNSUPPORTED', `${prefix} on a windowed KTable: call toStream() first`);
    const storeName = materialized.storeName ?? this.builder.name(`${prefix}-STATE-STORE`);
    this.builder.addStore({ name: storeName, type: 'keyValue', logging: materialized.logging ?? true });
    const name = this.builder.name(prefix);
    this.builder.addNode({
      name,
      kind: 'processor',
      parents: [this.nodeName],
      stores: [storeName],
      create: () => new TableTransformNode(name, storeName, fn),
    });
    return new KTable<K, V2>(this.builder, name, storeName, { keySerde: this.serdes.keySerde });
  }
  filter(predicate: (key: K, value: V) => boolean, materialized: Materialized = {}): KTable<K, V> {
    return this.transform('KTABLE-FILTER', (k, v) => (predicate(k as K, v as V) ? v : null), materialized);
  }
  filterNot(predicate: (key: K, value: V) => boolean, materialized: Materialized = {}): KTable<K, V> {
    return this.transform('KTABLE-FILTER', (k, v) => (predicate(k as K, v as V) ? null : v), materialized);
  }
  mapValues<V2>(mapper: (value: V, key: K) => V2, materialized: Materialized = {}): KTable<K, V2> {
    return this.transform('KTABLE-MAPVALUES', (k, v) => mapper(v as V, k as K), materialized);
  }
  /** The changelog stream: every update as (key, newValue); deletes as (key, null). */
  toStream(): KStream<K, V> {
    const name = fnNode(this.builder, 'KTABLE-TOSTREAM', [this.nodeName], (r, n) =>
      n.forward(withValue(r, (r.value as Change<unknown>).newValue)),
    );
    return new KStream<K, V>(this.builder, name, this.serdes, false, this.windowInfo !== undefined);
  }
  /** The change stream with old values: (key, {newValue, oldValue}). */
  toChangeStream(): KStream<K, Change<V>> {
    const name = fnNode(this.builder, 'KTABLE-TOCHANGES', [this.nodeName], (r, n) => n.forward(r));
    return new KStream<K, Change<V>>(
      this.builder,
      name,
      { keySerde: this.serdes.keySerde },
      false,
      this.windowInfo !== undefined,
    );
  }
  suppress(config: SuppressConfig, opts: { name?: string } = {}): KTable<K, V> {
    let mode: SuppressMode;
    if (config.kind === 'untilWindowCloses') {
      if (this.windowInfo === undefined)
        throw invalidArgument(
          'suppress',
          'a windowed KTable for untilWindowCloses (use untilTimeLimit on plain tables)',
        );
      mode = { kind: 'untilWindowCloses', window: this.windowInfo.window, graceMs: this.windowInfo.graceMs };
    } else mode = { kind: 'untilTimeLimit', limitMs: config.limitMs };
    const b = this.builder;
    const name = opts.name ?? b.name('KTABLE-SUPPRESS');
    const storeName = `${name}-store`;
    b.addStore({ name: storeName, type: 'keyValue', logging: true });
    b.addNode({
      name,
      kind: 'processor',
      parents: [this.nodeName],
      stores: [storeName],
      create: () => new SuppressNode(name, storeName, mode),
    });
    return new KTable<K, V>(b, name, this.storeName, this.serdes, this.windowInfo);
  }
  join<V2, R>(other: KTable<K, V2>, joiner: ValueJoiner<V, V2, R>, materialized: Materialized = {}): KTable<K, R> {
    return this.tableJoin('inner', other, joiner as ValueJoiner<unknown, unknown, unknown>, materialized);
  }
  leftJoin<V2, R>(
    other: KTable<K, V2>,
    joiner: ValueJoiner<V, V2 | null, R>,
    materialized: Materialized = {},
  ): KTable<K, R> {
    return this.tableJoin('left', other, joiner as ValueJoiner<unknown, unknown, unknown>, materialized);
  }
  outerJoin<V2, R>(
    other: KTable<K, V2>,
    joiner: ValueJoiner<V | null, V2 | null, R>,
    materialized: Materialized = {},
  ): KTable<K, R> {
    return this.tableJoin('outer', other, joiner as ValueJoiner<unknown, unknown, unknown>, materialized);
  }
  private tableJoin<R, V2>(
    kind: JoinKind,
    other: KTable<K, V2>,
    joiner: ValueJoiner<unknown, unknown, unknown>,
    materialized: Materialized,
  ): KTable<K, R> {
    const b = this.builder;
    const base = b.name('KTABLE-JOIN');
    const result = materialized.storeName ?? `${base}-STATE-STORE`;
    b.addStore({ name: result, type: 'keyValue', logging: materialized.logging ?? true });
    const ln = `${base}-this`;
    const rn = `${base}-other`;
    const stores = [this.storeName, other.storeName, result];
    b.addNode({
      name: ln,
      kind: 'processor',
      parents: [this.nodeName],
      stores,
      create: () => new TableTableJoinNode(ln, [this.storeName, other.storeName, result], joiner, kind, true),
    });
    b.addNode({
      name: rn,
      kind: 'processor',
      parents: [other.nodeName],
      stores,
      create: () => new TableTableJoinNode(rn, [other.storeName, this.storeName, result], joiner, kind, false),
    });
    const mn = `${base}-merge`;
    b.addNode({
      name: mn,
      kind: 'processor',
      parents: [ln, rn],
      stores: [],
      create: () => new FnNode(mn, (r, n) => n.forward(r)),
    });
    return new KTable<K, R>(b, mn, result, { keySerde: this.serdes.keySerde });
  }
  /**
   * Re-groups the table by a new key; aggregations get an adder and a subtractor. `keySerde`/`valueSerde` (Kafka's
   * Grouped) serialize the new key and value through the repartition topic; without them they go as JSON.
   */
  groupBy<K2, V2>(
    selector: (key: K, value: V) => KeyValue<K2, V2>,
    grouped: { name?: string; keySerde?: Serde<K2>; valueSerde?: Serde<V2> } = {},
  ): KGroupedTable<K2, V2> {
    const b = this.builder;
    const name = b.name('KTABLE-SELECT');
    b.addNode({
      name,
      kind: 'processor',
      parents: [this.nodeName],
      stores: [],
      create: () => new FnNode(name, tableRegroup(selector as (k: unknown, v: unknown) => [unknown, unknown])),
    });
    const rep = new KStream<K2, unknown>(b, name, {}, true).repartition({
      ...(grouped.name === undefined ? {} : { name: grouped.name }),
      ...(grouped.keySerde === undefined ? {} : { keySerde: grouped.keySerde }),
      ...(grouped.valueSerde === undefined
        ? {}
        : { valueSerde: changeSerde(grouped.valueSerde as Serde<unknown>) as Serde<unknown> }),
    });
    return new KGroupedTable<K2, V2>(rep);
  }
}

/**
 * What a re-grouped table sends through its repartition topic: `{ a: v }` (add v) or `{ s: v }` (subtract v), as
 * one tag byte then v in the value serde (Kafka's ChangedSerializer also appends a flag to the value's bytes).
 * Tag bit 0: add; bit 1: v is null (no bytes follow).
 */
function changeSerde(values: Serde<unknown>): Serde<{ a?: unknown; s?: unknown }> {
  return {
    serialize: (topic, op) => {
      if (op === null) return null;
      const add = 'a' in op;
      const body = values.serialize(topic, add ? op.a : op.s);
      if (body === null) return Buffer.of(add ? 3 : 2);
      const out = Buffer.allocUnsafe(1 + body.length);
      out[0] = add ? 1 : 0;
      out.set(body, 1);
      return out;
    },
    deserialize: (topic, data) => {
      if (data === null) return null;
      const tag = data[0];
      if (tag === undefined || tag > 3)
        throw new TributaryError('CORRUPT_DATA', `grouped table change from topic ${topic}: tag ${tag}, expected 0-3`);
      const v = tag & 2 ? null : values.deserialize(topic, data.subarray(1));
      return tag & 1 ? { a: v } : { s: v };
    },
  };
}

export class KGroupedTable<K, V> {
  private readonly stream: KStream<K, unknown>;
  constructor(stream: KStream<K, unknown>) {
    this.stream = stream;
  }
  count(materialized: Materialized = {}): KTable<K, number> {
    return this.aggregate<number>(
      () => 0,
      (_k, _v, a) => a + 1,
      (_k, _v, a) => a - 1,
      materialized,
    );
  }
  reduce(
    adder: (aggregate: V, value: V) => V,
    subtractor: (aggregate: V, value: V) => V,
    materialized: Materialized = {},
  ): KTable<K, V> {
    return this.aggregate<V>(
      () => null as V,
      (_k, v, a) => (a === null ? v : adder(a, v)),
      (_k, v, a) => subtractor(a, v),
      materialized,
    );
  }
  aggregate<A>(
    initializer: Initializer<A>,
    adder: Aggregator<K, V, A>,
    subtractor: Aggregator<K, V, A>,
    materialized: Materialized = {},
  ): KTable<K, A> {
    const b = this.stream.builder;
    const storeName = materialized.storeName ?? b.name('KTABLE-AGGREGATE-STATE-STORE');
    b.addStore({ name: storeName, type: 'keyValue', logging: materialized.logging ?? true });
    const name = b.name('KTABLE-AGGREGATE');
    b.addNode({
      name,
      kind: 'processor',
      parents: [this.stream.nodeName],
      stores: [storeName],
      create: () =>
        new TableAggregateNode(
          name,
          storeName,
          initializer,
          adder as Aggregator<unknown, unknown, unknown>,
          subtractor as Aggregator<unknown, unknown, unknown>,
        ),
    });
    return new KTable<K, A>(b, b.cached(name, materialized), storeName, {});
  }
}

/** A table replicated in full to every task, joined by a key derived from each stream record. */
export class GlobalKTable<K, V> {
  readonly storeName: string;
  readonly topic: string;
  /** @internal phantom types */
  declare readonly _k?: K;
  declare readonly _v?: V;
  constructor(storeName: string, topic: string) {
    this.storeName = storeName;
    this.topic = topic;
  }
}

export { Node };
