import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { ReadResult } from '../../src/log/api.ts';
import { decodeFetched } from '../../src/log/client-consumer.ts';
import { murmur2, partitionForKey, StickyPartitioner } from '../../src/log/client-partitioner.ts';
import {
  decodeAssignment,
  decodeSubscription,
  encodeAssignment,
  encodeSubscription,
  rangeAssign,
} from '../../src/log/client-protocol.ts';
import { encodeControlBatch, encodeRecordBatch } from '../../src/log/record-batch.ts';

// kafkajs is an independent implementation (a devDependency used only by tests): its Java-compatible
// partitioner and its consumer-protocol encoders are the reference here.
const require = createRequire(import.meta.url);
const kafkajs = require('kafkajs') as {
  Partitioners: {
    JavaCompatiblePartitioner: () => (args: {
      topic: string;
      partitionMetadata: { partitionId: number; leader: number }[];
      message: { key: Buffer };
    }) => number;
  };
  AssignerProtocol: {
    MemberMetadata: {
      encode(m: { version: number; topics: string[]; userData: Buffer }): Buffer;
      decode(b: Buffer): { version: number; topics: string[]; userData: Buffer };
    };
    MemberAssignment: {
      encode(m: { version: number; assignment: Record<string, number[]>; userData: Buffer }): Buffer;
      decode(b: Buffer): { version: number; assignment: Record<string, number[]>; userData: Buffer };
    };
  };
};

describe('default partitioner', () => {
  it("matches Kafka's murmur2 test vectors", () => {
    // From Kafka's UtilsTest.testMurmur2.
    assert.equal(murmur2(Buffer.from('21')), -973932308);
    assert.equal(murmur2(Buffer.from('foobar')), -790332482);
    assert.equal(murmur2(Buffer.from('a-little-bit-long-string')), -985981536);
    assert.equal(murmur2(Buffer.from('a-little-bit-longer-string')), -1486304829);
    assert.equal(murmur2(Buffer.from('lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8')), -58897971);
    assert.equal(murmur2(Buffer.from('abc')), 479470107);
  });

  it('places every key on the same partition as a Java-compatible client', () => {
    const partitioner = kafkajs.Partitioners.JavaCompatiblePartitioner();
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.integer({ min: 1, max: 100 }), (key, n) => {
        const partitionMetadata = Array.from({ length: n }, (_, partitionId) => ({ partitionId, leader: 0 }));
        const expected = partitioner({ topic: 't', partitionMetadata, message: { key: Buffer.from(key) } });
        assert.equal(partitionForKey(key, n), expected);
      }),
    );
  });
});

describe('sticky partitioner', () => {
  it('keeps null-key records on one partition until its batch is sealed, then moves on', () => {
    const sticky = new StickyPartitioner();
    const first = sticky.partition('t', 4);
    for (let i = 0; i < 10; i++) assert.equal(sticky.partition('t', 4), first);
    sticky.batchSealed('t', (first + 1) % 4, 4);
    assert.equal(sticky.partition('t', 4), first, 'another partition sealing does not move it');
    const seen = new Set([first]);
    for (let i = 0; i < 3; i++) {
      sticky.batchSealed('t', sticky.partition('t', 4), 4);
      seen.add(sticky.partition('t', 4));
    }
    assert.equal(seen.size, 4, 'it visits every partition in turn');
    assert.ok(sticky.partition('t', 2) < 2, 'a smaller partition count is respected');
  });
});

describe('consumer protocol', () => {
  it('round-trips subscriptions and assignments, and reads what kafkajs writes', () => {
    const sub = { topics: ['a', 'b'], userData: Buffer.from('u') };
    assert.deepEqual(decodeSubscription(encodeSubscription(sub)), sub);
    const theirs = kafkajs.AssignerProtocol.MemberMetadata.encode({
      version: 1,
      topics: ['x', 'y'],
      userData: Buffer.alloc(0),
    });
    assert.deepEqual(decodeSubscription(theirs).topics, ['x', 'y']);
    assert.deepEqual(kafkajs.AssignerProtocol.MemberMetadata.decode(encodeSubscription(sub)).topics, ['a', 'b']);

    const assignment = {
      partitions: [
        { topic: 'a', partition: 0 },
        { topic: 'a', partition: 2 },
        { topic: 'b', partition: 1 },
      ],
      userData: null,
    };
    assert.deepEqual(decodeAssignment(encodeAssignment(assignment)), assignment);
    assert.deepEqual(kafkajs.AssignerProtocol.MemberAssignment.decode(encodeAssignment(assignment)).assignment, {
      a: [0, 2],
      b: [1],
    });
    const theirAssignment = kafkajs.AssignerProtocol.MemberAssignment.encode({
      version: 0,
      assignment: { t: [3, 1] },
      userData: Buffer.alloc(0),
    });
    assert.deepEqual(decodeAssignment(theirAssignment).partitions, [
      { topic: 't', partition: 3 },
      { topic: 't', partition: 1 },
    ]);
    assert.deepEqual(decodeAssignment(Buffer.alloc(0)).partitions, []);
    assert.throws(() => decodeSubscription(Buffer.from([0, 0, 0, 0, 0, 5])), /truncated/);
  });

  it("assigns ranges as Kafka's RangeAssignor documents", () => {
    // The RangeAssignor javadoc: two consumers, two topics of three partitions each.
    const plan = rangeAssign(
      [
        { memberId: 'C1', topics: ['t1', 't0'] },
        { memberId: 'C0', topics: ['t0', 't1'] },
      ],
      new Map([
        ['t0', 3],
        ['t1', 3],
      ]),
    );
    const show = (id: string) => plan.get(id)!.map((tp) => `${tp.topic}p${tp.partition}`);
    assert.deepEqual(show('C0'), ['t0p0', 't0p1', 't1p0', 't1p1']);
    assert.deepEqual(show('C1'), ['t0p2', 't1p2']);
  });

  it('assigns every partition exactly once among the subscribers', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 20 }), (members, partitions) => {
        const subs = Array.from({ length: members }, (_, i) => ({ memberId: `m${i}`, topics: ['t'] }));
        const plan = rangeAssign(subs, new Map([['t', partitions]]));
        const all = [...plan.values()].flat().map((tp) => tp.partition);
        assert.deepEqual(
          all.sort((a, b) => a - b),
          Array.from({ length: partitions }, (_, i) => i),
        );
        const sizes = [...plan.values()].map((l) => l.length);
        assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1);
      }),
    );
  });
});

describe('decodeFetched', () => {
  const tp = { topic: 't', partition: 0 };
  const rec = (v: string, ts = 1000) => ({
    key: `k${v}`,
    value: v,
    timestamp: ts,
    headers: [['h', Buffer.from(v)]] as [string, Buffer][],
  });
  const at = (buf: Buffer, offset: bigint) => {
    buf.writeBigInt64BE(offset, 0);
    return buf;
  };
  // offsets: 0-1 plain, 2-3 txn pid 7 (aborted), 4-5 txn pid 8 (committed), 6 abort marker pid 7, 7 commit marker pid 8, 8 plain
  const batches = Buffer.concat([
    at(encodeRecordBatch([rec('a'), rec('b', 2000)]), 0n),
    at(
      encodeRecordBatch([rec('x1'), rec('x2')], {
        producerId: 7n,
        producerEpoch: 0,
        baseSequence: 0,
        transactional: true,
      }),
      2n,
    ),
    at(
      encodeRecordBatch([rec('y1'), rec('y2')], {
        producerId: 8n,
        producerEpoch: 0,
        baseSequence: 0,
        transactional: true,
      }),
      4n,
    ),
    encodeControlBatch({ producerId: 7n, producerEpoch: 0, type: 'ABORT', baseOffset: 6n }),
    encodeControlBatch({ producerId: 8n, producerEpoch: 0, type: 'COMMIT', baseOffset: 7n }),
    at(encodeRecordBatch([rec('c')], { compression: 'gzip' }), 8n),
  ]);
  const result = (records: Buffer): ReadResult => ({
    records,
    highWatermark: 9n,
    lastStableOffset: 9n,
    logStartOffset: 0n,
    abortedTransactions: [{ producerId: 7n, firstOffset: 2n }],
  });

  it('skips control batches and aborted transactions under read_committed', () => {
    const { records, next } = decodeFetched(tp, result(batches), 0n, 'read_committed');
    assert.deepEqual(
      records.map((r) => [r.offset, r.value?.toString()]),
      [
        [0n, 'a'],
        [1n, 'b'],
        [4n, 'y1'],
        [5n, 'y2'],
        [8n, 'c'],
      ],
    );
    assert.equal(next, 9n);
    assert.equal(records[1]!.timestamp, 2000n);
    assert.equal(records[1]!.key?.toString(), 'kb');
    assert.deepEqual(records[1]!.headers, [['h', Buffer.from('b')]]);
  });

  it('returns aborted data under read_uncommitted, never control records, and starts at the fetch offset', () => {
    const all = decodeFetched(tp, result(batches), 0n, 'read_uncommitted').records;
    assert.deepEqual(
      all.map((r) => r.value?.toString()),
      ['a', 'b', 'x1', 'x2', 'y1', 'y2', 'c'],
    );
    const from = decodeFetched(tp, result(batches), 3n, 'read_uncommitted').records;
    assert.deepEqual(
      from.map((r) => r.offset),
      [3n, 4n, 5n, 8n],
    );
  });

  it('ignores a partial batch at the end of a size-limited read', () => {
    const { records, next } = decodeFetched(tp, result(batches.subarray(0, batches.length - 5)), 0n, 'read_committed');
    assert.equal(records.at(-1)!.offset, 5n);
    assert.equal(next, 8n);
  });
});
