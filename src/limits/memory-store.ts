/**
 * The in-memory limit store: exact, one process only (principle 7: the embedded default).
 * JavaScript runs a reserve to completion without yielding, so check-and-reserve is atomic
 * without locks. The rules mirror the Redis script line for line.
 */
import { fits, refusalOf, statusOf, type EntryEvaluation } from './evaluation.ts';
import {
  calendarPeriod,
  counterKey,
  planReservation,
  recordTtlMs,
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

/** A bucket's usage read by a reserve, before anything is charged. */
interface MeasuredEntry {
  readonly entry: ReservedEntry;
  /** Id of the reservation (part) the entry belongs to. */
  readonly member: string;
  /** Counter key of the entry (see `counterKey`). */
  readonly key: string;
  /** The bucket's limit in store units. */
  readonly limit: number;
  readonly used: number;
}

interface WindowCounter {
  total: number;
  /** Oldest sub-window index that may still hold a count. */
  oldest: number;
  readonly counts: Map<number, number>;
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
  /** Reservation id → expiry; present until settled, released or expired. */
  readonly #records = new Map<string, number>();
  #reservesSinceSweep = 0;

  constructor(options: MemoryLimitStoreOptions = {}) {
    this.#now = options.now ?? Date.now;
  }

  async reserve(request: ReserveRequest): Promise<ReserveResult> {
    const now = this.#now();
    const parts = planReservation({ request, now });
    const measured: MeasuredEntry[] = [];
    for (const part of parts) for (const entry of part.entries) measured.push(this.#measure({ entry, member: part.id, now }));
    const refusedIndex = measured.findIndex((item) => !fits({ used: item.used, amount: item.entry.amount, limit: item.limit }));
    if (refusedIndex !== -1) {
      // Only a refusal needs to know when capacity frees, which walks the window's sub-windows.
      const evaluations = measured.map((item) => this.#evaluateRefused({ item, now }));
      return {
        admitted: false,
        refusal: refusalOf(evaluations[refusedIndex] as EntryEvaluation),
        statuses: evaluations.map((evaluation) => statusOf({ evaluation, admitted: false })),
      };
    }
    for (const item of measured) this.#charge({ item, now, leaseMs: request.leaseMs });
    for (const part of parts) this.#records.set(part.id, now + recordTtlMs(request.leaseMs));
    this.#sweepRecords(now);
    return {
      admitted: true,
      reservations: parts.map((part) => ({ id: part.id, entries: part.entries, reservedAt: now, tokens: part.tokens, usd: part.usd })),
      statuses: measured.map(({ entry, used }) =>
        statusOf({
          evaluation: { bucket: entry.bucket, amount: entry.amount, used, resetMs: fullResetAfterCharge({ entry, used, now }), retryAfterMs: null },
          admitted: true,
        }),
      ),
    };
  }

  async settle(reservation: Reservation, usage: Usage): Promise<boolean> {
    return this.#finish({ reservation, usage });
  }

  async release(reservation: Reservation): Promise<boolean> {
    return this.#finish({ reservation, usage: 'release' });
  }

  async finish({ reservations, usage }: FinishRequest): Promise<readonly boolean[]> {
    return reservations.map((reservation) => this.#finish({ reservation, usage }));
  }

  async close(): Promise<void> {}

  #finish({ reservation, usage }: { reservation: Reservation; usage: Usage | 'release' }): boolean {
    const expiresAt = this.#records.get(reservation.id);
    this.#records.delete(reservation.id);
    if (expiresAt === undefined || expiresAt <= this.#now()) return false;
    for (const entry of reservation.entries) {
      const key = counterKey(entry);
      const delta = settleDelta({ entry, usage });
      if (entry.bucket.kind === 'concurrent') {
        this.#gauges.get(key)?.delete(reservation.id);
      } else if (entry.bucket.kind === 'usd') {
        const used = this.#budgets.get(key);
        if (used !== undefined && delta !== 0) this.#budgets.set(key, used + delta);
      } else if (delta !== 0) {
        // Only a sub-window still inside the window is adjusted: one that aged out no longer counts.
        const counter = this.#windows.get(key);
        const slot = Number(entry.slot);
        const count = counter?.counts.get(slot);
        if (counter !== undefined && count !== undefined && slot >= counter.oldest) {
          counter.counts.set(slot, count + delta);
          counter.total += delta;
        }
      }
    }
    return true;
  }

  /** Expires what left the window or lease, then reads how much of the bucket is in use. */
  #measure({ entry, member, now }: { entry: ReservedEntry; member: string; now: number }): MeasuredEntry {
    const { bucket } = entry;
    const key = counterKey(entry);
    const limit = storeLimit(bucket);
    if (bucket.kind === 'concurrent') {
      const gauge = this.#gauges.get(key);
      if (gauge !== undefined) for (const [holder, expiry] of gauge) if (expiry <= now) gauge.delete(holder);
      return { entry, member, key, limit, used: gauge?.size ?? 0 };
    }
    if (bucket.kind === 'usd') return { entry, member, key, limit, used: this.#budgets.get(key) ?? 0 };
    const counter = this.#expireWindow({ key, now, windowMs: bucket.windowMs });
    return { entry, member, key, limit, used: counter?.total ?? 0 };
  }

  /** When a bucket of a refused reserve empties (`resetMs`) and when this entry would fit (`retryAfterMs`). */
  #evaluateRefused({ item, now }: { item: MeasuredEntry; now: number }): EntryEvaluation {
    const { entry, key, limit, used } = item;
    const { bucket, amount } = entry;
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
        const count = counter.counts.get(index) ?? 0;
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

  /** Drops sub-windows that left the window; returns the counter, or undefined if empty. */
  #expireWindow({ key, now, windowMs }: { key: string; now: number; windowMs: number }): WindowCounter | undefined {
    const counter = this.#windows.get(key);
    if (counter === undefined) return undefined;
    const oldestLive = Math.floor(now / subWindowMs(windowMs)) - SUB_WINDOWS_PER_WINDOW;
    if (counter.oldest >= oldestLive) return counter;
    for (const index of counter.counts.keys()) {
      if (index < oldestLive) {
        counter.total -= counter.counts.get(index) ?? 0;
        counter.counts.delete(index);
      }
    }
    counter.oldest = oldestLive;
    if (counter.counts.size === 0) {
      this.#windows.delete(key);
      return undefined;
    }
    return counter;
  }

  #charge({ item, now, leaseMs }: { item: MeasuredEntry; now: number; leaseMs: number }): void {
    const { entry, member, key } = item;
    if (entry.bucket.kind === 'concurrent') {
      const gauge = this.#gauges.get(key) ?? new Map<string, number>();
      gauge.set(member, now + leaseMs);
      this.#gauges.set(key, gauge);
    } else if (entry.bucket.kind === 'usd') {
      this.#budgets.set(key, (this.#budgets.get(key) ?? 0) + entry.amount);
    } else {
      const slot = Number(entry.slot);
      const counter = this.#windows.get(key) ?? { total: 0, oldest: slot, counts: new Map<number, number>() };
      counter.counts.set(slot, (counter.counts.get(slot) ?? 0) + entry.amount);
      counter.total += entry.amount;
      this.#windows.set(key, counter);
    }
  }

  /** Reservations nobody settled would otherwise accumulate forever. */
  #sweepRecords(now: number): void {
    this.#reservesSinceSweep += 1;
    if (this.#reservesSinceSweep < 1000) return;
    this.#reservesSinceSweep = 0;
    for (const [id, expiresAt] of this.#records) if (expiresAt <= now) this.#records.delete(id);
  }
}

/** After an admitted charge the newest usage is in the current sub-window (or period). */
function fullResetAfterCharge({ entry, used, now }: { entry: ReservedEntry; used: number; now: number }): number | null {
  const { bucket, amount } = entry;
  if (bucket.kind === 'concurrent') return null;
  if (used + amount === 0) return 0;
  if (bucket.kind === 'usd') return calendarPeriod({ now, period: bucket.period }).endsAt - now;
  // An upper bound when nothing was charged now: the newest usage is at most this recent.
  const width = subWindowMs(bucket.windowMs);
  return Math.ceil((Math.floor(now / width) + SUB_WINDOWS_PER_WINDOW + 1) * width - now);
}
