/**
 * Messages between the store (main thread) and the ledger's SQLite insert worker. Only plain
 * values cross: rows are already `CALL_COLUMNS` arrays, errors travel as name/message/code.
 */
import type { CallColumnValue } from './call-rows.ts';

/** `workerData` of the insert worker. */
export interface CallInsertWorkerData {
  /** Absolute path of the store's database file; the worker never creates one. */
  path: string;
}

export type CallInsertRequest =
  /** Insert `rows` in one transaction. */
  | { type: 'insert'; id: number; rows: CallColumnValue[][] }
  /** Close the connection; answered once it is closed (after every earlier request). */
  | { type: 'close'; id: number };

/** An error as it crossed the thread boundary. */
export interface CallInsertFailure {
  name: string;
  message: string;
  /** better-sqlite3's `SQLITE_*` code, when it was a `SqliteError`. */
  code: string | null;
}

export type CallInsertReply =
  | { id: number; ok: true; inserted: number; threadId: number }
  | { id: number; ok: false; error: CallInsertFailure };
