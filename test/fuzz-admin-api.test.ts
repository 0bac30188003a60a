/**
 * Fuzzes the admin API (`/v1/seed/admin/…`: orgs, teams, keys) and the self-service API
 * (`/v1/seed/keys`, `/usage`, `/calls`) on SQLite and on PostgreSQL: random JSON bodies, valid
 * bodies with one field replaced by any JSON (strings with any code unit, NUL and lone
 * surrogates included, numbers of every size), random ids in paths and random query values.
 * The invariant: a 2xx, or a 4xx OpenAI-format error — never a 5xx. The stores differ in what
 * text they take (PostgreSQL refuses NUL in text), so both must be driven through the same edge.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { openStore, type Store } from '../src/store/index.ts';
import { testBackends, type TestDatabase } from './helpers/backends.ts';
import { assertOpenAIError, assertTruthfulMessage } from './helpers/fuzz-http.ts';
import { fuzzRuns, prototypeName } from './helpers/fuzz-stack.ts';
import { ADMIN_TOKEN, startTenantGateway, type TenantGateway } from './tenants-fixtures.ts';

/** Strings of any code unit (NUL, lone surrogates, controls), and the ones the schemas expect. */
const anyText = fc.oneof(
  fc.string({ maxLength: 40, unit: 'binary' }),
  fc.string({ maxLength: 300, unit: 'grapheme' }),
  fc.constantFrom('', ' ', '\u0000', 'a\u0000b', '\ud800', 'acme', 'acme/search', 'org_x', 'team_x', 'key_x', '30d', '2030-01-01', 'eu', '../..', '%00', '.', '..'),
  prototypeName,
);
const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  anyText,
  fc.constantFrom(0, -1, 1.5, 1e308, -1e308, Number.MAX_SAFE_INTEGER + 2, 2 ** 63, true, null, [], {}),
  fc.jsonValue({ maxDepth: 2 }),
  fc.jsonValue({ maxDepth: 2, stringUnit: 'binary' }),
);
const anyLimits = fc.oneof(
  fc.dictionary(fc.constantFrom('rpm', 'tpm', 'usdPerDay', 'usdPerMonth', 'concurrency', 'x'), anyValue, { maxKeys: 3 }),
  anyValue,
);

/** A path segment for any text: a URL carries UTF-8, so a lone surrogate goes as U+FFFD. */
const segment = (text: string) => encodeURIComponent(asSent(text));
/** Text as the server reads it back from a URL: UTF-8, a lone surrogate as U+FFFD. */
const asSent = (text: string) => Buffer.from(text, 'utf8').toString('utf8');
/**
 * The route parameters the server reads from `${prefix}${segment(id)}`: a URL drops its dot
 * segments (`.` and `..`, escaped or not), as fetch does, so `/calls/.` asks for `/calls/` (an
 * empty id) and `/calls/..` for another route (no `id` at all: undefined).
 */
function idParams(prefix: string, id: string): { id: string } | undefined {
  const { pathname } = new URL(`${prefix}${segment(id)}`, 'http://127.0.0.1');
  return pathname.startsWith(prefix) ? { id: decodeURIComponent(pathname.slice(prefix.length)) } : undefined;
}
const queryAsSent = (query: Record<string, string>) => Object.fromEntries(Object.entries(query).map(([name, value]) => [asSent(name), asSent(value)]));

/** A body that is valid but for the fields drawn (each replaced by any value, or removed). */
function nearlyValid(valid: Record<string, unknown>, fields: readonly string[]): fc.Arbitrary<Record<string, unknown>> {
  return fc
    .array(fc.tuple(fc.constantFrom(...fields), fc.oneof(anyValue, anyLimits, fc.constant(undefined))), { minLength: 1, maxLength: 3 })
    .map((changes) => {
      const body: Record<string, unknown> = { ...valid };
      for (const [field, value] of changes) {
        if (value === undefined) delete body[field];
        else body[field] = value;
      }
      return body;
    });
}

for (const backend of await testBackends()) {
  describe(`admin and self-service APIs under random input (${backend.name})`, { skip: backend.skip }, () => {
    let database: TestDatabase;
    let store: Store;
    let gateway: TenantGateway;
    let keySecret: string;
    let keyId: string;
    let teamId: string;
    let orgId: string;

    /**
     * One request; the answer must be a 2xx or a 4xx OpenAI-format error whose message is true
     * of what was sent. `params`: what the route validates besides the body (`:id`, the query).
     */
    async function send(input: { method: string; path: string; body?: unknown; params?: Record<string, string>; token?: string; raw?: string }): Promise<number> {
      const response = await fetch(`${gateway.url}${input.path}`, {
        method: input.method,
        headers: { authorization: `Bearer ${input.token ?? ADMIN_TOKEN}`, ...(input.body === undefined && input.raw === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(input.raw !== undefined ? { body: input.raw } : input.body === undefined ? {} : { body: JSON.stringify(input.body) }),
        signal: AbortSignal.timeout(5_000),
      });
      const text = await response.text();
      const context = `${input.method} ${input.path} ${input.raw ?? JSON.stringify(input.body) ?? ''}`.slice(0, 400);
      assert.ok(response.status < 500, `${context}: ${response.status} ${text.slice(0, 300)}`);
      if (response.status >= 400) assertOpenAIError(text, response.status);
      if (input.body !== undefined) {
        const sent: unknown = JSON.parse(JSON.stringify(input.body));
        const validated = input.params && sent !== null && typeof sent === 'object' && !Array.isArray(sent) ? { ...input.params, ...sent } : sent;
        assertTruthfulMessage(validated, { status: response.status, body: text }, context, Object.keys(input.params ?? {}));
      } else if (input.params) assertTruthfulMessage(input.params, { status: response.status, body: text }, context, Object.keys(input.params));
      return response.status;
    }

    before(async () => {
      database = await backend.createDatabase();
      store = await openStore(database.storeOptions);
      gateway = await startTenantGateway({ store });
      const post = async (path: string, body: unknown) => {
        const response = await fetch(`${gateway.url}/v1/seed/admin${path}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        assert.equal(response.status, 201, await response.clone().text());
        return (await response.json()) as Record<string, string>;
      };
      orgId = (await post('/orgs', { name: 'acme' })).id!;
      teamId = (await post('/teams', { org: 'acme', name: 'search' })).id!;
      const key = await post('/keys', { team: teamId, name: 'fuzz' });
      keyId = key.id!;
      keySecret = key.secret!;
    });
    after(async () => {
      await gateway?.close();
      await store?.close();
      await database?.dispose();
    });

    test('creating orgs, teams and keys from random and nearly valid bodies', async () => {
      const creations = [
        { path: '/orgs', valid: { name: 'globex' }, fields: ['name', 'limits'] },
        { path: '/teams', valid: { org: 'acme', name: 'ads' }, fields: ['org', 'name', 'limits'] },
        {
          path: '/keys',
          valid: { team: 'acme/search', name: 'k' },
          fields: ['team', 'name', 'region', 'allowedRoutes', 'limits', 'storePayloads', 'expiresAt'],
        },
      ];
      for (const { path, valid, fields } of creations) {
        await fc.assert(
          fc.asyncProperty(fc.oneof(anyValue, nearlyValid(valid, fields)), async (body) => {
            await send({ method: 'POST', path: `/v1/seed/admin${path}`, body });
          }),
          fuzzRuns(100),
        );
      }
    });

    test('changing orgs, teams and keys: random ids and bodies', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom('orgs', 'teams', 'keys'),
          fc.oneof(fc.constantFrom('real', 'real'), anyText),
          fc.oneof(anyValue, nearlyValid({ limits: { rpm: 10 } }, ['limits', 'name', 'region', 'allowedRoutes', 'storePayloads', 'expiresAt'])),
          async (kind, id, body) => {
            const real = kind === 'orgs' ? orgId : kind === 'teams' ? teamId : keyId;
            const sentId = id === 'real' ? real : id;
            const params = idParams(`/v1/seed/admin/${kind}/`, sentId);
            await send({ method: 'PATCH', path: `/v1/seed/admin/${kind}/${segment(sentId)}`, body, ...(params ? { params } : {}) });
          },
        ),
        fuzzRuns(150),
      );
      // Revoking a random id: not found or done, never a 5xx (the real key stays for the next tests).
      await fc.assert(
        fc.asyncProperty(anyText, async (id) => {
          await send({ method: 'POST', path: `/v1/seed/admin/keys/${segment(id)}/revoke` });
        }),
        fuzzRuns(50),
      );
    });

    test('listing and reading with random filters and ids', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom('/v1/seed/admin/teams', '/v1/seed/admin/keys', '/v1/seed/admin/orgs', '/v1/seed/admin/keys/'),
          fc.dictionary(fc.constantFrom('team', 'org', 'x'), anyText, { maxKeys: 2 }),
          anyText,
          async (path, query, id) => {
            const search = new URLSearchParams(query).toString();
            await send({
              method: 'GET',
              path: path.endsWith('/') ? `${path}${segment(id)}` : `${path}${search ? `?${search}` : ''}`,
              params: path.endsWith('/') ? idParams(path, id) : queryAsSent(query),
            });
          },
        ),
        fuzzRuns(150),
      );
    });

    test('the self-service API with random query values, as a key holder', async () => {
      const fields = ['group_by', 'since', 'until', 'team', 'org', 'key', 'route', 'status', 'client_request_id', 'limit', 'cursor'];
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom('/v1/seed/keys', '/v1/seed/usage', '/v1/seed/calls', '/v1/seed/calls/'),
          fc.dictionary(fc.constantFrom(...fields), fc.oneof(anyText, fc.constantFrom('key', 'route', 'day', '0', '-1', '1001', 'ok', '2026-01-01T00:00:00Z')), { maxKeys: 3 }),
          anyText,
          async (path, query, id) => {
            const search = new URLSearchParams(query).toString();
            await send({
              method: 'GET',
              token: keySecret,
              path: path.endsWith('/') ? `${path}${segment(id)}` : `${path}${search ? `?${search}` : ''}`,
              params: path.endsWith('/') ? idParams(path, id) : queryAsSent(query),
            });
          },
        ),
        fuzzRuns(200),
      );
    });

    test('bodies that are not JSON objects, and the admin API still answers afterwards', async () => {
      await fc.assert(
        fc.asyncProperty(fc.constantFrom('/v1/seed/admin/orgs', '/v1/seed/admin/teams', '/v1/seed/admin/keys'), fc.string({ maxLength: 60, unit: 'binary' }), async (path, raw) => {
          await send({ method: 'POST', path, raw });
        }),
        fuzzRuns(60),
      );
      assert.equal(await send({ method: 'GET', path: '/v1/seed/admin/orgs' }), 200);
      assert.equal(await send({ method: 'GET', path: '/v1/seed/keys', token: keySecret }), 200);
    });
  });
}
