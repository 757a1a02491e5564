import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { decodeRecordBatches, encodeRecordBatch } from '../../src/log/index.ts';
import { RawClient } from '../kafka/raw-client.ts';

const script = path.join(import.meta.dirname, 'crash-broker.ts');

function startBroker(dataDir: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [script, dataDir], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve({ child, port: Number(out.trim()) });
    });
    child.on('exit', (code) => reject(new Error(`broker exited with ${code} before listening`)));
  });
}

interface ProduceResponse {
  responses: { partitionResponses: { errorCode: number; baseOffset: bigint }[] }[];
}

test('kill -9 during acks=all produces loses no acknowledged message', async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-crash-'));
  let broker = await startBroker(dataDir);
  try {
    const admin = await RawClient.connect(broker.port);
    const created = await admin.request<{ topics: { errorCode: number }[] }>(19, 4, {
      topics: [
        {
          name: 'durable',
          numPartitions: 1,
          replicationFactor: 1,
          assignments: [],
          configs: [{ name: 'flush.messages', value: '1' }],
        },
      ],
      timeoutMs: 1000,
      validateOnly: false,
    });
    assert.equal(created.topics[0]?.errorCode, 0);
    admin.close();

    // a stream of acks=all produces, eight in flight, each batch of 10 records
    const client = await RawClient.connect(broker.port);
    const acked: string[] = [];
    let next = 0;
    let killed = false;
    const sendOne = async (): Promise<void> => {
      const n = next++;
      const values = Array.from({ length: 10 }, (_, i) => `b${n}-r${i}`);
      const batch = encodeRecordBatch(values.map((value) => ({ value })));
      const res = await client.request<ProduceResponse>(0, 7, {
        transactionalId: null,
        acks: -1,
        timeoutMs: 5000,
        topicData: [{ name: 'durable', partitionData: [{ index: 0, records: batch }] }],
      });
      assert.equal(res.responses[0]?.partitionResponses[0]?.errorCode, 0);
      acked.push(...values);
    };
    const lanes = Array.from({ length: 8 }, async () => {
      while (!killed) {
        try {
          await sendOne();
        } catch {
          return;
        }
        if (acked.length >= 3000 && !killed) {
          killed = true;
          broker.child.kill('SIGKILL');
        }
      }
    });
    await Promise.all(lanes);
    await new Promise((resolve) => broker.child.once('exit', resolve));
    assert.ok(acked.length >= 3000);

    broker = await startBroker(dataDir);
    const reader = await RawClient.connect(broker.port);
    const stored: string[] = [];
    let offset = 0n;
    for (;;) {
      const res = await reader.request<{
        responses: { partitions: { errorCode: number; highWatermark: bigint; records: Buffer | null }[] }[];
      }>(1, 11, {
        maxWaitMs: 0,
        minBytes: 1,
        maxBytes: 1 << 20,
        isolationLevel: 0,
        topics: [{ topic: 'durable', partitions: [{ partition: 0, fetchOffset: offset, partitionMaxBytes: 1 << 20 }] }],
        forgottenTopicsData: [],
        rackId: '',
      });
      const p = res.responses[0]!.partitions[0]!;
      assert.equal(p.errorCode, 0);
      // every batch passes its CRC
      const batches = decodeRecordBatches(p.records ?? Buffer.alloc(0), { verifyCrc: true });
      for (const b of batches) {
        for (const r of b.records) {
          if (b.baseOffset + BigInt(r.offsetDelta) < offset) continue;
          stored.push(r.value!.toString());
        }
        offset = b.baseOffset + BigInt(b.lastOffsetDelta) + 1n;
      }
      if (offset >= p.highWatermark || batches.length === 0) break;
    }
    reader.close();
    // every acknowledged record is stored once, in order (unacknowledged ones may follow)
    assert.equal(new Set(stored).size, stored.length, 'no record stored twice');
    assert.deepEqual(stored.slice(0, acked.length), acked);
  } finally {
    broker.child.kill('SIGKILL');
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
