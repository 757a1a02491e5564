import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Command } from 'commander';
import { registerLakeCommands } from '../../src/cli/lake.ts';
import { tempDir } from './helpers.ts';

const FIX = path.resolve(import.meta.dirname, '../../../shared/fixtures/iceberg');

async function run(...args: string[]): Promise<string> {
  let captured = '';
  const program = new Command().exitOverride().configureOutput({
    writeOut: (s) => {
      captured += s;
    },
    writeErr: () => {},
  });
  registerLakeCommands(program);
  await program.parseAsync(['node', 'tributary', ...args]);
  return captured;
}

describe('tributary lake CLI', () => {
  let tmp: ReturnType<typeof tempDir>;
  let dd: string[];
  before(() => {
    tmp = tempDir();
    dd = ['--data-dir', tmp.dir];
    fs.writeFileSync(
      path.join(tmp.dir, 'schema.json'),
      JSON.stringify({
        type: 'struct',
        fields: [
          { id: 1, name: 'id', required: true, type: 'long' },
          { id: 2, name: 'ts', required: false, type: 'timestamptz' },
          { id: 3, name: 'user_id', required: false, type: 'long' },
          { id: 4, name: 'name', required: false, type: 'string' },
        ],
      }),
    );
    fs.writeFileSync(
      path.join(tmp.dir, 'rows.ndjson'),
      `${Array.from({ length: 20 }, (_, i) => JSON.stringify({ id: i, ts: `2024-01-0${1 + (i % 3)}T10:00:00Z`, user_id: i % 4, name: `n${i}` })).join('\n')}\n`,
    );
    fs.writeFileSync(path.join(tmp.dir, 'rows.csv'), 'id,user_id,name\n100,1,"a, b"\n101,2,c\n');
  });
  after(() => tmp.cleanup());

  it('create, append (NDJSON and CSV), scan with --where/--limit/--format', async () => {
    assert.match(
      await run(
        'lake',
        'create',
        'db.events',
        '--schema',
        path.join(tmp.dir, 'schema.json'),
        '--partition',
        'day(ts), bucket(16, user_id)',
        ...dd,
      ),
      /Created table db\.events/,
    );
    assert.match(
      await run('lake', 'append', 'db.events', path.join(tmp.dir, 'rows.ndjson'), ...dd),
      /Appended 20 rows/,
    );
    assert.match(await run('lake', 'append', 'db.events', path.join(tmp.dir, 'rows.csv'), ...dd), /Appended 2 rows/);
    const nd = await run(
      'lake',
      'scan',
      'db.events',
      '--where',
      'user_id = 1 AND id < 100',
      '--format',
      'ndjson',
      ...dd,
    );
    const rows = nd
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      rows.map((r) => r.id).sort((a: number, b: number) => a - b),
      [1, 5, 9, 13, 17],
    );
    const csv = await run(
      'lake',
      'scan',
      'db.events',
      '--where',
      'id >= 100',
      '--columns',
      'id,name',
      '--format',
      'csv',
      ...dd,
    );
    assert.equal(csv, 'id,name\n100,"a, b"\n101,c\n');
    const table = await run('lake', 'scan', 'db.events', '--limit', '3', ...dd);
    assert.match(table, /\(3 rows\)/);
    assert.match(await run('lake', 'list', ...dd), /^db$/m);
    assert.match(await run('lake', 'list', 'db', ...dd), /db\.events/);
  });

  it('history, --as-of, delete, rollback, compact, expire, stats', async () => {
    const hist = await run('lake', 'history', 'db.events', ...dd);
    const ids = [...hist.matchAll(/^(\d{5,})/gm)].map((m) => m[1] as string);
    assert.equal(ids.length, 2);
    const first = await run('lake', 'scan', 'db.events', '--as-of', ids[0] as string, '--format', 'ndjson', ...dd);
    assert.equal(first.trim().split('\n').length, 20);
    assert.match(await run('lake', 'delete', 'db.events', '--where', 'id < 10', ...dd), /Deleted/);
    assert.equal((await run('lake', 'scan', 'db.events', '--format', 'ndjson', ...dd)).trim().split('\n').length, 12);
    await run('lake', 'rollback', 'db.events', ids[1] as string, ...dd);
    assert.equal((await run('lake', 'scan', 'db.events', '--format', 'ndjson', ...dd)).trim().split('\n').length, 22);
    assert.match(
      await run('lake', 'compact', 'db.events', ...dd),
      /Compacted db\.events: removed \d+ files, wrote \d+; manifests \d+ -> 1/,
    );
    assert.equal((await run('lake', 'scan', 'db.events', '--format', 'ndjson', ...dd)).trim().split('\n').length, 22);
    assert.match(await run('lake', 'expire', 'db.events', '--older-than', '0s', ...dd), /Expired \d+ snapshots/);
    const stats = JSON.parse(await run('lake', 'stats', 'db.events', ...dd));
    // register the same table under another name: it reads the same rows
    const md = fs
      .readdirSync(path.join(tmp.dir, 'lake', 'db', 'events', 'metadata'))
      .filter((f) => f.endsWith('.metadata.json'))
      .sort()
      .at(-1) as string;
    assert.match(
      await run('lake', 'register', 'other.alias', path.join(tmp.dir, 'lake', 'db', 'events', 'metadata', md), ...dd),
      /Registered other\.alias/,
    );
    assert.equal((await run('lake', 'scan', 'other.alias', '--format', 'ndjson', ...dd)).trim().split('\n').length, 22);
    assert.equal(stats.records, 22);
    assert.equal(stats.snapshots, 1);
  });

  it('scans a table outside the catalog by metadata path with --path-map', {
    skip: fs.existsSync(FIX) ? false : `fixtures missing at ${FIX}`,
  }, async () => {
    const ib = `${FIX}/icebird/test/files/hyperparam-iceberg`;
    const outp = await run(
      'lake',
      'scan',
      `${ib}/spark/rename_column/metadata/v3.metadata.json`,
      '--path-map',
      `s3a://hyperparam-iceberg/=${ib}/`,
      '--where',
      'id = 4',
      '--format',
      'ndjson',
      ...dd,
    );
    assert.deepEqual(JSON.parse(outp), {
      id: 4,
      name: 'Thumper',
      event_date: '2022-01-02',
      price: '99999999.99',
      active: false,
    });
    // a table directory with a version hint; relative paths resolved with "=DIR"
    const di = `${FIX}/duckdb-iceberg`;
    const eq = await run(
      'lake',
      'scan',
      `${di}/data/persistent/equality_deletes/warehouse/mydb/mytable`,
      '--path-map',
      `=${di}`,
      '--format',
      'csv',
      ...dd,
    );
    assert.equal(eq.trim().split('\n').length, 3);
    const h = await run('lake', 'history', `${ib}/spark/bunnies/metadata/v5.metadata.json`, ...dd);
    assert.match(h, /7505300640432048841/);
  });

  it('rejects bad input with precise errors', async () => {
    await assert.rejects(
      run('lake', 'scan', 'db.events', '--format', 'xml', ...dd),
      /--format: expected table, ndjson or csv/,
    );
    await assert.rejects(
      run('lake', 'create', '../x.y', '--schema', path.join(tmp.dir, 'schema.json'), ...dd),
      /namespace\[0\]: expected a name/,
    );
    await assert.rejects(run('lake', 'scan', 'db.events', '--where', 'id = ', ...dd), /where/);
  });
});
