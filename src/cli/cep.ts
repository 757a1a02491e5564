import * as fs from 'node:fs';
import type { Command } from 'commander';
import { compile, patternFromJson, patternToJson, runPattern } from '../cep/index.ts';
import { TributaryError } from '../core/index.ts';

function readJson(file: string, what: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new TributaryError('NOT_FOUND', `${what} ${file}: cannot read (${(err as Error).message})`, { cause: err });
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new TributaryError('INVALID_ARGUMENT', `${what} ${file}: not JSON (${(err as Error).message})`, {
      field: what,
      cause: err,
    });
  }
}

function readNdjson(file: string): unknown[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new TributaryError('NOT_FOUND', `events ${file}: cannot read (${(err as Error).message})`, { cause: err });
  }
  const out: unknown[] = [];
  for (const [i, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue;
    try {
      out.push(JSON.parse(line));
    } catch (err) {
      throw new TributaryError('INVALID_ARGUMENT', `${file}:${i + 1}: not a JSON line (${(err as Error).message})`, {
        field: 'events',
        cause: err,
      });
    }
  }
  return out;
}

/** `tributary cep run`: tries a JSON pattern on a file of events (one JSON object per line). */
export function registerCepCommands(program: Command): void {
  const cep = program.command('cep').description('complex event processing: try patterns on sample events');
  cep
    .command('run')
    .description('run a JSON pattern over NDJSON events per key in event-time order; one line per match')
    .requiredOption('--pattern <file>', 'pattern JSON (see docs/cep.md)')
    .requiredOption('--events <file>', 'events, one JSON object per line')
    .requiredOption('--key <field>', 'field that keys the events (dotted path)')
    .requiredOption('--time <field>', 'event-time field: epoch ms or ISO-8601 (dotted path)')
    .option('--out <file>', 'write matches here instead of stdout')
    .option('--timeouts <file>', 'write partial matches that timed out (within) here')
    .action((opts: { pattern: string; events: string; key: string; time: string; out?: string; timeouts?: string }) => {
      const pattern = readJson(opts.pattern, 'pattern');
      const events = readNdjson(opts.events);
      const r = runPattern(pattern, events, { key: opts.key, time: opts.time, source: opts.events });
      const lines = r.matches.map((m) => JSON.stringify(m));
      const write = (s: string) => program.configureOutput().writeOut?.(s) ?? process.stdout.write(s);
      if (opts.out !== undefined) fs.writeFileSync(opts.out, lines.map((l) => `${l}\n`).join(''));
      else for (const l of lines) write(`${l}\n`);
      if (opts.timeouts !== undefined)
        fs.writeFileSync(opts.timeouts, r.timeouts.map((t) => `${JSON.stringify(t)}\n`).join(''));
      const summary = `${r.events} events, ${r.keys} keys: ${r.matches.length} matches, ${r.timeouts.length} timeouts`;
      if (opts.out !== undefined) write(`${summary}\n`);
      else process.stderr.write(`${summary}\n`);
    });
  cep
    .command('validate')
    .description('check a JSON pattern (schema, expressions, stage rules) and print its normalized form')
    .requiredOption('--pattern <file>', 'pattern JSON')
    .action((opts: { pattern: string }) => {
      const p = patternFromJson(readJson(opts.pattern, 'pattern'));
      const nfa = compile(p);
      const write = (s: string) => program.configureOutput().writeOut?.(s) ?? process.stdout.write(s);
      write(`${JSON.stringify(patternToJson(p), null, 2)}\n`);
      write(`ok: ${p.stages().length} stages, ${nfa.states.length} NFA states\n`);
    });
}
