import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { createLogger } from '../src/log.ts';
import { openStore, type Store } from '../src/store/index.ts';
import { testBackends, type TestDatabase } from './helpers/backends.ts';
import { ADMIN_TOKEN, requestJson, startTenantGateway, type TenantGateway } from './tenants-fixtures.ts';

for (const backend of await testBackends()) {
  describe(`no secret in logs, responses or the store (${backend.name})`, { skip: backend.skip }, () => {
    let database: TestDatabase;
    let store: Store;
    let gateway: TenantGateway;
    const logLines: string[] = [];

    before(async () => {
      database = await backend.createDatabase();
      store = await openStore(database.storeOptions);
      gateway = await startTenantGateway({ store, logger: createLogger({ level: 'debug', write: (line) => logLines.push(line) }) });
    });
    after(async () => {
      await gateway?.close();
      await store?.close();
      await database?.dispose();
    });

    test('keys, calls with good and bad keys, and admin calls leave no secret behind', async () => {
      const bodies: string[] = [];
      const createResponses: string[] = [];
      const call = async (input: Parameters<typeof requestJson>[0]) => {
        const response = await requestJson(input);
        bodies.push(response.text);
        return response;
      };
      const admin = (path: string, method = 'GET', body?: unknown) =>
        call({ url: `${gateway.url}/v1/seed/admin${path}`, method, token: ADMIN_TOKEN, ...(body === undefined ? {} : { body }) });

      await admin('/orgs', 'POST', { name: 'acme' });
      await admin('/teams', 'POST', { org: 'acme', name: 'search' });
      const secrets: string[] = [];
      const ids: string[] = [];
      for (const storePayloads of [true, false]) {
        const response = await requestJson({ url: `${gateway.url}/v1/seed/admin/keys`, method: 'POST', token: ADMIN_TOKEN, body: { team: 'acme/search', storePayloads } });
        createResponses.push(response.text);
        secrets.push(String(response.body['secret']));
        ids.push(String(response.body['id']));
      }
      const [good, other] = secrets;
      assert.ok(good && other);

      for (const apiKey of [good, other, `${good.slice(0, -1)}x`, 'sk-seed-short', ADMIN_TOKEN]) {
        const client = new OpenAI({ baseURL: gateway.stack.baseURL, apiKey, maxRetries: 0 });
        for (const stream of [false, true]) {
          try {
            const result = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4, stream });
            if (stream) for await (const chunk of result as AsyncIterable<unknown>) bodies.push(JSON.stringify(chunk));
            else bodies.push(JSON.stringify(result));
          } catch (error) {
            bodies.push(JSON.stringify(error), String(error));
          }
        }
        await call({ url: `${gateway.url}/v1/models`, token: apiKey });
        await call({ url: `${gateway.url}/v1/seed/usage?group_by=key`, token: apiKey });
        await call({ url: `${gateway.url}/v1/seed/keys`, token: apiKey });
        await call({ url: `${gateway.url}/v1/seed/calls`, token: apiKey });
        await call({ url: `${gateway.url}/v1/seed/admin/keys`, token: apiKey });
      }
      await admin('/keys');
      await admin(`/keys/${ids[1]}`, 'PATCH', { limits: { rpm: 3 } });
      await admin(`/keys/${ids[1]}/revoke`, 'POST');
      await call({ url: `${gateway.url}/v1/chat/completions`, method: 'POST', token: other, body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] } });
      await call({ url: `${gateway.url}/v1/seed/admin/keys`, token: `${ADMIN_TOKEN}x` });

      // Wait for the ledger to write the calls.
      for (const deadline = Date.now() + 5_000; (await store.listCalls({ limit: 1000 })).calls.length < 4; ) {
        assert.ok(Date.now() < deadline, 'calls did not reach the store');
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      const tables = await Promise.all(
        (['calls', 'api_keys', 'orgs', 'teams'] as const).map(async (table) => JSON.stringify(await store.db.selectFrom(table).selectAll().execute())),
      );
      const payloads = (await store.listCalls({ limit: 1000 })).calls.filter((record) => record.payload !== null);
      assert.ok(payloads.length > 0, 'payloads were stored, so their scan means something');

      const places: Record<string, string> = {
        logs: logLines.join('\n'),
        responses: bodies.join('\n'),
        tables: tables.join('\n'),
        audit: JSON.stringify(gateway.audit.entries),
      };
      // The scan finds a secret where one is: in the one response that hands it out.
      assert.ok(createResponses.join('\n').includes(good));
      for (const secret of [...secrets, ADMIN_TOKEN]) {
        for (const [place, text] of Object.entries(places)) {
          assert.ok(!text.includes(secret), `a secret (${secret.slice(0, 12)}…) was found in ${place}`);
          // Nor a long piece of it (e.g. an error quoting the key after its prefix).
          assert.ok(!text.includes(secret.slice(8, 28)), `part of a secret was found in ${place}`);
        }
      }
    });
  });
}
