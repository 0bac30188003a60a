/**
 * The gateway's admission over the limiter: estimate a call's tokens and cost, reserve them
 * against the caller's key, team and org (one atomic step), reserve each attempt against its
 * deployment's own quota, and settle with real usage when the call ends — on success, error,
 * abort and failover alike.
 *
 * Admission is on every call's path, so the common case costs one store operation: when the
 * caller has limits of its own, its scopes and the quota of the deployment the router will most
 * likely try first are reserved in the same atomic reserve ("held"). When the first attempt goes
 * there, `reserveDeployment` has nothing left to do; any other deployment (another weighted
 * pick, an excluded or cooling-down deployment, a failover) switches as it would without the
 * hold, and the held quota is refunded, at the cost of one more store operation. A refusal by
 * the held deployment's quota never refuses the call: the caller is admitted alone and the
 * router meets the refusal when it reserves that deployment, and fails over. The token estimate
 * (BPE for OpenAI models) is computed only when a limit charges it: tokens per minute or a
 * dollar budget.
 */
import type { Admission as GatewayAdmission, AdmissionRequest, AdmissionTicket } from '../gateway/hooks.ts';
import type { Deployment, Route } from '../routing/route-table.ts';
import type { ChatCompletionRequest, EmbeddingRequest } from '../wire/openai.ts';
import { chargesEstimate, type LimitScope } from './buckets.ts';
import { estimateChatTokens, estimateEmbeddingTokens } from './estimate.ts';
import { rateLimitHeaders } from './headers.ts';
import type { Admission, AdmitRequest, Limiter } from './limiter.ts';
import type { BucketStatus } from './types.ts';

export interface LimitAdmissionOptions {
  limiter: Limiter;
  /** Prices an estimate on a deployment (the same cost model as the ledger). */
  price: (input: { deployment: Deployment; promptTokens: number; completionTokens: number }) => number;
  /** Clock for remembering quota refusals, ms since epoch; injectable for tests. */
  now?: () => number;
}

/** A call's estimate as the limiter charges it. */
interface Estimate {
  readonly tokens: number;
  readonly usd: number;
}

/** What nothing charges: requests and concurrent slots count 1 whatever the estimate. */
const UNCHARGED: Estimate = Object.freeze({ tokens: 0, usd: 0 });

/** How long to stop holding a deployment's quota after it refused without saying for how long. */
const DEFAULT_REFUSAL_MS = 1_000;

/** Admission's view of one deployment, kept as long as the deployment object lives. */
interface DeploymentState {
  readonly scope: LimitScope;
  /**
   * Until when (epoch ms) its quota is known to refuse: holding it at admission would only add
   * a refused reserve, so admission reserves the caller alone as before.
   */
  refusedUntil: number;
}

/**
 * @example
 * const admission = createLimitAdmission({ limiter, price });
 * startSeed({ config, admission });
 */
export function createLimitAdmission(options: LimitAdmissionOptions): GatewayAdmission {
  const { limiter, price } = options;
  const now = options.now ?? Date.now;
  const deploymentStates = new WeakMap<Deployment, DeploymentState>();

  function stateOf(deployment: Deployment): DeploymentState {
    let state = deploymentStates.get(deployment);
    if (state === undefined) {
      const scope: LimitScope = Object.freeze({ owner: 'deployment', id: deployment.name, limits: deployment.limits });
      state = { scope, refusedUntil: 0 };
      deploymentStates.set(deployment, state);
    }
    return state;
  }

  return {
    async admit(request): Promise<AdmissionTicket> {
      const scopes = request.caller.limits ?? [];
      let estimate: Estimate | null = null;
      const estimated = (): Estimate => (estimate ??= estimateOf({ request, price }));

      const candidate = likelyFirstDeployment(request.route);
      const held = candidate !== undefined && stateOf(candidate).refusedUntil <= now() ? candidate : undefined;
      const needsEstimate = held?.limits.tpm !== undefined || scopes.some((scope) => chargesEstimate(scope.limits));
      const { tokens, usd } = needsEstimate ? estimated() : UNCHARGED;
      const input: AdmitRequest = {
        scopes,
        tokens,
        usd,
        priority: request.priority,
        deadlineAt: request.deadlineAt,
        signal: request.signal,
      };
      // Added as one object rather than spread conditionally into the literal: keys after a
      // spread in a literal take Node 20's slow path (about 1 µs each call).
      const admitted = await limiter.admit(held === undefined ? input : Object.assign(input, { deployment: stateOf(held).scope, optionalDeployment: true }));

      // The held deployment's statuses join the admission's when its attempt starts.
      let holding: { deployment: Deployment; statuses: readonly BucketStatus[] } | null = null;
      let admission: Admission = admitted;
      if (held !== undefined && admitted.attempt !== null) {
        const callStatusCount = admitted.call?.entries.length ?? 0;
        holding = { deployment: held, statuses: admitted.statuses.slice(callStatusCount) };
        admission = { ...admitted, statuses: admitted.statuses.slice(0, callStatusCount) };
      }
      const callerStatuses = admitted.statuses.slice(0, admitted.call?.entries.length ?? 0);
      let attemptsSent = 0;
      let finished = false;

      return {
        async reserveDeployment(deployment) {
          if (holding !== null) {
            const hold = holding;
            holding = null;
            if (hold.deployment.name === deployment.name) {
              // The first attempt goes where admission already reserved: nothing to do.
              admission = { ...admission, statuses: hold.statuses };
              attemptsSent += 1;
              return;
            }
            // Otherwise `switchDeployment` below releases the held reservation (never sent).
          }
          const hasQuota = deployment.limits.rpm !== undefined || deployment.limits.tpm !== undefined;
          if (hasQuota || admission.attempt !== null) {
            if (deployment.limits.tpm !== undefined && estimate === null) admission = { ...admission, ...estimated() };
            const outcome = await limiter.switchDeployment({
              admission,
              deployment: stateOf(deployment).scope,
              previousAttempt: attemptsSent > 0 ? 'sent' : 'not-sent',
            });
            if (!outcome.admitted) {
              stateOf(deployment).refusedUntil = now() + (outcome.refusal.retryAfterMs ?? DEFAULT_REFUSAL_MS);
              throw outcome.error;
            }
            admission = outcome.admission;
          }
          attemptsSent += 1;
        },
        settle(usage) {
          if (finished) return;
          finished = true;
          const actual = { tokens: usage.promptTokens + usage.completionTokens, usd: usage.costUsd };
          if (holding !== null) {
            // Settled without any attempt: the held deployment was never used, so only the
            // caller is charged, as if nothing had been held.
            holding = null;
            void limiter.settle({ ...admission, attempt: null }, actual);
            void limiter.release({ ...admission, call: null });
            return;
          }
          void limiter.settle(admission, actual);
        },
        release() {
          if (finished) return;
          finished = true;
          // A call that reached an upstream still spent a request; only an unsent one is refunded whole.
          void (attemptsSent > 0 ? limiter.settle(admission, { tokens: 0, usd: 0 }) : limiter.release(admission));
        },
        // The caller's own buckets (key, team, org): what a client can act on. A deployment's
        // quota is shared by every caller and stays out of the headers (docs/routing.md).
        headers: () => rateLimitHeaders({ statuses: callerStatuses }),
      };
    },
  };
}

/**
 * The deployment the router will most likely try first, when holding its quota from the start
 * saves store operations on average: a right guess saves the attempt's reserve, a wrong one
 * adds a release, so the guess must be right more than half the time. That is the route's only
 * target, or one with more than half its weight (the router picks by weight); and only a
 * deployment with a quota of its own has anything to hold.
 */
function likelyFirstDeployment(route: Route): Deployment | undefined {
  const { targets } = route;
  let heaviest = targets[0];
  let totalWeight = 0;
  for (const target of targets) {
    totalWeight += target.weight;
    if (target.weight > (heaviest?.weight ?? 0)) heaviest = target;
  }
  if (heaviest === undefined || (targets.length > 1 && heaviest.weight * 2 <= totalWeight)) return undefined;
  const { limits } = heaviest.deployment;
  return limits.rpm !== undefined || limits.tpm !== undefined ? heaviest.deployment : undefined;
}

/** Prompt tokens plus the completion cap, priced on the route's first deployment. */
function estimateOf({ request, price }: { request: AdmissionRequest; price: LimitAdmissionOptions['price'] }): Estimate {
  const first = request.route.targets[0]?.deployment;
  const model = first?.model ?? request.body.model;
  const estimate =
    request.endpoint === 'embeddings'
      ? { promptTokens: estimateEmbeddingTokens({ request: request.body as EmbeddingRequest, model }), completionTokens: 0 }
      : estimateChatTokens({
          request: request.body as ChatCompletionRequest,
          model,
          ...(request.route.defaultMaxTokens !== undefined ? { defaultMaxTokens: request.route.defaultMaxTokens } : {}),
        });
  return {
    tokens: estimate.promptTokens + estimate.completionTokens,
    usd: first ? price({ deployment: first, promptTokens: estimate.promptTokens, completionTokens: estimate.completionTokens }) : 0,
  };
}
