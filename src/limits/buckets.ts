/**
 * From configured limits to store buckets, and from a refusal to the words a client reads.
 */
import type { LimitsConfig } from './config.ts';
import { formatResetDuration } from './headers.ts';
import type { Bucket, Refusal } from './types.ts';

/** Who a set of limits belongs to. */
export type LimitOwner = 'key' | 'team' | 'org' | 'deployment';

/** Treated as immutable: the limiter keeps the buckets it derives from a scope object. */
export interface LimitScope {
  readonly owner: LimitOwner;
  /** Stable id of the key, team, org or deployment (its config name). */
  readonly id: string;
  readonly limits: LimitsConfig;
}

export const MINUTE_MS = 60_000;

export function bucketsFor({ scope, windowMs }: { scope: LimitScope; windowMs: number }): Bucket[] {
  const prefix = `${scope.owner}:${scope.id}`;
  const { rpm, tpm, concurrent, usdPerDay, usdPerMonth } = scope.limits;
  const buckets: Bucket[] = [];
  if (rpm !== undefined) buckets.push({ kind: 'requests', id: `${prefix}:rpm`, limit: rpm, windowMs });
  if (tpm !== undefined) buckets.push({ kind: 'tokens', id: `${prefix}:tpm`, limit: tpm, windowMs });
  if (concurrent !== undefined) buckets.push({ kind: 'concurrent', id: `${prefix}:concurrent`, limit: concurrent });
  if (usdPerDay !== undefined) buckets.push({ kind: 'usd', id: `${prefix}:usd-day`, limit: usdPerDay, period: 'day' });
  if (usdPerMonth !== undefined) buckets.push({ kind: 'usd', id: `${prefix}:usd-month`, limit: usdPerMonth, period: 'month' });
  return buckets;
}

/**
 * Whether limits charge a call's estimate (tokens per minute, dollar budgets), or only count
 * requests and calls in flight, for which any estimate will do.
 */
export function chargesEstimate(limits: Readonly<LimitsConfig>): boolean {
  return limits.tpm !== undefined || limits.usdPerDay !== undefined || limits.usdPerMonth !== undefined;
}

/** `key:k_1:rpm` → "key k_1"; deployments are not named to clients. */
function ownerLabel(bucketId: string): string {
  const [owner, ...rest] = bucketId.split(':');
  if (owner === 'deployment') return "the upstream deployment's quota";
  return `${owner ?? 'caller'} ${rest.slice(0, -1).join(':')}`;
}

function perWindow(windowMs: number): string {
  return windowMs === MINUTE_MS ? 'per minute' : `per ${formatResetDuration(windowMs)}`;
}

export function refusalMessage({ refusal, retryAfterMs }: { refusal: Refusal; retryAfterMs: number }): string {
  const { bucket } = refusal;
  const who = ownerLabel(bucket.id);
  const retry = `Try again in ${formatResetDuration(retryAfterMs)}.`;
  switch (bucket.kind) {
    case 'requests':
      return `Rate limit reached for ${who}: ${bucket.limit} requests ${perWindow(bucket.windowMs)}. ${retry}`;
    case 'tokens':
      return refusal.exceedsLimit
        ? `This request needs about ${refusal.requested} tokens (prompt + max_tokens), more than the limit of ${bucket.limit} tokens ${perWindow(bucket.windowMs)} for ${who}. Reduce the prompt or max_tokens.`
        : `Rate limit reached for ${who}: ${bucket.limit} tokens ${perWindow(bucket.windowMs)}, ${Math.floor(refusal.remaining)} left, this request needs about ${refusal.requested}. ${retry}`;
    case 'concurrent':
      return `Concurrency limit reached for ${who}: ${bucket.limit} calls in flight. ${retry}`;
    case 'usd': {
      const period = bucket.period === 'day' ? 'per day (UTC)' : 'per month (UTC)';
      return `Budget exceeded for ${who}: $${bucket.limit.toFixed(2)} ${period}, $${refusal.remaining.toFixed(2)} left, this request may cost up to $${refusal.requested.toFixed(4)}. The budget resets in ${formatResetDuration(retryAfterMs)}.`;
    }
  }
}
