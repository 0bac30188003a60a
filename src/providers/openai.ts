/** The `openai` provider: OpenAI's own API, bearer-token auth, everything supported. */
import { z } from 'zod';
import { createOpenAICompatibleAdapter, FULL_CAPABILITIES, joinUrl } from './openai-compatible.ts';
import { optionsOf } from './options.ts';
import type { ProviderDefinition } from './types.ts';

const optionsSchema = z
  .object({
    /** Sent as `OpenAI-Organization`. */
    organization: z.string().optional(),
    /** Sent as `OpenAI-Project`. */
    project: z.string().optional(),
  })
  .strict();

export const openAIProvider: ProviderDefinition = {
  name: 'openai',
  optionsSchema,
  defaultTerms: 'openai',
  create: (dependencies) =>
    createOpenAICompatibleAdapter(
      {
        provider: 'openai',
        capabilities: FULL_CAPABILITIES,
        url: (deployment, operation) => joinUrl(deployment.baseUrl, operation),
        authHeaders: (deployment) => {
          const options = optionsOf(optionsSchema, deployment);
          const headers: Record<string, string> = {};
          if (deployment.apiKey) headers['authorization'] = `Bearer ${deployment.apiKey}`;
          if (options.organization) headers['openai-organization'] = options.organization;
          if (options.project) headers['openai-project'] = options.project;
          return headers;
        },
        sendsModel: true,
        streamUsage: () => true,
      },
      dependencies,
    ),
};
