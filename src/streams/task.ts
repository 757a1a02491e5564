import { channel, invalidArgument, parseDuration, publish, TributaryError } from '../core/index.ts';
import {
  emptyTaskMetrics,
  type Node,
  type OutRecord,
  type RecordMeta,
  type TaskMetrics,
  type TaskRuntime,
} from './node.ts';
import { AsyncNode, SourceNode } from './ops.ts';
import type { Serde } from './serdes.ts';
import {
  type AnyStore,
  type Backend,
  createStore,
  MemoryBackend,
  type StoreKey,
  type StoreSpec,
  storeNotFound,
} from './stores.ts';
import type { Topology } from './topology.ts';
import type { RecordHeaders, StreamRecord } from './types.ts';
import type { DurationLike } from './windows.ts';

/**
 * Event time in watermark mode (Flink semantics) instead of Kafka Streams' stream time (max timestamp seen):
 * watermark = min over active input partitions of (max timestamp - maxOutOfOrderness). A partition with no record
 * for `idleTimeout` of wall-clock time stops holding the watermark back; when every input is idle, event time
 * advances with wall-clock time from the last record, so windows close without waiting for new records.
 */
export interface EventTimeConfig {
  maxOutOfOrderness?: DurationLike;
  idleTimeout?: DurationLike;
  /** Records older than the watermark minus this are late (default 0). */
  allowedLateness?: DurationLike;
  /** 'drop' (default) or a topic that receives late records unchanged, with header `tributary.late`. */
  lateRecords?: 'drop' | { topic: string };
}

export interface TaskOptions {
  applicationId: string;
  taskId: string;
  partition: number;
  topology: Topology;
  eventTime?: EventTimeConfig | undefined;
  defaultKeySerde: Serde<unknown>;
  defaultValueSerde: Serde<unknown>;
  emit: (out: OutRecord) => void;
  wallClock: () => number;
  backendFor?: (spec: StoreSpec) => Backend;
  /** Stores shared with other tasks (global tables); looked up before creating the task's own. */
  sharedStores?: Map<string, AnyStore>;
  partitionCount?: (topic: string) => number | undefined;
  /** Called after async results were forwarded outside of process(). */
  onAsyncOutput?: () => void;
  /** Decides what happens to a record whose key or value cannot be deserialized (default: the error propagates). */
  onDeserializationError?: (
    error: unknown,
    record: {
      topic: string;
      partition: number;
      offset: number;
      key: Buffer | null;
      value: Buffer | null;
      timestamp: number;
      headers: RecordHeaders;
    },
  ) => 'continue' | 'fail';
  /** Write changelog records (default true when a store has logging). */
  changelog?: boolean;
  /** How many tasks of the job write each repartition topic (watermark markers wait for all of them; default 1). */
  taskCount?: number;
  /**
   * Least wall-clock time between two rounds of watermark markers (default 0: whenever the watermark rose; the
   * runtime uses 200 ms, Flink's auto-watermark interval, so that an idle job does not write markers unendingly).
   */
  watermarkIntervalMs?: number;
}

const chProcessError = channel('streams', 'error');

interface PartitionTime {
  maxTs: number;
  lastWall: number;
  sub: number;
  /**
   * Repartition topics in watermark mode: the latest watermark marker of each upstream task. The partition's time
   * is their minimum (set when all have reported), and its records are not judged late here (their producers did).
   */
  upstream: number[] | undefined;
  markerWm: number;
}

/** Header of a watermark marker record: float64 watermark, uint32 upstream task, uint32 upstream task count. */
export const WATERMARK_HEADER = 'tributary.watermark';

/** A repartition topic this task writes, from sub-topology `sub`: its watermark goes downstream as markers. */
interface MarkerSink {
  topic: string;
  sub: number;
  /** The finite watermark last sent. */
  sent: number;
  /** Whether "idle" (+Infinity) was sent since: the sub-topology has no time yet and its inputs are idle. */
  idle: boolean;
}

export const changelogTopic = (applicationId: string, store: string): string => `${applicationId}-${store}-changelog`;

// Shared and frozen: most tasks have no marker to send, and drivers ask after every record.
const NO_MARKERS: readonly OutRecord[] = Object.freeze([]);

/** Runs the whole topology for one partition number: sources, processors, stores, time. */
export class StreamTask implements TaskRuntime {
  readonly taskId: string;
  readonly applicationId: string;
  readonly partition: number;
  readonly watermarkMode: boolean;
  readonly defaultKeySerde: Serde<unknown>;
  readonly defaultValueSerde: Serde<unknown>;
  readonly metrics: TaskMetrics = emptyTaskMetrics();
  readonly stores = new Map<string, AnyStore>();
  private readonly opts: TaskOptions;
  private readonly nodes: Node[] = [];
  private readonly sources = new Map<string, SourceNode>();
  private readonly upstreamAsync = new Map<Node, Node[]>();
  private readonly asyncNodes: Node[] = [];
  private readonly partitions = new Map<string, PartitionTime>();
  private readonly markerSinks: MarkerSink[] = [];
  private lastMarkers = Number.NEGATIVE_INFINITY;
  private readonly internalSources = new Set<string>();
  /** The input partitions of each sub-topology (the watermark is their minimum). */
  private readonly subPartitions: PartitionTime[][] = [];
  private readonly bound: number;
  private readonly idleTimeout: number;
  private readonly allowedLateness: number;
  private current: RecordMeta | null = null;
  private readonly meta: RecordMeta = { topic: '', partition: 0, offset: 0 };
  /**
   * Time is kept per sub-topology (nodes joined by edges or shared stores): records that come back through a
   * repartition topic must not find their windows closed by records that overtook them upstream.
   */
  private readonly subOf = new Map<Node, number>();
  private subNodes: Node[][] = [];
  private subTime: number[] = [];
  private lastArrivalWall: number[] = [];
  private inProcess = false;
  private closed = false;
  private readonly changelog = new Map<string, Map<string, Map<string | number, [StoreKey, unknown]>>>();
  private initialized = false;

  constructor(opts: TaskOptions) {
    this.opts = opts;
    this.taskId = opts.taskId;
    this.applicationId = opts.applicationId;
    this.partition = opts.partition;
    this.watermarkMode = opts.eventTime !== undefined;
    this.defaultKeySerde = opts.defaultKeySerde;
    this.defaultValueSerde = opts.defaultValueSerde;
    const et = opts.eventTime ?? {};
    this.bound =
      et.maxOutOfOrderness === undefined ? 0 : parseDuration(et.maxOutOfOrderness, 'eventTime.maxOutOfOrderness');
    this.idleTimeout =
      et.idleTimeout === undefined ? Number.POSITIVE_INFINITY : parseDuration(et.idleTimeout, 'eventTime.idleTimeout');
    this.allowedLateness =
      et.allowedLateness === undefined ? 0 : parseDuration(et.allowedLateness, 'eventTime.allowedLateness');

    // Stores first: nodes resolve them in init.
    const logging = opts.changelog ?? true;
    for (const spec of opts.topology.stores.values()) {
      const shared = opts.sharedStores?.get(spec.name);
      if (shared !== undefined) {
        this.stores.set(spec.name, shared);
        continue;
      }
      const backend = opts.backendFor?.(spec) ?? new MemoryBackend();
      const logger =
        logging && spec.logging && !spec.global
          ? (s: string, k: StoreKey, v: unknown) => this.logChange(s, k, v)
          : null;
      this.stores.set(spec.name, createStore(spec, backend, logger));
    }
    const byName = new Map<string, Node>();
    for (const spec of opts.topology.nodes) {
      const node = spec.create();
      byName.set(spec.name, node);
      this.nodes.push(node);
      const ups: Node[] = [];
      for (const p of spec.parents) {
        const parent = byName.get(p);
        if (parent === undefined) throw new TributaryError('INTERNAL', `node ${spec.name} has unknown parent ${p}`);
        parent.children.push(node);
        if (spec.childName !== undefined) parent.childNames.set(spec.childName, node);
        for (const a of this.upstreamAsync.get(parent) ?? []) if (!ups.includes(a)) ups.push(a);
        if (parent instanceof AsyncNode && !ups.includes(parent)) ups.push(parent);
      }
      this.upstreamAsync.set(node, ups);
      if (node instanceof AsyncNode) this.asyncNodes.push(node);
      if (spec.kind === 'source' && node instanceof SourceNode) {
        for (const t of spec.topics ?? []) {
          const topic = spec.internal ? `${opts.applicationId}-${t}` : t;
          if (this.sources.has(topic))
            throw invalidArgument('topology', `one source per topic (topic ${topic} is read twice)`);
          this.sources.set(topic, node);
        }
      }
    }
    this.assignSubtopologies(opts.topology);
    opts.topology.nodes.forEach((spec, i) => {
      if (spec.kind === 'sink' && spec.internal === true && spec.sinkTopic !== undefined)
        this.markerSinks.push({
          topic: `${opts.applicationId}-${spec.sinkTopic}`,
          sub: this.subOf.get(this.nodes[i] as Node) ?? 0,
          sent: Number.NEGATIVE_INFINITY,
          idle: false,
        });
      if (spec.kind === 'source' && spec.internal === true)
        for (const t of spec.topics ?? []) this.internalSources.add(`${opts.applicationId}-${t}`);
    });
  }

  private assignSubtopologies(topology: Topology): void {
    const parent = new Map<string, string>();
    const find = (x: string): string => {
      let r = x;
      while (parent.get(r) !== r) r = parent.get(r) as string;
      parent.set(x, r);
      return r;
    };
    const storeOwner = new Map<string, string>();
    for (const n of topology.nodes) parent.set(n.name, n.name);
    for (const n of topology.nodes) {
      for (const p of n.parents) parent.set(find(n.name), find(p));
      for (const st of n.stores) {
        const o = storeOwner.get(st);
        if (o === undefined) storeOwner.set(st, n.name);
        else parent.set(find(n.name), find(o));
      }
    }
    const ids = new Map<string, number>();
    topology.nodes.forEach((spec, i) => {
      const root = find(spec.name);
      let id = ids.get(root);
      if (id === undefined) {
        id = ids.size;
        ids.set(root, id);
        this.subNodes.push([]);
        this.subTime.push(Number.NEGATIVE_INFINITY);
        this.lastArrivalWall.push(Number.NEGATIVE_INFINITY);
      }
      const node = this.nodes[i] as Node;
      this.subOf.set(node, id);
      (this.subNodes[id] as Node[]).push(node);
    });
  }

  /** Initializes the processors; call after restoring the stores (processors may read them in init). */
  initialize(): void {
    if (this.initialized) return;
    this.initialized = true;
    for (const n of this.nodes) n.init(this);
  }

  /** Topics this task reads (external and internal, resolved). */
  inputTopics(): string[] {
    return [...this.sources.keys()];
  }
  /** Declares an input partition so that the watermark waits for it (watermark mode). */
  registerPartition(topic: string, partition: number): void {
    const k = `${topic}:${partition}`;
    const source = this.sources.get(topic);
    if (source !== undefined && !this.partitions.has(k))
      this.addPartition(k, this.newPartitionTime(topic, source, this.opts.wallClock()));
  }

  store(name: string): AnyStore {
    const s = this.stores.get(name);
    if (s === undefined) throw storeNotFound(name, [...this.stores.keys()]);
    return s;
  }
  emit(out: OutRecord): void {
    this.opts.emit(out);
  }
  wallClock(): number {
    return this.opts.wallClock();
  }
  currentRecord(): RecordMeta | null {
    return this.current;
  }
  partitionCount(topic: string): number | undefined {
    return this.opts.partitionCount?.(topic);
  }
  /** Event time of the task (the latest of its sub-topologies): stream time, or the watermark in watermark mode. */
  currentTime(): number {
    let t = Number.NEGATIVE_INFINITY;
    for (const x of this.subTime) if (x > t) t = x;
    return t;
  }

  private logChange(store: string, key: StoreKey, value: unknown): void {
    // Changes are deduplicated per key until the next commit (Kafka Streams' record cache does the same):
    // restoring needs only the latest value of each key.
    let m = this.changelog.get(store);
    if (m === undefined) {
      m = new Map();
      this.changelog.set(store, m);
    }
    // Keyed by the first key part, then by the second (window start / session end) or the JSON of the rest:
    // cheaper than building one string per write.
    const head = key[0] as string;
    let g = m.get(head);
    if (g === undefined) {
      g = new Map();
      m.set(head, g);
    }
    g.set(key.length === 1 ? '' : key.length === 2 ? (key[1] as number) : JSON.stringify(key.slice(1)), [key, value]);
  }

  /** Forwards what record caches hold (at commit), upstream caches first. */
  flushCaches(): void {
    if (!this.initialized) return;
    this.inProcess = true;
    try {
      for (const n of this.nodes) n.flushCache();
    } finally {
      this.inProcess = false;
    }
  }

  /** Emits the buffered changelog records (called at commit, before outputs are flushed). */
  flushChangelog(): void {
    if (this.changelog.size === 0) return;
    const now = this.currentTime();
    const ts = Number.isFinite(now) ? now : 0;
    for (const [store, m] of this.changelog)
      for (const g of m.values())
        for (const [key, value] of g.values())
          this.opts.emit({
            topic: changelogTopic(this.applicationId, store),
            key: Buffer.from(JSON.stringify(key)),
            value: value === null ? null : Buffer.from(JSON.stringify(value)),
            timestamp: ts,
            headers: [],
            partition: this.partition,
          });
    this.changelog.clear();
  }

  /** Applies one changelog record to a store while restoring. */
  restore(store: string, key: Buffer | null, value: Buffer | null): void {
    if (key === null) return;
    const s = this.store(store);
    s.restore(JSON.parse(key.toString()) as StoreKey, value === null ? null : JSON.parse(value.toString()));
  }

  /** The source of a topic, or a precise error. */
  private sourceOf(topic: string): SourceNode {
    // Records mostly come from the topic of the record before.
    if (topic === this.lastSourceTopic) return this.lastSource!;
    const source = this.sources.get(topic);
    if (source === undefined)
      throw invalidArgument(
        'topic',
        `a source topic of task ${this.taskId} (${[...this.sources.keys()].join(', ')})`,
        topic,
      );
    this.lastSourceTopic = topic;
    this.lastSource = source;
    return source;
  }
  private lastSourceTopic: string | null = null;
  private lastSource: SourceNode | null = null;

  /** Processes one serialized input record. */
  process(
    topic: string,
    partition: number,
    offset: number,
    key: Buffer | null,
    value: Buffer | null,
    timestamp: number,
    headers: RecordHeaders,
  ): void {
    if (this.closed) throw new TributaryError('CONFLICT', `task ${this.taskId} is closed`);
    const source = this.sourceOf(topic);
    if (!this.initialized) this.initialize();
    if (
      headers.length > 0 &&
      value === null &&
      (headers[0] as [string, Buffer])[0] === WATERMARK_HEADER &&
      this.internalSources.has(topic)
    ) {
      if (this.watermarkMode) this.onMarker(topic, partition, source, (headers[0] as [string, Buffer])[1]);
      return;
    }
    let rec: StreamRecord<unknown, unknown>;
    try {
      rec = source.extract(topic, partition, key, value, timestamp, headers);
    } catch (err) {
      const handler = this.opts.onDeserializationError;
      if (
        handler !== undefined &&
        handler(err, { topic, partition, offset, key, value, timestamp, headers }) === 'continue'
      ) {
        this.metrics.skippedRecords++;
        return;
      }
      throw err;
    }
    this.run(source, topic, partition, offset, rec, key, value);
  }

  /**
   * Processes one input record that is already an object (an in-process source such as a data generator, as
   * Flink's source functions feed a job): no deserialization on the way in.
   */
  processValue(
    topic: string,
    partition: number,
    offset: number,
    key: unknown,
    value: unknown,
    timestamp: number,
    headers: RecordHeaders = [],
  ): void {
    if (this.closed) throw new TributaryError('CONFLICT', `task ${this.taskId} is closed`);
    const source = this.sourceOf(topic);
    if (!this.initialized) this.initialize();
    this.run(
      source,
      topic,
      partition,
      offset,
      source.wrap(topic, partition, key, value, timestamp, headers),
      undefined,
      undefined,
    );
  }

  // Per topic, the partitions' time state by partition number: no string key built per record.
  private readonly partitionTimes = new Map<string, (PartitionTime | undefined)[]>();

  private lastTimesTopic: string | null = null;
  private lastTimes: (PartitionTime | undefined)[] = [];

  private partitionTime(topic: string, partition: number, source: SourceNode, now: number): PartitionTime {
    let byPartition: (PartitionTime | undefined)[] | undefined;
    if (topic === this.lastTimesTopic) byPartition = this.lastTimes;
    else {
      byPartition = this.partitionTimes.get(topic);
      if (byPartition === undefined) {
        byPartition = [];
        this.partitionTimes.set(topic, byPartition);
      }
      this.lastTimesTopic = topic;
      this.lastTimes = byPartition;
    }
    let pt = byPartition[partition];
    if (pt !== undefined) return pt;
    const pk = `${topic}:${partition}`;
    pt = this.partitions.get(pk);
    if (pt === undefined) {
      pt = this.newPartitionTime(topic, source, now);
      this.addPartition(pk, pt);
    }
    byPartition[partition] = pt;
    return pt;
  }

  /** `key`/`value` are the serialized forms when known (late records are sent on unchanged). */
  private run(
    source: SourceNode,
    topic: string,
    partition: number,
    offset: number,
    rec: StreamRecord<unknown, unknown>,
    key: Buffer | null | undefined,
    value: Buffer | null | undefined,
  ): void {
    this.metrics.recordsIn++;
    // One mutable metadata object per task: no allocation per record.
    const meta = this.meta;
    meta.topic = topic;
    meta.partition = partition;
    meta.offset = offset;
    this.current = meta;
    this.inProcess = true;
    try {
      if (!this.watermarkMode) {
        const sub = this.subOf.get(source) ?? 0;
        if (rec.timestamp > (this.subTime[sub] as number)) this.advanceTo(sub, rec.timestamp);
        source.process(rec);
      } else {
        const now = this.opts.wallClock();
        const pt = this.partitionTime(topic, partition, source, now);
        const sub = pt.sub;
        pt.lastWall = now;
        this.lastArrivalWall[sub] = now;
        if (pt.upstream !== undefined) {
          // A repartition partition: its time comes from the upstream markers; lateness was judged upstream.
          if (rec.timestamp > pt.maxTs) pt.maxTs = rec.timestamp;
          source.process(rec);
          return;
        }
        const wm = this.subTime[sub] as number;
        if (rec.timestamp < wm - this.allowedLateness) {
          this.metrics.lateRecords++;
          this.metrics.maxLateness = Math.max(this.metrics.maxLateness, wm - rec.timestamp);
          const late = this.opts.eventTime?.lateRecords;
          if (late !== undefined && late !== 'drop') {
            const raw = key === undefined ? source.serialize(topic, rec) : { key, value: value ?? null };
            this.opts.emit({
              topic: late.topic,
              key: raw.key,
              value: raw.value,
              timestamp: rec.timestamp,
              headers: [...rec.headers, ['tributary.late', Buffer.from(String(wm))]],
            });
          }
        } else {
          if (rec.timestamp > pt.maxTs) pt.maxTs = rec.timestamp;
          source.process(rec);
        }
        // Alone in its sub-topology, a partition moves the watermark only when its max timestamp rises past it;
        // with others, idleness (wall clock) and their times count too.
        if (pt.maxTs - this.bound > wm || (this.subPartitions[sub] as PartitionTime[]).length > 1)
          this.updateWatermark(sub, now);
      }
    } catch (err) {
      publish(chProcessError, () => ({ taskId: this.taskId, topic, partition, offset, error: err }));
      throw err;
    } finally {
      this.inProcess = false;
      this.current = null;
    }
  }

  private newPartitionTime(topic: string, source: SourceNode, now: number): PartitionTime {
    const marked = this.watermarkMode && this.internalSources.has(topic);
    return {
      maxTs: Number.NEGATIVE_INFINITY,
      lastWall: now,
      sub: this.subOf.get(source) ?? 0,
      upstream: marked ? new Array<number>(this.opts.taskCount ?? 1).fill(Number.NEGATIVE_INFINITY) : undefined,
      markerWm: Number.NEGATIVE_INFINITY,
    };
  }

  /**
   * Watermark markers for the repartition topics this task writes (watermark mode): one per partition of each topic
   * whose sub-topology's watermark rose by a millisecond or more since the last one. A sub-topology without time yet
   * whose inputs are all idle (or that has no input here) sends +Infinity, "idle": readers leave it out of their
   * minimum until it sends a time again (Flink's idle sources). Drivers send them after the records emitted so far.
   */
  watermarkMarkers(): readonly OutRecord[] {
    if (!this.watermarkMode || this.markerSinks.length === 0) return NO_MARKERS;
    const now = this.opts.wallClock();
    const interval = this.opts.watermarkIntervalMs ?? 0;
    if (interval > 0) {
      if (now - this.lastMarkers < interval) return [];
      this.lastMarkers = now;
    }
    const out: OutRecord[] = [];
    for (const m of this.markerSinks) {
      const t = this.subTime[m.sub] as number;
      let wm: number;
      if (t > Number.NEGATIVE_INFINITY) {
        if (!(t >= m.sent + 1) && !m.idle) continue;
        // While every input is idle the watermark follows the wall clock: one marker per idle timeout is enough
        // (an idle exactly-once job would otherwise commit a transaction of markers every interval).
        if (!m.idle && t < m.sent + this.idleTimeout && this.inputsIdle(m.sub, now)) continue;
        m.sent = t;
        m.idle = false;
        wm = t;
      } else {
        if (m.idle || !this.inputsIdle(m.sub, now)) continue;
        m.idle = true;
        wm = Number.POSITIVE_INFINITY;
      }
      const header = Buffer.allocUnsafe(16);
      header.writeDoubleLE(wm, 0);
      header.writeUInt32LE(this.partition, 8);
      header.writeUInt32LE(this.opts.taskCount ?? 1, 12);
      const ts = Number.isFinite(wm) ? Math.max(0, Math.floor(wm)) : Math.max(0, this.opts.wallClock());
      const count = this.opts.partitionCount?.(m.topic) ?? 1;
      for (let p = 0; p < count; p++)
        out.push({
          topic: m.topic,
          key: null,
          value: null,
          timestamp: ts,
          headers: [[WATERMARK_HEADER, header]],
          partition: p,
        });
    }
    return out;
  }

  /** Whether every input partition of a sub-topology is idle (none at all counts as idle). */
  private inputsIdle(sub: number, now: number): boolean {
    for (const p of this.subPartitions[sub] ?? []) {
      if (p.upstream !== undefined) {
        if (p.markerWm !== Number.POSITIVE_INFINITY) return false;
      } else if (now - p.lastWall < this.idleTimeout) return false;
    }
    return true;
  }

  /** Applies a watermark marker read from a repartition partition. */
  private onMarker(topic: string, partition: number, source: SourceNode, header: Buffer): void {
    const now = this.opts.wallClock();
    const pt = this.partitionTime(topic, partition, source, now);
    const wm = header.readDoubleLE(0);
    const from = header.readUInt32LE(8);
    const total = header.readUInt32LE(12);
    let up = pt.upstream;
    if (up === undefined) {
      up = [];
      pt.upstream = up;
    }
    // Sized by the writers' task count (it may differ from ours while a job is being rescaled).
    while (up.length < total) up.push(Number.NEGATIVE_INFINITY);
    // +Infinity from an idle writer gives way to its next time.
    const had = up[from] ?? Number.NEGATIVE_INFINITY;
    if (wm > had || had === Number.POSITIVE_INFINITY) up[from] = wm;
    let min = Number.POSITIVE_INFINITY;
    for (let i = 0; i < up.length; i++) if ((up[i] as number) < min) min = up[i] as number;
    pt.markerWm = min;
    pt.lastWall = now;
    this.inProcess = true;
    try {
      this.updateWatermark(pt.sub, now);
    } finally {
      this.inProcess = false;
    }
  }

  private addPartition(key: string, pt: PartitionTime): void {
    this.partitions.set(key, pt);
    let list = this.subPartitions[pt.sub];
    if (list === undefined) {
      list = [];
      this.subPartitions[pt.sub] = list;
    }
    list.push(pt);
  }

  private updateWatermark(sub: number, now: number): void {
    let min = Number.POSITIVE_INFINITY;
    let anyActive = false;
    let any = false;
    let maxSeen = Number.NEGATIVE_INFINITY;
    const list = this.subPartitions[sub] ?? [];
    for (let i = 0; i < list.length; i++) {
      const p = list[i] as PartitionTime;
      any = true;
      if (p.upstream !== undefined) {
        // Upstream tasks send markers as their own time advances; all of them idle (+Infinity) says nothing.
        if (p.markerWm === Number.POSITIVE_INFINITY) continue;
        anyActive = true;
        if (p.markerWm < min) min = p.markerWm;
        continue;
      }
      if (p.maxTs > maxSeen) maxSeen = p.maxTs;
      if (now - p.lastWall >= this.idleTimeout) continue;
      anyActive = true;
      if (p.maxTs - this.bound < min) min = p.maxTs - this.bound;
    }
    if (!any) return;
    let wm = min;
    if (!anyActive) {
      // Everything idle: event time keeps pace with wall-clock time since the last record.
      wm = Number.isFinite(maxSeen)
        ? maxSeen - this.bound + Math.max(0, now - (this.lastArrivalWall[sub] as number))
        : Number.NEGATIVE_INFINITY;
    }
    if (wm > (this.subTime[sub] as number)) this.advanceTo(sub, wm);
  }

  private advanceTo(sub: number, t: number): void {
    this.subTime[sub] = t;
    this.propagate(sub);
  }

  private propagate(sub: number): void {
    const t = this.subTime[sub] as number;
    if (!Number.isFinite(t)) return;
    for (const n of this.subNodes[sub] as Node[]) {
      const ups = this.upstreamAsync.get(n) as Node[];
      let eff = t;
      for (const a of ups) {
        const h = a.holdsTime();
        if (h < eff) eff = h;
      }
      n.onTime(eff);
    }
  }

  /** Wall-clock time passed: processing-time timers, punctuation and idle-partition detection. */
  advanceWallClock(): void {
    if (!this.initialized) this.initialize();
    const now = this.opts.wallClock();
    this.inProcess = true;
    try {
      for (const n of this.nodes) n.onWallClock(now);
      if (this.watermarkMode) for (let sub = 0; sub < this.subTime.length; sub++) this.updateWatermark(sub, now);
    } finally {
      this.inProcess = false;
    }
  }

  /** Forwards completed async results (called when a call completes, and by drivers). */
  wake(): void {
    if (this.inProcess || this.closed) return;
    this.drainAsync();
  }
  drainAsync(): boolean {
    let any = false;
    this.inProcess = true;
    try {
      for (const a of this.asyncNodes) if (a.drain()) any = true;
      if (any) for (let sub = 0; sub < this.subTime.length; sub++) this.propagate(sub);
    } finally {
      this.inProcess = false;
    }
    if (any) this.opts.onAsyncOutput?.();
    return any;
  }
  pendingAsync(): number {
    let n = 0;
    for (const a of this.asyncNodes) n += a.pending();
    return n;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const n of this.nodes) n.close();
  }
}
