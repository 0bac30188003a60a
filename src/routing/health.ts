/**
 * What the router knows about each deployment between calls: consecutive failures (a circuit
 * breaker with cooldown), when an upstream asked us to wait (`retry-after`), and the quota it
 * last reported (`x-ratelimit-remaining-*`). In memory, per process: this is advice for
 * choosing, not a limit (limits are enforced by the limiter), so replicas need not agree.
 *
 * The reported quota is also carried forward between reports, so the router can hold a call
 * the upstream would refuse (route before the 429) even when the deployment is the only one:
 * what is left is the last report, minus what this process has sent since (`dispatched`), plus
 * what the upstream gives back meanwhile. Upstreams refill in two ways — OpenAI and Anthropic
 * continuously (their reset is when the quota is whole again), Azure-style fixed windows at
 * once when the window turns — and a report does not say which. The refill is taken as
 * continuous at the rate the report implies ((limit − remaining) ÷ reset), which waits no longer
 * than either upstream needs, until a 429 asks to wait for the whole reset: that quota refills in
 * windows, and from then on a call it has no room for waits for the reset. A report describes
 * the quota when its attempt arrived, so what was sent after that attempt still comes off it.
 * An upstream that reports no reset time (Azure) is never waited for on its report, only on its
 * 429s.
 */
import type { UpstreamQuota } from '../errors.ts';

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
  /** The request and token quotas carried forward from the last report; undefined when not reported. */
  requests: QuotaEstimate | undefined;
  tokens: QuotaEstimate | undefined;
}

/** One quota (requests or tokens) as last reported, carried forward. */
interface QuotaEstimate {
  /** What is left at `at`: the report, minus what was sent since, plus the refill; may be below 0. */
  left: number;
  limit: number;
  /** Refill per millisecond; undefined when the upstream gave no reset time. */
  refillPerMs: number | undefined;
  at: number;
  /** When the reported quota is whole again (epoch ms); undefined when not reported or passed. */
  resetAt: number | undefined;
  /** Learned from a refusal: the quota refills all at once at its reset, not continuously. */
  windowed: boolean;
  /** Everything this process has sent against this quota, ever: what a report may not count yet. */
  sent: number;
}

/**
 * How much had been sent against a deployment's quotas once an attempt was sent, its own part
 * included. The upstream's report on that attempt's answer was made when the attempt arrived,
 * so whatever was sent after it is not in the report.
 */
export interface DispatchMark {
  readonly requests: number;
  readonly tokens: number;
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
  #quotasReported = false;

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
        requests: undefined,
        tokens: undefined,
      };
      this.#states.set(deployment, state);
    }
    return state;
  }

  /**
   * Milliseconds until the deployment may be tried again; 0 when it may be tried now. With
   * `tokens` (what the call will charge the upstream's token quota: prompt estimate +
   * max_tokens, asked for only when that quota is known), also until the upstream's reported
   * quota, carried forward, has room for the call.
   */
  waitMs(deployment: string, tokens?: () => number): number {
    const state = this.#states.get(deployment);
    if (!state) return 0;
    const now = this.#now();
    let wait = Math.max(0, state.unavailableUntil - now);
    if (state.requests !== undefined) wait = Math.max(wait, quotaWaitMs(state.requests, 1, now));
    if (state.tokens !== undefined && tokens !== undefined) wait = Math.max(wait, quotaWaitMs(state.tokens, tokens(), now));
    return wait;
  }

  /** An attempt is about to be sent: what it charges comes off the quota carried forward. */
  dispatched(deployment: string, tokens?: () => number): DispatchMark | undefined {
    const state = this.#states.get(deployment);
    if (!state || (state.requests === undefined && state.tokens === undefined)) return undefined;
    const now = this.#now();
    if (state.requests !== undefined) charge(state.requests, 1, now);
    if (state.tokens !== undefined && tokens !== undefined) charge(state.tokens, tokens(), now);
    return { requests: state.requests?.sent ?? 0, tokens: state.tokens?.sent ?? 0 };
  }

  /**
   * What is left of the upstream's reported quotas, carried forward to now, as a share of the
   * limit (the smaller of requests and tokens); 1 when none was reported. The router weighs
   * deployments that can take the call by it, moving traffic before an upstream refuses it.
   */
  quotaShare(deployment: string): number {
    const state = this.#states.get(deployment);
    if (!state || (state.requests === undefined && state.tokens === undefined)) return 1;
    const now = this.#now();
    let share = 1;
    if (state.requests !== undefined) share = Math.min(share, shareLeft(state.requests, now));
    if (state.tokens !== undefined) share = Math.min(share, shareLeft(state.tokens, now));
    return Math.max(0, share);
  }

  recordSuccess(input: { deployment: string; quota?: UpstreamQuota; sent?: DispatchMark | undefined }): void {
    const state = this.#state(input.deployment);
    state.consecutiveFailures = 0;
    state.nextCooldownMs = this.#options.cooldownMs;
    state.circuitOpen = false;
    state.unavailableUntil = 0;
    this.#observeQuota(state, input.quota, input.sent);
  }

  /**
   * The deployment refused for quota: skip it until `waitMs` has passed, without opening the
   * circuit. With the quota the refusal reported: a quota whose refusal asks to wait until its
   * whole reset refills in fixed windows (Azure's way), not continuously; from then on it is
   * carried forward as one.
   */
  recordWait(input: { deployment: string; waitMs: number; quota?: UpstreamQuota | undefined; sent?: DispatchMark | undefined }): void {
    const state = this.#state(input.deployment);
    const now = this.#now();
    state.unavailableUntil = Math.max(state.unavailableUntil, now + input.waitMs);
    this.#observeQuota(state, input.quota, input.sent);
    const { quota } = input;
    if (quota === undefined) return;
    if (state.requests && refusedToReset(input.waitMs, quota.remainingRequests, quota.resetRequestsMs)) state.requests.windowed = true;
    if (state.tokens && refusedToReset(input.waitMs, quota.remainingTokens, quota.resetTokensMs)) state.tokens.windowed = true;
  }

  /**
   * Records a failed attempt. `retryAfterMs` (an upstream's explicit wait) makes the deployment
   * unavailable for that long; reaching the failure threshold opens the circuit for a cooldown
   * that doubles each time it re-opens, up to the maximum.
   */
  recordFailure(input: { deployment: string; retryAfterMs?: number; quota?: UpstreamQuota; sent?: DispatchMark | undefined }): void {
    const state = this.#state(input.deployment);
    const now = this.#now();
    state.consecutiveFailures += 1;
    this.#observeQuota(state, input.quota, input.sent);
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

  /** Whether any upstream has reported a quota to carry forward: until then the router skips every quota step. */
  get quotasReported(): boolean {
    return this.#quotasReported;
  }

  #observeQuota(state: DeploymentState, quota: UpstreamQuota | undefined, sent?: DispatchMark): void {
    // An answer without a remaining count (an error page, a proxy's reply) says nothing about the
    // quota: what is carried forward stays.
    if (!quota || (quota.remainingRequests === undefined && quota.remainingTokens === undefined)) return;
    const now = this.#now();
    state.requests = reported(state.requests, quota.limitRequests, quota.remainingRequests, quota.resetRequestsMs, sent?.requests, now);
    state.tokens = reported(state.tokens, quota.limitTokens, quota.remainingTokens, quota.resetTokensMs, sent?.tokens, now);
    if (state.requests !== undefined || state.tokens !== undefined) this.#quotasReported = true;
  }

  view(deployment: string, tokens?: () => number): DeploymentHealthView {
    const state = this.#states.get(deployment);
    const wait = this.waitMs(deployment, tokens);
    return {
      deployment,
      state: wait === 0 ? 'healthy' : state?.circuitOpen ? 'cooldown' : 'waiting',
      consecutiveFailures: state?.consecutiveFailures ?? 0,
      availableInMs: wait,
    };
  }
}

/**
 * A quota as reported now, less what this process sent after the reported attempt (not in the
 * report yet); without a remaining count or limit there is nothing to carry forward.
 *
 * A new estimate per report, on purpose: updating the previous one in place (it then lives as
 * long as the deployment, in V8's old generation, with its number fields rewritten on every
 * answer) cost 14–18% more CPU per call and 9–13% of throughput in A/B runs of the benchmark,
 * against ~0 for a fresh seven-field object that dies young (docs/benchmark-log.md, 2026-12-03 (21:48–), item 3).
 */
function reported(
  previous: QuotaEstimate | undefined,
  limit: number | undefined,
  remaining: number | undefined,
  resetMs: number | undefined,
  /** `sent` once the reported attempt was sent; undefined for a report from elsewhere. */
  sentAtAttempt: number | undefined,
  now: number,
): QuotaEstimate | undefined {
  if (limit === undefined || remaining === undefined || !(limit > 0)) return undefined;
  // A full quota reports no refill rate; the last one known still holds.
  const refillPerMs = resetMs !== undefined && resetMs > 0 && remaining < limit ? (limit - remaining) / resetMs : previous?.refillPerMs;
  const resetAt = resetMs !== undefined && resetMs > 0 ? now + resetMs : undefined;
  const sent = previous?.sent ?? 0;
  const left = remaining - (sentAtAttempt === undefined ? 0 : Math.max(0, sent - sentAtAttempt));
  return { left, limit, refillPerMs, at: now, resetAt, windowed: previous?.windowed ?? false, sent };
}

/** What is left of a quota at `now` as a share of its limit. */
function shareLeft(quota: QuotaEstimate, now: number): number {
  bringForward(quota, now);
  return quota.left / quota.limit;
}

/**
 * Whether a refusal asked to wait until the quota's whole reset (within 10%): what a fixed
 * window does. A continuous refill asks only for the time the missing part takes, a fraction of
 * the reset (which is when the whole quota is back).
 */
function refusedToReset(waitMs: number, remaining: number | undefined, resetMs: number | undefined): boolean {
  if (resetMs === undefined || resetMs <= 0 || remaining === undefined) return false;
  return waitMs >= resetMs * 0.9;
}

/** Brings the estimate to `now`: the refill since it was last brought forward, up to the limit. */
function bringForward(quota: QuotaEstimate, now: number): void {
  if (now <= quota.at) return;
  if (quota.windowed) {
    // A window that has turned is whole; when the next one ends is unknown until the next report.
    if (quota.resetAt !== undefined && now >= quota.resetAt) {
      quota.left = quota.limit;
      quota.resetAt = undefined;
    }
  } else if (quota.refillPerMs !== undefined) {
    quota.left = Math.min(quota.limit, quota.left + quota.refillPerMs * (now - quota.at));
  }
  quota.at = now;
}

function charge(quota: QuotaEstimate, amount: number, now: number): void {
  bringForward(quota, now);
  quota.left -= amount;
  quota.sent += amount;
}

function quotaWaitMs(quota: QuotaEstimate, amount: number, now: number): number {
  // A call larger than the whole quota never fits: the upstream is left to say so.
  if (quota.refillPerMs === undefined || amount > quota.limit) return 0;
  bringForward(quota, now);
  if (quota.left >= amount) return 0;
  if (quota.windowed) return quota.resetAt === undefined ? 0 : Math.max(1, Math.ceil(quota.resetAt - now));
  return Math.ceil((amount - quota.left) / quota.refillPerMs);
}
