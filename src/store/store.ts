/**
 * The store: one data layer over SQLite (embedded, the default) and PostgreSQL (shared by
 * replicas). `openStore` connects, migrates, and returns typed helpers; `db` is there for
 * modules that own their own tables (tenants, datasets) and query them with kysely directly.
 */
import { resolve } from 'node:path';
import type { Kysely } from 'kysely';
import type { CallRecord } from '../ledger/types.ts';
import { connect, DEFAULT_STORE_URL, type ConnectOptions, type StoreDialect } from './connect.ts';
import { migrateToLatest } from './migrate.ts';
import type { Database } from './schema.ts';
import { createCallInserter, getCall, listCalls, type CallPage, type ListCallsOptions } from './calls.ts';
import { explainUsage, usage, type UsageQuery, type UsageRow } from './usage.ts';
import { SqliteReadThread, sqliteReader } from './sqlite-read-thread.ts';

export interface Store {
  readonly dialect: StoreDialect;
  readonly db: Kysely<Database>;
  /** Migration names applied when this store opened (empty when the schema was current). */
  readonly appliedMigrations: readonly string[];
  /** Inserts calls in one transaction; ids already stored are skipped (ON CONFLICT DO NOTHING). */
  insertCalls(records: readonly CallRecord[]): Promise<{ inserted: number }>;
  /**
   * Whether an `insertCalls` error says this store refused the rows' data (PostgreSQL's data
   * exceptions and constraint violations, SQLite's constraint, type and size errors, a value the
   * driver cannot bind) rather than that it is unavailable (connection, disk, lock).
   */
  refusesData(error: unknown): boolean;
  getCall(id: string): Promise<CallRecord | null>;
  listCalls(options?: ListCallsOptions): Promise<CallPage>;
  usage(query: UsageQuery): Promise<UsageRow[]>;
  /** The query plan of `usage(query)`, one line per step. */
  explainUsage(query: UsageQuery): Promise<string[]>;
  /** Waits for inserts in flight, then closes the connection (pool); the store is unusable afterwards. */
  close(): Promise<void>;
  /**
   * For a process about to exit without `close`: stops background inserts (a SQLite file's insert
   * worker) and waits, briefly and blocking, for a statement still running. True when none is.
   */
  abandon(): boolean;
}

export interface OpenStoreOptions extends Partial<ConnectOptions> {
  /** Apply pending migrations before returning (default true). */
  migrate?: boolean;
  /**
   * SQLite files only: write ledger batches from a worker thread with its own connection
   * (default true), keeping better-sqlite3's synchronous inserts off the event loop. False
   * runs them on the event loop, as `sqlite::memory:` always does.
   */
  insertWorker?: boolean;
  /**
   * SQLite files only: run the reports (`usage`, `explainUsage`, `listCalls`, `getCall`) on a
   * worker thread with its own read-only connection (default true), so that a long one does not
   * stop the event loop. False runs them on the main connection, as `sqlite::memory:` always does.
   */
  readWorker?: boolean;
}

/**
 * Opens the store at `url` (default `sqlite:./data/seed.db`) and brings its schema up to date.
 *
 * @example
 * const store = await openStore({ url: 'sqlite::memory:' });
 * await store.insertCalls([call]);
 * const rows = await store.usage({ groupBy: ['team'], since: 0, until: Date.now() });
 * await store.close();
 */
export async function openStore(options: OpenStoreOptions = {}): Promise<Store> {
  const url = options.url ?? DEFAULT_STORE_URL;
  // A migration may run long (an index on a large table): with a query timeout, it runs on a
  // connection of its own that has none.
  const migrationConnection = options.migrate !== false && options.queryTimeoutMs !== undefined && !url.startsWith('sqlite:')
    ? await connect({ ...options, url, queryTimeoutMs: undefined, poolSize: 1 })
    : null;
  const connection = await connect({ ...options, url }).catch(async (error: unknown) => {
    await migrationConnection?.db.destroy();
    throw error;
  });
  const { dialect, db } = connection;
  let appliedMigrations: string[] = [];
  if (options.migrate !== false) {
    try {
      appliedMigrations = await migrateToLatest({ db: migrationConnection?.db ?? db, dialect, ...(options.schema ? { schema: options.schema } : {}) });
    } catch (error) {
      await db.destroy();
      throw error;
    } finally {
      await migrationConnection?.db.destroy();
    }
  }
  const context = { dialect, db };
  const reader = connection.dialect === 'sqlite' && connection.sqlite.name !== ':memory:' && options.readWorker !== false
    ? sqliteReader<Database>(new SqliteReadThread({ path: resolve(connection.sqlite.name) }))
    : null;
  const reports = reader === null ? context : { dialect, db: reader };
  const inserter = createCallInserter({ connection, worker: options.insertWorker ?? true });
  let closed: Promise<void> | null = null;
  return Object.freeze({
    dialect,
    db,
    appliedMigrations: Object.freeze(appliedMigrations),
    insertCalls: inserter.insertCalls,
    refusesData: (error: unknown) => refusesData({ dialect, error }),
    getCall: (id: string) => getCall({ context: reports, id }),
    listCalls: (listOptions: ListCallsOptions = {}) => listCalls({ context: reports, options: listOptions }),
    usage: (query: UsageQuery) => usage({ context: reports, query }),
    explainUsage: (query: UsageQuery) => explainUsage({ context: reports, query }),
    // The workers first: their batches and reads in flight finish (and they close their own
    // connections) before the main connection goes.
    close: () => (closed ??= Promise.all([inserter.close(), reader?.destroy()]).then(() => {}).finally(() => db.destroy())),
    abandon: () => inserter.abandon(),
  });
}

/** PostgreSQL SQLSTATE classes 22 (data exception) and 23 (integrity constraint violation). */
const POSTGRES_REFUSALS = /^2[23]/;
/** SQLite result codes of a row it will not store (extended codes start with the primary one). */
const SQLITE_REFUSALS = /^SQLITE_(CONSTRAINT|MISMATCH|TOOBIG|RANGE)/;

function refusesData({ dialect, error }: { dialect: StoreDialect; error: unknown }): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as Error & { code?: unknown }).code;
  if (dialect === 'postgres') return typeof code === 'string' && POSTGRES_REFUSALS.test(code);
  // better-sqlite3 throws TypeError or RangeError for a value it cannot bind, before SQLite sees it.
  return (typeof code === 'string' && SQLITE_REFUSALS.test(code)) || error.name === 'TypeError' || error.name === 'RangeError';
}
