/**
 * Messages between the store (main thread) and the ledger's SQLite insert worker. Only plain
 * values cross: rows are already `CALL_COLUMNS` arrays, errors travel as name/message/code.
 */
import type { CallColumnValue } from './call-rows.ts';
import type { ThreadFailure } from './worker-session.ts';

/** `workerData` of the insert worker. */
export interface CallInsertWorkerData {
  /** Absolute path of the store's database file; the worker never creates one. */
  path: string;
  /** `CONTROL_SLOTS` 32-bit slots shared with the main thread (`CONTROL_STOP`, `CONTROL_IN_SQLITE`). */
  control: SharedArrayBuffer;
}

/** The thread's name, as the Worker's `name` and as the OS shows it (`nameThisThread`: at most 15 characters). */
export const CALL_INSERT_THREAD_NAME = 'seed-sql-insert';

/**
 * Slots of `CallInsertWorkerData.control`. The main thread sets `CONTROL_STOP` when the process is
 * about to exit (`CallInsertThread.abandon`): the worker starts no more SQLite work. The worker
 * holds `CONTROL_IN_SQLITE` at 1 while it runs SQLite, so the main thread can wait for it to be
 * out before `process.exit` terminates the thread (see `CallInsertThread.abandon` for why).
 */
export const CONTROL_STOP = 0;
export const CONTROL_IN_SQLITE = 1;
export const CONTROL_SLOTS = 2;

/** The message of a batch the worker refused because the process is exiting. */
export const STOPPED_MESSAGE = 'the ledger insert worker was stopped: the process is exiting';

export type CallInsertRequest =
  /** Insert `rows` in one transaction. */
  | { type: 'insert'; id: number; rows: CallColumnValue[][] }
  /** Close the connection; answered once it is closed (after every earlier request). */
  | { type: 'close'; id: number };

/** An error as it crossed the thread boundary. */
export type CallInsertFailure = ThreadFailure;

export type CallInsertReply =
  | { id: number; ok: true; inserted: number; threadId: number }
  | { id: number; ok: false; error: CallInsertFailure };
