/**
 * The admin API under `/v1/seed/admin/…` (orgs, teams, keys; guarded by the admin token) and,
 * beside it, the team-scoped self-service API for key holders (`/v1/seed/keys`,
 * `/v1/seed/usage`, `/v1/seed/calls`). Register the result as one of the gateway's `plugins`.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { SeedError } from '../../errors.ts';
import type { Store } from '../../store/index.ts';
import {
  createKeyInputSchema,
  createOrgInputSchema,
  createTeamInputSchema,
  updateKeyInputSchema,
  updateLimitsInputSchema,
  type Authenticator,
  type TenantService,
} from '../../tenants/index.ts';
import { registerSelfServiceRoutes } from './self-service.ts';
import { parseInput, requireAdmin, withIsoTimes } from './tenant-access.ts';

export interface AdminApiOptions {
  tenants: TenantService;
  authenticator: Pick<Authenticator, 'authenticateKey' | 'refresh'>;
  store: Pick<Store, 'usage' | 'listCalls' | 'getCall'>;
  /** The admin token (`auth.adminToken`); undefined disables the admin endpoints. */
  adminToken: string | undefined;
  /** Route names that exist; a key's `allowedRoutes` may name only these. Omitted: not checked. */
  knownRoutes?: ReadonlySet<string>;
  now?: () => number;
}

const ADMIN_ACTOR = 'admin-token';
const idParamsSchema = z.object({ id: z.string().min(1).max(200) });
const teamFilterSchema = z.object({ team: z.string().min(1).optional(), org: z.string().min(1).optional() }).strict();
const orgFilterSchema = z.object({ org: z.string().min(1).optional() }).strict();

function checkRoutes({ routes, knownRoutes }: { routes: readonly string[] | null | undefined; knownRoutes: ReadonlySet<string> | undefined }): void {
  if (!routes || !knownRoutes) return;
  const index = routes.findIndex((route) => !knownRoutes.has(route));
  if (index >= 0) {
    throw new SeedError('invalid_request', `Invalid value for 'allowedRoutes[${index}]': no route named "${routes[index]}".`, {
      param: `allowedRoutes[${index}]`,
    });
  }
}

/**
 * @example
 * const tenantApi = createAdminApi({ tenants, authenticator, store, adminToken: config.auth.adminToken,
 *   knownRoutes: new Set(Object.keys(config.routes)) });
 * await startSeed({ config, authenticate: authenticator.authenticate, plugins: [tenantApi] });
 */
export function createAdminApi(options: AdminApiOptions): (app: FastifyInstance) => Promise<void> {
  const { tenants } = options;
  // A change made here is visible to this replica's key cache at once, not at the next poll.
  const changed = () => options.authenticator.refresh().catch(() => undefined);
  const idOf = (request: FastifyRequest) => parseInput(idParamsSchema, request.params, { text: true }).id;

  return async (app) => {
    await app.register(
      async (admin) => {
        admin.addHook('onRequest', async (request) => requireAdmin({ headers: request.headers, adminToken: options.adminToken }));

        admin.post('/orgs', async (request, reply) => {
          const org = await tenants.createOrg({ input: parseInput(createOrgInputSchema, request.body), actor: ADMIN_ACTOR });
          return reply.status(201).send(withIsoTimes(org));
        });
        admin.get('/orgs', async () => ({ object: 'list', data: (await tenants.listOrgs()).map(withIsoTimes) }));
        admin.patch('/orgs/:id', async (request) => {
          const { limits } = parseInput(updateLimitsInputSchema, request.body);
          const org = await tenants.setOrgLimits({ id: idOf(request), limits, actor: ADMIN_ACTOR });
          await changed();
          return withIsoTimes(org);
        });

        admin.post('/teams', async (request, reply) => {
          const team = await tenants.createTeam({ input: parseInput(createTeamInputSchema, request.body), actor: ADMIN_ACTOR });
          return reply.status(201).send(withIsoTimes(team));
        });
        admin.get('/teams', async (request) => {
          const { org } = parseInput(orgFilterSchema, request.query, { text: true });
          const orgId = org === undefined ? undefined : (await tenants.findOrg({ reference: org })).id;
          return { object: 'list', data: (await tenants.listTeams(orgId === undefined ? {} : { orgId })).map(withIsoTimes) };
        });
        admin.patch('/teams/:id', async (request) => {
          const { limits } = parseInput(updateLimitsInputSchema, request.body);
          const team = await tenants.setTeamLimits({ id: idOf(request), limits, actor: ADMIN_ACTOR });
          await changed();
          return withIsoTimes(team);
        });

        admin.post('/keys', async (request, reply) => {
          const input = parseInput(createKeyInputSchema, request.body);
          checkRoutes({ routes: input.allowedRoutes, knownRoutes: options.knownRoutes });
          const { key, secret } = await tenants.createKey({ input, actor: ADMIN_ACTOR });
          return reply.status(201).send({ ...withIsoTimes(key), secret });
        });
        admin.get('/keys', async (request) => {
          const { team, org } = parseInput(teamFilterSchema, request.query, { text: true });
          const teamId = team === undefined ? undefined : (await tenants.findTeam({ reference: team })).id;
          const orgId = org === undefined ? undefined : (await tenants.findOrg({ reference: org })).id;
          const keys = await tenants.listKeys({ ...(teamId === undefined ? {} : { teamId }), ...(orgId === undefined ? {} : { orgId }) });
          return { object: 'list', data: keys.map(withIsoTimes) };
        });
        admin.get('/keys/:id', async (request) => withIsoTimes(await tenants.getKey({ id: idOf(request) })));
        admin.patch('/keys/:id', async (request) => {
          const changes = parseInput(updateKeyInputSchema, request.body);
          checkRoutes({ routes: changes.allowedRoutes, knownRoutes: options.knownRoutes });
          const key = await tenants.updateKey({ id: idOf(request), changes, actor: ADMIN_ACTOR });
          await changed();
          return withIsoTimes(key);
        });
        admin.post('/keys/:id/revoke', async (request) => {
          const key = await tenants.revokeKey({ id: idOf(request), actor: ADMIN_ACTOR });
          await changed();
          return withIsoTimes(key);
        });
      },
      { prefix: '/v1/seed/admin' },
    );
    registerSelfServiceRoutes({ app, options });
  };
}
