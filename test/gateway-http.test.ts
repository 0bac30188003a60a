/** The HTTP edge: bad input gets a 4xx in OpenAI format, plus curl, request ids, health and metrics. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { request } from 'undici';
import { startStack, standardConfig, type Stack } from './helpers/stack.ts';

const run = promisify(execFile);
let stack: Stack;

before(async () => {
  stack = await startStack({ config: (url) => `server: { bodyLimitBytes: 65536 }\n${standardConfig(url)}` });
});
after(async () => stack.close());

async function post(path: string, body: string | Buffer, headers: Record<string, string> = { 'content-type': 'application/json' }) {
  const response = await request(`${stack.seed.url}${path}`, { method: 'POST', headers, body });
  const text = await response.body.text();
  return { status: response.statusCode, headers: response.headers, body: JSON.parse(text) as { error: Record<string, unknown> } };
}

function assertOpenAIError(result: { status: number; body: { error: Record<string, unknown> } }, status: number, code: string, param?: string) {
  assert.equal(result.status, status, JSON.stringify(result.body));
  assert.equal(result.body.error.code, code);
  assert.equal(typeof result.body.error.message, 'string');
  assert.equal(typeof result.body.error.type, 'string');
  assert.ok('param' in result.body.error);
  if (param !== undefined) assert.equal(result.body.error.param, param);
}

const chat = '/v1/chat/completions';

test('invalid JSON is a 400 invalid_json', async () => {
  assertOpenAIError(await post(chat, '{"model": "gpt-4o-mini", '), 400, 'invalid_json');
  assertOpenAIError(await post(chat, ''), 400, 'invalid_json');
  assertOpenAIError(await post(chat, 'model=x', { 'content-type': 'application/x-www-form-urlencoded' }), 400, 'invalid_json');
});

test('wrong types and missing fields name the parameter', async () => {
  assertOpenAIError(await post(chat, JSON.stringify({ messages: [{ role: 'user', content: 'x' }] })), 400, 'invalid_request', 'model');
  assertOpenAIError(await post(chat, JSON.stringify({ model: 'gpt-4o-mini' })), 400, 'invalid_request', 'messages');
  assertOpenAIError(await post(chat, JSON.stringify({ model: 'gpt-4o-mini', messages: [] })), 400, 'invalid_request', 'messages');
  assertOpenAIError(
    await post(chat, JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 5 }] })),
    400,
    'invalid_request',
    'messages[0].content',
  );
  assertOpenAIError(
    await post(chat, JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'wizard', content: 'x' }] })),
    400,
    'invalid_request',
    'messages[0].role',
  );
  assertOpenAIError(
    await post(chat, JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], n: 0 })),
    400,
    'invalid_request',
    'n',
  );
  assertOpenAIError(await post(chat, JSON.stringify([1, 2])), 400, 'invalid_request');
  assertOpenAIError(await post(chat, 'null'), 400, 'invalid_request');
  assertOpenAIError(await post('/v1/embeddings', JSON.stringify({ model: 'text-embedding-3-small' })), 400, 'invalid_request', 'input');
});

/** `body` sent as JSON to `path`, answered with a 400 whose message is `message` exactly. */
async function assertMessage(path: string, body: unknown, message: string, param: string | null, code = 'invalid_request') {
  const result = await post(path, JSON.stringify(body));
  assert.equal(result.status, 400, `${JSON.stringify(body)}: ${JSON.stringify(result.body)}`);
  assert.deepEqual(result.body.error, { message, type: 'invalid_request_error', code, param }, JSON.stringify(body));
}

test('regression: a wrong type is not called a missing parameter, and the message says what was expected and got', async () => {
  // zod 4's issues carry no input, so every wrong type read as "Missing required parameter".
  const user = [{ role: 'user', content: 'x' }];
  const cases: Array<[body: unknown, message: string, param: string | null]> = [
    [{ model: 5, messages: user }, "Invalid type for 'model': expected a string, but got an integer instead.", 'model'],
    [{ messages: user }, "Missing required parameter: 'model'.", 'model'],
    [{ model: 'gpt-4o-mini', messages: 'x' }, "Invalid type for 'messages': expected an array, but got a string instead.", 'messages'],
    [{ model: 'gpt-4o-mini', messages: null }, "Invalid type for 'messages': expected an array, but got null instead.", 'messages'],
    [{ model: 'gpt-4o-mini', messages: user, temperature: 'hot' }, "Invalid type for 'temperature': expected a number, but got a string instead.", 'temperature'],
    [{ model: 'gpt-4o-mini', messages: user, n: 1.5 }, "Invalid type for 'n': expected an integer, but got a decimal instead.", 'n'],
    [{ model: 'gpt-4o-mini', messages: user, stream: 'yes' }, "Invalid type for 'stream': expected a boolean, but got a string instead.", 'stream'],
    [{ model: 'gpt-4o-mini', messages: ['x'] }, "Invalid type for 'messages[0]': expected an object, but got a string instead.", 'messages[0]'],
    [{ model: 'gpt-4o-mini', messages: [{ role: 'user' }] }, "Missing required parameter: 'messages[0].content'.", 'messages[0].content'],
    // A union names its types when the value has none of them, and otherwise the alternative it matched.
    [
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 5 }] },
      "Invalid type for 'messages[0].content': expected one of a string or an array, but got an integer instead.",
      'messages[0].content',
    ],
    [
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: [{ type: 'text' }] }] },
      "Missing required parameter: 'messages[0].content[0].text'.",
      'messages[0].content[0].text',
    ],
    [{ model: 'gpt-4o-mini', messages: user, stop: [5] }, "Invalid type for 'stop[0]': expected a string, but got an integer instead.", 'stop[0]'],
    [
      { model: 'gpt-4o-mini', messages: user, tool_choice: 5 },
      "Invalid type for 'tool_choice': expected one of a string or an object, but got an integer instead.",
      'tool_choice',
    ],
    [{ model: 'gpt-4o-mini', messages: user, tool_choice: { type: 'function' } }, "Missing required parameter: 'tool_choice.function'.", 'tool_choice.function'],
    // A key that a dotted path could not name is written as a JSON string in brackets.
    [{ model: 'gpt-4o-mini', messages: user, metadata: { 'a.b': 1 } }, `Invalid type for 'metadata["a.b"]': expected a string, but got an integer instead.`, 'metadata["a.b"]'],
    // Out of range, and values outside a set, as OpenAI words them.
    [{ model: 'gpt-4o-mini', messages: [] }, "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.", 'messages'],
    [{ model: '', messages: user }, "Invalid 'model': empty string. Expected a string with minimum length 1, but got an empty string instead.", 'model'],
    [{ model: 'gpt-4o-mini', messages: user, temperature: 3 }, "Invalid 'temperature': integer above maximum value. Expected a value <= 2, but got 3 instead.", 'temperature'],
    [{ model: 'gpt-4o-mini', messages: user, top_p: -0.5 }, "Invalid 'top_p': decimal below minimum value. Expected a value >= 0, but got -0.5 instead.", 'top_p'],
    [
      { model: 'gpt-4o-mini', messages: user, stop: ['a', 'b', 'c', 'd', 'e'] },
      "Invalid 'stop': array too long. Expected an array with maximum length 4, but got an array with length 5 instead.",
      'stop',
    ],
    [
      { model: 'gpt-4o-mini', messages: [{ role: 'robot', content: 'x' }] },
      "Invalid value: 'robot'. Supported values are: 'system', 'developer', 'user', 'assistant', and 'tool'.",
      'messages[0].role',
    ],
    [{ model: 'gpt-4o-mini', messages: [{ content: 'x' }] }, "Missing required parameter: 'messages[0].role'.", 'messages[0].role'],
    [
      { model: 'gpt-4o-mini', messages: user, response_format: { type: 'xml' } },
      "Invalid value: 'xml'. Supported values are: 'text', 'json_object', and 'json_schema'.",
      'response_format.type',
    ],
    [
      { model: 'gpt-4o-mini', messages: user, tool_choice: 'sometimes' },
      "Invalid value: 'sometimes'. Supported values are: 'none', 'auto', and 'required'.",
      'tool_choice',
    ],
  ];
  for (const [body, message, param] of cases) await assertMessage(chat, body, message, param);
  const embeddings = '/v1/embeddings';
  await assertMessage(
    embeddings,
    { model: 'text-embedding-3-small', input: {} },
    "Invalid type for 'input': expected one of a string or an array, but got an object instead.",
    'input',
  );
  // Arrays of strings, of token ids and of token arrays: the one that got furthest speaks.
  await assertMessage(
    embeddings,
    { model: 'text-embedding-3-small', input: [[1, 'a']] },
    "Invalid type for 'input[0][1]': expected a number, but got a string instead.",
    'input[0][1]',
  );
  await assertMessage(
    embeddings,
    { model: 'text-embedding-3-small', input: [true] },
    "Invalid type for 'input[0]': expected one of a string, a number or an array, but got a boolean instead.",
    'input[0]',
  );
});

test('a body that is not a JSON object says so, whatever it is', async () => {
  for (const [body, kind] of [['"x"', 'a string'], ['[1,2]', 'an array'], ['42', 'an integer'], ['4.2', 'a decimal'], ['null', 'null'], ['true', 'a boolean']]) {
    const result = await post(chat, body as string);
    assert.equal(result.status, 400);
    assert.equal(result.body.error.message, `The request body must be a JSON object, but got ${kind} instead.`);
    assert.equal(result.body.error.param, null);
  }
  const empty = await request(`${stack.seed.url}${chat}`, { method: 'POST' });
  assert.equal(empty.statusCode, 400);
  assert.equal(((await empty.body.json()) as { error: { message: string } }).error.message, 'The request body is empty; send a JSON object.');
});

test('every content type is read as JSON, by one parser: text/plain too, and prototype keys are refused alike', async () => {
  const body = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] });
  for (const contentType of ['application/json', 'text/plain', 'text/plain; charset=utf-8', 'application/octet-stream', 'application/x-www-form-urlencoded']) {
    const response = await request(`${stack.seed.url}${chat}`, { method: 'POST', headers: { 'content-type': contentType }, body });
    assert.equal(response.statusCode, 200, `${contentType}: ${await response.body.text()}`);
    await response.body.dump();
  }
  // Fastify's JSON parser refused these for application/json only, as "not valid JSON"; other types passed them on.
  const poisoned = ['{"model":"gpt-4o-mini","__proto__":{"stream":true},"messages":[]}', '{"model":"gpt-4o-mini","messages":[],"x":{"constructor":{"prototype":{}}}}'];
  for (const text of poisoned) {
    for (const contentType of ['application/json', 'text/plain', 'application/octet-stream']) {
      const result = await post(chat, text, { 'content-type': contentType });
      assertOpenAIError(result, 400, 'invalid_request');
      assert.match(String(result.body.error.message), /"__proto__" or "constructor.prototype" key/, contentType);
    }
  }
  const broken = await post(chat, '{"model": "gpt-4o-mini", ', { 'content-type': 'application/json' });
  assertOpenAIError(broken, 400, 'invalid_json');
  assert.match(String(broken.body.error.message), /^The request body is not valid JSON: .*JSON.*\.$/);
});

test('a compressed body is a 415 that says why, not "invalid JSON"', async () => {
  const body = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] });
  const result = await post(chat, gzipSync(body), { 'content-type': 'application/json', 'content-encoding': 'gzip' });
  assertOpenAIError(result, 415, 'unsupported_media_type');
  assert.equal(result.body.error.message, 'Request bodies with Content-Encoding "gzip" are not supported; send the JSON uncompressed.');
  const identity = await request(`${stack.seed.url}${chat}`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-encoding': 'identity' }, body });
  assert.equal(identity.statusCode, 200);
  await identity.body.dump();
});

test('regression: a model name with control characters is a 400, never a ledger row PostgreSQL refuses', async () => {
  // A NUL reached the ledger as the call's route: PostgreSQL rejects NUL in text, so the whole
  // batch (and every replay of its spill file) failed.
  for (const model of ['gpt-4o-mini\u0000', 'a\nb', '\u007f']) {
    assertOpenAIError(await post(chat, JSON.stringify({ model, messages: [{ role: 'user', content: 'x' }] })), 400, 'invalid_request', 'model');
    assertOpenAIError(await post('/v1/embeddings', JSON.stringify({ model, input: 'x' })), 400, 'invalid_request', 'model');
  }
});

test('an unknown route is a 404 model_not_found', async () => {
  assertOpenAIError(
    await post(chat, JSON.stringify({ model: 'gpt-99', messages: [{ role: 'user', content: 'x' }] })),
    404,
    'model_not_found',
    'model',
  );
});

test('an oversized body is a 413 body_too_large', async () => {
  const big = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x'.repeat(70_000) }] });
  assertOpenAIError(await post(chat, big), 413, 'body_too_large');
});

test('an unknown endpoint is a 404 in OpenAI format', async () => {
  const response = await request(`${stack.seed.url}/v1/nothing-here`);
  assert.equal(response.statusCode, 404);
  assert.equal(((await response.body.json()) as { error: { code: string } }).error.code, 'not_found');
});

/** A call id as `newCallId` makes it: `req_`, 12 hex digits of epoch ms, then a UUIDv7's version and random bits. */
const CALL_ID = /^req_[0-9a-f]{12}7[0-9a-f]{3}[89ab][0-9a-f]{15}$/;

test('x-request-id is always the call id; a client id is echoed as x-client-request-id and stored', async () => {
  const body = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] });
  const send = async (headers: Record<string, string>) => {
    const before = Date.now();
    const response = await request(`${stack.baseURL}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
    await response.body.text();
    const id = String(response.headers['x-request-id']);
    assert.match(id, CALL_ID);
    // The id's first 48 bits are the millisecond it was made in.
    const made = Number.parseInt(id.slice(4, 16), 16);
    assert.ok(made >= before && made <= Date.now(), `${id} made at ${made}, sent at ${before}`);
    return { id, client: response.headers['x-client-request-id'] };
  };
  const traced = await send({ 'x-request-id': 'my-trace-42' });
  assert.equal(traced.client, 'my-trace-42');
  const named = await send({ 'x-client-request-id': 'my-call-7', 'x-request-id': 'ignored-when-both' });
  assert.equal(named.client, 'my-call-7');
  const unusable = await send({ 'x-request-id': 'bad id with spaces' });
  assert.equal(unusable.client, undefined);
  const none = await send({});
  assert.equal(none.client, undefined);
  const records = await stack.waitForRecords(stack.records.length);
  const byId = (id: string) => records.find((record) => record.id === id);
  assert.equal(byId(traced.id)?.clientRequestId, 'my-trace-42');
  assert.equal(byId(named.id)?.clientRequestId, 'my-call-7');
  assert.equal(byId(unusable.id)?.clientRequestId, null);
  assert.equal(byId(none.id)?.clientRequestId, null);
});

test('regression: calls that reuse a client request id each get their own ledger row', async () => {
  // The call id used to be the client's x-request-id, and the ledger's insert skips ids it
  // already holds: every call after the first with the same id was lost from the ledger.
  const body = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] });
  const ids: string[] = [];
  for (let index = 0; index < 3; index += 1) {
    const response = await request(`${stack.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'retried-trace-1' },
      body,
    });
    await response.body.text();
    assert.equal(response.statusCode, 200);
    ids.push(String(response.headers['x-request-id']));
  }
  assert.equal(new Set(ids).size, 3);
  await stack.waitForRecords(stack.records.length);
  await stack.seed.ledger.flush();
  const page = await stack.seed.store.listCalls({ filters: { clientRequestId: 'retried-trace-1' } });
  assert.deepEqual(page.calls.map((call) => call.id).sort(), [...ids].sort());
});

test('an error before the call carries the call id and the client id too', async () => {
  const response = await request(`${stack.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-client-request-id': 'bad-body-1' },
    body: '{"model": 3}',
  });
  await response.body.text();
  assert.equal(response.statusCode, 400);
  assert.match(String(response.headers['x-request-id']), CALL_ID);
  assert.equal(response.headers['x-client-request-id'], 'bad-body-1');
});

test('curl: a chat completion and a streamed one', async () => {
  const body = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hello' }] });
  const plain = await run('curl', ['-sS', '-H', 'Content-Type: application/json', '-d', body, `${stack.baseURL}/chat/completions`]);
  const completion = JSON.parse(plain.stdout) as { choices: Array<{ message: { content: string } }> };
  assert.ok(completion.choices[0]?.message.content);

  const streamBody = JSON.stringify({ model: 'claude-sonnet', stream: true, messages: [{ role: 'user', content: 'Hello' }] });
  const streamed = await run('curl', ['-sSN', '-d', streamBody, `${stack.baseURL}/chat/completions`]);
  const events = streamed.stdout.split('\n\n').filter((event) => event.startsWith('data: '));
  assert.equal(events.at(-1), 'data: [DONE]');
  const first = JSON.parse(events[0]!.slice(6)) as { object: string; choices: Array<{ delta: { role?: string } }> };
  assert.equal(first.object, 'chat.completion.chunk');
  assert.equal(first.choices[0]?.delta.role, 'assistant');
});

test('healthz and Prometheus metrics by route, deployment and error code', async () => {
  const health = await request(`${stack.seed.url}/healthz`);
  assert.deepEqual(await health.body.json(), { status: 'ok' });
  await post(chat, JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }));
  await post(chat, '{');
  const metrics = await request(`${stack.seed.url}/metrics`);
  const text = await metrics.body.text();
  assert.match(text, /seed_calls_total\{route="gpt-4o-mini",deployment="openai-mini",status="ok",code="",stream="false"\} \d+/);
  assert.match(text, /seed_call_duration_seconds_bucket\{le="[^"]+",route="gpt-4o-mini",deployment="openai-mini"\}/);
  assert.match(text, /seed_tokens_total\{route="gpt-4o-mini",deployment="openai-mini",kind="prompt"\} \d+/);
  assert.match(text, /seed_errors_total\{code="invalid_json",status="400"\} \d+/);
  assert.match(text, /seed_ledger\{counter="recorded"\} [1-9]\d*/);
  assert.match(text, /seed_ledger\{counter="storeHealthy"\} 1/);
});
