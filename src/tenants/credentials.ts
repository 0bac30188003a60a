/**
 * The queries behind the key cache: a key with its team's and org's limits, looked up by hash
 * (a cache miss) or by id (a refresh), and the tenant rows changed since a point in time.
 */
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

/** Rows with `updated_at > after`; served by the `*_updated_at` indexes, so an idle poll is cheap. */
export async function changesAfter({ db, after }: { db: TenantDb; after: number }): Promise<TenantChanges> {
  const [keys, teams, orgs] = await Promise.all([
    db.selectFrom('api_keys').select(['id', 'key_hash', 'updated_at']).where('updated_at', '>', after).execute(),
    db.selectFrom('teams').select(['id', 'updated_at']).where('updated_at', '>', after).execute(),
    db.selectFrom('orgs').select(['id', 'updated_at']).where('updated_at', '>', after).execute(),
  ]);
  return {
    keys: keys.map((row) => ({ id: row.id, hash: row.key_hash, updatedAt: Number(row.updated_at) })),
    teams: teams.map((row) => ({ id: row.id, updatedAt: Number(row.updated_at) })),
    orgs: orgs.map((row) => ({ id: row.id, updatedAt: Number(row.updated_at) })),
  };
}

/** The newest `updated_at` of any tenant row, where polling starts. */
export async function latestChange({ db }: { db: TenantDb }): Promise<number> {
  const [keys, teams, orgs] = await Promise.all([
    db.selectFrom('api_keys').select((select) => select.fn.max('updated_at').as('latest')).executeTakeFirst(),
    db.selectFrom('teams').select((select) => select.fn.max('updated_at').as('latest')).executeTakeFirst(),
    db.selectFrom('orgs').select((select) => select.fn.max('updated_at').as('latest')).executeTakeFirst(),
  ]);
  return Math.max(0, ...[keys, teams, orgs].map((row) => Number(row?.latest ?? 0)));
}
