import { Command } from 'commander';
import { isTributaryError } from '../core/index.ts';
import { registerCepCommands } from './cep.ts';
import { registerLakeCommands } from './lake.ts';
import { registerLogCommands } from './log-commands.ts';
import { registerPipelineCommands } from './pipeline.ts';
import { registerServeCommand } from './serve.ts';

const program = new Command('tributary')
  .description('Kafka, stream processing, Iceberg and Druid-style analytics in one embedded platform')
  .showHelpAfterError();
registerServeCommand(program);
registerLogCommands(program);
registerLakeCommands(program);
registerCepCommands(program);
registerPipelineCommands(program);

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
