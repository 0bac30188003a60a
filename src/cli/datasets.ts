/**
 * `seed datasets …`, and with them the other compliance commands (`seed terms …`,
 * `seed audit …`): thin commands over the datasets, terms and audit modules.
 */
import { readFileSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import {
  EXPORT_FORMATS,
  formatDiff,
  formatPurge,
  formatRecheck,
  formatReference,
  formatRefusal,
  formatVersion,
  formatVersionList,
  isExportFormat,
  type ExportFormat,
  type LedgerFilters,
  type PurgeSource,
} from '../datasets/index.ts';
import { SeedError } from '../errors.ts';
import { isPurpose, PURPOSES, type Purpose } from '../terms/index.ts';
import { registerAuditCommands } from './audit.ts';
import { withCompliance, withComplianceOptions, type ComplianceOptions } from './compliance-context.ts';
import { parseTimeArgument } from './durations.ts';
import { registerTermsCommands } from './terms.ts';

function purposeArgument(value: string): Purpose {
  if (!isPurpose(value)) throw new InvalidArgumentError(`expected one of ${PURPOSES.join(', ')}`);
  return value;
}

function formatArgument(value: string): ExportFormat {
  if (!isExportFormat(value)) throw new InvalidArgumentError(`expected one of ${EXPORT_FORMATS.join(', ')}`);
  return value;
}

function pairs(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const result = { ...previous };
  for (const pair of value.split(',')) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new InvalidArgumentError(`expected key=value, got "${pair}"`);
    result[pair.slice(0, at).trim()] = pair.slice(at + 1).trim();
  }
  return result;
}

const PURGE_KEYS = ['provider', 'deployment', 'model', 'terms', 'since', 'until'] as const;

function purgeSource(given: Record<string, string>): PurgeSource {
  const unknown = Object.keys(given).filter((key) => !(PURGE_KEYS as readonly string[]).includes(key));
  if (unknown.length > 0) throw new SeedError('invalid_request', `unknown --source key ${unknown.join(', ')}; use ${PURGE_KEYS.join(', ')}`);
  const now = Date.now();
  return {
    ...(given['provider'] === undefined ? {} : { provider: given['provider'] }),
    ...(given['deployment'] === undefined ? {} : { deployment: given['deployment'] }),
    ...(given['model'] === undefined ? {} : { model: given['model'] }),
    ...(given['terms'] === undefined ? {} : { termsProfile: given['terms'] }),
    ...(given['since'] === undefined ? {} : { since: parseTimeArgument({ value: given['since'], now }) }),
    ...(given['until'] === undefined ? {} : { until: parseTimeArgument({ value: given['until'], now }) }),
  };
}

/**
 * Registers `seed datasets`, `seed terms` and `seed audit`.
 *
 * @example
 * ```ts
 * registerDatasetCommands(program); // in src/cli/main.ts
 * ```
 */
export function registerDatasetCommands(program: Command): void {
  const datasets = program.command('datasets').description('Datasets with lineage: create, import, inspect, export through the terms gate, purge.');

  withComplianceOptions(
    datasets
      .command('create')
      .description('Create a dataset version from stored call payloads in the ledger.')
      .argument('<name>', 'dataset name')
      .requiredOption('--from-ledger', 'take samples from calls whose payloads were stored')
      .option('--route <route>', 'only calls to this route')
      .option('--since <time>', 'only calls since (7d, 12h, or an ISO date)')
      .option('--until <time>', 'only calls before (7d, 12h, or an ISO date)')
      .option('--purpose <purpose>', 'only calls that declared this purpose', purposeArgument)
      .option('--metadata <key=value>', 'only calls with this metadata (repeatable)', pairs),
  ).action(async (name: string, options: ComplianceOptions & { route?: string; since?: string; until?: string; purpose?: Purpose; metadata?: Record<string, string> }) => {
    await withCompliance(options, async ({ datasets: service, actor }) => {
      const now = Date.now();
      const filters: LedgerFilters = {
        ...(options.route === undefined ? {} : { route: options.route }),
        ...(options.since === undefined ? {} : { since: parseTimeArgument({ value: options.since, now }) }),
        ...(options.until === undefined ? {} : { until: parseTimeArgument({ value: options.until, now }) }),
        ...(options.purpose === undefined ? {} : { purpose: options.purpose }),
        ...(options.metadata === undefined ? {} : { metadata: options.metadata }),
      };
      const { version, skipped } = await service.createFromLedger({ name, filters, actor });
      process.stdout.write(`created ${formatReference(version)} (${version.sampleCount} samples, hash ${version.hash.slice(0, 12)})\n`);
      if (skipped > 0) process.stdout.write(`skipped ${skipped} matching calls without a stored payload or terms profile\n`);
    });
  });

  withComplianceOptions(
    datasets
      .command('import')
      .description('Import samples from a JSONL or CSV file under a declared licence (a terms profile).')
      .argument('<name>', 'dataset name')
      .argument('<file>', 'JSONL (one JSON object per line) or .csv (a header row); keys/columns become fields, "id" the sample id')
      .option('--licence <profile>', 'terms profile the data is licensed under (see seed terms list)', 'human'),
  ).action(async (name: string, file: string, options: ComplianceOptions & { licence: string }) => {
    await withCompliance(options, async ({ datasets: service, actor }) => {
      const extension = extname(file).toLowerCase();
      const input = { name, text: readFileSync(file, 'utf8'), file: basename(file), licence: options.licence, actor };
      const version = extension === '.csv' ? await service.importCsv(input) : await service.importJsonl(input);
      process.stdout.write(`created ${formatReference(version)} (${version.sampleCount} samples, hash ${version.hash.slice(0, 12)})\n`);
    });
  });

  withComplianceOptions(datasets.command('list').description('List every version of every dataset.')).action(async (options: ComplianceOptions) => {
    await withCompliance(options, async ({ datasets: service }) => {
      process.stdout.write(formatVersionList({ versions: await service.list() }));
    });
  });

  withComplianceOptions(
    datasets.command('show').description('Show a version: hash, source, terms and export status per purpose.').argument('<dataset>', 'NAME or NAME@VERSION'),
  ).action(async (reference: string, options: ComplianceOptions) => {
    await withCompliance(options, async ({ datasets: service }) => {
      process.stdout.write(formatVersion({ version: await service.get(reference), terms: await service.terms(reference) }));
    });
  });

  withComplianceOptions(
    datasets.command('diff').description('Samples added, removed and changed between two versions.').argument('<from>', 'NAME@VERSION').argument('<to>', 'NAME@VERSION'),
  ).action(async (from: string, to: string, options: ComplianceOptions) => {
    await withCompliance(options, async ({ datasets: service }) => {
      process.stdout.write(formatDiff({ diff: await service.diff({ from, to }) }));
    });
  });

  withComplianceOptions(
    datasets
      .command('export')
      .description('Export a version for a purpose; refused (exit 1) when any sample\'s lineage forbids it.')
      .argument('<dataset>', 'NAME or NAME@VERSION')
      .requiredOption('--purpose <purpose>', `what the export is for: ${PURPOSES.join(', ')}`, purposeArgument)
      .requiredOption('--format <format>', EXPORT_FORMATS.join(', '), formatArgument)
      .requiredOption('--out <dir>', 'directory for the JSONL file and manifest.json')
      .option('--fields <names>', 'export only these fields (comma-separated); only their lineage is checked')
      .option('--drop-violations', 'write a new version without the violating samples and export that'),
  ).action(async (reference: string, options: ComplianceOptions & { purpose: Purpose; format: ExportFormat; out: string; fields?: string; dropViolations?: boolean }) => {
    await withCompliance(options, async ({ datasets: service, actor }) => {
      const result = await service.export({
        dataset: reference,
        purpose: options.purpose,
        format: options.format,
        outDirectory: options.out,
        dropViolations: options.dropViolations === true,
        actor,
        ...(options.fields === undefined ? {} : { fields: options.fields.split(',').map((field) => field.trim()) }),
      });
      if (!result.ok) {
        process.stderr.write(formatRefusal({ dataset: formatReference(result.version), report: result.report }));
        process.exitCode = 1;
        return;
      }
      if (result.dropped !== null) {
        process.stdout.write(`dropped ${result.dropped.report.violating} samples: ${formatReference(result.dropped.from)} → ${formatReference(result.version)}\n`);
      }
      process.stdout.write(`exported ${formatReference(result.version)} for ${options.purpose}: ${result.files?.records} (${result.jsonl === '' ? 0 : result.jsonl.split('\n').length - 1} records), ${result.files?.manifest}\n`);
    });
  });

  withComplianceOptions(
    datasets
      .command('purge')
      .description('Phase out a source: new versions of every dataset without the samples descended from it.')
      .requiredOption('--source <key=value>', `what to phase out (repeatable; keys: ${PURGE_KEYS.join(', ')})`, pairs),
  ).action(async (options: ComplianceOptions & { source: Record<string, string> }) => {
    await withCompliance(options, async ({ datasets: service, actor }) => {
      process.stdout.write(formatPurge({ outcomes: await service.purge({ source: purgeSource(options.source), actor }) }));
    });
  });

  withComplianceOptions(
    datasets.command('recheck-terms').description('Re-evaluate dataset versions whose terms profiles changed version; audited as terms.changed.'),
  ).action(async (options: ComplianceOptions) => {
    await withCompliance(options, async ({ datasets: service, registry, actor }) => {
      process.stdout.write(formatRecheck({ result: await service.recheckTerms({ registry, actor }) }));
    });
  });

  registerTermsCommands(program);
  registerAuditCommands(program);
}
