/**
 * The reports of a SQLite file store on a worker thread (src/store/sqlite-read-thread.ts): they
 * answer exactly as the main connection does, the event loop runs while one reads, the worker's
 * connection cannot write, a dying worker fails its reads loudly and is replaced, and closing
 * leaves no thread behind.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Worker } from 'node:worker_threads';
import { openStore, type CallPage, type Store } from '../src/store/index.ts';
import { SqliteReadThread, startSqliteReadWorker } from '../src/store/sqlite-read-thread.ts';
import type { CallRecord } from '../src/ledger/types.ts';
import { makeCall } from './helpers/backends.ts';
import { reachableThread } from './helpers/workers.ts';

const DAY_MS = 86_400_000;
const START = Date.UTC(2026, 0, 5);

/** `count` calls over 10 days, of 3 routes, 4 deployments and 6 keys in 2 teams. */
function calls(count: number): CallRecord[] {
  return Array.from({ length: count }, (_, index) =>
    makeCall({
      id: `call_${String(index).padStart(6, '0')}`,
      startedAt: START + Math.floor((index * 10 * DAY_MS) / count),
      route: `route-${index % 3}`,
      servedRoute: `route-${index % 3}`,
      deployment: `deployment-${index % 4}`,
      keyId: `key-${index % 6}`,
      teamId: `team-${index % 2}`,
      promptTokens: 100 + (index % 50),
      costUsd: (index % 7) / 1000,
      status: index % 11 === 0 ? 'error' : 'ok',
      clientRequestId: index % 5 === 0 ? `client-${index}` : null,
    }),
  );
}

/** A `SqliteReadThread` whose workers the test can reach, to stop one as a crash would. */
function reachable(path: string): { thread: SqliteReadThread; workers: Worker[] } {
  return reachableThread(startSqliteReadWorker, (startWorker) => new SqliteReadThread({ path, startWorker }));
}

describe('SQLite read worker', () => {
  let directory: string;
  let path: string;
  let onWorker: Store;
  let onMain: Store;

  before(async () => {
    directory = mkdtempSync(join(tmpdir(), 'seed-read-worker-'));
    path = join(directory, 'seed.db');
    onWorker = await openStore({ url: `sqlite:${path}` });
    onMain = await openStore({ url: `sqlite:${path}`, readWorker: false });
    const records = calls(20_000);
    for (let at = 0; at < records.length; at += 1_000) await onWorker.insertCalls(records.slice(at, at + 1_000));
  });

  after(async () => {
    await onWorker.close();
    await onMain.close();
    rmSync(directory, { recursive: true, force: true });
  });

  test('the reports answer as the main connection does', async () => {
    const week = { since: START, until: START + 7 * DAY_MS };
    for (const query of [
      { groupBy: ['route', 'day'] as const, ...week },
      { groupBy: ['team', 'deployment'] as const, ...week, teamId: 'team-1' },
      { groupBy: ['key'] as const, since: START + DAY_MS, until: START + 2 * DAY_MS, keyId: 'key-3' },
    ]) {
      const rows = await onWorker.usage({ ...query, groupBy: [...query.groupBy] });
      assert.ok(rows.length > 0, `${JSON.stringify(query)} has rows`);
      assert.deepEqual(rows, await onMain.usage({ ...query, groupBy: [...query.groupBy] }));
    }
    assert.deepEqual(
      await onWorker.explainUsage({ groupBy: ['route'], ...week }),
      await onMain.explainUsage({ groupBy: ['route'], ...week }),
    );
    // Pages through the cursor, with filters.
    for (const filters of [{}, { route: 'route-2', deployment: 'deployment-1' }, { status: 'error' as const, teamId: 'team-0', since: START + DAY_MS }]) {
      let cursor: string | null = null;
      let pages = 0;
      do {
        const [page, expected]: [CallPage, CallPage] = await Promise.all([onWorker.listCalls({ filters, limit: 500, cursor }), onMain.listCalls({ filters, limit: 500, cursor })]);
        assert.deepEqual(page, expected);
        cursor = page.nextCursor;
        pages += 1;
      } while (cursor !== null && pages < 4);
      assert.ok(pages > 1, `${JSON.stringify(filters)} spans pages`);
    }
    assert.deepEqual(await onWorker.getCall('call_000123'), await onMain.getCall('call_000123'));
    assert.equal(await onWorker.getCall('call_missing'), null);
  });

  test('a report waits without stopping the event loop; on the main connection it stops it', async () => {
    const query = { groupBy: ['route' as const, 'deployment' as const, 'day' as const], since: START, until: START + 10 * DAY_MS };
    for (const [store, loopRuns] of [
      [onWorker, true],
      [onMain, false],
    ] as const) {
      let ranMeanwhile = false;
      const immediate = setImmediate(() => (ranMeanwhile = true));
      const rows = await store.usage(query);
      clearImmediate(immediate);
      assert.ok(rows.length > 0);
      assert.equal(ranMeanwhile, loopRuns, loopRuns ? 'the event loop turned while the worker read' : 'the main connection reads within the turn');
    }
  });

  test('reads run on a read-only connection: SQLite refuses a write, and the error keeps its code', async () => {
    const thread = new SqliteReadThread({ path });
    try {
      await assert.rejects(thread.query('delete from calls', []), (error: Error & { code?: string }) => {
        assert.equal(error.name, 'SqliteError');
        assert.equal(error.code, 'SQLITE_READONLY');
        return true;
      });
      await assert.rejects(thread.query('select * from no_such_table', []), /no such table/);
      assert.deepEqual(await thread.query('select count(*) as n from calls where team_id = ?', ['team-1']), [{ n: 10_000 }]);
    } finally {
      await thread.close();
    }
  });

  test('a worker that dies fails its reads loudly, and the next read starts a new one', async () => {
    const { thread, workers } = reachable(path);
    try {
      assert.deepEqual(await thread.query('select 1 as one', []), [{ one: 1 }]);
      // A read that runs long enough (a counted recursion, ~0.1–0.5 s) that the worker cannot
      // answer it before it is stopped: a quick one could be answered first, and not fail.
      const pending = thread.query('with recursive n(i) as (select 1 union all select i + 1 from n where i < 3000000) select count(*) as n from n', []);
      await workers[0]?.terminate();
      await assert.rejects(pending, /SQLite read worker stopped \(exit code 1\) before answering; 1 read\(s\) failed/);
      assert.deepEqual(await thread.query('select count(*) as n from calls', []), [{ n: 20_000 }]);
      assert.equal(thread.stats().workersStarted, 2);
    } finally {
      await thread.close();
    }
    assert.equal(thread.stats().running, false, 'closing stops the worker');
    await assert.rejects(thread.query('select 1', []), /the store is closed/);
  });

  test('a file that does not exist fails the read, not the process', async () => {
    const thread = new SqliteReadThread({ path: join(directory, 'missing.db') });
    try {
      await assert.rejects(thread.query('select 1', []), /unable to open database file|directory does not exist/);
    } finally {
      await thread.close();
    }
  });
});
