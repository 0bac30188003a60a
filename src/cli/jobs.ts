/**
 * `seed jobs generate`: a generation job through a running gateway (src/jobs/). Outputs go to
 * stdout (or --output) as JSONL as items end; progress and the summary go to stderr. With
 * --dataset, the job's calls become a dataset version with lineage once the ledger holds them.
 */
import { createWriteStream, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { InvalidArgumentError, type Command } from 'commander';
import { formatReference } from '../datasets/index.ts';
import { datasetFromJob, parsePrompts, runGenerateJob, type ItemResult, type JobSummary } from '../jobs/index.ts';
import { SeedError } from '../errors.ts';
import { isPurpose, PURPOSES, type Purpose } from '../terms/index.ts';
import { exitOnKnownError, withCompliance, withComplianceOptions, type ComplianceOptions } from './compliance-context.ts';

interface GenerateFlags extends ComplianceOptions {
  input: string;
  route: string;
  purpose: Purpose;
  gateway: string;
  key?: string;
  concurrency: number;
  maxTokens?: number;
  temperature?: number;
  maxAttempts: number;
  jobId?: string;
  output?: string;
  dataset?: string;
}

function readInput(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new SeedError('invalid_request', `cannot read ${file}: ${(error as Error).message}`);
  }
}

function positiveInteger(value: string): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 1) throw new InvalidArgumentError('expected a positive integer');
  return number;
}

function temperature(value: string): number {
  const number = Number(value);
  if (!Number.isFinite(number) || number < 0 || number > 2) throw new InvalidArgumentError('expected a number from 0 to 2');
  return number;
}

function purposeArgument(value: string): Purpose {
  if (!isPurpose(value)) throw new InvalidArgumentError(`expected one of ${PURPOSES.join(', ')}`);
  return value;
}

/** One output line: the sample's id, its call, and what the teacher answered (or why it did not). */
function outputLine(result: ItemResult): string {
  return `${JSON.stringify(
    result.ok
      ? { id: result.id, call_id: result.callId, message: result.message, finish_reason: result.finishReason, usage: result.usage, attempts: result.attempts }
      : { id: result.id, error: result.error, attempts: result.attempts },
  )}\n`;
}

function summaryText(summary: JobSummary): string {
  const lines = [
    `job ${summary.jobId}: ${summary.succeeded} of ${summary.items} succeeded, ${summary.failed} failed` +
      (summary.notAttempted > 0 ? `, ${summary.notAttempted} not attempted` : ''),
    `  ${summary.requests} requests (${summary.rateLimited} answered 429), ${summary.promptTokens + summary.completionTokens} tokens ` +
      `(${summary.promptTokens} prompt, ${summary.completionTokens} completion) in ${(summary.elapsedMs / 1000).toFixed(1)} s: ` +
      `${Math.round(summary.tokensPerMinute)} tokens/min`,
  ];
  if (summary.stoppedBy) lines.push(`  stopped: ${summary.stoppedBy.message}${summary.stoppedBy.code ? ` (${summary.stoppedBy.code})` : ''}`);
  return `${lines.join('\n')}\n`;
}

/**
 * Registers `seed jobs`.
 *
 * @example
 * ```ts
 * registerJobCommands(program); // in src/cli/main.ts
 * ```
 */
export function registerJobCommands(program: Command): void {
  const jobs = program.command('jobs').description('Jobs that call teacher models through the gateway: generation with lineage.');
  withComplianceOptions(
    jobs
      .command('generate')
      .description(
        'Send every prompt of a JSONL file to a teacher route through a running gateway (batch priority: the gateway paces the job ' +
          'to the quota instead of answering 429), write the answers as JSONL, and optionally make them a dataset with lineage.',
      )
      .requiredOption('-i, --input <file>', 'prompts, one JSON object a line: {"id"?, "messages": [...]} or {"id"?, "prompt": "...", "system"?: "..."}')
      .requiredOption('-r, --route <route>', 'the teacher route (model alias)')
      .option('--purpose <purpose>', 'what the outputs are for (x-seed-purpose)', purposeArgument, 'train' as Purpose)
      .option('--gateway <url>', 'the gateway (also SEED_GATEWAY_URL)', process.env['SEED_GATEWAY_URL'] ?? 'http://127.0.0.1:4000')
      .option('--key <key>', 'a virtual key (also SEED_API_KEY)')
      .option('--concurrency <n>', 'calls in flight at once', positiveInteger, 8)
      .option('--max-tokens <n>', 'max_tokens of every call', positiveInteger)
      .option('--temperature <t>', 'temperature of every call', temperature)
      .option('--max-attempts <n>', 'tries per prompt, the first included', positiveInteger, 6)
      .option('--job-id <id>', 'tags every call as metadata seed_job (default: gen-<time>-<random>)')
      .option('-o, --output <file>', 'write the answers here instead of stdout')
      .option('--dataset <name>', "make the job's calls a dataset version (the key must store payloads; --config or --store: the gateway's store)"),
  ).action(async (flags: GenerateFlags) => {
    const jobId = flags.jobId ?? `gen-${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '')}-${randomBytes(3).toString('hex')}`;
    const apiKey = flags.key ?? process.env['SEED_API_KEY'];
    let summary: JobSummary;
    const startedAt = Date.now();
    try {
      const items = parsePrompts(readInput(flags.input), basename(flags.input));
      const output = flags.output ? createWriteStream(flags.output) : process.stdout;
      const abort = new AbortController();
      // Ctrl-C, or a supervisor's SIGTERM: stop dispatching, report what was done, exit.
      const stop = () => abort.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      process.stderr.write(`job ${jobId}: ${items.length} prompts → ${flags.route} (purpose ${flags.purpose}) via ${flags.gateway}\n`);
      try {
        summary = await runGenerateJob({
          gateway: flags.gateway,
          ...(apiKey ? { apiKey } : {}),
          route: flags.route,
          purpose: flags.purpose,
          items,
          jobId,
          concurrency: flags.concurrency,
          maxAttempts: flags.maxAttempts,
          ...(flags.maxTokens === undefined ? {} : { maxTokens: flags.maxTokens }),
          ...(flags.temperature === undefined ? {} : { temperature: flags.temperature }),
          onResult: (result) => output.write(outputLine(result)),
          signal: abort.signal,
        });
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        if (output !== process.stdout) {
          output.end();
          await once(output, 'close');
        }
      }
    } catch (error) {
      exitOnKnownError(error);
      return;
    }
    process.stderr.write(summaryText(summary));
    if (flags.dataset !== undefined && summary.succeeded > 0) {
      const name = flags.dataset;
      await withCompliance(flags, async ({ store, datasets, actor }) => {
        const version = await datasetFromJob({ store, datasets, name, jobId, purpose: flags.purpose, startedAt, expected: summary.succeeded, actor });
        process.stderr.write(`created ${formatReference(version)} (${version.sampleCount} samples, hash ${version.hash.slice(0, 12)})\n`);
      });
    }
    if (summary.failed > 0 || summary.notAttempted > 0) process.exitCode = 1;
  });
}
