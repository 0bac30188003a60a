/**
 * The OpenAI-compatible base. Any upstream that speaks OpenAI's Chat Completions wire format
 * (OpenAI itself, Azure OpenAI, vLLM, Ollama, llama.cpp server, LM Studio, TGI) is this adapter
 * plus a few fields: where to send requests, how to authenticate, what it can do. A new
 * compatible vendor is a spec, not a copy of this file.
 */
import { SeedError } from '../errors.ts';
import {
  chatCompletionSchema,
  embeddingResponseSchema,
  type ChatCompletionChunk,
  type ChatCompletionRequest,
  type EmbeddingRequest,
} from '../wire/openai.ts';
import {
  openAIErrorMessage,
  postJson,
  readErrorText,
  readJson,
  readJsonText,
  sseEventBatches,
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
import { UnparsedChunk, type StreamChunk } from '../wire/stream-chunk.ts';
import { MUST_PARSE, PlainChunkScanner } from './openai-chunk-scan.ts';

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
  const headersFor = (context: CallContext): Record<string, string> =>
    Object.assign({}, spec.authHeaders(context.deployment), context.deployment.headers, { 'x-request-id': context.requestId });

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

  const failIfNotOk = async (response: UpstreamResponse, context: CallContext): Promise<void> => {
    if (response.status >= 200 && response.status < 300) return;
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
      await failIfNotOk(response, context);
      const answer = await readJsonText(response, context.deployment.name, context.signal);
      const parsed = chatCompletionSchema.safeParse(answer.value);
      if (!parsed.success) throw invalidResponse(context, parsed.error.issues[0]?.path.join('.') ?? '');
      // The schema is loose and has no defaults or transforms: what it accepted is what came,
      // so the client gets the upstream's own text.
      return { response: withJsonText(parsed.data, answer.text), upstream: upstreamInfo(response), warnings };
    },

    async streamChat(request, context): Promise<ChatStreamResult> {
      const { body, warnings } = bodyFor(request, context.deployment);
      body.stream = true;
      // Usage is how the ledger and the limiter settle; ask for it even if the client did not.
      if (spec.streamUsage(context.deployment)) {
        body.stream_options = Object.assign({}, request.stream_options, { include_usage: true });
      } else body.stream_options = undefined;
      const response = await send('chat/completions', body, context);
      await failIfNotOk(response, context);
      return {
        chunks: openAIStreamChunks({
          events: sseEventBatches(response, context.deployment.name, context.signal),
          label: context.deployment.name,
        }),
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
      await failIfNotOk(response, context);
      const parsed = embeddingResponseSchema.safeParse(
        await readJson(response, context.deployment.name, context.signal),
      );
      if (!parsed.success) throw invalidResponse(context, parsed.error.issues[0]?.path.join('.') ?? '');
      return { response: parsed.data, upstream: upstreamInfo(response), warnings };
    },
  };
}

function invalidResponse(context: CallContext, where: string): SeedError {
  return new SeedError(
    'upstream_invalid_response',
    `Deployment ${context.deployment.name} returned a response that does not match the Chat Completions format${
      where ? ` (at ${where})` : ''
    }.`,
  );
}

/**
 * Chunks of an OpenAI-format stream, one batch per upstream read (see `sseEventBatches`).
 * Plain content chunks (no usage, no finish reason, no error; see openai-chunk-scan.ts) pass
 * unparsed, as `UnparsedChunk`s; the rest are parsed, each keeping the JSON text it came from
 * (json-text.ts), so the gateway relays every chunk without serializing it again. Throws a
 * SeedError for an event that is not a chunk, an error event, or a stream that ends unfinished.
 *
 * @example
 * const events = sseEventBatches(response, label, signal);
 * for await (const chunks of openAIStreamChunks({ events, label })) {
 *   for (const chunk of chunks) process.stdout.write(`data: ${streamChunkText(chunk)}\n\n`);
 * }
 */
export async function* openAIStreamChunks(input: {
  events: AsyncIterable<ReadonlyArray<{ data: string }>>;
  /** Names the deployment in error messages. */
  label: string;
}): AsyncGenerator<StreamChunk[]> {
  let finished = false;
  const scanner = new PlainChunkScanner();
  for await (const events of input.events) {
    const batch: StreamChunk[] = [];
    let done = false;
    let failure: unknown = null;
    try {
      for (const event of events) {
        const data = event.data.trim();
        if (data === '') continue;
        if (data === '[DONE]') {
          done = true;
          break;
        }
        const completionChars = scanner.scan(data);
        if (completionChars !== MUST_PARSE) {
          batch.push(new UnparsedChunk(data, completionChars));
          continue;
        }
        const chunk = parseChunk(data, input.label);
        if (chunk.choices.some((choice) => choice.finish_reason)) finished = true;
        // Chunks with neither choices nor usage (Azure's prompt-filter results, sent first with an
        // empty id and object) carry nothing of the canonical format: clients do not get them.
        if (chunk.choices.length === 0 && !chunk.usage) continue;
        batch.push(chunk);
      }
    } catch (error) {
      failure = error;
    }
    // What arrived before a failure in the same read still reaches the client, then the error.
    if (batch.length > 0) yield batch;
    if (failure !== null) throw failure;
    if (done) return;
  }
  // Some compatible servers omit [DONE]; a stream that reached a finish_reason is complete.
  if (finished) return;
  throw new SeedError('upstream_invalid_response', `Deployment ${input.label} ended the stream before it finished.`);
}

function parseChunk(data: string, label: string): ChatCompletionChunk {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    throw new SeedError('upstream_invalid_response', `Deployment ${label} sent a stream event that is not JSON.`);
  }
  if (!isChunk(value)) {
    const { message } = openAIErrorMessage(data);
    if (value !== null && typeof value === 'object' && 'error' in value) {
      throw new SeedError('upstream_error', `Deployment ${label} failed mid-stream: ${message}`);
    }
    throw new SeedError('upstream_invalid_response', `Deployment ${label} sent a stream event that is not a chat.completion.chunk.`);
  }
  // Multi-line data (pretty-printed JSON over several `data:` lines) cannot be written back as
  // one SSE line: such a chunk is serialized again instead.
  return data.includes('\n') ? value : withJsonText(value, data);
}

/**
 * A cheap structural check per chunk: a full schema parse of every chunk costs more than the
 * rest of the stream path, and the fields the gateway reads are exactly these.
 */
function isChunk(value: unknown): value is ChatCompletionChunk {
  if (value === null || typeof value !== 'object') return false;
  const record = value as Record<string, unknown>;
  return Array.isArray(record.choices) && (record.usage === undefined || record.usage === null || typeof record.usage === 'object');
}
