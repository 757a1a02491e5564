/**
 * Broker throughput with kcat (librdkafka): produce and consume 100-byte messages through the broker
 * over the embedded log, printed beside raw loopback TCP throughput (a node:net sink receiving the same
 * number of bytes) measured in the same run.
 *
 *   node bench/kafka-broker.ts [messages=1000000]
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startKafkaBroker } from '../src/kafka/index.ts';
import { openLog } from '../src/log/index.ts';

const COUNT = Number(process.argv[2] ?? 1_000_000);
const SIZE = 100;
const KCAT = '/usr/bin/kcat';

function run(cmd: string, args: string[], stdout: 'ignore' | 'pipe' = 'ignore'): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn(cmd, args, { stdio: ['ignore', stdout, 'inherit'] });
    let lines = 0;
    child.stdout?.on('data', (d: Buffer) => {
      for (let i = 0; i < d.length; i++) if (d[i] === 10) lines++;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      if (code !== 0) reject(new Error(`${cmd} exited ${code}`));
      else if (stdout === 'pipe' && lines !== COUNT) reject(new Error(`consumed ${lines} of ${COUNT} messages`));
      else resolve(seconds);
    });
  });
}

/** Sends `bytes` over loopback TCP from a child process to a node:net sink here; returns seconds. */
async function loopback(file: string, bytes: number): Promise<number> {
  let received = 0;
  let start = 0n;
  let done: (s: number) => void = () => {};
  const finished = new Promise<number>((resolve) => {
    done = resolve;
  });
  const server = net.createServer((socket) => {
    start = process.hrtime.bigint();
    socket.on('data', (d: Buffer) => {
      received += d.length;
      if (received >= bytes) done(Number(process.hrtime.bigint() - start) / 1e9);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const sender = `const s=require('net').connect(${port},'127.0.0.1',()=>require('fs').createReadStream(${JSON.stringify(file)},{highWaterMark:1<<20}).pipe(s));`;
  const child = spawn(process.execPath, ['-e', sender], { stdio: 'ignore' });
  const seconds = await finished;
  child.kill();
  server.close();
  return seconds;
}

if (!fs.existsSync(KCAT)) {
  console.error(`kcat not found at ${KCAT} (apt-get install -y kcat)`);
  process.exit(1);
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-kafka-'));
const input = path.join(dir, 'messages.txt');
{
  // 100 printable bytes + newline per message: kcat -l sends each line (without newline) as one message
  const line = Buffer.alloc(SIZE + 1, 'x');
  line[SIZE] = 10;
  const out = fs.openSync(input, 'w');
  const chunk = Buffer.concat(Array.from({ length: 10_000 }, () => line));
  for (let i = 0; i < COUNT; i += 10_000) fs.writeSync(out, chunk, 0, Math.min(10_000, COUNT - i) * (SIZE + 1));
  fs.closeSync(out);
}
const bytes = COUNT * SIZE;
const log = await openLog({ dataDir: path.join(dir, 'data'), cleanerIntervalMs: 0 });
const broker = await startKafkaBroker({ log, port: 0, logger: { info() {}, warn() {}, error() {} } });
const bootstrap = `127.0.0.1:${broker.port}`;
await log.createTopic('bench', { partitions: 1 });
try {
  const produce = await run(KCAT, [
    '-P',
    '-b',
    bootstrap,
    '-t',
    'bench',
    '-l',
    input,
    '-X',
    'linger.ms=5',
    '-X',
    'batch.num.messages=10000',
    '-X',
    'queue.buffering.max.messages=1000000',
  ]);
  // librdkafka 2.0.2 stops fetching while its local queue holds more than queued.max.messages.kbytes and
  // only resumes on a timer, so the defaults measure that timer rather than the broker
  const consume = await run(
    KCAT,
    [
      '-C',
      '-b',
      bootstrap,
      '-t',
      'bench',
      '-o',
      'beginning',
      '-c',
      String(COUNT),
      '-q',
      '-f',
      '\n',
      '-X',
      'max.partition.fetch.bytes=8388608',
      '-X',
      'queued.max.messages.kbytes=1048576',
      '-X',
      'queued.min.messages=1000000',
    ],
    'pipe',
  );
  const tcp = await loopback(input, bytes);
  const rate = (s: number) => Math.round(COUNT / s).toLocaleString('en-US');
  const mb = (s: number) => (bytes / s / 1e6).toFixed(0);
  console.log(`messages: ${COUNT.toLocaleString('en-US')} x ${SIZE} bytes, one partition, kcat (librdkafka 2.0.2)`);
  console.log(`kcat produce via broker : ${rate(produce)} msgs/s (${mb(produce)} MB/s)  target >= 500,000`);
  console.log(`kcat consume via broker : ${rate(consume)} msgs/s (${mb(consume)} MB/s)  target >= 1,000,000`);
  console.log(`loopback TCP (node:net) : ${rate(tcp)} msgs/s-equivalent (${mb(tcp)} MB/s), the same bytes`);
  console.log(`produce / loopback: ${(tcp / produce).toFixed(3)}, consume / loopback: ${(tcp / consume).toFixed(3)}`);
} finally {
  await broker.close();
  await log.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
