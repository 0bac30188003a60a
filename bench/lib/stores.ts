/**
 * The servers the benchmark's production-shaped Seeds use: PostgreSQL for the store (ledger,
 * keys), Redis for the limits. The machine's own by default (the brief's 127.0.0.1:5432 `test`
 * and 127.0.0.1:6379); every run keeps to a schema and a key prefix of its own.
 */
import pg from 'pg';
import { createRedisClient, waitForRedis } from '../../src/limits/redis-store.ts';

export const POSTGRES_URL = process.env['SEED_BENCH_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS_URL = process.env['SEED_BENCH_REDIS_URL'] ?? 'redis://127.0.0.1:6379';

/** A key prefix no other run shares, for a Seed's limits in Redis. */
export function redisKeyPrefix(): string {
  return `seed:bench:${process.pid}:${Date.now()}:${Math.random().toString(36).slice(2, 8)}:`;
}

export interface ThrowawaySchema {
  schema: string;
  /** A client on the benchmark's database, for counting rows and the like. */
  admin: pg.Client;
  /** `base` (the benchmark's database by default) with the schema first on the search_path: Seed's store URL. */
  storeUrl(base?: URL): string;
  /** Drops the schema and closes `admin`; never throws. */
  drop(): Promise<void>;
}

/** A schema of its own in the benchmark's PostgreSQL database (`name` in its name), dropped by `drop`. */
export async function throwawaySchema(name: string): Promise<ThrowawaySchema> {
  const schema = `seed_bench_${name}_${process.pid}_${Date.now()}`;
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE SCHEMA ${schema}`);
  } catch (error) {
    await admin.end().catch(() => undefined);
    throw error;
  }
  return {
    schema,
    admin,
    storeUrl(base = new URL(POSTGRES_URL)) {
      const url = new URL(base);
      url.searchParams.set('options', `-c search_path=${schema}`);
      return url.toString();
    },
    async drop() {
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
      await admin.end().catch(() => undefined);
    },
  };
}

/**
 * Why the production stores cannot be used in this run (the first of PostgreSQL and Redis that
 * does not answer within `timeoutMs`, and what it said), or undefined when both answer.
 */
export async function productionStoresUnavailable(input: { postgresUrl?: string; redisUrl?: string; timeoutMs?: number } = {}): Promise<string | undefined> {
  const timeoutMs = input.timeoutMs ?? 2_000;
  const postgresUrl = input.postgresUrl ?? POSTGRES_URL;
  const redisUrl = input.redisUrl ?? REDIS_URL;
  const client = new pg.Client({ connectionString: postgresUrl, connectionTimeoutMillis: timeoutMs });
  try {
    await client.connect();
    await client.query('SELECT 1');
  } catch (error) {
    return `PostgreSQL at ${redacted(postgresUrl)} did not answer: ${(error as Error).message}`;
  } finally {
    await client.end().catch(() => undefined);
  }
  // The client Seed's limits use, so the answer is the one Seed would get.
  const redis = createRedisClient({ url: redisUrl, commandTimeoutMs: timeoutMs });
  try {
    await waitForRedis({ client: redis, timeoutMs });
    await redis.ping();
  } catch (error) {
    return `Redis at ${redacted(redisUrl)} did not answer: ${(error as Error).message}`;
  } finally {
    redis.disconnect();
  }
  return undefined;
}

/** `url` without its password, for a report. */
function redacted(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url;
  }
}
