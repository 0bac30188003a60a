/** `seed audit verify` and `seed audit log`. */
import { InvalidArgumentError, type Command } from 'commander';
import { formatAuditEntries, formatVerification } from '../audit/index.ts';
import { withCompliance, withComplianceOptions, type ComplianceOptions } from './compliance-context.ts';
import { parseTimeArgument } from './durations.ts';

function limitArgument(value: string): number {
  const limit = Number(value);
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new InvalidArgumentError('expected an integer from 1 to 10000');
  return limit;
}

export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description('The tamper-evident audit log.');
  withComplianceOptions(
    audit.command('verify').description('Re-derive every hash and link, and every dataset version\'s content; exit 1 naming the first bad entry.'),
  ).action(async (options: ComplianceOptions) => {
    await withCompliance(options, async ({ audit: log }) => {
      const result = await log.verify();
      (result.ok ? process.stdout : process.stderr).write(formatVerification({ result }));
      if (!result.ok) process.exitCode = 1;
    });
  });
  withComplianceOptions(
    audit
      .command('log')
      .description('The most recent entries, oldest first.')
      .option('--action <action>', 'only this action (e.g. dataset.exported)')
      .option('--since <time>', 'only entries since (7d, 12h, or an ISO date)')
      .option('--limit <n>', 'at most this many entries', limitArgument, 50),
  ).action(async (options: ComplianceOptions & { action?: string; since?: string; limit: number }) => {
    await withCompliance(options, async ({ audit: log }) => {
      const entries = await log.list({
        limit: options.limit,
        ...(options.action === undefined ? {} : { action: options.action }),
        ...(options.since === undefined ? {} : { since: parseTimeArgument({ value: options.since, now: Date.now() }) }),
      });
      process.stdout.write(formatAuditEntries({ entries }));
    });
  });
}
