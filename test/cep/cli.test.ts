import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { registerCepCommands } from '../../src/cli/cep.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-cep-cli-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const example = (f: string) => fileURLToPath(new URL(`../../examples/patterns/${f}`, import.meta.url));

async function cli(args: string[]): Promise<string> {
  let out = '';
  const program = new Command('tributary').exitOverride();
  program.configureOutput({ writeOut: (s) => (out += s), writeErr: (s) => (out += s) });
  registerCepCommands(program);
  await program.parseAsync(['node', 'tributary', ...args]);
  return out;
}

test('cep run: the seed pattern over the sample events writes matches and timeouts', async () => {
  const outFile = path.join(dir, 'm.ndjson');
  const toFile = path.join(dir, 't.ndjson');
  const printed = await cli([
    'cep',
    'run',
    '--pattern',
    example('high-value-purchase.json'),
    '--events',
    example('sample-events.ndjson'),
    '--key',
    'userId',
    '--time',
    'timestamp',
    '--out',
    outFile,
    '--timeouts',
    toFile,
  ]);
  assert.match(printed, /9 events, 3 keys: 1 matches, 1 timeouts/);
  const matches = fs
    .readFileSync(outFile, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(matches.length, 1);
  assert.equal(matches[0].key, 'ann');
  // e6 comes before e5 in the file; event time puts BROWSE first, which followedBy skips.
  assert.deepEqual(
    Object.entries(matches[0].match).map(
      ([stage, evs]) => `${stage}:${(evs as { eventId: string }[]).map((e) => e.eventId)}`,
    ),
    ['start:e1', 'middle:e3', 'end:e6'],
  );
  const timeouts = fs
    .readFileSync(toFile, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  // bob bought over 1000 but never logged out: his partial match expires 30 minutes after the login.
  assert.deepEqual(
    timeouts.map((t) => [t.key, t.timeoutTimestamp, Object.keys(t.match)]),
    [['bob', 1700000060000 + 30 * 60_000, ['start', 'middle']]],
  );
});

test('cep run: matches to stdout; bad input names the line and field', async () => {
  const printed = await cli([
    'cep',
    'run',
    '--pattern',
    example('high-value-purchase.json'),
    '--events',
    example('sample-events.ndjson'),
    '--key',
    'userId',
    '--time',
    'timestamp',
  ]);
  assert.equal(printed.trim().split('\n').length, 1);
  const ev = path.join(dir, 'bad.ndjson');
  fs.writeFileSync(ev, '{"userId":"a","timestamp":1}\n{"userId":"b"}\n');
  await assert.rejects(
    cli([
      'cep',
      'run',
      '--pattern',
      example('high-value-purchase.json'),
      '--events',
      ev,
      '--key',
      'userId',
      '--time',
      'timestamp',
    ]),
    /bad\.ndjson\[2\]\.timestamp: expected an epoch-ms number/,
  );
  const pat = path.join(dir, 'bad.json');
  fs.writeFileSync(pat, JSON.stringify({ stages: [{ name: 'a', where: 'x >> 1' }] }));
  await assert.rejects(
    cli(['cep', 'run', '--pattern', pat, '--events', ev, '--key', 'userId', '--time', 'timestamp']),
    /pattern\.stages\.0\.where: expression "x >> 1"/,
  );
  fs.writeFileSync(ev, '{"userId":"a","timestamp":1}\nnot json\n');
  await assert.rejects(
    cli([
      'cep',
      'run',
      '--pattern',
      example('high-value-purchase.json'),
      '--events',
      ev,
      '--key',
      'userId',
      '--time',
      'timestamp',
    ]),
    /bad\.ndjson:2: not a JSON line/,
  );
});

test('cep validate: prints the normalized pattern, or the first error with its field', async () => {
  const printed = await cli(['cep', 'validate', '--pattern', example('nexmark-q3.json')]);
  const json = JSON.parse(printed.slice(0, printed.lastIndexOf('}') + 1));
  assert.deepEqual(
    json.stages.map((s: { name: string }) => s.name),
    ['A', 'B', 'C'],
  );
  assert.match(printed, /ok: 3 stages, \d+ NFA states/);
  const pat = path.join(dir, 'bad-validate.json');
  fs.writeFileSync(pat, JSON.stringify({ stages: [{ name: 'a' }, { name: 'b', contiguity: 'next', greedy: 'yes' }] }));
  await assert.rejects(cli(['cep', 'validate', '--pattern', pat]), /pattern\.stages\.1\.greedy/);
});
