import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isSeedError } from '../src/errors.ts';
import { ANONYMOUS_CALLER } from '../src/gateway/hooks.ts';
import { openStore, type Store } from '../src/store/index.ts';
import { createAuthenticator, createTenantService, isTenantCaller, presentedSecret, type Authenticator, type TenantService } from '../src/tenants/index.ts';
import { testBackends, type TestDatabase } from './helpers/backends.ts';
import { countingStore, recordingAudit } from './tenants-fixtures.ts';

const ACTOR = 'cli:test';
const UNKNOWN_KEY = `sk-seed-${'A'.repeat(43)}`;

async function rejectsWith(promise: unknown, code: string): Promise<void> {
  await assert.rejects(Promise.resolve(promise), (error: unknown) => {
    assert.ok(isSeedError(error), String(error));
    assert.equal(error.code, code);
    return true;
  });
}

const bearer = (secret: string) => ({ authorization: `Bearer ${secret}` });

async function eventually(check: () => Promise<boolean>, { timeoutMs }: { timeoutMs: number }): Promise<number> {
  const startedAt = Date.now();
  while (!(await check())) {
    if (Date.now() - startedAt > timeoutMs) throw new Error(`not true within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return Date.now() - startedAt;
}

// Resolved before any suite is declared: a suite declared after a top-level await, once another
// suite of the file is declared, never runs (node:test starts the file's root test in between),
// and that is how this file's store suites went unrun until 2026-12-04.
const backends = await testBackends();

describe('auth modes and headers (no store needed)', () => {
  test('open mode is refused on a non-loopback address', () => {
    const store = { db: undefined as never, dialect: 'sqlite' as const };
    assert.throws(() => createAuthenticator({ store, mode: 'open', host: '0.0.0.0' }), /loopback/);
    assert.throws(() => createAuthenticator({ store, mode: 'open', host: '10.1.2.3' }), /loopback/);
  });

  test('the secret is read from Authorization, api-key and x-api-key', () => {
    assert.equal(presentedSecret({ authorization: 'Bearer abc' }), 'abc');
    assert.equal(presentedSecret({ authorization: 'bearer   abc' }), 'abc');
    assert.equal(presentedSecret({ 'api-key': 'abc' }), 'abc');
    assert.equal(presentedSecret({ 'x-api-key': 'abc' }), 'abc');
    assert.equal(presentedSecret({}), undefined);
    assert.throws(() => presentedSecret({ authorization: 'Basic dXNlcjpwYXNz' }), (error: unknown) => isSeedError(error) && error.code === 'invalid_api_key');
  });
});

for (const backend of backends) {
  describe(`authenticator (${backend.name})`, { skip: backend.skip }, () => {
    let database: TestDatabase;
    let store: Store;
    let otherStore: Store;
    let tenants: TenantService;
    let teamId: string;
    const authenticators: Authenticator[] = [];

    before(async () => {
      database = await backend.createDatabase();
      store = await openStore(database.storeOptions);
      // A second connection to the same database plays the part of another replica.
      otherStore = await openStore(database.storeOptions);
      tenants = createTenantService({ store, audit: recordingAudit() });
      await tenants.createOrg({ input: { name: 'acme', limits: { usdPerMonth: 100 } }, actor: ACTOR });
      teamId = (await tenants.createTeam({ input: { org: 'acme', name: 'search', limits: { rpm: 50 } }, actor: ACTOR })).id;
    });
    after(async () => {
      for (const authenticator of authenticators) await authenticator.close();
      await store?.close();
      await otherStore?.close();
      await database?.dispose();
    });

    function authenticatorFor(options: Partial<Parameters<typeof createAuthenticator>[0]> & { store: Parameters<typeof createAuthenticator>[0]['store'] }) {
      const authenticator = createAuthenticator({ mode: 'keys', host: '127.0.0.1', ...options });
      authenticators.push(authenticator);
      return authenticator;
    }

    test('a valid key yields its caller with key, team and org limits; other headers work too', async () => {
      const { key, secret } = await tenants.createKey({
        input: { team: teamId, region: 'eu', allowedRoutes: ['gpt-4o-mini'], limits: { rpm: 10 }, storePayloads: true },
        actor: ACTOR,
      });
      const authenticator = authenticatorFor({ store });
      const caller = await authenticator.authenticate(bearer(secret));
      assert.ok(isTenantCaller(caller));
      assert.equal(caller.keyId, key.id);
      assert.equal(caller.teamId, teamId);
      assert.equal(caller.orgId, key.orgId);
      assert.equal(caller.region, 'eu');
      assert.deepEqual([...(caller.allowedRoutes ?? [])], ['gpt-4o-mini']);
      assert.equal(caller.storePayloads, true);
      assert.deepEqual(caller.limits, [
        { owner: 'key', id: key.id, limits: { rpm: 10 } },
        { owner: 'team', id: teamId, limits: { rpm: 50 } },
        { owner: 'org', id: key.orgId, limits: { usdPerMonth: 100 } },
      ]);
      assert.equal((await authenticator.authenticate({ 'api-key': secret })).keyId, key.id);
      assert.equal((await authenticator.authenticate({ 'x-api-key': secret })).keyId, key.id);
      // Once cached, a key is answered at once: the gateway's hot path awaits nothing for it.
      const cached = authenticator.authenticate(bearer(secret));
      assert.ok(!(cached instanceof Promise), 'a cached key is answered without a promise');
      assert.equal(cached.keyId, key.id);
    });

    test('missing, malformed, unknown, revoked and expired keys get their own codes', async () => {
      let clock = Date.now();
      const authenticator = authenticatorFor({ store, now: () => clock });
      await rejectsWith(authenticator.authenticate({}), 'missing_api_key');
      await rejectsWith(authenticator.authenticate(bearer('sk-not-ours')), 'invalid_api_key');
      await rejectsWith(authenticator.authenticate(bearer(UNKNOWN_KEY)), 'invalid_api_key');

      const revoked = await tenants.createKey({ input: { team: teamId }, actor: ACTOR });
      await tenants.revokeKey({ id: revoked.key.id, actor: ACTOR });
      await rejectsWith(authenticator.authenticate(bearer(revoked.secret)), 'key_revoked');

      const expiring = await tenants.createKey({ input: { team: teamId, expiresAt: '1h' }, actor: ACTOR });
      assert.equal((await authenticator.authenticate(bearer(expiring.secret))).keyId, expiring.key.id);
      clock += 2 * 3_600_000;
      await rejectsWith(authenticator.authenticate(bearer(expiring.secret)), 'key_expired');
    });

    test('open mode: every request is anonymous, keys or not', async () => {
      const authenticator = authenticatorFor({ store, mode: 'open' });
      assert.equal(await authenticator.authenticate({}), ANONYMOUS_CALLER);
      assert.equal(await authenticator.authenticate(bearer(UNKNOWN_KEY)), ANONYMOUS_CALLER);
      await rejectsWith(authenticator.authenticateKey({}), 'missing_api_key');
    });

    test('the request path does not query the store: one lookup per key, unknown keys cached, concurrent misses coalesced', async () => {
      const { secret } = await tenants.createKey({ input: { team: teamId }, actor: ACTOR });
      const counted = countingStore(store);
      // A long poll interval keeps polling out of the count.
      const authenticator = authenticatorFor({ store: counted.store, pollIntervalMs: 60_000 });
      await Promise.all(Array.from({ length: 20 }, () => authenticator.authenticate(bearer(secret))));
      const afterFirst = counted.queries();
      assert.equal(afterFirst, 1, 'twenty concurrent first uses make one lookup');
      for (let index = 0; index < 100; index += 1) await authenticator.authenticate(bearer(secret));
      assert.equal(counted.queries(), afterFirst, 'cached keys never reach the store');

      for (let index = 0; index < 50; index += 1) await rejectsWith(authenticator.authenticate(bearer(UNKNOWN_KEY)), 'invalid_api_key');
      assert.equal(counted.queries(), afterFirst + 1, 'an unknown key is looked up once, then answered from memory');
    });

    test('random keys cannot hammer the store: lookups beyond the budget are refused unchecked', async () => {
      const counted = countingStore(store);
      const warnings: string[] = [];
      const authenticator = authenticatorFor({ store: counted.store, pollIntervalMs: 60_000, storeLookupsPerSecond: 5, onWarning: (message) => warnings.push(message) });
      for (let index = 0; index < 40; index += 1) {
        const random = `sk-seed-${index.toString().padStart(43, 'x')}`;
        await rejectsWith(authenticator.authenticate(bearer(random)), 'invalid_api_key');
      }
      assert.ok(counted.queries() <= 6, `expected at most ~5 lookups, got ${counted.queries()}`);
      assert.equal(warnings.length, 1);
    });

    test('revocation and limit changes by another replica reach this one within a second', async () => {
      const { key, secret } = await tenants.createKey({ input: { team: teamId, limits: { rpm: 10 } }, actor: ACTOR });
      const replica = authenticatorFor({ store: otherStore });
      assert.equal((await replica.authenticate(bearer(secret))).keyId, key.id);

      await tenants.updateKey({ id: key.id, changes: { limits: { rpm: 99 } }, actor: ACTOR });
      await tenants.setTeamLimits({ id: teamId, limits: { rpm: 77 }, actor: ACTOR });
      await eventually(
        async () => {
          const caller = await replica.authenticate(bearer(secret));
          return isTenantCaller(caller) && caller.limits[0]?.limits.rpm === 99 && caller.limits[1]?.limits.rpm === 77;
        },
        { timeoutMs: 1000 },
      );

      await tenants.revokeKey({ id: key.id, actor: ACTOR });
      const tookMs = await eventually(
        async () => {
          try {
            await replica.authenticate(bearer(secret));
            return false;
          } catch (error) {
            return isSeedError(error) && error.code === 'key_revoked';
          }
        },
        { timeoutMs: 1000 },
      );
      assert.ok(tookMs < 1000, `took ${tookMs} ms`);
    });

    test('a poll for changes is one statement, and finds changed keys, teams and orgs', async () => {
      const { key, secret } = await tenants.createKey({ input: { team: teamId, limits: { rpm: 10 } }, actor: ACTOR });
      const counted = countingStore(otherStore);
      const replica = authenticatorFor({ store: counted.store, pollIntervalMs: 60_000 });
      await replica.authenticate(bearer(secret));
      await replica.refresh();
      const before = counted.queries();
      await replica.refresh();
      assert.equal(counted.queries() - before, 1, 'an idle poll sends one statement');

      const orgId = (await replica.authenticate(bearer(secret)) as { orgId: string }).orgId;
      const limitsOf = async () => {
        const caller = await replica.authenticate(bearer(secret));
        assert.ok(isTenantCaller(caller));
        return caller.limits.map((scope) => `${scope.owner}:${JSON.stringify(scope.limits)}`);
      };
      await tenants.setOrgLimits({ id: orgId, limits: { usdPerMonth: 55 }, actor: ACTOR });
      await replica.refresh();
      assert.deepEqual((await limitsOf())[2], 'org:{"usdPerMonth":55}');
      await tenants.setTeamLimits({ id: teamId, limits: { rpm: 33 }, actor: ACTOR });
      await replica.refresh();
      assert.deepEqual((await limitsOf())[1], 'team:{"rpm":33}');
      await tenants.updateKey({ id: key.id, changes: { limits: { rpm: 11 } }, actor: ACTOR });
      await replica.refresh();
      assert.deepEqual((await limitsOf())[0], 'key:{"rpm":11}');
      await tenants.setOrgLimits({ id: orgId, limits: { usdPerMonth: 100 }, actor: ACTOR });
    });

    test('a change committed with an older updated_at (clock skew, late commit) is still picked up', async () => {
      // A key last changed an hour ago…
      const earlier = createTenantService({ store, audit: recordingAudit(), now: () => Date.now() - 3_600_000 });
      const { key, secret } = await earlier.createKey({ input: { team: teamId }, actor: ACTOR });
      const replica = authenticatorFor({ store: otherStore, pollIntervalMs: 60_000 });
      await replica.authenticate(bearer(secret));
      await replica.refresh();
      // …is revoked by a replica whose clock is 10 s behind: its updated_at is older than what this replica has seen.
      const skewed = createTenantService({ store, audit: recordingAudit(), now: () => Date.now() - 10_000 });
      await skewed.revokeKey({ id: key.id, actor: ACTOR });
      await replica.refresh();
      await rejectsWith(replica.authenticate(bearer(secret)), 'key_revoked');
    });
  });
}
