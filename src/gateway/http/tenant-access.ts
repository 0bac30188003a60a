/**
 * Who is calling Seed's own API (`/v1/seed/…`): the operator with the admin token, or a key
 * holder, who sees only their own team. Helpers for validated input and JSON views sit here too.
 */
import type { z } from 'zod';
import { SeedError } from '../../errors.ts';
import { presentedSecret, secretsEqual, type Authenticator, type RequestHeaders, type TenantCaller } from '../../tenants/index.ts';
import { validationError } from './errors.ts';

export type Principal = { kind: 'admin' } | { kind: 'team'; caller: TenantCaller };

function isAdminToken({ headers, adminToken }: { headers: RequestHeaders; adminToken: string | undefined }): boolean {
  if (adminToken === undefined) return false;
  let given: string | undefined;
  try {
    given = presentedSecret(headers);
  } catch {
    return false;
  }
  return given !== undefined && secretsEqual({ given, expected: adminToken });
}

/** Throws admin_token_required unless the request carries the admin token. */
export function requireAdmin({ headers, adminToken }: { headers: RequestHeaders; adminToken: string | undefined }): void {
  if (adminToken === undefined) {
    throw new SeedError('admin_token_required', 'The admin API is disabled on this gateway: set auth.adminToken in seed.yaml.');
  }
  if (!isAdminToken({ headers, adminToken })) {
    throw new SeedError('admin_token_required', 'This endpoint needs the admin token: send "Authorization: Bearer <admin token>".');
  }
}

/** The admin, or the key holder (whose key must be valid, in any auth mode). */
export async function resolvePrincipal({
  headers,
  adminToken,
  authenticator,
}: {
  headers: RequestHeaders;
  adminToken: string | undefined;
  authenticator: Pick<Authenticator, 'authenticateKey'>;
}): Promise<Principal> {
  if (isAdminToken({ headers, adminToken })) return { kind: 'admin' };
  return { kind: 'team', caller: await authenticator.authenticateKey(headers) };
}

/**
 * Where a NUL character is in a value's strings (keys included), as a dotted path; undefined when
 * there is none. Names, ids and filters are stored and looked up as text, and PostgreSQL refuses
 * NUL in text ("invalid byte sequence"): such a value would be a 500 on one store and work on the
 * other, so it is refused at the edge on both (test/fuzz-admin-api.test.ts found it).
 */
function nulPath(value: unknown, path: string): string | undefined {
  if (typeof value === 'string') return value.includes('\u0000') ? path || 'body' : undefined;
  if (value === null || typeof value !== 'object') return undefined;
  for (const [key, child] of Object.entries(value)) {
    const childPath = path === '' ? key : `${path}.${key}`;
    if (key.includes('\u0000')) return childPath;
    const found = nulPath(child, childPath);
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * `schema.parse`, failing as a 400 invalid_request that names the parameter. `text`: the value is
 * a query string or route parameters, text the schema coerces (see `validationError`).
 */
export function parseInput<Schema extends z.ZodType>(schema: Schema, value: unknown, options: { text?: boolean } = {}): z.infer<Schema> {
  const nul = nulPath(value, '');
  if (nul !== undefined) {
    throw new SeedError('invalid_request', `Invalid value for '${nul}': text must not contain NUL (\\u0000) characters.`, { param: nul });
  }
  const parsed = schema.safeParse(value ?? {});
  if (parsed.success) return parsed.data;
  const [issue] = parsed.error.issues;
  // A strict object's unknown field has an empty path; name the field itself.
  if (issue?.code === 'unrecognized_keys') {
    const [field] = issue.keys;
    throw new SeedError('invalid_request', `Unrecognized parameter: '${field}'.`, { param: field ?? null });
  }
  throw validationError(parsed.error, value ?? {}, options);
}

/** A tenant value for JSON: epoch-ms `…At` fields as ISO strings, which people and tools can read. */
export function withIsoTimes<Value extends object>(value: Value): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(value).map(([name, field]) => [name, name.endsWith('At') && typeof field === 'number' ? new Date(field).toISOString() : field]),
  );
}
