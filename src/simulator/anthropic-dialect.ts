/**
 * Anthropic's HTTP surface: `{"type":"error","error":{"type","message"}}` bodies,
 * `anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}` headers with RFC 3339
 * reset times, `retry-after` in seconds, and the `x-api-key` / `anthropic-version` checks.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { statusMessage, type Dialect, type ErrorDescription } from './dialect.ts';
import type { HeaderMap } from './exchange.ts';
import { retryAfterSeconds } from './limits.ts';

function errorType(status: number): string {
  switch (status) {
    case 401:
      return 'authentication_error';
    case 403:
      return 'permission_error';
    case 404:
      return 'not_found_error';
    case 413:
      return 'request_too_large';
    case 429:
      return 'rate_limit_error';
    case 503:
    case 529:
      return 'overloaded_error';
    default:
      return status >= 500 ? 'api_error' : 'invalid_request_error';
  }
}

function anthropicErrorBody(error: ErrorDescription): string {
  return JSON.stringify({ type: 'error', error: { type: errorType(error.status), message: error.message } });
}

export const anthropicDialect: Dialect = {
  name: 'anthropic',
  errorBody: anthropicErrorBody,
  quotaHeaders({ decision, now }) {
    const headers: HeaderMap = {};
    const at = (resetMs: number) => new Date(now + resetMs).toISOString();
    if (decision.requests !== undefined) {
      headers['anthropic-ratelimit-requests-limit'] = String(decision.requests.limit);
      headers['anthropic-ratelimit-requests-remaining'] = String(decision.requests.remaining);
      headers['anthropic-ratelimit-requests-reset'] = at(decision.requests.resetMs);
    }
    if (decision.tokens !== undefined) {
      headers['anthropic-ratelimit-tokens-limit'] = String(decision.tokens.limit);
      headers['anthropic-ratelimit-tokens-remaining'] = String(decision.tokens.remaining);
      headers['anthropic-ratelimit-tokens-reset'] = at(decision.tokens.resetMs);
    }
    return headers;
  },
  retryHeaders(retryAfterMs) {
    return { 'retry-after': retryAfterSeconds(retryAfterMs) };
  },
  streamErrorFrame() {
    return { event: 'error', data: anthropicErrorBody({ status: 529, message: statusMessage(529) }), paced: false };
  },
  rateLimitError({ decision, model }) {
    const limit = (decision.exceeded === 'tokens' ? decision.tokens : decision.requests)?.limit ?? 0;
    const unit = decision.exceeded === 'tokens' ? 'tokens' : 'requests';
    return {
      status: 429,
      message:
        `This request would exceed the rate limit for your organization of ${limit} ${unit} per window for ${model}. ` +
        'Please reduce the prompt length or the maximum tokens requested, or try again later.',
    };
  },
};

/** Anthropic's header checks: a key, then the API version. */
export function checkAnthropicRequest(headers: IncomingHttpHeaders): ErrorDescription | undefined {
  const key = headers['x-api-key'];
  if (typeof key !== 'string' || key.trim() === '') {
    return { status: 401, message: 'x-api-key header is required' };
  }
  const version = headers['anthropic-version'];
  if (typeof version !== 'string' || version.trim() === '') {
    return { status: 400, message: 'anthropic-version: header is required' };
  }
  return undefined;
}
