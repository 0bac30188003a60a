/**
 * Messages between the store (main thread) and its SQLite read worker (sqlite-read-worker.ts).
 * Only plain values cross: a compiled query's SQL and parameters one way, its rows the other.
 */
import type { ThreadFailure } from './worker-session.ts';

/** The thread's name, as the Worker's `name` and as the OS shows it (`nameThisThread`: at most 15 characters). */
export const SQLITE_READ_THREAD_NAME = 'seed-sql-read';

/** `workerData` of the read worker. */
export interface SqliteReadWorkerData {
  /** Absolute path of the store's database file; the worker opens it read-only and never creates one. */
  path: string;
}

/** A parameter as better-sqlite3 binds it. */
export type SqliteParameter = string | number | bigint | boolean | null | Uint8Array;

export type SqliteReadRequest =
  /** Run one read-only statement and return its rows. */
  | { type: 'query'; id: number; sql: string; parameters: readonly SqliteParameter[] }
  /** Close the connection; answered once it is closed (after every earlier request). */
  | { type: 'close'; id: number };

export type SqliteReadReply = { id: number; ok: true; rows: unknown[] } | { id: number; ok: false; error: ThreadFailure };
