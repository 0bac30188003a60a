/**
 * Applies pending migrations. Idempotent. On PostgreSQL kysely's Migrator holds an advisory
 * lock and runs in a transaction, so replicas starting at once apply each migration once. On
 * SQLite kysely takes no lock (it assumes one connection), so we hold the file's write lock
 * (BEGIN IMMEDIATE) around the run: a second process waits (busy_timeout), then finds
 * nothing to do.
 */
import { Migrator, sql, type DatabaseIntrospector, type DatabaseMetadata, type Kysely, type SchemaMetadata, type TableMetadata } from 'kysely';
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
  // find another schema's, so two stores in one database would trip over each other. Without
  // one from the caller, it is the schema unqualified tables go to (`current_schema()`), where
  // the migration tables have always been.
  if (dialect === 'postgres') {
    const home = schema ?? (await sql<{ schema: string | null }>`select current_schema() as schema`.execute(db)).rows[0]?.schema ?? undefined;
    return runMigrator(home === undefined ? db : withIntrospector(db, new SchemaIntrospector(db, home)), home);
  }
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

/**
 * What kysely's Migrator asks of the database's schemas and tables, answered for one schema
 * only. kysely's own PostgreSQL introspector reads every table of every schema and calls
 * `has_schema_privilege` by schema name, so a schema dropped by anyone while it runs fails the
 * migration ("schema … does not exist", 3F000): with another client creating and dropping
 * schemas, 11 of 20 stores failed to open (test/store.test.ts has the race). The Migrator only
 * asks whether its schema and its two tables exist.
 */
class SchemaIntrospector implements DatabaseIntrospector {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly schema: string,
  ) {}

  async getSchemas(): Promise<SchemaMetadata[]> {
    const { rows } = await sql<{ name: string }>`select nspname as name from pg_catalog.pg_namespace where nspname = ${this.schema}`.execute(this.db);
    return rows.map((row) => ({ name: row.name }));
  }

  async getTables(): Promise<TableMetadata[]> {
    const { rows } = await sql<{ name: string; kind: string }>`
      select c.relname as name, c.relkind as kind
      from pg_catalog.pg_class c join pg_catalog.pg_namespace ns on ns.oid = c.relnamespace
      where ns.nspname = ${this.schema} and c.relkind in ('r', 'v', 'p')`.execute(this.db);
    return rows.map((row) => ({ name: row.name, schema: this.schema, isView: row.kind === 'v', columns: [] }));
  }

  async getMetadata(): Promise<DatabaseMetadata> {
    return { tables: await this.getTables() };
  }
}

/** `db`, but with `introspector` as its `introspection` (kysely's methods run on the real instance). */
function withIntrospector(db: Kysely<Database>, introspector: DatabaseIntrospector): Kysely<Database> {
  return new Proxy(db, {
    get(target, property) {
      if (property === 'introspection') return introspector;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}
