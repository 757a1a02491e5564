import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { tempDir } from './helpers.ts';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'stream-child.ts');

test('kill -9 during streaming ingestion, restart: totals equal the events produced, exactly once', async () => {
  const dir = tempDir();
  try {
    const run = spawn(process.execPath, [CHILD, 'run', dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    await new Promise<void>((resolve, reject) => {
      run.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        // Kill after at least one persist and a few hundred events, so both persisted and pending rows exist.
        const m = [...out.matchAll(/produced (\d+) persisted (\d+)/g)].pop();
        if (m && Number(m[1]) >= 400 && Number(m[2]) > 0) {
          run.kill('SIGKILL');
          resolve();
        }
      });
      run.on('exit', (code, sig) => (sig === 'SIGKILL' ? resolve() : reject(new Error(`child exited ${code}`))));
    });
    await new Promise((r) => run.on('close', r));
    const verify = spawn(process.execPath, [CHILD, 'verify', dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    let vout = '';
    verify.stdout.on('data', (d: Buffer) => {
      vout += d.toString();
    });
    const code = await new Promise((r) => verify.on('close', r));
    assert.equal(code, 0);
    const r = JSON.parse(vout.trim().split('\n').pop()!) as {
      records: number;
      rows: number;
      v: number;
      expectedV: number;
    };
    assert.ok(r.records >= 400);
    assert.equal(r.rows, r.records);
    assert.equal(r.v, r.expectedV);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
