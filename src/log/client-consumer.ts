import { TributaryError } from '../core/index.ts';
import {
  type ConsumedRecord,
  type Consumer,
  type ConsumerOptions,
  type Header,
  type IsolationLevel,
  isMemberIdRequired,
  type LogService,
  type ReadResult,
  type TopicPartition,
} from './api.ts';
import {
  decodeAssignment,
  decodeSubscription,
  encodeAssignment,
  encodeSubscription,
  rangeAssign,
} from './client-protocol.ts';
import {
  BATCH_HEADER_BYTES,
  batchRecordsSection,
  batchSizeAt,
  decodeControlRecord,
  readBatchHeader,
  scanRecords,
} from './record-batch.ts';

const MAX_PARTITION_FETCH_BYTES = 1024 * 1024;
const EMPTY = Buffer.alloc(0);

export interface EmbeddedConsumerOptions extends ConsumerOptions {
  clientId?: string;
}

interface PartitionState {
  tp: TopicPartition;
  /** Next offset to fetch from the log. */
  fetchOffset: bigint | undefined;
  /** Fetched records not yet returned by poll. */
  buffer: ConsumedRecord[];
  bufferIndex: number;
}

function tpKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

function kafkaCodeOf(err: unknown): number | undefined {
  return (err as { kafkaErrorCode?: number } | null)?.kafkaErrorCode;
}

/**
 * The embedded consumer: manual assignment, or a member of a consumer group through the log's group
 * coordinator (Kafka's classic protocol with the "consumer" protocol type and the range assignor, so it can
 * share a group with Kafka clients on the broker). Membership runs in the background: heartbeats notice a
 * rebalance and rejoin without waiting for poll.
 */
export class EmbeddedConsumer implements Consumer {
  readonly #log: LogService;
  readonly #groupId: string | null;
  readonly #isolation: IsolationLevel;
  readonly #reset: 'earliest' | 'latest';
  readonly #autoCommit: boolean;
  readonly #sessionTimeoutMs: number;
  readonly #rebalanceTimeoutMs: number;
  readonly #heartbeatIntervalMs: number;
  readonly #maxPollRecords: number;
  readonly #clientId: string;
  readonly #partitions = new Map<string, PartitionState>();
  readonly #closing = new AbortController();
  #mode: 'none' | 'assign' | 'subscribe' = 'none';
  #topics: string[] = [];
  #memberId = '';
  #generationId = -1;
  #joined = false;
  #joining: Promise<void> | null = null;
  #heartbeat: NodeJS.Timeout | null = null;
  /** As leader: the partition counts the current assignment was computed from (-1 = topic missing). */
  #assignedCounts: Map<string, number> | null = null;
  /** Aborted when the assignment changes, to cut a poll's wait short. */
  #wake = new AbortController();
  #rotate = 0;
  #closed = false;

  constructor(log: LogService, options: EmbeddedConsumerOptions = {}) {
    this.#log = log;
    this.#groupId = options.groupId ?? null;
    this.#isolation = options.isolation ?? 'read_committed';
    this.#reset = options.autoOffsetReset ?? 'latest';
    this.#autoCommit = options.autoCommit ?? false;
    this.#sessionTimeoutMs = options.sessionTimeoutMs ?? 10_000;
    this.#rebalanceTimeoutMs = options.rebalanceTimeoutMs ?? Math.max(this.#sessionTimeoutMs, 30_000);
    this.#heartbeatIntervalMs = options.heartbeatIntervalMs ?? Math.min(Math.floor(this.#sessionTimeoutMs / 3), 500);
    this.#maxPollRecords = options.maxPollRecords ?? 500;
    this.#clientId = options.clientId ?? 'tributary';
  }

  async subscribe(topics: string[]): Promise<void> {
    this.#checkOpen();
    if (this.#groupId === null) {
      throw new TributaryError('INVALID_ARGUMENT', 'subscribe: the consumer needs a groupId (or use assign)', {
        field: 'groupId',
      });
    }
    if (this.#mode === 'assign') {
      throw new TributaryError('CONFLICT', 'subscribe: the consumer already uses assign()');
    }
    this.#mode = 'subscribe';
    this.#topics = [...new Set(topics)].sort();
    this.#joined = false;
    await this.#ensureJoined();
    this.#heartbeat ??= setInterval(() => void this.#beat(), this.#heartbeatIntervalMs);
    this.#heartbeat.unref();
  }

  assign(partitions: TopicPartition[]): void {
    this.#checkOpen();
    if (this.#mode === 'subscribe') throw new TributaryError('CONFLICT', 'assign: the consumer already subscribed');
    this.#mode = 'assign';
    this.#setAssignment(partitions);
  }

  seek(partition: TopicPartition, offset: bigint): void {
    const state = this.#partitions.get(tpKey(partition.topic, partition.partition));
    if (!state) {
      throw new TributaryError(
        'INVALID_ARGUMENT',
        `seek: ${partition.topic}-${partition.partition} is not assigned to this consumer`,
        { field: 'partition' },
      );
    }
    state.fetchOffset = offset;
    state.buffer = [];
    state.bufferIndex = 0;
  }

  assignment(): TopicPartition[] {
    return [...this.#partitions.values()].map((s) => ({ ...s.tp }));
  }

  position(partition: TopicPartition): bigint | undefined {
    const s = this.#partitions.get(tpKey(partition.topic, partition.partition));
    if (!s) return undefined;
    return s.bufferIndex < s.buffer.length ? s.buffer[s.bufferIndex]!.offset : s.fetchOffset;
  }

  async poll(timeoutMs: number): Promise<ConsumedRecord[]> {
    this.#checkOpen();
    const deadline = Date.now() + Math.max(0, timeoutMs);
    if (this.#mode === 'subscribe' && !this.#joined) {
      const joined = await Promise.race([
        this.#ensureJoined().then(() => true),
        new Promise<false>((r) => setTimeout(r, Math.max(0, deadline - Date.now()), false).unref()),
      ]);
      if (!joined) return [];
    }
    if (this.#autoCommit && this.#groupId !== null) await this.commit().catch(() => undefined);
    let wokeEarly = false;
    for (;;) {
      await this.#resolvePositions();
      let out = this.#drain();
      if (out.length > 0) return out;
      await this.#fetch();
      out = this.#drain();
      if (out.length > 0) return out;
      let remaining = deadline - Date.now();
      if (remaining <= 0 || this.#closed) return [];
      if (wokeEarly) {
        // Woken at once yet nothing readable: data beyond the last stable offset. Do not spin on it.
        await sleep(Math.min(remaining, 5), this.#wake.signal);
        remaining = deadline - Date.now();
        if (remaining <= 0 || this.#closed) return [];
      }
      const positions = [...this.#partitions.values()]
        .filter((s) => s.fetchOffset !== undefined)
        .map((s) => ({ topic: s.tp.topic, partition: s.tp.partition, offset: s.fetchOffset! }));
      const wake = this.#wake.signal;
      const before = Date.now();
      if (positions.length === 0) {
        await sleep(Math.min(remaining, 50), wake);
      } else {
        await this.#log.waitForData(positions, remaining, AbortSignal.any([wake, this.#closing.signal]));
        wokeEarly = Date.now() - before < 2;
      }
    }
  }

  async commit(offsets?: (TopicPartition & { offset: bigint })[]): Promise<void> {
    this.#checkOpen();
    if (this.#groupId === null) {
      throw new TributaryError('INVALID_ARGUMENT', 'commit: the consumer has no groupId', { field: 'groupId' });
    }
    const list =
      offsets ??
      [...this.#partitions.values()]
        .map((s) => ({ ...s.tp, offset: this.position(s.tp) }))
        .filter((o): o is TopicPartition & { offset: bigint } => o.offset !== undefined);
    if (list.length === 0) return;
    const group = this.#mode === 'subscribe';
    try {
      await this.#log.commitOffsets(
        this.#groupId,
        group ? this.#generationId : -1,
        group ? this.#memberId : '',
        list.map((o) => ({ topic: o.topic, partition: o.partition, offset: o.offset, metadata: null })),
      );
    } catch (err) {
      // The group moved on (rebalance, expiry): rejoin; the caller learns the commit failed.
      if (group && [22, 25, 27].includes(kafkaCodeOf(err) ?? 0)) this.#needRejoin(kafkaCodeOf(err) === 25);
      throw err;
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    if (this.#autoCommit && this.#groupId !== null) await this.commit().catch(() => undefined);
    this.#closed = true;
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    this.#closing.abort(new TributaryError('UNAVAILABLE', 'the consumer is closed'));
    this.#wake.abort();
    if (this.#joining) await this.#joining.catch(() => undefined);
    if (this.#mode === 'subscribe' && this.#memberId !== '') {
      await this.#log.leaveGroup(this.#groupId!, this.#memberId).catch(() => undefined);
    }
    this.#partitions.clear();
  }

  // ---- group membership ----

  #checkOpen(): void {
    if (this.#closed) throw new TributaryError('UNAVAILABLE', 'the consumer is closed');
  }

  #ensureJoined(): Promise<void> {
    if (this.#joined) return Promise.resolve();
    this.#joining ??= this.#join().finally(() => {
      this.#joining = null;
    });
    return this.#joining;
  }

  #needRejoin(resetMemberId: boolean): void {
    if (this.#closed || this.#mode !== 'subscribe') return;
    if (resetMemberId) this.#memberId = '';
    this.#joined = false;
    void this.#ensureJoined().catch(() => undefined);
  }

  async #beat(): Promise<void> {
    if (!this.#joined || this.#closed || this.#joining) return;
    if (this.#assignedCounts && this.#partitionCountsChanged(this.#assignedCounts)) {
      // The leader saw topics appear or grow: rejoining as leader makes the group rebalance (as Kafka's
      // leader does on a metadata change).
      this.#needRejoin(false);
      return;
    }
    try {
      await this.#log.heartbeat(this.#groupId!, this.#generationId, this.#memberId);
    } catch (err) {
      const code = kafkaCodeOf(err);
      if (code === 27 || code === 22) this.#needRejoin(false);
      else if (code === 25) this.#needRejoin(true);
    }
  }

  async #join(): Promise<void> {
    const signal = this.#closing.signal;
    while (!this.#closed) {
      let join: Awaited<ReturnType<LogService['joinGroup']>>;
      try {
        join = await this.#log.joinGroup(
          {
            groupId: this.#groupId!,
            sessionTimeoutMs: this.#sessionTimeoutMs,
            rebalanceTimeoutMs: this.#rebalanceTimeoutMs,
            memberId: this.#memberId,
            groupInstanceId: null,
            protocolType: 'consumer',
            protocols: [{ name: 'range', metadata: encodeSubscription({ topics: this.#topics, userData: null }) }],
            clientId: this.#clientId,
            clientHost: 'embedded',
            requireKnownMemberId: true,
          },
          signal,
        );
      } catch (err) {
        if (isMemberIdRequired(err)) {
          this.#memberId = err.memberId;
          continue;
        }
        const code = kafkaCodeOf(err);
        if (code === 25) {
          this.#memberId = '';
          continue;
        }
        if (code === 27) continue;
        throw err;
      }
      this.#memberId = join.memberId;
      this.#generationId = join.generationId;
      this.#assignedCounts = null;
      let assignments: { memberId: string; assignment: Buffer }[] = [];
      if (join.leader === join.memberId) assignments = this.#assign(join.members);
      let assignment: Buffer;
      try {
        assignment = (await this.#log.syncGroup(this.#groupId!, join.generationId, join.memberId, assignments, signal))
          .assignment;
      } catch (err) {
        const code = kafkaCodeOf(err);
        if (code === 25) this.#memberId = '';
        if (code === 25 || code === 27 || code === 22) continue;
        throw err;
      }
      this.#setAssignment(decodeAssignment(assignment).partitions);
      this.#joined = true;
      return;
    }
  }

  /** The leader's range assignment over every member's subscription. */
  #assign(members: { memberId: string; metadata: Buffer }[]): { memberId: string; assignment: Buffer }[] {
    const subs = members.map((m) => {
      let topics: string[] = [];
      try {
        topics = decodeSubscription(m.metadata).topics;
      } catch {
        // A member with unreadable metadata gets nothing rather than failing the whole group.
      }
      return { memberId: m.memberId, topics };
    });
    const counts = new Map<string, number>();
    const seen = new Map<string, number>();
    for (const topic of new Set(subs.flatMap((s) => s.topics))) {
      const d = this.#log.describeTopic(topic);
      if (d) counts.set(topic, d.partitions.length);
      seen.set(topic, d?.partitions.length ?? -1);
    }
    this.#assignedCounts = seen;
    const plan = rangeAssign(subs, counts);
    return members.map((m) => ({
      memberId: m.memberId,
      assignment: encodeAssignment({ partitions: plan.get(m.memberId) ?? [], userData: null }),
    }));
  }

  #partitionCountsChanged(counts: Map<string, number>): boolean {
    for (const [topic, count] of counts) {
      if ((this.#log.describeTopic(topic)?.partitions.length ?? -1) !== count) return true;
    }
    return false;
  }

  /** Keeps positions of partitions that stay; new ones start from the committed offset or the reset policy. */
  #setAssignment(partitions: TopicPartition[]): void {
    const next = new Map<string, PartitionState>();
    for (const tp of partitions) {
      const k = tpKey(tp.topic, tp.partition);
      next.set(
        k,
        this.#partitions.get(k) ?? {
          tp: { topic: tp.topic, partition: tp.partition },
          fetchOffset: undefined,
          buffer: [],
          bufferIndex: 0,
        },
      );
    }
    this.#partitions.clear();
    for (const [k, s] of next) this.#partitions.set(k, s);
    const wake = this.#wake;
    this.#wake = new AbortController();
    wake.abort();
  }

  // ---- fetching ----

  async #resolvePositions(): Promise<void> {
    const missing = [...this.#partitions.values()].filter((s) => s.fetchOffset === undefined);
    if (missing.length === 0) return;
    let committed = new Map<string, bigint>();
    if (this.#groupId !== null) {
      const got = await this.#log.fetchOffsets(
        this.#groupId,
        missing.map((s) => s.tp),
      );
      committed = new Map(got.filter((o) => o.offset >= 0n).map((o) => [tpKey(o.topic, o.partition), o.offset]));
    }
    await Promise.all(
      missing.map(async (s) => {
        const offset = committed.get(tpKey(s.tp.topic, s.tp.partition)) ?? (await this.#resetOffset(s.tp));
        if (s.fetchOffset === undefined) s.fetchOffset = offset;
      }),
    );
  }

  async #resetOffset(tp: TopicPartition): Promise<bigint> {
    const ts = this.#reset === 'earliest' ? -2n : -1n;
    return (await this.#log.listOffset(tp.topic, tp.partition, ts, this.#isolation)).offset;
  }

  async #fetch(): Promise<void> {
    const states = [...this.#partitions.values()].filter(
      (s) => s.fetchOffset !== undefined && s.bufferIndex >= s.buffer.length,
    );
    await Promise.all(
      states.map(async (s) => {
        const offset = s.fetchOffset!;
        let result: ReadResult;
        try {
          result = await this.#log.read(s.tp.topic, s.tp.partition, offset, {
            maxBytes: MAX_PARTITION_FETCH_BYTES,
            isolation: this.#isolation,
          });
        } catch (err) {
          if (kafkaCodeOf(err) === 1) {
            // OFFSET_OUT_OF_RANGE (retention moved the log start, or a seek went too far): apply the reset policy.
            const reset = await this.#resetOffset(s.tp);
            if (s.fetchOffset === offset) s.fetchOffset = reset;
            return;
          }
          throw err;
        }
        // A seek or rebalance during the read makes its result stale.
        if (s.fetchOffset !== offset || this.#partitions.get(tpKey(s.tp.topic, s.tp.partition)) !== s) return;
        const { records, next } = decodeFetched(s.tp, result, offset, this.#isolation);
        s.buffer = records;
        s.bufferIndex = 0;
        s.fetchOffset = next;
      }),
    );
  }

  #drain(): ConsumedRecord[] {
    const out: ConsumedRecord[] = [];
    const states = [...this.#partitions.values()];
    if (states.length === 0) return out;
    // Start from a different partition each poll so one busy partition cannot starve the others.
    const start = this.#rotate++ % states.length;
    for (let i = 0; i < states.length && out.length < this.#maxPollRecords; i++) {
      const s = states[(start + i) % states.length]!;
      const take = Math.min(s.buffer.length - s.bufferIndex, this.#maxPollRecords - out.length);
      if (take <= 0) continue;
      if (s.bufferIndex === 0 && take === s.buffer.length) {
        for (const r of s.buffer) out.push(r);
      } else {
        for (let j = 0; j < take; j++) out.push(s.buffer[s.bufferIndex + j]!);
      }
      s.bufferIndex += take;
      if (s.bufferIndex >= s.buffer.length) {
        s.buffer = [];
        s.bufferIndex = 0;
      }
    }
    return out;
  }
}

/**
 * Decodes the batches of one read into records at or after `fetchOffset`: control batches are skipped, and
 * under read_committed so are batches of aborted transactions (Kafka's consumer algorithm: an aborted
 * transaction applies to its producer's batches from its first offset until that producer's ABORT marker).
 */
export function decodeFetched(
  tp: TopicPartition,
  result: ReadResult,
  fetchOffset: bigint,
  isolation: IsolationLevel,
): { records: ConsumedRecord[]; next: bigint } {
  const buf = result.records;
  const out: ConsumedRecord[] = [];
  let next = fetchOffset;
  const aborted =
    isolation === 'read_committed'
      ? [...result.abortedTransactions].sort((a, b) => (a.firstOffset < b.firstOffset ? -1 : 1))
      : [];
  let abortedIndex = 0;
  const abortedProducers = new Set<bigint>();
  let pos = 0;
  while (buf.length - pos >= BATCH_HEADER_BYTES) {
    const size = batchSizeAt(buf, pos);
    if (size < BATCH_HEADER_BYTES) {
      throw new TributaryError('CORRUPT_DATA', `${tp.topic}-${tp.partition}: batch at byte ${pos} is too short`);
    }
    if (pos + size > buf.length) break; // a partial batch at the end of a size-limited read
    const h = readBatchHeader(buf, pos);
    const batchPos = pos;
    pos += size;
    const lastOffset = h.baseOffset + BigInt(h.lastOffsetDelta);
    if (lastOffset < fetchOffset) continue;
    next = lastOffset + 1n;
    if (isolation === 'read_committed' && h.producerId >= 0n) {
      while (abortedIndex < aborted.length && aborted[abortedIndex]!.firstOffset <= lastOffset) {
        abortedProducers.add(aborted[abortedIndex++]!.producerId);
      }
      if (h.isControl) {
        const section = batchRecordsSection(buf, batchPos, size);
        let isAbort = false;
        scanRecords(section, h.recordCount, (r) => {
          isAbort = decodeControlRecord(r.key, r.value).type === 'ABORT';
        });
        if (isAbort) abortedProducers.delete(h.producerId);
        continue;
      }
      if (h.isTransactional && abortedProducers.has(h.producerId)) continue;
    }
    if (h.isControl) continue;
    const section = batchRecordsSection(buf, batchPos, size);
    const logAppendTime = h.timestampType === 'LogAppendTime';
    const { topic, partition } = tp;
    scanRecords(section, h.recordCount, (r) => {
      const offset = h.baseOffset + BigInt(r.offsetDelta);
      if (offset < fetchOffset) return;
      const headers: Header[] = r.headers.length === 0 ? [] : r.headers.map(([k, v]) => [k, v ?? EMPTY]);
      out.push({
        topic,
        partition,
        offset,
        timestamp: logAppendTime ? h.maxTimestamp : h.baseTimestamp + BigInt(r.timestampDelta),
        key: r.key,
        value: r.value,
        headers,
      });
    });
  }
  return { records: out, next };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
