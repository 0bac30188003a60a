/**
 * Applies pending migrations. Idempotent; on PostgreSQL kysely's Migrator holds an advisory
 * lock and runs in a transaction, so replicas starting at once apply each migration once.
 */
import { Migrator, type Kysely } from 'kysely';
import { SeedError } from '../errors.ts';
import { migrationProvider } from './migrations.ts';
import type { Database } from './schema.ts';

/** Runs every migration not yet applied; returns the names applied by this call. */
export async function migrateToLatest({ db }: { db: Kysely<Database> }): Promise<string[]> {
  const migrator = new Migrator({ db, provider: migrationProvider });
  const { error, results } = await migrator.migrateToLatest();
  if (error !== undefined) {
    const failed = results?.find((result) => result.status === 'Error')?.migrationName ?? 'unknown';
    throw new SeedError('internal_error', `store migration ${failed} failed: ${String(error)}`, { cause: error });
  }
  return (results ?? []).filter((result) => result.status === 'Success').map((result) => result.migrationName);
}
