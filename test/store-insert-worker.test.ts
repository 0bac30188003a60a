/**
 * The SQLite ledger insert on a worker thread (src/store/call-insert-thread.ts): a file store's
 * batches are written by another thread with its own connection, so these tests pin what that
 * move must keep and what it adds — the rows land off the main thread and are visible to the
 * main connection at once; a dying worker fails its batches loudly and is replaced; closing
 * waits for batches in flight and leaves no thread behind; an idle worker does not keep the
 * process alive; and the two connections never deadlock on SQLite's single write lock.
 */
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { threadId, Worker } from 'node:worker_threads';
import BetterSqlite3 from 'better-sqlite3';
import { openStore, type Store } from '../src/store/index.ts';
import { connect } from '../src/store/connect.ts';
import { createCallInserter } from '../src/store/calls.ts';
import { CallInsertThread, startCallInsertWorker } from '../src/store/call-insert-thread.ts';
import { toCallValues } from '../src/store/call-rows.ts';
import { SQLITE_BUSY_TIMEOUT_MS } from '../src/store/sqlite-connection.ts';
import type { CallRecord } from '../src/ledger/types.ts';
import { countCalls, makeCall, storePerSuite, testBackends, type TestDatabase } from './helpers/backends.ts';
import { reachableThread } from './helpers/workers.ts';

const sqliteBackend = (await testBackends()).find((backend) => backend.name === 'sqlite');
if (sqliteBackend === undefined) throw new Error('no sqlite backend');
const backend = sqliteBackend;

function calls({ count, teamId }: { count: number; teamId: string }): CallRecord[] {
  return Array.from({ length: count }, (_, index) => makeCall({ id: `${teamId}_${index}`, teamId, startedAt: 1_750_000_000_000 + index }));
}

function rowsOf(records: readonly CallRecord[]) {
  return records.map((call) => toCallValues({ dialect: 'sqlite', call }));
}

function pathOf(database: TestDatabase): string {
  return database.storeOptions.url.slice('sqlite:'.length);
}

/** A `CallInsertThread` whose workers the test can reach, to stop one as a crash would. */
function reachable(path: string): { thread: CallInsertThread; workers: Worker[] } {
  return reachableThread(startCallInsertWorker, (startWorker) => new CallInsertThread({ path, startWorker }));
}

describe('SQLite insert worker', () => {
  let database: TestDatabase;
  let store: Store;
  storePerSuite(backend, (opened) => ({ database, store } = opened));

  test('a file store inserts on another thread; sqlite::memory: stays on this one', async () => {
    const connection = await connect({ url: database.storeOptions.url });
    const inserter = createCallInserter({ connection });
    try {
      assert.ok(inserter.thread !== null, 'a file store has an insert thread');
      assert.deepEqual(await inserter.insertCalls(calls({ count: 3, teamId: 'thread' })), { inserted: 3 });
      const stats = inserter.thread.stats();
      assert.equal(stats.workersStarted, 1);
      assert.notEqual(stats.lastThreadId, null);
      assert.notEqual(stats.lastThreadId, threadId, 'the batch was stored by the worker, not the main thread');
    } finally {
      await inserter.close();
      await connection.db.destroy();
    }
    const memory = await connect({ url: 'sqlite::memory:' });
    try {
      assert.equal(createCallInserter({ connection: memory }).thread, null);
    } finally {
      await memory.db.destroy();
    }
  });

  test('the event loop keeps turning while a large batch is written', async () => {
    const records = calls({ count: 20_000, teamId: 'loop' });
    // Counted from the moment insertCalls returns its promise: the conversion to column values
    // and the post to the worker happen before that, on this thread, by design.
    const insert = store.insertCalls(records);
    let turns = 0;
    let done = false;
    const spin = () => {
      turns += 1;
      if (!done) setImmediate(spin);
    };
    setImmediate(spin);
    assert.deepEqual(await insert, { inserted: 20_000 });
    done = true;
    // Written on the event loop, 20 000 rows are one synchronous step of ~100 ms or more, with
    // at most a turn or two around it; from the worker, the loop turns all the while.
    assert.ok(turns >= 20, `the event loop turned ${turns} times during the insert`);
  });

  test('rows the worker committed are visible to the main connection at once', async () => {
    for (let round = 0; round < 20; round += 1) {
      const batch = calls({ count: 50, teamId: `visible_${round}` });
      assert.deepEqual(await store.insertCalls(batch), { inserted: 50 });
      assert.deepEqual(await store.getCall(`visible_${round}_49`), batch[49]);
      const page = await store.listCalls({ filters: { teamId: `visible_${round}` }, limit: 1000 });
      assert.equal(page.calls.length, 50);
    }
  });

  test('a table missing at open rejects that insert, not openStore, and the next insert prepares again', async () => {
    const fresh = await backend.createDatabase();
    const early = await openStore({ ...fresh.storeOptions, migrate: false });
    try {
      await assert.rejects(early.insertCalls(calls({ count: 2, teamId: 'early' })), (error: Error & { code?: string }) => {
        assert.equal(error.name, 'SqliteError');
        assert.equal(error.code, 'SQLITE_ERROR');
        assert.match(error.message, /no such table: calls/);
        return true;
      });
      const migrated = await openStore(fresh.storeOptions);
      await migrated.close();
      assert.deepEqual(await early.insertCalls(calls({ count: 2, teamId: 'early' })), { inserted: 2 });
    } finally {
      await early.close();
      await fresh.dispose();
    }
  });

  test('a statement failure rejects the batch, stores none of it, and keeps the worker', async () => {
    const { thread } = reachable(pathOf(database));
    try {
      const valid = rowsOf(calls({ count: 10, teamId: 'failing' }));
      const invalid = rowsOf([makeCall({ id: 'failing_invalid', teamId: 'failing', route: null as unknown as string })]);
      await assert.rejects(thread.insert([...valid, ...invalid]), (error: Error & { code?: string }) => {
        assert.equal(error.name, 'SqliteError');
        assert.equal(error.code, 'SQLITE_CONSTRAINT_NOTNULL');
        return true;
      });
      assert.equal(await countCalls({ store, teamId: 'failing' }), 0);
      assert.equal(await thread.insert(valid), 10);
      assert.equal(thread.stats().workersStarted, 1);
    } finally {
      await thread.close();
    }
  });

  test('a worker that dies fails every batch in flight, and the next batch starts a new worker', async () => {
    const { thread, workers } = reachable(pathOf(database));
    try {
      const batches = Array.from({ length: 5 }, (_, index) => calls({ count: 200, teamId: `dies_${index}` }));
      assert.equal(await thread.insert(rowsOf(batches[0] ?? [])), 200);
      const first = workers[0];
      assert.ok(first !== undefined);
      const firstThreadId = first.threadId;
      const inFlight = batches.slice(1).map((batch) => thread.insert(rowsOf(batch)));
      const outcomes = Promise.allSettled(inFlight);
      await first.terminate();
      const settled = await outcomes;
      // The worker may have answered a batch before it stopped; the rest must fail, none hang.
      assert.ok(settled.some((outcome) => outcome.status === 'rejected'), 'batches in flight were failed');
      for (const outcome of settled) {
        if (outcome.status === 'fulfilled') assert.equal(outcome.value, 200);
        else assert.match(String(outcome.reason), /SQLite ledger insert worker stopped \(exit code 1\) before answering; \d batch\(es\) may not be stored/);
      }
      assert.equal(thread.stats().running, false);
      assert.equal(thread.stats().pending, 0);

      // What the ledger writer does with a failed batch: spill it and insert it again later.
      // Whatever the dead worker had committed is skipped; nothing is stored twice or lost.
      for (const batch of batches.slice(1)) await thread.insert(rowsOf(batch));
      for (let index = 0; index < batches.length; index += 1) assert.equal(await countCalls({ store, teamId: `dies_${index}` }), 200);
      assert.equal(thread.stats().workersStarted, 2);
      assert.equal(thread.stats().running, true);
      assert.notEqual(thread.stats().lastThreadId, firstThreadId, 'a different thread stored the later batches');
    } finally {
      await thread.close();
    }
  });

  test('a worker that throws fails its batches with the reason, and the next batch tries a new one', async () => {
    let started = 0;
    const thread = new CallInsertThread({
      path: pathOf(database),
      // The first worker dies of an uncaught exception before it reads a message.
      startWorker: (workerData) => {
        started += 1;
        return started === 1 ? new Worker('throw new Error("worker boom")', { eval: true }) : startCallInsertWorker(workerData);
      },
    });
    try {
      const outcomes = await Promise.allSettled([1, 2].map((index) => thread.insert(rowsOf(calls({ count: 5, teamId: `boom_${index}` })))));
      for (const outcome of outcomes) {
        assert.equal(outcome.status, 'rejected');
        assert.match(String(outcome.reason), /insert worker stopped \(worker boom\) before answering; 2 batch\(es\)/);
        assert.match(String((outcome.reason as Error).cause), /worker boom/);
      }
      assert.equal(await thread.insert(rowsOf(calls({ count: 5, teamId: 'boom_1' }))), 5);
      assert.equal(thread.stats().workersStarted, 2);
    } finally {
      await thread.close();
    }
  });

  test('close waits for the batches in flight, then stops the worker', async () => {
    const { thread, workers } = reachable(pathOf(database));
    const batches = Array.from({ length: 5 }, (_, index) => calls({ count: 1000, teamId: `closing_${index}` }));
    const inFlight = batches.map((batch) => thread.insert(rowsOf(batch)));
    const exited = once(workers[0] as Worker, 'exit');
    await thread.close();
    assert.deepEqual(await Promise.all(inFlight), [1000, 1000, 1000, 1000, 1000]);
    await exited;
    assert.deepEqual(thread.stats(), { workersStarted: 1, running: false, pending: 0, lastThreadId: thread.stats().lastThreadId });
    await assert.rejects(thread.insert(rowsOf(calls({ count: 1, teamId: 'closing_late' }))), /store is closed/);
    for (let index = 0; index < batches.length; index += 1) assert.equal(await countCalls({ store, teamId: `closing_${index}` }), 1000);
  });

  test('store.close with inserts in flight stores them before the connection closes', async () => {
    const fresh = await backend.createDatabase();
    try {
      const closing = await openStore(fresh.storeOptions);
      const batches = Array.from({ length: 4 }, (_, index) => calls({ count: 500, teamId: `store_closing_${index}` }));
      const inFlight = batches.map((batch) => closing.insertCalls(batch));
      await closing.close();
      assert.deepEqual(await Promise.all(inFlight), batches.map(() => ({ inserted: 500 })));
      const reopened = await openStore(fresh.storeOptions);
      try {
        for (let index = 0; index < batches.length; index += 1) {
          assert.equal(await countCalls({ store: reopened, teamId: `store_closing_${index}` }), 500);
        }
      } finally {
        await reopened.close();
      }
    } finally {
      await fresh.dispose();
    }
  });

  test('an idle worker does not keep the process alive', async () => {
    // A child that inserts and never closes its store must still exit on its own.
    const script = `
      const { openStore } = await import(process.argv[1]);
      const store = await openStore({ url: process.argv[2] });
      const { inserted } = await store.insertCalls([JSON.parse(process.argv[3])]);
      process.stdout.write(String(inserted));
    `;
    const storeModule = new URL('../src/store/index.ts', import.meta.url).href;
    const call = JSON.stringify(makeCall({ id: 'idle_exit', teamId: 'idle' }));
    const output = await new Promise<string>((resolve, reject) => {
      execFile(
        process.execPath,
        ['--import', 'tsx', '--input-type=module', '-e', script, storeModule, database.storeOptions.url, call],
        { timeout: 20_000 },
        (error, stdout, stderr) => (error ? reject(new Error(`${error.message} (signal ${error.signal})\n${stderr}`)) : resolve(stdout)),
      );
    });
    assert.equal(output, '1');
    assert.equal(await countCalls({ store, teamId: 'idle' }), 1);
  });

  test('abandon stops a batch waiting for the write lock at once, refuses later ones, and returns once the worker is out of SQLite', async () => {
    const { thread } = reachable(pathOf(database));
    const holder = new BetterSqlite3(pathOf(database));
    try {
      // A first batch starts the worker and opens its connection before the lock is taken.
      assert.equal(await thread.insert(rowsOf(calls({ count: 1, teamId: 'abandon_warm' }))), 1);
      holder.exec('BEGIN EXCLUSIVE');
      const waiting = thread.insert(rowsOf(calls({ count: 3, teamId: 'abandon_waiting' })));
      const outcome = waiting.then(
        () => 'stored',
        (error: Error) => error.message,
      );
      // Long enough for the worker to be in its retries (1, 2, 4, 8, 16, 25 ms apart).
      await new Promise((resolve) => setTimeout(resolve, 150));
      const started = performance.now();
      assert.equal(thread.abandon(), true, 'the worker is out of SQLite');
      const message = await outcome;
      const elapsedMs = performance.now() - started;
      assert.match(message, /the ledger insert worker was stopped: the process is exiting/);
      // Without the stop it retries until SQLite's busy timeout (5 s) runs out.
      assert.ok(elapsedMs < 1_000, `the waiting batch failed ${Math.round(elapsedMs)} ms after abandon`);
      await assert.rejects(thread.insert(rowsOf(calls({ count: 1, teamId: 'abandon_after' }))), /the process is exiting; calls were not inserted/);
    } finally {
      if (holder.inTransaction) holder.exec('ROLLBACK');
      holder.close();
      await thread.close();
    }
    assert.equal(await countCalls({ store, teamId: 'abandon_waiting' }), 0);
  });

  test('a process exiting while its insert worker waits for the write lock another process holds exits at once, with its own code', async () => {
    // SQLite's own busy wait cannot be interrupted: the exit used to wait it out (5 s), then
    // abort (better-sqlite3 throwing SQLITE_BUSY into the terminating worker). A retry that
    // failed just as the exit terminated the worker aborted the same way, now and then; the
    // store's abandon, which `seed serve` runs before it exits, stops the retries first.
    // The child opens the store (its migration needs the lock), says so, and once the lock is
    // taken starts an insert, abandons the store 300 ms later and exits.
    const script = `
      const { openStore } = await import(process.argv[1]);
      const store = await openStore({ url: process.argv[2] });
      process.stdout.write('open\\n');
      process.stdin.once('data', () => {
        void store.insertCalls([JSON.parse(process.argv[3])]).catch(() => undefined);
        setTimeout(() => {
          if (!store.abandon()) process.exit(4);
          process.exit(3);
        }, 300);
      });
    `;
    const storeModule = new URL('../src/store/index.ts', import.meta.url).href;
    const call = JSON.stringify(makeCall({ id: 'exit_while_locked', teamId: 'exit_locked' }));
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, storeModule, database.storeOptions.url, call], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (data) => (stderr += String(data)));
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const holder = new BetterSqlite3(pathOf(database));
    try {
      await once(child.stdout, 'data');
      holder.exec('BEGIN EXCLUSIVE');
      const started = performance.now();
      child.stdin.write('go\n');
      const { code, signal } = await exited;
      const elapsedMs = performance.now() - started;
      assert.equal(signal, null, stderr);
      assert.equal(code, 3, stderr);
      assert.doesNotMatch(stderr, /FATAL ERROR/);
      assert.ok(elapsedMs < SQLITE_BUSY_TIMEOUT_MS, `exited after ${Math.round(elapsedMs)} ms`);
    } finally {
      clearTimeout(killer);
      if (holder.inTransaction) holder.exec('ROLLBACK');
      holder.close();
    }
    assert.equal(await countCalls({ store, teamId: 'exit_locked' }), 0);
  });

  test('an insert issued during a main-connection write transaction waits for it, and both commit apart', async () => {
    let insertIssued!: () => void;
    const issued = new Promise<void>((resolve) => (insertIssued = resolve));
    let committedAt = 0;
    const transaction = store.db.transaction().execute(async (trx) => {
      await trx.insertInto('orgs').values({ id: 'org_held', name: 'Held', created_at: 0 }).execute();
      insertIssued();
      // Holds the write lock across awaits, as the audit log's and dataset imports' do.
      await new Promise((resolve) => setTimeout(resolve, 300));
      const visibleInside = await trx.selectFrom('calls').select('id').where('team_id', '=', 'held').execute();
      committedAt = performance.now();
      return visibleInside;
    });
    await issued;
    const insert = store.insertCalls(calls({ count: 10, teamId: 'held' })).then((result) => ({ result, at: performance.now() }));
    assert.deepEqual(await transaction, [], "the worker's rows did not appear inside the other transaction");
    const { result, at } = await insert;
    assert.deepEqual(result, { inserted: 10 });
    assert.ok(at >= committedAt, 'the insert finished after the transaction let go of the lock');
    assert.equal(await countCalls({ store, teamId: 'held' }), 10);
    assert.equal((await store.db.selectFrom('orgs').select('id').where('id', '=', 'org_held').execute()).length, 1);
  });

  test('a main-connection transaction held past busy_timeout fails the batch instead of deadlocking', async () => {
    let insertIssued!: () => void;
    const issued = new Promise<void>((resolve) => (insertIssued = resolve));
    let loopTurns = 0;
    const ticker = setInterval(() => (loopTurns += 1), 100);
    try {
      const transaction = store.db.transaction().execute(async (trx) => {
        await trx.insertInto('orgs').values({ id: 'org_long', name: 'Long', created_at: 0 }).execute();
        insertIssued();
        // Only fires if the event loop stays free while the worker waits for the lock.
        await new Promise((resolve) => setTimeout(resolve, SQLITE_BUSY_TIMEOUT_MS + 1000));
      });
      await issued;
      const batch = calls({ count: 10, teamId: 'long' });
      await assert.rejects(store.insertCalls(batch), (error: Error & { code?: string }) => {
        assert.equal(error.code, 'SQLITE_BUSY');
        return true;
      });
      await transaction;
      assert.ok(loopTurns >= 40, `the event loop turned ${loopTurns} times while the worker waited`);
      // The ledger writer spills the batch and retries: the retry succeeds once the lock is free.
      assert.deepEqual(await store.insertCalls(batch), { inserted: 10 });
      assert.equal((await store.db.selectFrom('orgs').select('id').where('id', '=', 'org_long').execute()).length, 1);
    } finally {
      clearInterval(ticker);
    }
  });
});
