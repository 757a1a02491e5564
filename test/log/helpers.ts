import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { MessageChannel, Worker } from 'node:worker_threads';
import {
  connectLogPort,
  decodeRecordBatches,
  type EncodeBatchOptions,
  encodeRecordBatch,
  type Log,
  type LogClient,
  type OpenLogOptions,
  openLog,
} from '../../src/log/index.ts';

/** A fresh temporary directory, removed after the test file. */
export function tempDir(prefix = 'tributary-log-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A log in a fresh directory, closed and removed after the test file. */
export async function freshLog(options: Partial<OpenLogOptions> = {}): Promise<Log> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-log-'));
  const log = await openLog({ dataDir: dir, cleanerIntervalMs: 0, ...options });
  after(async () => {
    await log.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return log;
}

/** A batch of `count` records with values `${prefix}${i}`. */
export function batch(
  count: number,
  prefix = 'v',
  options: EncodeBatchOptions & { timestamp?: number; key?: (i: number) => string | null } = {},
): Buffer {
  return encodeRecordBatch(
    Array.from({ length: count }, (_, i) => ({
      key: options.key ? options.key(i) : null,
      value: `${prefix}${i}`,
      timestamp: options.timestamp,
    })),
    options,
  );
}

export interface Row {
  offset: bigint;
  key: string | null;
  value: string | null;
}

/** Reads a partition from `from` to the end (read_uncommitted unless told), decoding data records. */
export async function readAll(
  log: Log,
  topic: string,
  partition = 0,
  options: { from?: bigint; isolation?: 'read_committed' | 'read_uncommitted'; maxBytes?: number } = {},
): Promise<Row[]> {
  const rows: Row[] = [];
  let offset = options.from ?? log.describeTopic(topic)!.partitions[partition]!.logStartOffset;
  for (;;) {
    const r = await log.read(topic, partition, offset, {
      maxBytes: options.maxBytes ?? 1 << 20,
      isolation: options.isolation ?? 'read_uncommitted',
    });
    if (r.records.length === 0) return rows;
    // as Kafka's consumer: an aborted transaction applies from its first offset until its ABORT marker
    const aborted = new Set<bigint>();
    const pending = [...r.abortedTransactions].sort((x, y) => (x.firstOffset < y.firstOffset ? -1 : 1));
    for (const b of decodeRecordBatches(r.records)) {
      const lastOffset = b.baseOffset + BigInt(b.lastOffsetDelta);
      while (pending.length > 0 && pending[0]!.firstOffset <= lastOffset) aborted.add(pending.shift()!.producerId);
      if (b.isControl) {
        aborted.delete(b.producerId);
      } else if (!(b.isTransactional && aborted.has(b.producerId))) {
        for (const rec of b.records) {
          if (rec.offset >= offset)
            rows.push({ offset: rec.offset, key: rec.key?.toString() ?? null, value: rec.value?.toString() ?? null });
        }
      }
      offset = b.baseOffset + BigInt(b.lastOffsetDelta) + 1n;
    }
  }
}

/** An embedded log opened in a worker thread (fixtures/log-port-server.ts) and a client to it over a MessagePort. */
export async function startLogThread(
  dataDir: string,
): Promise<{ worker: Worker; client: LogClient; close(): Promise<void> }> {
  const { port1, port2 } = new MessageChannel();
  const worker = new Worker(new URL('./fixtures/log-port-server.ts', import.meta.url), {
    workerData: { dataDir, port: port2 },
    transferList: [port2],
  });
  await once(worker, 'message');
  const client = await connectLogPort(port1);
  return {
    worker,
    client,
    async close() {
      await client.close();
      if (worker.threadId === -1) return; // already gone
      worker.postMessage({ type: 'close' });
      await once(worker, 'exit');
    },
  };
}
