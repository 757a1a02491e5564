import { Command } from 'commander';
import { isTributaryError } from '../core/index.ts';

type Register = (program: Command) => void;

/**
 * Each command group is loaded only when it runs, so that `tributary produce` does not load DuckDB,
 * LMDB and the HTTP stack. Help (no command, or an unknown one) loads them all.
 */
const COMMANDS: Record<string, () => Promise<Register>> = {
  bench: async () => (await import('./bench.ts')).registerBenchCommands,
  demo: async () => (await import('./demo.ts')).registerDemoCommand,
  serve: async () => (await import('./serve.ts')).registerServeCommand,
  topics: async () => (await import('./log-commands.ts')).registerLogCommands,
  produce: async () => (await import('./log-commands.ts')).registerLogCommands,
  consume: async () => (await import('./log-commands.ts')).registerLogCommands,
  lake: async () => (await import('./lake.ts')).registerLakeCommands,
  cep: async () => (await import('./cep.ts')).registerCepCommands,
  pipeline: async () => (await import('./pipeline.ts')).registerPipelineCommands,
  lineage: async () => (await import('./pipeline.ts')).registerPipelineCommands,
};

const program = new Command('tributary')
  .description('Kafka, stream processing, Iceberg and Druid-style analytics in one embedded platform')
  .showHelpAfterError();

const requested = process.argv[2];
const loaders = requested && requested in COMMANDS ? [COMMANDS[requested]!] : Object.values(COMMANDS);
const registered = new Set<Register>();
for (const load of loaders) {
  const register = await load();
  if (!registered.has(register)) register(program);
  registered.add(register);
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  // Bad input and unavailable services are the user's to fix: say what, not a stack trace.
  if (isTributaryError(err)) {
    console.error(`error: ${err.message}`);
    process.exitCode = err.code === 'INVALID_ARGUMENT' ? 2 : 1;
  } else {
    throw err;
  }
}
