/**
 * The ledger's batch insert on every backend. It runs as a prepared single-row statement on
 * SQLite — on a worker thread with its own connection for a file, on the store's own handle
 * for `sqlite::memory:` — and as one `unnest` statement on PostgreSQL (src/store/calls.ts), so
 * these tests pin what those fast paths must keep: the exact inserted count with duplicates,
 * every value round-tripping, all or nothing per call, large batches, and — on SQLite, where
 * the statement bypasses kysely — no slipping into another caller's open transaction.
 * Worker specifics (threads, crashes, shutdown, locking) are in store-insert-worker.test.ts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { openStore, type Store } from '../src/store/index.ts';
import { CALL_COLUMN_TYPES, CALL_COLUMNS, toCallRow, toCallValues } from '../src/store/call-rows.ts';
import type { CallRecord } from '../src/ledger/types.ts';
import { countCalls, makeCall, storePerSuite, testBackends, type Backend, type TestDatabase } from './helpers/backends.ts';

/** Text that a hand-built SQL or array literal would get wrong: quotes, escapes, separators, non-ASCII. */
const AWKWARD_TEXT = `héllo 世界 🌱 "quoted" 'single' \\back\\slash {a,b} (c) $1 ? NULL\n\ttab, comma`;

/** `sqlite::memory:` cannot be shared with a worker, so it keeps the in-thread path: tested apart. */
const sqliteInMemory: Backend = {
  name: 'sqlite',
  skip: false,
  async createDatabase() {
    return { storeOptions: { url: 'sqlite::memory:' }, async dispose() {} };
  },
};
const suites = [
  ...(await testBackends()).map((backend) => ({ label: backend.name === 'sqlite' ? 'sqlite file, insert worker' : backend.name, backend })),
  { label: 'sqlite in memory, in-thread', backend: sqliteInMemory },
];

for (const { label, backend } of suites) {
  describe(`insertCalls (${label})`, { skip: backend.skip }, () => {
    let database: TestDatabase;
    let store: Store;
    storePerSuite(backend, (opened) => ({ database, store } = opened));

    test('the column list names every column of the live table, with its PostgreSQL type', async () => {
      if (store.dialect === 'sqlite') {
        const columns = await sql<{ name: string }>`select name from pragma_table_info('calls')`.execute(store.db);
        assert.deepEqual(columns.rows.map((column) => column.name).sort(), [...CALL_COLUMNS].sort());
        return;
      }
      // 'calls'::regclass resolves through the search_path, as the insert does.
      const columns = await sql<{ name: string; type: string }>`
        select attname as name, format_type(atttypid, atttypmod) as type
        from pg_attribute where attrelid = 'calls'::regclass and attnum > 0 and not attisdropped`.execute(store.db);
      assert.deepEqual(
        Object.fromEntries(columns.rows.map((column) => [column.name, column.type]).sort()),
        Object.fromEntries(Object.entries(CALL_COLUMN_TYPES).sort()),
      );
    });

    test('duplicate ids within and across calls: the count is exact and the first record wins', async () => {
      const call = (id: string, costUsd = 1) => makeCall({ id: `dup_${id}`, teamId: 'duplicates', costUsd });
      assert.deepEqual(await store.insertCalls([call('a'), call('b'), call('a', 2), call('c'), call('b', 2)]), { inserted: 3 });
      assert.deepEqual(await store.insertCalls([call('c', 3), call('d'), call('d', 3), call('e'), call('a', 3)]), { inserted: 2 });
      assert.deepEqual(await store.insertCalls([call('e', 4), call('e', 4)]), { inserted: 0 });
      assert.equal(await countCalls({ store, teamId: 'duplicates' }), 5);
      for (const id of ['a', 'b', 'c', 'd', 'e']) assert.equal((await store.getCall(`dup_${id}`))?.costUsd, 1, id);
      assert.deepEqual(await store.insertCalls([]), { inserted: 0 });
    });

    test('every field round-trips: nulls, booleans, JSON, big and small numbers, awkward text', async () => {
      const calls: CallRecord[] = [
        makeCall({
          id: 'fields_full',
          startedAt: Number.MAX_SAFE_INTEGER,
          endpoint: 'embeddings',
          route: AWKWARD_TEXT,
          servedRoute: 'NULL',
          deployment: '',
          model: '"',
          region: '\\',
          purpose: 'train',
          termsProfile: '{}',
          termsVersion: ',',
          status: 'error',
          httpStatus: 599,
          errorCode: 'upstream_error',
          stream: true,
          attempts: 3,
          promptTokens: 2_147_483_647,
          completionTokens: 0,
          cachedTokens: 1,
          usageReported: false,
          costUsd: 1e-12,
          latencyMs: 12_345.678_901_234_567,
          ttftMs: 0.1,
          metadata: { 'clé': 'välue 🌱', empty: '', quote: '"{,}"' },
          payload: {
            request: { messages: [{ role: 'user', content: AWKWARD_TEXT }] },
            response: { number: 1.5e300, nested: [null, true, false, { key: 'NULL' }] },
          },
        }),
        // Every nullable column null, in the same batch as non-null values of the same columns.
        makeCall({
          id: 'fields_nulls',
          servedRoute: null,
          deployment: null,
          provider: null,
          model: null,
          region: null,
          termsProfile: null,
          termsVersion: null,
          orgId: null,
          teamId: null,
          keyId: null,
          errorCode: null,
          ttftMs: null,
          metadata: null,
          payload: null,
        }),
        makeCall({ id: 'fields_flags', stream: false, usageReported: true, startedAt: 0, costUsd: 0, latencyMs: 0 }),
      ];
      assert.deepEqual(await store.insertCalls(calls), { inserted: 3 });
      for (const call of calls) assert.deepEqual(await store.getCall(call.id), call);
    });

    test('all or nothing: one invalid row rejects the batch and stores none of it', async () => {
      const valid = Array.from({ length: 20 }, (_, index) => makeCall({ id: `atomic_${index}`, teamId: 'atomic' }));
      // NOT NULL violated by the last row, so every valid row has already been written by then.
      const invalid = makeCall({ id: 'atomic_invalid', teamId: 'atomic', route: null as unknown as string });
      await assert.rejects(store.insertCalls([...valid, invalid]));
      assert.equal(await countCalls({ store, teamId: 'atomic' }), 0);
      // The failure left nothing behind: the same store inserts the valid rows next.
      assert.deepEqual(await store.insertCalls(valid), { inserted: 20 });
      assert.equal(await countCalls({ store, teamId: 'atomic' }), 20);
    });

    test('a batch of 5 000 calls is stored whole, once, in the configured schema', async () => {
      const calls = Array.from({ length: 5000 }, (_, index) =>
        makeCall({ id: `large_${index}`, teamId: 'large', startedAt: 1_750_000_000_000 + index, promptTokens: index }),
      );
      assert.deepEqual(await store.insertCalls(calls), { inserted: 5000 });
      assert.deepEqual(await store.insertCalls(calls), { inserted: 0 });
      assert.equal(await countCalls({ store, teamId: 'large' }), 5000);
      assert.deepEqual(await store.getCall('large_4321'), calls[4321]);
      const { schema } = database.storeOptions;
      if (schema !== undefined) {
        const row = await sql<{ count: number }>`select count(*) as count from ${sql.table(`${schema}.calls`)} where team_id = 'large'`
          .execute(store.db);
        assert.equal(Number(row.rows[0]?.count), 5000);
      }
    });

    // Regression guard for the SQLite fast paths, which bypass kysely. In memory the statement
    // runs on the store's own handle and must wait for a kysely transaction open on it, or its
    // rows become part of that transaction and vanish when it rolls back. On a file the worker's
    // connection must wait for that transaction's write lock (busy_timeout), then commit alone.
    test('calls inserted while another transaction is open survive that transaction rolling back', async () => {
      let insertStarted!: () => void;
      const started = new Promise<void>((resolve) => (insertStarted = resolve));
      const rolledBack = store.db.transaction().execute(async (transaction) => {
        await transaction.insertInto('orgs').values({ id: 'org_rollback', name: 'Rollback', created_at: 0 }).execute();
        insertStarted();
        // Give the insert below every chance to run inside this transaction.
        await new Promise((resolve) => setTimeout(resolve, 50));
        throw new Error('roll back');
      });
      await started;
      const insert = store.insertCalls([makeCall({ id: 'concurrent_1', teamId: 'concurrent' })]);
      await assert.rejects(rolledBack, /roll back/);
      assert.deepEqual(await insert, { inserted: 1 });
      assert.equal(await countCalls({ store, teamId: 'concurrent' }), 1);
      const orgs = await store.db.selectFrom('orgs').select('id').where('id', '=', 'org_rollback').execute();
      assert.deepEqual(orgs, []);
    });
  });
}

test('toCallValues, written out by position, gives every column the value toCallRow gives it by name', () => {
  const varied: CallRecord[] = [
    makeCall(),
    makeCall({
      clientRequestId: 'client-1',
      stream: true,
      usageReported: false,
      ttftMs: 12.5,
      errorCode: 'upstream_timeout',
      status: 'error',
      httpStatus: 504,
      metadata: { team: AWKWARD_TEXT },
      payload: { request: { model: 'm' }, response: null },
    }),
  ];
  // A record from a spill file written before a field existed.
  const old = makeCall() as Partial<CallRecord>;
  delete old.clientRequestId;
  varied.push(old as CallRecord);
  for (const dialect of ['sqlite', 'postgres'] as const) {
    for (const call of varied) {
      const row = toCallRow({ dialect, call }) as Record<string, unknown>;
      assert.deepEqual(
        toCallValues({ dialect, call }),
        CALL_COLUMNS.map((column) => row[column] ?? null),
      );
    }
  }
});
