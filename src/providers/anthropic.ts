/**
 * The `anthropic` provider: Anthropic's Messages API behind Seed's OpenAI-shaped adapter
 * interface. Translation lives in `./anthropic/` (request, messages, response, stream,
 * upstream headers and errors); this file wires it to HTTP and validates the adapter options.
 *
 * Deployment options (`options:` in seed.yaml):
 * - `version`: the `anthropic-version` header, default `2023-06-01`.
 * - `defaultMaxTokens`: `max_tokens` when the client sends none (Anthropic requires it), default 4096.
 */
import { z } from 'zod';
import { SeedError } from '../errors.ts';
import type { ChatCompletionRequest } from '../wire/openai.ts';
import { JSON_REQUEST_HEADERS, postJson, readErrorText, readJson, sseEventBatches, type UpstreamResponse } from './http.ts';
import { optionsOf } from './options.ts';
import type { CallContext, DeploymentTarget, ProviderAdapter, ProviderCapabilities, ProviderFactory } from './types.ts';
import { toAnthropicRequest, type AnthropicRequestTranslation } from './anthropic/request.ts';
import { toChatCompletion } from './anthropic/response.ts';
import { toChatCompletionChunks } from './anthropic/stream.ts';
import { anthropicStatusError, anthropicUpstreamInfo } from './anthropic/upstream.ts';
import { anthropicMessageResponseSchema } from './anthropic/wire.ts';

export { toAnthropicRequest } from './anthropic/request.ts';
export { toChatCompletion } from './anthropic/response.ts';
export { toChatCompletionChunks } from './anthropic/stream.ts';

/** Options of an anthropic deployment; the registry checks them at config load. */
export const anthropicOptionsSchema = z
  .object({
    version: z.string().min(1).default('2023-06-01'),
    defaultMaxTokens: z.number().int().positive().default(4096),
  })
  .strict();
export type AnthropicOptions = Readonly<z.infer<typeof anthropicOptionsSchema>>;

/** One table, not model-name checks: what every Anthropic deployment can do through Seed. */
export const ANTHROPIC_CAPABILITIES: Readonly<ProviderCapabilities> = Object.freeze({
  chat: true,
  streaming: true,
  embeddings: false,
  tools: true,
  images: true,
  // Emulated with a forced tool (see ./anthropic/request.ts): always a JSON object shaped by the
  // schema, though Anthropic does not strictly validate tool inputs against it.
  jsonSchema: true,
  multipleChoices: false,
});

/**
 * Reads a deployment's adapter options (parsed once per deployment, through the shared cache).
 * The registry validates them at config load already; this guards deployments built elsewhere
 * (tests, jobs) with an `internal_error` naming the deployment, since a bad option is an
 * operator's mistake, not the client's.
 *
 * @example
 * parseAnthropicOptions({ deployment }).defaultMaxTokens // 4096 unless configured
 */
export function parseAnthropicOptions(input: { deployment: DeploymentTarget }): AnthropicOptions {
  try {
    return optionsOf(anthropicOptionsSchema, input.deployment);
  } catch (error) {
    const issues = error instanceof z.ZodError ? error.issues : [];
    const detail = issues.map((issue) => `${issue.path.join('.') || 'options'}: ${issue.message}`).join('; ');
    throw new SeedError('internal_error', `Deployment ${input.deployment.name} has invalid anthropic options (${detail}).`, {
      cause: error,
    });
  }
}

/** `https://api.anthropic.com` and `https://api.anthropic.com/v1` both mean the same endpoint. */
export function messagesUrl(baseUrl: string): string {
  const trimmed = baseUrl.replace(/\/+$/, '');
  return /\/v1$/.test(trimmed) ? `${trimmed}/messages` : `${trimmed}/v1/messages`;
}

/**
 * Factory registered under the name `anthropic`.
 *
 * @example
 * const adapter = anthropicProvider({ dispatcher: new Agent(), now: Date.now });
 * const { response, warnings } = await adapter.chat(request, context);
 */
export const anthropicProvider: ProviderFactory = (dependencies) => {
  const send = async (input: {
    request: ChatCompletionRequest;
    context: CallContext;
    stream: boolean;
  }): Promise<{ response: UpstreamResponse; translation: AnthropicRequestTranslation }> => {
    const { deployment } = input.context;
    const options = parseAnthropicOptions({ deployment });
    const translation = toAnthropicRequest({
      request: input.request,
      model: deployment.model,
      defaultMaxTokens: options.defaultMaxTokens,
      stream: input.stream,
    });
    const response = await postJson({
      dispatcher: dependencies.dispatcher,
      url: messagesUrl(deployment.baseUrl),
      headers: {
        ...JSON_REQUEST_HEADERS,
        ...(deployment.apiKey !== undefined ? { 'x-api-key': deployment.apiKey } : {}),
        'anthropic-version': options.version,
        // Last, so an operator can add `anthropic-beta` or override the defaults per deployment.
        ...deployment.headers,
      },
      body: translation.body,
      signal: input.context.signal,
      timeoutMs: input.context.timeoutMs,
      label: deployment.name,
    });
    if (response.status < 200 || response.status >= 300) {
      throw anthropicStatusError({
        status: response.status,
        headers: response.headers,
        bodyText: await readErrorText(response),
        label: deployment.name,
        nowMs: dependencies.now(),
      });
    }
    return { response, translation };
  };

  const adapter: ProviderAdapter = {
    provider: 'anthropic',
    capabilities: ANTHROPIC_CAPABILITIES,

    async chat(request, context) {
      const { response, translation } = await send({ request, context, stream: false });
      const label = context.deployment.name;
      const parsed = anthropicMessageResponseSchema.safeParse(await readJson(response, label));
      if (!parsed.success) {
        throw new SeedError('upstream_invalid_response', `Deployment ${label} returned a body that is not an Anthropic message.`, {
          upstreamStatus: response.status,
        });
      }
      return {
        response: toChatCompletion({
          response: parsed.data,
          createdMs: dependencies.now(),
          responseFormatTool: translation.responseFormatTool,
        }),
        upstream: anthropicUpstreamInfo({ response, nowMs: dependencies.now() }),
        warnings: translation.warnings,
      };
    },

    async streamChat(request, context) {
      const { response, translation } = await send({ request, context, stream: true });
      const label = context.deployment.name;
      return {
        chunks: toChatCompletionChunks({
          events: sseEventBatches(response, context.signal),
          createdMs: dependencies.now(),
          responseFormatTool: translation.responseFormatTool,
          label,
        }),
        upstream: anthropicUpstreamInfo({ response, nowMs: dependencies.now() }),
        warnings: translation.warnings,
      };
    },

    async embed() {
      throw new SeedError(
        'invalid_request',
        'Anthropic has no embeddings API; route embeddings to a deployment of a provider that has one.',
        { param: 'model' },
      );
    },
  };
  return Object.freeze(adapter);
};
