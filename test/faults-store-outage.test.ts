/**
 * The store going away under load, through the gateway: calls keep being answered (the ledger is
 * off the request path), records spill to disk, and once the store is back every call is in it
 * exactly once; keys already cached keep working, and a key lookup or a poll for key changes
 * never waits on the store longer than `auth.storeTimeoutMs`. PostgreSQL sits behind a TCP relay
 * the test cuts or freezes, so the shared server never stops.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { sql } from 'kysely';
import { openStore } from '../src/store/index.ts';
import { testBackends } from './helpers/backends.ts';
import { startStack } from './helpers/stack.ts';
import { startTcpRelay } from './helpers/tcp-relay.ts';
import { createTenantService } from '../src/tenants/index.ts';
import { ADMIN_TOKEN, errorCode, recordingAudit, requestJson, startTenantGateway } from './tenants-fixtures.ts';

const postgres = (await testBackends()).find((backend) => backend.name === 'postgres');

/**
 * A fresh PostgreSQL schema, and a store on it reached through a relay the test can cut or
 * freeze (pool and query timeout as given; connections time out after 1 s). `close` restores the
 * relay first, so a test that failed while it was frozen is reported rather than hung.
 */
async function relayedStore({ poolSize, queryTimeoutMs }: { poolSize?: number; queryTimeoutMs?: number } = {}) {
  const database = await postgres!.createDatabase();
  const target = new URL(database.storeOptions.url);
  const relay = await startTcpRelay({ host: target.hostname, port: Number(target.port || 5432) });
  target.port = String(relay.port);
  const store = await openStore({ ...database.storeOptions, url: target.toString(), connectTimeoutMs: 1_000, poolSize, queryTimeoutMs });
  return {
    database,
    relay,
    store,
    async close() {
      relay.restore();
      await store.close();
      await relay.close();
      await database.dispose();
    },
  };
}

/**
 * A gateway whose ledger writes to a fresh PostgreSQL schema through a relay; `burst` sends calls
 * ten at a time, each of which must be answered, and keeps their request ids; `settled` waits
 * (bounded) until the store holds as many rows as calls were answered, and returns the row count
 * and the count of distinct ids.
 */
async function outageStack(
  ledger: string,
  { auth = '{ mode: open }', poolSize, queryTimeoutMs }: { auth?: string; poolSize?: number; queryTimeoutMs?: number } = {},
) {
  const relayed = await relayedStore({ poolSize, queryTimeoutMs });
  const { database, relay, store } = relayed;
  // Beside the relay: the tenant changes another replica would make while this one is cut off.
  const direct = await openStore(database.storeOptions);
  const stack = await startStack({
    config: (url) => `
ledger: ${ledger}
auth: ${auth}
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
  const count = async (what: 'id' | 'distinct id') =>
    Number((await sql<{ count: number }>`select count(${sql.raw(what)})::int as count from calls`.execute(store.db)).rows[0]?.count ?? 0);
  return {
    store,
    direct,
    relay,
    url: stack.baseURL,
    ledger: stack.seed.ledger,
    ids,
    async burst(calls: number) {
      for (let index = 0; index < calls; index += 10) await Promise.all(Array.from({ length: 10 }, chat));
    },
    async settled(): Promise<{ rows: number; distinct: number }> {
      // Replays retry with backoff; give them time, bounded.
      const deadline = Date.now() + 20_000;
      let rows = 0;
      while (Date.now() < deadline) {
        await stack.seed.ledger.flush().catch(() => undefined);
        rows = await count('id').catch(() => 0);
        if (rows >= ids.length) break;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      return { rows, distinct: await count('distinct id') };
    },
    async close() {
      // A test that failed while the store was frozen: closing over its frozen connections would
      // wait for TCP to give up, hiding the failure behind the test's timeout.
      relay.restore();
      await stack.close();
      await direct.close();
      await relayed.close();
    },
  };
}

describe('PostgreSQL outage under load, through the gateway', { skip: postgres?.skip ?? 'no PostgreSQL backend' }, () => {
  test('every call is answered, and every call is in the ledger exactly once after the store returns', async () => {
    const outage = await outageStack('{ flushIntervalMs: 10, batchSize: 20 }');
    try {
      await outage.burst(60);
      outage.relay.cut();
      await outage.burst(100);
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.ok(outage.ledger.stats().spilled > 0, 'records went to the spill directory while the store was down');
      outage.relay.restore();
      await outage.burst(60);
      assert.equal(outage.ids.length, 220);
      assert.deepEqual(await outage.settled(), { rows: 220, distinct: 220 }, 'every call stored, exactly once');
      for (const id of [outage.ids[0], outage.ids[100], outage.ids[219]]) assert.ok(await outage.store.getCall(id!), id);
    } finally {
      await outage.close();
    }
  });

  test('a store that stops answering without an error (packets dropped, no reset): its writes time out, calls go to the spill directory, and once it answers again every call is stored once', { timeout: 60_000 }, async () => {
    // Without a write timeout a frozen connection holds its batch, and all behind it, in memory
    // until TCP gives up (~15 min on Linux): nothing reaches the spill directory before the queue
    // overflows.
    const outage = await outageStack('{ flushIntervalMs: 10, batchSize: 20, writeTimeoutMs: 500 }');
    try {
      await outage.burst(40);
      await outage.ledger.flush();
      outage.relay.freeze();
      await outage.burst(60);
      // `queued` leaves out the batch being written: wait until every call is settled on disk
      // (the journal holds none unsettled), not only until the queue is empty.
      const settledOnDisk = () => {
        const stats = outage.ledger.stats();
        return stats.queued === 0 && stats.journaled === 0;
      };
      const deadline = Date.now() + 5_000;
      while (!settledOnDisk() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      const during = outage.ledger.stats();
      assert.equal(during.queued + during.journaled, 0, `no call waits in memory for a store that does not answer (${JSON.stringify(during)})`);
      assert.ok(during.spilled >= 60, `the calls went to the spill directory (${during.spilled})`);
      assert.equal(during.storeHealthy, false);
      assert.ok(during.failedBatches >= 1);
      outage.relay.restore();
      await outage.burst(40);
      assert.equal(outage.ids.length, 140);
      assert.deepEqual(await outage.settled(), { rows: 140, distinct: 140 }, 'every call stored, exactly once');
    } finally {
      await outage.close();
    }
  });

  test('keys while the store stops answering: cached keys are served, a new key is 503 auth_unavailable after auth.storeTimeoutMs, and after a failover a revocation arrives although the old connections never answer', { timeout: 60_000 }, async () => {
    const outage = await outageStack('{ flushIntervalMs: 10, writeTimeoutMs: 500 }', { auth: '{ mode: keys, keyPollIntervalMs: 50, storeTimeoutMs: 300 }' });
    const chatWith = async (secret: string) => {
      const response = await request(`${outage.url}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${secret}` },
        headersTimeout: 10_000,
        body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], max_tokens: 8 }),
      });
      const body = (await response.body.json()) as { error?: { code?: string; type?: string; message?: string } };
      return { status: response.statusCode, code: body.error?.code, type: body.error?.type, message: body.error?.message };
    };
    try {
      const tenants = createTenantService({ store: outage.direct, audit: recordingAudit() });
      await tenants.createOrg({ input: { name: 'acme' }, actor: 'test' });
      const team = await tenants.createTeam({ input: { org: 'acme', name: 'search' }, actor: 'test' });
      const cached = await tenants.createKey({ input: { team: team.id }, actor: 'test' });
      const later = await tenants.createKey({ input: { team: team.id }, actor: 'test' });
      assert.equal((await chatWith(cached.secret)).status, 200);

      outage.relay.freeze();
      const frozenAt = Date.now();
      const refused = await chatWith(later.secret);
      const waitedMs = Date.now() - frozenAt;
      assert.deepEqual({ status: refused.status, code: refused.code, type: refused.type }, { status: 503, code: 'auth_unavailable', type: 'api_error' });
      assert.match(refused.message ?? '', /not answering/);
      assert.ok(waitedMs >= 250 && waitedMs < 5_000, `a key not yet cached waited ${waitedMs} ms for the store`);
      assert.equal((await chatWith(cached.secret)).status, 200, 'a cached key never waits on the store');

      // Another replica revokes the cached key; then new connections reach the store again, while
      // those open when it froze stay black holes (a failover). The polls given up on must not
      // hold back the next one.
      await tenants.revokeKey({ id: cached.key.id, actor: 'test' });
      await new Promise((resolve) => setTimeout(resolve, 400));
      outage.relay.restore({ keepFrozen: true });
      const deadline = Date.now() + 5_000;
      let answer = await chatWith(cached.secret);
      while (answer.code !== 'key_revoked' && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        answer = await chatWith(cached.secret);
      }
      assert.deepEqual({ status: answer.status, code: answer.code }, { status: 401, code: 'key_revoked' }, 'the revocation arrived after the failover');
      assert.equal((await chatWith(later.secret)).status, 200, 'a new key is looked up again once the store answers');
    } finally {
      await outage.close();
    }
  });

  test('after a failover, connections whose queries never got an answer are closed after store.queryTimeoutMs: the pool is not left full of them, and every call is stored', { timeout: 60_000 }, async () => {
    // Each wait the ledger gave up on left its connection checked out until TCP gave up on it
    // (~15 min): once the pool was full of them, nothing reached the store after it was back.
    const outage = await outageStack('{ flushIntervalMs: 10, batchSize: 20, writeTimeoutMs: 300 }', { poolSize: 3, queryTimeoutMs: 1_000 });
    try {
      await outage.burst(20);
      await outage.ledger.flush();
      // Every connection of the pool warm and idle when the store goes, as on a busy gateway.
      await Promise.all(Array.from({ length: 3 }, () => sql`select pg_sleep(0.05)`.execute(outage.store.db)));
      outage.relay.freeze();
      const until = Date.now() + 3_000;
      while (Date.now() < until) await outage.burst(10);
      const during = outage.ledger.stats();
      assert.ok(during.failedBatches + during.failedReplays >= 3, `as many waits given up on as the pool holds (${JSON.stringify(during)})`);
      outage.relay.restore({ keepFrozen: true });
      await outage.burst(20);
      assert.deepEqual(await outage.settled(), { rows: outage.ids.length, distinct: outage.ids.length }, 'every call stored once the store answers again');
    } finally {
      await outage.close();
    }
  });

  test('store.queryTimeoutMs: a query with no answer fails with an error naming the setting, and its connection leaves the pool', { timeout: 30_000 }, async () => {
    const relayed = await relayedStore({ poolSize: 1, queryTimeoutMs: 500 });
    const { relay, store } = relayed;
    try {
      assert.equal((await sql<{ one: number }>`select 1 as one`.execute(store.db)).rows[0]?.one, 1);
      relay.freeze();
      const startedAt = Date.now();
      await assert.rejects(sql`select 1`.execute(store.db), /did not answer a query within 500 ms \(store\.queryTimeoutMs\); its connection was closed/);
      const tookMs = Date.now() - startedAt;
      assert.ok(tookMs >= 450 && tookMs < 3_000, `failed after ${tookMs} ms`);
      relay.restore({ keepFrozen: true });
      // The pool's only connection was the stuck one: the next query needs it gone.
      assert.equal((await sql<{ one: number }>`select 1 as one`.execute(store.db)).rows[0]?.one, 1);
    } finally {
      await relayed.close();
    }
  });

  test('the admin API while the store is down or silent: 503 store_unavailable in OpenAI format (after store.queryTimeoutMs when silent), never a 500; 200 once it is back', { timeout: 60_000 }, async () => {
    const relayed = await relayedStore({ queryTimeoutMs: 500 });
    const { relay, store } = relayed;
    const logged: string[] = [];
    const gateway = await startTenantGateway({ store, logger: (level, message) => logged.push(`${level} ${message}`) });
    const orgs = () => requestJson({ url: `${gateway.url}/v1/seed/admin/orgs`, token: ADMIN_TOKEN });
    try {
      assert.equal((await orgs()).status, 200);

      relay.cut();
      const down = await orgs();
      assert.deepEqual({ status: down.status, code: errorCode(down.body) }, { status: 503, code: 'store_unavailable' }, down.text);
      assert.equal((down.body['error'] as { type?: string }).type, 'api_error');
      assert.match(String((down.body['error'] as { message?: string }).message), /store is not answering/);
      relay.restore();
      assert.equal((await orgs()).status, 200);

      relay.freeze();
      const frozenAt = Date.now();
      const silent = await orgs();
      const waitedMs = Date.now() - frozenAt;
      assert.deepEqual({ status: silent.status, code: errorCode(silent.body) }, { status: 503, code: 'store_unavailable' }, silent.text);
      assert.ok(waitedMs >= 450 && waitedMs < 5_000, `answered after ${waitedMs} ms`);
      relay.restore();
      assert.equal((await orgs()).status, 200);
      assert.ok(logged.some((line) => /^error request failed/.test(line)), 'the operator is told');
    } finally {
      relay.restore();
      await gateway.close();
      await relayed.close();
    }
  });
});
