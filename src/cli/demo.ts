import type { Command } from 'commander';
import { TributaryError } from '../core/index.ts';

function intOption(value: string, flag: string, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new TributaryError(
      'INVALID_ARGUMENT',
      `${flag}: expected an integer ${min}-${max}, got ${JSON.stringify(value)}`,
    );
  }
  return n;
}

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description(
      'play the whole story on generated commerce events: stream job, CEP alerts, Iceberg lake, real-time datasources, a daily pipeline',
    )
    .option('--data-dir <dir>', 'data directory (default: a fresh temp dir)')
    .option('--events <n>', 'number of generated events', '20000')
    .option('--seed <n>', 'random seed (the same seed gives the same events)', '42')
    .option('--host <host>', 'interface to listen on', '127.0.0.1')
    .option('--kafka-port <port>', 'Kafka listener port (0: any free port)', '0')
    .option('--http-port <port>', 'HTTP port for the API and the console (0: any free port)', '0')
    .option('--json', 'print the report as JSON')
    .option('--exit', 'stop the platform after the report instead of keeping it open until Ctrl-C')
    .action(
      async (opts: {
        dataDir?: string;
        events: string;
        seed: string;
        host: string;
        kafkaPort: string;
        httpPort: string;
        json?: boolean;
        exit?: boolean;
      }) => {
        const events = intOption(opts.events, '--events', 1, 100_000_000);
        const seed = intOption(opts.seed, '--seed', 0, 2 ** 32 - 1);
        const kafkaPort = intOption(opts.kafkaPort, '--kafka-port', 0, 65535);
        const httpPort = intOption(opts.httpPort, '--http-port', 0, 65535);
        // Loaded here so that the other commands start without DuckDB and the HTTP stack.
        const { runDemo, formatReport } = await import('../server/index.ts');
        const demo = await runDemo({
          events,
          seed,
          host: opts.host,
          kafkaPort,
          httpPort,
          ...(opts.dataDir === undefined ? {} : { dataDir: opts.dataDir }),
          ...(opts.json ? { out: process.stderr } : {}),
        });
        if (opts.json) process.stdout.write(`${JSON.stringify(demo.report, null, 2)}\n`);
        else process.stdout.write(formatReport(demo.report));
        if (opts.exit) {
          await demo.close();
          return;
        }
        console.log(`\nThe platform keeps running: open ${demo.report.consoleUrl} (Ctrl-C to stop).`);
        await new Promise<void>((resolve) => {
          const stop = () => {
            demo.close().then(resolve, resolve);
          };
          process.once('SIGINT', stop);
          process.once('SIGTERM', stop);
        });
      },
    );
}
