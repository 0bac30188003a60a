/**
 * What Anthropic's HTTP layer says besides the body: its error format, its
 * `anthropic-ratelimit-*` headers (absolute RFC 3339 reset times rather than OpenAI's
 * durations) and its `request-id` header. The generic status mapping stays in `../http.ts`.
 */
import { SeedError, type ErrorCode, type UpstreamQuota } from '../../errors.ts';
import { boundedWaitMs, parseCountHeader, upstreamStatusError, type UpstreamResponse } from '../http.ts';
import type { UpstreamInfo } from '../types.ts';
import { anthropicErrorBodySchema } from './wire.ts';

type Headers = UpstreamResponse['headers'];

interface LimitReading {
  limit: number | undefined;
  remaining: number | undefined;
  resetMs: number | undefined;
}

function readLimit(input: { headers: Headers; kind: string; nowMs: number }): LimitReading {
  const read = (field: string) => input.headers.get(`anthropic-ratelimit-${input.kind}-${field}`);
  const reset = read('reset');
  const resetAt = reset === undefined ? Number.NaN : Date.parse(reset);
  return {
    limit: parseCountHeader(read('limit')),
    remaining: parseCountHeader(read('remaining')),
    resetMs: Number.isNaN(resetAt) ? undefined : boundedWaitMs(Math.max(0, resetAt - input.nowMs)),
  };
}

/**
 * Maps `anthropic-ratelimit-*` headers onto the snapshot. The snapshot has one token bucket:
 * Anthropic's combined `tokens` headers when present (they report the most restrictive limit),
 * otherwise whichever of the input/output buckets has less left.
 */
export function anthropicRateLimit(input: { headers: Headers; nowMs: number }): UpstreamQuota {
  const requests = readLimit({ ...input, kind: 'requests' });
  const combined = readLimit({ ...input, kind: 'tokens' });
  const candidates = [readLimit({ ...input, kind: 'input-tokens' }), readLimit({ ...input, kind: 'output-tokens' })].filter(
    (reading) => reading.remaining !== undefined,
  );
  const split = candidates.sort((first, second) => (first.remaining ?? 0) - (second.remaining ?? 0))[0];
  const tokens = combined.remaining !== undefined || split === undefined ? combined : split;
  const snapshot: UpstreamQuota = {};
  if (requests.limit !== undefined) snapshot.limitRequests = requests.limit;
  if (requests.remaining !== undefined) snapshot.remainingRequests = requests.remaining;
  if (requests.resetMs !== undefined) snapshot.resetRequestsMs = requests.resetMs;
  if (tokens.limit !== undefined) snapshot.limitTokens = tokens.limit;
  if (tokens.remaining !== undefined) snapshot.remainingTokens = tokens.remaining;
  if (tokens.resetMs !== undefined) snapshot.resetTokensMs = tokens.resetMs;
  return snapshot;
}

/** Status, `request-id` and rate-limit state of an Anthropic response. */
export function anthropicUpstreamInfo(input: { response: UpstreamResponse; nowMs: number }): UpstreamInfo {
  const requestId = input.response.headers.get('request-id');
  return {
    status: input.response.status,
    rateLimit: anthropicRateLimit({ headers: input.response.headers, nowMs: input.nowMs }),
    ...(requestId ? { requestId } : {}),
  };
}

/** Extracts `error.message` (prefixed with `error.type`) from an Anthropic error body, or the raw text. */
export function anthropicErrorMessage(text: string): string {
  try {
    const parsed = anthropicErrorBodySchema.safeParse(JSON.parse(text));
    if (parsed.success) return `${parsed.data.error.type}: ${parsed.data.error.message}`;
  } catch {
    // not JSON (a proxy's HTML page, say): fall through to the raw text
  }
  return text.trim().slice(0, 500);
}

/**
 * The SeedError for a non-2xx answer. A 429 without `retry-after` waits until the exhausted
 * bucket resets, read from Anthropic's own headers (the shared helper knows only OpenAI's).
 */
export function anthropicStatusError(input: {
  status: number;
  headers: Headers;
  bodyText: string;
  label: string;
  nowMs: number;
}): SeedError {
  const error = upstreamStatusError({
    status: input.status,
    headers: input.headers,
    message: anthropicErrorMessage(input.bodyText),
    label: input.label,
  });
  if (input.status !== 429 || error.retryAfterMs !== undefined) return error;
  const snapshot = anthropicRateLimit({ headers: input.headers, nowMs: input.nowMs });
  const waits = [
    snapshot.remainingRequests === 0 ? snapshot.resetRequestsMs : undefined,
    snapshot.remainingTokens === 0 ? snapshot.resetTokensMs : undefined,
  ].filter((wait) => wait !== undefined);
  if (waits.length === 0) return error;
  return new SeedError(error.code, error.message, {
    upstreamStatus: input.status,
    retryAfterMs: Math.max(...waits),
  });
}

/**
 * Anthropic's `error.type` vocabulary, for errors that arrive as stream events (no HTTP status).
 * A Map: the type is the upstream's text, and `constructor` must not find Object's.
 */
const STREAM_ERROR_CODES: ReadonlyMap<string, ErrorCode> = new Map<string, ErrorCode>([
  ['overloaded_error', 'upstream_error'],
  ['api_error', 'upstream_error'],
  ['rate_limit_error', 'upstream_rate_limited'],
  ['invalid_request_error', 'upstream_bad_request'],
  ['request_too_large', 'upstream_bad_request'],
  ['not_found_error', 'upstream_bad_request'],
  ['authentication_error', 'upstream_auth_failed'],
  ['permission_error', 'upstream_auth_failed'],
  ['timeout_error', 'upstream_timeout'],
]);

/** The SeedError for an `error` event in the middle of a stream. */
export function anthropicStreamError(input: { type: string; message: string; label: string }): SeedError {
  const code = STREAM_ERROR_CODES.get(input.type) ?? 'upstream_error';
  return new SeedError(code, `Deployment ${input.label} failed mid-stream: ${input.type}: ${input.message}`);
}
