/**
 * What the compliance commands share: the store (from `--store`, SEED_STORE_URL, the config's
 * `store.url`, else `sqlite:./data/seed.db`), the terms registry from the config's `terms:`
 * section, and the audit log and datasets wired over them. The config is read only when one is
 * given or `./seed.yaml` exists; the bundled example is not used, it has no compliance settings.
 */
import { existsSync } from 'node:fs';
import { userInfo } from 'node:os';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { createAuditLog, type AuditLog } from '../audit/index.ts';
import { ConfigError } from '../config/load.ts';
import type { SeedConfig } from '../config/schema.ts';
import { loadSeedConfig } from '../config/seed-config.ts';
import { createDatasets, datasetIntegrityCheck, type Datasets } from '../datasets/index.ts';
import { isSeedError } from '../errors.ts';
import { DEFAULT_STORE_URL, openStore, type Store } from '../store/index.ts';
import { loadTermsRegistry, type TermsRegistry } from '../terms/index.ts';

/** Options every compliance command accepts. */
export interface ComplianceOptions {
  config?: string;
  store?: string;
  actor?: string;
}

export interface Compliance {
  readonly store: Store;
  readonly registry: TermsRegistry;
  readonly audit: AuditLog;
  readonly datasets: Datasets;
  readonly actor: string;
}

/** The config, if one is given (`--config`, SEED_CONFIG) or `./seed.yaml` exists. */
export function loadConfig(options: Pick<ComplianceOptions, 'config'>): SeedConfig | null {
  const path = options.config ?? process.env['SEED_CONFIG'];
  if (path === undefined && !existsSync(resolve('seed.yaml'))) return null;
  return loadSeedConfig({ ...(path === undefined ? {} : { path }) }).config;
}

/** `store.url` from the config, read defensively: the `store:` section is being added to the schema. */
function configuredStoreUrl(config: SeedConfig | null): string | undefined {
  const section: unknown = config === null ? undefined : (config as Record<string, unknown>)['store'];
  if (section === null || typeof section !== 'object') return undefined;
  const url: unknown = (section as Record<string, unknown>)['url'];
  return typeof url === 'string' ? url : undefined;
}

/** The store to use: `--store`, SEED_STORE_URL, the config's `store.url`, else `sqlite:./data/seed.db`. */
export function storeUrlFor(options: Pick<ComplianceOptions, 'store'>, config: SeedConfig | null): string {
  return options.store ?? process.env['SEED_STORE_URL'] ?? configuredStoreUrl(config) ?? DEFAULT_STORE_URL;
}

/** The terms registry alone (for `seed terms`, which needs no store). */
export function loadRegistry(options: ComplianceOptions): TermsRegistry {
  const config = loadConfig(options);
  return loadTermsRegistry(config === null ? {} : { overrides: config.terms.profiles, confirmed: config.terms.confirmed });
}

/**
 * Runs `work` with the store open, closes it after, and turns Seed's errors into a message and
 * exit code 1 instead of a stack trace.
 */
export async function withCompliance(options: ComplianceOptions, work: (compliance: Compliance) => Promise<void>): Promise<void> {
  let store: Store | undefined;
  try {
    const config = loadConfig(options);
    const registry = loadTermsRegistry(config === null ? {} : { overrides: config.terms.profiles, confirmed: config.terms.confirmed });
    store = await openStore({ url: storeUrlFor(options, config) });
    const audit = createAuditLog({ store, checks: [datasetIntegrityCheck({ store })] });
    const actor = options.actor ?? process.env['SEED_ACTOR'] ?? `cli:${userInfo().username}`;
    await work({ store, registry, audit, datasets: createDatasets({ store, registry, audit }), actor });
  } catch (error) {
    exitOnKnownError(error);
  } finally {
    await store?.close();
  }
}

/** Prints a SeedError or a config error and exits 1; rethrows anything else. */
export function exitOnKnownError(error: unknown): void {
  if (isSeedError(error) || error instanceof ConfigError || (error instanceof Error && error.name === 'TermsRegistryError')) {
    process.stderr.write(`seed: ${error.message}\n`);
    process.exitCode = 1;
    return;
  }
  throw error;
}

/** Adds `--store`, `--config` and `--actor` to a command. */
export function withComplianceOptions(command: Command): Command {
  return command
    .option('--store <url>', 'store URL (also SEED_STORE_URL; default: store.url in seed.yaml, else sqlite:./data/seed.db)')
    .option('-c, --config <file>', 'config file for the terms section and store (also SEED_CONFIG; default ./seed.yaml if present)')
    .option('--actor <name>', 'who to record in the audit log (also SEED_ACTOR; default cli:<user>)');
}
