/**
 * The dataset tables. Listed in `src/store/migrations.ts` (which runs them); kept here so the
 * module that owns the tables also owns their shape.
 *
 * - `dataset_samples`: every sample record ever written, content-addressed by its SHA-256, so
 *   versions share records and a lineage reference (a hash) always resolves, even after purges.
 * - `dataset_versions`: one immutable row per `name@version`.
 * - `dataset_members`: which samples a version holds.
 * - `dataset_terms_checks`: append-only results of terms re-checks (versions stay immutable).
 */
import type { Kysely, Migration } from 'kysely';

export const datasetsMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('dataset_samples')
      .addColumn('hash', 'text', (column) => column.primaryKey())
      .addColumn('sample_id', 'text', (column) => column.notNull())
      .addColumn('record', 'text', (column) => column.notNull())
      .execute();
    await db.schema
      .createTable('dataset_versions')
      .addColumn('name', 'text', (column) => column.notNull())
      .addColumn('version', 'integer', (column) => column.notNull())
      .addColumn('hash', 'text', (column) => column.notNull())
      .addColumn('parent_version', 'integer')
      .addColumn('source', 'text', (column) => column.notNull())
      .addColumn('terms', 'text', (column) => column.notNull())
      .addColumn('sample_count', 'integer', (column) => column.notNull())
      .addColumn('created_at', 'bigint', (column) => column.notNull())
      .addColumn('created_by', 'text', (column) => column.notNull())
      .addPrimaryKeyConstraint('dataset_versions_pk', ['name', 'version'])
      .execute();
    await db.schema.createIndex('dataset_versions_hash').on('dataset_versions').column('hash').execute();
    await db.schema
      .createTable('dataset_members')
      .addColumn('name', 'text', (column) => column.notNull())
      .addColumn('version', 'integer', (column) => column.notNull())
      .addColumn('sample_id', 'text', (column) => column.notNull())
      .addColumn('sample_hash', 'text', (column) => column.notNull().references('dataset_samples.hash'))
      .addPrimaryKeyConstraint('dataset_members_pk', ['name', 'version', 'sample_id'])
      .execute();
    await db.schema
      .createTable('dataset_terms_checks')
      .addColumn('name', 'text', (column) => column.notNull())
      .addColumn('version', 'integer', (column) => column.notNull())
      .addColumn('checked_at', 'bigint', (column) => column.notNull())
      .addColumn('terms', 'text', (column) => column.notNull())
      .execute();
    await db.schema
      .createIndex('dataset_terms_checks_version')
      .on('dataset_terms_checks')
      .columns(['name', 'version', 'checked_at'])
      .execute();
  },
};
