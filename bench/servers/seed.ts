/**
 * Seed as `seed serve` runs it, on an ephemeral loopback port: `node bin/run-ts.mjs
 * bench/servers/seed.ts CONFIG.yaml`. The config is the file the benchmark generated. Seed itself
 * is loaded from dist/ (the compiled build users run; `npm run bench` builds it first), so the
 * numbers carry no TypeScript-loader cost; SEED_FROM_SOURCE=1 loads src/ through tsx instead.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { announceReady, collectGarbageOnSignal, exitOnSignals } from './ready.ts';

type Module<T> = { default?: unknown } & T;
const root = resolve(import.meta.dirname, '..', '..');
const fromSource = process.env['SEED_FROM_SOURCE'] === '1';
// This script runs through tsx's loader, which turns Node's source maps on for every module
// loaded after it; `npm start` runs dist/ without them. Left on, the benchmarked Seed mapped the
// stack of every error it made through dist/'s source maps (a profile showed a 21 ms stall parsing
// them when the load generator dropped its connections), where a production Seed does not.
if (!fromSource) process.setSourceMapsEnabled(false);
const load = async <T>(path: string): Promise<Module<T>> => {
  const file = fromSource ? resolve(root, 'src', `${path}.ts`) : resolve(root, 'dist', `${path}.js`);
  if (!existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` (or set SEED_FROM_SOURCE=1)`);
  return (await import(pathToFileURL(file).href)) as Module<T>;
};

const { parseConfig } = await load<typeof import('../../src/config/load.ts')>('config/load');
const { providerChecks } = await load<typeof import('../../src/config/seed-config.ts')>('config/seed-config');
const { createLogger, silentLogger } = await load<typeof import('../../src/log.ts')>('log');
const { startSeed } = await load<typeof import('../../src/main.ts')>('main');

const file = process.argv[2];
if (!file) throw new Error('usage: bench/servers/seed.ts CONFIG.yaml');
const config = parseConfig(readFileSync(file, 'utf8'), { file, env: process.env, checks: providerChecks });
// SEED_BENCH_LOG=1: Seed's own log on stderr (the benchmark shows its tail when something is lost).
const logger = process.env['SEED_BENCH_LOG'] === '1' ? createLogger() : silentLogger;
const seed = await startSeed({ config, logger, host: '127.0.0.1', port: 0 });
exitOnSignals(() => seed.close());
collectGarbageOnSignal();
announceReady(seed.url);
