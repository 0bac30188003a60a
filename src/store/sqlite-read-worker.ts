/**
 * The store's SQLite read worker: its own read-only better-sqlite3 connection to the store's file,
 * running the statements the main thread posts (usage reports, call lists) one at a time, so that
 * a long read does not stop the gateway's event loop. Started by `SqliteReadThread`
 * (sqlite-read-thread.ts), never imported.
 */
import { parentPort, workerData } from 'node:worker_threads';
import BetterSqlite3 from 'better-sqlite3';
import { SQLITE_READ_THREAD_NAME, type SqliteReadReply, type SqliteReadRequest, type SqliteReadWorkerData } from './sqlite-read-protocol.ts';
import { SQLITE_BUSY_TIMEOUT_MS } from './sqlite-connection.ts';
import { describeFailure } from './worker-session.ts';
import { nameThisThread } from '../worker.ts';

const port = parentPort;
if (port === null) throw new Error('sqlite-read-worker.ts runs as a worker thread only');
nameThisThread(SQLITE_READ_THREAD_NAME);
const { path } = workerData as SqliteReadWorkerData;

/** Statements the reports repeat (a dashboard polls the same few), prepared once. */
const MAX_PREPARED = 64;

// Opened on the first query, so that a worker started before the file exists fails that query,
// not the thread; kept once open.
let database: BetterSqlite3.Database | null = null;
const prepared = new Map<string, BetterSqlite3.Statement>();

port.on('message', (request: SqliteReadRequest) => {
  port.postMessage(request.type === 'query' ? query(request) : close(request));
});

function query({ id, sql, parameters }: Extract<SqliteReadRequest, { type: 'query' }>): SqliteReadReply {
  try {
    database ??= open();
    let statement = prepared.get(sql);
    if (statement === undefined) {
      statement = database.prepare(sql);
      if (prepared.size >= MAX_PREPARED) prepared.clear();
      prepared.set(sql, statement);
    }
    // The connection is read-only: SQLite refuses a write itself (SQLITE_READONLY).
    const rows = statement.reader ? statement.all(...parameters) : (statement.run(...parameters), []);
    return { id, ok: true, rows };
  } catch (error) {
    return { id, ok: false, error: describeFailure(error) };
  }
}

function close({ id }: { id: number }): SqliteReadReply {
  try {
    prepared.clear();
    database?.close();
    database = null;
    return { id, ok: true, rows: [] };
  } catch (error) {
    return { id, ok: false, error: describeFailure(error) };
  }
}

function open(): BetterSqlite3.Database {
  // The main connection created the file and set it to WAL, which a read-only connection
  // cannot do but reads alongside the writers.
  const opened = new BetterSqlite3(path, { readonly: true, fileMustExist: true });
  opened.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
  return opened;
}
