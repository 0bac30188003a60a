/**
 * Runs one call across a route's deployments and its fallbacks: weighted choice among healthy
 * deployments, preferring those with quota left; on a retryable failure, another deployment at
 * once, or the same one after an exponential backoff with full jitter that honours the
 * upstream's `retry-after`; every attempt within the call's one deadline.
 */
import { SeedError, type UpstreamQuota } from '../errors.ts';
import type { HealthTracker } from './health.ts';
import { routePlan, type Deployment, type Route, type RouteTable } from './route-table.ts';
import { CallAbort, type CallSignal } from '../abort.ts';

export interface Attempt {
  route: Route;
  deployment: Deployment;
  /** 1-based attempt number within the call. */
  number: number;
  /** Aborts on client disconnect or when the call's deadline passes. */
  signal: CallSignal;
  /** Time left before the deadline, in milliseconds. */
  timeoutMs: number;
}

/** What an attempt function reports besides its value, so health and quotas stay current. */
export interface AttemptOutcome<T> {
  value: T;
  quota?: UpstreamQuota;
}

export type RoutedResult<T> =
  | { ok: true; value: T; route: Route; deployment: Deployment; attempts: number }
  | { ok: false; error: SeedError; route: Route | undefined; deployment: Deployment | undefined; attempts: number };

export interface RouterDependencies {
  table: RouteTable;
  health: HealthTracker;
  now: () => number;
  random: () => number;
  sleep: (milliseconds: number, signal: CallSignal) => Promise<void>;
}

export interface RouteCallInput<T> {
  routeName: string;
  /** The client's signal; the router adds the deadline to it. */
  signal: CallSignal;
  /**
   * Aborts `signal` itself. Given, the router aborts the caller's signal at the deadline instead
   * of creating a second signal linked to it (and a listener on the first); the signal's reason
   * then tells a deadline from a client.
   */
  abort?: (reason: SeedError) => void;
  /** Absolute deadline (epoch ms) for the whole call. */
  deadlineAt: number;
  /**
   * Why a deployment may not serve this call (purpose, region, capability), or null when it
   * may. Excluded deployments are never tried; if none is left the call fails with the reason.
   */
  exclude?: (deployment: Deployment, route: Route) => SeedError | null;
  run: (attempt: Attempt) => Promise<AttemptOutcome<T>>;
  /** Longest wait for a deployment to become available again; default: the route's `maxRetryAfterMs`. */
  maxWaitMs?: number;
  /**
   * What the call charges an upstream's token quota (prompt estimate + max_tokens), asked for
   * only when a deployment's upstream has reported one: the router then holds the call until
   * that quota has room, rather than send it to be refused.
   */
  tokens?: () => number;
}

/** Refusals for quota (the upstream's 429, or Seed's own reservation of the deployment's quota). */
const QUOTA_REFUSALS = new Set(['upstream_rate_limited', 'rate_limit_exceeded', 'concurrency_limit_exceeded']);
/** How long to leave a deployment alone after a 429 that did not say how long. */
const DEFAULT_QUOTA_WAIT_MS = 1_000;

/**
 * Errors that say nothing about the deployment's health: the request itself was at fault, or
 * the call was stopped on this side (the client left, the deadline passed, Seed is shutting down).
 */
const REQUEST_FAULTS = new Set(['upstream_bad_request', 'invalid_request', 'client_closed_request', 'deadline_exceeded', 'shutting_down']);

interface Candidate {
  route: Route;
  deployment: Deployment;
  weight: number;
}

export function createRouter(dependencies: RouterDependencies) {
  const { table, health, now, random, sleep } = dependencies;
  // A route's plan and candidates depend on the table only, which a router never changes: they
  // are built once per route name instead of on every call (they were most of what routing
  // allocated per call).
  const plans = new Map<string, { plan: Route[]; candidates: Candidate[] }>();
  const planOf = (routeName: string) => {
    let planned = plans.get(routeName);
    if (!planned) {
      const plan = routePlan(table, routeName);
      const candidates: Candidate[] = [];
      for (const route of plan) for (const target of route.targets) candidates.push({ route, deployment: target.deployment, weight: target.weight });
      planned = { plan, candidates };
      plans.set(routeName, planned);
    }
    return planned;
  };

  function pickWeighted<Candidate extends { deployment: Deployment; weight: number }>(pool: Candidate[]): Candidate {
    // Only deployments whose quota, carried forward, has room for the call get here (`readyChoice`);
    // among them, the more of its reported quota a deployment has left, the more traffic it takes.
    const weights = pool.map((candidate) => candidate.weight * Math.max(0.05, health.quotaShare(candidate.deployment.name)));
    const total = weights.reduce((sum, weight) => sum + weight, 0);
    let point = random() * total;
    for (let index = 0; index < pool.length; index++) {
      point -= weights[index] as number;
      if (point <= 0) return pool[index] as Candidate;
    }
    return pool[pool.length - 1] as Candidate;
  }

  /**
   * A weighted choice among the route's untried candidates that can take traffic now, or
   * undefined. A route with one such candidate (the usual case) needs no list and no weights.
   */
  function readyChoice(candidates: readonly Candidate[], route: Route, tried: ReadonlySet<string>, tokens: (() => number) | undefined): Candidate | undefined {
    let only: Candidate | undefined;
    let ready: Candidate[] | undefined;
    for (const candidate of candidates) {
      if (candidate.route !== route || tried.has(candidate.deployment.name) || health.waitMs(candidate.deployment.name, tokens) !== 0) continue;
      if (only === undefined) only = candidate;
      else (ready ??= [only]).push(candidate);
    }
    return ready ? pickWeighted(ready) : only;
  }

  async function route<T>(input: RouteCallInput<T>): Promise<RoutedResult<T>> {
    const first = table.routes.get(input.routeName);
    if (!first) {
      return {
        ok: false,
        error: new SeedError('model_not_found', `The model \`${input.routeName}\` does not exist or you do not have access to it.`, {
          param: 'model',
        }),
        route: undefined,
        deployment: undefined,
        attempts: 0,
      };
    }
    const { plan, candidates: planned } = planOf(input.routeName);
    let candidates = planned;
    let exclusion: SeedError | null = null;
    if (input.exclude) {
      // A new list only when something is excluded.
      for (let index = 0; index < planned.length; index += 1) {
        const candidate = planned[index] as Candidate;
        const reason = input.exclude(candidate.deployment, candidate.route);
        if (reason) {
          exclusion ??= reason;
          if (candidates === planned) candidates = planned.slice(0, index);
        } else if (candidates !== planned) candidates.push(candidate);
      }
    }
    if (candidates.length === 0) {
      return { ok: false, error: exclusion ?? noDeployment(first), route: first, deployment: undefined, attempts: 0 };
    }

    // One signal per call, aborted by the client or by the deadline timer: the caller's own when
    // it lets the router abort it, otherwise one linked to it (src/abort.ts; Node 20's
    // AbortSignal.any cost more than the rest of the router per call in a profile).
    const remaining = () => input.deadlineAt - now();
    const { signal, abort } = input.abort ? { signal: input.signal, abort: input.abort } : linkedSignal(input.signal);
    let deadlinePassed = false;
    const timer = setTimeout(() => {
      // Already aborted by the client: that stays the reason.
      if (signal.aborted) return;
      deadlinePassed = true;
      abort(new SeedError('deadline_exceeded', `The call to ${first.name} did not finish before its deadline.`));
    }, Math.max(0, remaining()));
    const clientClosed = () => input.signal.aborted && !deadlinePassed;
    // No upstream has reported a quota yet (the usual case without rate-limit headers): no quota steps.
    const tokens = health.quotasReported ? input.tokens : undefined;
    const tried = new Set<string>();
    const retry = first.retry;
    let attempts = 0;
    let lastError: SeedError | undefined;
    let last: { route: Route; deployment: Deployment } | undefined;

    try {
      while (attempts < retry.maxAttempts) {
        if (signal.aborted) break;
        // 1. an untried deployment that can take traffic now, in plan order (route, then fallbacks)
        let choice: Candidate | undefined;
        for (const route of plan) {
          choice = readyChoice(candidates, route, tried, tokens);
          if (choice) break;
        }
        // 2. otherwise the one that becomes available soonest, after a backoff
        if (!choice) {
          const soonest = [...candidates].sort(
            (left, right) => health.waitMs(left.deployment.name, tokens) - health.waitMs(right.deployment.name, tokens),
          )[0] as (typeof candidates)[number];
          const view = health.view(soonest.deployment.name, tokens);
          const backoff = attempts === 0 ? 0 : jitteredBackoff(retry, attempts, random);
          const wait = Math.max(backoff, view.availableInMs);
          const waitingOnBreaker = view.state === 'cooldown' && view.availableInMs > backoff;
          const maxWait = input.maxWaitMs ?? retry.maxRetryAfterMs;
          if (waitingOnBreaker || wait >= remaining() || wait > maxWait) {
            lastError = waitError({ route: first, waitMs: view.availableInMs, lastError, breaker: view.state === 'cooldown' });
            break;
          }
          if (wait > 0) await sleep(wait, signal);
          if (signal.aborted) break;
          // Calls that waited for the same quota wake together: the ones the quota has room for
          // go, and the rest wait again rather than all be sent to be refused.
          if (health.quotasReported && health.waitMs(soonest.deployment.name, tokens) > 0) continue;
          choice = soonest;
        }

        attempts += 1;
        tried.add(choice.deployment.name);
        last = choice;
        const sent = health.quotasReported ? health.dispatched(choice.deployment.name, tokens) : undefined;
        // When the deadline, not the deployment's own timeout, bounds this attempt, its timeout
        // is the deadline passing, whichever timer fires first.
        const boundByDeadline = remaining() <= (choice.deployment.timeoutMs ?? Infinity);
        try {
          const outcome = await input.run({
            route: choice.route,
            deployment: choice.deployment,
            number: attempts,
            signal,
            timeoutMs: Math.max(1, Math.min(choice.deployment.timeoutMs ?? Infinity, remaining())),
          });
          health.recordSuccess({ deployment: choice.deployment.name, quota: outcome.quota, sent });
          return { ok: true, value: outcome.value, route: choice.route, deployment: choice.deployment, attempts };
        } catch (thrown) {
          const thrownError = asSeedError(thrown);
          const pastDeadline =
            !clientClosed() &&
            (deadlinePassed || (boundByDeadline && thrownError.code === 'upstream_timeout'));
          const error = pastDeadline ? deadlineError(first) : thrownError;
          lastError = error;
          if (QUOTA_REFUSALS.has(error.code)) {
            // Out of quota is not unhealthy: wait out the quota, but do not open the circuit.
            health.recordWait({ deployment: choice.deployment.name, waitMs: error.retryAfterMs ?? DEFAULT_QUOTA_WAIT_MS, quota: error.upstreamQuota, sent });
          } else if (!REQUEST_FAULTS.has(error.code)) {
            health.recordFailure({
              deployment: choice.deployment.name,
              ...(error.retryAfterMs !== undefined ? { retryAfterMs: error.retryAfterMs } : {}),
            });
          }
          if (!error.retryable || REQUEST_FAULTS.has(error.code)) break;
        }
      }
    } finally {
      clearTimeout(timer);
    }

    if (clientClosed()) {
      // The client left, or the gateway stopped the call (shutting down): the caller's reason.
      const reason: unknown = input.signal.reason;
      lastError = reason instanceof SeedError ? reason : new SeedError('client_closed_request', 'The client closed the request.');
    } else if (deadlinePassed) {
      lastError = deadlineError(first);
    }
    return {
      ok: false,
      error: lastError ?? noDeployment(first),
      route: last?.route ?? first,
      deployment: last?.deployment,
      attempts,
    };
  }

  return { route };
}

export type Router = ReturnType<typeof createRouter>;

/**
 * A signal of the router's own that follows `client`. The link stays after `route` returns: a
 * stream's body is still read with this signal, and a client that leaves must stop it.
 */
function linkedSignal(client: CallSignal): { signal: CallSignal; abort: (reason: SeedError) => void } {
  const linked = new CallAbort();
  if (client.aborted) linked.abort(client.reason);
  else client.addEventListener('abort', () => linked.abort(client.reason), { once: true });
  return { signal: linked, abort: (reason) => linked.abort(reason) };
}

/** Exponential backoff with full jitter: uniform in [0, min(max, initial·2^(n-1))]. */
export function jitteredBackoff(policy: { initialDelayMs: number; maxDelayMs: number }, retryNumber: number, random: () => number): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.max(0, retryNumber - 1));
  return Math.floor(random() * ceiling);
}

function asSeedError(thrown: unknown): SeedError {
  if (thrown instanceof SeedError) return thrown;
  return new SeedError('upstream_error', 'The upstream call failed unexpectedly.', { cause: thrown });
}

function deadlineError(route: Route): SeedError {
  return new SeedError('deadline_exceeded', `The call to ${route.name} did not finish within its deadline of ${route.timeoutMs} ms.`);
}

function noDeployment(route: Route): SeedError {
  return new SeedError('no_healthy_deployment', `No deployment of ${route.name} can serve this call.`);
}

function waitError(input: { route: Route; waitMs: number; lastError: SeedError | undefined; breaker: boolean }): SeedError {
  // When this call's own last attempt failed, its error says why more clearly than the breaker.
  if (input.lastError) return input.lastError;
  const seconds = Math.ceil(input.waitMs / 1000);
  if (!input.breaker) {
    return new SeedError(
      'upstream_rate_limited',
      `Every deployment of ${input.route.name} is out of quota; try again in ${seconds} s.`,
      { retryAfterMs: input.waitMs },
    );
  }
  return new SeedError(
    'no_healthy_deployment',
    `Every deployment of ${input.route.name} is cooling down after failures; try again in ${seconds} s.`,
    { retryAfterMs: input.waitMs },
  );
}
