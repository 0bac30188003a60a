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
import {
  SUB_WINDOWS_PER_WINDOW,
  type Bucket,
  type Reservation,
  type ReservedEntry,
  type ReservePart,
  type ReserveRequest,
  type Usage,
} from './types.ts';

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

/**
 * When a bucket an admitted reserve charged `entry.amount` empties, in ms from `now` (-1:
 * unknown, a concurrency gauge), the usage before the charge being `used`: the newest usage is
 * in the sub-window charged (`slot`; a window's) or the period (a budget's), so this is an upper
 * bound when nothing was charged now. Both stores report it so; the Redis store from the slot
 * its script charged, which a lagging clock moves on (see `redis-scripts.ts`).
 */
export function resetAfterCharge(entry: ReservedEntry, used: number, now: number, slot: number): number {
  const { bucket, amount } = entry;
  if (bucket.kind === 'concurrent') return -1;
  if (used + amount === 0) return 0;
  if (bucket.kind === 'usd') return calendarPeriod({ now, period: bucket.period }).endsAt - now;
  const width = subWindowMs(bucket.windowMs);
  return Math.ceil((slot + SUB_WINDOWS_PER_WINDOW + 1) * width - now);
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

/**
 * What reserves derive from one bucket object, kept per object (the limiter passes the same
 * buckets on every call): its counter key, and the last entry planned for it. Fresh keys, slot
 * strings and entries for every bucket of every reserve would be garbage on every call, and
 * garbage collection is what makes the gateway's latency tail.
 */
interface BucketMemo {
  /** Counter key (see `counterKey`); a budget's names the period `keySlot`. */
  key: string;
  keySlot: string;
  /** Reused by the next reserve while its amount and slot are the same (entries are immutable). */
  entry: ReservedEntry | null;
  /** Sub-window index of `entry`, for window buckets. */
  entryIndex: number;
}

const bucketMemos = new WeakMap<Bucket, BucketMemo>();

function memoOf(bucket: Bucket): BucketMemo {
  let memo = bucketMemos.get(bucket);
  if (memo === undefined) {
    const key = bucket.kind === 'concurrent' ? `c:${bucket.id}` : bucket.kind === 'usd' ? '' : `w:${bucket.id}:${bucket.windowMs}`;
    memo = { key, keySlot: '', entry: null, entryIndex: -1 };
    bucketMemos.set(bucket, memo);
  }
  return memo;
}

/**
 * Frozen bucket lists whose buckets were checked together (valid, no id twice), each with the
 * list of a second part it was checked with (`ONE_PART` for none). The limiter reserves the same
 * frozen lists on every call: a caller's, and a caller's with a deployment's.
 */
const checkedParts = new WeakMap<readonly Bucket[], readonly Bucket[]>();
const ONE_PART: readonly Bucket[] = Object.freeze([]);

/**
 * One reservation per part, with where each of its amounts goes; rejects duplicate bucket ids
 * (they would be checked separately, then both charged). Positional: called on every reserve
 * and too large to be inlined, so an options object would be garbage on every call.
 */
export function planReservation(request: ReserveRequest, now: number): Reservation[] {
  const { parts } = request;
  // Only one or two parts are remembered as checked (`checkedParts`), what the limiter reserves.
  const first = parts.length === 1 || parts.length === 2 ? (parts[0] as ReservePart).buckets : null;
  const second = parts.length === 2 ? (parts[1] as ReservePart).buckets : ONE_PART;
  const checked = first !== null && checkedParts.get(first) === second;
  // Sized up front and filled by index: no callbacks, no arrays grown and copied.
  const reservations = new Array<Reservation>(parts.length);
  for (let partIndex = 0; partIndex < parts.length; partIndex += 1) {
    const { buckets, tokens, usd } = parts[partIndex] as ReservePart;
    const entries = new Array<ReservedEntry>(buckets.length);
    for (let index = 0; index < buckets.length; index += 1) {
      const bucket = buckets[index] as Bucket;
      if (!checked) {
        if (appearsEarlier(parts, partIndex, index)) throw new Error(`bucket ${bucket.id} appears twice in one reserve`);
        validateBucket(bucket);
      }
      entries[index] = plannedEntry(bucket, amountFor({ bucket, tokens, usd }), now);
    }
    reservations[partIndex] = { id: nextReservationId(), entries, reservedAt: now, tokens, usd };
  }
  if (!checked && first !== null && Object.isFrozen(first) && Object.isFrozen(second)) checkedParts.set(first, second);
  return reservations;
}

/**
 * Whether a bucket before `parts[partIndex].buckets[index]` has its id. Comparing a dozen ids
 * pairwise is cheaper than filling a fresh Set on every reserve.
 *
 * This and `plannedEntry` run for every bucket of every reserve, so they take positional
 * parameters: an options object costs nothing only when V8 inlines the call, which it decides
 * run by run.
 */
function appearsEarlier(parts: readonly ReservePart[], partIndex: number, index: number): boolean {
  const { id } = (parts[partIndex] as ReservePart).buckets[index] as Bucket;
  for (let otherPart = 0; otherPart <= partIndex; otherPart += 1) {
    const { buckets } = parts[otherPart] as ReservePart;
    const end = otherPart === partIndex ? index : buckets.length;
    for (let other = 0; other < end; other += 1) if ((buckets[other] as Bucket).id === id) return true;
  }
  return false;
}

/** The entry charging `amount` to `bucket` now: the bucket's previous one when that is the same. */
function plannedEntry(bucket: Bucket, amount: number, now: number): ReservedEntry {
  const memo = memoOf(bucket);
  const previous = memo.entry;
  if (bucket.kind === 'requests' || bucket.kind === 'tokens') {
    const index = subWindowIndex({ now, windowMs: bucket.windowMs });
    if (previous !== null && previous.amount === amount && memo.entryIndex === index) return previous;
    memo.entryIndex = index;
    memo.entry = { bucket, amount, slot: String(index), subWindow: index };
    return memo.entry;
  }
  const slot = bucket.kind === 'usd' ? calendarPeriod({ now, period: bucket.period }).stamp : '';
  if (previous !== null && previous.amount === amount && previous.slot === slot) return previous;
  memo.entry = { bucket, amount, slot, subWindow: -1 };
  return memo.entry;
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
export function settleDelta(entry: ReservedEntry, usage: Usage | 'release'): number {
  const { bucket, amount } = entry;
  if (usage === 'release') return -amount;
  if (bucket.kind === 'tokens') return Math.max(0, Math.ceil(usage.tokens)) - amount;
  if (bucket.kind === 'usd') return toMicroUsd({ usd: usage.usd, round: 'nearest' }) - amount;
  return 0;
}

/** Key (without prefix) of the counter an entry lives in. */
export function counterKey(entry: { bucket: Bucket; slot: string }): string {
  const memo = memoOf(entry.bucket);
  if (entry.bucket.kind !== 'usd') return memo.key;
  // A budget's key names its period: built again only when the period changes.
  if (memo.keySlot !== entry.slot) {
    memo.key = `u:${entry.bucket.id}:${entry.slot}`;
    memo.keySlot = entry.slot;
  }
  return memo.key;
}

/** How long settle still finds a reservation after it was made. Long past any call deadline. */
export function recordTtlMs(leaseMs: number): number {
  return leaseMs + 60 * 60 * 1000;
}
