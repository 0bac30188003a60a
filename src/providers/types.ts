/**
 * The one small interface every provider adapter implements. The core (router, gateway, jobs)
 * only ever sees this; it never names a provider. Canonical shapes are OpenAI's wire format
 * (`src/wire/openai.ts`): an adapter translates to its upstream's format and back, and
 * normalizes upstream failures into `SeedError`s inside itself.
 */
import type { UpstreamQuota } from '../errors.ts';
import type { Dispatcher } from 'undici';
import type { z } from 'zod';
import type { ChatCompletion, ChatCompletionRequest, EmbeddingRequest, EmbeddingResponse } from '../wire/openai.ts';
import type { StreamChunk } from '../wire/stream-chunk.ts';
import type { CallSignal } from '../abort.ts';

/** A deployment as an adapter sees it: resolved config, secrets interpolated. */
export interface DeploymentTarget {
  readonly name: string;
  readonly provider: string;
  readonly baseUrl: string;
  readonly model: string;
  readonly apiKey: string | undefined;
  readonly headers: Readonly<Record<string, string>>;
  readonly region: string;
  /** Adapter-specific options from config, validated by the adapter's factory. */
  readonly options: Readonly<Record<string, unknown>>;
}

export interface UpstreamInfo {
  status: number;
  /** Request id the upstream assigned, for support tickets. */
  requestId?: string;
  rateLimit: UpstreamQuota;
}

export interface CallContext {
  deployment: DeploymentTarget;
  /** Aborts when the client disconnects or the call's deadline passes. */
  signal: CallSignal;
  /** Milliseconds left for this attempt; the adapter must not wait longer. */
  timeoutMs: number;
  requestId: string;
}

export interface ChatResult {
  response: ChatCompletion;
  upstream: UpstreamInfo;
  /** Parameters the upstream cannot honour, each as a short sentence. Never dropped silently. */
  warnings: string[];
}

export interface ChatStreamResult {
  /**
   * Resolved once the upstream accepted the request (2xx headers); chunks follow in batches,
   * one per upstream read (never empty), so a fast stream costs one async step per read, not per chunk.
   * A chunk is parsed, or a plain content chunk left as the upstream's text (`UnparsedChunk`,
   * src/wire/stream-chunk.ts) when the adapter can vouch it carries nothing the gateway reads.
   */
  chunks: AsyncIterable<readonly StreamChunk[]>;
  upstream: UpstreamInfo;
  warnings: string[];
}

export interface EmbeddingResult {
  response: EmbeddingResponse;
  upstream: UpstreamInfo;
  warnings: string[];
}

export interface ProviderCapabilities {
  chat: boolean;
  streaming: boolean;
  embeddings: boolean;
  tools: boolean;
  images: boolean;
  jsonSchema: boolean;
  /** Whether `n > 1` is supported natively. */
  multipleChoices: boolean;
}

export interface ProviderAdapter {
  readonly provider: string;
  readonly capabilities: ProviderCapabilities;
  chat(request: ChatCompletionRequest, context: CallContext): Promise<ChatResult>;
  /**
   * Starts a stream. Rejects (with a SeedError) if the upstream refuses before sending any
   * event, so the router may retry; errors after that surface from the iterator.
   */
  streamChat(request: ChatCompletionRequest, context: CallContext): Promise<ChatStreamResult>;
  embed(request: EmbeddingRequest, context: CallContext): Promise<EmbeddingResult>;
}

/** What the composition root hands every adapter factory; tests substitute these. */
export interface ProviderDependencies {
  /** HTTP connection pool for upstream calls. */
  dispatcher: Dispatcher;
  /** Milliseconds since the epoch. */
  now: () => number;
}

export type ProviderFactory = (dependencies: ProviderDependencies) => ProviderAdapter;

/** A provider as the registry knows it: its name, its options schema, its factory. */
export interface ProviderDefinition {
  readonly name: string;
  /** Validates a deployment's `options` in seed.yaml (checked at config load, with line numbers). */
  readonly optionsSchema: z.ZodType;
  readonly create: ProviderFactory;
  /** Terms profile of deployments that name none; absent when only the operator can know it. */
  readonly defaultTerms?: string;
}
