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
  const seconds = `${Number(((ms % 60_000) / 1_000).toFixed(3))}s`;
  if (hours > 0) return `${hours}h${minutes}m${seconds}`;
  if (minutes > 0) return `${minutes}m${seconds}`;
  return seconds;
}

/**
 * `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` for the tightest requests and tokens
 * buckets of a call (the one with the least remaining; the refused one when there is one).
 *
 * @example
 * reply.headers(rateLimitHeaders({ statuses: admission.statuses }));
 */
export function rateLimitHeaders({ statuses, refused }: { statuses: readonly BucketStatus[]; refused?: BucketStatus }): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [kind, suffix] of [['requests', 'requests'], ['tokens', 'tokens']] as const) {
    const candidates = statuses.filter((status) => status.bucket.kind === kind);
    const chosen =
      refused !== undefined && refused.bucket.kind === kind
        ? refused
        : candidates.reduce<BucketStatus | undefined>(
            (tightest, status) => (tightest === undefined || status.remaining < tightest.remaining ? status : tightest),
            undefined,
          );
    if (chosen === undefined) continue;
    headers[`x-ratelimit-limit-${suffix}`] = String(chosen.limit);
    headers[`x-ratelimit-remaining-${suffix}`] = String(Math.floor(chosen.remaining));
    headers[`x-ratelimit-reset-${suffix}`] = formatResetDuration(chosen.resetMs ?? 0);
  }
  return headers;
}
