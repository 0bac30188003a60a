/**
 * `seed ledger rejected`: the calls the store refused (see LedgerWriter's `rejected` counter),
 * kept in the spill directory's `rejected.jsonl`. Lists them; with `--retry`, once the cause is
 * fixed (a migration, an edit of the file), stores what the store now takes and keeps the rest
 * in the file. The gateway must be stopped for a retry: the spill directory has one writer.
 */
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { LedgerWriter } from '../ledger/index.ts';
import { parseRecord, REJECTED_FILE, spillFileName } from '../ledger/spill.ts';
import type { CallRecord } from '../ledger/types.ts';
import { openStore, type Store } from '../store/index.ts';
import { exitOnKnownError, loadConfig, storeUrlFor } from './compliance-context.ts';
import { SeedError } from '../errors.ts';

interface RejectedFlags {
  spillDir?: string;
  store?: string;
  config?: string;
  retry?: boolean;
}

/** Calls listed one a line before the rest are only counted. */
const LISTED = 20;

function settingsOf(flags: RejectedFlags): { spillDirectory: string; storeUrl: string } {
  const config = loadConfig(flags);
  return { spillDirectory: flags.spillDir ?? config?.ledger.spillDirectory ?? './data/spill', storeUrl: storeUrlFor(flags, config) };
}

/** The calls in `rejected.jsonl` (lines that are not a call record are counted apart). */
function readRejected(file: string): { calls: CallRecord[]; unreadable: number } {
  if (!existsSync(file)) return { calls: [], unreadable: 0 };
  const calls: CallRecord[] = [];
  let unreadable = 0;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    const call = parseRecord(line);
    if (call === null) unreadable += 1;
    else calls.push(call);
  }
  return { calls, unreadable };
}

function describeCall(call: CallRecord): string {
  const started = Number.isFinite(call.startedAt) ? new Date(call.startedAt).toISOString() : String(call.startedAt);
  return `${call.id}  ${started}  route ${JSON.stringify(call.route)}  ${call.status} ${call.httpStatus}`;
}

/**
 * Moves `rejected.jsonl` under a spill file's name, so a writer opened on the directory replays
 * it like any spill; the calls the store refuses again go back to `rejected.jsonl`.
 */
async function retry(input: { spillDirectory: string; storeUrl: string }): Promise<{ stored: number; refused: number; left: string | null }> {
  const pending = join(input.spillDirectory, spillFileName(0));
  renameSync(join(input.spillDirectory, REJECTED_FILE), pending);
  let store: Store | undefined;
  let writer: LedgerWriter | undefined;
  try {
    store = await openStore({ url: input.storeUrl });
    writer = await LedgerWriter.open({ store, spillDirectory: input.spillDirectory, onError: () => undefined });
  } catch (error) {
    // Nothing was replayed (the gateway holds the directory, or the store is down): as it was.
    renameSync(pending, join(input.spillDirectory, REJECTED_FILE));
    await store?.close();
    throw error instanceof SeedError && error.code === 'conflict'
      ? new SeedError('conflict', `${error.message}: stop the gateway first; a retry needs the spill directory to itself`)
      : error;
  }
  try {
    await writer.flush();
    const stats = writer.stats();
    // The store failed as in an outage: the file stays a spill file, replayed at the gateway's next start.
    return { stored: stats.replayed, refused: stats.rejected, left: existsSync(pending) ? pending : null };
  } finally {
    await writer.close();
    await store.close();
  }
}

export function registerLedgerCommands(program: Command): void {
  const ledger = program.command('ledger').description('The ledger writer: calls the store refused, kept apart in the spill directory.');
  ledger
    .command('rejected')
    .description(
      `List the calls the store refused (kept in <spill directory>/${REJECTED_FILE}); with --retry, once the cause is fixed, store the ones it now takes (stop the gateway first).`,
    )
    .option('--spill-dir <dir>', "the spill directory (default: ledger.spillDirectory of seed.yaml, else ./data/spill)")
    .option('--store <url>', 'store URL for --retry (also SEED_STORE_URL; default: store.url in seed.yaml, else sqlite:./data/seed.db)')
    .option('-c, --config <file>', 'config file (also SEED_CONFIG; default ./seed.yaml if present)')
    .option('--retry', 'store the calls the store now takes; the rest stay in the file')
    .action(async (flags: RejectedFlags) => {
      try {
        const settings = settingsOf(flags);
        const file = join(settings.spillDirectory, REJECTED_FILE);
        const { calls, unreadable } = readRejected(file);
        const unreadableNote = unreadable > 0 ? ` (and ${unreadable} unreadable line${unreadable === 1 ? '' : 's'})` : '';
        if (calls.length === 0) {
          process.stdout.write(`no rejected calls in ${file}${unreadableNote}\n`);
          return;
        }
        if (!flags.retry) {
          process.stdout.write(`${calls.length} rejected call${calls.length === 1 ? '' : 's'} in ${file}${unreadableNote}:\n`);
          for (const call of calls.slice(0, LISTED)) process.stdout.write(`  ${describeCall(call)}\n`);
          if (calls.length > LISTED) process.stdout.write(`  … and ${calls.length - LISTED} more\n`);
          process.stdout.write('Fix the cause (the log says why the store refused each), then: seed ledger rejected --retry\n');
          return;
        }
        const { stored, refused, left } = await retry(settings);
        if (left !== null) {
          process.stderr.write(`seed: the store did not answer; the calls stay in ${left}, which the gateway replays at its next start\n`);
          process.exitCode = 1;
          return;
        }
        process.stdout.write(`stored ${stored} of ${calls.length} rejected calls; ${refused} refused again${refused > 0 ? `, kept in ${file}` : ''}\n`);
        if (refused > 0) process.exitCode = 1;
      } catch (error) {
        exitOnKnownError(error);
      }
    });
}
