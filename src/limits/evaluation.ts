/**
 * Turning a bucket's current usage into a decision and a status. The Redis Lua script
 * (`redis-scripts.ts`) implements the same rules; keep the two in step.
 */
import { fromStoreUnit, storeLimit } from './plan.ts';
import type { Bucket, BucketStatus, Refusal, ReservedEntry } from './types.ts';

/**
 * A bucket admits `amount` when it fits under the limit and the bucket is not already full;
 * the second rule stops zero-amount calls (unpriced models) sailing through a spent budget.
 */
export function fits({ used, amount, limit }: { used: number; amount: number; limit: number }): boolean {
  return used + amount <= limit && used < limit;
}

/** Raw numbers one bucket reports to the decision, in store units. */
export interface EntryEvaluation {
  readonly bucket: Bucket;
  readonly amount: number;
  readonly used: number;
  /** Ms until the bucket holds nothing; null when unknown. */
  readonly resetMs: number | null;
  /** Ms until `amount` would fit; null when unknown or never. */
  readonly retryAfterMs: number | null;
}

export function statusOf({ evaluation, admitted }: { evaluation: EntryEvaluation; admitted: boolean }): BucketStatus {
  const { bucket, amount, used, resetMs } = evaluation;
  const limit = storeLimit(bucket);
  const remaining = Math.max(0, limit - used - (admitted ? amount : 0));
  return {
    bucket,
    limit: bucket.limit,
    remaining: fromStoreUnit({ bucket, value: remaining }),
    resetMs,
  };
}

/**
 * A bucket's status after an admitted reserve charged `entry` on top of `used` (store units):
 * `statusOf` without an evaluation object. Positional, as it is called for every bucket of
 * every reserve (see the memory store's `#measure`).
 */
export function admittedStatus(entry: ReservedEntry, used: number, resetMs: number | null): BucketStatus {
  const { bucket } = entry;
  return {
    bucket,
    limit: bucket.limit,
    remaining: fromStoreUnit({ bucket, value: Math.max(0, storeLimit(bucket) - used - entry.amount) }),
    resetMs,
  };
}

export function refusalOf(evaluation: EntryEvaluation): Refusal {
  const { bucket, amount } = evaluation;
  const exceedsLimit = amount > storeLimit(bucket) || storeLimit(bucket) === 0;
  return {
    ...statusOf({ evaluation, admitted: false }),
    requested: fromStoreUnit({ bucket, value: amount }),
    retryAfterMs: exceedsLimit ? null : evaluation.retryAfterMs,
    exceedsLimit,
  };
}
