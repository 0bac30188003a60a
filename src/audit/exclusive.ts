/**
 * Runs work in a transaction that no other appender can interleave with, on both dialects:
 *
 * - PostgreSQL: a transaction-scoped advisory lock keyed by the current schema, so replicas
 *   (and test suites in other schemas) append one at a time per log; it is released on commit.
 * - SQLite: `BEGIN IMMEDIATE` takes the file's write lock up front. A plain `BEGIN` would read
 *   the last hash under a shared lock and fail to upgrade when another process wrote meanwhile.
 *
 * The primary key on `seq` is the backstop: if serialization were ever bypassed, the second
 * insert of a sequence number fails rather than forking the chain.
 */
import { sql, type Kysely } from 'kysely';
import type { Store } from '../store/index.ts';
import type { Database } from '../store/schema.ts';

/**
 * Calls `work` with a database handle inside an exclusive transaction; commits when it
 * resolves, rolls back when it throws. Inside `work`, use only the handle it is given: on
 * SQLite the store has one connection, and it is held here.
 */
export async function runExclusive<T>({
  store,
  work,
}: {
  store: Pick<Store, 'db' | 'dialect'>;
  work: (db: Kysely<Database>) => Promise<T>;
}): Promise<T> {
  if (store.dialect === 'postgres') {
    return store.db.transaction().execute(async (transaction) => {
      await sql`select pg_advisory_xact_lock(hashtext(current_schema() || '.seed.audit_log'))`.execute(transaction);
      return work(transaction);
    });
  }
  return store.db.connection().execute(async (connection) => {
    await sql`begin immediate`.execute(connection);
    try {
      const result = await work(connection);
      await sql`commit`.execute(connection);
      return result;
    } catch (error) {
      await sql`rollback`.execute(connection);
      throw error;
    }
  });
}
