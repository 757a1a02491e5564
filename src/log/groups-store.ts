import fs from 'node:fs';
import path from 'node:path';
import { TributaryError } from '../core/index.ts';
import type { OffsetAndMetadata, TopicPartition } from './api.ts';

/** One committed offset as stored. */
export interface StoredOffset {
  topic: string;
  partition: number;
  offset: bigint;
  leaderEpoch: number;
  metadata: string | null;
}

/** [topic, partition, offset as decimal string, leaderEpoch, metadata]: compact and JSON-safe for bigint. */
type OffsetTuple = [string, number, string, number, string | null];

/**
 * One JSON object per line; a line is the unit of atomicity (a torn last line is dropped on open).
 *  {c: group, o: offsets}            committed offsets
 *  {s: group, p: producerId, o}      offsets staged by a transaction
 *  {e: producerId, commit: boolean}  end of that transaction
 *  {d: group}                        group deleted
 */
type Line =
  | { c: string; o: OffsetTuple[] }
  | { s: string; p: string; o: OffsetTuple[] }
  | { e: string; commit: boolean }
  | { d: string };

const FILE = 'offsets.log';

function getOrCreate<K, V>(map: Map<K, V>, k: K, make: () => V): V {
  let v = map.get(k);
  if (v === undefined) {
    v = make();
    map.set(k, v);
  }
  return v;
}

function key(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

function toTuples(offsets: readonly (TopicPartition & OffsetAndMetadata)[]): OffsetTuple[] {
  return offsets.map((o) => [o.topic, o.partition, o.offset.toString(), o.leaderEpoch ?? -1, o.metadata ?? null]);
}

function fromTuple(t: OffsetTuple): StoredOffset {
  return { topic: t[0], partition: t[1], offset: BigInt(t[2]), leaderEpoch: t[3], metadata: t[4] };
}

/**
 * Durable committed offsets of every group: an append-only file of JSON lines, fsynced before a commit is
 * acknowledged, compacted (rewritten with the live state) on open. Concurrent writes share one fsync.
 */
export class OffsetStore {
  readonly path: string;
  readonly #committed = new Map<string, Map<string, StoredOffset>>();
  /** producerId -> group -> offsets staged by its open transaction. */
  readonly #staged = new Map<string, Map<string, Map<string, StoredOffset>>>();
  /** Producers with staged offsets written or queued (known before the write applies). */
  readonly #staging = new Set<string>();
  #fd: number;
  #queue: { line: Line; resolve: () => void; reject: (err: unknown) => void }[] = [];
  #writing: Promise<void> | null = null;
  #closed = false;

  constructor(dir: string) {
    fs.mkdirSync(dir, { recursive: true });
    this.path = path.join(dir, FILE);
    let text = '';
    try {
      text = fs.readFileSync(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const lines = text.split('\n');
    // The last element is '' after a complete final line, or the torn tail of an interrupted write.
    for (let i = 0; i < lines.length - 1; i++) {
      const raw = lines[i]!;
      if (raw === '') continue;
      let line: Line;
      try {
        line = JSON.parse(raw) as Line;
      } catch {
        // Only a failed write leaves a partial line (later writes follow it); it was never acknowledged.
        continue;
      }
      this.#apply(line);
    }
    this.#compact();
    this.#fd = fs.openSync(this.path, 'a');
  }

  get(groupId: string): StoredOffset[] {
    return [...(this.#committed.get(groupId)?.values() ?? [])];
  }

  getOne(groupId: string, topic: string, partition: number): StoredOffset | undefined {
    return this.#committed.get(groupId)?.get(key(topic, partition));
  }

  groups(): string[] {
    return [...this.#committed.keys()];
  }

  has(groupId: string): boolean {
    return this.#committed.has(groupId);
  }

  /** True when some open transaction has staged offsets for the group. */
  hasStaged(groupId: string): boolean {
    for (const byGroup of this.#staged.values()) if (byGroup.has(groupId)) return true;
    return false;
  }

  commit(groupId: string, offsets: readonly (TopicPartition & OffsetAndMetadata)[]): Promise<void> {
    return this.#write({ c: groupId, o: toTuples(offsets) });
  }

  stage(groupId: string, producerId: bigint, offsets: readonly (TopicPartition & OffsetAndMetadata)[]): Promise<void> {
    this.#staging.add(producerId.toString());
    return this.#write({ s: groupId, p: producerId.toString(), o: toTuples(offsets) });
  }

  complete(producerId: bigint, commit: boolean): Promise<void> {
    const pid = producerId.toString();
    // Staged lines may still be queued behind a write: `#staging` knows about them before they apply.
    if (!this.#staged.has(pid) && !this.#staging.has(pid)) return Promise.resolve();
    this.#staging.delete(pid);
    return this.#write({ e: pid, commit });
  }

  deleteGroup(groupId: string): Promise<void> {
    return this.#write({ d: groupId });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    while (this.#writing) await this.#writing;
    this.#closed = true;
    fs.closeSync(this.#fd);
  }

  #apply(line: Line): void {
    if ('c' in line) {
      const group = getOrCreate(this.#committed, line.c, () => new Map<string, StoredOffset>());
      for (const t of line.o) group.set(key(t[0], t[1]), fromTuple(t));
    } else if ('s' in line) {
      const byGroup = getOrCreate(this.#staged, line.p, () => new Map<string, Map<string, StoredOffset>>());
      const group = getOrCreate(byGroup, line.s, () => new Map<string, StoredOffset>());
      for (const t of line.o) group.set(key(t[0], t[1]), fromTuple(t));
    } else if ('e' in line) {
      const byGroup = this.#staged.get(line.e);
      this.#staged.delete(line.e);
      if (!line.commit || !byGroup) return;
      for (const [groupId, offsets] of byGroup) {
        const group = getOrCreate(this.#committed, groupId, () => new Map<string, StoredOffset>());
        for (const [k, o] of offsets) group.set(k, o);
      }
    } else {
      this.#committed.delete(line.d);
      for (const byGroup of this.#staged.values()) byGroup.delete(line.d);
    }
  }

  /** Rewrites the file with only the live state: write a temp file, fsync, rename over, fsync the directory. */
  #compact(): void {
    const out: string[] = [];
    const tuples = (m: Map<string, StoredOffset>): OffsetTuple[] =>
      [...m.values()].map((o) => [o.topic, o.partition, o.offset.toString(), o.leaderEpoch, o.metadata]);
    for (const [groupId, offsets] of this.#committed) out.push(JSON.stringify({ c: groupId, o: tuples(offsets) }));
    for (const [pid, byGroup] of this.#staged) {
      for (const [groupId, offsets] of byGroup) out.push(JSON.stringify({ s: groupId, p: pid, o: tuples(offsets) }));
    }
    const tmp = `${this.path}.tmp`;
    const fd = fs.openSync(tmp, 'w');
    try {
      if (out.length > 0) fs.writeSync(fd, `${out.join('\n')}\n`);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, this.path);
    const dirFd = fs.openSync(path.dirname(this.path), 'r');
    try {
      fs.fsyncSync(dirFd);
    } finally {
      fs.closeSync(dirFd);
    }
  }

  #write(line: Line): Promise<void> {
    if (this.#closed) {
      return Promise.reject(new TributaryError('UNAVAILABLE', 'the offset store is closed', { kafkaErrorCode: 15 }));
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ line, resolve, reject });
      if (!this.#writing) this.#writing = this.#drain();
    });
  }

  /** Writes everything queued with one write and one fsync; effects become visible once durable. */
  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue;
      this.#queue = [];
      const text = `${batch.map((b) => JSON.stringify(b.line)).join('\n')}\n`;
      try {
        await writeAll(this.#fd, Buffer.from(text, 'utf8'));
        await new Promise<void>((res, rej) => fs.fdatasync(this.#fd, (err) => (err ? rej(err) : res())));
      } catch (cause) {
        const err = new TributaryError('UNAVAILABLE', `${this.path}: could not write committed offsets`, {
          cause,
          kafkaErrorCode: 15,
        });
        for (const b of batch) b.reject(err);
        continue;
      }
      for (const b of batch) {
        this.#apply(b.line);
        b.resolve();
      }
    }
    this.#writing = null;
  }
}

async function writeAll(fd: number, buf: Buffer): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    off += await new Promise<number>((res, rej) =>
      fs.write(fd, buf, off, buf.length - off, null, (err, n) => (err ? rej(err) : res(n))),
    );
  }
}
