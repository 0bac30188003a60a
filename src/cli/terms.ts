/** `seed terms list` and `seed terms show ID`. */
import type { Command } from 'commander';
import { formatTermsList, formatTermsProfile } from '../terms/index.ts';
import { exitOnKnownError, loadRegistry, type ComplianceOptions } from './compliance-context.ts';

export function registerTermsCommands(program: Command): void {
  const terms = program.command('terms').description('Terms profiles: what each provider\'s terms allow its outputs to be used for.');
  terms
    .command('list')
    .description('Every profile with its verdict per purpose.')
    .option('-c, --config <file>', 'config file with a terms section (default ./seed.yaml if present)')
    .action((options: ComplianceOptions) => {
      try {
        process.stdout.write(formatTermsList({ profiles: loadRegistry(options).list() }));
      } catch (error) {
        exitOnKnownError(error);
      }
    });
  terms
    .command('show')
    .description('One profile in full: source, date, quote, review state, verdicts and obligations.')
    .argument('<id>', 'profile id')
    .option('-c, --config <file>', 'config file with a terms section (default ./seed.yaml if present)')
    .action((id: string, options: ComplianceOptions) => {
      try {
        process.stdout.write(formatTermsProfile({ profile: loadRegistry(options).require(id) }));
      } catch (error) {
        exitOnKnownError(error);
      }
    });
}
