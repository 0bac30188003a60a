/**
 * The contract every limit store implements, and the values that cross it. A store knows
 * nothing about keys, teams or deployments: it checks and reserves amounts against named
 * buckets, atomically, and settles or releases what it reserved. The limiter (`limiter.ts`)
 * decides which buckets a call touches.
 */

/** How long a requests/tokens window is divided for the sliding-window counter. */
export const SUB_WINDOWS_PER_WINDOW = 120;

/**
 * One limit. `id` names the counter (e.g. `key:k_123:rpm`); two buckets with the same id share
 * state, so an id must encode everything that makes the limit distinct.
 *
 * - `requests` / `tokens`: at most `limit` per sliding window of `windowMs`.
 * - `concurrent`: at most `limit` reservations held at once (a gauge with leases).
 * - `usd`: at most `limit` dollars per calendar `period` in UTC.
 */
export type Bucket =
  | { readonly kind: 'requests' | 'tokens'; readonly id: string; readonly limit: number; readonly windowMs: number }
  | { readonly kind: 'concurrent'; readonly id: string; readonly limit: number }
  | { readonly kind: 'usd'; readonly id: string; readonly limit: number; readonly period: 'day' | 'month' };

export type BucketKind = Bucket['kind'];

/** What one part of a call asks for; `requests` and `concurrent` buckets always take 1. */
export interface ReservePart {
  readonly buckets: readonly Bucket[];
  /** Estimated tokens (prompt + completion cap) charged to `tokens` buckets. */
  readonly tokens: number;
  /** Estimated cost in dollars charged to `usd` buckets. */
  readonly usd: number;
}

/**
 * What an admitted reserve reports of its buckets: `every-bucket` a status per bucket;
 * `headers` only each part's `HeaderStatuses`, what OpenAI's `x-ratelimit-*` headers report.
 */
export type StatusReport = 'every-bucket' | 'headers';

export interface ReserveRequest {
  /** Reserved together, all or nothing; each part gets its own reservation handle. */
  readonly parts: readonly ReservePart[];
  /**
   * How long a `concurrent` slot is held if nobody settles it (the process died). Must exceed
   * the call's deadline, or a slow call frees its slot early.
   */
  readonly leaseMs: number;
  /**
   * `every-bucket` (the default) or `headers`, which leaves an admitted reserve's `statuses`
   * empty. The gateway's admission asks for `headers`: a status per bucket was 11 objects and
   * ~1.7 KB of garbage per call (key, team and org limits and a deployment quota), of which the
   * headers read two (bench/micro/limits.ts). A refused reserve reports every bucket either way.
   */
  readonly report?: StatusReport;
}

/** One bucket's share of a reservation, with where it was charged (sub-window or period). */
export interface ReservedEntry {
  readonly bucket: Bucket;
  /** In the store's unit: requests, tokens, slots, or micro-dollars for `usd`. */
  readonly amount: number;
  /** Sub-window index for requests/tokens, period stamp (`2025-01-31`, `2025-01`) for usd. */
  readonly slot: string;
  /** The sub-window index as a number for requests/tokens (what the memory store indexes by); -1 otherwise. */
  readonly subWindow: number;
}

/** A handle to reserved capacity. Immutable; settle or release it exactly once (repeats do nothing). */
export interface Reservation {
  readonly id: string;
  readonly entries: readonly ReservedEntry[];
  /** Store clock at reservation, ms since epoch. */
  readonly reservedAt: number;
  /** The estimates this reservation holds. */
  readonly tokens: number;
  readonly usd: number;
}

/** A bucket's state as seen by one reserve, in the bucket's own unit (dollars for usd). */
export interface BucketStatus {
  readonly bucket: Bucket;
  readonly limit: number;
  /** Capacity left after this reserve (if admitted) or before it (if refused); never negative. */
  readonly remaining: number;
  /** Ms until the bucket is back to its full limit; null when unknown (concurrent). */
  readonly resetMs: number | null;
}

/** Why a reserve was refused: the first bucket that would have been exceeded. */
export interface Refusal extends BucketStatus {
  /** What the call asked of this bucket, in the bucket's unit. */
  readonly requested: number;
  /**
   * Ms until the request would fit if nothing else arrived; null when unknown (concurrent:
   * depends on other calls ending) or never (`exceedsLimit`).
   */
  readonly retryAfterMs: number | null;
  /** The call alone asks for more than the whole limit: waiting cannot help. */
  readonly exceedsLimit: boolean;
}

/**
 * Of one part's buckets, those OpenAI's `x-ratelimit-*` headers report: the requests bucket and
 * the tokens bucket with the least remaining (the first of equals), each when the part has one.
 */
export interface HeaderStatuses {
  readonly requests: BucketStatus | undefined;
  readonly tokens: BucketStatus | undefined;
}

/**
 * `reservations` and `headerStatuses` come one per part and `statuses` one per bucket (none when
 * an admitted reserve's `report` is `headers`), all in the order of the request's parts and their
 * buckets, so a caller can tell which part a status belongs to.
 */
export type ReserveResult =
  | {
      readonly admitted: true;
      readonly reservations: readonly Reservation[];
      readonly statuses: readonly BucketStatus[];
      readonly headerStatuses: readonly HeaderStatuses[];
    }
  | { readonly admitted: false; readonly refusal: Refusal; readonly statuses: readonly BucketStatus[] };

/** Actual usage of a finished call. */
export interface Usage {
  /** Prompt + completion tokens actually used. */
  readonly tokens: number;
  /** Actual cost in dollars. */
  readonly usd: number;
}

/** Several reservations finished the same way, in one store operation. */
export interface FinishRequest {
  readonly reservations: readonly Reservation[];
  /** The actual usage to settle each with, or `release` to refund each whole. */
  readonly usage: Usage | 'release';
}

/**
 * Checks and reserves across buckets atomically; settles with actual usage.
 *
 * @example
 * const result = await store.reserve({ parts: [{ buckets, tokens: 1200, usd: 0.01 }], leaseMs: 150_000 });
 * if (result.admitted) {
 *   const [reservation] = result.reservations;
 *   // … the call runs …
 *   await store.settle(reservation, { tokens: 830, usd: 0.007 });
 * }
 */
export interface LimitStore {
  /** All-or-nothing across every bucket of every part. Throws LimitStoreUnavailableError if the store is unreachable. */
  reserve(request: ReserveRequest): Promise<ReserveResult>;
  /**
   * Replace the estimate with actual usage: tokens in the same sub-window, usd in the same
   * period; frees the concurrent slot. Returns false (and changes nothing) if already settled,
   * released, or expired.
   */
  settle(reservation: Reservation, usage: Usage): Promise<boolean>;
  /** Refund everything (request count included): for a call that never reached an upstream. */
  release(reservation: Reservation): Promise<boolean>;
  /**
   * `settle` or `release` of several reservations (a call's caller and deployment parts) in one
   * store operation; one result per reservation, in order, as those would return.
   */
  finish(request: FinishRequest): Promise<readonly boolean[]>;
  /**
   * `reserve`, answered in the same turn: a store that needs no I/O (the memory store) has it,
   * so admission, on every call's path, costs no promise when nothing has to wait. It throws
   * where `reserve` rejects.
   */
  reserveNow?(request: ReserveRequest): ReserveResult;
  /** `finish`, answered in the same turn (see `reserveNow`). */
  finishNow?(request: FinishRequest): readonly boolean[];
  close(): Promise<void>;
}

/** The store could not be reached; the limiter fails closed or open as configured. */
export class LimitStoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LimitStoreUnavailableError';
  }
}
