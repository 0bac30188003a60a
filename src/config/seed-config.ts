/**
 * Finding and loading Seed's config, with the checks that need the provider registry.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUILTIN_PROVIDERS } from '../providers/registry.ts';
import { loadTermsRegistry, TermsRegistryError } from '../terms/registry.ts';
import { loadConfigFile, type PathSegment } from './load.ts';
import type { SeedConfig } from './schema.ts';

export const EXAMPLE_CONFIG = fileURLToPath(new URL('../../config/example.seed.yaml', import.meta.url));

/** Checks that need the provider registry: known provider names and valid adapter options. */
export function providerChecks(config: SeedConfig): Array<{ path: PathSegment[]; message: string }> {
  const problems: Array<{ path: PathSegment[]; message: string }> = [];
  const known = new Map(BUILTIN_PROVIDERS.map((definition) => [definition.name, definition]));
  for (const [name, deployment] of Object.entries(config.deployments)) {
    const definition = known.get(deployment.provider);
    if (!definition) {
      problems.push({
        path: ['deployments', name, 'provider'],
        message: `unknown provider "${deployment.provider}" (known: ${[...known.keys()].join(', ')})`,
      });
      continue;
    }
    const options = definition.optionsSchema.safeParse(deployment.options);
    if (!options.success) {
      for (const issue of options.error.issues) {
        const path = issue.path.filter((segment): segment is PathSegment => typeof segment !== 'symbol');
        problems.push({ path: ['deployments', name, 'options', ...path], message: issue.message });
      }
    }
  }
  problems.push(...termsChecks(config));
  return problems;
}

/** The operator's terms section loads, and every deployment resolves to a known profile. */
function termsChecks(config: SeedConfig): Array<{ path: PathSegment[]; message: string }> {
  let registry;
  try {
    registry = loadTermsRegistry({ overrides: config.terms.profiles, confirmed: config.terms.confirmed });
  } catch (error) {
    if (error instanceof TermsRegistryError) {
      return error.problems.map((problem) => ({ path: ['terms', ...problem.path], message: problem.message }));
    }
    throw error;
  }
  const problems: Array<{ path: PathSegment[]; message: string }> = [];
  const known = new Map(BUILTIN_PROVIDERS.map((definition) => [definition.name, definition]));
  for (const [name, deployment] of Object.entries(config.deployments)) {
    const terms = deployment.terms ?? known.get(deployment.provider)?.defaultTerms;
    if (terms === undefined) {
      if (known.has(deployment.provider)) {
        problems.push({
          path: ['deployments', name],
          message: `name the terms profile of this deployment's outputs (terms: in-house, llama-3.1, qwen, … — see seed terms list)`,
        });
      }
    } else if (!registry.get(terms)) {
      problems.push({
        path: ['deployments', name, 'terms'],
        message: `unknown terms profile "${terms}" (known: ${registry.list().map((profile) => profile.id).join(', ')})`,
      });
    }
  }
  return problems;
}

export interface LoadedConfig {
  config: SeedConfig;
  path: string;
  /** True when no config was given and the bundled example (simulator-backed) is used. */
  isExample: boolean;
}

/**
 * Finds and loads the config: an explicit path, else `./seed.yaml`, else the bundled example.
 * Throws ConfigError with every problem and its line.
 */
export function loadSeedConfig(input: { path?: string; cwd?: string; env?: NodeJS.ProcessEnv } = {}): LoadedConfig {
  const cwd = input.cwd ?? process.cwd();
  const explicit = input.path ?? input.env?.SEED_CONFIG;
  const local = resolve(cwd, 'seed.yaml');
  const path = explicit ? resolve(cwd, explicit) : existsSync(local) ? local : EXAMPLE_CONFIG;
  const config = loadConfigFile(path, { env: input.env ?? process.env, checks: providerChecks });
  return { config, path, isExample: path === EXAMPLE_CONFIG };
}

