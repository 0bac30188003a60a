/**
 * Authentication of gateway requests by virtual key. The secret is read from
 * `Authorization: Bearer …`, Azure's `api-key` or Anthropic's `x-api-key`, hashed, and looked
 * up in the key cache; the request path touches the store only for a key it has never seen.
 */
import { SeedError } from '../errors.ts';
import { ANONYMOUS_CALLER, type Authenticate, type Caller } from '../gateway/hooks.ts';
import { createKeyCache, type CacheResult, type KeyCacheOptions } from './key-cache.ts';
import { hashKeySecret, looksLikeKeySecret } from './secrets.ts';
import type { TenantCaller } from './types.ts';

export type AuthMode = 'open' | 'keys';
export type RequestHeaders = Readonly<Record<string, string | string[] | undefined>>;

export interface AuthenticatorOptions extends KeyCacheOptions {
  /** `open`: every request is anonymous (loopback only); `keys`: a valid virtual key is required. */
  mode: AuthMode;
  /** The address the gateway binds; `open` mode refuses anything but loopback. */
  host: string;
}

export interface Authenticator {
  /** The gateway's `Authenticate` hook: anonymous in `open` mode, else the key's caller. */
  authenticate: Authenticate;
  /** The caller of the key in `headers`, whatever the mode (self-service endpoints need a key). */
  /** The key's caller; without a promise when the key is cached. Every refusal is a rejected promise. */
  authenticateKey(headers: RequestHeaders): TenantCaller | Promise<TenantCaller>;
  /** Picks up key, team and org changes now rather than at the next poll. */
  refresh(): Promise<void>;
  close(): Promise<void>;
}

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|::1|::ffff:127(\.\d{1,3}){3})$/i;

export function isLoopbackHost(host: string): boolean {
  return LOOPBACK.test(host.replace(/^\[|\]$/g, ''));
}

function firstValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** The presented secret, or undefined when no credential header is present at all. */
export function presentedSecret(headers: RequestHeaders): string | undefined {
  const authorization = firstValue(headers['authorization'])?.trim();
  if (authorization) {
    const match = /^Bearer\s+(\S+)$/i.exec(authorization);
    if (!match) throw new SeedError('invalid_api_key', 'The Authorization header must be "Bearer <key>".');
    return match[1];
  }
  return firstValue(headers['api-key'])?.trim() || firstValue(headers['x-api-key'])?.trim() || undefined;
}

/**
 * @example
 * const authenticator = createAuthenticator({ store, mode: config.auth.mode, host: config.server.host });
 * await startSeed({ config, authenticate: authenticator.authenticate, … });
 * // on shutdown: await authenticator.close();
 */
export function createAuthenticator(options: AuthenticatorOptions): Authenticator {
  if (options.mode === 'open' && !isLoopbackHost(options.host)) {
    throw new SeedError(
      'invalid_request',
      `auth.mode "open" lets anyone call every route; it is only allowed on a loopback address, not "${options.host}". Set auth.mode: keys.`,
    );
  }
  const now = options.now ?? Date.now;
  const cache = createKeyCache(options);

  // Not an async function: a cached key (nearly every call) is answered without a promise or a
  // suspended frame. Refusals stay rejected promises, as callers of an async check expect.
  function authenticateKey(headers: RequestHeaders): TenantCaller | Promise<TenantCaller> {
    try {
      const secret = presentedSecret(headers);
      if (secret === undefined) {
        throw new SeedError('missing_api_key', 'No API key was sent. Send "Authorization: Bearer sk-seed-…".');
      }
      if (!looksLikeKeySecret(secret)) throw invalidKey();
      const found = cache.lookup(hashKeySecret(secret));
      return found instanceof Promise ? found.then(callerOf) : callerOf(found);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  function callerOf(found: CacheResult): TenantCaller {
    if (found === 'unknown' || found === 'throttled') throw invalidKey();
    if (found.revokedAt !== null) throw new SeedError('key_revoked', 'The API key has been revoked.');
    if (found.expiresAt !== null && found.expiresAt <= now()) throw new SeedError('key_expired', 'The API key has expired.');
    return found.caller;
  }

  const authenticate: Authenticate = (headers): Caller | Promise<Caller> =>
    options.mode === 'open' ? ANONYMOUS_CALLER : authenticateKey(headers);

  return { authenticate, authenticateKey, refresh: () => cache.refresh(), close: () => cache.close() };
}

/** The message never repeats the presented value: it may be a real secret sent to the wrong place. */
function invalidKey(): SeedError {
  return new SeedError('invalid_api_key', 'The API key is not valid.');
}
