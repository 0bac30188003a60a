/**
 * Ledger queries: batch insert (idempotent per call id), one call, and a keyset-paginated list.
 */
import { resolve } from 'node:path';
import { CompiledQuery, type Kysely } from 'kysely';
import type BetterSqlite3 from 'better-sqlite3';
import type { CallRecord, CallStatus } from '../ledger/types.ts';
import { SeedError } from '../errors.ts';
import type { Connection } from './connect.ts';
import type { Database } from './schema.ts';
import { CALL_COLUMN_TYPES, CALL_COLUMNS, fromCallRow, toCallRow, toCallValues } from './call-rows.ts';
import { CallInsertThread } from './call-insert-thread.ts';
import { prepareSqliteInsert, QUOTED_CALL_COLUMNS, type SqliteRowsInsert } from './sqlite-call-insert.ts';

interface Context {
  db: Kysely<Database>;
}

/** The store's `insertCalls` and what it needs at shutdown; see `createCallInserter`. */
export interface CallInserter {
  insertCalls(records: readonly CallRecord[]): Promise<{ inserted: number }>;
  /** Waits for inserts in flight and stops the insert worker, if any. Call before closing the connection. */
  close(): Promise<void>;
  /** For a process about to exit without `close`: see `CallInsertThread.abandon`. True when no insert is still running. */
  abandon(): boolean;
  /** The SQLite file path's insert worker, for tests and diagnostics; null on the other paths. */
  readonly thread: CallInsertThread | null;
}

/**
 * Returns the store's `insertCalls`: inserts `records`, skipping ids already stored (so replays
 * are harmless). All or nothing per call. Returns how many rows were new.
 *
 * The ledger writer calls this for every flush on the event loop, so no path builds a query per
 * batch: a multi-row INSERT of 29 columns × N rows cost kysely a compile and better-sqlite3 a
 * prepare every time, since N varies and nothing could be cached. A SQLite file is written by a
 * worker thread with its own connection (call-insert-thread.ts) unless `worker` is false;
 * `sqlite::memory:` cannot be shared with another thread, so it keeps the in-thread path.
 */
export function createCallInserter({ connection, worker = true }: { connection: Connection; worker?: boolean }): CallInserter {
  if (connection.dialect === 'postgres') return inserterOf(postgresCallInserter({ db: connection.db }));
  const { db, sqlite } = connection;
  if (sqlite.memory || !worker) return inserterOf(sqliteCallInserter({ db, sqlite }));
  // Made absolute now, so the worker opens the file the main connection did even if the
  // working directory changes before the first batch starts it.
  return workerCallInserter(new CallInsertThread({ path: resolve(sqlite.name) }));
}

/** A batch insert for one dialect or path. */
type InsertCalls = CallInserter['insertCalls'];

/** An inserter with nothing to stop: its statements run on the connection itself. */
function inserterOf(insertCalls: InsertCalls): CallInserter {
  // Its statements run on the event loop, which is the one exiting: nothing runs meanwhile.
  return { insertCalls, close: async () => {}, abandon: () => true, thread: null };
}

/**
 * SQLite file: rows become column values here (cheap, and what crosses to the worker is then
 * plain arrays); the worker binds and steps its prepared statement in one transaction.
 */
function workerCallInserter(thread: CallInsertThread): CallInserter {
  return {
    insertCalls: async (records) => {
      if (records.length === 0) return { inserted: 0 };
      const rows = records.map((call) => toCallValues({ dialect: 'sqlite', call }));
      return { inserted: await thread.insert(rows) };
    },
    close: () => thread.close(),
    abandon: () => thread.abandon(),
    thread,
  };
}

/**
 * SQLite in memory (or with the worker turned off): the prepared insert on the store's own
 * handle, on the event loop.
 */
function sqliteCallInserter({ db, sqlite }: { db: Kysely<Database>; sqlite: BetterSqlite3.Database }): InsertCalls {
  // Prepared on first use rather than here: the store may open before the table exists
  // (`migrate: false`), and a failed prepare should reject that insert, not `openStore`.
  let preparedInsert: SqliteRowsInsert | null = null;
  return async (records) => {
    if (records.length === 0) return { inserted: 0 };
    const rows = records.map((call) => toCallValues({ dialect: 'sqlite', call }));
    const insertRows = (preparedInsert ??= prepareSqliteInsert(sqlite));
    // kysely's SQLite driver shares this one handle and serializes its users with a mutex that
    // a kysely transaction holds across awaits (the audit log's does). Taking the connection
    // waits for any such transaction to finish; writing to the handle without it would slip
    // these rows into that transaction (better-sqlite3 nests as a savepoint), to be committed
    // or rolled back with someone else's work.
    const inserted = await db.connection().execute(async () => insertRows(rows));
    return { inserted };
  };
}

/**
 * PostgreSQL: one statement of fixed text whatever the batch size. Each column travels as one
 * array parameter and `unnest` turns the arrays back into rows, so the server sees 29 parameters
 * for any N (no bind limit, no chunking), and one statement is atomic without a transaction:
 * one round trip instead of begin/insert/commit. `calls` is unqualified on purpose: it resolves
 * through the connection's search_path, like every other query, which is how a configured
 * `schema` applies. Booleans and numbers travel in pg's text array format, so each value is
 * converted by the same input function as a scalar parameter would be.
 */
function postgresCallInserter({ db }: { db: Kysely<Database> }): InsertCalls {
  const arrays = CALL_COLUMNS.map((column, index) => `$${index + 1}::${CALL_COLUMN_TYPES[column]}[]`).join(', ');
  const text = `insert into "calls" (${QUOTED_CALL_COLUMNS}) select * from unnest(${arrays}) on conflict ("id") do nothing`;
  return async (records) => {
    if (records.length === 0) return { inserted: 0 };
    const rows = records.map((call) => toCallRow({ dialect: 'postgres', call }));
    // One array per column, in the order of the casts above. A missing value is NULL, as it
    // would be in a multi-row VALUES list (no `calls` column has a default).
    const columns = CALL_COLUMNS.map((column) => rows.map((row) => row[column] ?? null));
    const result = await db.executeQuery(CompiledQuery.raw(text, columns));
    return { inserted: Number(result.numAffectedRows ?? 0n) };
  };
}

/** The call with this id, or null. */
export async function getCall({ context, id }: { context: Context; id: string }): Promise<CallRecord | null> {
  const row = await context.db.selectFrom('calls').selectAll().where('id', '=', id).executeTakeFirst();
  return row === undefined ? null : fromCallRow(row);
}

/** Which calls `listCalls` returns; every field narrows the list. */
export interface CallFilters {
  /** Inclusive lower bound on `startedAt` (epoch ms). */
  since?: number;
  /** Exclusive upper bound on `startedAt` (epoch ms). */
  until?: number;
  orgId?: string;
  teamId?: string;
  keyId?: string;
  route?: string;
  deployment?: string;
  status?: CallStatus;
  /** The client's own request id (`x-client-request-id`); several calls may share one. */
  clientRequestId?: string;
}

export interface ListCallsOptions {
  filters?: CallFilters;
  /** Page size, 1…1000 (default 100). */
  limit?: number;
  /** `nextCursor` of the previous page. */
  cursor?: string | null;
}

export interface CallPage {
  /** Newest first (by `startedAt`, then id). */
  calls: CallRecord[];
  /** Pass to the next `listCalls`; null on the last page. */
  nextCursor: string | null;
}

/** Lists calls newest first, filtered, with a cursor that stays stable while new calls arrive. */
export async function listCalls({ context, options }: { context: Context; options: ListCallsOptions }): Promise<CallPage> {
  const limit = options.limit ?? 100;
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
    throw new SeedError('invalid_request', 'limit must be an integer from 1 to 1000', { param: 'limit' });
  }
  const filters = options.filters ?? {};
  let query = context.db.selectFrom('calls').selectAll();
  if (filters.since !== undefined) query = query.where('started_at', '>=', filters.since);
  if (filters.until !== undefined) query = query.where('started_at', '<', filters.until);
  if (filters.orgId !== undefined) query = query.where('org_id', '=', filters.orgId);
  if (filters.teamId !== undefined) query = query.where('team_id', '=', filters.teamId);
  if (filters.keyId !== undefined) query = query.where('key_id', '=', filters.keyId);
  if (filters.route !== undefined) query = query.where('route', '=', filters.route);
  if (filters.deployment !== undefined) query = query.where('deployment', '=', filters.deployment);
  if (filters.status !== undefined) query = query.where('status', '=', filters.status);
  if (filters.clientRequestId !== undefined) query = query.where('client_request_id', '=', filters.clientRequestId);
  if (options.cursor !== undefined && options.cursor !== null) {
    const after = decodeCursor(options.cursor);
    query = query.where((expression) =>
      expression.or([
        expression('started_at', '<', after.startedAt),
        expression.and([expression('started_at', '=', after.startedAt), expression('id', '<', after.id)]),
      ]),
    );
  }
  // One extra row tells whether another page exists without a count query.
  const rows = await query.orderBy('started_at', 'desc').orderBy('id', 'desc').limit(limit + 1).execute();
  const calls = rows.slice(0, limit).map(fromCallRow);
  const last = calls.at(-1);
  const nextCursor = rows.length > limit && last !== undefined ? encodeCursor(last) : null;
  return { calls, nextCursor };
}

function encodeCursor(call: CallRecord): string {
  return Buffer.from(JSON.stringify([call.startedAt, call.id])).toString('base64url');
}

function decodeCursor(cursor: string): { startedAt: number; id: string } {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(value) && typeof value[0] === 'number' && typeof value[1] === 'string') {
      return { startedAt: value[0], id: value[1] };
    }
  } catch {
    // fall through to the error below
  }
  throw new SeedError('invalid_request', 'cursor is not one returned by a previous page', { param: 'cursor' });
}
