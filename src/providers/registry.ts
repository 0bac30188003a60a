/**
 * The provider registry: names to definitions. The only place that lists providers; the core
 * asks the registry for an adapter by a deployment's `provider` and never names one itself.
 */
import { anthropicOptionsSchema, anthropicProvider } from './anthropic.ts';
import { azureOpenAIProvider } from './azure-openai.ts';
import { openAICompatibleProvider } from './openai-compatible-provider.ts';
import { openAIProvider } from './openai.ts';
import type { ProviderAdapter, ProviderDefinition, ProviderDependencies } from './types.ts';

export const BUILTIN_PROVIDERS: readonly ProviderDefinition[] = Object.freeze([
  openAIProvider,
  azureOpenAIProvider,
  openAICompatibleProvider,
  { name: 'anthropic', optionsSchema: anthropicOptionsSchema, create: anthropicProvider, defaultTerms: 'anthropic' },
]);

export interface ProviderRegistry {
  names(): string[];
  definition(name: string): ProviderDefinition | undefined;
  /** One adapter instance per provider, created on first use. */
  adapter(name: string): ProviderAdapter;
}

export function createProviderRegistry(input: {
  definitions?: readonly ProviderDefinition[];
  dependencies: ProviderDependencies;
}): ProviderRegistry {
  const definitions = new Map((input.definitions ?? BUILTIN_PROVIDERS).map((definition) => [definition.name, definition]));
  const adapters = new Map<string, ProviderAdapter>();
  return {
    names: () => [...definitions.keys()],
    definition: (name) => definitions.get(name),
    adapter(name) {
      let adapter = adapters.get(name);
      if (!adapter) {
        const definition = definitions.get(name);
        if (!definition) throw new Error(`unknown provider "${name}" (known: ${[...definitions.keys()].join(', ')})`);
        adapter = definition.create(input.dependencies);
        adapters.set(name, adapter);
      }
      return adapter;
    },
  };
}
