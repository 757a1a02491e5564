import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { kcatSkip, runKcat, startTestBroker } from './helpers.ts';

const haveOpenssl = spawnSync('openssl', ['version']).status === 0;

/** A self-signed certificate for 127.0.0.1, made by openssl in a temp dir. */
function selfSigned(): { dir: string; cert: string; key: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-tls-'));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  const made = spawnSync('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=127.0.0.1',
    '-addext',
    'subjectAltName=IP:127.0.0.1',
    '-keyout',
    key,
    '-out',
    cert,
  ]);
  assert.equal(made.status, 0, made.stderr.toString());
  return { dir, cert, key };
}

test('Kafka over TLS with SASL (SASL_SSL): kcat and kafkajs verify the certificate; plaintext clients are refused', {
  skip: kcatSkip || (haveOpenssl ? false : 'openssl is not installed: cannot make a self-signed certificate'),
}, async () => {
  const pem = selfSigned();
  const broker = await startTestBroker({
    tls: { cert: fs.readFileSync(pem.cert), key: fs.readFileSync(pem.key) },
    sasl: { mechanisms: ['SCRAM-SHA-256'], users: { alice: 'alice-pw' } },
  });
  try {
    const secure = [
      '-X',
      'security.protocol=SASL_SSL',
      '-X',
      `ssl.ca.location=${pem.cert}`,
      '-X',
      'sasl.mechanisms=SCRAM-SHA-256',
      '-X',
      'sasl.username=alice',
      '-X',
      'sasl.password=alice-pw',
    ];
    await runKcat(['-P', '-b', broker.bootstrap, '-t', 'secure', '-z', 'zstd', ...secure], Buffer.from('one\ntwo\n'));

    const kafka = new Kafka({
      brokers: [broker.bootstrap],
      ssl: { ca: [fs.readFileSync(pem.cert, 'utf8')] },
      sasl: { mechanism: 'scram-sha-256', username: 'alice', password: 'alice-pw' },
      logLevel: logLevel.NOTHING,
    });
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: 'secure', messages: [{ value: 'three' }] });
    await producer.disconnect();

    const out = await runKcat(['-C', '-b', broker.bootstrap, '-t', 'secure', '-o', 'beginning', '-e', '-q', ...secure]);
    assert.equal(out.toString(), 'one\ntwo\nthree\n');

    // A client that does not speak TLS gets no service, and the listener keeps serving others.
    await assert.rejects(runKcat(['-L', '-b', broker.bootstrap, '-m', '2'], undefined, 20_000));
    const again = await runKcat([
      '-C',
      '-b',
      broker.bootstrap,
      '-t',
      'secure',
      '-o',
      'beginning',
      '-e',
      '-q',
      ...secure,
    ]);
    assert.equal(again.toString().split('\n').filter(Boolean).length, 3);
  } finally {
    await broker.close();
    fs.rmSync(pem.dir, { recursive: true, force: true });
  }
});
