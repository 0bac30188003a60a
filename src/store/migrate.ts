/**
 * Applies pending migrations. Idempotent. On PostgreSQL kysely's Migrator holds an advisory
 * lock and runs in a transaction, so replicas starting at once apply each migration once. On
 * SQLite kysely takes no lock (it assumes one connection), so we hold the file's write lock
 * (BEGIN IMMEDIATE) around the run: a second process waits (busy_timeout), then finds
 * nothing to do.
 */
import { Migrator, sql, type Kysely } from 'kysely';
import type { StoreDialect } from './connect.ts';
import { SeedError } from '../errors.ts';
import { migrationProvider } from './migrations.ts';
import type { Database } from './schema.ts';

/** Runs every migration not yet applied; returns the names applied by this call. */
export async function migrateToLatest({
  db,
  dialect,
  schema,
}: {
  db: Kysely<Database>;
  dialect: StoreDialect;
  /** PostgreSQL schema the store lives in; its migration tables live there too. */
  schema?: string;
}): Promise<string[]> {
  // Without the schema, kysely looks for its migration tables on the whole search path and can
  // find another schema's, so two stores in one database would trip over each other.
  if (dialect === 'postgres') return runMigrator(db, schema);
  return db.connection().execute(async (connection) => {
    await sql`begin immediate`.execute(connection);
    try {
      const applied = await runMigrator(connection);
      await sql`commit`.execute(connection);
      return applied;
    } catch (error) {
      await sql`rollback`.execute(connection);
      throw error;
    }
  });
}

async function runMigrator(db: Kysely<Database>, schema?: string): Promise<string[]> {
  const migrator = new Migrator({ db, provider: migrationProvider, ...(schema ? { migrationTableSchema: schema } : {}) });
  const { error, results } = await migrator.migrateToLatest();
  if (error !== undefined) {
    const failed = results?.find((result) => result.status === 'Error')?.migrationName ?? 'unknown';
    throw new SeedError('internal_error', `store migration ${failed} failed: ${String(error)}`, { cause: error });
  }
  return (results ?? []).filter((result) => result.status === 'Success').map((result) => result.migrationName);
}
