/**
 * isStoreUnavailable against the errors the drivers really throw: a store that cannot be reached
 * or does not answer (503, worth a retry) against a statement that failed (Seed's own 500).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { sql } from 'kysely';
import { isStoreUnavailable, openStore } from '../src/store/index.ts';
import { testBackends, POSTGRES_URL } from './helpers/backends.ts';
import { startTcpRelay } from './helpers/tcp-relay.ts';

const postgres = (await testBackends()).find((backend) => backend.name === 'postgres');

/** What `work` throws (it must throw). */
function thrownBy(work: () => unknown): unknown {
  try {
    work();
  } catch (error) {
    return error;
  }
  throw new Error('expected a failure');
}

/** What `work` rejects with (it must reject). */
async function failureOf(work: () => Promise<unknown>): Promise<unknown> {
  try {
    await work();
  } catch (error) {
    return error;
  }
  throw new Error('expected a failure');
}

test('values that are not errors, and plain errors, are not an unavailable store', () => {
  assert.equal(isStoreUnavailable(undefined), false);
  assert.equal(isStoreUnavailable('ECONNREFUSED'), false);
  assert.equal(isStoreUnavailable({ code: 'ECONNREFUSED' }), false);
  assert.equal(isStoreUnavailable(new Error('something else')), false);
});

test('SQLite: a file locked past the busy timeout is unavailable; a constraint or a syntax error is not', () => {
  const directory = mkdtempSync(join(tmpdir(), 'seed-unavailable-'));
  const holder = new BetterSqlite3(join(directory, 'store.db'));
  const other = new BetterSqlite3(join(directory, 'store.db'), { timeout: 0 });
  try {
    holder.exec('create table t (id integer primary key)');
    holder.exec('begin immediate');
    const locked = thrownBy(() => other.exec('insert into t values (1)'));
    assert.match(String((locked as { code?: string }).code), /^SQLITE_BUSY/);
    assert.equal(isStoreUnavailable(locked), true);
    holder.exec('rollback');
    other.exec('insert into t values (1)');
    assert.equal(isStoreUnavailable(thrownBy(() => other.exec('insert into t values (1)'))), false, 'a constraint');
    assert.equal(isStoreUnavailable(thrownBy(() => other.exec('selec 1'))), false, 'a syntax error');
  } finally {
    holder.close();
    other.close();
    rmSync(directory, { recursive: true, force: true });
  }
});

describe('PostgreSQL errors', { skip: postgres?.skip ?? 'no PostgreSQL backend' }, () => {
  test('a statement the server refuses is not an unavailable store', async () => {
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    try {
      const syntax = await failureOf(() => client.query('selec 1'));
      assert.equal((syntax as { code?: string }).code, '42601');
      assert.equal(isStoreUnavailable(syntax), false);
      const division = await failureOf(() => client.query('select 1 / 0'));
      assert.equal(isStoreUnavailable(division), false);
    } finally {
      await client.end();
    }
  });

  test('a refused connection, a connection lost mid-query, a connect that timed out and a query with no answer are all unavailable', async () => {
    const refused = await failureOf(async () => {
      const client = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:1/test' });
      await client.connect();
    });
    assert.equal((refused as { code?: string }).code, 'ECONNREFUSED');
    assert.equal(isStoreUnavailable(refused), true);

    const target = new URL(POSTGRES_URL);
    const relay = await startTcpRelay({ host: target.hostname, port: Number(target.port || 5432) });
    target.port = String(relay.port);
    try {
      const client = new pg.Client({ connectionString: target.toString() });
      client.on('error', () => undefined);
      await client.connect();
      const query = client.query('select pg_sleep(5)');
      await new Promise((resolve) => setTimeout(resolve, 100));
      relay.cut();
      const lost = await failureOf(() => query);
      assert.match(String((lost as Error).message), /Connection terminated/);
      assert.equal(isStoreUnavailable(lost), true);
      relay.restore();

      relay.freeze();
      const pool = new pg.Pool({ connectionString: target.toString(), connectionTimeoutMillis: 300 });
      const connectTimedOut = await failureOf(() => pool.query('select 1'));
      assert.equal(isStoreUnavailable(connectTimedOut), true, String(connectTimedOut));
      await pool.end();
      relay.restore();

      const store = await openStore({ url: target.toString(), migrate: false, queryTimeoutMs: 300 });
      try {
        await sql`select 1`.execute(store.db);
        relay.freeze();
        const unanswered = await failureOf(() => sql`select 1`.execute(store.db));
        assert.match(String((unanswered as Error).message), /store\.queryTimeoutMs/);
        assert.equal(isStoreUnavailable(unanswered), true);
      } finally {
        relay.restore();
        await store.close();
      }
    } finally {
      await relay.close();
    }
  });
});
