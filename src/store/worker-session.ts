/**
 * Requests to a store worker thread (the ledger's SQLite insert worker, the SQLite read worker)
 * and their replies, matched by id. One `WorkerSession` is one started `Worker`: it keeps the
 * requests the worker owes replies to, references the worker only while it owes any (an idle
 * worker must not keep the process alive), and when the worker exits fails whatever it still
 * owed. Its owner starts a new session for the next request.
 */
import type { Worker } from 'node:worker_threads';
import BetterSqlite3 from 'better-sqlite3';
import { SeedError } from '../errors.ts';

/** An error as it crosses the thread boundary: only plain values cross. */
export interface ThreadFailure {
  name: string;
  message: string;
  /** better-sqlite3's `SQLITE_*` code, when it was a `SqliteError`. */
  code: string | null;
}

/** The worker's side: `error` as a `ThreadFailure`. */
export function describeFailure(error: unknown): ThreadFailure {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error), code: null };
  const { code } = error as { code?: unknown };
  return { name: error.name, message: error.message, code: typeof code === 'string' ? code : null };
}

/** The main thread's side: the error as the in-thread path would have thrown it; a `SqliteError` keeps its code. */
export function failureToError(failure: ThreadFailure): Error {
  if (failure.name === 'SqliteError' && failure.code !== null) return new BetterSqlite3.SqliteError(failure.message, failure.code);
  const error = new Error(failure.message);
  error.name = failure.name;
  return error;
}

interface PendingRequest<Reply> {
  resolve: (reply: Reply) => void;
  reject: (error: Error) => void;
}

export interface WorkerSessionOptions {
  worker: Worker;
  /**
   * The error for the requests still owed when the worker exits: `reason` is the worker's uncaught
   * error's message or its exit code, `owed` how many requests it had not answered.
   */
  stoppedError: (input: { reason: string; owed: number; cause: Error | null }) => Error;
  /** Called once the worker has exited, after its owed requests were failed. */
  onExit?: (code: number) => void;
}

export class WorkerSession<Request extends { id: number }, Reply extends { id: number }> {
  readonly worker: Worker;
  /** Resolves once the worker has exited. */
  readonly exited: Promise<void>;
  readonly #pending = new Map<number, PendingRequest<Reply>>();
  readonly #stoppedError: WorkerSessionOptions['stoppedError'];
  /** Set by the worker's 'error' event (an uncaught exception there), which precedes 'exit'. */
  #failure: Error | null = null;
  #nextId = 0;
  #running = true;

  constructor(options: WorkerSessionOptions) {
    this.worker = options.worker;
    this.#stoppedError = options.stoppedError;
    let exited!: () => void;
    this.exited = new Promise((resolve) => (exited = resolve));
    const { worker } = this;
    worker.on('message', (reply: Reply) => this.#settle(reply));
    worker.on('error', (error) => (this.#failure ??= error));
    // A reply that cannot be deserialized leaves its request unanswerable: end this worker,
    // which fails everything owed (the owner starts a fresh one for the next request).
    worker.on('messageerror', (error) => {
      this.#failure ??= error;
      void worker.terminate();
    });
    worker.on('exit', (code) => {
      this.#running = false;
      this.#failOwed(code);
      options.onExit?.(code);
      exited();
    });
    // Unreferenced until it owes a reply.
    worker.unref();
  }

  /** Requests posted and not yet answered. */
  get owed(): number {
    return this.#pending.size;
  }

  /** Posts the request `build` makes with the next id; resolves with the worker's reply. */
  request(build: (id: number) => Request): Promise<Reply> {
    if (!this.#running) return Promise.reject(this.#stoppedError({ reason: 'it had exited', owed: 1, cause: this.#failure }));
    const request = build((this.#nextId += 1));
    return new Promise<Reply>((resolve, reject) => {
      if (this.#pending.size === 0) this.worker.ref();
      this.#pending.set(request.id, { resolve, reject });
      this.worker.postMessage(request);
    });
  }

  #settle(reply: Reply): void {
    const request = this.#pending.get(reply.id);
    if (request === undefined) return;
    this.#pending.delete(reply.id);
    if (this.#pending.size === 0) this.worker.unref();
    request.resolve(reply);
  }

  #failOwed(code: number): void {
    if (this.#pending.size === 0) return;
    const reason = this.#failure === null ? `exit code ${code}` : this.#failure.message;
    const error = this.#stoppedError({ reason, owed: this.#pending.size, cause: this.#failure });
    for (const request of this.#pending.values()) request.reject(error);
    this.#pending.clear();
  }
}

/** The usual `stoppedError`: an internal error naming the worker and what it left unanswered. */
export function workerStoppedError(input: { worker: string; unanswered: (owed: number) => string }): WorkerSessionOptions['stoppedError'] {
  return ({ reason, owed, cause }) =>
    new SeedError('internal_error', `the ${input.worker} stopped (${reason}) before answering; ${input.unanswered(owed)}`, cause === null ? {} : { cause });
}

export interface WorkerSlotOptions<Request> {
  /** Starts a worker (on the first request, and on the next one after a worker exited). */
  start: () => Worker;
  stoppedError: WorkerSessionOptions['stoppedError'];
  /** The request that closes the worker's connection; the worker answers it after every earlier one. */
  closeRequest: (id: number) => Request;
}

/**
 * The worker a store thread runs its requests on: started on the first request, started again on
 * the next request after one exited (what it owed has failed), and closed once.
 */
export class WorkerSlot<Request extends { id: number }, Reply extends { id: number }> {
  readonly #options: WorkerSlotOptions<Request>;
  #session: WorkerSession<Request, Reply> | null = null;
  #closing: Promise<void> | null = null;
  #workersStarted = 0;

  constructor(options: WorkerSlotOptions<Request>) {
    this.#options = options;
  }

  /** The running worker's session, if one runs. */
  get session(): WorkerSession<Request, Reply> | null {
    return this.#session;
  }

  /** Workers started so far. */
  get workersStarted(): number {
    return this.#workersStarted;
  }

  /** Whether `close` was called. */
  get closed(): boolean {
    return this.#closing !== null;
  }

  /** The running worker's session, starting a worker if none runs (which may throw). */
  current(): WorkerSession<Request, Reply> {
    if (this.#session !== null) return this.#session;
    const worker = this.#options.start();
    this.#workersStarted += 1;
    const session = new WorkerSession<Request, Reply>({
      worker,
      stoppedError: this.#options.stoppedError,
      onExit: () => {
        if (this.#session === session) this.#session = null;
      },
    });
    this.#session = session;
    return session;
  }

  /** Waits for the requests in flight, closes the worker's connection and stops the worker. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const session = this.#session;
      if (session === null) return;
      // Answered after every earlier request: a worker handles its messages in order.
      await session.request(this.#options.closeRequest).catch(() => {});
      await session.worker.terminate();
      await session.exited;
    })();
    return this.#closing;
  }
}
