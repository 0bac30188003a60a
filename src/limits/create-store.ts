/** Builds the configured limit store. */
import type { LimitStoreConfig } from './config.ts';
import { MemoryLimitStore } from './memory-store.ts';
import { createRedisClient, RedisLimitStore } from './redis-store.ts';
import type { LimitStore } from './types.ts';

/**
 * @example
 * const config = limitStoreConfigSchema.parse(seedYaml.limits ?? { store: 'memory' });
 * const store = createLimitStore(config);
 * const limiter = new Limiter({ store, onUnavailable: config.store === 'redis' ? config.onUnavailable : 'closed' });
 */
export function createLimitStore(config: LimitStoreConfig): LimitStore {
  if (config.store === 'memory') return new MemoryLimitStore();
  return new RedisLimitStore({ client: createRedisClient({ url: config.url }), keyPrefix: config.keyPrefix });
}
