import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { loadTable, SqliteCatalog } from '../../src/lake/index.ts';
import { eventsTable, tempDir } from './helpers.ts';

const CHILD = path.join(import.meta.dirname, 'kill-child.ts');

async function runAndKill(dir: string, afterCommits: number, extraDelayMs: number): Promise<number> {
  const child = spawn(process.execPath, [CHILD, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let seen = 0;
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += String(d);
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d) => {
      seen += String(d)
        .split('\n')
        .filter((l) => l.startsWith('committed')).length;
      if (seen >= afterCommits) resolve();
    });
    child.on('exit', (code) => reject(new Error(`child exited early (${code}): ${stderr}`)));
  });
  // land the kill somewhere inside a later commit
  await new Promise((r) => setTimeout(r, extraDelayMs));
  child.kill('SIGKILL');
  await new Promise((r) => child.once('close', r));
  return seen;
}

describe('kill -9 during a commit loop', () => {
  it('leaves the table readable at a consistent snapshot every time', async () => {
    const tmp = tempDir();
    const { catalog } = await eventsTable(tmp.dir, 'user_id');
    await catalog.close();
    let lastCount = 0;
    for (const [commits, delay] of [
      [3, 7],
      [2, 23],
      [2, 41],
    ] as const) {
      const seen = await runAndKill(tmp.dir, commits, delay);
      const cat = new SqliteCatalog({ warehouse: tmp.dir });
      const t = await loadTable(cat, { namespace: ['db'], name: 'events' });
      const rows = await t.rows();
      const appends = t.history().length;
      // each commit is 10 rows: the table is at some snapshot, never in between
      assert.equal(rows.length, appends * 10, `rows ${rows.length} vs ${appends} snapshots`);
      assert.ok(
        rows.length >= lastCount + seen * 10,
        `every acknowledged commit survives: ${rows.length} >= ${lastCount} + ${seen} x 10`,
      );
      assert.equal(new Set(rows.map((r) => r.id)).size, rows.length, 'no duplicates');
      // every snapshot in the log still reads
      for (const h of t.history()) assert.equal((await t.rows({ snapshotId: h.snapshotId })).length % 10, 0);
      lastCount = rows.length;
      await cat.close();
    }
    assert.ok(lastCount >= 70);
    tmp.cleanup();
  });
});
