/**
 * Seed's own threads carry names the OS shows (`top -H`, `ps -L`, `perf`): a file store's ledger
 * insert and report threads are told apart from V8's and libuv's, which are all `node`.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openStore } from '../src/store/index.ts';
import { CALL_INSERT_THREAD_NAME } from '../src/store/call-insert-protocol.ts';
import { SQLITE_READ_THREAD_NAME } from '../src/store/sqlite-read-protocol.ts';
import { nameThisThread } from '../src/worker.ts';
import { makeCall } from './helpers/backends.ts';

const threadNamesShown = existsSync('/proc/thread-self/comm');
const noThreadNames = threadNamesShown ? false : 'this OS has no /proc/thread-self/comm: thread names are Linux only';

/** The names of this process's threads, as the OS shows them. */
function threadNames(): string[] {
  return readdirSync('/proc/self/task').flatMap((tid) => {
    try {
      return [readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim()];
    } catch {
      return []; // the thread ended while we read
    }
  });
}

test('a file store names its insert and report threads', { skip: noThreadNames }, async () => {
  assert.ok(!threadNames().includes(CALL_INSERT_THREAD_NAME), 'no insert thread before the store');
  const directory = mkdtempSync(join(tmpdir(), 'seed-thread-names-'));
  const store = await openStore({ url: `sqlite:${join(directory, 'seed.db')}` });
  try {
    await store.insertCalls([makeCall({ id: 'call_named' })]);
    await store.listCalls({ limit: 1 });
    const names = threadNames();
    assert.equal(names.filter((name) => name === CALL_INSERT_THREAD_NAME).length, 1, `threads: ${names.join(', ')}`);
    assert.equal(names.filter((name) => name === SQLITE_READ_THREAD_NAME).length, 1, `threads: ${names.join(', ')}`);
    assert.ok(names.includes('node'), 'the main thread keeps its name');
  } finally {
    await store.close();
    rmSync(directory, { recursive: true, force: true });
  }
});

test('nameThisThread refuses a name the OS would cut, or an empty one', () => {
  assert.throws(() => nameThisThread('a-name-of-16-chr'), RangeError);
  assert.throws(() => nameThisThread(''), RangeError);
});
