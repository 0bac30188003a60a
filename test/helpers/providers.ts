/**
 * Every provider adapter Seed has, as the fault suites put each in front of the simulator: the
 * `provider` of a deployment, the path its `baseUrl` adds to the simulator's URL, and the terms
 * profile it serves under. Faults reach each adapter's own transport, error mapping and stream
 * reader (Anthropic's events are translated into chunks; Azure names its deployment in the path).
 */
export const PROVIDER_KINDS = [
  { name: 'openai', provider: 'openai', path: '/v1', terms: 'openai' },
  { name: 'azure', provider: 'azure-openai', path: '', terms: 'azure-openai' },
  { name: 'compatible', provider: 'openai-compatible', path: '/v1', terms: 'llama-3.1' },
  { name: 'anthropic', provider: 'anthropic', path: '', terms: 'anthropic' },
] as const;

export type ProviderKind = (typeof PROVIDER_KINDS)[number];
