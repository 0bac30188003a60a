/**
 * The `seed` command line: thin commands over the same services the gateway uses.
 * Run from a checkout as `npx seed …` (after `npm ci`).
 */
import { Command, InvalidArgumentError } from 'commander';
import { registerServeCommands } from './serve.ts';
import { registerDatasetCommands } from './datasets.ts';
import { registerTenantCommands } from './keys.ts';
import { registerJobCommands } from './jobs.ts';
import { registerLedgerCommands } from './ledger.ts';

function portNumber(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new InvalidArgumentError('expected a port number 0–65535');
  return port;
}

export function buildProgram(): Command {
  const program = new Command('seed')
    .description('Seed: one OpenAI-compatible gateway for all model traffic, with a ledger and provenance.')
    .version('0.1.0')
    .showHelpAfterError()
    .configureHelp({ sortSubcommands: true });
  registerServeCommands(program, { portNumber });
  registerDatasetCommands(program);
  registerTenantCommands(program);
  registerJobCommands(program);
  registerLedgerCommands(program);
  return program;
}

await buildProgram().parseAsync(process.argv);
