/** Virtual keys: create (the secret is returned once), list, change, revoke. */
import { SeedError } from '../errors.ts';
import { audited, booleanValue, nextUpdatedAt, type TenantContext } from './context.ts';
import { findTeam } from './orgs-teams.ts';
import { encodeLimits, encodeRoutes, toApiKey } from './rows.ts';
import type { CreateKeyInput, UpdateKeyInput } from './schemas.ts';
import { displayPrefix, generateKeySecret, hashKeySecret, newId } from './secrets.ts';
import { parseInstant } from './time.ts';
import type { ApiKey, CreatedKey } from './types.ts';

/** Every column a listing shows; `key_hash` is deliberately not among them. */
const KEY_COLUMNS = [
  'api_keys.id',
  'api_keys.team_id',
  'teams.org_id',
  'api_keys.name',
  'api_keys.key_prefix',
  'api_keys.region',
  'api_keys.allowed_routes',
  'api_keys.limits',
  'api_keys.store_payloads',
  'api_keys.expires_at',
  'api_keys.revoked_at',
  'api_keys.created_at',
  'api_keys.updated_at',
] as const;

function expiryOf({ text, now }: { text: string | null | undefined; now: number }): number | null {
  if (text === null || text === undefined) return null;
  const expiresAt = parseInstant({ text, now, direction: 'future', param: 'expiresAt' });
  if (expiresAt <= now) throw new SeedError('invalid_request', "'expiresAt' must be in the future.", { param: 'expiresAt' });
  return expiresAt;
}

/** What the audit log keeps of a key: everything but secrets (the display prefix is not one). */
function auditView(key: ApiKey): Record<string, unknown> {
  const { id: _id, createdAt: _createdAt, updatedAt: _updatedAt, ...rest } = key;
  return rest;
}

export async function createKey({ context, input, actor }: { context: TenantContext; input: CreateKeyInput; actor: string }): Promise<CreatedKey> {
  const team = await findTeam({ context, reference: input.team });
  const now = context.now();
  const secret = generateKeySecret(context.random);
  const row = {
    id: newId({ kind: 'key', random: context.random }),
    team_id: team.id,
    name: input.name ?? 'default',
    key_hash: hashKeySecret(secret),
    key_prefix: displayPrefix(secret),
    region: input.region ?? null,
    allowed_routes: encodeRoutes(input.allowedRoutes ?? null),
    limits: encodeLimits(input.limits ?? {}),
    budget: null,
    store_payloads: booleanValue({ dialect: context.dialect, value: input.storePayloads ?? false }),
    expires_at: expiryOf({ text: input.expiresAt, now }),
    revoked_at: null,
    created_at: now,
    updated_at: now,
  };
  await context.db.insertInto('api_keys').values(row).execute();
  const key = toApiKey({ ...row, org_id: team.orgId });
  await audited({ context, entry: { actor, action: 'key.created', subject: key.id, details: auditView(key) } });
  return { key, secret };
}

/** Keys of one team, one org, or all, oldest first. Never the secret or its hash. */
export async function listKeys({ context, teamId, orgId }: { context: TenantContext; teamId?: string; orgId?: string }): Promise<ApiKey[]> {
  let query = context.db.selectFrom('api_keys').innerJoin('teams', 'teams.id', 'api_keys.team_id').select(KEY_COLUMNS);
  if (teamId !== undefined) query = query.where('api_keys.team_id', '=', teamId);
  if (orgId !== undefined) query = query.where('teams.org_id', '=', orgId);
  const rows = await query.orderBy('api_keys.created_at').orderBy('api_keys.id').execute();
  return rows.map(toApiKey);
}

/** The key with this id; with `teamId`, only if it belongs to that team (else not found, saying nothing more). */
export async function getKey({ context, id, teamId }: { context: TenantContext; id: string; teamId?: string }): Promise<ApiKey> {
  let query = context.db.selectFrom('api_keys').innerJoin('teams', 'teams.id', 'api_keys.team_id').select(KEY_COLUMNS).where('api_keys.id', '=', id);
  if (teamId !== undefined) query = query.where('api_keys.team_id', '=', teamId);
  const row = await query.executeTakeFirst();
  if (!row) throw new SeedError('not_found', `No key with id "${id}".`);
  return toApiKey(row);
}

export async function updateKey({
  context,
  id,
  changes,
  actor,
}: {
  context: TenantContext;
  id: string;
  changes: UpdateKeyInput;
  actor: string;
}): Promise<ApiKey> {
  const before = await getKey({ context, id });
  if (before.revokedAt !== null) throw new SeedError('conflict', `Key ${id} is revoked; create a new key instead.`);
  const now = context.now();
  const result = await context.db
    .updateTable('api_keys')
    .set({
      ...(changes.name !== undefined ? { name: changes.name } : {}),
      ...(changes.region !== undefined ? { region: changes.region } : {}),
      ...(changes.allowedRoutes !== undefined ? { allowed_routes: encodeRoutes(changes.allowedRoutes) } : {}),
      ...(changes.limits !== undefined ? { limits: encodeLimits(changes.limits ?? {}) } : {}),
      ...(changes.storePayloads !== undefined ? { store_payloads: booleanValue({ dialect: context.dialect, value: changes.storePayloads }) } : {}),
      ...(changes.expiresAt !== undefined ? { expires_at: expiryOf({ text: changes.expiresAt, now }) } : {}),
      updated_at: nextUpdatedAt(now),
    })
    .where('id', '=', id)
    // A revoke that landed since the read above wins: revoked keys stay as they were.
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  if (Number(result.numUpdatedRows) === 0) throw new SeedError('conflict', `Key ${id} is revoked; create a new key instead.`);
  const after = await getKey({ context, id });
  await audited({ context, entry: { actor, action: 'key.updated', subject: id, details: { changes, before: auditView(before) } } });
  return after;
}

/** Revokes a key for good. Revoking a revoked key changes nothing and records nothing. */
export async function revokeKey({ context, id, actor }: { context: TenantContext; id: string; actor: string }): Promise<ApiKey> {
  const now = context.now();
  const result = await context.db
    .updateTable('api_keys')
    .set({ revoked_at: now, updated_at: nextUpdatedAt(now) })
    .where('id', '=', id)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  const key = await getKey({ context, id });
  if (Number(result.numUpdatedRows) > 0) {
    await audited({ context, entry: { actor, action: 'key.revoked', subject: id, details: { teamId: key.teamId, orgId: key.orgId, prefix: key.prefix } } });
  }
  return key;
}
