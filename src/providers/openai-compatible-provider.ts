/**
 * The `openai-compatible` provider: self-hosted and third-party servers that speak OpenAI's
 * wire format (vLLM, Ollama, llama.cpp server, LM Studio, TGI). Authentication is optional;
 * what a server cannot do is declared in `options`, not discovered by failing.
 */
import { z } from 'zod';
import { createOpenAICompatibleAdapter, FULL_CAPABILITIES, joinUrl } from './openai-compatible.ts';
import { optionsOf } from './options.ts';
import type { ProviderDefinition } from './types.ts';

const optionsSchema = z
  .object({
    /** Older servers reject `stream_options`; then streamed usage is estimated by Seed. */
    streamUsage: z.boolean().default(true),
    /** Whether the server has an embeddings endpoint. */
    embeddings: z.boolean().default(true),
    /** Request parameters the server rejects; Seed removes them and warns the caller. */
    unsupportedParameters: z.array(z.string()).default([]),
  })
  .strict();

export const openAICompatibleProvider: ProviderDefinition = {
  name: 'openai-compatible',
  optionsSchema,
  create: (dependencies) =>
    createOpenAICompatibleAdapter(
      {
        provider: 'openai-compatible',
        capabilities: FULL_CAPABILITIES,
        url: (deployment, operation) => joinUrl(deployment.baseUrl, operation),
        authHeaders: (deployment): Record<string, string> => (deployment.apiKey ? { authorization: `Bearer ${deployment.apiKey}` } : {}),
        sendsModel: true,
        streamUsage: (deployment) => optionsOf(optionsSchema, deployment).streamUsage,
        unsupportedParameters: (deployment) => optionsOf(optionsSchema, deployment).unsupportedParameters,
        embeddings: (deployment) => optionsOf(optionsSchema, deployment).embeddings,
      },
      dependencies,
    ),
};
