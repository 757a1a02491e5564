/**
 * Property test: random appends (single and multi-batch, several partitions), reads at random offsets
 * and sizes, retention by deleteRecords, and restarts (clean, or with the clean-shutdown marker, recovery
 * points and snapshots removed so the log must recover) always agree with an in-memory model.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { decodeRecordBatches, encodeRecordBatch, type Log, openLog, validateBatch } from '../../src/log/index.ts';
import { tempDir } from './helpers.ts';

const PARTITIONS = 2;

interface Model {
  values: string[][]; // per partition, index = offset
  start: number[];
  /** Where a sequential reader of each partition continues (after the last batch it got). */
  cursor: number[];
}

type Command =
  | { kind: 'append'; partition: number; batches: number[] }
  | { kind: 'read'; partition: number; at: number | 'next'; maxBytes: number }
  | { kind: 'deleteRecords'; partition: number; at: number }
  | { kind: 'restart'; crash: boolean };

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('append' as const),
      partition: fc.nat(PARTITIONS - 1),
      batches: fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 3 }),
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('read' as const),
      partition: fc.nat(PARTITIONS - 1),
      at: fc.oneof(fc.constant('next' as const), fc.double({ min: 0, max: 1, noNaN: true })),
      maxBytes: fc.integer({ min: 1, max: 2000 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('deleteRecords' as const),
      partition: fc.nat(PARTITIONS - 1),
      at: fc.double({ min: 0, max: 1, noNaN: true }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('restart' as const), crash: fc.boolean() }) },
);

async function run(commands: Command[]): Promise<void> {
  const dir = tempDir('tributary-model-');
  fs.rmSync(dir, { recursive: true, force: true });
  const open = () => openLog({ dataDir: dir, cleanerIntervalMs: 0 });
  let log: Log = await open();
  await log.createTopic('m', { partitions: PARTITIONS, config: { 'segment.bytes': 400, 'index.interval.bytes': 60 } });
  const model: Model = {
    values: Array.from({ length: PARTITIONS }, () => []),
    start: Array(PARTITIONS).fill(0),
    cursor: Array(PARTITIONS).fill(0),
  };
  let counter = 0;
  try {
    for (const c of commands) {
      if (c.kind === 'append') {
        const values = model.values[c.partition]!;
        const batches = c.batches.map((n) => {
          const vs = Array.from({ length: n }, () => `v${counter++}`);
          return { vs, buf: encodeRecordBatch(vs.map((value) => ({ value, key: value.slice(-1) }))) };
        });
        const r = await log.append('m', c.partition, Buffer.concat(batches.map((b) => b.buf)));
        assert.equal(r.baseOffset, BigInt(values.length));
        for (const b of batches) values.push(...b.vs);
      } else if (c.kind === 'read') {
        const values = model.values[c.partition]!;
        const start = model.start[c.partition]!;
        const offset =
          c.at === 'next'
            ? Math.min(Math.max(model.cursor[c.partition]!, start), values.length)
            : start + Math.floor(c.at * (values.length - start));
        const r = await log.read('m', c.partition, BigInt(offset), {
          maxBytes: c.maxBytes,
          isolation: 'read_uncommitted',
        });
        assert.equal(r.highWatermark, BigInt(values.length));
        assert.equal(r.logStartOffset, BigInt(start));
        if (offset === values.length) {
          assert.equal(r.records.length, 0);
          continue;
        }
        assert.ok(r.records.length > 0, 'a read below the high watermark returns at least one batch');
        for (let pos = 0; pos < r.records.length; ) pos += validateBatch(r.records, pos);
        const batches = decodeRecordBatches(r.records);
        assert.ok(batches[0]!.baseOffset <= BigInt(offset));
        assert.ok(batches.length === 1 || r.records.length <= c.maxBytes);
        let expected = batches[0]!.baseOffset;
        for (const b of batches) {
          for (const rec of b.records) {
            assert.equal(rec.offset, expected++);
            assert.equal(rec.value!.toString(), values[Number(rec.offset)]);
          }
        }
        assert.ok(expected > BigInt(offset));
        model.cursor[c.partition] = Number(expected);
      } else if (c.kind === 'deleteRecords') {
        const values = model.values[c.partition]!;
        const start = model.start[c.partition]!;
        const before = start + Math.floor(c.at * (values.length - start));
        assert.equal(await log.deleteRecords('m', c.partition, BigInt(before)), BigInt(before));
        model.start[c.partition] = before;
      } else {
        await log.close();
        if (c.crash) {
          fs.rmSync(path.join(dir, '.clean-shutdown'));
          for (let p = 0; p < PARTITIONS; p++) {
            const pdir = path.join(dir, `m-${p}`);
            for (const f of fs.readdirSync(pdir)) {
              if (f.endsWith('.snapshot') || f === 'recovery-point') fs.rmSync(path.join(pdir, f));
            }
          }
        }
        log = await open();
        for (let p = 0; p < PARTITIONS; p++) {
          const info = log.describeTopic('m')!.partitions[p]!;
          assert.equal(info.highWatermark, BigInt(model.values[p]!.length));
          assert.equal(info.logStartOffset, BigInt(model.start[p]!));
        }
      }
    }
  } finally {
    await log.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('random appends, reads, deletions and restarts match an in-memory model', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(commandArb, { minLength: 1, maxLength: 60 }), (commands) => run(commands)),
    { numRuns: 60 },
  );
});
