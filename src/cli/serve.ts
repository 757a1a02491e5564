import type { Command } from 'commander';
import { TributaryError } from '../core/index.ts';

function port(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    throw new TributaryError(
      'INVALID_ARGUMENT',
      `${flag}: expected a port number 0-65535, got ${JSON.stringify(value)}`,
    );
  }
  return n;
}

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('run the platform: the Kafka listener and the HTTP API (Druid, Iceberg REST, metrics)')
    .option('--data-dir <dir>', 'data directory', './tributary-data')
    .option('--host <host>', 'interface to listen on', '127.0.0.1')
    .option('--kafka-port <port>', 'Kafka listener port', '9092')
    .option('--http-port <port>', 'HTTP port (Druid router port)', '8888')
    .option('--no-auto-create-topics', 'do not create topics on first use')
    .action(
      async (opts: {
        dataDir: string;
        host: string;
        kafkaPort: string;
        httpPort: string;
        autoCreateTopics: boolean;
      }) => {
        // Loaded here so that the other commands start without DuckDB and the HTTP stack.
        const { startPlatform } = await import('../server/index.ts');
        const platform = await startPlatform({
          dataDir: opts.dataDir,
          host: opts.host,
          kafkaPort: port(opts.kafkaPort, '--kafka-port'),
          httpPort: port(opts.httpPort, '--http-port'),
          autoCreateTopics: opts.autoCreateTopics,
        });
        console.log(`Tributary is running (data in ${opts.dataDir}).`);
        console.log(`  Kafka:  ${opts.host}:${platform.kafkaPort}`);
        console.log(
          `  HTTP:   http://${opts.host}:${platform.httpPort}  (Druid API at /druid/v2, Iceberg REST at /iceberg)`,
        );
        console.log('Press Ctrl-C to stop.');
        await new Promise<void>((resolve) => {
          const stop = (signal: string) => {
            console.log(`\n${signal}: shutting down...`);
            platform.close().then(resolve, resolve);
          };
          process.once('SIGINT', () => stop('SIGINT'));
          process.once('SIGTERM', () => stop('SIGTERM'));
        });
        console.log('Stopped cleanly.');
      },
    );
}
