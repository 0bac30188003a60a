/**
 * Every limits test runs against every store: memory always, Redis at SEED_TEST_REDIS_URL
 * (default redis://127.0.0.1:6379) when reachable. Unreachable Redis skips with the reason —
 * except under CI, where it fails, so a broken CI service cannot turn the suite green.
 * Each Redis store gets a random key prefix (test files run in parallel) and cleans it up.
 */
import { randomUUID } from 'node:crypto';
import { MemoryLimitStore } from '../../src/limits/memory-store.ts';
import { createRedisClient, RedisLimitStore, waitForRedis } from '../../src/limits/redis-store.ts';
import type { LimitStore, ReserveResult } from '../../src/limits/types.ts';

export const REDIS_URL = process.env.SEED_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface StoreHandle {
  readonly store: LimitStore;
  /** Another store over the same state (another replica); memory returns the same store. */
  sibling(): Promise<LimitStore>;
  /** For child processes: how to open the same state. */
  readonly redisPrefix: string | null;
  cleanup(): Promise<void>;
}

export interface StoreBackend {
  readonly name: 'memory' | 'redis';
  /** A skip reason, or false to run. */
  readonly skip: string | false;
  open(options?: { now?: () => number }): Promise<StoreHandle>;
}

/** A clock tests move by hand. */
/** What a reserve's result says is left of bucket `id`, in the bucket's unit (undefined: not reported). */
export function remainingOf(result: ReserveResult, id: string): number | undefined {
  return result.statuses.find((status) => status.bucket.id === id)?.remaining;
}

export class ManualClock {
  current: number;
  constructor(start: number | string) {
    this.current = typeof start === 'string' ? Date.parse(start) : start;
  }
  readonly now = (): number => this.current;
  advance(milliseconds: number): void {
    this.current += milliseconds;
  }
}

async function probeRedis(): Promise<string | false> {
  const client = createRedisClient({ url: REDIS_URL });
  try {
    await waitForRedis({ client, timeoutMs: 1_500 });
    await client.ping();
    return false;
  } catch (error) {
    const reason = `Redis at ${REDIS_URL} is unreachable (${error instanceof Error ? error.message : String(error)}); set SEED_TEST_REDIS_URL to run the Redis store tests`;
    if (process.env.CI) throw new Error(`CI is set, so an unreachable Redis fails the run: ${reason}`);
    console.log(`# skip: ${reason}`);
    return reason;
  } finally {
    client.disconnect();
  }
}

export async function openRedisStore({ prefix, now }: { prefix: string; now?: () => number }): Promise<RedisLimitStore> {
  const client = createRedisClient({ url: REDIS_URL });
  await waitForRedis({ client });
  return new RedisLimitStore({ client, keyPrefix: prefix, ...(now === undefined ? {} : { now }) });
}

export async function limitStoreBackends({ file }: { file: string }): Promise<StoreBackend[]> {
  const redisSkip = await probeRedis();
  const filePrefix = `seed-test:${file}:${randomUUID().slice(0, 8)}:`;
  let counter = 0;
  return [
    {
      name: 'memory',
      skip: false,
      async open(options = {}) {
        const store = new MemoryLimitStore(options);
        return { store, sibling: async () => store, redisPrefix: null, cleanup: () => store.close() };
      },
    },
    {
      name: 'redis',
      skip: redisSkip,
      async open(options = {}) {
        counter += 1;
        const prefix = `${filePrefix}${counter}:`;
        const opened: RedisLimitStore[] = [await openRedisStore({ prefix, ...options })];
        return {
          store: opened[0] as RedisLimitStore,
          redisPrefix: prefix,
          async sibling() {
            const store = await openRedisStore({ prefix, ...options });
            opened.push(store);
            return store;
          },
          async cleanup() {
            const client = (opened[0] as RedisLimitStore).client;
            let cursor = '0';
            do {
              const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
              if (keys.length > 0) await client.del(...keys);
              cursor = next;
            } while (cursor !== '0');
            await Promise.all(opened.map((store) => store.close()));
          },
        };
      },
    },
  ];
}
