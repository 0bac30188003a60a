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
  type Bucket,
  type BucketStatus,
  type HeaderStatuses,
  type LimitStore,
  type Refusal,
  type ReservePart,
  type ReserveRequest,
  type Reservation,
  type ReserveResult,
  type Usage,
} from './types.ts';
import type { CallSignal } from '../abort.ts';

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
  sleep?: (milliseconds: number, signal?: CallSignal) => Promise<void>;
}

export interface AdmitRequest {
  /** The caller's limits: key, team, org (any subset). */
  readonly scopes: readonly LimitScope[];
  /** The deployment the first attempt goes to, with its quota (rpm, tpm, concurrent). */
  readonly deployment?: LimitScope;
  /**
   * Makes `deployment` an extra that rides on the caller's reservation, to spare the first
   * attempt a store operation of its own (see `admission.ts`): it is reserved only together with
   * caller buckets, and a refusal by its quota admits the caller alone (`attempt` null) at once,
   * leaving the deployment to `switchDeployment`, whose refusal a router answers by failing
   * over. A batch call so waits for the caller's limits only, never for a deployment's.
   * Without it, a refusal by the deployment's quota refuses the call.
   */
  readonly optionalDeployment?: boolean;
  /** Estimated prompt + completion-cap tokens (see `estimate.ts`). */
  readonly tokens: number;
  /** Estimated cost in dollars, priced from `tokens`. */
  readonly usd: number;
  /** `batch` waits for capacity (until `deadlineAt`) instead of being refused. */
  readonly priority?: 'interactive' | 'batch';
  /** Epoch ms after which a waiting batch call gives up. */
  readonly deadlineAt?: number;
  readonly signal?: CallSignal;
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
  /**
   * What the `x-ratelimit-*` headers report: the caller's (key, team, org) tightest requests and
   * tokens buckets after admission. A deployment's quota is shared by every caller and stays out
   * of them (docs/routing.md), so `switchDeployment` leaves them as they are.
   */
  readonly headerStatuses: HeaderStatuses;
  /** False when the store was unreachable and `onUnavailable: open` let the call through unchecked. */
  readonly enforced: boolean;
}

export type AdmitOutcome =
  | { readonly admitted: true; readonly admission: Admission }
  | { readonly admitted: false; readonly refusal: Refusal; readonly error: SeedError };

type Refused = Extract<AdmitOutcome, { admitted: false }>;

const REFUSAL_CODES: Record<Refusal['bucket']['kind'], ErrorCode> = {
  requests: 'rate_limit_exceeded',
  tokens: 'rate_limit_exceeded',
  concurrent: 'concurrency_limit_exceeded',
  usd: 'budget_exceeded',
};
/** A concurrent slot frees when some call ends, which nobody can predict; suggest this. */
const CONCURRENCY_RETRY_MS = 1_000;
const UNAVAILABLE_RETRY_MS = 1_000;
const NO_BUCKETS: readonly Bucket[] = Object.freeze([]);
/** Nothing for the headers to report: shared, frozen. */
export const NO_HEADER_STATUSES: HeaderStatuses = Object.freeze({ requests: undefined, tokens: undefined });
const NO_RESERVATIONS: readonly Reservation[] = Object.freeze([]);
const NO_PARTS: readonly ReservePart[] = Object.freeze([]);
const NO_USAGE: Usage = Object.freeze({ tokens: 0, usd: 0 });
/** A batch call's first wait when its refusal gives no retry time; doubled per refusal. */
const FIRST_BACKOFF_MS = 25;
/** `#afterReserve`'s answer when only the optional deployment refused: ask again without it. */
const WITHOUT_DEPLOYMENT = Symbol('without the optional deployment');
/** What one reserve means for a call: admitted, refused, or to be asked again without the optional deployment. */
type AdmitStep = Admission | Refused | typeof WITHOUT_DEPLOYMENT;

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
  readonly #sleep: (milliseconds: number, signal?: CallSignal) => Promise<void>;
  /** Start of the current outage, and how many calls had been admitted unchecked before it. */
  #outage: { since: number; uncheckedBefore: number } | null = null;
  /** Calls admitted unchecked (failing open) since start, over all outages. */
  #uncheckedCalls = 0;
  /**
   * Buckets derived from a scope (or a caller's list of scopes), kept per object: callers and
   * deployments pass the same frozen scopes on every call, and admission is the hot path.
   */
  readonly #scopeBuckets = new WeakMap<LimitScope, readonly Bucket[]>();
  readonly #scopeListBuckets = new WeakMap<readonly LimitScope[], readonly Bucket[]>();

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

  /**
   * For metrics: whether the limit store answered the last call that needed it (1) or the
   * limiter is in an outage (0), and how many calls were admitted unchecked while failing open.
   */
  stats(): { storeReachable: boolean; uncheckedCalls: number } {
    return { storeReachable: this.#outage === null, uncheckedCalls: this.#uncheckedCalls };
  }

  /** Reserves the call or throws its refusal as a SeedError (429 / 503). */
  admit(request: AdmitRequest): Promise<Admission> {
    try {
      return Promise.resolve(this.admitNow(request));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * `admit` for the gateway's hot path: answered without a promise when the store answers in
   * the same turn (`reserveNow`, the memory store) and nothing has to wait; a refusal is thrown
   * at once then. Each async layer on every call's path costs a promise, a suspended frame and a
   * turn of the microtask queue.
   */
  admitNow(request: AdmitRequest): Admission | Promise<Admission> {
    return this.#admit(request, 'throw');
  }

  /** Like `admit`, but a refusal is returned, so a router can see which bucket refused. */
  async tryAdmit(request: AdmitRequest): Promise<AdmitOutcome> {
    const result = await this.#admit(request, 'return');
    // A refusal has `admitted: false`; an admission has no `admitted` at all.
    return 'admitted' in result ? result : { admitted: true, admission: result };
  }

  /**
   * `admit` and `tryAdmit`: in this turn while the store answers in it and nothing has to wait;
   * the rest (a store with I/O, a batch call's waits) in `#admitLater`.
   */
  #admit(request: AdmitRequest, onRefusal: 'throw'): Admission | Promise<Admission>;
  #admit(request: AdmitRequest, onRefusal: 'return'): Admission | Refused | Promise<Admission | Refused>;
  #admit(request: AdmitRequest, onRefusal: 'throw' | 'return'): Admission | Refused | Promise<Admission | Refused> {
    const callBuckets = this.#bucketsOfScopes(request.scopes);
    // An optional deployment alone would only move its store operation from the attempt here.
    let attemptBuckets =
      request.deployment === undefined || (request.optionalDeployment === true && callBuckets.length === 0)
        ? NO_BUCKETS
        : this.#bucketsOf(request.deployment);
    for (;;) {
      const step = this.#pass(request, callBuckets, attemptBuckets);
      if (step instanceof Promise) return this.#admitLater(request, onRefusal, callBuckets, attemptBuckets, step);
      if (step === WITHOUT_DEPLOYMENT) {
        attemptBuckets = NO_BUCKETS;
        continue;
      }
      if (!('admitted' in step)) return step;
      // Refused: a batch call that may wait for capacity waits in `#admitLater`.
      const waitMs = this.#waitMs(request, step.refusal, FIRST_BACKOFF_MS, this.#deadlineOf(request));
      if (waitMs !== null) return this.#admitLater(request, onRefusal, callBuckets, attemptBuckets, waitMs);
      if (onRefusal === 'throw') throw step.error;
      return step;
    }
  }

  /**
   * Admission's loop once something has to be awaited: a store with I/O, or a batch call, which
   * waits for capacity (until its deadline) instead of being refused. `first` is the pass in
   * flight, or how long to wait before the next one. Each async layer that awaits another adds a
   * promise and a suspended frame (about 400 bytes) to the call.
   */
  async #admitLater(
    request: AdmitRequest,
    onRefusal: 'throw' | 'return',
    callBuckets: readonly Bucket[],
    attemptBuckets: readonly Bucket[],
    first: Promise<AdmitStep> | number,
  ): Promise<Admission | Refused> {
    const deadlineAt = this.#deadlineOf(request);
    let backoffMs = FIRST_BACKOFF_MS;
    let pending: AdmitStep | Promise<AdmitStep>;
    if (typeof first === 'number') {
      backoffMs = Math.min(backoffMs * 2, CONCURRENCY_RETRY_MS);
      await this.#pause(first, request.signal);
      pending = this.#pass(request, callBuckets, attemptBuckets);
    } else pending = first;
    for (;;) {
      const step = await pending;
      if (step === WITHOUT_DEPLOYMENT) {
        attemptBuckets = NO_BUCKETS;
        pending = this.#pass(request, callBuckets, attemptBuckets);
        continue;
      }
      if (!('admitted' in step)) return step;
      const waitMs = this.#waitMs(request, step.refusal, backoffMs, deadlineAt);
      if (waitMs === null) {
        if (onRefusal === 'throw') throw step.error;
        return step;
      }
      backoffMs = Math.min(backoffMs * 2, CONCURRENCY_RETRY_MS);
      await this.#pause(waitMs, request.signal);
      pending = this.#pass(request, callBuckets, attemptBuckets);
    }
  }

  /**
   * One reserve of the call and what its answer means (see `#afterReserve`): in this turn when the
   * store answers in it (`reserveNow`), else a promise.
   */
  #pass(request: AdmitRequest, callBuckets: readonly Bucket[], attemptBuckets: readonly Bucket[]): AdmitStep | Promise<AdmitStep> {
    const parts = partsOf({ callBuckets, attemptBuckets, tokens: request.tokens, usd: request.usd });
    if (parts.length === 0) return this.#admitted(request, callBuckets, attemptBuckets, null);
    const store = this.#store;
    const reserve: ReserveRequest = { parts, leaseMs: this.#leaseMs, report: 'headers' };
    let reserving: ReserveResult | Promise<ReserveResult>;
    try {
      reserving = store.reserveNow === undefined ? store.reserve(reserve) : store.reserveNow(reserve);
    } catch (error) {
      return this.#unreachable(request, error);
    }
    if (reserving instanceof Promise) {
      return reserving.then(
        (result) => this.#afterReserve(request, callBuckets, attemptBuckets, result),
        (error: unknown) => this.#unreachable(request, error),
      );
    }
    return this.#afterReserve(request, callBuckets, attemptBuckets, reserving);
  }

  /** A batch call's wait before asking again, with jitter so waiting calls do not all retry in the same millisecond. */
  #pause(waitMs: number, signal: CallSignal | undefined): Promise<void> {
    return this.#sleep(Math.max(5, waitMs) + Math.random() * Math.min(50, waitMs * 0.1), signal);
  }

  /** What a reserve's result means for the call: admitted, refused, or to be asked again without the optional deployment. */
  #afterReserve(
    request: AdmitRequest,
    callBuckets: readonly Bucket[],
    attemptBuckets: readonly Bucket[],
    result: ReserveResult,
  ): AdmitStep {
    this.#recovered();
    if (result.admitted) return this.#admitted(request, callBuckets, attemptBuckets, result);
    const { refusal } = result;
    const optional = request.optionalDeployment === true;
    if (optional && attemptBuckets.some((bucket) => bucket.id === refusal.bucket.id)) {
      // Only the deployment refused: admit the caller alone; the router decides what the
      // deployment's refusal means (another deployment, or a wait) when it reserves it.
      return WITHOUT_DEPLOYMENT;
    }
    // With the deployment optional, a refusal by the caller speaks of the caller's buckets
    // alone, as if the deployment had not been asked (statuses come in reserve order).
    const statuses = optional ? result.statuses.slice(0, callBuckets.length) : result.statuses;
    return this.#refused({ refusal, statuses });
  }

  /** The admission of an admitted reserve (`result`), or of a call nothing limits (null). */
  #admitted(
    request: AdmitRequest,
    callBuckets: readonly Bucket[],
    attemptBuckets: readonly Bucket[],
    result: Extract<ReserveResult, { admitted: true }> | null,
  ): Admission {
    if (result === null) {
      return { call: null, attempt: null, tokens: request.tokens, usd: request.usd, headerStatuses: NO_HEADER_STATUSES, enforced: true };
    }
    const { reservations } = result;
    const first = reservations[0] ?? null;
    return {
      call: callBuckets.length === 0 ? null : first,
      attempt: attemptBuckets.length === 0 ? null : callBuckets.length === 0 ? first : (reservations[1] ?? null),
      tokens: request.tokens,
      usd: request.usd,
      headerStatuses: callBuckets.length === 0 ? NO_HEADER_STATUSES : (result.headerStatuses[0] ?? NO_HEADER_STATUSES),
      enforced: true,
    };
  }

  /** How long a refused call waits before asking again, or null when it may not wait (not a batch call, over its limit, or past its deadline). */
  #waitMs(request: AdmitRequest, refusal: Refusal, backoffMs: number, deadlineAt: number): number | null {
    const waitMs = refusal.retryAfterMs ?? backoffMs;
    return request.priority === 'batch' && !refusal.exceedsLimit && this.#now() + waitMs <= deadlineAt ? waitMs : null;
  }

  #deadlineOf(request: AdmitRequest): number {
    return request.deadlineAt ?? this.#now() + this.#batchMaxWaitMs;
  }

  /** A reserve that threw: an unreachable store fails closed (throws) or open (admits unchecked); anything else is rethrown. */
  #unreachable(request: AdmitRequest, error: unknown): Admission {
    if (!(error instanceof LimitStoreUnavailableError)) throw error;
    this.#unavailable(error);
    return this.#unchecked(request);
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
    const buckets = this.#bucketsOf(deployment);
    const [, result] = await Promise.all([
      admission.attempt === null
        ? Promise.resolve()
        : this.#finish({ call: null, attempt: admission.attempt }, previousAttempt === 'sent' ? NO_USAGE : 'release'),
      buckets.length === 0 ? Promise.resolve(null) : this.#reserve([{ buckets, tokens: admission.tokens, usd: admission.usd }]),
    ]);
    if (result === null) return { admitted: true, admission: { ...admission, attempt: null } };
    if (result === 'unchecked') return { admitted: true, admission: { ...admission, attempt: null, enforced: false } };
    if (!result.admitted) return this.#refused(result);
    return { admitted: true, admission: { ...admission, attempt: result.reservations[0] ?? null } };
  }

  /**
   * Replaces the estimate with the call's real usage (also after an abort or error once the
   * upstream was reached) and frees concurrent slots. Never throws: a failure is logged, and
   * the estimate stays charged until its window or lease ends. Done in this turn, without a
   * promise, when the store answers in it (`finishNow`).
   */
  settle(admission: Admission, usage: Usage): void | Promise<void> {
    return this.#finish(admission, usage);
  }

  /** Refunds everything, the request count included: for a call that never reached an upstream. */
  release(admission: Admission): void | Promise<void> {
    return this.#finish(admission, 'release');
  }

  #bucketsOf(scope: LimitScope): readonly Bucket[] {
    let buckets = this.#scopeBuckets.get(scope);
    if (buckets === undefined) {
      buckets = Object.freeze(bucketsFor({ scope, windowMs: this.#windowMs }));
      this.#scopeBuckets.set(scope, buckets);
    }
    return buckets;
  }

  #bucketsOfScopes(scopes: readonly LimitScope[]): readonly Bucket[] {
    if (scopes.length === 0) return NO_BUCKETS;
    if (scopes.length === 1) return this.#bucketsOf(scopes[0] as LimitScope);
    let buckets = this.#scopeListBuckets.get(scopes);
    if (buckets === undefined) {
      buckets = Object.freeze(scopes.flatMap((scope) => this.#bucketsOf(scope)));
      this.#scopeListBuckets.set(scopes, buckets);
    }
    return buckets;
  }

  /** For `switchDeployment`; `#admit` awaits the store itself. */
  async #reserve(parts: readonly ReservePart[]): Promise<ReserveResult | 'unchecked'> {
    try {
      const result = await this.#store.reserve({ parts, leaseMs: this.#leaseMs, report: 'headers' });
      this.#recovered();
      return result;
    } catch (error) {
      if (!(error instanceof LimitStoreUnavailableError)) throw error;
      return this.#unavailable(error);
    }
  }

  /** Settles (or releases) a call's reservations in one store operation; never throws (see `settle`). */
  #finish(admission: Pick<Admission, 'call' | 'attempt'>, usage: Usage | 'release'): void | Promise<void> {
    const reservations = reservationsOf(admission);
    if (reservations.length === 0) return;
    const finishNow = this.#store.finishNow;
    if (finishNow === undefined) return this.#finishLater(reservations, usage);
    try {
      finishNow.call(this.#store, { reservations, usage });
      this.#recovered();
    } catch (error) {
      this.#finishFailed(reservations, error);
    }
  }

  async #finishLater(reservations: readonly Reservation[], usage: Usage | 'release'): Promise<void> {
    try {
      await this.#store.finish({ reservations, usage });
      this.#recovered();
    } catch (error) {
      this.#finishFailed(reservations, error);
    }
  }

  #finishFailed(reservations: readonly Reservation[], error: unknown): void {
    if (error instanceof LimitStoreUnavailableError) {
      this.#noteOutage(error);
      return;
    }
    this.#logger.error('limits: settling a reservation failed; its estimate stays charged', {
      reservations: reservations.map((reservation) => reservation.id),
      error: error instanceof Error ? error.message : String(error),
    });
  }

  #unavailable(error: LimitStoreUnavailableError): 'unchecked' {
    this.#noteOutage(error);
    if (this.#onUnavailable === 'closed') {
      throw new SeedError('limits_unavailable', 'Seed cannot check rate limits and budgets right now; try again shortly.', {
        retryAfterMs: UNAVAILABLE_RETRY_MS,
        cause: error,
      });
    }
    this.#uncheckedCalls += 1;
    return 'unchecked';
  }

  /** Logs the first failure of an outage only; every later one is part of the same outage. */
  #noteOutage(error: LimitStoreUnavailableError): void {
    if (this.#outage !== null) return;
    this.#outage = { since: this.#now(), uncheckedBefore: this.#uncheckedCalls };
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
      uncheckedCalls: this.#uncheckedCalls - this.#outage.uncheckedBefore,
    });
    this.#outage = null;
  }

  #unchecked(request: AdmitRequest): Admission {
    return { call: null, attempt: null, tokens: request.tokens, usd: request.usd, headerStatuses: NO_HEADER_STATUSES, enforced: false };
  }

  #refused({ refusal, statuses }: { refusal: Refusal; statuses: readonly BucketStatus[] }): Refused {
    const retryAfterMs = refusal.retryAfterMs ?? CONCURRENCY_RETRY_MS;
    const error = new SeedError(REFUSAL_CODES[refusal.bucket.kind], refusalMessage({ refusal, retryAfterMs }), {
      ...(refusal.exceedsLimit ? {} : { retryAfterMs }),
      headers: rateLimitHeaders({ statuses, refused: refusal }),
    });
    return { admitted: false, refusal, error };
  }
}

/** The reservations an admission holds: the caller's, then the current attempt's. */
function reservationsOf({ call, attempt }: Pick<Admission, 'call' | 'attempt'>): readonly Reservation[] {
  if (call === null) return attempt === null ? NO_RESERVATIONS : [attempt];
  return attempt === null ? [call] : [call, attempt];
}

/** What one reserve asks for: the caller's buckets, then the deployment's; sized exactly. */
function partsOf({
  callBuckets,
  attemptBuckets,
  tokens,
  usd,
}: {
  callBuckets: readonly Bucket[];
  attemptBuckets: readonly Bucket[];
  tokens: number;
  usd: number;
}): readonly ReservePart[] {
  if (callBuckets.length === 0) return attemptBuckets.length === 0 ? NO_PARTS : [{ buckets: attemptBuckets, tokens, usd }];
  const callPart: ReservePart = { buckets: callBuckets, tokens, usd };
  return attemptBuckets.length === 0 ? [callPart] : [callPart, { buckets: attemptBuckets, tokens, usd }];
}

function sleep(milliseconds: number, signal?: CallSignal): Promise<void> {
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
