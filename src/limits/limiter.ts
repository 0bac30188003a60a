/**
 * Admission: one call's limits (key, team, org) and its deployment's quota reserved in one
 * atomic store operation, settled with the real usage when the call ends (principle 2).
 * A refusal becomes a SeedError with OpenAI's `x-ratelimit-*` headers; batch callers wait for
 * capacity up to their deadline instead; an unreachable store fails closed or open as
 * configured.
 */
import { SeedError, type ErrorCode } from '../errors.ts';
import { bucketsFor, MINUTE_MS, refusalMessage, type LimitScope } from './buckets.ts';
import { rateLimitHeaders } from './headers.ts';
import {
  LimitStoreUnavailableError,
  type BucketStatus,
  type LimitStore,
  type Refusal,
  type ReservePart,
  type Reservation,
  type ReserveResult,
  type Usage,
} from './types.ts';

export interface LimitsLogger {
  info(message: string, details?: Record<string, unknown>): void;
  warn(message: string, details?: Record<string, unknown>): void;
  error(message: string, details?: Record<string, unknown>): void;
}

const consoleLogger: LimitsLogger = {
  info: (message, details) => console.info(message, details ?? ''),
  warn: (message, details) => console.warn(message, details ?? ''),
  error: (message, details) => console.error(message, details ?? ''),
};

export interface LimiterOptions {
  store: LimitStore;
  /** What to do while the store is unreachable: refuse (503 limits_unavailable) or admit unchecked. */
  onUnavailable: 'closed' | 'open';
  logger?: LimitsLogger;
  /** Length of the rpm/tpm window; 60 s in production, shorter only in tests and benchmarks. */
  windowMs?: number;
  /** Lease of a concurrent slot; must exceed the longest call (server deadline + margin). */
  leaseMs?: number;
  /** How long a batch call waits when it has no deadline of its own. */
  batchMaxWaitMs?: number;
  now?: () => number;
  sleep?: (milliseconds: number, signal?: AbortSignal) => Promise<void>;
}

export interface AdmitRequest {
  /** The caller's limits: key, team, org (any subset). */
  readonly scopes: readonly LimitScope[];
  /** The deployment the first attempt goes to, with its quota (rpm, tpm, concurrent). */
  readonly deployment?: LimitScope;
  /** Estimated prompt + completion-cap tokens (see `estimate.ts`). */
  readonly tokens: number;
  /** Estimated cost in dollars, priced from `tokens`. */
  readonly usd: number;
  /** `batch` waits for capacity (until `deadlineAt`) instead of being refused. */
  readonly priority?: 'interactive' | 'batch';
  /** Epoch ms after which a waiting batch call gives up. */
  readonly deadlineAt?: number;
  readonly signal?: AbortSignal;
}

/** Capacity held by one call; settle or release it exactly once when the call ends. */
export interface Admission {
  /** Caller buckets (key, team, org); null when the caller has no limits or admission was unchecked. */
  readonly call: Reservation | null;
  /** Deployment buckets of the current attempt; replaced on failover. */
  readonly attempt: Reservation | null;
  /** The call's estimate, reused when a failover reserves another deployment. */
  readonly tokens: number;
  readonly usd: number;
  /** Bucket states after admission, for `x-ratelimit-*` headers on the response. */
  readonly statuses: readonly BucketStatus[];
  /** False when the store was unreachable and `onUnavailable: open` let the call through unchecked. */
  readonly enforced: boolean;
}

export type AdmitOutcome =
  | { readonly admitted: true; readonly admission: Admission }
  | { readonly admitted: false; readonly refusal: Refusal; readonly error: SeedError };

const REFUSAL_CODES: Record<Refusal['bucket']['kind'], ErrorCode> = {
  requests: 'rate_limit_exceeded',
  tokens: 'rate_limit_exceeded',
  concurrent: 'concurrency_limit_exceeded',
  usd: 'budget_exceeded',
};
/** A concurrent slot frees when some call ends, which nobody can predict; suggest this. */
const CONCURRENCY_RETRY_MS = 1_000;
const UNAVAILABLE_RETRY_MS = 1_000;

/**
 * @example
 * const limiter = new Limiter({ store, onUnavailable: 'closed' });
 * const admission = await limiter.admit({ scopes, deployment, tokens: estimate.totalTokens, usd });
 * try { … call upstream … ; await limiter.settle(admission, { tokens: usage.total_tokens, usd: cost }); }
 * catch (error) { if (neverSent) await limiter.release(admission); else await limiter.settle(admission, partialUsage); throw error; }
 */
export class Limiter {
  readonly #store: LimitStore;
  readonly #onUnavailable: 'closed' | 'open';
  readonly #logger: LimitsLogger;
  readonly #windowMs: number;
  readonly #leaseMs: number;
  readonly #batchMaxWaitMs: number;
  readonly #now: () => number;
  readonly #sleep: (milliseconds: number, signal?: AbortSignal) => Promise<void>;
  /** Start of the current outage, and how many calls it let through unchecked. */
  #outage: { since: number; uncheckedCalls: number } | null = null;

  constructor(options: LimiterOptions) {
    this.#store = options.store;
    this.#onUnavailable = options.onUnavailable;
    this.#logger = options.logger ?? consoleLogger;
    this.#windowMs = options.windowMs ?? MINUTE_MS;
    this.#leaseMs = options.leaseMs ?? 15 * MINUTE_MS;
    this.#batchMaxWaitMs = options.batchMaxWaitMs ?? MINUTE_MS;
    this.#now = options.now ?? Date.now;
    this.#sleep = options.sleep ?? sleep;
  }

  /** Reserves the call or throws its refusal as a SeedError (429 / 503). */
  async admit(request: AdmitRequest): Promise<Admission> {
    const outcome = await this.tryAdmit(request);
    if (!outcome.admitted) throw outcome.error;
    return outcome.admission;
  }

  /** Like `admit`, but a refusal is returned, so a router can see which bucket refused. */
  async tryAdmit(request: AdmitRequest): Promise<AdmitOutcome> {
    const callBuckets = request.scopes.flatMap((scope) => bucketsFor({ scope, windowMs: this.#windowMs }));
    const attemptBuckets = request.deployment === undefined ? [] : bucketsFor({ scope: request.deployment, windowMs: this.#windowMs });
    const parts: Array<ReservePart | null> = [callBuckets, attemptBuckets].map((buckets) =>
      buckets.length === 0 ? null : { buckets, tokens: request.tokens, usd: request.usd },
    );
    const deadlineAt = request.deadlineAt ?? this.#now() + this.#batchMaxWaitMs;
    let backoffMs = 25;
    for (;;) {
      const result = await this.#reserve(parts);
      if (result === 'unchecked') return { admitted: true, admission: this.#unchecked(request) };
      if (result.admitted) {
        const reservations = [...result.reservations];
        const admission: Admission = {
          call: parts[0] === null ? null : (reservations.shift() ?? null),
          attempt: parts[1] === null ? null : (reservations.shift() ?? null),
          tokens: request.tokens,
          usd: request.usd,
          statuses: result.statuses,
          enforced: true,
        };
        return { admitted: true, admission };
      }
      const refused = this.#refused(result);
      const waitMs = result.refusal.retryAfterMs ?? backoffMs;
      backoffMs = Math.min(backoffMs * 2, CONCURRENCY_RETRY_MS);
      const canWait = request.priority === 'batch' && !result.refusal.exceedsLimit && this.#now() + waitMs <= deadlineAt;
      if (!canWait) return refused;
      // Jitter so waiting batch calls do not all retry in the same millisecond.
      await this.#sleep(Math.max(5, waitMs) + Math.random() * Math.min(50, waitMs * 0.1), request.signal);
    }
  }

  /**
   * Moves the call to another deployment after a failed attempt: the old attempt is settled
   * with no usage if it reached the upstream (its request still counts) or released if not,
   * and the new deployment's quota is reserved. Never waits.
   */
  async switchDeployment({
    admission,
    deployment,
    previousAttempt,
  }: {
    admission: Admission;
    deployment: LimitScope;
    previousAttempt: 'sent' | 'not-sent';
  }): Promise<AdmitOutcome> {
    const buckets = bucketsFor({ scope: deployment, windowMs: this.#windowMs });
    const [, result] = await Promise.all([
      admission.attempt === null
        ? Promise.resolve()
        : previousAttempt === 'sent'
          ? this.#finish({ reservation: admission.attempt, usage: { tokens: 0, usd: 0 } })
          : this.#finish({ reservation: admission.attempt, usage: 'release' }),
      buckets.length === 0 ? Promise.resolve(null) : this.#reserve([{ buckets, tokens: admission.tokens, usd: admission.usd }]),
    ]);
    if (result === null) return { admitted: true, admission: { ...admission, attempt: null } };
    if (result === 'unchecked') return { admitted: true, admission: { ...admission, attempt: null, enforced: false } };
    if (!result.admitted) return this.#refused(result);
    return { admitted: true, admission: { ...admission, attempt: result.reservations[0] ?? null, statuses: result.statuses } };
  }

  /**
   * Replaces the estimate with the call's real usage (also after an abort or error once the
   * upstream was reached) and frees concurrent slots. Never throws: a failure is logged, and
   * the estimate stays charged until its window or lease ends.
   */
  async settle(admission: Admission, usage: Usage): Promise<void> {
    await Promise.all(
      [admission.call, admission.attempt].map((reservation) =>
        reservation === null ? undefined : this.#finish({ reservation, usage }),
      ),
    );
  }

  /** Refunds everything, the request count included: for a call that never reached an upstream. */
  async release(admission: Admission): Promise<void> {
    await Promise.all(
      [admission.call, admission.attempt].map((reservation) =>
        reservation === null ? undefined : this.#finish({ reservation, usage: 'release' }),
      ),
    );
  }

  async #reserve(parts: ReadonlyArray<ReservePart | null>): Promise<ReserveResult | 'unchecked'> {
    const present = parts.filter((part): part is ReservePart => part !== null);
    if (present.length === 0) return { admitted: true, reservations: [], statuses: [] };
    try {
      const result = await this.#store.reserve({ parts: present, leaseMs: this.#leaseMs });
      this.#recovered();
      return result;
    } catch (error) {
      if (!(error instanceof LimitStoreUnavailableError)) throw error;
      return this.#unavailable(error);
    }
  }

  async #finish({ reservation, usage }: { reservation: Reservation; usage: Usage | 'release' }): Promise<void> {
    try {
      if (usage === 'release') await this.#store.release(reservation);
      else await this.#store.settle(reservation, usage);
      this.#recovered();
    } catch (error) {
      if (error instanceof LimitStoreUnavailableError) {
        this.#noteOutage(error);
        return;
      }
      this.#logger.error('limits: settling a reservation failed; its estimate stays charged', {
        reservation: reservation.id,
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }

  #unavailable(error: LimitStoreUnavailableError): 'unchecked' {
    this.#noteOutage(error);
    if (this.#onUnavailable === 'closed') {
      throw new SeedError('limits_unavailable', 'Seed cannot check rate limits and budgets right now; try again shortly.', {
        retryAfterMs: UNAVAILABLE_RETRY_MS,
        cause: error,
      });
    }
    if (this.#outage !== null) this.#outage.uncheckedCalls += 1;
    return 'unchecked';
  }

  /** Logs the first failure of an outage only; every later one is part of the same outage. */
  #noteOutage(error: LimitStoreUnavailableError): void {
    if (this.#outage !== null) return;
    this.#outage = { since: this.#now(), uncheckedCalls: 0 };
    const consequence =
      this.#onUnavailable === 'closed'
        ? 'failing closed: calls are refused with limits_unavailable (503) until it is back'
        : 'failing open: calls are admitted without limits or budgets until it is back';
    this.#logger.warn(`limits: store unreachable, ${consequence} (onUnavailable: ${this.#onUnavailable})`, {
      error: error.message,
    });
  }

  #recovered(): void {
    if (this.#outage === null) return;
    this.#logger.info('limits: store reachable again; limits enforced', {
      outageMs: this.#now() - this.#outage.since,
      uncheckedCalls: this.#outage.uncheckedCalls,
    });
    this.#outage = null;
  }

  #unchecked(request: AdmitRequest): Admission {
    return { call: null, attempt: null, tokens: request.tokens, usd: request.usd, statuses: [], enforced: false };
  }

  #refused(result: Extract<ReserveResult, { admitted: false }>): Extract<AdmitOutcome, { admitted: false }> {
    const { refusal, statuses } = result;
    const retryAfterMs = refusal.retryAfterMs ?? CONCURRENCY_RETRY_MS;
    const error = new SeedError(REFUSAL_CODES[refusal.bucket.kind], refusalMessage({ refusal, retryAfterMs }), {
      ...(refusal.exceedsLimit ? {} : { retryAfterMs }),
      headers: rateLimitHeaders({ statuses, refused: refusal }),
    });
    return { admitted: false, refusal, error };
  }
}

function sleep(milliseconds: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, milliseconds);
    function onAbort(): void {
      clearTimeout(timer);
      reject(signal?.reason);
    }
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
