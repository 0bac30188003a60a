/**
 * The anthropic adapter against recorded Messages API fixtures, over real HTTP: a local
 * node:http server plays Anthropic, the adapter talks to it through an undici Agent, and the
 * tests assert both the OpenAI-shaped output and the body the adapter sent upstream.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { readFileSync } from 'node:fs';
import { Agent } from 'undici';
import { SeedError } from '../src/errors.ts';
import { anthropicProvider } from '../src/providers/anthropic.ts';
import type { CallContext, DeploymentTarget, ProviderAdapter } from '../src/providers/types.ts';
import type { ChatCompletionChunk, ChatCompletionRequest } from '../src/wire/openai.ts';
import { parsedChunks, type StreamChunk } from '../src/wire/stream-chunk.ts';
import { listenOnLoopback } from './helpers/loopback.ts';

const NOW = Date.parse('2025-06-01T12:00:00Z');
const fixture = (name: string): string => readFileSync(new URL(`./fixtures/anthropic/${name}`, import.meta.url), 'utf8');
const recordedHeaders = JSON.parse(fixture('headers.json')) as Record<string, string>;
const sseHeaders = { ...recordedHeaders, 'content-type': 'text/event-stream; charset=utf-8' };

interface PlannedResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

interface CapturedRequest {
  method: string | undefined;
  url: string | undefined;
  headers: IncomingHttpHeaders;
  body: unknown;
}

const planned: PlannedResponse[] = [];
const captured: CapturedRequest[] = [];
let server: Server;
let dispatcher: Agent;
let adapter: ProviderAdapter;
let baseUrl: string;

before(async () => {
  server = createServer((request, response) => {
    let text = '';
    request.setEncoding('utf8');
    request.on('data', (piece: string) => (text += piece));
    request.on('end', () => {
      captured.push({ method: request.method, url: request.url, headers: request.headers, body: JSON.parse(text) as unknown });
      const next = planned.shift() ?? { status: 500, headers: {}, body: 'no response planned' };
      response.writeHead(next.status, next.headers);
      // Small slices, so SSE events straddle network reads as they do from the real API.
      for (let offset = 0; offset < next.body.length; offset += 61) response.write(next.body.slice(offset, offset + 61));
      response.end();
    });
  });
  baseUrl = `${await listenOnLoopback(server)}/v1/`;
  dispatcher = new Agent({ connections: 4 });
  adapter = anthropicProvider({ dispatcher, now: () => NOW });
});

after(async () => {
  await dispatcher.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function respond(response: PlannedResponse): void {
  planned.length = 0;
  captured.length = 0;
  planned.push(response);
}

function context(overrides: Partial<DeploymentTarget> = {}): CallContext {
  const deployment: DeploymentTarget = {
    name: 'claude-eu',
    provider: 'anthropic',
    baseUrl,
    model: 'claude-sonnet-4-5-20250929',
    apiKey: 'sk-ant-test-key',
    headers: { 'anthropic-beta': 'token-efficient-tools-2025-02-19' },
    region: 'eu',
    options: { defaultMaxTokens: 1024 },
    ...overrides,
  };
  return { deployment, signal: new AbortController().signal, timeoutMs: 5_000, requestId: 'call-1' };
}

function lastBody(): Record<string, unknown> {
  const request = captured.at(-1);
  assert.ok(request, 'the adapter sent no request');
  return request.body as Record<string, unknown>;
}

async function collect(batches: AsyncIterable<readonly StreamChunk[]>): Promise<ChatCompletionChunk[]> {
  const all: ChatCompletionChunk[] = [];
  for await (const batch of batches) {
    assert.ok(batch.length > 0, 'an empty batch');
    all.push(...batch.flatMap(parsedChunks));
  }
  return all;
}

async function rejection(promise: Promise<unknown>): Promise<SeedError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof SeedError, `expected a SeedError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected a rejection');
}

describe('anthropic chat (recorded responses)', () => {
  test('a full conversation is translated into the Messages body and the text reply back', async () => {
    respond({ status: 200, headers: recordedHeaders, body: fixture('message-text.json') });
    const request: ChatCompletionRequest = {
      model: 'assistant-default',
      messages: [
        { role: 'system', content: 'You are Seed’s test assistant.' },
        { role: 'developer', content: [{ type: 'text', text: 'Answer in one sentence.' }] },
        { role: 'user', content: 'What is in this picture?' },
        {
          role: 'user',
          content: [
            { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
            { type: 'image_url', image_url: { url: 'https://example.com/cat.jpg' } },
          ],
        },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            { id: 'toolu_1', type: 'function', function: { name: 'describe_image', arguments: '{"index":0}' } },
            { id: 'toolu_2', type: 'function', function: { name: 'describe_image', arguments: '{"index":1}' } },
          ],
        },
        { role: 'tool', tool_call_id: 'toolu_1', content: 'a chart' },
        { role: 'tool', tool_call_id: 'toolu_2', content: [{ type: 'text', text: 'a cat' }] },
        { role: 'user', content: 'And your name?' },
      ],
      tools: [
        {
          type: 'function',
          function: {
            name: 'describe_image',
            description: 'Describes one image.',
            parameters: { type: 'object', properties: { index: { type: 'integer' } }, required: ['index'] },
          },
        },
      ],
      tool_choice: 'required',
      parallel_tool_calls: false,
      stop: 'END',
      temperature: 1.4,
      top_p: 0.9,
      user: 'user-42',
      seed: 7,
    };
    const result = await adapter.chat(request, context());

    const sent = captured.at(-1);
    assert.equal(sent?.method, 'POST');
    assert.equal(sent?.url, '/v1/messages');
    assert.equal(sent?.headers['x-api-key'], 'sk-ant-test-key');
    assert.equal(sent?.headers['anthropic-version'], '2023-06-01');
    assert.equal(sent?.headers['anthropic-beta'], 'token-efficient-tools-2025-02-19');
    assert.deepEqual(lastBody(), {
      model: 'claude-sonnet-4-5-20250929',
      max_tokens: 1024,
      system: [
        { type: 'text', text: 'You are Seed’s test assistant.' },
        { type: 'text', text: 'Answer in one sentence.' },
      ],
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'What is in this picture?' },
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
            { type: 'image', source: { type: 'url', url: 'https://example.com/cat.jpg' } },
          ],
        },
        {
          role: 'assistant',
          content: [
            { type: 'tool_use', id: 'toolu_1', name: 'describe_image', input: { index: 0 } },
            { type: 'tool_use', id: 'toolu_2', name: 'describe_image', input: { index: 1 } },
          ],
        },
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: 'toolu_1', content: 'a chart' },
            { type: 'tool_result', tool_use_id: 'toolu_2', content: [{ type: 'text', text: 'a cat' }] },
            { type: 'text', text: 'And your name?' },
          ],
        },
      ],
      stop_sequences: ['END'],
      temperature: 1,
      top_p: 0.9,
      tools: [
        {
          name: 'describe_image',
          description: 'Describes one image.',
          input_schema: { type: 'object', properties: { index: { type: 'integer' } }, required: ['index'] },
        },
      ],
      tool_choice: { type: 'any', disable_parallel_tool_use: true },
      metadata: { user_id: 'user-42' },
    });

    assert.deepEqual(result.response, {
      id: 'msg_013Zva2CMHLNnXjNJJKqJ2EF',
      object: 'chat.completion',
      created: NOW / 1000,
      model: 'claude-sonnet-4-5-20250929',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: 'Hi! My name is Claude.', refusal: null },
          finish_reason: 'stop',
          logprobs: null,
        },
      ],
      usage: { prompt_tokens: 2095, completion_tokens: 503, total_tokens: 2598, prompt_tokens_details: { cached_tokens: 0 } },
    });
    assert.deepEqual(result.upstream, {
      status: 200,
      requestId: 'req_018EeWyXxfu5pfWkrYcMdjWG',
      rateLimit: {
        limitRequests: 50,
        remainingRequests: 49,
        resetRequestsMs: 1_000,
        limitTokens: 38_000,
        remainingTokens: 35_000,
        resetTokensMs: 6_000,
      },
    });
    assert.deepEqual(result.warnings, [
      'Parameter `seed` is not supported by Anthropic and was ignored.',
      "temperature 1.4 is above Anthropic's maximum of 1 and was clamped to 1.",
    ]);
  });

  test('tool_use blocks become tool_calls with JSON-string arguments', async () => {
    respond({ status: 200, headers: recordedHeaders, body: fixture('message-tool-use.json') });
    const result = await adapter.chat(
      { model: 'assistant', messages: [{ role: 'user', content: 'Weather in SF?' }], max_tokens: 300 },
      context(),
    );
    assert.equal(lastBody()['max_tokens'], 300);
    const choice = result.response.choices[0];
    assert.equal(choice?.finish_reason, 'tool_calls');
    assert.equal(choice?.message.content, "I'll check the current weather in San Francisco for you.");
    assert.deepEqual(choice?.message.tool_calls, [
      {
        id: 'toolu_01A09q90qw90lq917835lq9',
        type: 'function',
        function: { name: 'get_weather', arguments: '{"location":"San Francisco, CA","unit":"celsius"}' },
      },
    ]);
  });

  test('max_tokens stops as length, cache tokens count as prompt tokens, thinking never leaks', async () => {
    respond({ status: 200, headers: recordedHeaders, body: fixture('message-max-tokens.json') });
    const result = await adapter.chat({ model: 'assistant', messages: [{ role: 'user', content: 'A long story, please.' }] }, context());
    const choice = result.response.choices[0];
    assert.equal(choice?.finish_reason, 'length');
    assert.equal(
      choice?.message.content,
      'The lighthouse keeper had not spoken to another soul in three winters. Each evening he climbed the hundred and',
    );
    assert.doesNotMatch(JSON.stringify(result.response), /plan the arc|EqQBCgIYAhIM|EmwKAhgB/);
    assert.deepEqual(result.response.usage, {
      prompt_tokens: 21 + 1_800 + 188,
      completion_tokens: 64,
      total_tokens: 21 + 1_800 + 188 + 64,
      prompt_tokens_details: { cached_tokens: 1_800 },
    });
  });

  test('json_schema response_format is forced through a tool and returned as content', async () => {
    respond({ status: 200, headers: recordedHeaders, body: fixture('message-response-format.json') });
    const schema = {
      type: 'object',
      properties: { city: { type: 'string' }, temperature_celsius: { type: 'number' }, conditions: { type: 'array', items: { type: 'string' } } },
      required: ['city', 'temperature_celsius', 'conditions'],
    };
    const result = await adapter.chat(
      {
        model: 'assistant',
        messages: [{ role: 'user', content: 'Weather report for Paris as JSON.' }],
        response_format: { type: 'json_schema', json_schema: { name: 'weather_report', schema, strict: true } },
      },
      context(),
    );
    assert.deepEqual(lastBody()['tools'], [
      { name: 'weather_report', description: 'Give your complete answer as the input of this tool, as a JSON object.', input_schema: schema },
    ]);
    assert.deepEqual(lastBody()['tool_choice'], { type: 'tool', name: 'weather_report' });
    const choice = result.response.choices[0];
    assert.equal(choice?.finish_reason, 'stop');
    assert.equal(choice?.message.tool_calls, undefined);
    assert.deepEqual(JSON.parse(choice?.message.content ?? 'null'), {
      city: 'Paris',
      temperature_celsius: 18,
      conditions: ['cloudy', 'light rain'],
    });
  });
});

describe('anthropic upstream errors (recorded bodies)', () => {
  test('529 overloaded is a retryable upstream_error with the upstream message', async () => {
    respond({ status: 529, headers: { 'content-type': 'application/json' }, body: fixture('error-overloaded.json') });
    const error = await rejection(adapter.chat({ model: 'a', messages: [{ role: 'user', content: 'Hi' }] }, context()));
    assert.equal(error.code, 'upstream_error');
    assert.equal(error.retryable, true);
    assert.equal(error.upstreamStatus, 529);
    assert.equal(error.message, 'Deployment claude-eu answered 529: overloaded_error: Overloaded');
  });

  test('429 honours retry-after', async () => {
    respond({
      status: 429,
      headers: { ...recordedHeaders, 'retry-after': '17', 'anthropic-ratelimit-input-tokens-remaining': '0' },
      body: fixture('error-rate-limit.json'),
    });
    const error = await rejection(adapter.chat({ model: 'a', messages: [{ role: 'user', content: 'Hi' }] }, context()));
    assert.equal(error.code, 'upstream_rate_limited');
    assert.equal(error.retryAfterMs, 17_000);
    assert.match(error.message, /^Deployment claude-eu answered 429: rate_limit_error: This request would exceed the rate limit/);
  });

  test('429 without retry-after waits until the exhausted Anthropic bucket resets', async () => {
    respond({
      status: 429,
      headers: {
        'content-type': 'application/json',
        'anthropic-ratelimit-requests-remaining': '0',
        'anthropic-ratelimit-requests-reset': '2025-06-01T12:00:09Z',
        'anthropic-ratelimit-tokens-remaining': '5000',
        'anthropic-ratelimit-tokens-reset': '2025-06-01T12:00:40Z',
      },
      body: fixture('error-rate-limit.json'),
    });
    const error = await rejection(adapter.chat({ model: 'a', messages: [{ role: 'user', content: 'Hi' }] }, context()));
    assert.equal(error.code, 'upstream_rate_limited');
    assert.equal(error.retryAfterMs, 9_000);
  });

  test('400 invalid_request_error is a non-retryable upstream_bad_request', async () => {
    respond({ status: 400, headers: { 'content-type': 'application/json' }, body: fixture('error-invalid-request.json') });
    const error = await rejection(
      adapter.chat({ model: 'a', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 100_000 }, context()),
    );
    assert.equal(error.code, 'upstream_bad_request');
    assert.equal(error.retryable, false);
    assert.match(error.message, /invalid_request_error: max_tokens: 100000 > 64000/);
  });

  test('a 200 body that is not an Anthropic message is upstream_invalid_response', async () => {
    respond({ status: 200, headers: { 'content-type': 'application/json' }, body: '{"choices":[]}' });
    const error = await rejection(adapter.chat({ model: 'a', messages: [{ role: 'user', content: 'Hi' }] }, context()));
    assert.equal(error.code, 'upstream_invalid_response');
  });

  test('a stream refused before any event rejects streamChat itself, so the router can retry', async () => {
    respond({ status: 529, headers: { 'content-type': 'application/json' }, body: fixture('error-overloaded.json') });
    const error = await rejection(adapter.streamChat({ model: 'a', messages: [{ role: 'user', content: 'Hi' }], stream: true }, context()));
    assert.equal(error.code, 'upstream_error');
    assert.equal(lastBody()['stream'], true);
  });
});

describe('anthropic streaming (recorded event sequences)', () => {
  const base = { id: 'msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY', object: 'chat.completion.chunk', created: NOW / 1000, model: 'claude-sonnet-4-5-20250929' };

  test('text stream: role chunk, content deltas, finish chunk, usage chunk', async () => {
    respond({ status: 200, headers: sseHeaders, body: fixture('stream-text.txt') });
    const result = await adapter.streamChat({ model: 'a', messages: [{ role: 'user', content: 'Hello' }], stream: true }, context());
    assert.equal(result.upstream.requestId, 'req_018EeWyXxfu5pfWkrYcMdjWG');
    const chunks = await collect(result.chunks);
    const choice = (delta: object, finishReason: string | null = null) => ({
      ...base,
      choices: [{ index: 0, delta, finish_reason: finishReason, logprobs: null }],
    });
    assert.deepEqual(chunks, [
      choice({ role: 'assistant', content: '' }),
      choice({ content: 'Hello' }),
      choice({ content: '!' }),
      choice({}, 'stop'),
      { ...base, choices: [], usage: { prompt_tokens: 25, completion_tokens: 15, total_tokens: 40, prompt_tokens_details: { cached_tokens: 0 } } },
    ]);
  });

  test('tool-use stream: id and name first, then argument fragments that join into the input', async () => {
    respond({ status: 200, headers: sseHeaders, body: fixture('stream-tool-use.txt') });
    const result = await adapter.streamChat({ model: 'a', messages: [{ role: 'user', content: 'Weather?' }], stream: true }, context());
    const chunks = await collect(result.chunks);
    const deltas = chunks.flatMap((chunk) => chunk.choices.map((choice) => choice.delta));
    const text = deltas.map((delta) => delta.content ?? '').join('');
    assert.equal(text, "Okay, let's check the weather for San Francisco, CA:");
    const toolDeltas = deltas.flatMap((delta) => delta.tool_calls ?? []);
    assert.deepEqual(toolDeltas[0], {
      index: 0,
      id: 'toolu_01T1x1fJ34qAmk2tNTrN7Up6',
      type: 'function',
      function: { name: 'get_weather', arguments: '' },
    });
    assert.ok(toolDeltas.slice(1).every((delta) => delta.index === 0 && delta.id === undefined && delta.function?.name === undefined));
    const argumentsText = toolDeltas.map((delta) => delta.function?.arguments ?? '').join('');
    assert.deepEqual(JSON.parse(argumentsText), { location: 'San Francisco, CA', unit: 'fahrenheit' });
    assert.equal(chunks.at(-2)?.choices[0]?.finish_reason, 'tool_calls');
    assert.deepEqual(chunks.at(-1)?.usage, {
      prompt_tokens: 472,
      completion_tokens: 89,
      total_tokens: 561,
      prompt_tokens_details: { cached_tokens: 0 },
    });
  });

  test('thinking is dropped and parallel tool calls are numbered among tool calls only', async () => {
    respond({ status: 200, headers: sseHeaders, body: fixture('stream-thinking-parallel-tools.txt') });
    const result = await adapter.streamChat({ model: 'a', messages: [{ role: 'user', content: 'Paris and Tokyo?' }], stream: true }, context());
    const chunks = await collect(result.chunks);
    assert.doesNotMatch(JSON.stringify(chunks), /two cities|EqQBCgIYAhIM/);
    const toolDeltas = chunks.flatMap((chunk) => chunk.choices.flatMap((choice) => choice.delta.tool_calls ?? []));
    const byIndex = new Map<number, string>();
    for (const delta of toolDeltas) byIndex.set(delta.index, (byIndex.get(delta.index) ?? '') + (delta.function?.arguments ?? ''));
    assert.deepEqual([...byIndex.keys()], [0, 1]);
    assert.deepEqual(JSON.parse(byIndex.get(0) ?? ''), { location: 'Paris, France' });
    assert.deepEqual(JSON.parse(byIndex.get(1) ?? ''), { location: 'Tokyo, Japan' });
    assert.deepEqual(
      toolDeltas.filter((delta) => delta.id !== undefined).map((delta) => delta.id),
      ['toolu_01Paris7hT3uVh8c1kq2ZsXw', 'toolu_01Tokyo2aB9cD8eF7gH6iJ5k'],
    );
    assert.deepEqual(chunks.at(-1)?.usage, {
      prompt_tokens: 610 + 2_048,
      completion_tokens: 142,
      total_tokens: 610 + 2_048 + 142,
      prompt_tokens_details: { cached_tokens: 2_048 },
    });
  });

  test('an error event mid-stream surfaces from the iterator as a retryable SeedError', async () => {
    respond({ status: 200, headers: sseHeaders, body: fixture('stream-error.txt') });
    const result = await adapter.streamChat({ model: 'a', messages: [{ role: 'user', content: 'Story' }], stream: true }, context());
    const received: string[] = [];
    const error = await rejection(
      (async () => {
        for await (const batch of result.chunks) for (const chunk of batch) received.push(...parsedChunks(chunk).map((parsed) => parsed.choices[0]?.delta.content ?? ''));
      })(),
    );
    assert.deepEqual(received, ['', 'Once upon']);
    assert.equal(error.code, 'upstream_error');
    assert.equal(error.retryable, true);
    assert.match(error.message, /overloaded_error: Overloaded/);
  });
});

describe('anthropic adapter surface', () => {
  test('embeddings are refused with invalid_request on param model', async () => {
    assert.equal(adapter.capabilities.embeddings, false);
    const error = await rejection(adapter.embed({ model: 'claude', input: 'text' }, context()));
    assert.equal(error.code, 'invalid_request');
    assert.equal(error.param, 'model');
  });

  test('invalid adapter options fail with a message naming the deployment and the option', async () => {
    captured.length = 0;
    const error = await rejection(
      adapter.chat({ model: 'a', messages: [{ role: 'user', content: 'Hi' }] }, context({ options: { defaultMaxTokens: -5, versoin: 'x' } })),
    );
    assert.equal(error.code, 'internal_error');
    assert.match(error.message, /claude-eu/);
    assert.match(error.message, /defaultMaxTokens/);
    assert.match(error.message, /versoin/);
    assert.equal(captured.length, 0);
  });

  test('the version option and a missing API key are honoured', async () => {
    respond({ status: 200, headers: recordedHeaders, body: fixture('message-text.json') });
    await adapter.chat(
      { model: 'a', messages: [{ role: 'user', content: 'Hi' }] },
      context({ apiKey: undefined, headers: {}, options: { version: '2024-01-01' } }),
    );
    assert.equal(captured.at(-1)?.headers['anthropic-version'], '2024-01-01');
    assert.equal(captured.at(-1)?.headers['x-api-key'], undefined);
    assert.equal(lastBody()['max_tokens'], 4096);
  });
});
