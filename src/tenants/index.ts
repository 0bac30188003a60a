/** Tenants (org → team → key), virtual key authentication, and the inputs of their administration. */
export { createTenantService, type TenantService, type TenantServiceOptions } from './service.ts';
export {
  createAuthenticator,
  isLoopbackHost,
  presentedSecret,
  type AuthMode,
  type Authenticator,
  type AuthenticatorOptions,
  type RequestHeaders,
} from './authenticator.ts';
export { createKeyCache, type KeyCache, type KeyCacheOptions } from './key-cache.ts';
export {
  createKeyInputSchema,
  createOrgInputSchema,
  createTeamInputSchema,
  updateKeyInputSchema,
  updateLimitsInputSchema,
  type CreateKeyInput,
  type CreateOrgInput,
  type CreateTeamInput,
  type UpdateKeyInput,
} from './schemas.ts';
export { hashKeySecret, looksLikeKeySecret, secretsEqual, KEY_SECRET_PREFIX } from './secrets.ts';
export { parseDurationMs, parseInstant } from './time.ts';
export { isTenantCaller, type ApiKey, type AuditEntry, type AuditLog, type CreatedKey, type JsonValue, type LimitsConfig, type Org, type Team, type TenantCaller } from './types.ts';
