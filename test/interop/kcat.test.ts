import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import { after, before, test } from 'node:test';
import {
  BATCH_HEADER_BYTES,
  batchSizeAt,
  type CompressionType,
  compress,
  readBatchHeader,
} from '../../src/log/index.ts';
import { KCAT, kcatSkip, runKcat, startTestBroker, type TestBroker, waitFor } from './helpers.ts';

let t: TestBroker;

before(async () => {
  if (kcatSkip === false) t = await startTestBroker();
});

after(async () => {
  await t?.close();
});

const COUNT = 100_000;

function messages(seed: string): Buffer {
  const lines: string[] = [];
  for (let i = 0; i < COUNT; i++) {
    lines.push(`${seed}-${i}-${crypto.createHash('md5').update(`${seed}${i}`).digest('hex')}`);
  }
  return Buffer.from(`${lines.join('\n')}\n`);
}

for (const codec of ['none', 'gzip', 'snappy', 'lz4', 'zstd']) {
  test(`kcat: ${COUNT} messages produced with ${codec} come back byte-identical`, { skip: kcatSkip }, async () => {
    const topic = `kcat-${codec}`;
    const input = messages(codec);
    await runKcat(['-P', '-b', t.bootstrap, '-t', topic, '-z', codec, '-X', 'linger.ms=20']);
    await runKcat(['-P', '-b', t.bootstrap, '-t', topic, '-z', codec, '-X', 'linger.ms=20'], input);
    const out = await runKcat(['-C', '-b', t.bootstrap, '-t', topic, '-o', 'beginning', '-e', '-q', '-f', '%s\n']);
    assert.equal(out.length, input.length);
    assert.ok(out.equals(input), 'consumed bytes equal produced bytes');
    // librdkafka silently stops compressing when the advertised versions are wrong: check what was stored.
    // It also sends a batch uncompressed, by design, when compressing it would not make it smaller
    // (typically a last batch of one record), so a plain batch must be one where compression did not pay.
    const stored = await t.log.read(topic, 0, 0n, { maxBytes: 64 * 1024 * 1024, isolation: 'read_uncommitted' });
    let compressed = 0;
    for (let pos = 0; pos < stored.records.length; pos += batchSizeAt(stored.records, pos)) {
      const header = readBatchHeader(stored.records, pos);
      if (header.compression === codec) {
        compressed += header.recordCount;
        continue;
      }
      assert.equal(header.compression, 'none', `batch at offset ${header.baseOffset} has an unexpected codec`);
      const recordsSection = stored.records.subarray(pos + BATCH_HEADER_BYTES, pos + batchSizeAt(stored.records, pos));
      assert.ok(
        compress(codec as CompressionType, recordsSection).length >= recordsSection.length,
        `batch at offset ${header.baseOffset} (${header.recordCount} records) is plain though ${codec} would shrink it`,
      );
    }
    assert.ok(compressed >= COUNT * 0.99, `${compressed} of ${COUNT} records were stored with ${codec}`);
  });
}

interface Member {
  child: ChildProcess;
  lines: string[];
  exited: Promise<number | null>;
}

function startMember(bootstrap: string, group: string, topic: string): Member {
  const child = spawn(
    KCAT,
    [
      '-b',
      bootstrap,
      '-G',
      group,
      '-u',
      '-q',
      '-f',
      '%p %o %s\n',
      '-X',
      'auto.offset.reset=earliest',
      '-X',
      'heartbeat.interval.ms=200',
      '-X',
      'session.timeout.ms=6000',
      '-X',
      'auto.commit.interval.ms=100',
      topic,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const m: Member = {
    child,
    lines: [],
    exited: new Promise((resolve) => child.on('close', (code) => resolve(code))),
  };
  let partial = '';
  child.stdout!.on('data', (d: Buffer) => {
    const text = partial + d.toString();
    const parts = text.split('\n');
    partial = parts.pop()!;
    m.lines.push(...parts);
  });
  child.stderr!.on('data', () => {});
  return m;
}

function values(m: Member): string[] {
  return m.lines.map((l) => l.split(' ')[2]!);
}

test('kcat -G: two members over four partitions consume each message once and rebalance when one leaves', {
  skip: kcatSkip,
}, async () => {
  const topic = 'kcat-group';
  const group = 'kcat-g';
  await t.log.createTopic(topic, { partitions: 4 });
  const a = startMember(t.bootstrap, group, topic);
  const b = startMember(t.bootstrap, group, topic);
  try {
    const stableWith = (n: number) => () => {
      try {
        const d = t.log.describeGroup(group);
        return d.state === 'Stable' && d.members.length === n && d.members.every((m) => m.assignment.length > 0);
      } catch {
        return false;
      }
    };
    await waitFor('a stable group of two', stableWith(2), 40_000);
    const first = Array.from({ length: 2000 }, (_, i) => `k${i}:first-${i}`).join('\n');
    await runKcat(['-P', '-b', t.bootstrap, '-t', topic, '-K', ':'], Buffer.from(`${first}\n`));
    await waitFor('2000 messages consumed', () => a.lines.length + b.lines.length >= 2000);
    const all = [...values(a), ...values(b)];
    assert.equal(new Set(all).size, 2000, 'every message consumed');
    assert.equal(all.length, 2000, 'no message consumed twice');
    assert.ok(a.lines.length > 0 && b.lines.length > 0, 'both members consumed');
    const partitionsOf = (m: Member) => new Set(m.lines.map((l) => l.split(' ')[0]));
    for (const p of partitionsOf(a)) assert.ok(!partitionsOf(b).has(p), `partition ${p} owned by one member`);

    // member a leaves (SIGTERM: kcat commits and leaves the group); b takes over all four partitions
    a.child.kill('SIGTERM');
    await a.exited;
    await waitFor('a stable group of one', stableWith(1), 40_000);
    const before = b.lines.length;
    const second = Array.from({ length: 2000 }, (_, i) => `k${i}:second-${i}`).join('\n');
    await runKcat(['-P', '-b', t.bootstrap, '-t', topic, '-K', ':'], Buffer.from(`${second}\n`));
    await waitFor(
      'the second 2000 consumed by b',
      () => values(b).filter((v) => v.startsWith('second')).length >= 2000,
    );
    await new Promise((r) => setTimeout(r, 300));
    const after = values(b).slice(before);
    assert.equal(after.filter((v) => v.startsWith('second')).length, 2000);
    assert.equal(new Set(after).size, after.length, 'no duplicates after the rebalance');
    assert.equal(after.filter((v) => v.startsWith('first')).length, 0, 'committed messages are not consumed again');
    assert.equal(new Set(b.lines.slice(before).map((l) => l.split(' ')[0])).size, 4, 'b consumes all four partitions');
  } finally {
    a.child.kill('SIGKILL');
    b.child.kill('SIGTERM');
    await b.exited;
  }
});

test('kcat: SASL SCRAM-SHA-256 and PLAIN with configured users; a wrong password is refused', {
  skip: kcatSkip,
}, async () => {
  const secured = await startTestBroker({
    sasl: { mechanisms: ['PLAIN', 'SCRAM-SHA-256'], users: { alice: 'alice-pw' } },
  });
  const auth = (mechanism: string, password: string) => [
    '-X',
    'security.protocol=SASL_PLAINTEXT',
    '-X',
    `sasl.mechanisms=${mechanism}`,
    '-X',
    'sasl.username=alice',
    '-X',
    `sasl.password=${password}`,
  ];
  try {
    await runKcat(
      ['-P', '-b', secured.bootstrap, '-t', 'sasl', ...auth('SCRAM-SHA-256', 'alice-pw')],
      Buffer.from('a\nb\n'),
    );
    const out = await runKcat([
      '-C',
      '-b',
      secured.bootstrap,
      '-t',
      'sasl',
      '-o',
      'beginning',
      '-e',
      '-q',
      ...auth('PLAIN', 'alice-pw'),
    ]);
    assert.equal(out.toString(), 'a\nb\n');
    await assert.rejects(
      runKcat(['-L', '-b', secured.bootstrap, '-m', '2', ...auth('SCRAM-SHA-256', 'wrong')], undefined, 20_000),
      /Authentication|exited/,
    );
  } finally {
    await secured.close();
  }
});
