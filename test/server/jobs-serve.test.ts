/**
 * `tributary serve` as a process: configured from the environment, a job submitted over HTTP, then SIGTERM.
 * The shutdown must commit the job's work: its offsets reach the end of the input and its output holds every
 * record, read straight from the data directory afterwards.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { dataLayout } from '../../src/core/index.ts';
import { embeddedClient, openLog } from '../../src/log/index.ts';

const TOKEN = 'serve-test-token-42';

function waitForLine(child: ChildProcess, re: RegExp, out: string[]): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const m = re.exec(out.join(''));
      if (m) {
        child.stdout?.off('data', onData);
        resolve(m);
      }
    };
    const onData = () => check();
    child.stdout?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`serve exited (${code}) before ${re}: ${out.join('')}`)));
    check();
  });
}

test('serve: SIGTERM stops submitted jobs after committing their work', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-serve-'));
  const out: string[] = [];
  const child = spawn(
    process.execPath,
    ['src/cli/main.ts', 'serve', '--data-dir', dir, '--kafka-port', '0', '--http-port', '0'],
    {
      cwd: path.resolve(import.meta.dirname, '../..'),
      env: { ...process.env, TRIBUTARY_AUTH_TOKENS: TOKEN, TRIBUTARY_JOBS_COMMIT_INTERVAL_MS: '60000' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  child.stdout?.on('data', (c: Buffer) => out.push(c.toString()));
  child.stderr?.on('data', (c: Buffer) => out.push(c.toString()));
  try {
    const http = Number((await waitForLine(child, /HTTP: +http:\/\/127\.0\.0\.1:(\d+)/, out))[1]);
    const kafkaPort = Number((await waitForLine(child, /Kafka: +127\.0\.0\.1:(\d+)/, out))[1]);
    const api = async (method: string, route: string, body?: unknown) => {
      const r = await fetch(`http://127.0.0.1:${http}${route}`, {
        method,
        headers: {
          authorization: `Bearer ${TOKEN}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: r.status, json: (await r.json()) as Record<string, unknown> };
    };
    assert.equal(
      (await fetch(`http://127.0.0.1:${http}/api/v1/jobs`)).status,
      401,
      'the token from the environment applies',
    );

    const kafka = new Kafka({
      clientId: 'serve-test',
      brokers: [`127.0.0.1:${kafkaPort}`],
      logLevel: logLevel.NOTHING,
    });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'sig-in', numPartitions: 1 }] });
    await admin.disconnect();
    const submitted = await api('POST', '/api/v1/jobs', {
      name: 'sig',
      source: { topics: ['sig-in'] },
      aggregations: [{ name: 'n', fn: 'count' }],
      output: { topic: 'sig-out' },
    });
    assert.equal(submitted.status, 201, JSON.stringify(submitted.json));
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({
      topic: 'sig-in',
      // Keyed already: no repartition topic, so processed input is output (the count per record key).
      messages: Array.from({ length: 50 }, (_, i) => ({
        key: `u${i % 5}`,
        value: JSON.stringify({ user: `u${i % 5}` }),
      })),
    });
    await producer.disconnect();
    // Processed, but with a one-minute commit interval not committed: only the shutdown commits it.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const m = (await api('GET', '/api/v1/jobs/sig')).json.metrics as { recordsOut?: number } | null;
      if ((m?.recordsOut ?? 0) >= 50) break;
      assert.ok(Date.now() < deadline, 'the job processes the input');
      await new Promise((r) => setTimeout(r, 50));
    }
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    assert.equal(await exited, 0, out.join(''));
    assert.match(out.join(''), /Stopped cleanly/);

    const log = await openLog({ dataDir: dataLayout(dir).log });
    try {
      const client = embeddedClient(log);
      const committed = await client.admin().fetchOffsets('tributary-job-sig');
      assert.deepEqual(
        committed.filter((c) => c.topic === 'sig-in').map((c) => c.offset),
        [50n],
      );
      const consumer = client.consumer({ isolation: 'read_committed' });
      consumer.assign([{ topic: 'sig-out', partition: 0 }]);
      consumer.seek({ topic: 'sig-out', partition: 0 }, 0n);
      const end = log.describeTopic('sig-out')?.partitions[0]?.lastStableOffset ?? 0n;
      let records = 0;
      while ((consumer.position({ topic: 'sig-out', partition: 0 }) ?? 0n) < end)
        records += (await consumer.poll(50)).length;
      await consumer.close();
      assert.equal(records, 50);
    } finally {
      await log.close();
    }
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
