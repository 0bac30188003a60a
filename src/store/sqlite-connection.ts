/**
 * The per-connection settings of every SQLite connection to a store: the main one (connect.ts)
 * and the ledger's insert worker (call-insert-worker.ts). Only `journal_mode` is stored in the
 * file; the rest would silently default on a connection that forgot them, so both connections
 * take them from here.
 */
import type BetterSqlite3 from 'better-sqlite3';

/** How long a connection waits for another connection's write lock before failing with SQLITE_BUSY. */
export const SQLITE_BUSY_TIMEOUT_MS = 5000;

/** Applies the store's pragmas to a freshly opened connection. */
export function configureSqliteConnection(database: BetterSqlite3.Database): void {
  // First, so that switching the journal mode below waits for a lock rather than failing.
  database.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
  // WAL lets readers (usage queries) run while the ledger writer appends; NORMAL sync is
  // durable across process crashes in WAL mode, which is what the spill file covers anyway.
  database.pragma('journal_mode = WAL');
  database.pragma('synchronous = NORMAL');
  database.pragma('foreign_keys = ON');
}
