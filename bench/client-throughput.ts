/**
 * In-process client throughput, 100-byte records: the embedded Producer (batching + idempotence + append)
 * and Consumer (read + decode), each beside a baseline measured in the same run: encoding the same batches
 * without the log, and decoding the same bytes without the log.
 *
 *   node bench/client-throughput.ts [records=1000000]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { decodeFetched } from '../src/log/client-consumer.ts';
import { embeddedClient, encodeRecordBatch, openLog, type ProducerRecord } from '../src/log/index.ts';

const N = Number(process.argv[2] ?? 1_000_000);
const SEND_CHUNK = 10_000;
const BATCH_BYTES = 1024 * 1024;
const topic = 'bench';

const value = Buffer.alloc(100, 'x');
const records: ProducerRecord[] = Array.from({ length: SEND_CHUNK }, (_, i) => ({
  topic,
  partition: 0,
  key: null,
  value,
  timestamp: 1_700_000_000_000 + i,
}));

function rate(count: number, ms: number): string {
  return `${Math.round((count / ms) * 1000).toLocaleString('en-US')} records/s`;
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-bench-client-'));
try {
  const log = await openLog({ dataDir: dir });
  await log.createTopic(topic, { partitions: 1, config: { 'flush.messages': Number.MAX_SAFE_INTEGER } });
  const client = embeddedClient(log);

  // Baseline: encode the same records into batches of the producer's size, no log.
  const perBatch = Math.floor(BATCH_BYTES / 120);
  let t = performance.now();
  let encoded = 0;
  const encodedBatches: Buffer[] = [];
  while (encoded < N) {
    const n = Math.min(perBatch, N - encoded);
    const chunk =
      records.length >= n ? records.slice(0, n) : Array.from({ length: n }, (_, i) => records[i % SEND_CHUNK]!);
    const b = encodeRecordBatch(chunk);
    b.writeBigInt64BE(BigInt(encoded), 0);
    encodedBatches.push(b);
    encoded += n;
  }
  const encodeMs = performance.now() - t;

  const producer = client.producer({ batchSize: BATCH_BYTES });
  t = performance.now();
  for (let sent = 0; sent < N; sent += SEND_CHUNK) {
    await producer.send(sent + SEND_CHUNK <= N ? records : records.slice(0, N - sent));
  }
  await producer.flush();
  const produceMs = performance.now() - t;

  // Baseline: decode the same batches, no log.
  t = performance.now();
  let decoded = 0;
  for (const batch of encodedBatches) {
    const result = {
      records: batch,
      highWatermark: 0n,
      lastStableOffset: 0n,
      logStartOffset: 0n,
      abortedTransactions: [],
    };
    decoded += decodeFetched({ topic, partition: 0 }, result, 0n, 'read_uncommitted').records.length;
  }
  const decodeMs = performance.now() - t;

  const consumer = client.consumer({ autoOffsetReset: 'earliest', maxPollRecords: 100_000 });
  consumer.assign([{ topic, partition: 0 }]);
  t = performance.now();
  let consumed = 0;
  while (consumed < N) consumed += (await consumer.poll(1000)).length;
  const consumeMs = performance.now() - t;

  console.log(`client throughput, ${N.toLocaleString('en-US')} records of ${value.length} bytes, 1 partition`);
  console.log(`  produce (embedded Producer -> log)   ${rate(N, produceMs)}`);
  console.log(
    `  baseline: encodeRecordBatch only     ${rate(encoded, encodeMs)}  (ratio ${(encodeMs / produceMs).toFixed(2)})`,
  );
  console.log(`  consume (log -> embedded Consumer)   ${rate(consumed, consumeMs)}`);
  console.log(
    `  baseline: decode same bytes only     ${rate(decoded, decodeMs)}  (ratio ${(decodeMs / consumeMs).toFixed(2)})`,
  );
  await client.close();
  await log.close();
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
