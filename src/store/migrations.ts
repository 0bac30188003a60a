/**
 * Versioned migrations, defined in code so they ship with the build and run the same on both
 * dialects. Written with kysely's schema builder: `bigint`, `boolean` and `double precision`
 * become native types on PostgreSQL and map to INTEGER/NUMERIC/REAL affinity on SQLite.
 *
 * Append new migrations at the end with the next number; never edit one that has shipped.
 */
import { sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';
import { auditLogMigration } from '../audit/migration.ts';
import { datasetsMigration } from '../datasets/migration.ts';

/** Created for `CallRecord`; indexes follow the usage queries (time range, optionally per tenant or upstream). */
const ledgerCalls: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('calls')
      .addColumn('id', 'text', (column) => column.primaryKey())
      .addColumn('started_at', 'bigint', (column) => column.notNull())
      .addColumn('endpoint', 'text', (column) => column.notNull())
      .addColumn('route', 'text', (column) => column.notNull())
      .addColumn('served_route', 'text')
      .addColumn('deployment', 'text')
      .addColumn('provider', 'text')
      .addColumn('model', 'text')
      .addColumn('region', 'text')
      .addColumn('purpose', 'text', (column) => column.notNull())
      .addColumn('terms_profile', 'text')
      .addColumn('terms_version', 'text')
      .addColumn('org_id', 'text')
      .addColumn('team_id', 'text')
      .addColumn('key_id', 'text')
      .addColumn('status', 'text', (column) => column.notNull())
      .addColumn('http_status', 'integer', (column) => column.notNull())
      .addColumn('error_code', 'text')
      .addColumn('stream', 'boolean', (column) => column.notNull())
      .addColumn('attempts', 'integer', (column) => column.notNull())
      .addColumn('prompt_tokens', 'integer', (column) => column.notNull())
      .addColumn('completion_tokens', 'integer', (column) => column.notNull())
      .addColumn('cached_tokens', 'integer', (column) => column.notNull())
      .addColumn('usage_reported', 'boolean', (column) => column.notNull())
      .addColumn('cost_usd', 'double precision', (column) => column.notNull())
      .addColumn('latency_ms', 'double precision', (column) => column.notNull())
      .addColumn('ttft_ms', 'double precision')
      .addColumn('metadata', 'text')
      .addColumn('payload', 'text')
      .execute();
    const indexes: Array<[name: string, columns: string[]]> = [
      ['calls_started_at', ['started_at']],
      ['calls_team_started_at', ['team_id', 'started_at']],
      ['calls_key_started_at', ['key_id', 'started_at']],
      ['calls_route_started_at', ['route', 'started_at']],
      ['calls_deployment_started_at', ['deployment', 'started_at']],
    ];
    for (const [name, columns] of indexes) {
      await db.schema.createIndex(name).on('calls').columns(columns).execute();
    }
  },
};

/** Tenants (org → team → key), created now so the auth work has its tables. */
const tenants: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('orgs')
      .addColumn('id', 'text', (column) => column.primaryKey())
      .addColumn('name', 'text', (column) => column.notNull())
      .addColumn('created_at', 'bigint', (column) => column.notNull())
      .execute();
    await db.schema
      .createTable('teams')
      .addColumn('id', 'text', (column) => column.primaryKey())
      .addColumn('org_id', 'text', (column) => column.notNull().references('orgs.id'))
      .addColumn('name', 'text', (column) => column.notNull())
      .addColumn('created_at', 'bigint', (column) => column.notNull())
      .execute();
    await db.schema.createIndex('teams_org_id').on('teams').column('org_id').execute();
    await db.schema
      .createTable('api_keys')
      .addColumn('id', 'text', (column) => column.primaryKey())
      .addColumn('team_id', 'text', (column) => column.notNull().references('teams.id'))
      .addColumn('name', 'text', (column) => column.notNull())
      .addColumn('key_hash', 'text', (column) => column.notNull().unique())
      .addColumn('key_prefix', 'text', (column) => column.notNull())
      .addColumn('region', 'text')
      .addColumn('allowed_routes', 'text')
      .addColumn('limits', 'text')
      .addColumn('budget', 'text')
      .addColumn('store_payloads', 'boolean', (column) => column.notNull().defaultTo(false))
      .addColumn('expires_at', 'bigint')
      .addColumn('revoked_at', 'bigint')
      .addColumn('created_at', 'bigint', (column) => column.notNull())
      .execute();
    await db.schema.createIndex('api_keys_team_id').on('api_keys').column('team_id').execute();
  },
};

/**
 * Limits on teams and orgs (keys already had them), `updated_at` on every tenant table so each
 * replica's key cache can poll for changes (revocations reach all replicas within a second),
 * and unique names so the CLI can address orgs and teams by name.
 */
const tenantLimits: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    for (const table of ['orgs', 'teams', 'api_keys']) {
      if (table !== 'api_keys') await db.schema.alterTable(table).addColumn('limits', 'text').execute();
      await db.schema
        .alterTable(table)
        .addColumn('updated_at', 'bigint', (column) => column.notNull().defaultTo(0))
        .execute();
      await db.schema.createIndex(`${table}_updated_at`).on(table).column('updated_at').execute();
    }
    await db.schema.createIndex('orgs_name_unique').on('orgs').column('name').unique().execute();
    await db.schema.createIndex('teams_org_name_unique').on('teams').columns(['org_id', 'name']).unique().execute();
  },
};

/**
 * The client's own request id, apart from the call id: the id used to be the client's
 * `x-request-id` when it sent one, so a client that reused an id lost the ledger row of every
 * call after the first (the insert skips ids already stored). Indexed where set, for finding a
 * client's calls by its trace id.
 */
const callClientRequestId: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('calls').addColumn('client_request_id', 'text').execute();
    await db.schema
      .createIndex('calls_client_request_id')
      .on('calls')
      .column('client_request_id')
      .where(sql.ref('client_request_id'), 'is not', null)
      .execute();
  },
};

/** Every migration, by name; names sort in the order they must run. */
export const MIGRATIONS: Readonly<Record<string, Migration>> = Object.freeze({
  '0001_ledger_calls': ledgerCalls,
  '0002_tenants': tenants,
  '0003_tenant_limits': tenantLimits,
  '0004_audit_log': auditLogMigration,
  '0005_datasets': datasetsMigration,
  '0006_call_client_request_id': callClientRequestId,
});

/** Feeds `MIGRATIONS` to kysely's `Migrator` (no files to find at run time). */
export const migrationProvider: MigrationProvider = {
  async getMigrations() {
    return { ...MIGRATIONS };
  },
};
