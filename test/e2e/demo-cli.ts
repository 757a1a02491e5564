// Runs `tributary demo` as the CLI would: a commander program with the demo command (test helper).
import { Command } from 'commander';
import { registerDemoCommand } from '../../src/cli/demo.ts';

const program = new Command('tributary').exitOverride();
registerDemoCommand(program);
await program.parseAsync(process.argv);
