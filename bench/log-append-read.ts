/**
 * The embedded log's append and read paths with 100-byte records, each printed beside a baseline measured
 * in the same run on the same bytes:
 *  - append (encode + Log.append, and Log.append of batches encoded beforehand) vs. fs.writeSync of the
 *    same batch bytes to a plain file;
 *  - read (Log.read of 1 MiB at a time, sequentially, counting records from the batch headers) vs.
 *    fs.readSync of the segment file in 1 MiB chunks into fresh buffers.
 * Topics use the default flush policy (page cache, fsync every flush.ms); both sides run from the page
 * cache. Each figure is the best of 3 runs after a warm-up, for the log and the baselines alike; the ratios
 * are what carries over to another machine.
 *
 *   node bench/log-append-read.ts [records=2000000] [recordsPerBatch=1000]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BatchField, encodeRecordBatch, openLog, type RecordToEncode } from '../src/log/index.ts';

const TOTAL = Number(process.argv[2] ?? 2_000_000);
const PER_BATCH = Number(process.argv[3] ?? 1000);
const READ_BYTES = 1024 * 1024;
const batches = Math.ceil(TOTAL / PER_BATCH);
const records = batches * PER_BATCH;

const value = Buffer.alloc(100);
for (let i = 0; i < value.length; i++) value[i] = (i * 31 + 7) & 0xff;
const template: RecordToEncode[] = Array.from({ length: PER_BATCH }, (_, i) => ({
  key: null,
  value,
  timestamp: 1_700_000_000_000 + i,
}));

const results: { name: string; records: number; bytes: number; ms: number; baseline?: string }[] = [];
const REPEATS = 3;

/** Runs `fn` (which returns the bytes it moved) REPEATS times after one warm-up; keeps the fastest run. */
async function measure(
  name: string,
  fn: (round: number) => Promise<number> | number,
  baseline?: string,
): Promise<void> {
  await fn(-1);
  let best = { ms: Number.POSITIVE_INFINITY, bytes: 0 };
  for (let round = 0; round < REPEATS; round++) {
    const t = performance.now();
    const bytes = await fn(round);
    const ms = performance.now() - t;
    if (ms < best.ms) best = { ms, bytes };
  }
  results.push({ name, records, ...best, baseline });
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-bench-log-'));
try {
  const log = await openLog({ dataDir: dir, cleanerIntervalMs: 0 });
  const pool = Array.from({ length: 64 }, () => encodeRecordBatch(template));
  const batchBytes = pool[0]!.length;
  const fresh = async (base: string, round: number) => {
    const name = `${base}-${round + 1}`;
    await log.createTopic(name, { partitions: 1 });
    return name;
  };

  // 1. encode + append, as the in-process producer does
  await measure(
    'encode + append',
    async (round) => {
      const topic = await fresh('encode', round);
      for (let i = 0; i < batches; i++) await log.append(topic, 0, encodeRecordBatch(template));
      return batches * batchBytes;
    },
    'raw write',
  );

  // 2. append of batches encoded beforehand (a pool reused round-robin: append only patches bytes 0-7)
  await measure(
    'append (pre-encoded)',
    async (round) => {
      const topic = await fresh('append', round);
      for (let i = 0; i < batches; i++) await log.append(topic, 0, pool[i % pool.length]!);
      return batches * batchBytes;
    },
    'raw write',
  );

  // baseline: the same bytes written with fs.writeSync to a new file, one write per batch
  await measure('raw write', (round) => {
    const fd = fs.openSync(path.join(dir, `raw-${round + 1}.bin`), 'w');
    let position = 0;
    for (let i = 0; i < batches; i++) {
      const b = pool[i % pool.length]!;
      fs.writeSync(fd, b, 0, b.length, position);
      position += b.length;
    }
    fs.closeSync(fd);
    return position;
  });

  // 3. sequential read of a whole partition, 1 MiB at a time, counting records from the batch headers
  await measure(
    'read (1 MiB fetches)',
    async () => {
      let offset = 0n;
      let counted = 0;
      let readBytes = 0;
      for (;;) {
        const r = await log.read('append-1', 0, offset, { maxBytes: READ_BYTES, isolation: 'read_uncommitted' });
        const buf = r.records;
        if (buf.length === 0) break;
        readBytes += buf.length;
        let pos = 0;
        let last = 0;
        while (pos < buf.length) {
          counted += buf.readInt32BE(pos + BatchField.recordCount);
          last = pos;
          pos += 12 + buf.readInt32BE(pos + BatchField.batchLength);
        }
        offset = buf.readBigInt64BE(last) + BigInt(buf.readInt32BE(last + BatchField.lastOffsetDelta)) + 1n;
      }
      if (counted !== records) throw new Error(`read ${counted} records, expected ${records}`);
      return readBytes;
    },
    'raw read',
  );

  // baseline: the same segment file read with fs.readSync in 1 MiB chunks into fresh buffers (a fetch
  // hands its buffer to the caller, so the log cannot reuse one either)
  const partitionDir = path.join(dir, 'append-1-0');
  const segment = path.join(partitionDir, fs.readdirSync(partitionDir).find((f) => f.endsWith('.log'))!);
  await measure('raw read', () => {
    const fd = fs.openSync(segment, 'r');
    let position = 0;
    for (;;) {
      const n = fs.readSync(fd, Buffer.allocUnsafe(READ_BYTES), 0, READ_BYTES, position);
      if (n === 0) break;
      position += n;
    }
    fs.closeSync(fd);
    return position;
  });
  await log.close();
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}

const byName = new Map(results.map((r) => [r.name, r]));
console.log(
  `log append/read: ${records.toLocaleString('en-US')} records of 100 bytes, ${PER_BATCH} per batch, Node ${process.version}`,
);
console.log('| measurement | records/s | MB/s | vs. baseline |');
console.log('|---|---:|---:|---|');
for (const r of results) {
  const perSecond = (r.records / r.ms) * 1000;
  const base = r.baseline ? byName.get(r.baseline) : undefined;
  const ratio = base ? `${(base.ms / r.ms).toFixed(2)}x of ${r.baseline}` : 'baseline';
  console.log(
    `| ${r.name} | ${Math.round(perSecond).toLocaleString('en-US')} | ${(((r.bytes / r.ms) * 1000) / 1e6).toFixed(0)} | ${ratio} |`,
  );
}
