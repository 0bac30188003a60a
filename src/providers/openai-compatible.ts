/**
 * The OpenAI-compatible base. Any upstream that speaks OpenAI's Chat Completions wire format
 * (OpenAI itself, Azure OpenAI, vLLM, Ollama, llama.cpp server, LM Studio, TGI) is this adapter
 * plus a few fields: where to send requests, how to authenticate, what it can do. A new
 * compatible vendor is a spec, not a copy of this file.
 */
import { SeedError } from '../errors.ts';
import { checkChatCompletion, checkEmbeddingResponse } from '../wire/chat-completion-check.ts';
import type { ChatCompletionRequest, EmbeddingRequest } from '../wire/openai.ts';
import {
  JSON_REQUEST_HEADERS,
  openAIErrorMessage,
  postJson,
  readErrorText,
  readJson,
  readJsonText,
  upstreamInfo,
  upstreamStatusError,
  type UpstreamResponse,
} from './http.ts';
import type {
  CallContext,
  ChatResult,
  ChatStreamResult,
  DeploymentTarget,
  EmbeddingResult,
  ProviderAdapter,
  ProviderCapabilities,
  ProviderDependencies,
} from './types.ts';
import { withJsonText } from '../wire/json-text.ts';
import { openAIStreamChunks } from './openai-stream.ts';

export interface OpenAICompatibleSpec {
  provider: string;
  capabilities: ProviderCapabilities;
  /** Full URL for an operation (`chat/completions` or `embeddings`) on a deployment. */
  url(deployment: DeploymentTarget, operation: 'chat/completions' | 'embeddings'): string;
  /** Authentication headers; may return none when the upstream needs no key. */
  authHeaders(deployment: DeploymentTarget): Record<string, string>;
  /** Whether the body carries `model` (Azure names the model in the URL instead). */
  sendsModel: boolean;
  /** Whether the upstream understands `stream_options.include_usage`. */
  streamUsage(deployment: DeploymentTarget): boolean;
  /** Request parameters this upstream rejects; they are removed with a warning. */
  unsupportedParameters?: (deployment: DeploymentTarget) => readonly string[];
  /** Whether this deployment serves embeddings; defaults to the capability table. */
  embeddings?: (deployment: DeploymentTarget) => boolean;
}

/** Joins a base URL and a path with exactly one slash. */
export function joinUrl(base: string, path: string): string {
  return `${base.endsWith('/') ? base.slice(0, -1) : base}/${path.startsWith('/') ? path.slice(1) : path}`;
}

export const FULL_CAPABILITIES: ProviderCapabilities = Object.freeze({
  chat: true,
  streaming: true,
  embeddings: true,
  tools: true,
  images: true,
  jsonSchema: true,
  multipleChoices: true,
});

/** Builds an adapter for an OpenAI-compatible upstream described by `spec`. */
export function createOpenAICompatibleAdapter(
  spec: OpenAICompatibleSpec,
  dependencies: ProviderDependencies,
): ProviderAdapter {
  // Copies here use Object.assign and drop fields by setting them undefined (JSON.stringify leaves
  // those out): in Node 20 a key added to a spread copy costs about 1 µs, and `delete` turns the
  // object into a dictionary that serializes slower. Both run on every call.
  // A deployment's own headers (JSON, auth, its configured ones) are the same on every call:
  // built once per deployment object (a config reload makes new ones), copied with the call's id.
  const fixedHeaders = new WeakMap<DeploymentTarget, Readonly<Record<string, string>>>();
  const headersFor = (context: CallContext): Record<string, string> => {
    const { deployment } = context;
    let fixed = fixedHeaders.get(deployment);
    if (fixed === undefined) {
      fixed = Object.freeze(Object.assign({}, JSON_REQUEST_HEADERS, spec.authHeaders(deployment), deployment.headers));
      fixedHeaders.set(deployment, fixed);
    }
    return Object.assign({}, fixed, { 'x-request-id': context.requestId });
  };

  const bodyFor = (
    request: ChatCompletionRequest | EmbeddingRequest,
    deployment: DeploymentTarget,
  ): { body: Record<string, unknown>; warnings: string[] } => {
    const body: Record<string, unknown> = Object.assign({}, request);
    body.model = spec.sendsModel ? deployment.model : undefined;
    const warnings: string[] = [];
    for (const parameter of spec.unsupportedParameters?.(deployment) ?? []) {
      if (body[parameter] !== undefined) {
        body[parameter] = undefined;
        warnings.push(`${parameter} is not supported by deployment ${deployment.name} and was not sent`);
      }
    }
    return { body, warnings };
  };

  /**
   * Throws the upstream's error for a response that is not 2xx. Called only then (`isOk` first):
   * an async check awaited on every call cost a promise and a suspended frame on every 2xx.
   */
  const upstreamFailure = async (response: UpstreamResponse, context: CallContext): Promise<never> => {
    const { message, param } = openAIErrorMessage(await readErrorText(response));
    throw upstreamStatusError({
      status: response.status,
      headers: response.headers,
      message,
      param,
      label: context.deployment.name,
    });
  };

  const send = (operation: 'chat/completions' | 'embeddings', body: unknown, context: CallContext) =>
    postJson({
      dispatcher: dependencies.dispatcher,
      url: spec.url(context.deployment, operation),
      headers: headersFor(context),
      body,
      signal: context.signal,
      timeoutMs: context.timeoutMs,
      label: context.deployment.name,
    });

  return {
    provider: spec.provider,
    capabilities: spec.capabilities,

    async chat(request, context): Promise<ChatResult> {
      const { body, warnings } = bodyFor(request, context.deployment);
      body.stream = undefined;
      body.stream_options = undefined;
      const response = await send('chat/completions', body, context);
      if (!isOk(response)) await upstreamFailure(response, context);
      // Usually read at once (the answer came whole with its headers): no await, no extra turn.
      const read = readJsonText(response, context.deployment.name);
      const answer = read instanceof Promise ? await read : read;
      // Checked in place (chat-completion-check.ts): what the schema accepts, without zod's copy.
      // The value is what came, so the client gets the upstream's own text.
      const checked = checkChatCompletion(answer.value);
      if (!checked.ok) throw invalidResponse(context, checked.path);
      return { response: withJsonText(checked.value, answer.text), upstream: upstreamInfo(response), warnings };
    },

    async streamChat(request, context): Promise<ChatStreamResult> {
      const { body, warnings } = bodyFor(request, context.deployment);
      body.stream = true;
      // Usage is how the ledger and the limiter settle; ask for it even if the client did not.
      if (spec.streamUsage(context.deployment)) {
        body.stream_options = Object.assign({}, request.stream_options, { include_usage: true });
      } else body.stream_options = undefined;
      const response = await send('chat/completions', body, context);
      if (!isOk(response)) await upstreamFailure(response, context);
      return {
        chunks: openAIStreamChunks(response, context.deployment.name, context.signal),
        upstream: upstreamInfo(response),
        warnings,
      };
    },

    async embed(request, context): Promise<EmbeddingResult> {
      if (!(spec.embeddings?.(context.deployment) ?? spec.capabilities.embeddings)) {
        throw new SeedError('invalid_request', `Deployment ${context.deployment.name} does not serve embeddings.`, {
          param: 'model',
        });
      }
      const { body, warnings } = bodyFor(request, context.deployment);
      const response = await send('embeddings', body, context);
      if (!isOk(response)) await upstreamFailure(response, context);
      const checked = checkEmbeddingResponse(await readJson(response, context.deployment.name));
      if (!checked.ok) throw invalidResponse(context, checked.path);
      return { response: checked.value, upstream: upstreamInfo(response), warnings };
    },
  };
}

function isOk(response: UpstreamResponse): boolean {
  return response.status >= 200 && response.status < 300;
}

function invalidResponse(context: CallContext, where: string): SeedError {
  return new SeedError(
    'upstream_invalid_response',
    `Deployment ${context.deployment.name} returned a response that does not match the Chat Completions format${
      where ? ` (at ${where})` : ''
    }.`,
  );
}
