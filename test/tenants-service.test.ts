import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isSeedError } from '../src/errors.ts';
import { openStore, type Store } from '../src/store/index.ts';
import { createTenantService, hashKeySecret, looksLikeKeySecret, type TenantService } from '../src/tenants/index.ts';
import { testBackends, type TestDatabase } from './helpers/backends.ts';
import { recordingAudit } from './tenants-fixtures.ts';

const ACTOR = 'cli:test';

async function rejectsWith(promise: Promise<unknown>, code: string, param?: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(isSeedError(error), `expected a SeedError, got ${String(error)}`);
    assert.equal(error.code, code);
    if (param !== undefined) assert.equal(error.param, param);
    return true;
  });
}

for (const backend of await testBackends()) {
  describe(`tenant service (${backend.name})`, { skip: backend.skip }, () => {
    let database: TestDatabase;
    let store: Store;
    let tenants: TenantService;
    let audit: ReturnType<typeof recordingAudit>;
    let clock = Date.UTC(2025, 5, 1);

    before(async () => {
      database = await backend.createDatabase();
      store = await openStore(database.storeOptions);
      audit = recordingAudit();
      tenants = createTenantService({ store, audit, now: () => clock });
    });
    after(async () => {
      await store?.close();
      await database?.dispose();
    });

    test('orgs and teams: create, find by id or name, unique names, limits', async () => {
      const acme = await tenants.createOrg({ input: { name: 'acme', limits: { usdPerMonth: 1000 } }, actor: ACTOR });
      const globex = await tenants.createOrg({ input: { name: 'globex' }, actor: ACTOR });
      assert.match(acme.id, /^org_/);
      assert.deepEqual(acme.limits, { usdPerMonth: 1000 });
      await rejectsWith(tenants.createOrg({ input: { name: 'acme' }, actor: ACTOR }), 'conflict', 'name');

      const search = await tenants.createTeam({ input: { org: 'acme', name: 'search', limits: { rpm: 100 } }, actor: ACTOR });
      await tenants.createTeam({ input: { org: globex.id, name: 'search' }, actor: ACTOR });
      const solo = await tenants.createTeam({ input: { org: globex.id, name: 'solo' }, actor: ACTOR });
      await rejectsWith(tenants.createTeam({ input: { org: 'acme', name: 'search' }, actor: ACTOR }), 'conflict', 'name');
      await rejectsWith(tenants.createTeam({ input: { org: 'nowhere', name: 'x' }, actor: ACTOR }), 'not_found', 'org');

      assert.equal((await tenants.findTeam({ reference: search.id })).id, search.id);
      assert.equal((await tenants.findTeam({ reference: 'acme/search' })).id, search.id);
      assert.equal((await tenants.findTeam({ reference: 'solo' })).id, solo.id);
      await rejectsWith(tenants.findTeam({ reference: 'search' }), 'conflict', 'team');
      await rejectsWith(tenants.findTeam({ reference: 'acme/solo' }), 'not_found', 'team');
      assert.deepEqual((await tenants.listTeams({ orgId: acme.id })).map((team) => team.name), ['search']);
      assert.deepEqual((await tenants.listOrgs()).map((org) => org.name).sort(), ['acme', 'globex']);

      clock += 1000;
      const updated = await tenants.setTeamLimits({ id: search.id, limits: { rpm: 5, tpm: 1000 }, actor: ACTOR });
      assert.deepEqual(updated.limits, { rpm: 5, tpm: 1000 });
      assert.ok(updated.updatedAt > search.updatedAt);
      assert.deepEqual((await tenants.setOrgLimits({ id: acme.id, limits: null, actor: ACTOR })).limits, {});
      await rejectsWith(tenants.setTeamLimits({ id: 'team_missing', limits: null, actor: ACTOR }), 'not_found');

      assert.deepEqual(
        audit.entries.map((entry) => entry.action),
        ['org.created', 'org.created', 'team.created', 'team.created', 'team.created', 'team.updated', 'org.updated'],
      );
      assert.deepEqual(audit.entries.at(-2), { actor: ACTOR, action: 'team.updated', subject: search.id, details: { limits: { rpm: 5, tpm: 1000 } } });
    });

    test('keys: the secret is returned once and stored only as its hash', async () => {
      const team = await tenants.findTeam({ reference: 'acme/search' });
      audit.entries.length = 0;
      const { key, secret } = await tenants.createKey({
        input: { team: team.id, name: 'ci', region: 'eu', allowedRoutes: ['gpt-4o-mini', 'gpt-4o-mini'], limits: { rpm: 60 }, storePayloads: true, expiresAt: '30d' },
        actor: ACTOR,
      });
      assert.ok(looksLikeKeySecret(secret), secret);
      assert.equal(key.prefix, secret.slice(0, 12));
      assert.equal(key.orgId, team.orgId);
      assert.deepEqual(key.allowedRoutes, ['gpt-4o-mini']);
      assert.equal(key.storePayloads, true);
      assert.equal(key.expiresAt, clock + 30 * 86_400_000);

      const rows = await store.db.selectFrom('api_keys').selectAll().execute();
      assert.equal(rows.length, 1);
      assert.equal(rows[0]?.key_hash, hashKeySecret(secret));
      assert.ok(!JSON.stringify(rows).includes(secret), 'the secret must not be stored');

      const listed = await tenants.listKeys({ teamId: team.id });
      assert.deepEqual(listed, [key]);
      assert.ok(!JSON.stringify(listed).includes(secret) && !JSON.stringify(listed).includes(hashKeySecret(secret)));

      assert.equal(audit.entries.length, 1);
      const [created] = audit.entries;
      assert.equal(created?.action, 'key.created');
      assert.equal(created?.subject, key.id);
      assert.equal(created?.details['teamId'], team.id);
      assert.ok(!JSON.stringify(audit.entries).includes(secret) && !JSON.stringify(audit.entries).includes(hashKeySecret(secret)));
    });

    test('keys: change, revoke (idempotent, audited once), and no change after revocation', async () => {
      const team = await tenants.findTeam({ reference: 'acme/search' });
      const { key } = await tenants.createKey({ input: { team: team.id }, actor: ACTOR });
      audit.entries.length = 0;
      const changed = await tenants.updateKey({ id: key.id, changes: { limits: { tpm: 500 }, allowedRoutes: null, region: null, expiresAt: null }, actor: ACTOR });
      assert.deepEqual(changed.limits, { tpm: 500 });
      assert.ok(changed.updatedAt > key.updatedAt, 'updated_at moves even within the same millisecond');
      const again = await tenants.updateKey({ id: key.id, changes: { storePayloads: true }, actor: ACTOR });
      assert.ok(again.updatedAt > changed.updatedAt);

      const revoked = await tenants.revokeKey({ id: key.id, actor: ACTOR });
      assert.equal(revoked.revokedAt, clock);
      const revokedAgain = await tenants.revokeKey({ id: key.id, actor: ACTOR });
      assert.equal(revokedAgain.revokedAt, clock);
      await rejectsWith(tenants.updateKey({ id: key.id, changes: { name: 'x' }, actor: ACTOR }), 'conflict');
      await rejectsWith(tenants.revokeKey({ id: 'key_missing', actor: ACTOR }), 'not_found');
      assert.deepEqual(audit.entries.map((entry) => entry.action), ['key.updated', 'key.updated', 'key.revoked']);
      assert.deepEqual(audit.entries[0]?.details['changes'], { limits: { tpm: 500 }, allowedRoutes: null, region: null, expiresAt: null });
    });

    test('keys: getKey scoped to a team hides other teams’ keys; bad expiry is a 400 naming the field', async () => {
      const search = await tenants.findTeam({ reference: 'acme/search' });
      const solo = await tenants.findTeam({ reference: 'solo' });
      const { key } = await tenants.createKey({ input: { team: solo.id }, actor: ACTOR });
      assert.equal((await tenants.getKey({ id: key.id, teamId: solo.id })).id, key.id);
      await rejectsWith(tenants.getKey({ id: key.id, teamId: search.id }), 'not_found');
      await rejectsWith(tenants.createKey({ input: { team: solo.id, expiresAt: 'tomorrow' }, actor: ACTOR }), 'invalid_request', 'expiresAt');
      await rejectsWith(tenants.createKey({ input: { team: solo.id, expiresAt: '2001-01-01' }, actor: ACTOR }), 'invalid_request', 'expiresAt');
      await rejectsWith(tenants.createKey({ input: { team: 'team_missing' }, actor: ACTOR }), 'not_found', 'team');
      assert.deepEqual(
        (await tenants.listKeys({ orgId: solo.orgId })).map((listed) => listed.id),
        [key.id],
      );
    });

    test('an audit log that refuses is reported, not swallowed', async () => {
      const failing = createTenantService({ store, audit: { append: async () => Promise.reject(new Error('log down')) }, now: () => clock });
      await rejectsWith(failing.createOrg({ input: { name: 'initech' }, actor: ACTOR }), 'internal_error');
    });
  });
}
