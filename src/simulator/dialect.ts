/**
 * What differs between the providers' HTTP surfaces besides the body: the error format, the
 * rate-limit headers and how a refused client is told to come back. One value per provider
 * (`openaiDialect`, `azureDialect`, `anthropicDialect`); the shared call pipeline only sees this.
 */
import type { Exchange, HeaderMap, StreamFrame } from './exchange.ts';
import type { LimitDecision } from './limits.ts';

export interface ErrorDescription {
  status: number;
  message: string;
  param?: string | null;
  code?: string | null;
  /** Overrides the type the status implies (OpenAI's rate-limit type is `requests` or `tokens`). */
  type?: string;
}

export interface Dialect {
  readonly name: 'openai' | 'azure-openai' | 'anthropic';
  /**
   * Azure adds these content-filter results to completions and sends a filter-only first
   * stream chunk (empty `choices`, empty `id` and `object`) that naive clients trip over.
   */
  readonly contentFilterResults?: Readonly<Record<string, unknown>>;
  errorBody(error: ErrorDescription): string;
  /** Quota state on every response of a model with limits. */
  quotaHeaders(input: { decision: LimitDecision; now: number }): HeaderMap;
  /** How long a refused client must wait. */
  retryHeaders(retryAfterMs: number): HeaderMap;
  /** The 429 for a request the configured limits refused. */
  rateLimitError(input: { decision: LimitDecision; model: string }): ErrorDescription;
  /**
   * The event a provider sends when it fails after its stream started (no status can change
   * then): OpenAI's `data: {"error":{…}}` (Azure's, from the OpenAI service behind it, alike),
   * Anthropic's `event: error` (most often `overloaded_error`).
   */
  streamErrorFrame(): StreamFrame;
}

export function sendError(input: {
  exchange: Exchange;
  dialect: Dialect;
  error: ErrorDescription;
  headers?: HeaderMap;
}): void {
  input.exchange.send({
    status: input.error.status,
    body: input.dialect.errorBody(input.error),
    ...(input.headers ? { headers: input.headers } : {}),
  });
}

/** Default messages for injected statuses, close to what each provider says. */
export function statusMessage(status: number): string {
  switch (status) {
    case 400:
      return 'Simulated bad request.';
    case 401:
      return 'Incorrect API key provided (simulated).';
    case 403:
      return 'You are not allowed to access this resource (simulated).';
    case 404:
      return 'The model does not exist or you do not have access to it (simulated).';
    case 408:
      return 'Request timed out (simulated).';
    case 429:
      return 'Rate limit reached (simulated). Please try again later.';
    case 502:
      return 'Bad gateway (simulated).';
    case 503:
      return 'The server is overloaded or not ready yet (simulated).';
    case 504:
      return 'Gateway timeout (simulated).';
    case 529:
      return 'Overloaded (simulated).';
    default:
      return 'The server had an error while processing your request (simulated).';
  }
}
