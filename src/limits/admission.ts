/**
 * The gateway's admission over the limiter: estimate a call's tokens and cost, reserve them
 * against the caller's key, team and org (one atomic step), reserve each attempt against its
 * deployment's own quota, and settle with real usage when the call ends — on success, error,
 * abort and failover alike.
 */
import type { Admission as GatewayAdmission, AdmissionTicket } from '../gateway/hooks.ts';
import type { Deployment } from '../routing/route-table.ts';
import type { ChatCompletionRequest, EmbeddingRequest } from '../wire/openai.ts';
import { estimateChatTokens, estimateEmbeddingTokens } from './estimate.ts';
import { rateLimitHeaders } from './headers.ts';
import type { Admission, Limiter } from './limiter.ts';

export interface LimitAdmissionOptions {
  limiter: Limiter;
  /** Prices an estimate on a deployment (the same cost model as the ledger). */
  price: (input: { deployment: Deployment; promptTokens: number; completionTokens: number }) => number;
}

/**
 * @example
 * const admission = createLimitAdmission({ limiter, price });
 * startSeed({ config, admission });
 */
export function createLimitAdmission(options: LimitAdmissionOptions): GatewayAdmission {
  const { limiter } = options;
  return {
    async admit(request): Promise<AdmissionTicket> {
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
      const tokens = estimate.promptTokens + estimate.completionTokens;
      const usd = first ? options.price({ deployment: first, ...estimate }) : 0;
      let admission: Admission = await limiter.admit({
        scopes: request.caller.limits ?? [],
        tokens,
        usd,
        priority: request.priority,
        deadlineAt: request.deadlineAt,
        signal: request.signal,
      });
      let attemptsSent = 0;
      let finished = false;
      return {
        async reserveDeployment(deployment) {
          const hasQuota = deployment.limits.rpm !== undefined || deployment.limits.tpm !== undefined;
          if (hasQuota || admission.attempt !== null) {
            const outcome = await limiter.switchDeployment({
              admission,
              deployment: { owner: 'deployment', id: deployment.name, limits: deployment.limits },
              previousAttempt: attemptsSent > 0 ? 'sent' : 'not-sent',
            });
            if (!outcome.admitted) throw outcome.error;
            admission = outcome.admission;
          }
          attemptsSent += 1;
        },
        settle(usage) {
          if (finished) return;
          finished = true;
          void limiter.settle(admission, { tokens: usage.promptTokens + usage.completionTokens, usd: usage.costUsd });
        },
        release() {
          if (finished) return;
          finished = true;
          // A call that reached an upstream still spent a request; only an unsent one is refunded whole.
          void (attemptsSent > 0 ? limiter.settle(admission, { tokens: 0, usd: 0 }) : limiter.release(admission));
        },
        headers: () => rateLimitHeaders({ statuses: admission.statuses }),
      };
    },
  };
}
