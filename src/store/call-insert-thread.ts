/**
 * The main thread's side of the ledger's SQLite insert worker (call-insert-worker.ts): starts
 * it on the first batch, matches replies to requests by id, and stops it when the store closes.
 *
 * Why a worker: better-sqlite3 is synchronous, so on the event loop every ledger flush stalled
 * the gateway (6–8% of its CPU and most of the p99 tail). The worker has its own connection to
 * the same WAL file. Two connections means two writers, kept safe by:
 *
 * - The main thread never waits for the worker synchronously; it only awaits replies.
 * - The worker takes the write lock with BEGIN IMMEDIATE and waits for it at most
 *   `busy_timeout` (5 s); a main-connection transaction held longer (audit log, dataset
 *   import) makes the batch fail with SQLITE_BUSY, and the ledger writer spills and retries it.
 *   A main-connection write that finds the worker's transaction open waits (synchronously,
 *   better-sqlite3 has no other way) for that one batch to commit, as it would for another process.
 * - The worker's transaction contains only the batch: it never holds the lock while waiting
 *   for anything else, so neither side can wait on the other in a cycle.
 */
import type { Worker } from 'node:worker_threads';
import { SeedError } from '../errors.ts';
import { startModuleWorker } from '../worker.ts';
import type { CallColumnValue } from './call-rows.ts';
import {
  CALL_INSERT_THREAD_NAME,
  CONTROL_IN_SQLITE,
  CONTROL_SLOTS,
  CONTROL_STOP,
  STOPPED_MESSAGE,
  type CallInsertReply,
  type CallInsertRequest,
  type CallInsertWorkerData,
} from './call-insert-protocol.ts';
import { failureToError, WorkerSlot, workerStoppedError, type WorkerSession } from './worker-session.ts';

/** How long `abandon` waits, at most, for a SQLite statement the worker is running to return. */
export const ABANDON_WAIT_MS = 2_000;

export interface CallInsertThreadOptions {
  /** The database file; it must exist (the store's main connection created it). */
  path: string;
  /** Starts the worker (default: call-insert-worker.ts beside this module). Tests wrap it to reach the `Worker`. */
  startWorker?: (workerData: CallInsertWorkerData) => Worker;
}

/** What `CallInsertThread.stats` reports, for tests and diagnostics. */
export interface CallInsertThreadStats {
  /** Workers started so far (a dead worker is replaced on the next batch). */
  workersStarted: number;
  /** Whether a worker is running now. */
  running: boolean;
  /** Batches posted and not yet answered. */
  pending: number;
  /** The thread that stored the last successful batch, as the worker reported it. */
  lastThreadId: number | null;
}

type Session = WorkerSession<CallInsertRequest, CallInsertReply>;

const stoppedError = workerStoppedError({ worker: 'SQLite ledger insert worker', unanswered: (owed) => `${owed} batch(es) may not be stored` });

export class CallInsertThread {
  readonly #worker: WorkerSlot<CallInsertRequest, CallInsertReply>;
  #lastThreadId: number | null = null;
  /** Shared with every worker this starts (`CallInsertWorkerData.control`). */
  readonly #control = new Int32Array(new SharedArrayBuffer(CONTROL_SLOTS * Int32Array.BYTES_PER_ELEMENT));
  #abandoned = false;

  constructor(options: CallInsertThreadOptions) {
    const { path, startWorker = startCallInsertWorker } = options;
    this.#worker = new WorkerSlot({
      start: () => startWorker({ path, control: this.#control.buffer as SharedArrayBuffer }),
      stoppedError,
      closeRequest: (id) => ({ type: 'close', id }),
    });
  }

  /** Inserts `rows` in one transaction on the worker's connection; resolves with how many were new. */
  insert(rows: CallColumnValue[][]): Promise<number> {
    if (this.#worker.closed) return Promise.reject(new SeedError('internal_error', 'the store is closed; calls were not inserted'));
    if (this.#abandoned) return Promise.reject(new SeedError('internal_error', `${STOPPED_MESSAGE}; calls were not inserted`));
    try {
      return this.#request(this.#worker.current(), (id) => ({ type: 'insert', id, rows }));
    } catch (error) {
      // A worker that cannot even start fails this batch (the ledger writer spills it), not the caller.
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }

  /** Waits for the batches in flight, closes the worker's connection and stops the worker. Idempotent. */
  close(): Promise<void> {
    return this.#worker.close();
  }

  /**
   * For a process about to exit without `close`: the worker starts no more SQLite work (a batch
   * waiting for another connection's write lock fails at once), and this waits, blocking the
   * event loop, up to `waitMs` for a statement it is running to return. Returns whether the
   * worker is out of SQLite.
   *
   * Why: `process.exit` terminates worker threads, and better-sqlite3 aborts the whole process
   * (`FATAL ERROR: v8::ToLocalChecked Empty MaybeLocal`, SIGABRT instead of the exit code) when a
   * statement fails in a thread being terminated: it cannot make the error it throws. A worker
   * retrying a batch while another process held the lock did that now and then at an exit.
   */
  abandon(waitMs: number = ABANDON_WAIT_MS): boolean {
    this.#abandoned = true;
    Atomics.store(this.#control, CONTROL_STOP, 1);
    Atomics.notify(this.#control, CONTROL_STOP);
    const deadline = performance.now() + waitMs;
    while (Atomics.load(this.#control, CONTROL_IN_SQLITE) !== 0) {
      const left = deadline - performance.now();
      if (left <= 0) return false;
      Atomics.wait(this.#control, CONTROL_IN_SQLITE, 1, left);
    }
    return true;
  }

  stats(): CallInsertThreadStats {
    return {
      workersStarted: this.#worker.workersStarted,
      running: this.#worker.session !== null,
      pending: this.#worker.session?.owed ?? 0,
      lastThreadId: this.#lastThreadId,
    };
  }

  async #request(session: Session, build: (id: number) => CallInsertRequest): Promise<number> {
    const reply = await session.request(build);
    if (!reply.ok) throw failureToError(reply.error);
    this.#lastThreadId = reply.threadId;
    return reply.inserted;
  }
}

/** Starts call-insert-worker.ts (from sources or dist/, see src/worker.ts). */
export function startCallInsertWorker(workerData: CallInsertWorkerData): Worker {
  return startModuleWorker({ module: './call-insert-worker.ts', from: import.meta.url, options: { workerData, name: CALL_INSERT_THREAD_NAME } });
}
