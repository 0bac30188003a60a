/**
 * The state one simulator instance shares across requests: frozen options, resolved
 * per-model options (cached), stats, limiter, faults and the id counter.
 */
import { randomBytes } from 'node:crypto';
import { FaultBook } from './faults.ts';
import { RateLimiter } from './limits.ts';
import { resolveModelOptions, type ParsedSimulatorOptions, type ResolvedModelOptions } from './options.ts';
import { StatsRecorder } from './stats.ts';

export interface SimulatorContext {
  readonly options: ParsedSimulatorOptions;
  readonly stats: StatsRecorder;
  readonly limiter: RateLimiter;
  readonly faults: FaultBook;
  /** Options of a model (Azure: deployment), defaults applied; resolved once per key. */
  modelOptions(key: string): ResolvedModelOptions;
  /** A unique id suffix: 8 random hex characters per instance, then a counter. */
  nextId(): string;
}

export function createContext(options: ParsedSimulatorOptions): SimulatorContext {
  const resolved = new Map<string, ResolvedModelOptions>();
  const prefix = randomBytes(4).toString('hex');
  let counter = 0;
  return {
    options,
    stats: new StatsRecorder(),
    limiter: new RateLimiter(),
    faults: new FaultBook(options.seed),
    modelOptions(key) {
      let found = resolved.get(key);
      if (found === undefined) {
        found = resolveModelOptions({ options, key });
        // Clients choose model names; cap the cache so arbitrary names cannot grow it forever.
        if (resolved.size < 10_000) resolved.set(key, found);
      }
      return found;
    },
    nextId() {
      counter += 1;
      return `${prefix}${counter.toString(36).padStart(12, '0')}`;
    },
  };
}
