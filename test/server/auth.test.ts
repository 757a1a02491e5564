import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Kafka, logLevel, type SASLOptions } from 'kafkajs';
import { type Platform, startPlatform } from '../../src/server/index.ts';

const TOKEN = 'test-token-0123456789';

let dir: string;

function freshDir(): string {
  return fs.mkdtempSync(path.join(dir, 'platform-'));
}

async function call(
  platform: Platform,
  route: string,
  init: { method?: string; token?: string; header?: string; body?: string } = {},
): Promise<{ status: number; json: Record<string, unknown>; headers: Headers }> {
  const headers: Record<string, string> = {};
  if (init.token !== undefined) headers.authorization = `Bearer ${init.token}`;
  if (init.header !== undefined) headers.authorization = init.header;
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(`http://127.0.0.1:${platform.httpPort}${route}`, {
    method: init.method ?? 'GET',
    headers,
    ...(init.body === undefined ? {} : { body: init.body }),
  });
  const text = await r.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = { text };
  }
  return { status: r.status, json, headers: r.headers };
}

describe('security', () => {
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-auth-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('bearer tokens guard every route but the health checks; errors keep each API shape', async () => {
    const platform = await startPlatform({
      dataDir: freshDir(),
      kafkaPort: 0,
      httpPort: 0,
      auth: { tokens: ['another-token-xyz', TOKEN] },
    });
    try {
      assert.equal((await call(platform, '/health')).status, 200);
      assert.equal((await call(platform, '/status/health')).status, 200);
      assert.equal((await call(platform, '/health?verbose=1')).status, 200);

      const none = await call(platform, '/api/v1/jobs');
      assert.equal(none.status, 401);
      assert.equal(none.headers.get('www-authenticate'), 'Bearer realm="tributary"');
      assert.deepEqual(none.json, {
        error: 'UNAUTHENTICATED',
        message: 'Authorization: expected "Bearer <token>", got no Authorization header',
        field: 'Authorization',
      });
      const wrong = await call(platform, '/api/v1/topics', { token: 'not-the-token' });
      assert.equal(wrong.status, 401);
      assert.equal(wrong.json.message, 'Authorization: the bearer token is not valid');
      assert.equal((await call(platform, '/api/v1/topics', { header: `Basic ${TOKEN}` })).status, 401);
      // A prefix of a valid token is not valid.
      assert.equal((await call(platform, '/api/v1/topics', { token: TOKEN.slice(0, -1) })).status, 401);

      const druid = await call(platform, '/druid/v2/datasources');
      assert.equal(druid.status, 401);
      assert.equal(druid.json.error, 'druidException');
      assert.equal(druid.json.category, 'UNAUTHORIZED');
      const iceberg = await call(platform, '/iceberg/v1/namespaces');
      assert.equal(iceberg.status, 401);
      assert.deepEqual((iceberg.json.error as Record<string, unknown>).type, 'NotAuthorizedException');
      for (const route of ['/metrics', '/api/v1/pipelines', '/api/v1/topics', '/status'])
        assert.equal((await call(platform, route)).status, 401, route);
      // The console's page and scripts are public (they hold no data; the browser then asks for a token).
      for (const route of ['/', '/console/app.js']) assert.equal((await call(platform, route)).status, 200, route);
      assert.equal((await call(platform, '/api/v1/jobs', { method: 'POST', body: '{}' })).status, 401);

      for (const route of ['/api/v1/jobs', '/druid/v2/datasources', '/iceberg/v1/namespaces', '/metrics', '/'])
        assert.equal((await call(platform, route, { token: TOKEN })).status, 200, route);
      assert.equal((await call(platform, '/api/v1/jobs', { token: 'another-token-xyz' })).status, 200);
    } finally {
      await platform.close();
    }
  });

  test('request bodies over the limit get 413; names in URLs are validated', async () => {
    const platform = await startPlatform({ dataDir: freshDir(), kafkaPort: 0, httpPort: 0, bodyLimit: 1024 });
    try {
      const big = JSON.stringify({ name: 'x', padding: 'p'.repeat(2048) });
      const r = await call(platform, '/api/v1/jobs', { method: 'POST', body: big });
      assert.equal(r.status, 413);
      const small = await call(platform, '/api/v1/jobs', { method: 'POST', body: JSON.stringify({ name: 'x' }) });
      assert.equal(small.status, 400, 'a small body reaches validation');
      const badId = await call(platform, '/api/v1/jobs/x%20y', { method: 'DELETE' });
      assert.equal(badId.status, 400);
      assert.match(String(badId.json.message), /^id: expected only ASCII letters, digits/);
    } finally {
      await platform.close();
    }
  });

  test('Kafka SASL users pass through to the broker', async () => {
    const platform = await startPlatform({
      dataDir: freshDir(),
      kafkaPort: 0,
      httpPort: 0,
      sasl: { mechanisms: ['PLAIN', 'SCRAM-SHA-256'], users: { alice: 'alice-secret' } },
    });
    const admin = (sasl: SASLOptions) =>
      new Kafka({
        clientId: 'auth-test',
        brokers: [`127.0.0.1:${platform.kafkaPort}`],
        sasl,
        logLevel: logLevel.NOTHING,
        retry: { retries: 0 },
      }).admin();
    try {
      const good = admin({ mechanism: 'scram-sha-256', username: 'alice', password: 'alice-secret' });
      await good.connect();
      await good.createTopics({ topics: [{ topic: 'sasl-topic', numPartitions: 1 }] });
      assert.ok((await good.listTopics()).includes('sasl-topic'));
      await good.disconnect();
      const bad = admin({ mechanism: 'plain', username: 'alice', password: 'wrong' });
      await assert.rejects(bad.connect(), /SASL|auth/i);
      await bad.disconnect().catch(() => {});
    } finally {
      await platform.close();
    }
  });

  test('HTTPS with a certificate and key (self-signed, made by openssl)', async (t) => {
    const which = spawnSync('openssl', ['version']);
    if (which.error !== undefined || which.status !== 0) {
      t.skip('openssl is not installed: cannot make a self-signed certificate');
      return;
    }
    const key = path.join(dir, 'key.pem');
    const cert = path.join(dir, 'cert.pem');
    const made = spawnSync('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ]);
    assert.equal(made.status, 0, made.stderr.toString());
    const platform = await startPlatform({
      dataDir: freshDir(),
      kafkaPort: 0,
      httpPort: 0,
      tls: { cert: fs.readFileSync(cert), key: fs.readFileSync(key) },
      auth: { tokens: [TOKEN] },
    });
    const get = (route: string, token?: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = https.get(
          {
            host: '127.0.0.1',
            port: platform.httpPort,
            path: route,
            ca: fs.readFileSync(cert),
            headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
          },
          (res) => {
            let body = '';
            res.on('data', (c: Buffer) => {
              body += c.toString();
            });
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          },
        );
        req.on('error', reject);
      });
    try {
      assert.equal(platform.protocol, 'https');
      assert.deepEqual(await get('/health'), { status: 200, body: '{"status":"ok"}' });
      assert.equal((await get('/api/v1/jobs')).status, 401);
      assert.deepEqual(await get('/api/v1/jobs', TOKEN), { status: 200, body: '{"jobs":[]}' });
      // Plain HTTP on the TLS port is not answered as HTTP.
      await assert.rejects(fetch(`http://127.0.0.1:${platform.httpPort}/health`));
    } finally {
      await platform.close();
    }
  });
});
