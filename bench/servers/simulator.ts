/**
 * The provider simulator alone, on an ephemeral loopback port, with zero latency (its default).
 * SEED_BENCH_SIMULATOR may hold its options as JSON (limits, latency) for scenarios that need them.
 */
import { startSimulator, type SimulatorOptions } from '../../src/simulator/index.ts';
import { announceReady, exitOnSignals } from './ready.ts';

const options = JSON.parse(process.env['SEED_BENCH_SIMULATOR'] ?? '{}') as SimulatorOptions;
const simulator = await startSimulator({ ...options, host: '127.0.0.1', port: 0 });
exitOnSignals(() => simulator.close());
announceReady(simulator.url);
