/** A broker over a log in a temp data dir on port 0, for tests with real Kafka clients. */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BrokerLogger, KafkaBroker, KafkaBrokerOptions } from '../../src/kafka/index.ts';
import { startKafkaBroker } from '../../src/kafka/index.ts';
import type { LogService } from '../../src/log/index.ts';
import { openLog } from '../../src/log/index.ts';

export interface TestBroker {
  broker: KafkaBroker;
  log: LogService;
  dataDir: string;
  bootstrap: string;
  close(): Promise<void>;
}

export const quietLogger: BrokerLogger = { info() {}, warn() {}, error() {} };

export function openTestLog(dataDir: string): Promise<LogService> {
  return openLog({ dataDir });
}

export async function startTestBroker(options: Partial<KafkaBrokerOptions> = {}): Promise<TestBroker> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-interop-'));
  const log = await openTestLog(dataDir);
  const broker = await startKafkaBroker({ log, port: 0, logger: quietLogger, ...options });
  return {
    broker,
    log,
    dataDir,
    bootstrap: `127.0.0.1:${broker.port}`,
    async close() {
      await broker.close();
      await log.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export const KCAT = '/usr/bin/kcat';
export const haveKcat = ((): boolean => {
  try {
    return spawnSync(KCAT, ['-V']).status === 0;
  } catch {
    return false;
  }
})();
export const kcatSkip = haveKcat ? false : 'kcat is not installed (/usr/bin/kcat); apt-get install -y kcat';

/** Runs kcat with stdin from a file or buffer; resolves with stdout. */
export function runKcat(args: string[], input?: Buffer, timeoutMs = 60_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(KCAT, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(Buffer.concat(out));
      else reject(new Error(`kcat ${args.join(' ')} exited ${code}: ${Buffer.concat(err).toString().slice(-2000)}`));
    });
    child.stdin.on('error', () => {});
    child.stdin.end(input ?? Buffer.alloc(0));
  });
}

export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
