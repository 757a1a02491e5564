import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig, platformOptions } from '../../src/server/index.ts';

let dir: string;

function write(name: string, text: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}

/** The error message loadConfig throws for these options. */
function failure(options: Parameters<typeof loadConfig>[0]): string {
  try {
    loadConfig(options);
  } catch (err) {
    assert.equal((err as { code?: string }).code, 'INVALID_ARGUMENT');
    return (err as Error).message;
  }
  assert.fail('expected loadConfig to fail');
}

describe('server configuration', () => {
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-config-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('defaults without a file, environment or flags', () => {
    const c = loadConfig({ env: {} });
    assert.equal(c.dataDir, './tributary-data');
    assert.equal(c.host, '127.0.0.1');
    assert.equal(c.kafka.port, 9092);
    assert.equal(c.kafka.autoCreateTopics, true);
    assert.equal(c.http.port, 8888);
    assert.equal(c.http.bodyLimit, 16 * 1024 * 1024);
    assert.deepEqual(c.auth.tokens, []);
    assert.equal(c.kafka.sasl, undefined);
  });

  test('precedence: flags over environment over file; unset layers keep the layer below', () => {
    const file = write(
      'tributary.yaml',
      [
        'dataDir: data',
        'host: 0.0.0.0',
        'kafka:',
        '  port: 19092',
        '  sasl:',
        '    users: { alice: from-file }',
        'http:',
        '  port: 18888',
        '  bodyLimit: 1mb',
        'auth:',
        '  tokens: [file-token-123]',
      ].join('\n'),
    );
    const fileOnly = loadConfig({ file, env: {} });
    // Relative paths in a file resolve against the file's directory.
    assert.equal(fileOnly.dataDir, path.join(dir, 'data'));
    assert.equal(fileOnly.kafka.port, 19092);
    assert.equal(fileOnly.http.port, 18888);
    assert.equal(fileOnly.http.bodyLimit, 1024 * 1024);
    assert.deepEqual(fileOnly.kafka.sasl, { mechanisms: ['PLAIN', 'SCRAM-SHA-256'], users: { alice: 'from-file' } });

    const env = {
      TRIBUTARY_HTTP_PORT: '28888',
      TRIBUTARY_KAFKA_PORT: '29092',
      TRIBUTARY_AUTH_TOKENS: 'env-token-1234,env-token-5678',
      TRIBUTARY_KAFKA_SASL_USERS: 'bob:from-env',
      TRIBUTARY_AUTO_CREATE_TOPICS: 'false',
      TRIBUTARY_UNRELATED_SETTING: 'ignored',
    };
    const withEnv = loadConfig({ file, env });
    assert.equal(withEnv.http.port, 28888);
    assert.equal(withEnv.kafka.port, 29092);
    assert.equal(withEnv.kafka.autoCreateTopics, false);
    assert.deepEqual(withEnv.auth.tokens, ['env-token-1234', 'env-token-5678']);
    // Records merge key by key: the file's user stays, the environment's is added.
    assert.deepEqual(withEnv.kafka.sasl?.users, { alice: 'from-file', bob: 'from-env' });
    assert.equal(withEnv.host, '0.0.0.0');

    const withFlags = loadConfig({
      file,
      env,
      flags: { '--http-port': '0', '--auth-token': ['flag-token-1234'], '--data-dir': 'elsewhere' },
    });
    assert.equal(withFlags.http.port, 0);
    assert.equal(withFlags.kafka.port, 29092, 'the environment still wins over the file');
    assert.deepEqual(withFlags.auth.tokens, ['flag-token-1234']);
    assert.equal(withFlags.dataDir, 'elsewhere', 'flags are relative to the working directory');

    // The file can also come from TRIBUTARY_CONFIG, and JSON files work.
    const json = write('tributary.json', JSON.stringify({ http: { port: 1234 } }));
    assert.equal(loadConfig({ env: { TRIBUTARY_CONFIG: json } }).http.port, 1234);
  });

  test('errors name the field, what was expected, what was given and where it came from', () => {
    assert.equal(
      failure({ env: { TRIBUTARY_HTTP_PORT: 'eighty' } }),
      'http.port: expected a port number 0-65535, got "eighty" (from TRIBUTARY_HTTP_PORT)',
    );
    assert.equal(
      failure({ env: {}, flags: { '--kafka-port': '70000' } }),
      'kafka.port: expected a port number 0-65535, got 70000 (from --kafka-port)',
    );
    const file = write('bad.yaml', 'http:\n  port: 8080\n  bodyLimt: 10\n');
    assert.equal(
      failure({ file, env: {} }),
      `http.bodyLimt: unknown setting; expected one of port, bodyLimit, tls (from ${file})`,
    );
    assert.match(
      failure({ env: { TRIBUTARY_HTTP_BODY_LIMIT: 'lots' } }),
      /^http\.bodyLimit: expected a size in bytes .*, got "lots" \(from TRIBUTARY_HTTP_BODY_LIMIT\)$/,
    );
    assert.equal(
      failure({ env: { TRIBUTARY_AUTH_TOKENS: 'short' } }),
      'auth.tokens.0: expected a token of at least 8 characters, got "short" (from TRIBUTARY_AUTH_TOKENS)',
    );
    assert.match(
      failure({ env: { TRIBUTARY_KAFKA_SASL_USERS: 'alice' } }),
      /^kafka\.sasl\.users\.alice: expected a password \(string\).* \(from TRIBUTARY_KAFKA_SASL_USERS\)$/,
    );
    assert.match(
      failure({ env: { TRIBUTARY_KAFKA_SASL_MECHANISMS: 'GSSAPI' }, flags: { '--sasl-user': ['a:b'] } }),
      /^kafka\.sasl\.mechanisms\.0: expected "PLAIN" or "SCRAM-SHA-256", got "GSSAPI" \(from TRIBUTARY_KAFKA_SASL_MECHANISMS\)$/,
    );
    assert.equal(
      failure({ env: { TRIBUTARY_AUTO_CREATE_TOPICS: 'maybe' } }),
      'kafka.autoCreateTopics: expected true or false, got "maybe" (from TRIBUTARY_AUTO_CREATE_TOPICS)',
    );
    assert.match(failure({ env: {}, flags: { '--htp-port': '1' } }), /^--htp-port: unknown flag; expected one of /);
    assert.match(
      failure({ file: path.join(dir, 'missing.yaml'), env: {} }),
      /^--config: cannot read ".*missing\.yaml"/,
    );
    const broken = write('broken.yaml', 'http: [1, 2\n');
    assert.match(failure({ file: broken, env: {} }), /broken\.yaml: not valid YAML/);
    const list = write('list.yaml', '- 1\n- 2\n');
    assert.match(
      failure({ file: list, env: {} }),
      /expected a mapping of settings at the top level, got an array of 2/,
    );
  });

  test('platform options: TLS files are read, and a missing one is named', () => {
    const cert = write('cert.pem', 'CERT');
    const key = write('key.pem', 'KEY');
    const ok = platformOptions(loadConfig({ env: { TRIBUTARY_HTTP_TLS_CERT: cert, TRIBUTARY_HTTP_TLS_KEY: key } }));
    assert.equal(ok.tls?.cert.toString(), 'CERT');
    assert.equal(ok.tls?.key.toString(), 'KEY');
    assert.throws(
      () =>
        platformOptions(loadConfig({ env: {}, flags: { '--tls-cert': cert, '--tls-key': path.join(dir, 'nokey') } })),
      /^TributaryError: http\.tls\.key: cannot read ".*nokey"/,
    );
    assert.match(
      failure({ env: { TRIBUTARY_HTTP_TLS_CERT: cert } }),
      /^http\.tls\.key: expected the path of a PEM private key file/,
    );
  });
});
