/**
 * Azure OpenAI's HTTP surface: deployments in the path
 * (`/openai/deployments/{deployment}/chat/completions?api-version=…`), an `api-key` header
 * (or an Entra ID bearer token), `{"error":{"code","message"}}` bodies for gateway-level
 * errors, `x-ratelimit-remaining-*` headers without reset times, and content-filter results.
 * The bodies themselves are OpenAI's, rendered by the same handlers.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Dialect, ErrorDescription } from './dialect.ts';
import type { HeaderMap } from './exchange.ts';
import { openAIErrorBody, openAIRetryHeaders, openAIStreamErrorFrame } from './openai-dialect.ts';
import { retryAfterSeconds } from './limits.ts';

const safe = { filtered: false, severity: 'safe' } as const;

function azureErrorCode(status: number): string {
  if (status === 500) return 'InternalServerError';
  if (status === 503) return 'ServiceUnavailable';
  return String(status);
}

export const azureDialect: Dialect = {
  name: 'azure-openai',
  contentFilterResults: Object.freeze({ hate: safe, self_harm: safe, sexual: safe, violence: safe }),
  errorBody(error) {
    // Validation errors come from the OpenAI service behind Azure, in OpenAI's shape; the
    // Azure front door (auth, quota, availability) answers in its own.
    if ((error.status === 400 || error.status === 404) && error.code === undefined) return openAIErrorBody(error);
    const code = error.status === 429 ? '429' : (error.code ?? azureErrorCode(error.status));
    return JSON.stringify({ error: { code, message: error.message } });
  },
  quotaHeaders({ decision }) {
    const headers: HeaderMap = {};
    if (decision.requests !== undefined) {
      headers['x-ratelimit-limit-requests'] = String(decision.requests.limit);
      headers['x-ratelimit-remaining-requests'] = String(decision.requests.remaining);
    }
    if (decision.tokens !== undefined) {
      headers['x-ratelimit-limit-tokens'] = String(decision.tokens.limit);
      headers['x-ratelimit-remaining-tokens'] = String(decision.tokens.remaining);
    }
    return headers;
  },
  retryHeaders: openAIRetryHeaders,
  // Mid-stream, the OpenAI service behind Azure is talking: its error event, in its shape.
  streamErrorFrame: openAIStreamErrorFrame,
  rateLimitError({ decision, model }) {
    const kind = decision.exceeded === 'tokens' ? 'token' : 'call';
    return {
      status: 429,
      code: '429',
      message:
        `Requests to the ${model} deployment have exceeded ${kind} rate limit of your current AIServices S0 pricing tier. ` +
        `Please retry after ${retryAfterSeconds(decision.retryAfterMs ?? 0)} seconds.`,
    };
  },
};

/** Azure's checks before it reads a body: the api-version query parameter, then a credential. */
export function checkAzureRequest(input: { url: URL; headers: IncomingHttpHeaders }): ErrorDescription | undefined {
  if (!input.url.searchParams.get('api-version')) {
    return {
      status: 400,
      code: 'MissingApiVersionParameter',
      message: 'The api-version query parameter (?api-version=) is required for all requests.',
    };
  }
  const key = input.headers['api-key'];
  const authorization = input.headers.authorization;
  const hasKey = typeof key === 'string' && key.trim() !== '';
  const hasToken = typeof authorization === 'string' && /^Bearer\s+\S/i.test(authorization);
  if (!hasKey && !hasToken) {
    return {
      status: 401,
      code: '401',
      message:
        'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an ' +
        'active subscription and use a correct regional API endpoint for your resource.',
    };
  }
  return undefined;
}
