/**
 * The queries behind the key cache: a key with its team's and org's limits, looked up by hash
 * (a cache miss) or by id (a refresh), and the tenant rows changed since a point in time.
 */
import { sql } from 'kysely';
import type { LimitScope } from '../limits/index.ts';
import { decodeLimits, decodeRoutes } from './rows.ts';
import type { TenantDb } from './tables.ts';
import type { TenantCaller } from './types.ts';

/** One key as the authenticator needs it: the caller it yields, and what can make it unusable. */
export interface Credential {
  hash: string;
  caller: TenantCaller;
  expiresAt: number | null;
  revokedAt: number | null;
  /** `updated_at` of the key, its team and its org when loaded: a different value means reload. */
  versions: { key: number; team: number; org: number };
}

function credentialQuery(db: TenantDb) {
  return db
    .selectFrom('api_keys')
    .innerJoin('teams', 'teams.id', 'api_keys.team_id')
    .innerJoin('orgs', 'orgs.id', 'teams.org_id')
    .select([
      'api_keys.id as key_id',
      'api_keys.key_hash',
      'api_keys.team_id',
      'teams.org_id',
      'api_keys.region',
      'api_keys.allowed_routes',
      'api_keys.store_payloads',
      'api_keys.limits as key_limits',
      'teams.limits as team_limits',
      'orgs.limits as org_limits',
      'api_keys.expires_at',
      'api_keys.revoked_at',
      'api_keys.updated_at as key_updated_at',
      'teams.updated_at as team_updated_at',
      'orgs.updated_at as org_updated_at',
    ]);
}

type CredentialRow = Awaited<ReturnType<ReturnType<typeof credentialQuery>['execute']>>[number];

function toCredential(row: CredentialRow): Credential {
  const scopes: LimitScope[] = [
    { owner: 'key', id: row.key_id, limits: decodeLimits(row.key_limits) },
    { owner: 'team', id: row.team_id, limits: decodeLimits(row.team_limits) },
    { owner: 'org', id: row.org_id, limits: decodeLimits(row.org_limits) },
  ];
  const routes = decodeRoutes(row.allowed_routes);
  const caller: TenantCaller = Object.freeze({
    keyId: row.key_id,
    teamId: row.team_id,
    orgId: row.org_id,
    region: row.region,
    allowedRoutes: routes === null ? null : new Set(routes),
    storePayloads: Boolean(row.store_payloads),
    limits: Object.freeze(scopes.filter((scope) => Object.keys(scope.limits).length > 0)),
  });
  return {
    hash: row.key_hash,
    caller,
    expiresAt: row.expires_at === null ? null : Number(row.expires_at),
    revokedAt: row.revoked_at === null ? null : Number(row.revoked_at),
    versions: { key: Number(row.key_updated_at), team: Number(row.team_updated_at), org: Number(row.org_updated_at) },
  };
}

export async function credentialByHash({ db, hash }: { db: TenantDb; hash: string }): Promise<Credential | null> {
  const row = await credentialQuery(db).where('api_keys.key_hash', '=', hash).executeTakeFirst();
  return row ? toCredential(row) : null;
}

export async function credentialsByKeyId({ db, keyIds }: { db: TenantDb; keyIds: readonly string[] }): Promise<Credential[]> {
  if (keyIds.length === 0) return [];
  const rows = await credentialQuery(db).where('api_keys.id', 'in', [...keyIds]).execute();
  return rows.map(toCredential);
}

export interface TenantChanges {
  keys: Array<{ id: string; hash: string; updatedAt: number }>;
  teams: Array<{ id: string; updatedAt: number }>;
  orgs: Array<{ id: string; updatedAt: number }>;
}

/**
 * Reads the tenant rows with `updated_at > after`: what every replica's key cache asks its store
 * four times a second, busy or idle. One statement (the three tables' changes as one `union
 * all`, each part served by its `*_updated_at` index), built and compiled once per database: as
 * three queries built on every poll, an idle gateway allocated ~35 KiB per poll, most of it in
 * Kysely's query builder and compiler, and PostgreSQL saw three round trips per poll.
 *
 * @example
 * const changesAfter = tenantChangesReader(db);
 * const { keys, teams, orgs } = await changesAfter(watermark - overlapMs);
 */
export function tenantChangesReader(db: TenantDb): (after: number) => Promise<TenantChanges> {
  // `after` is the one parameter of each part; compiled with a placeholder value, then bound per poll.
  const compiled = db
    .selectFrom('teams')
    .select([sql.lit(TEAM).as('kind'), 'id', sql<string | null>`null`.as('key_hash'), 'updated_at'])
    .where('updated_at', '>', 0)
    .unionAll(db.selectFrom('orgs').select([sql.lit(ORG).as('kind'), 'id', sql<string | null>`null`.as('key_hash'), 'updated_at']).where('updated_at', '>', 0))
    .unionAll(db.selectFrom('api_keys').select([sql.lit(KEY).as('kind'), 'id', 'key_hash', 'updated_at']).where('updated_at', '>', 0))
    .compile();
  if (compiled.parameters.length !== 3) throw new Error(`the tenant changes query has ${compiled.parameters.length} parameters, expected 3`);
  return async (after) => {
    const { rows } = await db.executeQuery<ChangedRow>({ ...compiled, parameters: [after, after, after] });
    const changes: TenantChanges = { keys: [], teams: [], orgs: [] };
    for (const row of rows) {
      const updatedAt = Number(row.updated_at);
      if (row.kind === KEY) changes.keys.push({ id: row.id, hash: row.key_hash as string, updatedAt });
      else if (row.kind === TEAM) changes.teams.push({ id: row.id, updatedAt });
      else changes.orgs.push({ id: row.id, updatedAt });
    }
    return changes;
  };
}

/** One row of the changes query. */
interface ChangedRow {
  kind: string;
  id: string;
  key_hash: string | null;
  updated_at: number | string;
}

/** What each row of the changes query is (its `kind` column): a literal in the SQL, not a parameter. */
const KEY = 'key';
const TEAM = 'team';
const ORG = 'org';

/** The newest `updated_at` of any tenant row, where polling starts. */
export async function latestChange({ db }: { db: TenantDb }): Promise<number> {
  const [keys, teams, orgs] = await Promise.all([
    db.selectFrom('api_keys').select((select) => select.fn.max('updated_at').as('latest')).executeTakeFirst(),
    db.selectFrom('teams').select((select) => select.fn.max('updated_at').as('latest')).executeTakeFirst(),
    db.selectFrom('orgs').select((select) => select.fn.max('updated_at').as('latest')).executeTakeFirst(),
  ]);
  return Math.max(0, ...[keys, teams, orgs].map((row) => Number(row?.latest ?? 0)));
}
