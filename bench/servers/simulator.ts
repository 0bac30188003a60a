/**
 * The provider simulator alone, on an ephemeral loopback port, with zero latency (its default).
 * SEED_BENCH_SIMULATOR may hold its options as JSON (limits, latency) for scenarios that need them.
 *
 * By default every model has a quota far above any load the benchmark makes, so every answer
 * carries `x-ratelimit-*` headers as OpenAI's (and Azure's, and Anthropic's) do: a gateway that
 * reads them pays for that on every call in production, and so it does here.
 * `SEED_BENCH_SIMULATOR='{}'` measures an upstream that reports nothing.
 */
import { startSimulator, type SimulatorOptions } from '../../src/simulator/index.ts';
import { REPORTED_QUOTA } from '../lib/simulator-quota.ts';
import { announceReady, exitOnSignals } from './ready.ts';

const options = (process.env['SEED_BENCH_SIMULATOR'] ? JSON.parse(process.env['SEED_BENCH_SIMULATOR']) : REPORTED_QUOTA) as SimulatorOptions;
const simulator = await startSimulator({ ...options, host: '127.0.0.1', port: 0 });
exitOnSignals(() => simulator.close());
announceReady(simulator.url);
