/**
 * The simulator's OpenAI surface: chat completions (plain, streamed, n, max_tokens, stop,
 * tools, JSON modes), embeddings, models, errors — checked against Seed's own wire schemas
 * and against the official OpenAI SDK.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startSimulator, type Simulator } from '../src/simulator/index.ts';
import {
  chatCompletionChunkSchema,
  chatCompletionSchema,
  embeddingResponseSchema,
} from '../src/wire/openai.ts';
import { call, openAIChunks, sseEvents, userMessages } from './simulator-helpers.ts';

let simulator: Simulator;

before(async () => {
  simulator = await startSimulator({
    seed: 7,
    models: { 'gpt-4o-mini': { model: 'gpt-4o-mini-2024-07-18' }, 'text-embedding-3-small': { embeddingDimensions: 64 } },
  });
});
after(() => simulator.close());

const chat = (body: Record<string, unknown>, headers: Record<string, string> = {}) =>
  call({ url: simulator.url, path: '/v1/chat/completions', body: { model: 'gpt-4o-mini', messages: userMessages, ...body }, headers });

test('a chat completion has OpenAI shape, the configured model name, usage and a request id', async () => {
  const answer = await chat({});
  assert.equal(answer.status, 200);
  assert.match(String(answer.headers['x-request-id']), /^req_/);
  const completion = chatCompletionSchema.parse(JSON.parse(answer.text));
  assert.equal(completion.model, 'gpt-4o-mini-2024-07-18');
  assert.match(completion.id, /^chatcmpl-/);
  const choice = completion.choices[0];
  assert.equal(choice?.finish_reason, 'stop');
  const content = choice?.message.content ?? '';
  const words = content.split(' ').length;
  assert.ok(words >= 16 && words <= 64, `16–64 words, got ${words}`);
  // "Tell me about the river." is 24 characters: 6 prompt tokens at 4 characters per token.
  assert.deepEqual(
    { prompt: completion.usage?.prompt_tokens, completion: completion.usage?.completion_tokens },
    { prompt: 6, completion: words },
  );
  assert.equal(completion.usage?.total_tokens, 6 + words);
});

test('n answers with distinct choices; max_tokens and max_completion_tokens cut with finish_reason length', async () => {
  const several = chatCompletionSchema.parse(JSON.parse((await chat({ n: 3 })).text));
  assert.deepEqual(
    several.choices.map((choice) => choice.index),
    [0, 1, 2],
  );
  assert.equal(new Set(several.choices.map((choice) => choice.message.content)).size, 3);
  for (const field of ['max_tokens', 'max_completion_tokens']) {
    const cut = chatCompletionSchema.parse(JSON.parse((await chat({ [field]: 5 })).text));
    assert.equal(cut.choices[0]?.finish_reason, 'length', field);
    assert.equal(cut.usage?.completion_tokens, 5);
    assert.equal(cut.choices[0]?.message.content?.split(' ').length, 5);
  }
});

test('a stop sequence ends the text before it, with finish_reason stop', async () => {
  const full = chatCompletionSchema.parse(JSON.parse((await chat({})).text)).choices[0]?.message.content ?? '';
  const third = full.split(' ')[2] ?? '';
  const stopped = chatCompletionSchema.parse(JSON.parse((await chat({ stop: [` ${third}`] })).text));
  const content = stopped.choices[0]?.message.content ?? '';
  assert.equal(content, full.slice(0, full.indexOf(` ${third}`)));
  assert.equal(stopped.choices[0]?.finish_reason, 'stop');
});

test('a stream sends a role chunk, token chunks, a finish chunk, a usage chunk and [DONE]', async () => {
  const answer = await chat({ stream: true, stream_options: { include_usage: true }, max_tokens: 4 });
  assert.equal(answer.status, 200);
  assert.match(String(answer.headers['content-type']), /^text\/event-stream/);
  const events = sseEvents(answer.text);
  assert.equal(events.at(-1)?.data, '[DONE]');
  const chunks = openAIChunks(answer.text).map((chunk) => chatCompletionChunkSchema.parse(chunk));
  assert.equal(chunks.length, 1 + 4 + 1 + 1);
  assert.equal(chunks[0]?.choices[0]?.delta.role, 'assistant');
  const text = chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('');
  assert.equal(text.split(' ').length, 4);
  assert.equal(chunks[5]?.choices[0]?.finish_reason, 'length');
  assert.equal(chunks[5]?.usage, null, 'include_usage puts usage: null on every other chunk');
  const last = chunks[6];
  assert.deepEqual(last?.choices, []);
  assert.equal(last?.usage?.completion_tokens, 4);
  assert.equal(last?.usage?.prompt_tokens, 6);
  const plain = openAIChunks((await chat({ stream: true, max_tokens: 2 })).text);
  assert.ok(plain.every((chunk) => !('usage' in chunk)), 'no usage without include_usage');
});

test('the stream and the non-stream answer carry the same text', async () => {
  const whole = chatCompletionSchema.parse(JSON.parse((await chat({ n: 2 })).text));
  const chunks = openAIChunks((await chat({ n: 2, stream: true })).text).map((chunk) => chatCompletionChunkSchema.parse(chunk));
  for (const index of [0, 1]) {
    const streamed = chunks
      .flatMap((chunk) => chunk.choices)
      .filter((choice) => choice.index === index)
      .map((choice) => choice.delta.content ?? '')
      .join('');
    assert.equal(streamed, whole.choices[index]?.message.content);
  }
});

const weatherTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' }, days: { type: 'integer' }, unit: { type: 'string', enum: ['c', 'f'] }, note: { type: 'string' } },
      required: ['city', 'days', 'unit'],
    },
  },
};

test('with tools, the model calls the first tool with arguments for its required properties', async () => {
  const completion = chatCompletionSchema.parse(JSON.parse((await chat({ tools: [weatherTool] })).text));
  const choice = completion.choices[0];
  assert.equal(choice?.finish_reason, 'tool_calls');
  assert.equal(choice?.message.content, null);
  const toolCall = choice?.message.tool_calls?.[0];
  assert.match(toolCall?.id ?? '', /^call_[0-9A-Za-z]{24}$/);
  assert.equal(toolCall?.function.name, 'get_weather');
  assert.deepEqual(JSON.parse(toolCall?.function.arguments ?? ''), { city: 'x', days: 1, unit: 'c' });
  const none = chatCompletionSchema.parse(JSON.parse((await chat({ tools: [weatherTool], tool_choice: 'none' })).text));
  assert.equal(none.choices[0]?.finish_reason, 'stop');
  const other = { type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: { id: { type: 'number' } } } } };
  const named = chatCompletionSchema.parse(
    JSON.parse((await chat({ tools: [weatherTool, other], tool_choice: { type: 'function', function: { name: 'lookup' } } })).text),
  );
  assert.deepEqual(JSON.parse(named.choices[0]?.message.tool_calls?.[0]?.function.arguments ?? ''), { id: 1 });
});

test('a streamed tool call splits its arguments over several deltas', async () => {
  const chunks = openAIChunks((await chat({ tools: [weatherTool], stream: true })).text).map((chunk) => chatCompletionChunkSchema.parse(chunk));
  const calls = chunks.flatMap((chunk) => chunk.choices[0]?.delta.tool_calls ?? []);
  assert.equal(calls[0]?.function?.name, 'get_weather');
  assert.match(calls[0]?.id ?? '', /^call_/);
  const pieces = calls.map((toolCall) => toolCall.function?.arguments ?? '');
  assert.ok(pieces.filter((piece) => piece !== '').length > 3, 'arguments arrive in pieces');
  assert.deepEqual(JSON.parse(pieces.join('')), { city: 'x', days: 1, unit: 'c' });
  assert.equal(chunks.at(-1)?.choices[0]?.finish_reason, 'tool_calls');
});

test('response_format json_object and json_schema produce valid JSON content', async () => {
  const object = chatCompletionSchema.parse(JSON.parse((await chat({ response_format: { type: 'json_object' } })).text));
  assert.equal(typeof JSON.parse(object.choices[0]?.message.content ?? '').answer, 'string');
  const schema = {
    type: 'object',
    properties: { title: { type: 'string' }, score: { type: 'number' }, tags: { type: 'array', items: { type: 'string' } }, ok: { type: 'boolean' } },
    required: ['title', 'score', 'tags', 'ok'],
  };
  const shaped = chatCompletionSchema.parse(
    JSON.parse((await chat({ response_format: { type: 'json_schema', json_schema: { name: 'review', schema } } })).text),
  );
  const value = JSON.parse(shaped.choices[0]?.message.content ?? '') as Record<string, unknown>;
  assert.deepEqual(Object.keys(value), ['title', 'score', 'tags', 'ok']);
  assert.equal(typeof value.title, 'string');
  assert.equal(value.score, 1);
  assert.ok(Array.isArray(value.tags));
  assert.equal(value.ok, true);
});

test('embeddings: deterministic unit vectors, dimensions honoured, base64 carries the same float32 values', async () => {
  const embed = (body: Record<string, unknown>) =>
    call({ url: simulator.url, path: '/v1/embeddings', body: { model: 'text-embedding-3-small', ...body } });
  const floats = embeddingResponseSchema.parse(JSON.parse((await embed({ input: ['alpha', 'beta'] })).text));
  assert.equal(floats.data.length, 2);
  const first = floats.data[0]?.embedding as number[];
  assert.equal(first.length, 64, 'the model default');
  assert.ok(Math.abs(Math.hypot(...first) - 1) < 1e-5, 'unit length');
  assert.notDeepEqual(first, floats.data[1]?.embedding);
  assert.equal(floats.usage.prompt_tokens, 2 + 1, '5 and 4 characters, 4 characters per token, rounded up');
  const short = embeddingResponseSchema.parse(JSON.parse((await embed({ input: 'alpha', dimensions: 8 })).text));
  assert.equal((short.data[0]?.embedding as number[]).length, 8);
  const encoded = embeddingResponseSchema.parse(JSON.parse((await embed({ input: 'alpha', encoding_format: 'base64' })).text));
  const bytes = Buffer.from(encoded.data[0]?.embedding as string, 'base64');
  const decoded = Array.from({ length: bytes.length / 4 }, (_, index) => bytes.readFloatLE(index * 4));
  assert.deepEqual(decoded, first);
  const bad = await embed({ input: '' });
  assert.equal(bad.status, 400);
  assert.equal(JSON.parse(bad.text).error.param, 'input');
});

test('the official OpenAI SDK reads completions, streams and base64 embeddings from the simulator', async () => {
  const client = new OpenAI({ baseURL: `${simulator.url}/v1`, apiKey: 'sk-test', maxRetries: 0 });
  const completion = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }] });
  assert.ok((completion.choices[0]?.message.content ?? '').length > 0);
  const stream = await client.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'Hi' }],
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let usage: OpenAI.CompletionUsage | undefined | null;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta.content ?? '';
    usage = chunk.usage ?? usage;
  }
  assert.equal(text, completion.choices[0]?.message.content);
  assert.equal(usage?.completion_tokens, completion.usage?.completion_tokens);
  // The SDK asks for base64 and decodes it; the numbers must equal the float encoding.
  const viaSdk = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'alpha' });
  const floats = JSON.parse((await call({ url: simulator.url, path: '/v1/embeddings', body: { model: 'text-embedding-3-small', input: 'alpha' } })).text);
  assert.deepEqual(viaSdk.data[0]?.embedding, floats.data[0].embedding);
});

test('GET /v1/models lists the configured models', async () => {
  const answer = await call({ url: simulator.url, path: '/v1/models' });
  const list = JSON.parse(answer.text) as { object: string; data: Array<{ id: string; object: string }> };
  assert.equal(list.object, 'list');
  assert.deepEqual(
    list.data.map((model) => model.id),
    ['gpt-4o-mini', 'text-embedding-3-small'],
  );
});

test('errors use the OpenAI format: invalid JSON, missing fields, unknown paths, wrong methods', async () => {
  const cases = [
    { answer: await call({ url: simulator.url, path: '/v1/chat/completions', rawBody: '{"model":' }), status: 400, param: null },
    { answer: await call({ url: simulator.url, path: '/v1/chat/completions', body: { model: 'gpt-4o-mini' } }), status: 400, param: 'messages' },
    { answer: await chat({ n: 0 }), status: 400, param: 'n' },
    { answer: await chat({ messages: [] }), status: 400, param: 'messages' },
    { answer: await chat({ stream_options: { include_usage: true } }), status: 400, param: 'stream_options' },
    { answer: await chat({ stream: false, stream_options: {} }), status: 400, param: 'stream_options' },
    { answer: await call({ url: simulator.url, path: '/v1/unknown', body: {} }), status: 404, param: null },
    { answer: await call({ url: simulator.url, path: '/v1/chat/completions' }), status: 405, param: null },
    { answer: await chat({}, { 'x-sim-latency-ms': 'soon' }), status: 400, param: null },
  ];
  for (const { answer, status, param } of cases) {
    assert.equal(answer.status, status, answer.text);
    const body = JSON.parse(answer.text) as { error: { message: string; type: string; param: unknown; code: unknown } };
    assert.equal(typeof body.error.message, 'string');
    assert.equal(body.error.type, 'invalid_request_error');
    assert.equal(body.error.param, param);
    assert.ok('code' in body.error);
  }
  const unstreamed = JSON.parse((await chat({ stream_options: { include_usage: true } })).text) as { error: { message: string } };
  assert.equal(unstreamed.error.message, "The 'stream_options' parameter is only allowed when 'stream' is enabled.");
  assert.equal((await chat({ stream: false, stream_options: null })).status, 200, 'null counts as absent');
});

test('determinism: the same seed and request give the same bytes of content; another seed does not', async () => {
  const same = await startSimulator({ seed: 7 });
  const other = await startSimulator({ seed: 8 });
  try {
    const ask = async (target: Simulator, path: string, payload: Record<string, unknown>) =>
      JSON.parse((await call({ url: target.url, path, body: payload })).text) as Record<string, unknown>;
    const question = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Same question' }], n: 2 };
    const contents = async (target: Simulator) =>
      chatCompletionSchema.parse(await ask(target, '/v1/chat/completions', question)).choices.map((choice) => choice.message.content);
    const reference = await contents(simulator);
    assert.deepEqual(await contents(simulator), reference, 'repeatable within one simulator');
    assert.deepEqual(await contents(same), reference, 'repeatable across simulators with the same seed');
    assert.notDeepEqual(await contents(other), reference);
    const changed = { ...question, messages: [{ role: 'user', content: 'Same question?' }] };
    const changedContents = chatCompletionSchema.parse(await ask(simulator, '/v1/chat/completions', changed)).choices;
    assert.notEqual(changedContents[0]?.message.content, reference[0], 'another conversation, other words');
    const vector = async (target: Simulator) =>
      embeddingResponseSchema.parse(await ask(target, '/v1/embeddings', { model: 'text-embedding-3-small', input: 'alpha', dimensions: 16 }))
        .data[0]?.embedding;
    assert.deepEqual(await vector(same), await vector(simulator));
    assert.notDeepEqual(await vector(other), await vector(simulator));
  } finally {
    await Promise.all([same.close(), other.close()]);
  }
});

test("tool calls and tool messages must pair up, as OpenAI's API requires", async () => {
  const calling = (...ids: string[]) => ({
    role: 'assistant',
    content: null,
    tool_calls: ids.map((id) => ({ id, type: 'function', function: { name: 'f', arguments: '{}' } })),
  });
  const answer = (id: string) => ({ role: 'tool', tool_call_id: id, content: 'ok' });
  const ask = { role: 'user', content: 'Hi' };
  const refused = [
    { messages: [ask, calling('a', 'b'), answer('a'), ask], param: 'messages.[1].role', message: /did not have response messages: b$/ },
    { messages: [ask, calling('a')], param: 'messages.[1].role', message: /must be followed by tool messages/ },
    { messages: [ask, answer('a')], param: 'messages.[1].role', message: /role 'tool' must be a response to a preceeding message with 'tool_calls'/ },
    { messages: [ask, calling('a'), answer('b')], param: 'messages.[2].role', message: /role 'tool' must be a response/ },
    { messages: [ask, calling('a'), answer('a'), answer('a')], param: 'messages.[3].role', message: /role 'tool' must be a response/ },
  ];
  for (const { messages, param, message } of refused) {
    const result = await chat({ messages });
    assert.equal(result.status, 400, result.text);
    const error = (JSON.parse(result.text) as { error: { message: string; param: unknown } }).error;
    assert.equal(error.param, param);
    assert.match(error.message, message);
  }
  // Ids of any form pass, results in any order, and the same id again in a later turn.
  const paired = [ask, calling('functions.f:0', 'call 1'), answer('call 1'), answer('functions.f:0'), calling('call 1'), answer('call 1'), ask];
  const result = await chat({ messages: paired });
  assert.equal(result.status, 200, result.text);
});
