/**
 * Team-scoped endpoints for key holders: their team's keys, usage and call records. A key sees
 * its own team only — asking for another team is refused, and another team's record is simply
 * not found — while the admin token sees everything and may filter by team or org.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { SeedError } from '../../errors.ts';
import type { CallStatus } from '../../ledger/types.ts';
import { parseGroupBy, usageRowView, usageWindow } from '../../tenants/usage.ts';
import type { AdminApiOptions } from './admin.ts';
import { parseInput, resolvePrincipal, withIsoTimes, type Principal } from './tenant-access.ts';

const usageQuerySchema = z
  .object({
    group_by: z.string().max(200).optional(),
    since: z.string().max(64).optional(),
    until: z.string().max(64).optional(),
    team: z.string().min(1).max(200).optional(),
    org: z.string().min(1).max(200).optional(),
    key: z.string().min(1).max(200).optional(),
  })
  .strict();

const callsQuerySchema = z
  .object({
    since: z.string().max(64).optional(),
    until: z.string().max(64).optional(),
    team: z.string().min(1).max(200).optional(),
    key: z.string().min(1).max(200).optional(),
    route: z.string().min(1).max(200).optional(),
    status: z.enum(['ok', 'error', 'aborted'] satisfies CallStatus[]).optional(),
    client_request_id: z.string().min(1).max(128).optional(),
    limit: z.coerce.number().int().min(1).max(1000).optional(),
    cursor: z.string().max(500).optional(),
  })
  .strict();

const keysQuerySchema = z.object({ team: z.string().min(1).max(200).optional() }).strict();

/**
 * The team a request may see: a key holder's own, whatever they ask for; the admin's choice.
 * A key asking for another team gets admin_token_required rather than a quietly narrowed answer.
 */
async function scopeOf({
  principal,
  team,
  org,
  options,
}: {
  principal: Principal;
  team: string | undefined;
  org: string | undefined;
  options: AdminApiOptions;
}): Promise<{ teamId?: string; orgId?: string }> {
  if (principal.kind === 'team') {
    const { caller } = principal;
    const foreignTeam = team !== undefined && team !== caller.teamId;
    const foreignOrg = org !== undefined && org !== caller.orgId;
    if (foreignTeam || foreignOrg) {
      throw new SeedError('admin_token_required', 'A key sees its own team only; other teams and orgs need the admin token.', {
        param: foreignTeam ? 'team' : 'org',
      });
    }
    return { teamId: caller.teamId };
  }
  return {
    ...(team === undefined ? {} : { teamId: (await options.tenants.findTeam({ reference: team })).id }),
    ...(org === undefined ? {} : { orgId: (await options.tenants.findOrg({ reference: org })).id }),
  };
}

export function registerSelfServiceRoutes({ app, options }: { app: FastifyInstance; options: AdminApiOptions }): void {
  const now = options.now ?? Date.now;
  const principalOf = (headers: Parameters<typeof resolvePrincipal>[0]['headers']) =>
    resolvePrincipal({ headers, adminToken: options.adminToken, authenticator: options.authenticator });

  app.get('/v1/seed/keys', async (request) => {
    const principal = await principalOf(request.headers);
    const { team } = parseInput(keysQuerySchema, request.query, { text: true });
    const scope = await scopeOf({ principal, team, org: undefined, options });
    return { object: 'list', data: (await options.tenants.listKeys(scope)).map(withIsoTimes) };
  });

  app.get('/v1/seed/usage', async (request) => {
    const principal = await principalOf(request.headers);
    const query = parseInput(usageQuerySchema, request.query, { text: true });
    const scope = await scopeOf({ principal, team: query.team, org: query.org, options });
    const groupBy = parseGroupBy({ text: query.group_by, param: 'group_by' });
    const window = usageWindow({ since: query.since, until: query.until, now: now() });
    const rows = await options.store.usage({ groupBy, ...window, ...scope, ...(query.key === undefined ? {} : { keyId: query.key }) });
    return {
      object: 'list',
      groupBy,
      since: new Date(window.since).toISOString(),
      until: new Date(window.until).toISOString(),
      data: rows.map(usageRowView),
    };
  });

  app.get('/v1/seed/calls', async (request) => {
    const principal = await principalOf(request.headers);
    const query = parseInput(callsQuerySchema, request.query, { text: true });
    const scope = await scopeOf({ principal, team: query.team, org: undefined, options });
    const window = query.since === undefined && query.until === undefined ? {} : usageWindow({ since: query.since, until: query.until, now: now() });
    const page = await options.store.listCalls({
      filters: {
        ...window,
        ...scope,
        ...(query.key === undefined ? {} : { keyId: query.key }),
        ...(query.route === undefined ? {} : { route: query.route }),
        ...(query.status === undefined ? {} : { status: query.status }),
        ...(query.client_request_id === undefined ? {} : { clientRequestId: query.client_request_id }),
      },
      ...(query.limit === undefined ? {} : { limit: query.limit }),
      ...(query.cursor === undefined ? {} : { cursor: query.cursor }),
    });
    return { object: 'list', data: page.calls.map(withIsoTimes), nextCursor: page.nextCursor };
  });

  app.get('/v1/seed/calls/:id', async (request) => {
    const principal = await principalOf(request.headers);
    const { id } = parseInput(z.object({ id: z.string().min(1).max(200) }), request.params, { text: true });
    const call = await options.store.getCall(id);
    // Another team's call is "not found", so ids cannot be probed for existence.
    if (!call || (principal.kind === 'team' && call.teamId !== principal.caller.teamId)) {
      throw new SeedError('not_found', `No call with id "${id}".`);
    }
    return withIsoTimes(call);
  });
}
