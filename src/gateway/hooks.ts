/**
 * The seams around routing: who is calling (auth), whether they may (admission), and what
 * happens after each call (call sinks). The gateway core only knows these interfaces; tenants,
 * limits, budgets and the ledger plug in from the composition root.
 */
import type { ChatCompletionRequest, EmbeddingRequest } from '../wire/openai.ts';
import type { Deployment, Route } from '../routing/route-table.ts';
import type { Purpose } from '../terms/purpose.ts';
import type { LimitScope } from '../limits/buckets.ts';
import type { CallSignal } from '../abort.ts';

/** The caller of one request, as established by authentication. */
export interface Caller {
  /** Null for the open, key-less embedded default. */
  keyId: string | null;
  teamId: string | null;
  orgId: string | null;
  /** Region the caller's traffic must stay in; null = any. */
  region: string | null;
  /** Routes this caller may use; null = all. */
  allowedRoutes: ReadonlySet<string> | null;
  /** Whether request and response bodies of this caller's calls are stored (opt-in). */
  storePayloads: boolean;
  /** Limits that apply to this caller's calls: its key's, team's and org's (any subset). */
  limits?: readonly LimitScope[];
}

export const ANONYMOUS_CALLER: Caller = Object.freeze({
  keyId: null,
  teamId: null,
  orgId: null,
  region: null,
  allowedRoutes: null,
  storePayloads: false,
});

export type Authenticate = (headers: Readonly<Record<string, string | string[] | undefined>>) => Promise<Caller> | Caller;

export type Priority = 'interactive' | 'batch';

export interface AdmissionRequest {
  caller: Caller;
  route: Route;
  endpoint: 'chat.completions' | 'embeddings';
  body: ChatCompletionRequest | EmbeddingRequest;
  purpose: Purpose;
  priority: Priority;
  /** Absolute deadline of the call; a batch-priority wait must end before it. */
  deadlineAt: number;
  signal: CallSignal;
}

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
  costUsd: number;
}

/** Capacity reserved for one call; settled with real usage or released, exactly once. */
export interface AdmissionTicket {
  /**
   * Per-attempt reservation against a deployment's own quota; refused attempts move on.
   * Undefined when there was nothing to wait for, a promise (rejecting with the refusal) otherwise.
   */
  reserveDeployment?(deployment: Deployment): Promise<void> | undefined;
  settle(usage: Usage): void;
  release(): void;
  /** Response headers describing the caller's remaining capacity (`x-ratelimit-*`). */
  headers?(): Record<string, string>;
  /** What the call charges an upstream's token quota (prompt estimate + max_tokens), for routing before the upstream's 429. */
  estimatedTokens?(): number;
}

export interface Admission {
  /**
   * Reserves capacity for a call or throws a SeedError (429 with retry-after). Answers without a
   * promise when nothing had to wait (limits in memory): admission is on every call's path.
   */
  admit(request: AdmissionRequest): AdmissionTicket | Promise<AdmissionTicket>;
}

const OPEN_TICKET: AdmissionTicket = Object.freeze({ settle: () => undefined, release: () => undefined });

export const OPEN_ADMISSION: Admission = Object.freeze({
  admit: () => OPEN_TICKET,
});
