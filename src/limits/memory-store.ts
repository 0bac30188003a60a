/**
 * The in-memory limit store: exact, one process only (principle 7: the embedded default).
 * JavaScript runs a reserve to completion without yielding, so check-and-reserve is atomic
 * without locks. The rules mirror the Redis script line for line.
 */
import { admittedResult, fits, refusalOf, statusOf, type EntryEvaluation } from './evaluation.ts';
import {
  calendarPeriod,
  counterKey,
  planReservation,
  recordTtlMs,
  resetAfterCharge,
  settleDelta,
  storeLimit,
  subWindowMs,
} from './plan.ts';
import {
  SUB_WINDOWS_PER_WINDOW,
  type FinishRequest,
  type LimitStore,
  type Reservation,
  type ReservedEntry,
  type ReserveRequest,
  type ReserveResult,
  type Usage,
} from './types.ts';

/**
 * A window's sub-window counts live in a ring: the window's sub-windows and the current one, so
 * sub-window `index` is slot `index % RING_SLOTS`. A counter never spans more (see `#expireWindow`).
 */
const RING_SLOTS = SUB_WINDOWS_PER_WINDOW + 1;

/**
 * One requests or tokens counter. A typed ring rather than a `Map` of sub-window counts: every
 * reserve and settle reads and writes it for each window bucket, and the limits' cost in the
 * gateway is memory access more than arithmetic (docs/benchmark-log.md, 2026-12-04 (03:14–), item 6).
 */
interface WindowCounter {
  total: number;
  /** Oldest sub-window index that may still hold a count. */
  oldest: number;
  /** Newest sub-window index charged. */
  newest: number;
  /** Sub-window `index`'s count at `counts[index % RING_SLOTS]` for `oldest ≤ index ≤ newest`; every other slot is 0. */
  readonly counts: Float64Array;
}

export interface MemoryLimitStoreOptions {
  /** Clock in ms since epoch; injectable so tests can move time. */
  now?: () => number;
}

/**
 * @example
 * const store = new MemoryLimitStore();
 * const limiter = new Limiter({ store, onUnavailable: 'closed' });
 */
export class MemoryLimitStore implements LimitStore {
  readonly #now: () => number;
  readonly #windows = new Map<string, WindowCounter>();
  readonly #gauges = new Map<string, Map<string, number>>();
  readonly #budgets = new Map<string, number>();
  /**
   * The key under which this store keeps, on each reservation it made, until when settle still
   * finds it (ms since epoch; 0 once settled or released). On the reservation rather than in a
   * `Map` of ids: the map's entries, set and deleted on every call, were most of what a call left
   * for major GCs to collect (docs/benchmark-log.md, 2026-12-04 (16:54–), item 5), and a reservation
   * nobody settles now goes with its object instead of waiting for a sweep. A key per store, so a
   * reservation another store made is unknown here, as an id missing from the map was.
   */
  readonly #expiry = Symbol('reservation expiry');
  /**
   * Per entry of the reserve in progress: its counter key, and (`admittedResult`'s layout) its
   * usage before the charge and its reset after it.
   */
  readonly #scratchKeys: string[] = [];
  #scratchValues = new Float64Array(32);

  constructor(options: MemoryLimitStoreOptions = {}) {
    this.#now = options.now ?? Date.now;
  }

  async reserve(request: ReserveRequest): Promise<ReserveResult> {
    return this.reserveNow(request);
  }

  reserveNow(request: ReserveRequest): ReserveResult {
    const now = this.#now();
    const reservations = planReservation(request, now);
    // Measure every entry into the scratch, then charge all or none. A reserve runs to
    // completion without yielding, so one scratch per store serves every reserve and no
    // per-bucket measurement objects are made.
    const keys = this.#scratchKeys;
    let values = this.#scratchValues;
    let count = 0;
    let refusedIndex = -1;
    for (let part = 0; part < reservations.length; part += 1) {
      const { entries } = reservations[part] as Reservation;
      if (values.length < (count + entries.length) * 2) {
        const grown = new Float64Array((count + entries.length) * 4);
        grown.set(values);
        values = this.#scratchValues = grown;
      }
      for (let position = 0; position < entries.length; position += 1) {
        const entry = entries[position] as ReservedEntry;
        const key = counterKey(entry);
        const inUse = this.#measure(entry, key, now);
        keys[count] = key;
        values[count * 2] = inUse;
        if (refusedIndex === -1 && !fits({ used: inUse, amount: entry.amount, limit: storeLimit(entry.bucket) })) refusedIndex = count;
        count += 1;
      }
    }
    if (refusedIndex !== -1) return this.#refused({ reservations, refusedIndex, now });
    const leaseEndsAt = now + request.leaseMs;
    let index = 0;
    for (let part = 0; part < reservations.length; part += 1) {
      const reservation = reservations[part] as Reservation;
      const { entries } = reservation;
      for (let position = 0; position < entries.length; position += 1) {
        const entry = entries[position] as ReservedEntry;
        this.#charge(entry, keys[index] as string, reservation.id, leaseEndsAt);
        values[index * 2 + 1] = resetAfterCharge(entry, values[index * 2] as number, now, entry.subWindow);
        index += 1;
      }
      (reservation as Held)[this.#expiry] = now + recordTtlMs(request.leaseMs);
    }
    return admittedResult(reservations, request.report ?? 'every-bucket', values, 0, 2);
  }

  async settle(reservation: Reservation, usage: Usage): Promise<boolean> {
    return this.#finish(reservation, usage);
  }

  async release(reservation: Reservation): Promise<boolean> {
    return this.#finish(reservation, 'release');
  }

  async finish(request: FinishRequest): Promise<readonly boolean[]> {
    return this.finishNow(request);
  }

  finishNow({ reservations, usage }: FinishRequest): readonly boolean[] {
    const applied = new Array<boolean>(reservations.length);
    for (let index = 0; index < reservations.length; index += 1) applied[index] = this.#finish(reservations[index] as Reservation, usage);
    return applied;
  }

  async close(): Promise<void> {}

  #finish(reservation: Reservation, usage: Usage | 'release'): boolean {
    const held = reservation as Held;
    const expiresAt = held[this.#expiry];
    if (expiresAt === undefined || expiresAt === 0) return false;
    // Not deleted: a property deleted turns the object into a slow dictionary.
    held[this.#expiry] = 0;
    if (expiresAt <= this.#now()) return false;
    for (const entry of reservation.entries) {
      const key = counterKey(entry);
      const delta = settleDelta(entry, usage);
      if (entry.bucket.kind === 'concurrent') {
        this.#gauges.get(key)?.delete(reservation.id);
      } else if (entry.bucket.kind === 'usd') {
        const used = this.#budgets.get(key);
        if (used !== undefined && delta !== 0) this.#budgets.set(key, used + delta);
      } else if (delta !== 0) {
        // Only a sub-window still inside the window is adjusted: one that aged out no longer counts.
        const counter = this.#windows.get(key);
        const slot = entry.subWindow;
        if (counter !== undefined && slot >= counter.oldest && slot <= counter.newest) {
          const ring = slot % RING_SLOTS;
          counter.counts[ring] = (counter.counts[ring] as number) + delta;
          counter.total += delta;
        }
      }
    }
    return true;
  }

  /**
   * Expires what left the window or lease, then reads how much of the bucket is in use (store
   * units).
   *
   * This, `#charge`, `#expireWindow`, `#finish` and `fullResetAfterCharge` run for every bucket
   * of every reserve or settle and take positional parameters: an options object costs nothing
   * only when V8 inlines the call, which it decides run by run (in runs where it did not inline
   * `#charge`, a call allocated ~1.8 KB more).
   */
  #measure(entry: ReservedEntry, key: string, now: number): number {
    const { bucket } = entry;
    if (bucket.kind === 'concurrent') {
      const gauge = this.#gauges.get(key);
      if (gauge === undefined) return 0;
      for (const [holder, expiry] of gauge) if (expiry <= now) gauge.delete(holder);
      return gauge.size;
    }
    if (bucket.kind === 'usd') return this.#budgets.get(key) ?? 0;
    return this.#expireWindow(key, now, bucket.windowMs)?.total ?? 0;
  }

  /** A refused reserve: nothing is charged; statuses say when each bucket frees. */
  #refused({ reservations, refusedIndex, now }: { reservations: readonly Reservation[]; refusedIndex: number; now: number }): ReserveResult {
    // Only a refusal needs to know when capacity frees, which walks the window's sub-windows.
    const evaluations: EntryEvaluation[] = [];
    for (const reservation of reservations) {
      for (const entry of reservation.entries) {
        const index = evaluations.length;
        evaluations.push(this.#evaluateRefused({ entry, key: this.#scratchKeys[index] as string, used: this.#scratchValues[index * 2] as number, now }));
      }
    }
    return {
      admitted: false,
      refusal: refusalOf(evaluations[refusedIndex] as EntryEvaluation),
      statuses: evaluations.map((evaluation) => statusOf({ evaluation, admitted: false })),
    };
  }

  /** When a bucket of a refused reserve empties (`resetMs`) and when this entry would fit (`retryAfterMs`). */
  #evaluateRefused({ entry, key, used, now }: { entry: ReservedEntry; key: string; used: number; now: number }): EntryEvaluation {
    const { bucket, amount } = entry;
    const limit = storeLimit(bucket);
    if (bucket.kind === 'concurrent') return { bucket, amount, used, resetMs: null, retryAfterMs: null };
    if (bucket.kind === 'usd') {
      const untilEnd = calendarPeriod({ now, period: bucket.period }).endsAt - now;
      return { bucket, amount, used, resetMs: used > 0 ? untilEnd : 0, retryAfterMs: untilEnd };
    }
    // `#measure` already expired this counter; what is left is inside the window.
    const counter = this.#windows.get(key);
    const width = subWindowMs(bucket.windowMs);
    const current = Math.floor(now / width);
    let retryAfterMs: number | null = null;
    let resetMs = 0;
    if (counter !== undefined) {
      let freed = 0;
      for (let index = current - SUB_WINDOWS_PER_WINDOW; index <= current; index += 1) {
        const count = index >= counter.oldest && index <= counter.newest ? (counter.counts[index % RING_SLOTS] as number) : 0;
        if (count === 0) continue;
        freed += count;
        // Sub-window `index` stops counting once the window's oldest index passes it.
        const untilExpiry = Math.ceil((index + SUB_WINDOWS_PER_WINDOW + 1) * width - now);
        resetMs = untilExpiry;
        if (retryAfterMs === null && fits({ used: used - freed, amount, limit })) retryAfterMs = untilExpiry;
      }
    }
    return { bucket, amount, used, resetMs, retryAfterMs };
  }

  /** Drops sub-windows that left the window; returns the counter, or undefined once none is left. */
  #expireWindow(key: string, now: number, windowMs: number): WindowCounter | undefined {
    const counter = this.#windows.get(key);
    if (counter === undefined) return undefined;
    const oldestLive = Math.floor(now / subWindowMs(windowMs)) - SUB_WINDOWS_PER_WINDOW;
    if (counter.oldest >= oldestLive) return counter;
    if (counter.newest < oldestLive) {
      this.#windows.delete(key);
      return undefined;
    }
    // `newest` is still live, so fewer than RING_SLOTS sub-windows lie below `oldestLive`.
    const { counts } = counter;
    for (let index = counter.oldest; index < oldestLive; index += 1) {
      const slot = index % RING_SLOTS;
      counter.total -= counts[slot] as number;
      counts[slot] = 0;
    }
    counter.oldest = oldestLive;
    return counter;
  }

  /** Charges an entry to its counter; `member` (the reservation id) holds a concurrent slot until `leaseEndsAt`. */
  #charge(entry: ReservedEntry, key: string, member: string, leaseEndsAt: number): void {
    if (entry.bucket.kind === 'concurrent') {
      const gauge = this.#gauges.get(key) ?? new Map<string, number>();
      gauge.set(member, leaseEndsAt);
      this.#gauges.set(key, gauge);
    } else if (entry.bucket.kind === 'usd') {
      this.#budgets.set(key, (this.#budgets.get(key) ?? 0) + entry.amount);
    } else {
      // `#measure` expired this counter at the same `now`, so the slot of sub-window `slot`
      // holds nothing older (see `WindowCounter`).
      const slot = entry.subWindow;
      let counter = this.#windows.get(key);
      if (counter === undefined) {
        counter = { total: 0, oldest: slot, newest: slot, counts: new Float64Array(RING_SLOTS) };
        this.#windows.set(key, counter);
      }
      const ring = slot % RING_SLOTS;
      counter.counts[ring] = (counter.counts[ring] as number) + entry.amount;
      counter.total += entry.amount;
      if (slot > counter.newest) counter.newest = slot;
    }
  }
}

/** A reservation as its memory store sees it: with the store's expiry under the store's key. */
type Held = Reservation & { [store: symbol]: number | undefined };

