/** The HTTP edge: bad input gets a 4xx in OpenAI format, plus curl, request ids, health and metrics. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
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

test('a client x-request-id is echoed; an unusable one is replaced', async () => {
  const body = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] });
  const given = await request(`${stack.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-request-id': 'my-trace-42' },
    body,
  });
  await given.body.text();
  assert.equal(given.headers['x-request-id'], 'my-trace-42');
  const replaced = await request(`${stack.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-request-id': 'bad id with spaces' },
    body,
  });
  await replaced.body.text();
  assert.match(String(replaced.headers['x-request-id']), /^req_[0-9a-f]{32}$/);
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
