/**
 * OpenAI's `x-ratelimit-*` response headers, built from bucket statuses, so SDKs and clients
 * that already read OpenAI's headers understand Seed's own limits.
 */
import type { BucketStatus } from './types.ts';

/**
 * A duration the way OpenAI writes `x-ratelimit-reset-*` (Go's format): `20ms`, `1s`, `1.5s`,
 * `6m0s`, `1h2m3s`.
 */
export function formatResetDuration(milliseconds: number): string {
  const ms = Math.max(0, Math.ceil(milliseconds));
  if (ms === 0) return '0s';
  if (ms < 1_000) return `${ms}ms`;
  const hours = Math.floor(ms / 3_600_000);
  const minutes = Math.floor((ms % 3_600_000) / 60_000);
  const seconds = `${Math.floor((ms % 60_000) / 1_000)}${fractionOfSecond(ms % 1_000)}s`;
  if (hours > 0) return `${hours}h${minutes}m${seconds}`;
  if (minutes > 0) return `${minutes}m${seconds}`;
  return seconds;
}

/**
 * `.5`, `.05`, `.512` for 500, 50, 512 ms: at most three decimals, without trailing zeros; `''`
 * for 0. From whole numbers only: printing the quotient `ms / 1000` made V8 format a double on
 * every call (two per response with limits), 2–3× the cost of the whole function now.
 */
function fractionOfSecond(ms: number): string {
  if (ms === 0) return '';
  if (ms % 100 === 0) return `.${ms / 100}`;
  if (ms % 10 === 0) return ms < 100 ? `.0${ms / 10}` : `.${ms / 10}`;
  return ms < 10 ? `.00${ms}` : ms < 100 ? `.0${ms}` : `.${ms}`;
}

/**
 * `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` for the tightest requests and tokens
 * buckets of a call (the one with the least remaining; the refused one when there is one).
 *
 * @example
 * reply.headers(rateLimitHeaders({ statuses: admission.statuses }));
 */
export function rateLimitHeaders({ statuses, refused }: { statuses: readonly BucketStatus[]; refused?: BucketStatus }): Record<string, string> {
  return statusHeaders(
    refused?.bucket.kind === 'requests' ? refused : tightestStatus(statuses, 'requests'),
    refused?.bucket.kind === 'tokens' ? refused : tightestStatus(statuses, 'tokens'),
  );
}

/**
 * The status with the least remaining of the buckets of `kind`; the first of equals. What
 * `rateLimitHeaders` reports (a store's `HeaderStatuses` follow the same rule).
 */
export function tightestStatus(statuses: readonly BucketStatus[], kind: 'requests' | 'tokens'): BucketStatus | undefined {
  let tightest: BucketStatus | undefined;
  for (const status of statuses) {
    if (status.bucket.kind === kind && (tightest === undefined || status.remaining < tightest.remaining)) tightest = status;
  }
  return tightest;
}

/** The headers of a requests status and a tokens status, each when there is one. */
export function statusHeaders(requests: BucketStatus | undefined, tokens: BucketStatus | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  if (requests !== undefined) {
    headers['x-ratelimit-limit-requests'] = String(requests.limit);
    headers['x-ratelimit-remaining-requests'] = String(Math.floor(requests.remaining));
    headers['x-ratelimit-reset-requests'] = formatResetDuration(requests.resetMs ?? 0);
  }
  if (tokens !== undefined) {
    headers['x-ratelimit-limit-tokens'] = String(tokens.limit);
    headers['x-ratelimit-remaining-tokens'] = String(Math.floor(tokens.remaining));
    headers['x-ratelimit-reset-tokens'] = formatResetDuration(tokens.resetMs ?? 0);
  }
  return headers;
}
