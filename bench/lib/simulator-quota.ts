/**
 * The quota the bench's simulator reports by default (bench/servers/simulator.ts), in a module of
 * its own: that server starts a simulator when imported, so code that only needs the options
 * (the paced scenario) imports them from here.
 */
import type { SimulatorOptions } from '../../src/simulator/index.ts';

/** A quota no benchmark reaches: 10⁹ requests and 10¹² tokens a minute. */
export const REPORTED_QUOTA: SimulatorOptions = { defaults: { limits: { rpm: 1_000_000_000, tpm: 1_000_000_000_000 } } };
