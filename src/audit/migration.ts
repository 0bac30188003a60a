/**
 * The `audit_log` table. Listed in `src/store/migrations.ts` (which runs it); kept here so the
 * module that owns the table also owns its shape.
 */
import type { Kysely, Migration } from 'kysely';

/**
 * One row per entry. `seq` is the primary key, so two appenders that somehow both computed the
 * same next number cannot both succeed: the loser's insert fails instead of forking the chain.
 */
export const auditLogMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('audit_log')
      .addColumn('seq', 'bigint', (column) => column.primaryKey())
      .addColumn('at', 'bigint', (column) => column.notNull())
      .addColumn('actor', 'text', (column) => column.notNull())
      .addColumn('action', 'text', (column) => column.notNull())
      .addColumn('subject', 'text', (column) => column.notNull())
      .addColumn('details', 'text', (column) => column.notNull())
      .addColumn('prev_hash', 'text', (column) => column.notNull())
      .addColumn('hash', 'text', (column) => column.notNull().unique())
      .execute();
    await db.schema.createIndex('audit_log_action_seq').on('audit_log').columns(['action', 'seq']).execute();
  },
};
