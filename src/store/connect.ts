/**
 * Turns a store URL into a kysely instance: `sqlite:<path>` / `sqlite::memory:` (better-sqlite3)
 * or `postgres://…` / `postgresql://…` (pg pool).
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import { SeedError } from '../errors.ts';
import type { Database } from './schema.ts';
import { configureSqliteConnection } from './sqlite-connection.ts';

export type StoreDialect = 'sqlite' | 'postgres';

/** The default store: an embedded SQLite file, created on demand. */
export const DEFAULT_STORE_URL = 'sqlite:./data/seed.db';

export interface ConnectOptions {
  url: string;
  /** PostgreSQL only: schema to create (if missing) and put first on every connection's search_path. */
  schema?: string;
  /** PostgreSQL only: maximum pool size (default 10). */
  poolSize?: number;
  /** PostgreSQL only: how long to wait for a connection before failing (default 5000 ms). */
  connectTimeoutMs?: number;
  /**
   * PostgreSQL only: close a connection whose query has had no answer for this long (default:
   * never), failing the query. A server that stops answering without an error (a failover, a
   * partition that drops packets) leaves its queries waiting until TCP gives up, ~15 minutes on
   * Linux; the connections they hold stay checked out all that time, and once as many as the pool
   * holds are stuck, nothing reaches the store even after it is back.
   */
  queryTimeoutMs?: number;
  /** Called with errors of idle pooled connections (e.g. the server went away); default: ignore. */
  onConnectionError?: (error: Error) => void;
}

/**
 * An open database. On SQLite it also carries the better-sqlite3 handle behind `db`, for the
 * few hot statements that are worth preparing once (the ledger's batch insert, in memory) and
 * for the file's path (the insert worker opens its own connection); everything else goes
 * through `db`.
 */
export type Connection =
  | { dialect: 'sqlite'; db: Kysely<Database>; sqlite: BetterSqlite3.Database }
  | { dialect: 'postgres'; db: Kysely<Database> };

const UNIQUE_VIOLATION = '23505';
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

// int8 (count, sum of int, bigint columns) and numeric (sum of bigint, avg) arrive as strings
// by default because they can exceed 2^53; our values (epoch ms, token sums) never do.
const INT8_OID = 20;
const NUMERIC_OID = 1700;
const typeParsers: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (oid === INT8_OID || oid === NUMERIC_OID) return (value: string) => Number(value);
    return format === undefined ? pg.types.getTypeParser(oid) : pg.types.getTypeParser(oid, format);
  }) as typeof pg.types.getTypeParser,
};

/** Opens the database behind `url`; does not migrate. */
export async function connect(options: ConnectOptions): Promise<Connection> {
  const { url } = options;
  if (url.startsWith('sqlite:')) return { dialect: 'sqlite', ...connectSqlite(url.slice('sqlite:'.length)) };
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    return { dialect: 'postgres', db: await connectPostgres(options) };
  }
  throw new SeedError('invalid_request', `unsupported store URL "${redact(url)}": expected sqlite:<path> or postgres://…`);
}

function connectSqlite(path: string): { db: Kysely<Database>; sqlite: BetterSqlite3.Database } {
  if (path === '') throw new SeedError('invalid_request', 'sqlite: store URL needs a path or :memory:');
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const database = new BetterSqlite3(path);
  configureSqliteConnection(database);
  return { db: new Kysely<Database>({ dialect: new SqliteDialect({ database }) }), sqlite: database };
}

async function connectPostgres(options: ConnectOptions): Promise<Kysely<Database>> {
  const { schema } = options;
  if (schema !== undefined && !SCHEMA_NAME.test(schema)) {
    throw new SeedError('invalid_request', `invalid PostgreSQL schema name "${schema}"`);
  }
  const pool = new pg.Pool({
    connectionString: options.url,
    ...(options.queryTimeoutMs === undefined ? {} : { Client: clientClosingAfter(options.queryTimeoutMs) }),
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
    types: typeParsers,
    ...(schema === undefined ? {} : { options: `-c search_path=${schema}` }),
  });
  // Without a listener, an idle connection dropped by the server would crash the process.
  pool.on('error', (error) => options.onConnectionError?.(error));
  // The pool listens for errors only on idle clients; a client checked out (e.g. holding the
  // ledger's transaction) when the server goes away emits 'error' with no listener, which would
  // crash the process. The query in flight still rejects, so the caller sees the failure.
  pool.on('connect', (client) => {
    client.on('error', (error) => options.onConnectionError?.(error));
  });
  if (schema !== undefined) {
    try {
      await pool.query(`create schema if not exists ${schema}`);
    } catch (error) {
      // Two processes creating the schema at once: "if not exists" is not atomic in PostgreSQL,
      // so the loser sees a unique violation — and the schema it wanted exists.
      if ((error as { code?: unknown }).code !== UNIQUE_VIOLATION) {
        await pool.end();
        throw error;
      }
    }
  }
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}

/**
 * A pg client that closes its connection when a query has gone `ms` without an answer: the query
 * fails with an error that says so, and the pool, finding the client unusable when it is released,
 * drops it. (pg's own `query_timeout` fails the query but keeps the connection, its query still
 * outstanding, and the pool hands it out again.)
 */
function clientClosingAfter(ms: number): typeof pg.Client {
  class ClosingClient extends pg.Client {}
  const query = pg.Client.prototype.query as (this: pg.Client, ...args: unknown[]) => unknown;
  ClosingClient.prototype.query = function (this: pg.Client, ...args: unknown[]): unknown {
    const result = query.apply(this, args);
    // Only the promise form (what kysely uses); a callback or a submittable (cursor) is left alone.
    if (!(result instanceof Promise)) return result;
    const timer = setTimeout(() => {
      const error = new Error(`the store did not answer a query within ${ms} ms (store.queryTimeoutMs); its connection was closed`);
      // The code a socket that timed out has: the store is unavailable, not the query wrong.
      this.connection.stream.destroy(Object.assign(error, { code: 'ETIMEDOUT' }));
    }, ms);
    result.then(
      () => clearTimeout(timer),
      () => clearTimeout(timer),
    );
    return result;
  } as typeof pg.Client.prototype.query;
  return ClosingClient;
}

/** The URL without its password, for error messages. */
export function redact(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
}
