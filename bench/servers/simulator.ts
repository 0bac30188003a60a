/** The provider simulator alone, on an ephemeral loopback port, with zero latency (its default). */
import { startSimulator } from '../../src/simulator/index.ts';
import { announceReady, exitOnSignals } from './ready.ts';

const simulator = await startSimulator({ host: '127.0.0.1', port: 0 });
exitOnSignals(() => simulator.close());
announceReady(simulator.url);
