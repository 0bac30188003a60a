/**
 * Between database rows and tenant values. JSON columns are text on both dialects; booleans are
 * 0/1 on SQLite. Stored limits are parsed with the limiter's own schema, so what the limiter
 * receives is exactly what the admin API validated.
 */
import { z } from 'zod';
import { SeedError } from '../errors.ts';
import { limitsSchema } from '../limits/index.ts';
import type { ApiKey, LimitsConfig, Org, Team } from './types.ts';

const routeListSchema = z.array(z.string());

function parseJson<T>({ text, schema, what }: { text: string; schema: z.ZodType<T>; what: string }): T {
  try {
    return schema.parse(JSON.parse(text));
  } catch (error) {
    throw new SeedError('internal_error', `stored ${what} is not valid; fix the row or set it again`, { cause: error });
  }
}

export function decodeLimits(text: string | null): LimitsConfig {
  return text === null ? {} : parseJson({ text, schema: limitsSchema, what: 'limits' });
}

/** Null when no limit is set, so an empty object and "no limits" are stored alike. */
export function encodeLimits(limits: LimitsConfig): string | null {
  return Object.values(limits).some((value) => value !== undefined) ? JSON.stringify(limits) : null;
}

export function decodeRoutes(text: string | null): string[] | null {
  return text === null ? null : parseJson({ text, schema: routeListSchema, what: 'allowed routes' });
}

export function encodeRoutes(routes: readonly string[] | null): string | null {
  return routes === null ? null : JSON.stringify([...new Set(routes)]);
}

export interface OrgRow {
  id: string;
  name: string;
  limits: string | null;
  created_at: number;
  updated_at: number;
}

export interface TeamRow extends OrgRow {
  org_id: string;
}

export interface KeyRow {
  id: string;
  team_id: string;
  org_id: string;
  name: string;
  key_prefix: string;
  region: string | null;
  allowed_routes: string | null;
  limits: string | null;
  store_payloads: boolean | number;
  expires_at: number | null;
  revoked_at: number | null;
  created_at: number;
  updated_at: number;
}

// PostgreSQL returns bigint columns as numbers (see store/connect.ts); Number() keeps SQLite alike.
const time = (value: number | null): number | null => (value === null ? null : Number(value));

export function toOrg(row: OrgRow): Org {
  return { id: row.id, name: row.name, limits: decodeLimits(row.limits), createdAt: Number(row.created_at), updatedAt: Number(row.updated_at) };
}

export function toTeam(row: TeamRow): Team {
  return { ...toOrg(row), orgId: row.org_id };
}

export function toApiKey(row: KeyRow): ApiKey {
  return {
    id: row.id,
    teamId: row.team_id,
    orgId: row.org_id,
    name: row.name,
    prefix: row.key_prefix,
    region: row.region,
    allowedRoutes: decodeRoutes(row.allowed_routes),
    limits: decodeLimits(row.limits),
    storePayloads: Boolean(row.store_payloads),
    expiresAt: time(row.expires_at),
    revokedAt: time(row.revoked_at),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}
