/**
 * Turning a bucket's current usage into a decision and a status. The Redis Lua script
 * (`redis-scripts.ts`) implements the same rules; keep the two in step.
 */
import { fromStoreUnit, storeLimit } from './plan.ts';
import type { Bucket, BucketStatus, HeaderStatuses, Refusal, Reservation, ReservedEntry, ReserveResult, StatusReport } from './types.ts';

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

const NO_STATUSES: readonly BucketStatus[] = Object.freeze([]);

/**
 * An admitted reserve's result, its statuses built as `report` asks. `values` holds, for the
 * `index`-th entry over all parts, its usage before the charge (store units) at
 * `offset + index * stride` and its `resetMs` after the charge (negative: unknown) right after:
 * the memory store's scratch and the Redis script's reply are both laid out so.
 *
 * Positional, like `admittedStatus`: it runs on every call's reserve.
 */
export function admittedResult(
  reservations: readonly Reservation[],
  report: StatusReport,
  values: ArrayLike<number>,
  offset: number,
  stride: number,
): ReserveResult {
  const everyBucket = report === 'every-bucket';
  let statuses = NO_STATUSES;
  if (everyBucket) {
    let count = 0;
    for (let part = 0; part < reservations.length; part += 1) count += (reservations[part] as Reservation).entries.length;
    statuses = new Array<BucketStatus>(count);
  }
  const headerStatuses = new Array<HeaderStatuses>(reservations.length);
  let index = 0;
  for (let part = 0; part < reservations.length; part += 1) {
    const { entries } = reservations[part] as Reservation;
    // Index (over all parts) and remaining of the part's tightest requests and tokens buckets.
    let requests = -1;
    let tokens = -1;
    let requestsRemaining = 0;
    let tokensRemaining = 0;
    for (let position = 0; position < entries.length; position += 1) {
      const entry = entries[position] as ReservedEntry;
      const at = offset + index * stride;
      if (everyBucket) (statuses as BucketStatus[])[index] = statusAt(entry, values, at);
      const { kind, limit } = entry.bucket;
      // Requests and tokens are counted in the bucket's own unit: no conversion to compare.
      const remaining = Math.max(0, limit - (values[at] as number) - entry.amount);
      if (kind === 'requests' && (requests === -1 || remaining < requestsRemaining)) {
        requests = index;
        requestsRemaining = remaining;
      } else if (kind === 'tokens' && (tokens === -1 || remaining < tokensRemaining)) {
        tokens = index;
        tokensRemaining = remaining;
      }
      index += 1;
    }
    const first = index - entries.length;
    headerStatuses[part] = {
      requests:
        requests === -1 ? undefined : everyBucket ? statuses[requests] : statusAt(entries[requests - first] as ReservedEntry, values, offset + requests * stride),
      tokens: tokens === -1 ? undefined : everyBucket ? statuses[tokens] : statusAt(entries[tokens - first] as ReservedEntry, values, offset + tokens * stride),
    };
  }
  return { admitted: true, reservations, statuses, headerStatuses };
}

function statusAt(entry: ReservedEntry, values: ArrayLike<number>, at: number): BucketStatus {
  return admittedStatus(entry, values[at] as number, resetOf(values[at + 1]));
}

function resetOf(value: number | undefined): number | null {
  return value === undefined || value < 0 ? null : value;
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
