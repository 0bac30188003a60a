/**
 * One conformance suite, run against every provider adapter talking to the simulator in its
 * own wire format: the same canonical (OpenAI-shaped) results and the same normalized errors,
 * whatever the upstream speaks.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent } from 'undici';
import { SeedError } from '../src/errors.ts';
import { BUILTIN_PROVIDERS } from '../src/providers/registry.ts';
import type { CallContext, DeploymentTarget, ProviderAdapter } from '../src/providers/types.ts';
import { startSimulator } from '../src/simulator/index.ts';
import type { ChatCompletionChunk, ChatCompletionRequest } from '../src/wire/openai.ts';
import { parsedChunks } from '../src/wire/stream-chunk.ts';

type Simulator = Awaited<ReturnType<typeof startSimulator>>;
let simulator: Simulator;
const dispatcher = new Agent();

before(async () => {
  simulator = await startSimulator({ port: 0 });
});
after(async () => {
  await simulator.close();
  await dispatcher.close();
});

const targets: Record<string, (url: string) => Omit<DeploymentTarget, 'headers'>> = {
  openai: (url) => ({ name: 'c-openai', provider: 'openai', baseUrl: `${url}/v1`, model: 'gpt-4o-mini', apiKey: 'sk', region: 'us', options: {} }),
  'azure-openai': (url) => ({ name: 'c-azure', provider: 'azure-openai', baseUrl: url, model: 'gpt-4o-mini', apiKey: 'az', region: 'eu', options: {} }),
  'openai-compatible': (url) => ({ name: 'c-compat', provider: 'openai-compatible', baseUrl: `${url}/v1`, model: 'llama', apiKey: undefined, region: 'us', options: {} }),
  anthropic: (url) => ({ name: 'c-anthropic', provider: 'anthropic', baseUrl: url, model: 'claude-sonnet-4', apiKey: 'sk-ant', region: 'us', options: {} }),
};

const request: ChatCompletionRequest = {
  model: 'route',
  messages: [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'Hello there' },
  ],
  max_tokens: 30,
};

const tools: ChatCompletionRequest['tools'] = [
  { type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: { query: { type: 'string' } }, required: ['query'] } } },
];

test('every built-in provider is covered by this suite', () => {
  assert.deepEqual(BUILTIN_PROVIDERS.map((definition) => definition.name).sort(), Object.keys(targets).sort());
});

for (const definition of BUILTIN_PROVIDERS) {
  describe(`adapter ${definition.name}`, () => {
    let adapter: ProviderAdapter;
    const context = (headers: Record<string, string> = {}): CallContext => ({
      deployment: { ...targets[definition.name]!(simulator.url), headers },
      signal: new AbortController().signal,
      timeoutMs: 5_000,
      requestId: 'req_conformance',
    });
    before(() => {
      adapter = definition.create({ dispatcher, now: Date.now });
    });

    test('chat: an assistant message, a finish reason and usage', async () => {
      const { response, upstream } = await adapter.chat(request, context());
      assert.equal(response.object, 'chat.completion');
      assert.equal(response.choices.length, 1);
      assert.equal(response.choices[0]?.message.role, 'assistant');
      assert.ok((response.choices[0]?.message.content ?? '').length > 0);
      assert.ok(['stop', 'length'].includes(String(response.choices[0]?.finish_reason)));
      assert.ok((response.usage?.prompt_tokens ?? 0) > 0 && (response.usage?.completion_tokens ?? 0) > 0);
      assert.equal(upstream.status, 200);
    });

    test('stream: role first, content deltas, one finish reason, usage at the end', async () => {
      const { chunks } = await adapter.streamChat({ ...request, stream: true }, context());
      const received: ChatCompletionChunk[] = [];
      for await (const batch of chunks) received.push(...batch.flatMap(parsedChunks));
      const withChoices = received.filter((chunk) => chunk.choices.length > 0);
      assert.equal(withChoices[0]?.choices[0]?.delta.role, 'assistant');
      const text = withChoices.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('');
      assert.ok(text.length > 0);
      assert.equal(withChoices.filter((chunk) => chunk.choices[0]?.finish_reason).length, 1);
      assert.ok(received.some((chunk) => (chunk.usage?.completion_tokens ?? 0) > 0), 'usage reported');
      for (const chunk of received) assert.equal(chunk.object, 'chat.completion.chunk');
    });

    test('tools: a forced tool call comes back as tool_calls with JSON arguments', async () => {
      const { response } = await adapter.chat({ ...request, tools, tool_choice: 'required' }, context());
      const call = response.choices[0]?.message.tool_calls?.[0];
      assert.equal(response.choices[0]?.finish_reason, 'tool_calls');
      assert.equal(call?.function.name, 'lookup');
      assert.equal(typeof JSON.parse(call?.function.arguments ?? 'null').query, 'string');
    });

    const faults: Array<[fault: string, code: string, check?: (error: SeedError) => void]> = [
      ['429:3', 'upstream_rate_limited', (error) => assert.equal(error.retryAfterMs, 3_000)],
      ['500', 'upstream_error'],
      ['503', 'upstream_error'],
      ['400', 'upstream_bad_request'],
      ['401', 'upstream_auth_failed'],
      ['reset', 'upstream_connection_failed'],
      ['malformed-json', 'upstream_invalid_response'],
    ];
    for (const [fault, code, check] of faults) {
      test(`upstream fault ${fault} is normalized to ${code}`, async () => {
        await assert.rejects(adapter.chat(request, context({ 'x-sim-fault': fault })), (error: unknown) => {
          assert.ok(error instanceof SeedError, String(error));
          assert.equal(error.code, code, error.message);
          assert.match(error.message, /c-/, 'names the deployment');
          check?.(error);
          return true;
        });
      });
    }

    test('a stream cut mid-way fails from the iterator, not silently', async () => {
      const { chunks } = await adapter.streamChat({ ...request, stream: true }, context({ 'x-sim-fault': 'reset-mid-stream' }));
      await assert.rejects(
        (async () => {
          for await (const _chunk of chunks) void _chunk;
        })(),
        (error: unknown) => error instanceof SeedError && error.retryable,
      );
    });

    test('embeddings: served, or refused as invalid_request when the provider has none', async () => {
      const result = adapter.embed({ model: 'route', input: 'hello' }, context());
      if (definition.name === 'anthropic') {
        await assert.rejects(result, (error: unknown) => error instanceof SeedError && error.code === 'invalid_request');
      } else {
        const { response } = await result;
        assert.ok((response.data[0]?.embedding.length ?? 0) > 0);
      }
    });
  });
}
