/**
 * Every failure Seed reports has a typed code, exactly one HTTP status and an OpenAI-format
 * body: `{"error":{"message","type","code","param"}}`. The table below is the only place a
 * status is chosen; the compiler forces one for every code, and `docs/errors.md` documents
 * each (a test checks that the two agree).
 */

export type ErrorCode =
  // the client's request
  | 'invalid_json'
  | 'invalid_request'
  | 'unsupported_media_type'
  | 'body_too_large'
  | 'not_found'
  | 'method_not_allowed'
  | 'model_not_found'
  // who is calling
  | 'missing_api_key'
  | 'invalid_api_key'
  | 'key_expired'
  | 'key_revoked'
  | 'auth_unavailable'
  | 'route_not_allowed'
  | 'admin_token_required'
  | 'purpose_not_allowed'
  | 'region_not_allowed'
  // admission
  | 'rate_limit_exceeded'
  | 'concurrency_limit_exceeded'
  | 'budget_exceeded'
  | 'limits_unavailable'
  | 'store_unavailable'
  // upstream
  | 'upstream_rate_limited'
  | 'upstream_error'
  | 'upstream_bad_request'
  | 'upstream_auth_failed'
  | 'upstream_invalid_response'
  | 'upstream_timeout'
  | 'upstream_connection_failed'
  | 'no_healthy_deployment'
  | 'deadline_exceeded'
  | 'client_closed_request'
  // Seed itself
  | 'shutting_down'
  | 'conflict'
  | 'unprocessable_entity'
  | 'internal_error';

/** OpenAI's `error.type` vocabulary, so SDKs map our errors onto their own classes. */
export type ErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'rate_limit_error'
  | 'insufficient_quota'
  | 'api_error'
  | 'upstream_error'
  | 'timeout_error';

interface ErrorSpec {
  readonly status: number;
  readonly type: ErrorType;
  /** Whether the same call may succeed if tried again on another deployment or later. */
  readonly retryable: boolean;
}

export const ERROR_SPECS: Readonly<Record<ErrorCode, ErrorSpec>> = Object.freeze({
  invalid_json: { status: 400, type: 'invalid_request_error', retryable: false },
  invalid_request: { status: 400, type: 'invalid_request_error', retryable: false },
  unsupported_media_type: { status: 415, type: 'invalid_request_error', retryable: false },
  body_too_large: { status: 413, type: 'invalid_request_error', retryable: false },
  not_found: { status: 404, type: 'not_found_error', retryable: false },
  method_not_allowed: { status: 405, type: 'invalid_request_error', retryable: false },
  model_not_found: { status: 404, type: 'not_found_error', retryable: false },
  missing_api_key: { status: 401, type: 'authentication_error', retryable: false },
  invalid_api_key: { status: 401, type: 'authentication_error', retryable: false },
  key_expired: { status: 401, type: 'authentication_error', retryable: false },
  key_revoked: { status: 401, type: 'authentication_error', retryable: false },
  auth_unavailable: { status: 503, type: 'api_error', retryable: true },
  route_not_allowed: { status: 403, type: 'permission_error', retryable: false },
  admin_token_required: { status: 401, type: 'authentication_error', retryable: false },
  purpose_not_allowed: { status: 403, type: 'permission_error', retryable: false },
  region_not_allowed: { status: 403, type: 'permission_error', retryable: false },
  rate_limit_exceeded: { status: 429, type: 'rate_limit_error', retryable: true },
  concurrency_limit_exceeded: { status: 429, type: 'rate_limit_error', retryable: true },
  budget_exceeded: { status: 429, type: 'insufficient_quota', retryable: false },
  limits_unavailable: { status: 503, type: 'api_error', retryable: true },
  store_unavailable: { status: 503, type: 'api_error', retryable: true },
  upstream_rate_limited: { status: 429, type: 'rate_limit_error', retryable: true },
  upstream_error: { status: 502, type: 'upstream_error', retryable: true },
  upstream_bad_request: { status: 400, type: 'invalid_request_error', retryable: false },
  upstream_auth_failed: { status: 502, type: 'upstream_error', retryable: true },
  upstream_invalid_response: { status: 502, type: 'upstream_error', retryable: true },
  upstream_timeout: { status: 504, type: 'timeout_error', retryable: true },
  upstream_connection_failed: { status: 502, type: 'upstream_error', retryable: true },
  no_healthy_deployment: { status: 503, type: 'api_error', retryable: true },
  deadline_exceeded: { status: 504, type: 'timeout_error', retryable: false },
  client_closed_request: { status: 499, type: 'invalid_request_error', retryable: false },
  shutting_down: { status: 503, type: 'api_error', retryable: true },
  conflict: { status: 409, type: 'invalid_request_error', retryable: false },
  unprocessable_entity: { status: 422, type: 'invalid_request_error', retryable: false },
  internal_error: { status: 500, type: 'api_error', retryable: false },
});

export const ERROR_CODES = Object.freeze(Object.keys(ERROR_SPECS) as ErrorCode[]);

export interface OpenAIErrorBody {
  error: { message: string; type: ErrorType; code: ErrorCode; param: string | null };
}

export interface SeedErrorOptions {
  /** The request field at fault, in OpenAI's dotted form (`messages[0].content`). */
  param?: string | null;
  /** Milliseconds after which the caller may try again; becomes `retry-after(-ms)` headers. */
  retryAfterMs?: number;
  /** Extra response headers (e.g. `x-ratelimit-*` on Seed's own 429s). */
  headers?: Record<string, string>;
  /** Upstream HTTP status, when the error came from a provider. */
  upstreamStatus?: number;
  /** The quota the upstream reported on that answer (`x-ratelimit-*`), for the router. */
  upstreamQuota?: UpstreamQuota;
  cause?: unknown;
}

/** A provider's rate-limit headers (`x-ratelimit-*`, `anthropic-ratelimit-*`), parsed: on every answer and on a 429's SeedError. */
export interface UpstreamQuota {
  limitRequests?: number;
  remainingRequests?: number;
  resetRequestsMs?: number;
  limitTokens?: number;
  remainingTokens?: number;
  resetTokensMs?: number;
}

/** The one error class of Seed. Throw it anywhere; the gateway turns it into a response. */
export class SeedError extends Error {
  readonly code: ErrorCode;
  readonly param: string | null;
  readonly retryAfterMs: number | undefined;
  readonly headers: Readonly<Record<string, string>>;
  readonly upstreamStatus: number | undefined;
  readonly upstreamQuota: UpstreamQuota | undefined;

  constructor(code: ErrorCode, message: string, options: SeedErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SeedError';
    this.code = code;
    this.param = options.param ?? null;
    this.retryAfterMs = options.retryAfterMs;
    this.headers = options.headers ?? {};
    this.upstreamStatus = options.upstreamStatus;
    this.upstreamQuota = options.upstreamQuota;
  }

  get status(): number {
    return ERROR_SPECS[this.code].status;
  }

  get type(): ErrorType {
    return ERROR_SPECS[this.code].type;
  }

  get retryable(): boolean {
    return ERROR_SPECS[this.code].retryable;
  }

  toBody(): OpenAIErrorBody {
    return { error: { message: this.message, type: this.type, code: this.code, param: this.param } };
  }

  /** Response headers for this error, including `retry-after` when a wait is known. */
  responseHeaders(): Record<string, string> {
    const headers: Record<string, string> = { ...this.headers };
    if (this.retryAfterMs !== undefined) {
      headers['retry-after'] = String(Math.max(1, Math.ceil(this.retryAfterMs / 1000)));
      headers['retry-after-ms'] = String(Math.max(0, Math.round(this.retryAfterMs)));
    }
    return headers;
  }
}

export function isSeedError(value: unknown): value is SeedError {
  return value instanceof SeedError;
}

/** Anything thrown, as a SeedError; unknown failures become `internal_error` without leaking details. */
export function toSeedError(value: unknown): SeedError {
  if (value instanceof SeedError) return value;
  return new SeedError('internal_error', 'Seed failed to handle this request; the failure was logged.', {
    cause: value,
  });
}
