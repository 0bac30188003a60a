/**
 * Tenants as the rest of Seed sees them: org → team → key. Timestamps are epoch ms. A key's
 * secret never appears here: it exists only in the return value of `createKey`.
 */
import type { Caller } from '../gateway/hooks.ts';
import type { LimitScope, LimitsConfig } from '../limits/index.ts';

export type { LimitsConfig } from '../limits/index.ts';

export interface Org {
  id: string;
  name: string;
  limits: LimitsConfig;
  createdAt: number;
  updatedAt: number;
}

export interface Team {
  id: string;
  orgId: string;
  name: string;
  limits: LimitsConfig;
  createdAt: number;
  updatedAt: number;
}

/** A virtual key as listed: everything but the secret and its hash. */
export interface ApiKey {
  id: string;
  teamId: string;
  orgId: string;
  name: string;
  /** The non-secret start of the secret, e.g. `sk-seed-AbCd`, to tell keys apart. */
  prefix: string;
  region: string | null;
  /** Routes the key may use; null = all. */
  allowedRoutes: string[] | null;
  limits: LimitsConfig;
  storePayloads: boolean;
  expiresAt: number | null;
  revokedAt: number | null;
  createdAt: number;
  updatedAt: number;
}

/** What `createKey` returns: the key and its secret, which is not stored and cannot be shown again. */
export interface CreatedKey {
  key: ApiKey;
  secret: string;
}

/**
 * The caller established from a virtual key: a `Caller` plus the limits of its key, team and org
 * in the limiter's own shape, so admission can pass them straight on:
 * `limiter.admit({ scopes: caller.limits, … })`. Only scopes that set at least one limit are listed.
 */
export interface TenantCaller extends Caller {
  keyId: string;
  teamId: string;
  orgId: string;
  limits: readonly LimitScope[];
}

/** Whether a `Caller` came from a virtual key (and so carries limits). */
export function isTenantCaller(caller: Caller): caller is TenantCaller {
  return caller.keyId !== null && Array.isArray((caller as Partial<TenantCaller>).limits);
}

/** JSON that survives a round trip through the database unchanged (the audit log's `JsonValue`). */
export type JsonValue = string | number | boolean | null | readonly JsonValue[] | { readonly [key: string]: JsonValue };

/** One entry of the audit log, as `src/audit/` appends it. */
export interface AuditEntry {
  /** Who acted: `admin-token`, `cli:<user>`. */
  actor: string;
  /** What happened: `key.created`, `key.updated`, `key.revoked`, `team.created`, … */
  action: string;
  /** The id of what it happened to. */
  subject: string;
  /** Plain JSON (the service serializes what it records), so the hash-chained log can canonicalize it. */
  details: { readonly [key: string]: JsonValue };
}

/** Where tenant administration is recorded; the real one is the hash-chained log of `src/audit/`. */
export interface AuditLog {
  append(entry: AuditEntry): Promise<unknown>;
}
