/**
 * Seed as `seed serve` runs it, on an ephemeral loopback port: `node bin/run-ts.mjs
 * bench/servers/seed.ts CONFIG.yaml`. The config is the file the benchmark generated.
 */
import { readFileSync } from 'node:fs';
import { parseConfig } from '../../src/config/load.ts';
import { providerChecks } from '../../src/config/seed-config.ts';
import { createLogger, silentLogger } from '../../src/log.ts';
import { startSeed } from '../../src/main.ts';
import { announceReady, exitOnSignals } from './ready.ts';

const file = process.argv[2];
if (!file) throw new Error('usage: bench/servers/seed.ts CONFIG.yaml');
const config = parseConfig(readFileSync(file, 'utf8'), { file, env: process.env, checks: providerChecks });
// SEED_BENCH_LOG=1: Seed's own log on stderr (the benchmark shows its tail when something is lost).
const logger = process.env['SEED_BENCH_LOG'] === '1' ? createLogger() : silentLogger;
const seed = await startSeed({ config, logger, host: '127.0.0.1', port: 0 });
exitOnSignals(() => seed.close());
announceReady(seed.url);
