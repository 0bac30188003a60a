/**
 * The databases a store or ledger suite runs against: SQLite always, PostgreSQL when reachable
 * at `SEED_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`). When it is
 * not reachable the PostgreSQL suites are skipped with the reason — except under `CI`, where
 * a missing database must fail the run rather than quietly test half the code.
 *
 * Each `createDatabase()` is isolated: a fresh SQLite file in a temporary directory, or a fresh
 * PostgreSQL schema (`seed_test_<random>`, via search_path), removed by `dispose()`. Test files
 * run in parallel, so nothing is shared.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { sql } from 'kysely';
import pg from 'pg';
import type { CallRecord } from '../../src/ledger/types.ts';
import { openStore, type OpenStoreOptions, type Store } from '../../src/store/index.ts';

export const POSTGRES_URL = process.env['SEED_TEST_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

/** One isolated database for one test. */
export interface TestDatabase {
  /** Pass to `openStore` (as many times as the test likes: it is the same database each time). */
  storeOptions: OpenStoreOptions & { url: string };
  /** Removes the database (file or schema). Close stores first. */
  dispose(): Promise<void>;
}

export interface Backend {
  name: 'sqlite' | 'postgres';
  /** A reason to skip this backend's suite, or false to run it. */
  skip: string | false;
  createDatabase(): Promise<TestDatabase>;
}

const sqlite: Backend = {
  name: 'sqlite',
  skip: false,
  async createDatabase() {
    const directory = mkdtempSync(join(tmpdir(), 'seed-store-'));
    return {
      storeOptions: { url: `sqlite:${join(directory, 'seed.db')}` },
      async dispose() {
        rmSync(directory, { recursive: true, force: true });
      },
    };
  },
};

const postgres = (skip: string | false): Backend => ({
  name: 'postgres',
  skip,
  async createDatabase() {
    const schema = `seed_test_${randomBytes(6).toString('hex')}`;
    return {
      // openStore creates the schema; small pools keep many parallel suites under max_connections.
      storeOptions: { url: POSTGRES_URL, schema, poolSize: 4 },
      async dispose() {
        const client = new pg.Client({ connectionString: POSTGRES_URL });
        await client.connect();
        try {
          await client.query(`drop schema if exists ${schema} cascade`);
        } finally {
          await client.end();
        }
      },
    };
  },
});

async function postgresUnreachableReason(): Promise<string | null> {
  const client = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('select 1');
    return null;
  } catch (error) {
    return `PostgreSQL unreachable at ${POSTGRES_URL.replace(/:[^:@/]*@/, ':***@')} (${(error as Error).message}); set SEED_TEST_POSTGRES_URL`;
  } finally {
    await client.end().catch(() => {});
  }
}

let resolved: Promise<Backend[]> | null = null;

/**
 * The backends to run a suite against. Throws under `CI` when PostgreSQL is unreachable.
 *
 * @example
 * for (const backend of await testBackends()) {
 *   describe(`store (${backend.name})`, { skip: backend.skip }, () => { … });
 * }
 */
/**
 * For a describe block: a fresh database and a store on it before its tests (handed to `opened`,
 * which assigns the suite's own variables), both closed after.
 *
 * @example
 * let store: Store;
 * storePerSuite(backend, (opened) => ({ store } = opened));
 */
export function storePerSuite(backend: Pick<Backend, 'createDatabase'>, opened: (fixture: { database: TestDatabase; store: Store }) => void): void {
  let fixture: { database: TestDatabase; store: Store } | undefined;
  before(async () => {
    const database = await backend.createDatabase();
    fixture = { database, store: await openStore(database.storeOptions) };
    opened(fixture);
  });
  after(async () => {
    await fixture?.store.close();
    await fixture?.database.dispose();
  });
}

/** How many ledger rows a team has in `store`. */
export async function countCalls({ store, teamId }: { store: Store; teamId: string }): Promise<number> {
  const row = await store.db
    .selectFrom('calls')
    .select(sql<number>`count(*)`.as('count'))
    .where('team_id', '=', teamId)
    .executeTakeFirstOrThrow();
  return Number(row.count);
}

export function testBackends(): Promise<Backend[]> {
  resolved ??= (async () => {
    const reason = await postgresUnreachableReason();
    if (reason !== null && process.env['CI']) {
      throw new Error(`${reason} — CI is set, so PostgreSQL is required`);
    }
    if (reason !== null) console.warn(`skipping PostgreSQL suites: ${reason}`);
    return [sqlite, postgres(reason ?? false)];
  })();
  return resolved;
}

/** A complete, valid call record; `overrides` replace fields. */
export function makeCall(overrides: Partial<CallRecord> = {}): CallRecord {
  return {
    id: `call_${randomBytes(8).toString('hex')}`,
    clientRequestId: null,
    startedAt: Date.UTC(2025, 5, 1, 12),
    endpoint: 'chat.completions',
    route: 'chat',
    servedRoute: 'chat',
    deployment: 'openai-east',
    provider: 'openai',
    model: 'gpt-4o-mini',
    region: 'us',
    purpose: 'serve',
    termsProfile: 'openai',
    termsVersion: '2025-01',
    orgId: 'org_1',
    teamId: 'team_1',
    keyId: 'key_1',
    status: 'ok',
    httpStatus: 200,
    errorCode: null,
    stream: false,
    attempts: 1,
    promptTokens: 100,
    completionTokens: 20,
    cachedTokens: 0,
    usageReported: true,
    costUsd: 0.000027,
    latencyMs: 250,
    ttftMs: null,
    metadata: null,
    payload: null,
    ...overrides,
  };
}
