/** Orgs and teams: create, list, find by id or name, set limits. */
import { SeedError } from '../errors.ts';
import type { LimitsConfig } from '../limits/index.ts';
import { audited, isUniqueViolation, nextUpdatedAt, type TenantContext } from './context.ts';
import { encodeLimits, toOrg, toTeam } from './rows.ts';
import type { CreateOrgInput, CreateTeamInput } from './schemas.ts';
import { newId } from './secrets.ts';
import type { Org, Team } from './types.ts';

const TEAM_COLUMNS = ['id', 'org_id', 'name', 'limits', 'created_at', 'updated_at'] as const;
const ORG_COLUMNS = ['id', 'name', 'limits', 'created_at', 'updated_at'] as const;

export async function createOrg({ context, input, actor }: { context: TenantContext; input: CreateOrgInput; actor: string }): Promise<Org> {
  const now = context.now();
  const row = { id: newId({ kind: 'org', random: context.random }), name: input.name, limits: encodeLimits(input.limits ?? {}), created_at: now, updated_at: now };
  try {
    await context.db.insertInto('orgs').values(row).execute();
  } catch (error) {
    if (isUniqueViolation(error)) throw new SeedError('conflict', `An org named "${input.name}" already exists.`, { param: 'name' });
    throw error;
  }
  const org = toOrg(row);
  await audited({ context, entry: { actor, action: 'org.created', subject: org.id, details: { name: org.name, limits: org.limits } } });
  return org;
}

export async function listOrgs({ context }: { context: TenantContext }): Promise<Org[]> {
  const rows = await context.db.selectFrom('orgs').select(ORG_COLUMNS).orderBy('created_at').orderBy('id').execute();
  return rows.map(toOrg);
}

/** The org with this id, or else this name. */
export async function findOrg({ context, reference }: { context: TenantContext; reference: string }): Promise<Org> {
  const row = await context.db
    .selectFrom('orgs')
    .select(ORG_COLUMNS)
    .where((where) => where.or([where('id', '=', reference), where('name', '=', reference)]))
    .orderBy((eb) => eb.case().when('id', '=', reference).then(0).else(1).end())
    .executeTakeFirst();
  if (!row) throw new SeedError('not_found', `No org with id or name "${reference}".`, { param: 'org' });
  return toOrg(row);
}

export async function createTeam({ context, input, actor }: { context: TenantContext; input: CreateTeamInput; actor: string }): Promise<Team> {
  const org = await findOrg({ context, reference: input.org });
  const now = context.now();
  const row = {
    id: newId({ kind: 'team', random: context.random }),
    org_id: org.id,
    name: input.name,
    limits: encodeLimits(input.limits ?? {}),
    created_at: now,
    updated_at: now,
  };
  try {
    await context.db.insertInto('teams').values(row).execute();
  } catch (error) {
    if (isUniqueViolation(error)) throw new SeedError('conflict', `Org "${org.name}" already has a team named "${input.name}".`, { param: 'name' });
    throw error;
  }
  const team = toTeam(row);
  await audited({ context, entry: { actor, action: 'team.created', subject: team.id, details: { orgId: org.id, name: team.name, limits: team.limits } } });
  return team;
}

export async function listTeams({ context, orgId }: { context: TenantContext; orgId?: string }): Promise<Team[]> {
  let query = context.db.selectFrom('teams').select(TEAM_COLUMNS);
  if (orgId !== undefined) query = query.where('org_id', '=', orgId);
  const rows = await query.orderBy('created_at').orderBy('id').execute();
  return rows.map(toTeam);
}

/**
 * The team with this id; else `org/team` by names; else a team name that is unique across orgs
 * (an ambiguous name is a conflict that names the way out).
 */
export async function findTeam({ context, reference }: { context: TenantContext; reference: string }): Promise<Team> {
  const byId = await context.db.selectFrom('teams').select(TEAM_COLUMNS).where('id', '=', reference).executeTakeFirst();
  if (byId) return toTeam(byId);
  const [orgName, teamName] = reference.includes('/') ? reference.split('/', 2) : [undefined, reference];
  let query = context.db
    .selectFrom('teams')
    .innerJoin('orgs', 'orgs.id', 'teams.org_id')
    .select(TEAM_COLUMNS.map((column) => `teams.${column}` as const))
    .where('teams.name', '=', teamName ?? '');
  if (orgName !== undefined) query = query.where((where) => where.or([where('orgs.name', '=', orgName), where('orgs.id', '=', orgName)]));
  const rows = await query.limit(2).execute();
  const [first, second] = rows;
  if (!first) throw new SeedError('not_found', `No team with id or name "${reference}".`, { param: 'team' });
  if (second) throw new SeedError('conflict', `Several orgs have a team named "${reference}"; use ORG/TEAM or the team id.`, { param: 'team' });
  return toTeam(first);
}

/** Replaces an org's or team's limits (null clears them) and records the change. */
export async function setLimits({
  context,
  table,
  id,
  limits,
  actor,
}: {
  context: TenantContext;
  table: 'orgs' | 'teams';
  id: string;
  limits: LimitsConfig | null;
  actor: string;
}): Promise<void> {
  const result = await context.db
    .updateTable(table)
    .set({ limits: encodeLimits(limits ?? {}), updated_at: nextUpdatedAt(context.now()) })
    .where('id', '=', id)
    .executeTakeFirst();
  if (Number(result.numUpdatedRows) === 0) throw new SeedError('not_found', `No ${table === 'orgs' ? 'org' : 'team'} with id "${id}".`);
  const action = table === 'orgs' ? 'org.updated' : 'team.updated';
  await audited({ context, entry: { actor, action, subject: id, details: { limits: limits ?? {} } } });
}
