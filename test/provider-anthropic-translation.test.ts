/**
 * Pure translation functions of the anthropic adapter, on the edge cases that fixtures do not
 * reach: role merging, tool results, bad tool arguments, warnings, tool_choice, stream faults.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SeedError } from '../src/errors.ts';
import { messagesUrl } from '../src/providers/anthropic.ts';
import { toAnthropicMessages } from '../src/providers/anthropic/messages.ts';
import { toAnthropicRequest, toAnthropicToolChoice } from '../src/providers/anthropic/request.ts';
import { toFinishReason, toUsage } from '../src/providers/anthropic/response.ts';
import { toChatCompletionChunks } from '../src/providers/anthropic/stream.ts';
import { anthropicRateLimit } from '../src/providers/anthropic/upstream.ts';
import { headersOf } from '../src/providers/upstream-call.ts';
import type { ChatCompletionChunk, ChatCompletionRequest, ChatMessage, Tool } from '../src/wire/openai.ts';

function translate(request: Partial<ChatCompletionRequest> & Pick<ChatCompletionRequest, 'messages'>) {
  return toAnthropicRequest({ request: { ...request, model: 'alias' }, model: 'claude-upstream', defaultMaxTokens: 512, stream: false });
}

function messagesOf(messages: ChatMessage[]) {
  const warnings: string[] = [];
  return { ...toAnthropicMessages({ messages, warn: (warning) => warnings.push(warning) }), warnings };
}

function thrown(action: () => unknown): SeedError {
  try {
    action();
  } catch (error) {
    assert.ok(error instanceof SeedError, `expected a SeedError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected a SeedError');
}

const weatherTool: Tool = { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: {} } } };

describe('messages', () => {
  test('a single system message becomes a string; consecutive user messages merge', () => {
    const result = messagesOf([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'One.' },
      { role: 'user', content: [{ type: 'text', text: 'Two.' }] },
      { role: 'assistant', content: 'Ok.' },
      { role: 'assistant', content: [{ type: 'text', text: 'Really.' }] },
      { role: 'user', content: 'Three.' },
    ]);
    assert.equal(result.system, 'Be brief.');
    assert.deepEqual(result.messages, [
      { role: 'user', content: [{ type: 'text', text: 'One.' }, { type: 'text', text: 'Two.' }] },
      { role: 'assistant', content: [{ type: 'text', text: 'Ok.' }, { type: 'text', text: 'Really.' }] },
      { role: 'user', content: [{ type: 'text', text: 'Three.' }] },
    ]);
  });

  test('a system message in mid-conversation is hoisted after earlier system text', () => {
    const result = messagesOf([
      { role: 'developer', content: 'First.' },
      { role: 'user', content: 'Hi' },
      { role: 'system', content: 'Second.' },
    ]);
    assert.deepEqual(result.system, [
      { type: 'text', text: 'First.' },
      { type: 'text', text: 'Second.' },
    ]);
    assert.equal(result.messages.length, 1);
  });

  test('tool results open the user message even when user text came first', () => {
    const result = messagesOf([
      { role: 'user', content: 'Weather?' },
      { role: 'assistant', content: 'Looking.', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '' } }] },
      { role: 'user', content: 'Hurry.' },
      { role: 'tool', tool_call_id: 'call_1', content: 'Sunny' },
    ]);
    assert.deepEqual(result.messages[1], {
      role: 'assistant',
      content: [
        { type: 'text', text: 'Looking.' },
        { type: 'tool_use', id: 'call_1', name: 'get_weather', input: {} },
      ],
    });
    assert.deepEqual(result.messages[2], {
      role: 'user',
      content: [
        { type: 'tool_result', tool_use_id: 'call_1', content: 'Sunny' },
        { type: 'text', text: 'Hurry.' },
      ],
    });
  });

  test("tool call ids other providers made get Anthropic's form, unique in the request, and each result the id of its call", () => {
    const call = (id: string) => ({ id, type: 'function' as const, function: { name: 'f', arguments: '{}' } });
    const result = messagesOf([
      { role: 'user', content: 'Go' },
      { role: 'assistant', content: null, tool_calls: [call('functions.f:0'), call('call 1'), call('ok_id')] },
      { role: 'tool', tool_call_id: 'call 1', content: 'one' },
      { role: 'tool', tool_call_id: 'functions.f:0', content: 'zero' },
      { role: 'tool', tool_call_id: 'ok_id', content: 'two' },
      // A server that numbers calls per answer sends call_0 again; so does the client's own id functions_f_0.
      { role: 'assistant', content: null, tool_calls: [call('functions_f_0'), call('ok_id')] },
      { role: 'tool', tool_call_id: 'ok_id', content: 'three' },
      { role: 'tool', tool_call_id: 'functions_f_0', content: 'four' },
    ]);
    const uses = result.messages.flatMap((message) => message.content.flatMap((block) => (block.type === 'tool_use' ? [block.id] : [])));
    assert.deepEqual(uses, ['functions_f_0', 'call_1', 'ok_id', 'functions_f_0_2', 'ok_id_2']);
    const results = result.messages.flatMap((message) =>
      message.content.flatMap((block) => (block.type === 'tool_result' ? [`${block.tool_use_id}=${String(block.content)}`] : [])),
    );
    assert.deepEqual(results, ['call_1=one', 'functions_f_0=zero', 'ok_id=two', 'ok_id_2=three', 'functions_f_0_2=four']);
  });

  test('unanswered tool calls, results answering no call and repeated ids in one message are refused naming the client message', () => {
    const call = (id: string) => ({ id, type: 'function' as const, function: { name: 'f', arguments: '{}' } });
    const ask: ChatMessage = { role: 'user', content: 'Go' };
    const cases: { messages: ChatMessage[]; param: string; message: RegExp }[] = [
      { messages: [ask, { role: 'assistant', content: null, tool_calls: [call('a'), call('b')] }, { role: 'tool', tool_call_id: 'a', content: 'x' }], param: 'messages[1].tool_calls', message: /Tool call "b" in messages\[1\] has no tool message answering it/ },
      { messages: [ask, { role: 'assistant', content: null, tool_calls: [call('a')] }, { role: 'user', content: 'Well?' }, { role: 'assistant', content: 'Done.' }, { role: 'tool', tool_call_id: 'a', content: 'x' }], param: 'messages[1].tool_calls', message: /Tool call "a" in messages\[1\]/ },
      { messages: [ask, { role: 'tool', tool_call_id: 'a', content: 'x' }], param: 'messages[1].tool_call_id', message: /messages\[1\] answers tool call "a", which the assistant message before it did not make/ },
      { messages: [ask, { role: 'assistant', content: null, tool_calls: [call('a')] }, { role: 'tool', tool_call_id: 'a', content: 'x' }, { role: 'assistant', content: 'Next.' }, { role: 'tool', tool_call_id: 'a', content: 'again' }], param: 'messages[4].tool_call_id', message: /messages\[4\] answers tool call "a"/ },
      { messages: [ask, { role: 'assistant', content: null, tool_calls: [call('a'), call('a')] }], param: 'messages[1].tool_calls[1].id', message: /two tool calls with id "a"/ },
    ];
    for (const { messages, param, message } of cases) {
      const error = thrown(() => messagesOf(messages));
      assert.equal(error.code, 'invalid_request');
      assert.equal(error.param, param);
      assert.match(error.message, message);
    }
  });

  test('invalid or non-object tool arguments are invalid_request naming the field', () => {
    for (const argumentsText of ['{"city": "Par', '[1, 2]', 'null']) {
      const error = thrown(() =>
        messagesOf([
          { role: 'user', content: 'Hi' },
          { role: 'assistant', content: null, tool_calls: [{ id: 'call_9', type: 'function', function: { name: 'f', arguments: argumentsText } }] },
        ]),
      );
      assert.equal(error.code, 'invalid_request');
      assert.equal(error.param, 'messages[1].tool_calls[0].function.arguments');
    }
  });

  test('images: unsupported media types, schemes and audio are refused with their param', () => {
    const cases: [string, string][] = [
      ['data:image/svg+xml;base64,PHN2Zz4=', 'messages[0].content[1].image_url.url'],
      ['ftp://example.com/cat.png', 'messages[0].content[1].image_url.url'],
      ['data:image/png,not-base64', 'messages[0].content[1].image_url.url'],
    ];
    for (const [url, param] of cases) {
      const error = thrown(() =>
        messagesOf([{ role: 'user', content: [{ type: 'text', text: 'See' }, { type: 'image_url', image_url: { url } }] }]),
      );
      assert.equal(error.code, 'invalid_request');
      assert.equal(error.param, param);
    }
    const audio = thrown(() =>
      messagesOf([{ role: 'user', content: [{ type: 'input_audio', input_audio: { data: 'AAAA', format: 'wav' } }] }]),
    );
    assert.equal(audio.param, 'messages[0].content[0]');
  });

  test('a JPEG data URL with parameters keeps its media type; a PDF file becomes a document', () => {
    const result = messagesOf([
      {
        role: 'user',
        content: [
          { type: 'image_url', image_url: { url: 'data:image/JPEG;name=a.jpg;base64,/9j/4AAQ' } },
          { type: 'file', file: { filename: 'a.pdf', file_data: 'data:application/pdf;base64,JVBERi0x' } },
        ],
      },
    ]);
    assert.deepEqual(result.messages[0]?.content, [
      { type: 'image', source: { type: 'base64', media_type: 'image/jpeg', data: '/9j/4AAQ' } },
      { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: 'JVBERi0x' } },
    ]);
  });

  test('empty messages are skipped with a warning; a conversation of only empties is refused', () => {
    const result = messagesOf([
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: '   ' },
      { role: 'user', content: 'Again' },
    ]);
    assert.deepEqual(result.messages, [{ role: 'user', content: [{ type: 'text', text: 'Hi' }, { type: 'text', text: 'Again' }] }]);
    assert.deepEqual(result.warnings, ['messages[1] has no content Anthropic accepts (empty text) and was skipped.']);
    const error = thrown(() => messagesOf([{ role: 'system', content: 'Only a system prompt.' }]));
    assert.equal(error.param, 'messages');
  });

  test('a final assistant prefill loses its trailing whitespace, earlier ones do not', () => {
    const result = messagesOf([
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello ' },
      { role: 'user', content: 'Go on' },
      { role: 'assistant', content: 'The answer is \n' },
    ]);
    assert.deepEqual(result.messages[1]?.content, [{ type: 'text', text: 'Hello ' }]);
    assert.deepEqual(result.messages[3]?.content, [{ type: 'text', text: 'The answer is' }]);
  });
});

describe('request parameters', () => {
  test('unsupported parameters warn unless neutral', () => {
    const result = translate({
      messages: [{ role: 'user', content: 'Hi', name: 'ann' }],
      n: 3,
      logprobs: true,
      presence_penalty: 0,
      frequency_penalty: 0.5,
      logit_bias: {},
      store: false,
      top_k: 5,
    });
    assert.deepEqual(result.warnings, [
      'Parameter `n` is not supported by Anthropic; one choice is returned instead of 3.',
      'Parameter `logprobs` is not supported by Anthropic and was ignored.',
      'Parameter `frequency_penalty` is not supported by Anthropic and was ignored.',
      'Parameter `top_k` is not supported by Anthropic and was ignored.',
      'Message `name` fields are not supported by Anthropic and were ignored.',
    ]);
    assert.equal(result.body.max_tokens, 512);
    assert.equal(result.body.model, 'claude-upstream');
  });

  test('max_completion_tokens wins over max_tokens; stop arrays pass through', () => {
    const result = translate({ messages: [{ role: 'user', content: 'Hi' }], max_tokens: 10, max_completion_tokens: 20, stop: ['a', 'b'], temperature: 0.3 });
    assert.equal(result.body.max_tokens, 20);
    assert.deepEqual(result.body.stop_sequences, ['a', 'b']);
    assert.equal(result.body.temperature, 0.3);
    assert.deepEqual(result.warnings, []);
  });

  test('tool_choice maps onto auto/none/any/tool and carries parallel_tool_calls', () => {
    const tools = [weatherTool];
    const choose = (request: Parameters<typeof toAnthropicToolChoice>[0]['request']) => toAnthropicToolChoice({ request, warn: () => {} });
    assert.equal(choose({ tools }), undefined);
    assert.deepEqual(choose({ tools, tool_choice: 'auto' }), { type: 'auto' });
    assert.deepEqual(choose({ tools, tool_choice: 'none', parallel_tool_calls: false }), { type: 'none' });
    assert.deepEqual(choose({ tools, tool_choice: 'required' }), { type: 'any' });
    assert.deepEqual(choose({ tools, tool_choice: { type: 'function', function: { name: 'get_weather' } } }), { type: 'tool', name: 'get_weather' });
    assert.deepEqual(choose({ tools, parallel_tool_calls: false }), { type: 'auto', disable_parallel_tool_use: true });
    assert.equal(choose({ tool_choice: 'auto' }), undefined);
    assert.equal(thrown(() => choose({ tools, tool_choice: { type: 'function', function: { name: 'nope' } } })).param, 'tool_choice.function.name');
    assert.equal(thrown(() => choose({ tool_choice: 'required' })).param, 'tool_choice');
  });

  test('tools without parameters get an empty object schema', () => {
    const result = translate({ messages: [{ role: 'user', content: 'Hi' }], tools: [{ type: 'function', function: { name: 'ping' } }] });
    assert.deepEqual(result.body.tools, [{ name: 'ping', input_schema: { type: 'object', properties: {} } }]);
  });

  test('parameters without a type get type object; another type and repeated tool names are refused', () => {
    const ask: ChatMessage[] = [{ role: 'user', content: 'Hi' }];
    const typeless = translate({ messages: ask, tools: [{ type: 'function', function: { name: 'a', parameters: {} } }, { type: 'function', function: { name: 'b', parameters: { properties: { q: { type: 'string' } } } } }] });
    assert.deepEqual(typeless.body.tools?.map((tool) => tool.input_schema), [{ type: 'object' }, { type: 'object', properties: { q: { type: 'string' } } }]);
    const stringly = thrown(() => translate({ messages: ask, tools: [weatherTool, { type: 'function', function: { name: 'b', parameters: { type: 'string' } } }] }));
    assert.equal(stringly.param, 'tools[1].function.parameters');
    const twice = thrown(() => translate({ messages: ask, tools: [weatherTool, weatherTool] }));
    assert.equal(twice.param, 'tools[1].function.name');
    assert.match(twice.message, /distinct tool names; "get_weather"/);
  });

  test('stop sequences of only whitespace are not sent, with a warning', () => {
    const result = translate({ messages: [{ role: 'user', content: 'Hi' }], stop: ['\n', 'END', ' \t'] });
    assert.deepEqual(result.body.stop_sequences, ['END']);
    assert.match(result.warnings.join(' '), /only whitespace/);
    const none = translate({ messages: [{ role: 'user', content: 'Hi' }], stop: '\n\n' });
    assert.equal(none.body.stop_sequences, undefined);
    assert.equal(none.warnings.length, 1);
  });

  test('json_object uses a forced tool; response_format with client tools falls back to an instruction and warns', () => {
    const forced = translate({ messages: [{ role: 'user', content: 'JSON please' }], response_format: { type: 'json_object' } });
    assert.equal(forced.responseFormatTool, 'json_object');
    assert.deepEqual(forced.body.tool_choice, { type: 'tool', name: 'json_object' });
    assert.deepEqual(forced.warnings, []);

    const instructed = translate({
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'JSON please' },
      ],
      tools: [weatherTool],
      response_format: { type: 'json_schema', json_schema: { name: 'answer', schema: { type: 'object' } } },
    });
    assert.equal(instructed.responseFormatTool, undefined);
    assert.deepEqual(instructed.body.tools?.map((tool) => tool.name), ['get_weather']);
    assert.equal(instructed.body.tool_choice, undefined);
    assert.ok(Array.isArray(instructed.body.system));
    assert.match(JSON.stringify(instructed.body.system), /Be brief\..*conforms to this JSON schema/);
    assert.match(instructed.warnings[0] ?? '', /emulated with a system instruction/);
  });
});

describe('responses and streams', () => {
  test('stop reasons map onto OpenAI finish reasons', () => {
    const finish = (stopReason: string | null) => toFinishReason({ stopReason, responseFormatTool: undefined });
    assert.equal(finish('end_turn'), 'stop');
    assert.equal(finish('stop_sequence'), 'stop');
    assert.equal(finish('max_tokens'), 'length');
    assert.equal(finish('tool_use'), 'tool_calls');
    assert.equal(finish('refusal'), 'content_filter');
    assert.equal(toFinishReason({ stopReason: 'tool_use', responseFormatTool: 'answer' }), 'stop');
  });

  test('usage counts cache reads and writes as prompt tokens', () => {
    assert.deepEqual(toUsage({ input_tokens: 10, cache_read_input_tokens: 100, cache_creation_input_tokens: 5, output_tokens: 7 }), {
      prompt_tokens: 115,
      completion_tokens: 7,
      total_tokens: 122,
      prompt_tokens_details: { cached_tokens: 100 },
    });
  });

  test('rate limits fall back to the tighter of the input and output token buckets', () => {
    const snapshot = anthropicRateLimit({
      nowMs: Date.parse('2025-06-01T12:00:00Z'),
      headers: headersOf({
        'anthropic-ratelimit-input-tokens-limit': '30000',
        'anthropic-ratelimit-input-tokens-remaining': '29000',
        'anthropic-ratelimit-input-tokens-reset': '2025-06-01T12:00:02Z',
        'anthropic-ratelimit-output-tokens-limit': '8000',
        'anthropic-ratelimit-output-tokens-remaining': '100',
        'anthropic-ratelimit-output-tokens-reset': '2025-06-01T12:00:45Z',
        'anthropic-ratelimit-requests-reset': 'not a date',
      }),
    });
    assert.deepEqual(snapshot, { limitTokens: 8000, remainingTokens: 100, resetTokensMs: 45_000 });
  });

  test('base URLs with or without /v1 reach the messages endpoint', () => {
    assert.equal(messagesUrl('https://api.anthropic.com'), 'https://api.anthropic.com/v1/messages');
    assert.equal(messagesUrl('https://api.anthropic.com/v1/'), 'https://api.anthropic.com/v1/messages');
    assert.equal(messagesUrl('https://proxy.internal/anthropic/v1'), 'https://proxy.internal/anthropic/v1/messages');
  });

  const start = { type: 'message_start', message: { id: 'msg_1', model: 'claude', usage: { input_tokens: 3, output_tokens: 1 } } };

  /**
   * Translates `events` twice, one event per upstream read and all in one read, and checks that
   * batching changes nothing (a failure must fail both ways too).
   */
  async function run(events: object[], responseFormatTool?: string): Promise<ChatCompletionChunk[]> {
    const translate = async (batches: Array<Array<{ data: string }>>) => {
      async function* source() {
        yield* batches;
      }
      const chunks: ChatCompletionChunk[] = [];
      for await (const batch of toChatCompletionChunks({ events: source(), createdMs: 5_000, responseFormatTool, label: 'claude-eu' })) {
        assert.ok(batch.length > 0, 'an empty batch');
        chunks.push(...batch);
      }
      return chunks;
    };
    const messages = events.map((event) => ({ data: JSON.stringify(event) }));
    const outcome = async (batches: Array<Array<{ data: string }>>) =>
      translate(batches).then(
        (chunks) => ({ chunks }),
        (error: unknown) => ({ error }),
      );
    const oneByOne = await outcome(messages.map((message) => [message]));
    const together = await outcome(messages.length > 0 ? [messages] : []);
    assert.deepEqual(together, oneByOne, 'batching events changed the translation');
    if ('error' in oneByOne) throw oneByOne.error;
    return oneByOne.chunks;
  }

  async function streamFailure(events: object[]): Promise<SeedError> {
    try {
      await run(events);
    } catch (error) {
      assert.ok(error instanceof SeedError);
      return error;
    }
    assert.fail('expected the stream to fail');
  }

  test('a stream cut before message_stop fails instead of passing for complete', async () => {
    const error = await streamFailure([start, { type: 'content_block_start', index: 0, content_block: { type: 'text', text: 'Hi' } }]);
    assert.equal(error.code, 'upstream_error');
    assert.match(error.message, /before message_stop/);
  });

  test('unknown events are skipped; content before message_start and malformed events are invalid responses', async () => {
    const chunks = await run([start, { type: 'future_event', detail: 1 }, { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 2 } }, { type: 'message_stop' }]);
    assert.equal(chunks.length, 3);
    assert.equal(chunks[0]?.created, 5);
    assert.deepEqual(chunks[2]?.usage, { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5, prompt_tokens_details: { cached_tokens: 0 } });
    assert.equal((await streamFailure([{ type: 'content_block_stop', index: 0 }])).code, 'upstream_invalid_response');
    assert.equal((await streamFailure([start, { type: 'content_block_delta', index: 'zero' }])).code, 'upstream_invalid_response');
  });

  test('mid-stream rate_limit_error maps to upstream_rate_limited', async () => {
    const error = await streamFailure([start, { type: 'error', error: { type: 'rate_limit_error', message: 'slow down' } }]);
    assert.equal(error.code, 'upstream_rate_limited');
  });

  test("an error type the vocabulary lacks is upstream_error, even one named like Object's own properties", async () => {
    for (const type of ['brand_new_error', 'constructor', '__proto__', 'toString']) {
      const error = await streamFailure([start, { type: 'error', error: { type, message: 'odd' } }]);
      assert.equal(error.code, 'upstream_error', type);
      assert.equal(error.status, 502, type);
    }
  });

  test('a forced response-format tool streams as content, not as a tool call', async () => {
    const chunks = await run(
      [
        start,
        { type: 'content_block_start', index: 0, content_block: { type: 'tool_use', id: 'toolu_1', name: 'answer', input: {} } },
        { type: 'content_block_delta', index: 0, delta: { type: 'input_json_delta', partial_json: '{"ok":' } },
        { type: 'content_block_delta', index: 0, delta: { type: 'input_json_delta', partial_json: ' true}' } },
        { type: 'content_block_stop', index: 0 },
        { type: 'message_delta', delta: { stop_reason: 'tool_use' }, usage: { output_tokens: 9 } },
        { type: 'message_stop' },
      ],
      'answer',
    );
    const deltas = chunks.flatMap((chunk) => chunk.choices.map((choice) => choice.delta));
    assert.equal(deltas.map((delta) => delta.content ?? '').join(''), '{"ok": true}');
    assert.ok(deltas.every((delta) => delta.tool_calls === undefined));
    assert.equal(chunks.at(-2)?.choices[0]?.finish_reason, 'stop');
  });
});
