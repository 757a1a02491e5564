/** The remote LogClient beyond the conformance suite: SASL, and errors surfacing as rejections. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { quietLogger, remoteClient, startKafkaBroker } from '../../src/kafka/index.ts';
import { openLog } from '../../src/log/index.ts';

for (const mechanism of ['PLAIN', 'SCRAM-SHA-256'] as const) {
  test(`remote client authenticates with SASL ${mechanism}`, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'remote-sasl-'));
    const log = await openLog({ dataDir: dir });
    const broker = await startKafkaBroker({
      log,
      port: 0,
      logger: quietLogger,
      sasl: { mechanisms: ['PLAIN', 'SCRAM-SHA-256'], users: { app: 'app-pw' } },
    });
    const bootstrapBrokers = [`127.0.0.1:${broker.port}`];
    const client = remoteClient({ bootstrapBrokers, sasl: { mechanism, username: 'app', password: 'app-pw' } });
    const intruder = remoteClient({
      bootstrapBrokers,
      sasl: { mechanism, username: 'app', password: 'nope' },
      retries: 0,
    });
    try {
      await client.admin().createTopic('secured', { partitions: 1 });
      const sent = await client.producer().send([{ topic: 'secured', value: 'hello' }]);
      assert.equal(sent[0]?.offset, 0n);
      const consumer = client.consumer({ autoOffsetReset: 'earliest' });
      consumer.assign([{ topic: 'secured', partition: 0 }]);
      let got: string[] = [];
      for (let i = 0; i < 50 && got.length === 0; i++) {
        got = (await consumer.poll(100)).map((r) => r.value?.toString() ?? '');
      }
      assert.deepEqual(got, ['hello']);
      await assert.rejects(intruder.admin().listTopics());
    } finally {
      await intruder.close();
      await client.close();
      await broker.close();
      await log.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}
