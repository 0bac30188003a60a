/**
 * OpenAI's HTTP surface: `{"error":{"message","type","param","code"}}` bodies,
 * `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` headers with durations like
 * `"6m0s"`, and `retry-after` plus `retry-after-ms` on a 429.
 */
import { statusMessage, type Dialect, type ErrorDescription } from './dialect.ts';
import type { HeaderMap, StreamFrame } from './exchange.ts';
import { formatDuration, retryAfterSeconds, type LimitDecision } from './limits.ts';

function errorType(status: number): string {
  if (status === 429) return 'requests';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

export function openAIErrorBody(error: ErrorDescription): string {
  return JSON.stringify({
    error: {
      message: error.message,
      type: error.type ?? errorType(error.status),
      param: error.param ?? null,
      code: error.code ?? (error.status === 401 ? 'invalid_api_key' : null),
    },
  });
}

/** OpenAI's error event in a stream that already started: a `data:` line with an `error` object. */
export function openAIStreamErrorFrame(): StreamFrame {
  return { data: openAIErrorBody({ status: 500, message: statusMessage(500) }), paced: false };
}

export function openAIRetryHeaders(retryAfterMs: number): HeaderMap {
  return { 'retry-after': retryAfterSeconds(retryAfterMs), 'retry-after-ms': String(Math.ceil(retryAfterMs)) };
}

/** OpenAI's wording of a 429, with the window's numbers. */
export function rateLimitSentence(input: { decision: LimitDecision; model: string }): string {
  const { decision } = input;
  const tokens = decision.exceeded === 'tokens';
  const reading = tokens ? decision.tokens : decision.requests;
  const limit = reading?.limit ?? 0;
  const used = limit - (reading?.remaining ?? 0);
  const wait = formatDuration(decision.retryAfterMs ?? 0);
  return (
    `Rate limit reached for ${input.model} in organization org-simulator on ${tokens ? 'tokens per min (TPM)' : 'requests per min (RPM)'}: ` +
    `Limit ${limit}, Used ${used}, Requested ${decision.requested ?? 1}. Please try again in ${wait}.`
  );
}

export const openaiDialect: Dialect = {
  name: 'openai',
  errorBody: openAIErrorBody,
  streamErrorFrame: openAIStreamErrorFrame,
  quotaHeaders({ decision }) {
    const headers: HeaderMap = {};
    if (decision.requests !== undefined) {
      headers['x-ratelimit-limit-requests'] = String(decision.requests.limit);
      headers['x-ratelimit-remaining-requests'] = String(decision.requests.remaining);
      headers['x-ratelimit-reset-requests'] = formatDuration(decision.requests.resetMs);
    }
    if (decision.tokens !== undefined) {
      headers['x-ratelimit-limit-tokens'] = String(decision.tokens.limit);
      headers['x-ratelimit-remaining-tokens'] = String(decision.tokens.remaining);
      headers['x-ratelimit-reset-tokens'] = formatDuration(decision.tokens.resetMs);
    }
    return headers;
  },
  retryHeaders: openAIRetryHeaders,
  rateLimitError({ decision, model }) {
    return {
      status: 429,
      message: rateLimitSentence({ decision, model }),
      type: decision.exceeded === 'tokens' ? 'tokens' : 'requests',
      code: 'rate_limit_exceeded',
    };
  },
};
