/**
 * SQLite's batch insert of calls: one single-row statement, prepared once per connection, run
 * for each row inside one transaction. Per row that is a bind and a step, with no SQL text in
 * between. Shared by the in-thread path (`sqlite::memory:`) and the insert worker (files).
 */
import type BetterSqlite3 from 'better-sqlite3';
import { CALL_COLUMNS, type CallColumnValue } from './call-rows.ts';

/** `"a", "b", …` for the calls columns. Every name is a fixed snake_case identifier from call-rows.ts. */
export const QUOTED_CALL_COLUMNS = CALL_COLUMNS.map((column) => `"${column}"`).join(', ');

const INSERT_CALL = `insert into "calls" (${QUOTED_CALL_COLUMNS}) values (${CALL_COLUMNS.map(() => '?').join(', ')}) on conflict ("id") do nothing`;

/** Inserts rows of `CALL_COLUMNS` values in one transaction; returns how many were new. */
export type SqliteRowsInsert = (rows: readonly (readonly CallColumnValue[])[]) => number;

/** Prepares the insert on `sqlite`; throws when the statement does not compile (e.g. no `calls` table yet). */
export function prepareSqliteInsert(sqlite: BetterSqlite3.Database): SqliteRowsInsert {
  const statement = sqlite.prepare<CallColumnValue[]>(INSERT_CALL);
  // A transaction function commits when it returns and rolls back (rethrowing) when a row fails.
  const insertAll = sqlite.transaction((rows: readonly (readonly CallColumnValue[])[]) => {
    let inserted = 0;
    for (const row of rows) inserted += statement.run(...row).changes;
    return inserted;
  });
  // IMMEDIATE takes the write lock at BEGIN, where SQLite honours busy_timeout while another
  // connection writes. A deferred BEGIN would take a read snapshot first and could fail to
  // upgrade it (SQLITE_BUSY at once) if the other connection committed in between.
  return (rows) => insertAll.immediate(rows);
}
