/**
 * The arithmetic both stores share, so the in-memory and Redis stores cannot disagree on
 * where an amount is charged.
 *
 * Requests and tokens use a **sliding-window counter**: a window of `windowMs` is cut into
 * `SUB_WINDOWS_PER_WINDOW` (120) sub-windows of `windowMs / 120` (500 ms for a minute), each
 * holding a count. A reserve counts every sub-window that overlaps the last `windowMs`,
 * including the oldest, partly expired one. That is deliberately conservative: every event of
 * the last `windowMs` is counted, so no sliding window of `windowMs` ever holds more than the
 * limit (zero overshoot), and an event is forgotten at most one sub-window (1/120 of the
 * window) late, so sustained throughput is at least 120/121 ≈ 99.2 % of the limit.
 * We chose this over a sliding log (one entry per request: too heavy at high rates) and over
 * GCRA (a burst of `limit` followed by the steady rate lets up to 2 × limit into one window).
 */
import { randomUUID } from 'node:crypto';
import { SUB_WINDOWS_PER_WINDOW, type Bucket, type ReservedEntry, type ReserveRequest, type Usage } from './types.ts';

/** Dollars are stored as integer micro-dollars so sums are exact in JS, Lua and Redis alike. */
export const MICRO_USD_PER_USD = 1_000_000;

export function toMicroUsd({ usd, round }: { usd: number; round: 'up' | 'nearest' }): number {
  const micro = usd * MICRO_USD_PER_USD;
  // Estimates round up (never under-reserve); actual costs round to nearest.
  return Math.max(0, round === 'up' ? Math.ceil(micro - 1e-6) : Math.round(micro));
}

export function subWindowMs(windowMs: number): number {
  return windowMs / SUB_WINDOWS_PER_WINDOW;
}

export function subWindowIndex({ now, windowMs }: { now: number; windowMs: number }): number {
  return Math.floor(now / subWindowMs(windowMs));
}

interface CachedPeriod {
  readonly startsAt: number;
  readonly endsAt: number;
  readonly stamp: string;
}

/** The last day and month computed: every reserve of a usd bucket asks, and the answer changes once a day. */
const cachedPeriods: { day: CachedPeriod | null; month: CachedPeriod | null } = { day: null, month: null };

/** Start of the next UTC day or month after `now`, and the stamp naming the current one. */
export function calendarPeriod({ now, period }: { now: number; period: 'day' | 'month' }): Readonly<{ stamp: string; endsAt: number }> {
  const cached = cachedPeriods[period];
  if (cached !== null && now >= cached.startsAt && now < cached.endsAt) return cached;
  const date = new Date(now);
  const year = date.getUTCFullYear();
  const month = date.getUTCMonth();
  const computed: CachedPeriod =
    period === 'month'
      ? { startsAt: Date.UTC(year, month, 1), endsAt: Date.UTC(year, month + 1, 1), stamp: date.toISOString().slice(0, 7) }
      : {
          startsAt: Date.UTC(year, month, date.getUTCDate()),
          endsAt: Date.UTC(year, month, date.getUTCDate() + 1),
          stamp: date.toISOString().slice(0, 10),
        };
  cachedPeriods[period] = computed;
  return computed;
}

export function amountFor({ bucket, tokens, usd }: { bucket: Bucket; tokens: number; usd: number }): number {
  switch (bucket.kind) {
    case 'requests':
    case 'concurrent':
      return 1;
    case 'tokens':
      return Math.max(0, Math.ceil(tokens));
    case 'usd':
      return toMicroUsd({ usd, round: 'up' });
  }
}

/** A bucket's limit in the store's unit (micro-dollars for usd). */
export function storeLimit(bucket: Bucket): number {
  return bucket.kind === 'usd' ? toMicroUsd({ usd: bucket.limit, round: 'nearest' }) : bucket.limit;
}

/** Back to the bucket's own unit for reporting. */
export function fromStoreUnit({ bucket, value }: { bucket: Bucket; value: number }): number {
  return bucket.kind === 'usd' ? value / MICRO_USD_PER_USD : value;
}

export interface PlannedPart {
  readonly id: string;
  readonly tokens: number;
  readonly usd: number;
  readonly entries: readonly ReservedEntry[];
}

/**
 * Reservation ids: a random prefix per process and a counter, unique across replicas and
 * restarts like a UUID per reservation, without drawing random bytes on every reserve.
 */
const RESERVATION_ID_PREFIX = `${randomUUID()}:`;
let reservationSequence = 0;

function nextReservationId(): string {
  reservationSequence += 1;
  return RESERVATION_ID_PREFIX + reservationSequence.toString(36);
}

/** Where every amount of a reserve goes; rejects duplicate bucket ids (they would be checked separately, then both charged). */
export function planReservation({ request, now }: { request: ReserveRequest; now: number }): PlannedPart[] {
  const seen = new Set<string>();
  return request.parts.map((part) => ({
    id: nextReservationId(),
    tokens: part.tokens,
    usd: part.usd,
    entries: part.buckets.map((bucket) => {
      if (seen.has(bucket.id)) throw new Error(`bucket ${bucket.id} appears twice in one reserve`);
      seen.add(bucket.id);
      validateBucket(bucket);
      const amount = amountFor({ bucket, tokens: part.tokens, usd: part.usd });
      return { bucket, amount, slot: slotFor({ bucket, now }) };
    }),
  }));
}

function slotFor({ bucket, now }: { bucket: Bucket; now: number }): string {
  if (bucket.kind === 'requests' || bucket.kind === 'tokens') return String(subWindowIndex({ now, windowMs: bucket.windowMs }));
  if (bucket.kind === 'usd') return calendarPeriod({ now, period: bucket.period }).stamp;
  return '';
}

function validateBucket(bucket: Bucket): void {
  if (!(bucket.limit >= 0) || !Number.isFinite(bucket.limit)) throw new Error(`bucket ${bucket.id} has an invalid limit`);
  if ((bucket.kind === 'requests' || bucket.kind === 'tokens') && !(bucket.windowMs >= SUB_WINDOWS_PER_WINDOW)) {
    throw new Error(`bucket ${bucket.id} needs a window of at least ${SUB_WINDOWS_PER_WINDOW} ms`);
  }
}

/**
 * What settling changes per entry, in store units: tokens and usd move to the actual amount;
 * on release every amount (requests included) is refunded.
 */
export function settleDelta({ entry, usage }: { entry: ReservedEntry; usage: Usage | 'release' }): number {
  const { bucket, amount } = entry;
  if (usage === 'release') return -amount;
  if (bucket.kind === 'tokens') return Math.max(0, Math.ceil(usage.tokens)) - amount;
  if (bucket.kind === 'usd') return toMicroUsd({ usd: usage.usd, round: 'nearest' }) - amount;
  return 0;
}

/**
 * Counter keys of window and gauge buckets, per bucket object: the limiter reuses its bucket
 * objects, and building (then hashing) a fresh key string twice per call shows in profiles.
 */
const bucketKeys = new WeakMap<Bucket, string>();

/** Key (without prefix) of the counter an entry lives in. */
export function counterKey(entry: { bucket: Bucket; slot: string }): string {
  const { bucket } = entry;
  // A budget's key names its period, so it changes with the slot: not cached.
  if (bucket.kind === 'usd') return `u:${bucket.id}:${entry.slot}`;
  let key = bucketKeys.get(bucket);
  if (key === undefined) {
    key = bucket.kind === 'concurrent' ? `c:${bucket.id}` : `w:${bucket.id}:${bucket.windowMs}`;
    bucketKeys.set(bucket, key);
  }
  return key;
}

/** How long settle still finds a reservation after it was made. Long past any call deadline. */
export function recordTtlMs(leaseMs: number): number {
  return leaseMs + 60 * 60 * 1000;
}
