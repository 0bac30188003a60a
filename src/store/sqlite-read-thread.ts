/**
 * The store's reads of a SQLite file, on a worker thread: a kysely dialect whose queries run in
 * sqlite-read-worker.ts on a read-only connection of their own.
 *
 * Why: better-sqlite3 is synchronous, so on the main connection a report stops the gateway's event
 * loop for as long as it reads. Over a ledger of a million calls (a week at 1.7 calls a second)
 * a day's usage by route took ~78 ms and a team's week ~159 ms; a list filtered on a route with no
 * calls scans the whole table (bench/micro/ledger-queries.ts). Ledgers grow with traffic, and no
 * request is served meanwhile. In WAL mode a read-only connection reads beside the writers (the
 * main connection and the ledger's insert worker) without blocking them or being blocked.
 *
 * Only reads go here (the dialect runs no transactions, and SQLite refuses a write on the
 * read-only connection); statements that must see the main connection's uncommitted writes stay
 * on it. A read sees what was committed when it started.
 */
import type { Worker } from 'node:worker_threads';
import {
  Kysely,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
  type CompiledQuery,
  type DatabaseConnection,
  type DatabaseIntrospector,
  type Dialect,
  type DialectAdapter,
  type Driver,
  type QueryCompiler,
  type QueryResult,
} from 'kysely';
import { SeedError } from '../errors.ts';
import { startModuleWorker } from '../worker.ts';
import { SQLITE_READ_THREAD_NAME, type SqliteParameter, type SqliteReadReply, type SqliteReadRequest, type SqliteReadWorkerData } from './sqlite-read-protocol.ts';
import { failureToError, WorkerSlot, workerStoppedError } from './worker-session.ts';

export interface SqliteReadThreadOptions {
  /** The database file; it must exist (the store's main connection created it). */
  path: string;
  /** Starts the worker (default: sqlite-read-worker.ts beside this module). Tests wrap it to reach the `Worker`. */
  startWorker?: (workerData: SqliteReadWorkerData) => Worker;
}

const stoppedError = workerStoppedError({ worker: 'SQLite read worker', unanswered: (owed) => `${owed} read(s) failed` });

/** Runs read-only statements on the worker, one at a time in the order asked; a worker that died is replaced on the next. */
export class SqliteReadThread {
  readonly #worker: WorkerSlot<SqliteReadRequest, SqliteReadReply>;

  constructor(options: SqliteReadThreadOptions) {
    const { path, startWorker = startSqliteReadWorker } = options;
    this.#worker = new WorkerSlot({
      start: () => startWorker({ path }),
      stoppedError,
      closeRequest: (id) => ({ type: 'close', id }),
    });
  }

  /** The rows of `sql` with `parameters`. */
  async query(sql: string, parameters: readonly SqliteParameter[]): Promise<unknown[]> {
    if (this.#worker.closed) throw new SeedError('internal_error', 'the store is closed');
    const reply = await this.#worker.current().request((id) => ({ type: 'query', id, sql, parameters }));
    if (!reply.ok) throw failureToError(reply.error);
    return reply.rows;
  }

  /** Waits for the reads in flight, closes the worker's connection and stops the worker. Idempotent. */
  close(): Promise<void> {
    return this.#worker.close();
  }

  /** Workers started so far, and whether one runs now (for tests). */
  stats(): { workersStarted: number; running: boolean } {
    return { workersStarted: this.#worker.workersStarted, running: this.#worker.session !== null };
  }
}

/** Starts sqlite-read-worker.ts (from sources or dist/, see src/worker.ts). */
export function startSqliteReadWorker(workerData: SqliteReadWorkerData): Worker {
  return startModuleWorker({ module: './sqlite-read-worker.ts', from: import.meta.url, options: { workerData, name: SQLITE_READ_THREAD_NAME } });
}

/** A kysely instance whose queries run on `thread`; destroying it closes the thread. */
export function sqliteReader<Database>(thread: SqliteReadThread): Kysely<Database> {
  return new Kysely<Database>({ dialect: new SqliteReadDialect(thread) });
}

class SqliteReadDialect implements Dialect {
  readonly #thread: SqliteReadThread;

  constructor(thread: SqliteReadThread) {
    this.#thread = thread;
  }

  createAdapter(): DialectAdapter {
    return new SqliteAdapter();
  }

  createDriver(): Driver {
    return new SqliteReadDriver(this.#thread);
  }

  createIntrospector(db: Kysely<unknown>): DatabaseIntrospector {
    return new SqliteIntrospector(db);
  }

  createQueryCompiler(): QueryCompiler {
    return new SqliteQueryCompiler();
  }
}

class SqliteReadDriver implements Driver {
  readonly #connection: SqliteReadConnection;
  readonly #thread: SqliteReadThread;

  constructor(thread: SqliteReadThread) {
    this.#thread = thread;
    this.#connection = new SqliteReadConnection(thread);
  }

  async init(): Promise<void> {}

  // One connection serves every query: the worker runs them one at a time, in the order posted.
  async acquireConnection(): Promise<DatabaseConnection> {
    return this.#connection;
  }

  async releaseConnection(): Promise<void> {}

  beginTransaction(): Promise<void> {
    return Promise.reject(new Error('the SQLite read connection runs no transactions: use the store’s main connection'));
  }

  commitTransaction(): Promise<void> {
    return this.beginTransaction();
  }

  rollbackTransaction(): Promise<void> {
    return this.beginTransaction();
  }

  destroy(): Promise<void> {
    return this.#thread.close();
  }
}

class SqliteReadConnection implements DatabaseConnection {
  readonly #thread: SqliteReadThread;

  constructor(thread: SqliteReadThread) {
    this.#thread = thread;
  }

  async executeQuery<Row>(compiledQuery: CompiledQuery): Promise<QueryResult<Row>> {
    const rows = await this.#thread.query(compiledQuery.sql, compiledQuery.parameters as readonly SqliteParameter[]);
    return { rows: rows as Row[] };
  }

  // Part of kysely's interface; the reports read whole results.
  async *streamQuery<Row>(): AsyncIterableIterator<QueryResult<Row>> {
    throw new Error('the SQLite read connection does not stream: read the whole result');
  }
}
