import { TributaryError } from '../core/index.ts';
import type { TopicPartition } from './api.ts';

/**
 * The consumer protocol carried inside JoinGroup / SyncGroup (Kafka's ConsumerProtocolSubscription and
 * ConsumerProtocolAssignment, big-endian, non-flexible). Using Kafka's encoding lets embedded consumers
 * share a group with kcat, kafkajs and Java consumers connected to the broker.
 */

export interface Subscription {
  topics: string[];
  userData: Buffer | null;
}

export interface Assignment {
  partitions: TopicPartition[];
  userData: Buffer | null;
}

class Writer {
  readonly parts: Buffer[] = [];
  int16(v: number): void {
    const b = Buffer.allocUnsafe(2);
    b.writeInt16BE(v);
    this.parts.push(b);
  }
  int32(v: number): void {
    const b = Buffer.allocUnsafe(4);
    b.writeInt32BE(v);
    this.parts.push(b);
  }
  string(s: string): void {
    const bytes = Buffer.from(s, 'utf8');
    this.int16(bytes.length);
    this.parts.push(bytes);
  }
  bytes(b: Buffer | null): void {
    if (b === null) {
      this.int32(-1);
      return;
    }
    this.int32(b.length);
    this.parts.push(b);
  }
  done(): Buffer {
    return Buffer.concat(this.parts);
  }
}

class Reader {
  offset = 0;
  readonly buf: Buffer;
  readonly what: string;
  constructor(buf: Buffer, what: string) {
    this.buf = buf;
    this.what = what;
  }
  need(n: number): void {
    if (this.offset + n > this.buf.length) {
      throw new TributaryError('CORRUPT_DATA', `${this.what}: truncated at byte ${this.offset} (needed ${n} more)`);
    }
  }
  int16(): number {
    this.need(2);
    const v = this.buf.readInt16BE(this.offset);
    this.offset += 2;
    return v;
  }
  int32(): number {
    this.need(4);
    const v = this.buf.readInt32BE(this.offset);
    this.offset += 4;
    return v;
  }
  string(): string {
    const n = this.int16();
    if (n < 0) throw new TributaryError('CORRUPT_DATA', `${this.what}: null string at byte ${this.offset - 2}`);
    this.need(n);
    const s = this.buf.toString('utf8', this.offset, this.offset + n);
    this.offset += n;
    return s;
  }
  bytes(): Buffer | null {
    const n = this.int32();
    if (n < 0) return null;
    this.need(n);
    const b = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return b;
  }
  count(): number {
    const n = this.int32();
    if (n < 0) return 0;
    if (n > this.buf.length) throw new TributaryError('CORRUPT_DATA', `${this.what}: array length ${n} too large`);
    return n;
  }
}

export function encodeSubscription(sub: Subscription): Buffer {
  const w = new Writer();
  w.int16(0);
  w.int32(sub.topics.length);
  for (const t of sub.topics) w.string(t);
  w.bytes(sub.userData);
  return w.done();
}

/** Reads any version: fields after userData (owned partitions, generation, rack; v1-v3) are ignored. */
export function decodeSubscription(buf: Buffer): Subscription {
  const r = new Reader(buf, 'consumer subscription');
  r.int16();
  const n = r.count();
  const topics: string[] = [];
  for (let i = 0; i < n; i++) topics.push(r.string());
  const userData = r.offset < buf.length ? r.bytes() : null;
  return { topics, userData };
}

export function encodeAssignment(assignment: Assignment): Buffer {
  const byTopic = new Map<string, number[]>();
  for (const tp of assignment.partitions) {
    const list = byTopic.get(tp.topic) ?? [];
    list.push(tp.partition);
    byTopic.set(tp.topic, list);
  }
  const w = new Writer();
  w.int16(0);
  w.int32(byTopic.size);
  for (const [topic, partitions] of byTopic) {
    w.string(topic);
    w.int32(partitions.length);
    for (const p of partitions) w.int32(p);
  }
  w.bytes(assignment.userData);
  return w.done();
}

/** An empty buffer (a member the leader gave nothing) decodes to no partitions. */
export function decodeAssignment(buf: Buffer): Assignment {
  if (buf.length === 0) return { partitions: [], userData: null };
  const r = new Reader(buf, 'consumer assignment');
  r.int16();
  const partitions: TopicPartition[] = [];
  const n = r.count();
  for (let i = 0; i < n; i++) {
    const topic = r.string();
    const m = r.count();
    for (let j = 0; j < m; j++) partitions.push({ topic, partition: r.int32() });
  }
  const userData = r.offset < buf.length ? r.bytes() : null;
  return { partitions, userData };
}

/**
 * Kafka's RangeAssignor: per topic, members subscribed to it in member-id order each take a contiguous range;
 * the first (partitions % members) members take one extra.
 */
export function rangeAssign(
  members: { memberId: string; topics: string[] }[],
  partitionCounts: ReadonlyMap<string, number>,
): Map<string, TopicPartition[]> {
  const out = new Map<string, TopicPartition[]>(members.map((m) => [m.memberId, []]));
  const topics = new Set(members.flatMap((m) => m.topics));
  for (const topic of [...topics].sort()) {
    const count = partitionCounts.get(topic);
    if (count === undefined) continue;
    const consumers = members
      .filter((m) => m.topics.includes(topic))
      .map((m) => m.memberId)
      .sort();
    const per = Math.floor(count / consumers.length);
    const extra = count % consumers.length;
    consumers.forEach((memberId, i) => {
      const start = per * i + Math.min(i, extra);
      const length = per + (i < extra ? 1 : 0);
      for (let p = start; p < start + length; p++) out.get(memberId)!.push({ topic, partition: p });
    });
  }
  return out;
}
