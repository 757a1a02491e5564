import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { startPlatform } from '../../src/server/index.ts';

test('one HTTP server mounts every part, and close releases the data directory', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-platform-'));
  try {
    const platform = await startPlatform({ dataDir: dir, kafkaPort: 0, httpPort: 0 });
    const get = async (route: string) => {
      const response = await fetch(`http://127.0.0.1:${platform.httpPort}${route}`);
      return { status: response.status, body: await response.text() };
    };
    assert.deepEqual(await get('/health'), { status: 200, body: '{"status":"ok"}' });
    assert.deepEqual(await get('/status/health'), { status: 200, body: 'true' });
    assert.deepEqual(await get('/druid/v2/datasources'), { status: 200, body: '[]' });
    assert.deepEqual(await get('/api/v1/pipelines'), { status: 200, body: '[]' });
    assert.equal((await get('/iceberg/v1/namespaces')).status, 200);
    assert.equal((await get('/api/v1/topics')).status, 200);
    assert.equal((await get('/no/such/route')).status, 404);
    await platform.close();
    // A second platform can open the same data directory once the first has closed.
    const again = await startPlatform({ dataDir: dir, kafkaPort: 0, httpPort: 0 });
    await again.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
