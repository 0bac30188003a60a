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
import type { Admission as GatewayAdmission, AdmissionRequest, AdmissionTicket, Usage as GatewayUsage } from '../gateway/hooks.ts';
import type { Deployment, Route } from '../routing/route-table.ts';
import type { ChatCompletionRequest, EmbeddingRequest } from '../wire/openai.ts';
import { chargesEstimate, type LimitScope } from './buckets.ts';
import { estimateChatTokens, estimateEmbeddingTokens, exactCharacterLimitOf, type PromptEstimate } from './estimate.ts';
import { statusHeaders } from './headers.ts';
import type { Admission, Limiter } from './limiter.ts';
import type { Usage } from './types.ts';

export interface LimitAdmissionOptions {
  limiter: Limiter;
  /** Prices an estimate on a deployment (the same cost model as the ledger). */
  price: (input: { deployment: Deployment; promptTokens: number; completionTokens: number }) => number;
  /** Clock for remembering quota refusals, ms since epoch; injectable for tests. */
  now?: () => number;
  /** How prompts are estimated (`limits.promptEstimate`); `approximate` by default. */
  promptEstimate?: PromptEstimate;
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

/** What every ticket of one `createLimitAdmission` shares. */
interface TicketContext {
  readonly limiter: Limiter;
  readonly price: LimitAdmissionOptions['price'];
  readonly now: () => number;
  /** Prompts up to this many characters are counted with their model's BPE; 0: none are. */
  readonly exactCharacterLimit: number;
  stateOf(deployment: Deployment): DeploymentState;
}

const NO_SCOPES: readonly LimitScope[] = Object.freeze([]);

/**
 * @example
 * const admission = createLimitAdmission({ limiter, price });
 * startSeed({ config, admission });
 */
export function createLimitAdmission(options: LimitAdmissionOptions): GatewayAdmission {
  const { limiter } = options;
  const now = options.now ?? Date.now;
  const deploymentStates = new WeakMap<Deployment, DeploymentState>();
  const context: TicketContext = {
    limiter,
    price: options.price,
    now,
    exactCharacterLimit: exactCharacterLimitOf(options.promptEstimate ?? 'approximate'),
    stateOf(deployment) {
      let state = deploymentStates.get(deployment);
      if (state === undefined) {
        const scope: LimitScope = Object.freeze({ owner: 'deployment', id: deployment.name, limits: deployment.limits });
        state = { scope, refusedUntil: 0 };
        deploymentStates.set(deployment, state);
      }
      return state;
    },
  };

  return {
    admit(request): AdmissionTicket | Promise<AdmissionTicket> {
      const scopes = request.caller.limits ?? NO_SCOPES;
      const candidate = likelyFirstDeployment(request.route);
      const held = candidate !== undefined && context.stateOf(candidate).refusedUntil <= now() ? candidate : undefined;
      const estimate = held?.limits.tpm !== undefined || anyChargesEstimate(scopes) ? estimateOf(request, context) : null;
      const { tokens, usd } = estimate ?? UNCHARGED;
      // One literal with every key (an absent deployment is `undefined`): adding keys to it
      // afterwards, or spreading into it, takes Node 20's slow path (about 1 µs each call).
      const admitting = limiter.admitNow({
        scopes,
        deployment: held === undefined ? undefined : context.stateOf(held).scope,
        optionalDeployment: held !== undefined,
        tokens,
        usd,
        priority: request.priority,
        deadlineAt: request.deadlineAt,
        signal: request.signal,
      });
      // A function per call only when the store made admission wait.
      if (admitting instanceof Promise) return admitting.then((admitted) => new LimitTicket({ context, request, estimate, admitted, held }));
      return new LimitTicket({ context, request, estimate, admitted: admitting, held });
    },
  };
}

/**
 * One call's capacity as the gateway holds it. A class, so a call costs one object, where an
 * object of closures would cost five functions and the scope they share; its methods are
 * called on the ticket (`ticket.settle(usage)`), as `AdmissionTicket`'s callers do.
 */
class LimitTicket implements AdmissionTicket {
  readonly #context: TicketContext;
  readonly #request: AdmissionRequest;
  /** The call's estimate, once a limit needed it (tokens per minute, dollar budgets). */
  #estimate: Estimate | null;
  #admission: Admission;
  /** The deployment reserved at admission with the caller, until the first attempt starts. */
  #holding: Deployment | null;
  #attemptsSent = 0;
  #finished = false;
  /** The estimate's tokens when only routing asked for them (no limit charged the estimate). */
  #routingTokens: number | undefined;

  constructor({
    context,
    request,
    estimate,
    admitted,
    held,
  }: {
    context: TicketContext;
    request: AdmissionRequest;
    estimate: Estimate | null;
    admitted: Admission;
    /** The deployment admission tried to hold with the caller; held only if the reserve kept it. */
    held: Deployment | undefined;
  }) {
    this.#context = context;
    this.#request = request;
    this.#estimate = estimate;
    this.#holding = held !== undefined && admitted.attempt !== null ? held : null;
    this.#admission = admitted;
  }

  /** Prompt estimate + completion cap, as upstream token quotas charge a call; computed once, when first asked. */
  estimatedTokens(): number {
    if (this.#estimate !== null) return this.#estimate.tokens;
    this.#routingTokens ??= estimateOf(this.#request, this.#context).tokens;
    return this.#routingTokens;
  }

  /**
   * Undefined when there was nothing to wait for (the usual first attempt: admission already
   * reserved this deployment, or it has no quota): no promise and no suspended frame per call.
   */
  reserveDeployment(deployment: Deployment): Promise<void> | undefined {
    if (this.#holding !== null) {
      const held = this.#holding;
      this.#holding = null;
      if (held.name === deployment.name) {
        // The first attempt goes where admission already reserved: nothing to do.
        this.#attemptsSent += 1;
        return undefined;
      }
      // Otherwise `switchDeployment` below releases the held reservation (never sent).
    }
    const hasQuota = deployment.limits.rpm !== undefined || deployment.limits.tpm !== undefined;
    if (!hasQuota && this.#admission.attempt === null) {
      this.#attemptsSent += 1;
      return undefined;
    }
    return this.#switchDeployment(deployment);
  }

  /** Reserves `deployment`'s quota, releasing the previous attempt's (see `reserveDeployment`). */
  async #switchDeployment(deployment: Deployment): Promise<void> {
    const { limiter, stateOf, now } = this.#context;
    if (deployment.limits.tpm !== undefined && this.#estimate === null) {
      this.#estimate = estimateOf(this.#request, this.#context);
      this.#admission = { ...this.#admission, tokens: this.#estimate.tokens, usd: this.#estimate.usd };
    }
    const outcome = await limiter.switchDeployment({
      admission: this.#admission,
      deployment: stateOf(deployment).scope,
      previousAttempt: this.#attemptsSent > 0 ? 'sent' : 'not-sent',
    });
    if (!outcome.admitted) {
      stateOf(deployment).refusedUntil = now() + (outcome.refusal.retryAfterMs ?? DEFAULT_REFUSAL_MS);
      throw outcome.error;
    }
    this.#admission = outcome.admission;
    this.#attemptsSent += 1;
  }

  settle(usage: GatewayUsage): void {
    if (this.#finished) return;
    this.#finished = true;
    const { limiter } = this.#context;
    const actual: Usage = { tokens: usage.promptTokens + usage.completionTokens, usd: usage.costUsd };
    const admission = this.#admission;
    if (this.#holding !== null) {
      // Settled without any attempt: the held deployment was never used, so only the caller
      // is charged, as if nothing had been held.
      this.#holding = null;
      void limiter.settle({ ...admission, attempt: null }, actual);
      void limiter.release({ ...admission, call: null });
      return;
    }
    void limiter.settle(admission, actual);
  }

  release(): void {
    if (this.#finished) return;
    this.#finished = true;
    const { limiter } = this.#context;
    // A call that reached an upstream still spent a request; only an unsent one is refunded whole.
    void (this.#attemptsSent > 0 ? limiter.settle(this.#admission, UNCHARGED) : limiter.release(this.#admission));
  }

  headers(): Record<string, string> {
    const { requests, tokens } = this.#admission.headerStatuses;
    return statusHeaders(requests, tokens);
  }
}

/** `scopes.some((scope) => chargesEstimate(scope.limits))`, without a callback per call. */
function anyChargesEstimate(scopes: readonly LimitScope[]): boolean {
  for (const scope of scopes) if (chargesEstimate(scope.limits)) return true;
  return false;
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
function estimateOf(request: AdmissionRequest, { price, exactCharacterLimit }: TicketContext): Estimate {
  const first = request.route.targets[0]?.deployment;
  const model = first?.model ?? request.body.model;
  const estimate =
    request.endpoint === 'embeddings'
      ? { promptTokens: estimateEmbeddingTokens({ request: request.body as EmbeddingRequest, model, exactCharacterLimit }), completionTokens: 0 }
      : estimateChatTokens({
          request: request.body as ChatCompletionRequest,
          model,
          exactCharacterLimit,
          // A value, not a conditional spread: keys after a spread in a literal take Node 20's slow path.
          defaultMaxTokens: request.route.defaultMaxTokens,
        });
  return {
    tokens: estimate.promptTokens + estimate.completionTokens,
    usd: first ? price({ deployment: first, promptTokens: estimate.promptTokens, completionTokens: estimate.completionTokens }) : 0,
  };
}
