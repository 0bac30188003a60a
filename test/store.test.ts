import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { openStore, MIGRATIONS, type Store, type UsageDimension, type UsageQuery, type UsageRow } from '../src/store/index.ts';
import type { CallRecord } from '../src/ledger/types.ts';
import { isSeedError } from '../src/errors.ts';
import pg from 'pg';
import { makeCall, POSTGRES_URL, storePerSuite, testBackends, type TestDatabase } from './helpers/backends.ts';

const DAY = 86_400_000;
const START = Date.UTC(2025, 0, 1);

/** Deterministic pseudo-random numbers (mulberry32), so a failure reproduces. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let value = Math.imul(state ^ (state >>> 15), 1 | state);
    value = (value + Math.imul(value ^ (value >>> 7), 61 | value)) ^ value;
    return ((value ^ (value >>> 14)) >>> 0) / 4294967296;
  };
}

function pick<T>(next: () => number, values: readonly T[]): T {
  return values[Math.floor(next() * values.length)] as T;
}

function generateCalls({ count, days, seed }: { count: number; days: number; seed: number }): CallRecord[] {
  const next = random(seed);
  return Array.from({ length: count }, (_, index) => {
    const team = pick(next, ['team_a', 'team_b', 'team_c', null]);
    const promptTokens = Math.floor(next() * 2000);
    return makeCall({
      id: `call_${seed}_${index}`,
      startedAt: START + Math.floor(next() * days * DAY),
      route: pick(next, ['chat', 'fast', 'embed']),
      deployment: pick(next, ['east', 'west', null]),
      provider: pick(next, ['openai', 'anthropic']),
      model: pick(next, ['gpt-4o', 'claude-sonnet-4', null]),
      orgId: team === null ? null : pick(next, ['org_1', 'org_2']),
      teamId: team,
      keyId: team === null ? null : `${team}_key_${Math.floor(next() * 3)}`,
      status: pick(next, ['ok', 'ok', 'ok', 'error', 'aborted'] as const),
      promptTokens,
      completionTokens: Math.floor(next() * 500),
      cachedTokens: Math.floor(next() * promptTokens),
      costUsd: Math.round(next() * 1e6) / 1e8,
      latencyMs: Math.round(next() * 5000),
    });
  });
}

const DIMENSION_OF: Record<UsageDimension, (call: CallRecord) => string | number | null> = {
  team: (call) => call.teamId,
  key: (call) => call.keyId,
  route: (call) => call.route,
  deployment: (call) => call.deployment,
  day: (call) => Math.floor(call.startedAt / DAY) * DAY,
  org: (call) => call.orgId,
  model: (call) => call.model,
  provider: (call) => call.provider,
};

/** What `usage` must return, computed in plain JavaScript. */
function expectedUsage(calls: CallRecord[], query: UsageQuery): Map<string, UsageRow> {
  const groups = new Map<string, UsageRow>();
  for (const call of calls) {
    if (call.startedAt < query.since || call.startedAt >= query.until) continue;
    if (query.teamId !== undefined && call.teamId !== query.teamId) continue;
    const key = JSON.stringify(query.groupBy.map((dimension) => DIMENSION_OF[dimension](call)));
    const row = groups.get(key) ?? {
      requests: 0, errors: 0, aborted: 0, promptTokens: 0, completionTokens: 0, cachedTokens: 0,
      costUsd: 0, avgLatencyMs: 0, maxLatencyMs: 0,
    };
    row.avgLatencyMs = (row.avgLatencyMs * row.requests + call.latencyMs) / (row.requests + 1);
    row.requests += 1;
    row.errors += call.status === 'error' ? 1 : 0;
    row.aborted += call.status === 'aborted' ? 1 : 0;
    row.promptTokens += call.promptTokens;
    row.completionTokens += call.completionTokens;
    row.cachedTokens += call.cachedTokens;
    row.costUsd += call.costUsd;
    row.maxLatencyMs = Math.max(row.maxLatencyMs, call.latencyMs);
    groups.set(key, row);
  }
  return groups;
}

function assertClose(actual: number, expected: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= 1e-9 * Math.max(1, Math.abs(expected)), `${what}: ${actual} ≠ ${expected}`);
}

async function countCalls(store: Store): Promise<number> {
  const row = await store.db.selectFrom('calls').select(sql<number>`count(*)`.as('count')).executeTakeFirstOrThrow();
  return Number(row.count);
}

/** Opens (and so migrates) the store in a separate Node process; returns the migrations it applied. */
function openInChild(database: TestDatabase): Promise<string[]> {
  const script = `const { openStore } = await import(process.argv[1]);
    const store = await openStore(JSON.parse(process.argv[2]));
    console.log(JSON.stringify(store.appliedMigrations));
    await store.close();`;
  const storeModule = new URL('../src/store/index.ts', import.meta.url).pathname;
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script, storeModule, JSON.stringify(database.storeOptions)],
      (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(JSON.parse(stdout) as string[])),
    );
  });
}

for (const backend of await testBackends()) {
  describe(`store (${backend.name})`, { skip: backend.skip }, () => {
    test('migrations apply once, then are a no-op; two processes starting at once apply each migration once', async () => {
      const database = await backend.createDatabase();
      try {
        // Real processes, because that is the race (replicas starting together) and because
        // SQLite's file lock would block this process's own event loop if both opened here.
        const applied = (await Promise.all([openInChild(database), openInChild(database)])).flat().sort();
        assert.deepEqual(applied, Object.keys(MIGRATIONS).sort());
        const again = await openStore(database.storeOptions);
        assert.deepEqual(again.appliedMigrations, []);
        const recorded = await again.db
          .selectFrom(sql`kysely_migration`.as('migration'))
          .select(sql<string>`name`.as('name'))
          .execute();
        assert.deepEqual(recorded.map((row) => row.name).sort(), Object.keys(MIGRATIONS).sort());
        await again.close();
      } finally {
        await database.dispose();
      }
    });

    if (backend.name === 'postgres') {
      test('a store opens while another client creates and drops schemas in the same database', async () => {
        // kysely's own introspection read every schema and failed when one was dropped under it:
        // 11 of 20 opens failed against this churn (src/store/migrate.ts, SchemaIntrospector).
        const churn = new pg.Client({ connectionString: POSTGRES_URL });
        await churn.connect();
        let churning = true;
        const loop = (async () => {
          for (let round = 0; churning; round++) {
            const name = `seed_churn_${process.pid}_${round}`;
            await churn.query(`create schema ${name}; create table ${name}.t (a int); create table ${name}.u (b text)`);
            await churn.query(`drop schema ${name} cascade`);
          }
        })();
        const failures: string[] = [];
        try {
          for (let index = 0; index < 12; index++) {
            const database = await backend.createDatabase();
            try {
              const store = await openStore(database.storeOptions);
              assert.deepEqual([...store.appliedMigrations].sort(), Object.keys(MIGRATIONS).sort());
              await store.close();
            } catch (error) {
              failures.push(String(error).slice(0, 200));
            } finally {
              await database.dispose();
            }
          }
        } finally {
          churning = false;
          await loop;
          await churn.end();
        }
        assert.deepEqual(failures, []);
      });
    }

    if (backend.name === 'postgres') {
      test("a store opens in a database where another application keeps kysely's migration tables in its own schema", async () => {
        // Without a schema of its own the store migrates in current_schema(); kysely used to take
        // the other application's migration tables for its own and fail to start
        // ('relation "kysely_migration_lock" does not exist').
        const admin = new pg.Client({ connectionString: POSTGRES_URL });
        await admin.connect();
        const name = `seed_test_db_${process.pid}_${Date.now()}`;
        await admin.query(`create database ${name}`);
        try {
          const url = new URL(POSTGRES_URL);
          url.pathname = `/${name}`;
          const other = new pg.Client({ connectionString: url.toString() });
          await other.connect();
          await other.query(`
            create schema other_app;
            create table other_app.kysely_migration (name varchar(255) primary key, timestamp varchar(255) not null);
            create table other_app.kysely_migration_lock (id varchar(255) primary key, is_locked integer default 0 not null);
            insert into other_app.kysely_migration values ('2024_01_01_other_app', '2024-01-01T00:00:00.000Z');
            insert into other_app.kysely_migration_lock values ('migration_lock', 0)`);
          await other.end();
          const store = await openStore({ url: url.toString(), poolSize: 2 });
          try {
            assert.deepEqual([...store.appliedMigrations].sort(), Object.keys(MIGRATIONS).sort());
          } finally {
            await store.close();
          }
        } finally {
          await admin.query(`drop database if exists ${name} with (force)`);
          await admin.end();
        }
      });
    }

    describe('with a migrated store', () => {
      let database: TestDatabase;
      let store: Store;
      storePerSuite(backend, (opened) => ({ database, store } = opened));

      test('a call round-trips field for field, numbers as numbers', async () => {
        const call = makeCall({
          id: 'roundtrip',
          clientRequestId: 'client-trace-1',
          startedAt: 1_750_000_000_123,
          stream: true,
          usageReported: false,
          status: 'error',
          httpStatus: 502,
          errorCode: 'upstream_error',
          ttftMs: 87.5,
          latencyMs: 1234.25,
          costUsd: 0.00123,
          metadata: { feature: 'search', user: 'u-1' },
          payload: { request: { messages: [{ role: 'user', content: 'hi' }] }, response: { id: 'x' } },
        });
        await store.insertCalls([call]);
        assert.deepEqual(await store.getCall('roundtrip'), call);
        assert.equal(await store.getCall('missing'), null);
      });

      test('insertCalls is idempotent per call id', async () => {
        const calls = Array.from({ length: 1200 }, (_, index) => makeCall({ id: `idem_${index}`, teamId: 'idem' }));
        assert.deepEqual(await store.insertCalls(calls.slice(0, 700)), { inserted: 700 });
        // Overlapping replay: the first 700 already exist, so only 500 are new.
        assert.deepEqual(await store.insertCalls(calls), { inserted: 500 });
        assert.deepEqual(await store.insertCalls(calls), { inserted: 0 });
        const stored = await store.db.selectFrom('calls').select('id').where('team_id', '=', 'idem').execute();
        assert.equal(stored.length, 1200);
        // A changed record with a known id does not overwrite the first one.
        await store.insertCalls([{ ...(calls[0] as CallRecord), costUsd: 99 }]);
        assert.equal((await store.getCall('idem_0'))?.costUsd, (calls[0] as CallRecord).costUsd);
      });

      test('listCalls finds every call sent with one client request id', async () => {
        const shared = Array.from({ length: 3 }, (_, index) => makeCall({ id: `client_${index}`, clientRequestId: 'shared-trace', startedAt: 1_760_000_000_000 + index }));
        await store.insertCalls([...shared, makeCall({ id: 'client_other', clientRequestId: 'other-trace' }), makeCall({ id: 'client_none' })]);
        const page = await store.listCalls({ filters: { clientRequestId: 'shared-trace' } });
        assert.deepEqual(page.calls.map((call) => call.id), ['client_2', 'client_1', 'client_0']);
      });

      test('listCalls pages newest first through filtered calls, each exactly once', async () => {
        const calls = Array.from({ length: 57 }, (_, index) =>
          makeCall({
            id: `page_${String(index).padStart(3, '0')}`,
            // Pairs share a timestamp, so the id tie-break is exercised.
            startedAt: START + Math.floor(index / 2) * 1000,
            teamId: 'paging',
            status: index % 3 === 0 ? 'error' : 'ok',
          }),
        );
        await store.insertCalls(calls);
        const seen: string[] = [];
        let cursor: string | null = null;
        do {
          const page = await store.listCalls({ filters: { teamId: 'paging', status: 'ok' }, limit: 10, cursor });
          seen.push(...page.calls.map((call) => call.id));
          cursor = page.nextCursor;
        } while (cursor !== null);
        const expected = calls
          .filter((call) => call.status === 'ok')
          .sort((left, right) => right.startedAt - left.startedAt || (left.id < right.id ? 1 : -1))
          .map((call) => call.id);
        assert.deepEqual(seen, expected);
        await assert.rejects(store.listCalls({ cursor: 'not-a-cursor' }), (error) => isSeedError(error) && error.code === 'invalid_request');
        await assert.rejects(store.listCalls({ limit: 0 }), (error) => isSeedError(error) && error.code === 'invalid_request');
      });

      test('api_keys exists with a unique key_hash and store_payloads defaulting to false', async () => {
        const now = Date.now();
        await store.db.insertInto('orgs').values({ id: 'org_k', name: 'Org', created_at: now }).execute();
        await store.db.insertInto('teams').values({ id: 'team_k', org_id: 'org_k', name: 'Team', created_at: now }).execute();
        const key = {
          team_id: 'team_k', name: 'ci', key_hash: 'hash-1', key_prefix: 'sk-seed-ab', region: null,
          allowed_routes: JSON.stringify(['chat']), limits: null, budget: null, expires_at: null, revoked_at: null, created_at: now,
        };
        await store.db.insertInto('api_keys').values({ id: 'key_k1', ...key }).execute();
        const stored = await store.db.selectFrom('api_keys').selectAll().where('id', '=', 'key_k1').executeTakeFirstOrThrow();
        assert.equal(Boolean(stored.store_payloads), false);
        assert.equal(stored.created_at, now);
        await assert.rejects(store.db.insertInto('api_keys').values({ id: 'key_k2', ...key }).execute());
      });
    });

    test('usage matches a computed expectation for every grouping and filter', async () => {
      const database = await backend.createDatabase();
      const store = await openStore(database.storeOptions);
      try {
        const calls = generateCalls({ count: 3000, days: 10, seed: 7 });
        await store.insertCalls(calls);
        const queries: UsageQuery[] = [
          { groupBy: [], since: START, until: START + 10 * DAY },
          { groupBy: ['team'], since: START + 2 * DAY, until: START + 9 * DAY },
          { groupBy: ['day', 'route'], since: START, until: START + 10 * DAY },
          { groupBy: ['key', 'deployment'], since: START + DAY / 2, until: START + 3 * DAY, teamId: 'team_b' },
          { groupBy: ['org', 'model', 'provider'], since: START, until: START + 5 * DAY },
          { groupBy: ['team', 'key', 'route', 'deployment', 'day', 'org', 'model', 'provider'], since: START, until: START + 10 * DAY },
        ];
        for (const query of queries) {
          const rows = await store.usage(query);
          const expected = expectedUsage(calls, query);
          const label = JSON.stringify(query);
          assert.equal(rows.length, expected.size, `${label}: group count`);
          for (const row of rows) {
            const key = JSON.stringify(query.groupBy.map((dimension) => row[dimension] ?? null));
            const want = expected.get(key);
            assert.ok(want !== undefined, `${label}: unexpected group ${key}`);
            for (const metric of ['requests', 'errors', 'aborted', 'promptTokens', 'completionTokens', 'cachedTokens', 'maxLatencyMs'] as const) {
              assert.equal(row[metric], want[metric], `${label} ${key}: ${metric}`);
            }
            assertClose(row.costUsd, want.costUsd, `${label} ${key}: costUsd`);
            assertClose(row.avgLatencyMs, want.avgLatencyMs, `${label} ${key}: avgLatencyMs`);
          }
        }
        assert.deepEqual(await store.usage({ groupBy: ['team'], since: START + 20 * DAY, until: START + 30 * DAY }), []);
        await assert.rejects(
          store.usage({ groupBy: ['colour' as UsageDimension], since: 0, until: 1 }),
          (error) => isSeedError(error) && error.code === 'invalid_request',
        );
      } finally {
        await store.close();
        await database.dispose();
      }
    });

    test('a time-filtered usage query on 20k calls uses an index, not a full scan', async () => {
      const database = await backend.createDatabase();
      const store = await openStore(database.storeOptions);
      try {
        await store.insertCalls(generateCalls({ count: 20_000, days: 100, seed: 11 }));
        await sql`analyze`.execute(store.db);
        const oneDay: UsageQuery = { groupBy: ['team', 'route'], since: START + 50 * DAY, until: START + 51 * DAY };
        for (const query of [oneDay, { ...oneDay, teamId: 'team_a' }]) {
          const plan = (await store.explainUsage(query)).join('\n');
          if (store.dialect === 'sqlite') {
            assert.match(plan, /SEARCH calls USING (COVERING )?INDEX calls_/, plan);
            assert.doesNotMatch(plan, /SCAN calls\b/, plan);
          } else {
            assert.match(plan, /Index (Only )?Scan|Bitmap Index Scan/, plan);
            assert.doesNotMatch(plan, /Seq Scan on calls/, plan);
          }
        }
      } finally {
        await store.close();
        await database.dispose();
      }
    });
  });
}

test('openStore rejects URLs it cannot serve', async () => {
  await assert.rejects(openStore({ url: 'mysql://localhost/seed' }), (error) => isSeedError(error) && error.code === 'invalid_request');
  await assert.rejects(openStore({ url: 'postgres://u@127.0.0.1/x', schema: 'bad name; drop' }), (error) => isSeedError(error));
});
