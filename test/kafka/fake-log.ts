/** A minimal in-memory LogService: topics and data only; used until the embedded log lands. */
import { TributaryError } from '../../src/core/index.ts';
import type { LogService, ReadResult, TopicDescription } from '../../src/log/index.ts';
import { batchSizeAt, GroupCoordinator, readBatchHeader, validateBatch } from '../../src/log/index.ts';

interface Partition {
  batches: Buffer[];
  next: bigint;
}

/** With a data dir, consumer groups are served by the real GroupCoordinator. */
export function fakeLog(dataDir?: string): LogService {
  const groups = dataDir === undefined ? null : new GroupCoordinator({ dataDir });
  const topics = new Map<string, { id: string; partitions: Partition[] }>();
  const waiters = new Set<() => void>();
  const describe = (name: string): TopicDescription | undefined => {
    const t = topics.get(name);
    if (t === undefined) return undefined;
    return {
      name,
      topicId: t.id,
      internal: false,
      partitions: t.partitions.map((p, i) => ({
        partition: i,
        logStartOffset: 0n,
        highWatermark: p.next,
        lastStableOffset: p.next,
        sizeBytes: 0,
        segments: 1,
      })),
      config: { 'cleanup.policy': 'delete', 'retention.ms': -1, 'retention.bytes': -1, 'segment.bytes': 1 << 30 },
    };
  };
  const partition = (topic: string, p: number): Partition => {
    const part = topics.get(topic)?.partitions[p];
    if (part === undefined) {
      throw new TributaryError('NOT_FOUND', `${topic}/${p} does not exist`, { kafkaErrorCode: 3 });
    }
    return part;
  };
  const unsupported = (): never => {
    throw new TributaryError('UNSUPPORTED', 'not in the fake log');
  };
  return {
    dataDir: '',
    async createTopic(name, { partitions }) {
      if (topics.has(name)) throw new TributaryError('ALREADY_EXISTS', `${name} exists`, { kafkaErrorCode: 36 });
      const id = crypto.randomUUID();
      topics.set(name, { id, partitions: Array.from({ length: partitions }, () => ({ batches: [], next: 0n })) });
      return describe(name)!;
    },
    async deleteTopic(name) {
      if (!topics.delete(name)) throw new TributaryError('NOT_FOUND', `${name}`, { kafkaErrorCode: 3 });
    },
    async createPartitions(name, total) {
      const t = topics.get(name)!;
      while (t.partitions.length < total) t.partitions.push({ batches: [], next: 0n });
    },
    listTopics: () => [...topics.keys()].map((n) => describe(n)!),
    describeTopic: describe,
    alterTopicConfig: unsupported,
    async append(topic, p, batches) {
      const part = partition(topic, p);
      const base = part.next;
      for (let pos = 0; pos < batches.length; ) {
        const size = validateBatch(batches, pos);
        const batch = Buffer.from(batches.subarray(pos, pos + size));
        batch.writeBigInt64BE(part.next, 0);
        part.next += BigInt(readBatchHeader(batch).lastOffsetDelta + 1);
        part.batches.push(batch);
        pos += size;
      }
      for (const w of waiters) w();
      return { baseOffset: base, logAppendTime: -1n, logStartOffset: 0n, duplicate: false };
    },
    async read(topic, p, offset, { maxBytes }): Promise<ReadResult> {
      const part = partition(topic, p);
      if (offset > part.next) throw new TributaryError('INVALID_ARGUMENT', 'out of range', { kafkaErrorCode: 1 });
      const out: Buffer[] = [];
      let bytes = 0;
      for (const b of part.batches) {
        const h = readBatchHeader(b);
        if (h.baseOffset + BigInt(h.lastOffsetDelta) < offset) continue;
        if (out.length > 0 && bytes + b.length > maxBytes) break;
        out.push(b);
        bytes += batchSizeAt(b);
      }
      return {
        records: Buffer.concat(out),
        highWatermark: part.next,
        lastStableOffset: part.next,
        logStartOffset: 0n,
        abortedTransactions: [],
      };
    },
    waitForData(positions, timeoutMs, signal) {
      return new Promise((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        const check = (): void => {
          if (positions.some((pos) => (topics.get(pos.topic)?.partitions[pos.partition]?.next ?? 0n) > pos.offset))
            done();
        };
        const timer = setTimeout(done, timeoutMs);
        signal?.addEventListener('abort', done, { once: true });
        waiters.add(check);
        check();
      });
    },
    async listOffset(topic, p, timestamp) {
      const part = partition(topic, p);
      return { offset: timestamp === -2n ? 0n : part.next, timestamp: -1n };
    },
    deleteRecords: unsupported,
    initProducerId: async () => ({ producerId: 1n, producerEpoch: 0 }),
    addPartitionsToTxn: unsupported,
    addOffsetsToTxn: unsupported,
    txnOffsetCommit: unsupported,
    endTxn: unsupported,
    joinGroup: (req, signal) => (groups ?? unsupported()).joinGroup(req, signal),
    syncGroup: (g, gen, m, a, signal) => (groups ?? unsupported()).syncGroup(g, gen, m, a, signal),
    heartbeat: (g, gen, m) => (groups ?? unsupported()).heartbeat(g, gen, m),
    leaveGroup: (g, m) => (groups ?? unsupported()).leaveGroup(g, m),
    commitOffsets: (g, gen, m, o) => (groups ?? unsupported()).commitOffsets(g, gen, m, o),
    fetchOffsets: async (g, p) => (groups === null ? [] : groups.fetchOffsets(g, p)),
    describeGroup: (g) => (groups ?? unsupported()).describeGroup(g),
    listGroups: () => groups?.listGroups() ?? [],
    deleteGroup: (g) => (groups ?? unsupported()).deleteGroup(g),
    close: async () => {
      await groups?.close();
    },
  };
}
