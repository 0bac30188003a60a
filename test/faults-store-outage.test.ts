/**
 * The store going away under load, through the gateway: calls keep being answered (the ledger is
 * off the request path), records spill to disk, and once the store is back every call is in it
 * exactly once. PostgreSQL sits behind a TCP relay the test cuts, so the shared server never stops.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { sql } from 'kysely';
import { openStore } from '../src/store/index.ts';
import { testBackends } from './helpers/backends.ts';
import { startStack } from './helpers/stack.ts';
import { startTcpRelay } from './helpers/tcp-relay.ts';

const postgres = (await testBackends()).find((backend) => backend.name === 'postgres');

describe('PostgreSQL outage under load, through the gateway', { skip: postgres?.skip ?? 'no PostgreSQL backend' }, () => {
  test('every call is answered, and every call is in the ledger exactly once after the store returns', async () => {
    const database = await postgres!.createDatabase();
    const target = new URL(database.storeOptions.url);
    const proxy = await startTcpRelay({ host: target.hostname, port: Number(target.port || 5432) });
    target.port = String(proxy.port);
    const store = await openStore({ ...database.storeOptions, url: target.toString(), connectTimeoutMs: 1_000 });
    const stack = await startStack({
      config: (url) => `
ledger: { flushIntervalMs: 10, batchSize: 20 }
deployments:
  mini: { provider: openai, baseUrl: ${url}/v1, model: gpt-4o-mini, apiKey: sk }
routes:
  gpt-4o-mini: { deployments: [{ deployment: mini }] }
`,
      start: { store },
    });
    const ids: string[] = [];
    const chat = async () => {
      const response = await request(`${stack.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], max_tokens: 8 }),
      });
      await response.body.text();
      assert.equal(response.statusCode, 200, 'the store being down never fails a call');
      ids.push(String(response.headers['x-request-id']));
    };
    const burst = async (count: number) => {
      for (let index = 0; index < count; index += 10) await Promise.all(Array.from({ length: 10 }, chat));
    };
    try {
      await burst(60);
      proxy.cut();
      await burst(100);
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.ok(stack.seed.ledger.stats().spilled > 0, 'records went to the spill directory while the store was down');
      proxy.restore();
      await burst(60);
      // Replays retry with backoff; give them time, bounded.
      const deadline = Date.now() + 20_000;
      let rows = 0;
      while (Date.now() < deadline) {
        await stack.seed.ledger.flush().catch(() => undefined);
        rows = Number((await sql<{ count: number }>`select count(*)::int as count from calls`.execute(store.db)).rows[0]?.count ?? 0);
        if (rows >= ids.length) break;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      assert.equal(ids.length, 220);
      assert.equal(rows, 220, 'every call stored');
      const distinct = (await sql<{ count: number }>`select count(distinct id)::int as count from calls`.execute(store.db)).rows[0]?.count;
      assert.equal(distinct, 220, 'exactly once');
      for (const id of [ids[0], ids[100], ids[219]]) assert.ok(await store.getCall(id!), id);
    } finally {
      await stack.close();
      await store.close();
      await proxy.close();
      await database.dispose();
    }
  });

  test('a store that stops answering without an error (packets dropped, no reset): its writes time out, calls go to the spill directory, and once it answers again every call is stored once', { timeout: 60_000 }, async () => {
    const database = await postgres!.createDatabase();
    const target = new URL(database.storeOptions.url);
    const proxy = await startTcpRelay({ host: target.hostname, port: Number(target.port || 5432) });
    target.port = String(proxy.port);
    const store = await openStore({ ...database.storeOptions, url: target.toString(), connectTimeoutMs: 1_000 });
    // Without a write timeout a frozen connection holds its batch, and all behind it, in memory
    // until TCP gives up (~15 min on Linux): nothing reaches the spill directory before the queue
    // overflows.
    const stack = await startStack({
      config: (url) => `
ledger: { flushIntervalMs: 10, batchSize: 20, writeTimeoutMs: 500 }
deployments:
  mini: { provider: openai, baseUrl: ${url}/v1, model: gpt-4o-mini, apiKey: sk }
routes:
  gpt-4o-mini: { deployments: [{ deployment: mini }] }
`,
      start: { store },
    });
    const ids: string[] = [];
    const chat = async () => {
      const response = await request(`${stack.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], max_tokens: 8 }),
      });
      await response.body.text();
      assert.equal(response.statusCode, 200, 'a store that does not answer never fails a call');
      ids.push(String(response.headers['x-request-id']));
    };
    const burst = async (count: number) => {
      for (let index = 0; index < count; index += 10) await Promise.all(Array.from({ length: 10 }, chat));
    };
    try {
      await burst(40);
      await stack.seed.ledger.flush();
      proxy.freeze();
      await burst(60);
      const deadline = Date.now() + 5_000;
      while (stack.seed.ledger.stats().queued > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      const during = stack.seed.ledger.stats();
      assert.equal(during.queued, 0, 'no call waits in memory for a store that does not answer');
      assert.ok(during.spilled >= 60, `the calls went to the spill directory (${during.spilled})`);
      assert.equal(during.storeHealthy, false);
      assert.ok(during.failedBatches >= 1);
      proxy.restore();
      await burst(40);
      const settle = Date.now() + 20_000;
      let rows = 0;
      while (Date.now() < settle) {
        rows = Number((await sql<{ count: number }>`select count(*)::int as count from calls`.execute(store.db).catch(() => ({ rows: [{ count: 0 }] }))).rows[0]?.count ?? 0);
        if (rows >= ids.length) break;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      assert.equal(ids.length, 140);
      assert.equal(rows, 140, 'every call stored');
      const distinct = (await sql<{ count: number }>`select count(distinct id)::int as count from calls`.execute(store.db)).rows[0]?.count;
      assert.equal(distinct, 140, 'exactly once');
    } finally {
      await stack.close();
      await store.close();
      await proxy.close();
      await database.dispose();
    }
  });
});
