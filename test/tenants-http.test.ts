import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { openStore, type Store } from '../src/store/index.ts';
import { testBackends, type TestDatabase } from './helpers/backends.ts';
import { ADMIN_TOKEN, errorCode, requestJson, startTenantGateway, type TenantGateway } from './tenants-fixtures.ts';
import { standardConfig, startStack } from './helpers/stack.ts';

interface CreatedKeyBody {
  id: string;
  secret: string;
  teamId: string;
  orgId: string;
}

const sdk = ({ gateway, apiKey }: { gateway: TenantGateway; apiKey: string }) =>
  new OpenAI({ baseURL: gateway.stack.baseURL, apiKey, maxRetries: 0 });

async function chat(client: OpenAI, model = 'gpt-4o-mini', headers: Record<string, string> = {}) {
  return client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hello' }], max_tokens: 8 }, { headers });
}

async function sdkErrorOf(promise: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof OpenAI.APIError, String(error));
    return error;
  }
  assert.fail('expected the call to fail');
}

for (const backend of await testBackends()) {
  describe(`tenants over HTTP (${backend.name})`, { skip: backend.skip }, () => {
    let database: TestDatabase;
    let store: Store;
    let replicaStore: Store;
    let gateway: TenantGateway;
    let replica: TenantGateway;
    let admin: (path: string, init?: { method?: string; body?: unknown; token?: string }) => ReturnType<typeof requestJson>;
    let keyA: CreatedKeyBody;
    let keyB: CreatedKeyBody;
    let teamA: string;
    let teamB: string;

    before(async () => {
      database = await backend.createDatabase();
      store = await openStore(database.storeOptions);
      replicaStore = await openStore(database.storeOptions);
      gateway = await startTenantGateway({ store });
      replica = await startTenantGateway({ store: replicaStore });
      admin = (path, init = {}) =>
        requestJson({ url: `${gateway.url}/v1/seed/admin${path}`, token: init.token ?? ADMIN_TOKEN, ...(init.method ? { method: init.method } : {}), ...(init.body === undefined ? {} : { body: init.body }) });
      assert.equal((await admin('/orgs', { method: 'POST', body: { name: 'acme' } })).status, 201);
      assert.equal((await admin('/orgs', { method: 'POST', body: { name: 'globex' } })).status, 201);
      teamA = String((await admin('/teams', { method: 'POST', body: { org: 'acme', name: 'search' } })).body['id']);
      teamB = String((await admin('/teams', { method: 'POST', body: { org: 'globex', name: 'ads' } })).body['id']);
      const createdA = await admin('/keys', { method: 'POST', body: { team: teamA, name: 'a', allowedRoutes: ['gpt-4o-mini', 'llama'] } });
      const createdB = await admin('/keys', { method: 'POST', body: { team: teamB, name: 'b' } });
      assert.equal(createdA.status, 201, createdA.text);
      keyA = createdA.body as unknown as CreatedKeyBody;
      keyB = createdB.body as unknown as CreatedKeyBody;
    });
    after(async () => {
      await gateway?.close();
      await replica?.close();
      await store?.close();
      await replicaStore?.close();
      await database?.dispose();
    });

    test('the admin API needs the admin token: none, a wrong one and a virtual key are all refused', async () => {
      const endpoints: Array<[method: string, path: string]> = [
        ['GET', '/orgs'], ['POST', '/orgs'], ['PATCH', `/orgs/x`], ['GET', '/teams'], ['POST', '/teams'], ['PATCH', `/teams/${teamB}`],
        ['GET', '/keys'], ['POST', '/keys'], ['GET', `/keys/${keyB.id}`], ['PATCH', `/keys/${keyB.id}`], ['POST', `/keys/${keyB.id}/revoke`],
      ];
      for (const [method, path] of endpoints) {
        for (const token of [undefined, 'wrong-token-wrong-token', keyA.secret]) {
          const response = await requestJson({ url: `${gateway.url}/v1/seed/admin${path}`, method, ...(token ? { token } : {}), ...(method === 'GET' ? {} : { body: { limits: { rpm: 1 } } }) });
          assert.equal(response.status, 401, `${method} ${path} with ${token === undefined ? 'no token' : 'a bad token'}`);
          assert.equal(errorCode(response.body), 'admin_token_required');
        }
      }
      assert.equal((await admin(`/keys/${keyB.id}`)).body['revokedAt'], null, 'nothing was changed');
    });

    test('admin create returns the secret once; listings never show it; inputs are validated with param', async () => {
      assert.match(keyA.secret, /^sk-seed-[A-Za-z0-9_-]{43}$/);
      const listed = await admin(`/keys?team=${teamA}`);
      assert.equal(listed.status, 200);
      assert.ok(!listed.text.includes(keyA.secret));
      assert.deepEqual((listed.body['data'] as Array<{ id: string }>).map((key) => key.id), [keyA.id]);
      assert.equal((await admin(`/keys/${keyA.id}`)).body['secret'], undefined);

      const cases: Array<[body: unknown, param: string]> = [
        [{ team: teamA, limits: { rpm: -1 } }, 'limits.rpm'],
        [{ team: teamA, allowedRoutes: ['no-such-route'] }, 'allowedRoutes[0]'],
        [{ team: teamA, expiresAt: 'yesterday' }, 'expiresAt'],
        [{ team: teamA, storePayloads: 'yes' }, 'storePayloads'],
        [{ name: 'no team' }, 'team'],
      ];
      for (const [body, param] of cases) {
        const response = await admin('/keys', { method: 'POST', body });
        assert.equal(response.status, 400, JSON.stringify(body));
        assert.equal(errorCode(response.body), 'invalid_request');
        assert.equal((response.body['error'] as { param: string }).param, param);
      }
      const unknownField = await admin(`/keys/${keyA.id}`, { method: 'PATCH', body: { secret: 'x' } });
      assert.equal(unknownField.status, 400);
      const nothing = await admin(`/keys/${keyA.id}`, { method: 'PATCH', body: {} });
      assert.equal(nothing.status, 400);
      assert.deepEqual(nothing.body['error'], {
        message: 'Invalid request: expected at least one field to change.',
        type: 'invalid_request_error',
        code: 'invalid_request',
        param: null,
      });
      assert.equal((await admin('/keys/key_missing', { method: 'PATCH', body: { name: 'x' } })).status, 404);
      assert.equal((await admin('/teams', { method: 'POST', body: { org: 'acme', name: 'search' } })).status, 409);
    });

    test('key administration is audited: create, change, revoke', async () => {
      const created = await admin('/keys', { method: 'POST', body: { team: teamA, name: 'audited' } });
      const id = String(created.body['id']);
      assert.equal((await admin(`/keys/${id}`, { method: 'PATCH', body: { limits: { rpm: 5 }, region: 'eu' } })).status, 200);
      assert.equal((await admin(`/keys/${id}/revoke`, { method: 'POST' })).status, 200);
      const mine = gateway.audit.entries.filter((entry) => entry.subject === id);
      assert.deepEqual(mine.map((entry) => [entry.actor, entry.action]), [['admin-token', 'key.created'], ['admin-token', 'key.updated'], ['admin-token', 'key.revoked']]);
      assert.deepEqual(mine[1]?.details['changes'], { limits: { rpm: 5 }, region: 'eu' });
    });

    test('through the openai SDK: a valid key works, bad keys fail with their 401 codes', async () => {
      const response = await chat(sdk({ gateway, apiKey: keyA.secret }));
      assert.ok(response.choices[0]?.message);

      const invalid = await sdkErrorOf(chat(sdk({ gateway, apiKey: `sk-seed-${'Z'.repeat(43)}` })));
      assert.ok(invalid instanceof OpenAI.AuthenticationError);
      assert.equal(invalid.code, 'invalid_api_key');

      const missing = await requestJson({ url: `${gateway.stack.baseURL}/chat/completions`, method: 'POST', body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] } });
      assert.equal(missing.status, 401);
      assert.equal(errorCode(missing.body), 'missing_api_key');

      const doomed = (await admin('/keys', { method: 'POST', body: { team: teamA } })).body as unknown as CreatedKeyBody;
      await admin(`/keys/${doomed.id}/revoke`, { method: 'POST' });
      const revoked = await sdkErrorOf(chat(sdk({ gateway, apiKey: doomed.secret })));
      assert.ok(revoked instanceof OpenAI.AuthenticationError);
      assert.equal(revoked.code, 'key_revoked');

      const shortLived = (await admin('/keys', { method: 'POST', body: { team: teamA, expiresAt: '1s' } })).body as unknown as CreatedKeyBody;
      await chat(sdk({ gateway, apiKey: shortLived.secret }));
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      const expired = await sdkErrorOf(chat(sdk({ gateway, apiKey: shortLived.secret })));
      assert.ok(expired instanceof OpenAI.AuthenticationError);
      assert.equal(expired.code, 'key_expired');
    });

    test('allowed routes: others are model_not_found and hidden from /v1/models', async () => {
      const client = sdk({ gateway, apiKey: keyA.secret });
      const models = await client.models.list();
      assert.deepEqual(models.data.map((model) => model.id).sort(), ['gpt-4o-mini', 'llama']);
      const refused = await sdkErrorOf(chat(client, 'claude-sonnet'));
      assert.ok(refused instanceof OpenAI.NotFoundError);
      assert.equal(refused.code, 'model_not_found');
      assert.ok((await chat(client, 'llama')).choices.length > 0);

      await admin(`/keys/${keyA.id}`, { method: 'PATCH', body: { allowedRoutes: null } });
      assert.ok((await chat(client, 'claude-sonnet')).choices.length > 0, 'the change applies at once on the replica that made it');
      await admin(`/keys/${keyA.id}`, { method: 'PATCH', body: { allowedRoutes: ['gpt-4o-mini', 'llama'] } });
    });

    test('revoking through one gateway makes another gateway on the same store refuse the key within 1 s', async () => {
      const shared = (await admin('/keys', { method: 'POST', body: { team: teamB } })).body as unknown as CreatedKeyBody;
      const onReplica = sdk({ gateway: replica, apiKey: shared.secret });
      await chat(onReplica);
      const revokedAt = Date.now();
      assert.equal((await admin(`/keys/${shared.id}/revoke`, { method: 'POST' })).status, 200);
      for (;;) {
        try {
          await chat(onReplica);
        } catch (error) {
          assert.ok(error instanceof OpenAI.AuthenticationError);
          assert.equal(error.code, 'key_revoked');
          break;
        }
        assert.ok(Date.now() - revokedAt < 1_000, 'the replica still accepts the revoked key after 1 s');
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      assert.ok(Date.now() - revokedAt < 1_000);
    });

    test('auth.keyPollIntervalMs sets how soon a gateway sees a revocation made on another replica', async () => {
      // Gateways whose auth comes from the config (as `seed serve` starts them), on the same store.
      const stores: Store[] = [];
      const configured = async (pollMs: number) => {
        const own = await openStore(database.storeOptions);
        stores.push(own);
        return startStack({
          config: (url) => `${standardConfig(url)}\nauth: { mode: keys, keyPollIntervalMs: ${pollMs} }\nledger: { flushIntervalMs: 10 }\n`,
          start: { store: own },
        });
      };
      const slow = await configured(60_000);
      const fast = await configured(20);
      try {
        const shared = (await admin('/keys', { method: 'POST', body: { team: teamB } })).body as unknown as CreatedKeyBody;
        const onSlow = new OpenAI({ baseURL: slow.baseURL, apiKey: shared.secret, maxRetries: 0 });
        const onFast = new OpenAI({ baseURL: fast.baseURL, apiKey: shared.secret, maxRetries: 0 });
        await chat(onSlow);
        await chat(onFast);
        const revokedAt = Date.now();
        assert.equal((await admin(`/keys/${shared.id}/revoke`, { method: 'POST' })).status, 200);
        let refusedAfterMs: number | undefined;
        while (Date.now() - revokedAt < 1_500) {
          try {
            await chat(onFast);
          } catch (error) {
            assert.ok(error instanceof OpenAI.AuthenticationError);
            refusedAfterMs = Date.now() - revokedAt;
            break;
          }
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        assert.ok(refusedAfterMs !== undefined && refusedAfterMs < 1_000, `a 20 ms poll saw the revocation after ${refusedAfterMs} ms`);
        // The 60 s poll has not run since the key was cached: that gateway still takes it.
        assert.ok((await chat(onSlow)).choices.length > 0);
      } finally {
        await slow.close();
        await fast.close();
        for (const own of stores) await own.close();
      }
    });

    test('tenant isolation: key A sees and changes nothing of team B, through every endpoint', async () => {
      // Both teams send the same client request id: each finds only its own call by it.
      await chat(sdk({ gateway, apiKey: keyA.secret }), 'gpt-4o-mini', { 'x-client-request-id': 'same-trace' });
      await chat(sdk({ gateway, apiKey: keyB.secret }), 'gpt-4o-mini', { 'x-client-request-id': 'same-trace' });
      // Calls reach the store through the ledger, off the request path.
      for (const deadline = Date.now() + 5_000; ; ) {
        const rows = await store.usage({ groupBy: ['team'], since: 0, until: Date.now() + 1 });
        if (rows.some((row) => row.team === teamA) && rows.some((row) => row.team === teamB)) break;
        assert.ok(Date.now() < deadline, 'calls did not reach the store');
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      const asA = (path: string) => requestJson({ url: `${gateway.url}${path}`, token: keyA.secret });

      const keys = await asA('/v1/seed/keys');
      assert.equal(keys.status, 200);
      const keyTeams = new Set((keys.body['data'] as Array<{ teamId: string }>).map((key) => key.teamId));
      assert.deepEqual([...keyTeams], [teamA]);
      assert.ok(!keys.text.includes(keyB.id));

      const usage = await asA('/v1/seed/usage?group_by=team,route&since=1h');
      assert.equal(usage.status, 200, usage.text);
      const usageTeams = new Set((usage.body['data'] as Array<{ team: string }>).map((row) => row.team));
      assert.deepEqual([...usageTeams], [teamA]);

      const calls = await asA('/v1/seed/calls');
      const callRows = calls.body['data'] as Array<{ teamId: string; id: string }>;
      assert.ok(callRows.length > 0);
      assert.ok(callRows.every((call) => call.teamId === teamA));

      const callOfB = (await store.listCalls({ filters: { teamId: teamB }, limit: 1 })).calls[0];
      assert.ok(callOfB);
      assert.equal((await asA(`/v1/seed/calls/${callOfB.id}`)).status, 404, "another team's call is not found");
      assert.equal((await asA(`/v1/seed/calls/${callRows[0]?.id}`)).status, 200);

      for (const path of [`/v1/seed/keys?team=${teamB}`, `/v1/seed/usage?team=${teamB}`, `/v1/seed/usage?org=${keyB.orgId}`, `/v1/seed/calls?team=${teamB}`]) {
        const response = await asA(path);
        assert.equal(response.status, 401, path);
        assert.equal(errorCode(response.body), 'admin_token_required');
      }
      const keyFilter = await asA(`/v1/seed/usage?key=${keyB.id}`);
      assert.ok((keyFilter.body['data'] as Array<{ requests: number }>).every((row) => row.requests === 0), "filtering by another team's key finds nothing");
      const keyCalls = await asA(`/v1/seed/calls?key=${keyB.id}`);
      assert.deepEqual(keyCalls.body['data'], []);
      // A query parameter is text: a bound, or a type, is said of the number it spells.
      for (const [query, message] of [
        ['limit=0', "Invalid 'limit': integer below minimum value. Expected a value >= 1, but got 0 instead."],
        ['limit=1001', "Invalid 'limit': integer above maximum value. Expected a value <= 1000, but got 1001 instead."],
        ['limit=2.5', "Invalid type for 'limit': expected an integer, but got a decimal instead."],
        ['limit=ten', "Invalid type for 'limit': expected a number, but got a string instead."],
      ]) {
        const response = await asA(`/v1/seed/calls?${query}`);
        assert.equal(response.status, 400, query);
        assert.equal((response.body['error'] as { message: string }).message, message, query);
      }
      const traced = await asA('/v1/seed/calls?client_request_id=same-trace');
      assert.equal(traced.status, 200, traced.text);
      const tracedRows = traced.body['data'] as Array<{ teamId: string; clientRequestId: string }>;
      assert.deepEqual(
        tracedRows.map((call) => [call.teamId, call.clientRequestId]),
        [[teamA, 'same-trace']],
      );

      for (const [method, path] of [['PATCH', `/v1/seed/admin/keys/${keyB.id}`], ['POST', `/v1/seed/admin/keys/${keyB.id}/revoke`], ['GET', `/v1/seed/admin/keys?team=${teamB}`]] as const) {
        const response = await requestJson({ url: `${gateway.url}${path}`, method, token: keyA.secret, ...(method === 'GET' ? {} : { body: { name: 'taken' } }) });
        assert.equal(response.status, 401);
      }
      assert.ok((await chat(sdk({ gateway, apiKey: keyB.secret }))).choices.length > 0, 'key B still works');
    });

    test('usage: the admin token sees every team and may filter; bad parameters are 400 with param', async () => {
      const all = await requestJson({ url: `${gateway.url}/v1/seed/usage?group_by=team&since=1h`, token: ADMIN_TOKEN });
      const teams = new Set((all.body['data'] as Array<{ team: string }>).map((row) => row.team));
      assert.ok(teams.has(teamA) && teams.has(teamB));
      const onlyB = await requestJson({ url: `${gateway.url}/v1/seed/usage?group_by=team,day&team=${teamB}`, token: ADMIN_TOKEN });
      const rows = onlyB.body['data'] as Array<{ team: string; day: string; requests: number }>;
      assert.ok(rows.length > 0 && rows.every((row) => row.team === teamB && /^\d{4}-\d{2}-\d{2}$/.test(row.day) && row.requests > 0));
      const byOrg = await requestJson({ url: `${gateway.url}/v1/seed/usage?group_by=org&org=acme`, token: ADMIN_TOKEN });
      assert.deepEqual(new Set((byOrg.body['data'] as Array<{ org: string }>).map((row) => row.org)).size, 1);

      for (const [query, param] of [['group_by=team,colour', 'group_by'], ['since=last-tuesday', 'since'], ['until=soon', 'until'], ['since=1h&until=2h', 'since'], ['bogus=1', 'bogus']] as const) {
        const response = await requestJson({ url: `${gateway.url}/v1/seed/usage?${query}`, token: keyA.secret });
        assert.equal(response.status, 400, query);
        assert.equal((response.body['error'] as { param: string }).param, param, query);
      }
      const anonymous = await requestJson({ url: `${gateway.url}/v1/seed/usage` });
      assert.equal(errorCode(anonymous.body), 'missing_api_key');
    });
  });
}
