import fs from 'node:fs';
import type { Command } from 'commander';
import { invalidArgument } from '../core/index.ts';
import { NEXMARK_QUERIES, type NexmarkQuery, runOnLog } from '../streams/index.ts';

const int = (name: string, v: string, min: number): number => {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min) throw invalidArgument(name, `an integer >= ${min}`, v);
  return n;
};

/** `tributary bench nexmark`: a Nexmark query over the embedded log, beside a hand-written loop. */
export function registerBenchCommands(program: Command): void {
  const bench = program.command('bench').description('Benchmarks');
  bench
    .command('nexmark')
    .description('Run a Nexmark query on generated events over the embedded log and print events/s')
    .requiredOption('--query <q>', `query: ${NEXMARK_QUERIES.join(', ')}`)
    .option('--events <n>', 'number of events', '1000000')
    .option('--seed <s>', 'generator seed', '1')
    .option('--rate <r>', 'events per second of event time (Beam default 10000)', '10000')
    .option('--dump-events <file>', 'write the events as NDJSON in the shape of the datagen table')
    .option('--dump-results <file>', "write the query's output rows as NDJSON")
    .action(async (o: Record<string, string | undefined>) => {
      const q = o.query as NexmarkQuery;
      if (!(NEXMARK_QUERIES as readonly string[]).includes(q))
        throw invalidArgument('--query', `one of ${NEXMARK_QUERIES.join(', ')}`, q);
      const events = int('--events', o.events as string, 1);
      const seed = int('--seed', o.seed as string, 0);
      const rate = int('--rate', o.rate as string, 1);
      const dump = o.dumpEvents === undefined ? undefined : fs.openSync(o.dumpEvents, 'w');
      let buf: string[] = [];
      const flush = () => {
        if (dump !== undefined && buf.length > 0) fs.writeSync(dump, buf.join(''));
        buf = [];
      };
      try {
        const r = await runOnLog(
          q,
          events,
          { seed, eventsPerSecond: rate },
          dump === undefined
            ? {}
            : {
                onEvent: (e) => {
                  buf.push(`${JSON.stringify(e)}\n`);
                  if (buf.length >= 10_000) flush();
                },
              },
        );
        flush();
        if (o.dumpResults !== undefined)
          fs.writeFileSync(o.dumpResults, r.rows.map((row) => `${JSON.stringify(row)}\n`).join(''));
        const per = (ms: number) => Math.round((events / ms) * 1000).toLocaleString('en-US');
        console.log(
          `nexmark ${q}, ${events.toLocaleString('en-US')} events (seed ${seed}), embedded log, 1 partition:`,
        );
        console.log(`  job (generate, produce, process)  ${per(r.jobMs)} events/s (${r.jobMs.toFixed(0)} ms)`);
        console.log(`  hand-written loop                 ${per(r.loopMs)} events/s (${r.loopMs.toFixed(0)} ms)`);
        console.log(
          `  results: ${r.rows.length} rows, ${r.equal ? 'equal to' : 'DIFFERENT from'} the loop's ${r.referenceRows}`,
        );
        if (r.late + r.dropped > 0) console.log(`  dropped: ${r.late} late records, ${r.dropped} for closed windows`);
        if (!r.equal) process.exitCode = 1;
      } finally {
        if (dump !== undefined) fs.closeSync(dump);
      }
    });
}
