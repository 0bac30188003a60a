/**
 * The `azure-openai` provider: Azure OpenAI's deployment URL form
 * (`{baseUrl}/openai/deployments/{model}/chat/completions?api-version=…`), `api-key` auth.
 * A deployment's `model` is the Azure deployment name.
 */
import { z } from 'zod';
import { createOpenAICompatibleAdapter, FULL_CAPABILITIES, joinUrl } from './openai-compatible.ts';
import { optionsOf } from './options.ts';
import type { ProviderDefinition } from './types.ts';

const optionsSchema = z
  .object({
    /** Azure's `api-version` query parameter. */
    apiVersion: z.string().min(1).default('2024-10-21'),
    /** Send the key as `Authorization: Bearer` (Entra ID tokens) instead of `api-key`. */
    bearerAuth: z.boolean().default(false),
  })
  .strict();

export const azureOpenAIProvider: ProviderDefinition = {
  name: 'azure-openai',
  optionsSchema,
  defaultTerms: 'azure-openai',
  create: (dependencies) =>
    createOpenAICompatibleAdapter(
      {
        provider: 'azure-openai',
        capabilities: FULL_CAPABILITIES,
        url: (deployment, operation) => {
          const { apiVersion } = optionsOf(optionsSchema, deployment);
          const path = `openai/deployments/${encodeURIComponent(deployment.model)}/${operation}`;
          return `${joinUrl(deployment.baseUrl, path)}?api-version=${encodeURIComponent(apiVersion)}`;
        },
        authHeaders: (deployment): Record<string, string> => {
          if (!deployment.apiKey) return {};
          return optionsOf(optionsSchema, deployment).bearerAuth
            ? { authorization: `Bearer ${deployment.apiKey}` }
            : { 'api-key': deployment.apiKey };
        },
        sendsModel: false,
        streamUsage: () => true,
      },
      dependencies,
    ),
};
