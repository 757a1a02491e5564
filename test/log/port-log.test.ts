/**
 * The log served over a MessagePort from another thread: what the conformance suite does not reach (metadata
 * that changes behind the port, the log's thread going away).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, it } from 'node:test';
import type { ConsumedRecord } from '../../src/log/index.ts';
import type { ServerCommand } from './fixtures/log-port-server.ts';
import { startLogThread } from './helpers.ts';

let dir: string;
let thread: Awaited<ReturnType<typeof startLogThread>>;

/** Runs `command` in the log's thread, not through the port. */
async function inLogThread(command: ServerCommand): Promise<void> {
  thread.worker.postMessage(command);
  await once(thread.worker, 'message');
}

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-port-log-'));
  thread = await startLogThread(dir);
});

afterEach(async () => {
  await thread.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

it('a topic created in the log thread is usable at once; its new partitions reach a group member', async () => {
  const producer = thread.client.producer();
  await inLogThread({ type: 'createTopic', name: 'grows', partitions: 1 });
  // The client has not heard of the topic: the producer's lookup goes to the log's thread.
  await producer.send([{ topic: 'grows', value: 'p0' }]);
  const consumer = thread.client.consumer({ groupId: 'g', heartbeatIntervalMs: 50, autoOffsetReset: 'earliest' });
  await consumer.subscribe(['grows']);
  const got: ConsumedRecord[] = [];
  while (got.length < 1) got.push(...(await consumer.poll(100)));
  assert.deepEqual(consumer.assignment(), [{ topic: 'grows', partition: 0 }]);

  await inLogThread({ type: 'createPartitions', name: 'grows', count: 2 });
  // The new count comes with the next reply (a heartbeat); the member rejoins and gets both partitions.
  const deadline = Date.now() + 10_000;
  while (consumer.assignment().length < 2) {
    assert.ok(Date.now() < deadline, `assignment stayed ${JSON.stringify(consumer.assignment())}`);
    got.push(...(await consumer.poll(50)));
  }
  await producer.send([{ topic: 'grows', partition: 1, value: 'p1' }]);
  while (got.length < 2) got.push(...(await consumer.poll(100)));
  assert.deepEqual(
    got.map((r) => [r.partition, r.value?.toString()]),
    [
      [0, 'p0'],
      [1, 'p1'],
    ],
  );
  await consumer.close();
  await producer.close();
});

it('an unknown topic is NOT_FOUND with the field, as on the embedded log', async () => {
  const producer = thread.client.producer();
  await assert.rejects(producer.send([{ topic: 'nowhere', value: 'x' }]), {
    code: 'NOT_FOUND',
    field: 'records[0].topic',
  });
  await producer.close();
});

it("when the log's thread goes away, waiting and later calls fail with UNAVAILABLE and say why", async () => {
  const admin = thread.client.admin();
  await admin.createTopic('t', { partitions: 1 });
  const consumer = thread.client.consumer({ autoOffsetReset: 'earliest' });
  consumer.assign([{ topic: 't', partition: 0 }]);
  const waiting = assert.rejects(consumer.poll(30_000), { code: 'UNAVAILABLE', message: /log port closed/ });
  await new Promise((r) => setTimeout(r, 50));
  await thread.worker.terminate();
  await waiting;
  await assert.rejects(admin.listTopics(), { code: 'UNAVAILABLE', message: /log port closed/ });
  const producer = thread.client.producer();
  await assert.rejects(producer.send([{ topic: 'elsewhere', value: 'x' }]), { code: 'UNAVAILABLE' });
});
