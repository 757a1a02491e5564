import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const NODE = process.execPath;
const CLI = path.resolve('src/cli/main.ts');

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-cli-'));
}

async function cli(args: string[], input?: string): Promise<{ stdout: string; stderr: string; code: number }> {
  return new Promise((resolve) => {
    const child = spawn(NODE, [CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('close', (code) => resolve({ stdout, stderr, code: code ?? -1 }));
    child.stdin.end(input ?? '');
  });
}

test('topics, produce and consume work on a data directory without a server', async () => {
  const dir = tempDir();
  try {
    const created = await cli(['topics', 'create', 'orders', '--partitions', '3', '--data-dir', dir]);
    assert.equal(created.code, 0, created.stderr);
    assert.deepEqual((await cli(['topics', 'list', '--data-dir', dir])).stdout.trim().split('\n'), ['orders']);

    const lines = Array.from({ length: 50 }, (_, i) => `user-${i % 7}|value ${i}`);
    const produced = await cli(
      ['produce', 'orders', '--key-separator', '|', '--data-dir', dir],
      `${lines.join('\n')}\n`,
    );
    assert.equal(produced.code, 0, produced.stderr);
    assert.match(produced.stderr, /Produced 50 records/);

    const consumed = await cli([
      'consume',
      'orders',
      '--from-beginning',
      '--max',
      '50',
      '--print-key',
      '--data-dir',
      dir,
    ]);
    assert.equal(consumed.code, 0, consumed.stderr);
    const got = consumed.stdout.trim().split('\n');
    assert.deepEqual([...got].sort(), lines.map((l) => l.replace('|', '\t')).sort());
    // Records with the same key share a partition, so each key's values keep their order.
    for (let k = 0; k < 7; k++) {
      const values = got.filter((l) => l.startsWith(`user-${k}\t`)).map((l) => Number(l.split(' ')[1]));
      assert.deepEqual(
        values,
        [...values].sort((a, b) => a - b),
      );
    }

    const described = await cli(['topics', 'describe', 'orders', '--data-dir', dir]);
    const total = [...described.stdout.matchAll(/HighWatermark: (\d+)/g)].reduce((s, m) => s + Number(m[1]), 0);
    assert.equal(total, 50);

    const deleted = await cli(['topics', 'delete', 'orders', '--data-dir', dir]);
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.equal((await cli(['topics', 'list', '--data-dir', dir])).stdout.trim(), '');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a consumer group commits what it printed and the next run continues from there', async () => {
  const dir = tempDir();
  try {
    const lines = Array.from({ length: 20 }, (_, i) => `m${i}`);
    await cli(['produce', 'events', '--data-dir', dir], `${lines.join('\n')}\n`);
    const first = await cli(['consume', 'events', '--group', 'g', '--from-beginning', '--max', '8', '--data-dir', dir]);
    const second = await cli([
      'consume',
      'events',
      '--group',
      'g',
      '--from-beginning',
      '--max',
      '12',
      '--data-dir',
      dir,
    ]);
    assert.deepEqual([...first.stdout.trim().split('\n'), ...second.stdout.trim().split('\n')], lines);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('bad input gets a precise error and exit code 2', async () => {
  const dir = tempDir();
  try {
    const badName = await cli(['topics', 'create', 'no spaces', '--data-dir', dir]);
    assert.equal(badName.code, 2);
    assert.match(badName.stderr, /topic name "no spaces"/);
    const badPartitions = await cli(['topics', 'create', 't', '--partitions', 'zero', '--data-dir', dir]);
    assert.equal(badPartitions.code, 2);
    assert.match(badPartitions.stderr, /--partitions: expected a positive integer/);
    const badConfig = await cli(['topics', 'create', 't', '--config', 'retention.ms', '--data-dir', dir]);
    assert.match(badConfig.stderr, /--config: expected KEY=VALUE/);
    const badLine = await cli(['produce', 't', '--key-separator', '|', '--data-dir', dir], 'no separator here\n');
    assert.match(badLine.stderr, /line 1: expected KEY"\|"VALUE/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('serve runs the Kafka listener and the HTTP API, and stops cleanly on SIGTERM', async (t) => {
  const dir = tempDir();
  const server = spawn(NODE, [CLI, 'serve', '--data-dir', dir, '--kafka-port', '0', '--http-port', '0']);
  let out = '';
  server.stdout.on('data', (d) => {
    out += d;
  });
  server.stderr.on('data', (d) => {
    out += d;
  });
  try {
    const ports = await new Promise<{ kafka: number; http: number }>((resolve, reject) => {
      const timer = setInterval(() => {
        const kafka = /Kafka:\s+[\d.]+:(\d+)/.exec(out);
        const http = /HTTP:\s+http:\/\/[\d.]+:(\d+)/.exec(out);
        if (kafka && http) {
          clearInterval(timer);
          resolve({ kafka: Number(kafka[1]), http: Number(http[1]) });
        }
      }, 50);
      server.once('exit', () => reject(new Error(`serve exited early:\n${out}`)));
    });
    assert.equal(await (await fetch(`http://127.0.0.1:${ports.http}/health`)).text(), '{"status":"ok"}');
    assert.equal(await (await fetch(`http://127.0.0.1:${ports.http}/status/health`)).text(), 'true');
    assert.match(await (await fetch(`http://127.0.0.1:${ports.http}/metrics`)).text(), /tributary_process_cpu/);
    const config = await (await fetch(`http://127.0.0.1:${ports.http}/iceberg/v1/config`)).json();
    assert.ok(Array.isArray((config as { endpoints: unknown[] }).endpoints));

    if (!fs.existsSync('/usr/bin/kcat')) {
      t.diagnostic('kcat is not installed (apt-get install kcat): skipped the Kafka client part');
    } else {
      const broker = `127.0.0.1:${ports.kafka}`;
      const producer = spawn('kcat', ['-P', '-b', broker, '-t', 'served', '-z', 'gzip']);
      producer.stdin.end(`${Array.from({ length: 500 }, (_, i) => `line ${i}`).join('\n')}\n`);
      await new Promise((resolve) => producer.on('close', resolve));
      const { stdout } = await run('kcat', ['-C', '-b', broker, '-t', 'served', '-e', '-q']);
      assert.equal(stdout.trim().split('\n').length, 500);
    }
    // The same commands talk to the running broker with --bootstrap-server (the data dir is locked by serve).
    const bootstrap = ['--bootstrap-server', `127.0.0.1:${ports.kafka}`];
    const made = await cli(['topics', 'create', 'remote', '--partitions', '2', ...bootstrap]);
    assert.equal(made.code, 0, made.stderr);
    const sent = Array.from({ length: 40 }, (_, i) => `r${i}`);
    assert.equal((await cli(['produce', 'remote', ...bootstrap], `${sent.join('\n')}\n`)).code, 0);
    const back = await cli(['consume', 'remote', '--from-beginning', '--max', '40', ...bootstrap]);
    assert.deepEqual(back.stdout.trim().split('\n').sort(), [...sent].sort());
    assert.match((await cli(['topics', 'list', ...bootstrap])).stdout, /^remote$/m);

    server.kill('SIGTERM');
    const code = await new Promise((resolve) => server.once('exit', resolve));
    assert.equal(code, 0);
    assert.match(out, /Stopped cleanly/);
  } finally {
    server.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
