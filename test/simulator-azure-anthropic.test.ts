/**
 * The simulator's Azure OpenAI and Anthropic surfaces: their routes and header checks, their
 * error formats, Azure's content-filter quirks, and Anthropic's message and event sequence.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startSimulator, type Simulator } from '../src/simulator/index.ts';
import { chatCompletionSchema, embeddingResponseSchema } from '../src/wire/openai.ts';
import { anthropicHeaders, call, openAIChunks, sseEvents, userMessages } from './simulator-helpers.ts';

let simulator: Simulator;

before(async () => {
  simulator = await startSimulator({ models: { 'prod-gpt4o': { model: 'gpt-4o' } } });
});
after(() => simulator.close());

const azurePath = (deployment: string, operation = 'chat/completions', query = '?api-version=2024-06-01') =>
  `/openai/deployments/${deployment}/${operation}${query}`;

test('Azure: the deployment in the path picks the options; responses name its model and carry filter results', async () => {
  const answer = await call({
    url: simulator.url,
    path: azurePath('prod-gpt4o'),
    body: { messages: userMessages, model: 'ignored' },
    headers: { 'api-key': 'azure-key' },
  });
  assert.equal(answer.status, 200, answer.text);
  const body = JSON.parse(answer.text) as Record<string, unknown>;
  const completion = chatCompletionSchema.parse(body);
  assert.equal(completion.model, 'gpt-4o');
  assert.ok(Array.isArray(body.prompt_filter_results));
  assert.ok('content_filter_results' in (completion.choices[0] ?? {}));
  const byModel = simulator.stats().byModel;
  assert.equal(byModel['prod-gpt4o'], 1, 'counted under the deployment');
  assert.equal(byModel['ignored'], undefined, "Azure ignores the body's model");
  const bearer = await call({
    url: simulator.url,
    path: azurePath('prod-gpt4o', 'embeddings'),
    body: { input: 'hello' },
    headers: { authorization: 'Bearer entra-token' },
  });
  assert.equal(bearer.status, 200, 'an Entra ID token is accepted instead of api-key');
  assert.equal(embeddingResponseSchema.parse(JSON.parse(bearer.text)).model, 'gpt-4o');
});

test('Azure: a stream starts with the filter-only chunk (empty choices, empty id) before OpenAI chunks', async () => {
  const answer = await call({
    url: simulator.url,
    path: azurePath('prod-gpt4o'),
    body: { messages: userMessages, stream: true, max_tokens: 2 },
    headers: { 'api-key': 'azure-key' },
  });
  const chunks = openAIChunks(answer.text);
  assert.deepEqual(chunks[0]?.choices, []);
  assert.equal(chunks[0]?.id, '');
  assert.ok(Array.isArray(chunks[0]?.prompt_filter_results));
  assert.equal(chunks[1]?.model, 'gpt-4o');
  assert.equal(sseEvents(answer.text).at(-1)?.data, '[DONE]');
});

test('Azure: missing api-version is a 400 and a missing key a 401, in Azure error format', async () => {
  const noVersion = await call({
    url: simulator.url,
    path: azurePath('prod-gpt4o', 'chat/completions', ''),
    body: { messages: userMessages },
    headers: { 'api-key': 'azure-key' },
  });
  assert.equal(noVersion.status, 400);
  assert.equal(JSON.parse(noVersion.text).error.code, 'MissingApiVersionParameter');
  const noKey = await call({ url: simulator.url, path: azurePath('prod-gpt4o'), body: { messages: userMessages } });
  assert.equal(noKey.status, 401);
  const error = JSON.parse(noKey.text).error as { code: string; message: string };
  assert.equal(error.code, '401');
  assert.match(error.message, /Access denied/);
  const fault = await call({
    url: simulator.url,
    path: azurePath('prod-gpt4o'),
    body: { messages: userMessages },
    headers: { 'api-key': 'azure-key', 'x-sim-fault': '503' },
  });
  assert.deepEqual(JSON.parse(fault.text), { error: { code: 'ServiceUnavailable', message: JSON.parse(fault.text).error.message } });
});

/** One event's payload; fields are read after narrowing by `type`. */
type Payload = { type: string } & Record<string, unknown>;

interface AnthropicMessage {
  id: string;
  type: string;
  role: string;
  model: string;
  content: Array<{ type: string; text?: string; id?: string; name?: string; input?: unknown }>;
  stop_reason: string;
  stop_sequence: string | null;
  usage: { input_tokens: number; output_tokens: number; cache_read_input_tokens: number; cache_creation_input_tokens: number };
}

const messages = (body: Record<string, unknown>, headers: Record<string, string> = anthropicHeaders) =>
  call({ url: simulator.url, path: '/v1/messages', body: { model: 'claude-sonnet-4', messages: userMessages, max_tokens: 100, ...body }, headers });

test('Anthropic: a message has the real shape, usage, and both request-id headers', async () => {
  const answer = await messages({});
  assert.equal(answer.status, 200, answer.text);
  assert.match(String(answer.headers['request-id']), /^req_/);
  assert.equal(answer.headers['request-id'], answer.headers['x-request-id']);
  const message = JSON.parse(answer.text) as AnthropicMessage;
  assert.match(message.id, /^msg_/);
  assert.deepEqual([message.type, message.role, message.model, message.stop_reason], ['message', 'assistant', 'claude-sonnet-4', 'end_turn']);
  assert.equal(message.content[0]?.type, 'text');
  assert.equal(message.usage.input_tokens, 6);
  assert.equal(message.usage.output_tokens, (message.content[0]?.text ?? '').split(' ').length);
  assert.equal(message.usage.cache_read_input_tokens, 0);
});

test('Anthropic and OpenAI answer the same conversation with the same words', async () => {
  const system = 'You are terse.';
  const anthropic = JSON.parse((await messages({ system })).text) as AnthropicMessage;
  const openai = chatCompletionSchema.parse(
    JSON.parse(
      (
        await call({
          url: simulator.url,
          path: '/v1/chat/completions',
          body: { model: 'gpt-4o', messages: [{ role: 'system', content: system }, ...userMessages] },
        })
      ).text,
    ),
  );
  assert.equal(anthropic.content[0]?.text, openai.choices[0]?.message.content);
});

test('Anthropic: max_tokens and stop_sequences set stop_reason', async () => {
  const cut = JSON.parse((await messages({ max_tokens: 3 })).text) as AnthropicMessage;
  assert.equal(cut.stop_reason, 'max_tokens');
  assert.equal(cut.usage.output_tokens, 3);
  const full = (JSON.parse((await messages({})).text) as AnthropicMessage).content[0]?.text ?? '';
  const stop = ` ${full.split(' ')[2]}`;
  const stopped = JSON.parse((await messages({ stop_sequences: [stop] })).text) as AnthropicMessage;
  assert.equal(stopped.stop_reason, 'stop_sequence');
  assert.equal(stopped.stop_sequence, stop);
  assert.equal(stopped.content[0]?.text, full.slice(0, full.indexOf(stop)));
});

test('Anthropic: a stream follows the real event sequence and its deltas add up to the message', async () => {
  const whole = JSON.parse((await messages({})).text) as AnthropicMessage;
  const answer = await messages({ stream: true });
  const events = sseEvents(answer.text);
  const names = events.map((event) => event.event);
  const deltas = names.filter((name) => name === 'content_block_delta').length;
  assert.deepEqual(names, [
    'message_start',
    'content_block_start',
    'ping',
    ...Array<string>(deltas).fill('content_block_delta'),
    'content_block_stop',
    'message_delta',
    'message_stop',
  ]);
  for (const event of events) assert.equal((JSON.parse(event.data) as { type: string }).type, event.event);
  const payloads = events.map((event) => JSON.parse(event.data) as Payload);
  const text = payloads
    .filter((payload) => payload.type === 'content_block_delta')
    .map((payload) => (payload.delta as { text: string }).text)
    .join('');
  assert.equal(text, whole.content[0]?.text);
  const start = payloads[0]?.message as { usage: { input_tokens: number } } | undefined;
  assert.equal(start?.usage.input_tokens, 6);
  const delta = payloads.at(-2) as unknown as { delta: { stop_reason: string }; usage: { output_tokens: number } };
  assert.deepEqual([delta.delta.stop_reason, delta.usage.output_tokens], ['end_turn', whole.usage.output_tokens]);
});

test('Anthropic: tools produce a tool_use block, streamed as input_json_delta pieces', async () => {
  const tools = [
    { name: 'search', description: 'Search', input_schema: { type: 'object', properties: { query: { type: 'string' }, limit: { type: 'number' } }, required: ['query', 'limit'] } },
  ];
  const message = JSON.parse((await messages({ tools })).text) as AnthropicMessage;
  assert.equal(message.stop_reason, 'tool_use');
  assert.equal(message.content[0]?.type, 'tool_use');
  assert.match(message.content[0]?.id ?? '', /^toolu_/);
  assert.deepEqual(message.content[0]?.input, { query: 'x', limit: 1 });
  const payloads = sseEvents((await messages({ tools, stream: true })).text).map((event) => JSON.parse(event.data) as Payload);
  const block = payloads[1] as unknown as { content_block: { type: string; name: string; input: unknown } };
  assert.deepEqual([block.content_block.type, block.content_block.name, block.content_block.input], ['tool_use', 'search', {}]);
  const pieces = payloads
    .filter((payload) => payload.type === 'content_block_delta')
    .map((payload) => payload.delta as { type: string; partial_json: string });
  assert.ok(pieces.length > 1 && pieces.every((piece) => piece.type === 'input_json_delta'));
  assert.deepEqual(JSON.parse(pieces.map((piece) => piece.partial_json).join('')), { query: 'x', limit: 1 });
  const none = JSON.parse((await messages({ tools, tool_choice: { type: 'none' } })).text) as AnthropicMessage;
  assert.equal(none.stop_reason, 'end_turn');
});

test('Anthropic: missing max_tokens, key or version are errors in Anthropic format', async () => {
  const cases = [
    { answer: await messages({ max_tokens: undefined }), status: 400, type: 'invalid_request_error', message: /max_tokens/ },
    { answer: await messages({}, { 'anthropic-version': '2023-06-01' }), status: 401, type: 'authentication_error', message: /x-api-key/ },
    { answer: await messages({}, { 'x-api-key': 'k' }), status: 400, type: 'invalid_request_error', message: /anthropic-version/ },
    { answer: await messages({}, { ...anthropicHeaders, 'x-sim-fault': '529' }), status: 529, type: 'overloaded_error', message: /./ },
    { answer: await messages({}, { ...anthropicHeaders, 'x-sim-fault': '500' }), status: 500, type: 'api_error', message: /./ },
  ];
  for (const { answer, status, type, message } of cases) {
    assert.equal(answer.status, status, answer.text);
    const body = JSON.parse(answer.text) as { type: string; error: { type: string; message: string } };
    assert.equal(body.type, 'error');
    assert.equal(body.error.type, type);
    assert.match(body.error.message, message);
  }
});

test("Anthropic: the request rules a translator breaks are 400s in the real API's words", async () => {
  const toolUse = (id: string) => ({ type: 'tool_use', id, name: 'f', input: {} });
  const toolResult = (id: string) => ({ type: 'tool_result', tool_use_id: id, content: 'ok' });
  const ask = { role: 'user', content: 'Hi' };
  const tool = (extra: Record<string, unknown>) => ({ name: 'f', input_schema: { type: 'object' }, ...extra });
  const cases: { body: Record<string, unknown>; message: RegExp }[] = [
    { body: { messages: [{ role: 'user', content: '   ' }] }, message: /^messages: text content blocks must contain non-whitespace text$/ },
    { body: { messages: [{ role: 'user', content: [{ type: 'text', text: '' }] }] }, message: /^messages: text content blocks must be non-empty$/ },
    { body: { system: ' ', messages: [ask] }, message: /^system: text content blocks must contain non-whitespace text$/ },
    { body: { messages: [ask, { role: 'assistant', content: [] }, ask] }, message: /^messages\.1: all messages must have non-empty content/ },
    { body: { messages: [ask, { role: 'assistant', content: 'Sure ' }] }, message: /final assistant content cannot end with trailing whitespace/ },
    {
      body: { messages: [ask, { role: 'assistant', content: [toolUse('functions.f:0')] }, { role: 'user', content: [toolResult('functions.f:0')] }] },
      message: /^messages\.1\.content\.0\.tool_use\.id: String should match pattern/,
    },
    {
      body: { messages: [ask, { role: 'assistant', content: [toolUse('call_0')] }, { role: 'user', content: [toolResult('call_0')] }, { role: 'assistant', content: [toolUse('call_0')] }, { role: 'user', content: [toolResult('call_0')] }] },
      message: /^messages\.3\.content\.0: `tool_use` ids must be unique$/,
    },
    {
      body: { messages: [ask, { role: 'assistant', content: [toolUse('a'), toolUse('b')] }, { role: 'user', content: [toolResult('a')] }] },
      message: /^messages\.1: `tool_use` ids were found without `tool_result` blocks immediately after: b\./,
    },
    {
      body: { messages: [ask, { role: 'assistant', content: 'No tools.' }, { role: 'user', content: [toolResult('a')] }] },
      message: /^messages\.2\.content\.0: unexpected `tool_use_id` found in `tool_result` blocks: a\./,
    },
    { body: { messages: [{ role: 'user', content: [toolUse('a')] }] }, message: /`tool_use` blocks can only be in `assistant` messages/ },
    {
      body: { messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/bmp', data: 'AA==' } }] }] },
      message: /media_type: Input should be 'image\/jpeg'/,
    },
    { body: { messages: [ask], tools: [tool({}), tool({})] }, message: /^tools: Tool names must be unique\.$/ },
    { body: { messages: [ask], tools: [tool({ input_schema: {} })] }, message: /^tools\.0\.custom\.input_schema\.type: Field required$/ },
    { body: { messages: [ask], tools: [tool({ name: 'fs.read' })] }, message: /^tools\.0\.custom\.name: String should match pattern/ },
    { body: { messages: [ask], stop_sequences: ['\n'] }, message: /^stop_sequences: each stop sequence must contain non-whitespace$/ },
    { body: { messages: [ask], temperature: 1.5 }, message: /^temperature: Input should be less than or equal to 1$/ },
  ];
  for (const { body, message } of cases) {
    const answer = await messages(body);
    assert.equal(answer.status, 400, `${JSON.stringify(body)} → ${answer.text}`);
    const error = (JSON.parse(answer.text) as { error: { type: string; message: string } }).error;
    assert.equal(error.type, 'invalid_request_error');
    assert.match(error.message, message, JSON.stringify(body));
  }
  // What the rules allow: a paired tool turn, a prefill without trailing space, an empty final assistant.
  for (const allowed of [
    [ask, { role: 'assistant', content: [{ type: 'text', text: 'Let me look.' }, toolUse('toolu_1')] }, { role: 'user', content: [toolResult('toolu_1'), { type: 'text', text: 'thanks' }] }],
    [ask, { role: 'assistant', content: 'The answer is' }],
    [ask, { role: 'assistant', content: [] }],
  ]) {
    const answer = await messages({ messages: allowed });
    assert.equal(answer.status, 200, `${JSON.stringify(allowed)} → ${answer.text}`);
  }
});
