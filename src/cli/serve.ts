import type { Command } from 'commander';

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description(
      'run the platform: the Kafka listener and one HTTP server (Druid API, Iceberg REST, jobs, patterns, pipelines, console, metrics)',
    )
    .option('--config <file>', 'configuration file (YAML or JSON); also TRIBUTARY_CONFIG')
    .option('--data-dir <dir>', 'data directory (default ./tributary-data)')
    .option('--host <host>', 'interface to listen on (default 127.0.0.1)')
    .option('--kafka-port <port>', 'Kafka listener port (default 9092)')
    .option('--http-port <port>', 'HTTP port (default 8888)')
    .option('--auto-create-topics', 'create topics on first use (the default)')
    .option('--no-auto-create-topics', 'do not create topics on first use')
    .option('--body-limit <size>', 'largest HTTP request body, e.g. 16mb')
    .option('--auth-token <token>', 'accept this HTTP bearer token (repeatable)', collect)
    .option('--sasl-user <user:password>', 'a Kafka SASL user (repeatable)', collect)
    .option('--sasl-mechanism <mechanism>', 'PLAIN or SCRAM-SHA-256 (repeatable; default both)', collect)
    .option('--tls-cert <file>', 'PEM certificate: serve HTTPS')
    .option('--tls-key <file>', 'PEM private key for --tls-cert')
    .option('--commit-interval-ms <ms>', 'commit interval of submitted jobs')
    .addHelpText(
      'after',
      '\nPrecedence: flags, then TRIBUTARY_* environment variables, then the config file. See docs/server.md.',
    )
    .action(async (opts: Record<string, string | string[] | boolean | undefined>) => {
      // Loaded here so that the other commands start without DuckDB and the HTTP stack.
      const { loadConfig, platformOptions, startPlatform } = await import('../server/index.ts');
      const { config: file, ...rest } = opts;
      const flags: Record<string, string | string[] | boolean | undefined> = {};
      for (const [k, v] of Object.entries(rest)) flags[`--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`] = v;
      const config = loadConfig({ ...(typeof file === 'string' ? { file } : {}), flags });
      const platform = await startPlatform(platformOptions(config));
      const base = `${platform.protocol}://${config.host}:${platform.httpPort}`;
      console.log(`Tributary is running (data in ${config.dataDir}).`);
      console.log(`  Kafka:    ${config.host}:${platform.kafkaPort}${config.kafka.sasl ? ' (SASL)' : ''}`);
      console.log(`  HTTP:     ${base}${config.auth.tokens.length > 0 ? '  (bearer token required)' : ''}`);
      console.log(`  Console:  ${base}/   Druid: /druid/v2   Iceberg REST: /iceberg   Jobs: /api/v1/jobs`);
      console.log('Press Ctrl-C to stop.');
      await new Promise<void>((resolve) => {
        let stopping = false;
        const stop = (signal: string) => {
          if (stopping) {
            // A second signal: the user does not want to wait for jobs to commit.
            console.log(`\n${signal} again: exiting without waiting.`);
            process.exit(130);
          }
          stopping = true;
          console.log(`\n${signal}: stopping jobs (committing their work) and closing...`);
          platform.close().then(resolve, (err: unknown) => {
            console.error(`error while closing: ${err instanceof Error ? err.message : String(err)}`);
            process.exitCode = 1;
            resolve();
          });
        };
        process.on('SIGINT', () => stop('SIGINT'));
        process.on('SIGTERM', () => stop('SIGTERM'));
      });
      console.log('Stopped cleanly.');
    });
}
