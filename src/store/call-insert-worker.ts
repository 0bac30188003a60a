/**
 * The ledger's SQLite insert worker: its own better-sqlite3 connection to the store's file,
 * binding and stepping the one prepared insert for each batch the main thread posts, so the
 * work stays off the gateway's event loop. Batches run one at a time in arrival order (the
 * thread is single-threaded); each reply carries the request's id. Started by
 * `CallInsertThread` (call-insert-thread.ts), never imported.
 */
import { parentPort, threadId, workerData } from 'node:worker_threads';
import BetterSqlite3 from 'better-sqlite3';
import type { CallColumnValue } from './call-rows.ts';
import {
  CALL_INSERT_THREAD_NAME,
  CONTROL_IN_SQLITE,
  CONTROL_STOP,
  STOPPED_MESSAGE,
  type CallInsertReply,
  type CallInsertRequest,
  type CallInsertWorkerData,
} from './call-insert-protocol.ts';
import { prepareSqliteInsert, type SqliteRowsInsert } from './sqlite-call-insert.ts';
import { configureSqliteConnection, SQLITE_BUSY_TIMEOUT_MS } from './sqlite-connection.ts';
import { describeFailure } from './worker-session.ts';
import { nameThisThread } from '../worker.ts';

const port = parentPort;
if (port === null) throw new Error('call-insert-worker.ts runs as a worker thread only');
nameThisThread(CALL_INSERT_THREAD_NAME);
const { path, control: controlBuffer } = workerData as CallInsertWorkerData;
const control = new Int32Array(controlBuffer);

// Both opened on the first batch and kept on failure, like the in-thread path: the store may
// open before the table exists, and a failed prepare is that batch's error, not the worker's.
let database: BetterSqlite3.Database | null = null;
let insertRows: SqliteRowsInsert | null = null;

port.on('message', (request: CallInsertRequest) => {
  port.postMessage(request.type === 'insert' ? insert(request) : close(request));
});

function insert({ id, rows }: { id: number; rows: CallColumnValue[][] }): CallInsertReply {
  try {
    return { id, ok: true, inserted: insertWaitingForLock(rows), threadId };
  } catch (error) {
    return { id, ok: false, error: describeFailure(error) };
  }
}

/**
 * Runs the insert, waiting up to `SQLITE_BUSY_TIMEOUT_MS` for another connection's write lock as
 * SQLite's busy_timeout would, but between attempts, in `Atomics.wait`: SQLite's own wait sleeps
 * inside a native call that nothing interrupts, so a process exiting while another process held
 * the lock first waited out the timeout, then aborted (better-sqlite3 throwing SQLITE_BUSY into
 * the terminating thread: `FATAL ERROR: v8::ToLocalChecked Empty MaybeLocal`, SIGABRT).
 * The wait is on the control's stop slot, so the main thread's `abandon` ends it at once.
 */
function insertWaitingForLock(rows: CallColumnValue[][]): number {
  const deadline = Date.now() + SQLITE_BUSY_TIMEOUT_MS;
  for (let waitMs = 1; ; waitMs = Math.min(waitMs * 2, 25)) {
    try {
      return inSqlite(() => {
        database ??= openDatabase();
        insertRows ??= prepareSqliteInsert(database);
        return insertRows(rows);
      });
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (typeof code !== 'string' || !code.startsWith('SQLITE_BUSY') || Date.now() + waitMs > deadline) throw error;
    }
    Atomics.wait(control, CONTROL_STOP, 0, waitMs);
  }
}

/**
 * Runs `work` (SQLite calls) with the in-SQLite slot held, unless the main thread has said stop.
 * The slot is set before the stop slot is read, and the main thread sets stop before it reads
 * this one: whichever comes second sees the other's write, so the main thread never takes the
 * thread for idle while it is about to run SQLite.
 */
function inSqlite<T>(work: () => T): T {
  Atomics.store(control, CONTROL_IN_SQLITE, 1);
  try {
    if (Atomics.load(control, CONTROL_STOP) !== 0) throw new Error(STOPPED_MESSAGE);
    return work();
  } finally {
    Atomics.store(control, CONTROL_IN_SQLITE, 0);
    Atomics.notify(control, CONTROL_IN_SQLITE);
  }
}

function close({ id }: { id: number }): CallInsertReply {
  try {
    inSqlite(() => database?.close());
    database = null;
    insertRows = null;
    return { id, ok: true, inserted: 0, threadId };
  } catch (error) {
    return { id, ok: false, error: describeFailure(error) };
  }
}

function openDatabase(): BetterSqlite3.Database {
  // The main connection created the file; a missing one means the store is gone, not new.
  const opened = new BetterSqlite3(path, { fileMustExist: true });
  try {
    configureSqliteConnection(opened);
    // Waits for the write lock happen in `insertWaitingForLock`, where the thread can be stopped.
    opened.pragma('busy_timeout = 0');
  } catch (error) {
    opened.close();
    throw error;
  }
  return opened;
}
