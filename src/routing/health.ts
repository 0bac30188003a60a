/**
 * What the router knows about each deployment between calls: consecutive failures (a circuit
 * breaker with cooldown), when an upstream asked us to wait (`retry-after`), and the quota it
 * last reported (`x-ratelimit-remaining-*`). In memory, per process: this is advice for
 * choosing, not a limit (limits are enforced by the limiter), so replicas need not agree.
 */
import type { RateLimitSnapshot } from '../providers/types.ts';

export interface HealthOptions {
  failureThreshold: number;
  cooldownMs: number;
  maxCooldownMs: number;
}

interface DeploymentState {
  consecutiveFailures: number;
  /** Until when the deployment is skipped (circuit open or upstream asked to wait). */
  unavailableUntil: number;
  /** Length of the next cooldown; doubles while probes keep failing. */
  nextCooldownMs: number;
  /** Whether the last cooldown came from the breaker (vs. a retry-after). */
  circuitOpen: boolean;
  quota: RateLimitSnapshot | undefined;
  quotaObservedAt: number;
}

export interface DeploymentHealthView {
  deployment: string;
  state: 'healthy' | 'cooldown' | 'waiting';
  consecutiveFailures: number;
  availableInMs: number;
}

export class HealthTracker {
  readonly #options: HealthOptions;
  readonly #now: () => number;
  readonly #states = new Map<string, DeploymentState>();

  constructor(input: { options: HealthOptions; now: () => number }) {
    this.#options = input.options;
    this.#now = input.now;
  }

  #state(deployment: string): DeploymentState {
    let state = this.#states.get(deployment);
    if (!state) {
      state = {
        consecutiveFailures: 0,
        unavailableUntil: 0,
        nextCooldownMs: this.#options.cooldownMs,
        circuitOpen: false,
        quota: undefined,
        quotaObservedAt: 0,
      };
      this.#states.set(deployment, state);
    }
    return state;
  }

  /** Milliseconds until the deployment may be tried again; 0 when it may be tried now. */
  waitMs(deployment: string): number {
    const state = this.#states.get(deployment);
    if (!state) return 0;
    return Math.max(0, state.unavailableUntil - this.#now());
  }

  /**
   * Whether the upstream's last reported quota says it is exhausted and not yet reset: the
   * router prefers other deployments then, moving traffic before the upstream refuses it.
   */
  quotaExhausted(deployment: string): boolean {
    const state = this.#states.get(deployment);
    const quota = state?.quota;
    if (!state || !quota) return false;
    const elapsed = this.#now() - state.quotaObservedAt;
    const requestsOut = quota.remainingRequests === 0 && elapsed < (quota.resetRequestsMs ?? 0);
    const tokensOut = quota.remainingTokens === 0 && elapsed < (quota.resetTokensMs ?? 0);
    return requestsOut || tokensOut;
  }

  /** Remaining share of the upstream's reported request quota, 1 when unknown. */
  quotaShare(deployment: string): number {
    const quota = this.#states.get(deployment)?.quota;
    if (!quota) return 1;
    const shares: number[] = [];
    if (quota.limitRequests && quota.remainingRequests !== undefined) shares.push(quota.remainingRequests / quota.limitRequests);
    if (quota.limitTokens && quota.remainingTokens !== undefined) shares.push(quota.remainingTokens / quota.limitTokens);
    return shares.length === 0 ? 1 : Math.max(0, Math.min(1, ...shares));
  }

  recordSuccess(input: { deployment: string; quota?: RateLimitSnapshot }): void {
    const state = this.#state(input.deployment);
    state.consecutiveFailures = 0;
    state.nextCooldownMs = this.#options.cooldownMs;
    state.circuitOpen = false;
    state.unavailableUntil = 0;
    this.#observeQuota(state, input.quota);
  }

  /** The deployment refused for quota: skip it until `waitMs` has passed, without opening the circuit. */
  recordWait(input: { deployment: string; waitMs: number }): void {
    const state = this.#state(input.deployment);
    state.unavailableUntil = Math.max(state.unavailableUntil, this.#now() + input.waitMs);
  }

  /**
   * Records a failed attempt. `retryAfterMs` (an upstream's explicit wait) makes the deployment
   * unavailable for that long; reaching the failure threshold opens the circuit for a cooldown
   * that doubles each time it re-opens, up to the maximum.
   */
  recordFailure(input: { deployment: string; retryAfterMs?: number; quota?: RateLimitSnapshot }): void {
    const state = this.#state(input.deployment);
    const now = this.#now();
    state.consecutiveFailures += 1;
    this.#observeQuota(state, input.quota);
    if (input.retryAfterMs !== undefined && input.retryAfterMs > 0) {
      state.unavailableUntil = Math.max(state.unavailableUntil, now + input.retryAfterMs);
    }
    if (state.consecutiveFailures >= this.#options.failureThreshold) {
      state.unavailableUntil = Math.max(state.unavailableUntil, now + state.nextCooldownMs);
      state.circuitOpen = true;
      state.nextCooldownMs = Math.min(this.#options.maxCooldownMs, state.nextCooldownMs * 2);
      // Half-open: after the cooldown one more failure re-opens the circuit at once.
      state.consecutiveFailures = this.#options.failureThreshold - 1;
    }
  }

  #observeQuota(state: DeploymentState, quota: RateLimitSnapshot | undefined): void {
    if (!quota || Object.keys(quota).length === 0) return;
    state.quota = quota;
    state.quotaObservedAt = this.#now();
  }

  view(deployment: string): DeploymentHealthView {
    const state = this.#states.get(deployment);
    const wait = this.waitMs(deployment);
    return {
      deployment,
      state: wait === 0 ? 'healthy' : state?.circuitOpen ? 'cooldown' : 'waiting',
      consecutiveFailures: state?.consecutiveFailures ?? 0,
      availableInMs: wait,
    };
  }
}
