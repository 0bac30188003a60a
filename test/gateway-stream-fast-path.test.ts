/**
 * The streaming fast path, end to end: plain content chunks cross the gateway without being
 * parsed, and the client still receives exactly what it did when every chunk was parsed (usage
 * stripped or dropped when it did not ask, filter chunks dropped, corrupt data an error), the
 * usage estimate still counts their characters, and stored payloads still hold parsed chunks.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { Agent, request } from 'undici';
import { ANONYMOUS_CALLER, type Caller } from '../src/gateway/hooks.ts';
import { startStack, type Stack } from './helpers/stack.ts';
import { listenOnLoopback } from './helpers/loopback.ts';

const head = '{"id":"chatcmpl-fast","object":"chat.completion.chunk","created":1,"model":"m-upstream"';
const chunk = (choices: string, tail = ',"usage":null') => `${head},"choices":[${choices}]${tail}}`;
const content = (text: string) => chunk(`{"index":0,"delta":{"content":${JSON.stringify(text)}},"logprobs":null,"finish_reason":null}`);
const argumentsChunk = (text: string) =>
  chunk(`{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":${JSON.stringify(text)}}}]},"finish_reason":null}`);

const ROLE = chunk('{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}');
const WORDS = ['Hello', ', "world"', ' é😀', '\nnew line', ' \\ done'];
const CONTENT = WORDS.map(content);
const FINISH = chunk('{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}');
const USAGE = chunk('', ',"usage":{"prompt_tokens":4,"completion_tokens":7,"total_tokens":11}');
// Some servers put usage on the finish chunk itself (with spaces around the colon, here).
const FINISH_WITH_USAGE = chunk('{"index":0,"delta":{},"finish_reason":"stop"}', ',"usage" : {"prompt_tokens":4,"completion_tokens":7,"total_tokens":11}');
const AZURE_FILTER = '{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{}}]}';
const TOOL_ARGUMENTS = ['{"city": ', '"Paris"}'];

/** What the upstream sends, by the user message of the request. */
const SCENARIOS: Record<string, readonly string[]> = {
  plain: [ROLE, ...CONTENT, FINISH, USAGE, '[DONE]'],
  'usage-on-finish': [ROLE, ...CONTENT, FINISH_WITH_USAGE, '[DONE]'],
  'no-usage': [AZURE_FILTER, ROLE, ...CONTENT, ...TOOL_ARGUMENTS.map(argumentsChunk), FINISH, '[DONE]'],
  // A line cut short that still starts with {" and ends with }: must not reach the client.
  corrupt: [ROLE, CONTENT[0] as string, '{"id":"x","choices":[{"delta":{"content":"a"}}]', ...CONTENT.slice(1), FINISH, '[DONE]'],
};

let upstream: Server;
let stack: Stack;
let caller: Caller = ANONYMOUS_CALLER;

before(async () => {
  upstream = createServer((request, response) => {
    let body = '';
    request.on('data', (part: Buffer) => (body += part.toString('utf8')));
    request.on('end', () => {
      const parsed = JSON.parse(body) as { messages: Array<{ content: string }> };
      const events = SCENARIOS[parsed.messages[0]?.content ?? ''] ?? [];
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.end(events.map((data) => `data: ${data}\n\n`).join(''));
    });
  });
  const upstreamUrl = await listenOnLoopback(upstream);
  stack = await startStack({
    config: () => `
deployments:
  fast:
    provider: openai-compatible
    baseUrl: ${upstreamUrl}/v1
    model: m-upstream
    terms: llama-3.1
routes:
  fast: { deployments: [{ deployment: fast }] }
`,
    start: { authenticate: () => caller },
  });
});

after(async () => {
  await stack?.close();
  await new Promise<void>((resolve) => upstream?.close(() => resolve()));
});

async function stream(scenario: string, extra: object = {}): Promise<{ id: string; frames: string[] }> {
  const response = await fetch(`${stack.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'fast', stream: true, messages: [{ role: 'user', content: scenario }], ...extra }),
  });
  assert.equal(response.status, 200);
  const text = await response.text();
  const frames = text.split('\n\n').filter(Boolean);
  for (const frame of frames) assert.match(frame, /^data: [^\n]+$/);
  return { id: response.headers.get('x-request-id') ?? '', frames: frames.map((frame) => frame.slice('data: '.length)) };
}

async function recordOf(id: string) {
  for (let waited = 0; waited < 100; waited += 1) {
    const record = stack.records.find((candidate) => candidate.id === id);
    if (record) return record;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`no call record for ${id}`);
}

test('content, finish and usage chunks are never parsed; the usage chunk is read for its counts and dropped', async () => {
  caller = ANONYMOUS_CALLER;
  const original = JSON.parse;
  const parsedTexts = new Set<string>();
  JSON.parse = ((text: string, reviver?: Parameters<typeof JSON.parse>[1]) => {
    parsedTexts.add(text);
    return original(text, reviver);
  }) as typeof JSON.parse;
  let answer: Awaited<ReturnType<typeof stream>>;
  try {
    answer = await stream('plain');
  } finally {
    JSON.parse = original;
  }
  assert.deepEqual(answer.frames, [ROLE, ...CONTENT, FINISH, '[DONE]']);
  for (const text of [ROLE, ...CONTENT, FINISH, USAGE]) assert.ok(!parsedTexts.has(text), `a content, finish or usage chunk was parsed: ${text}`);
  const record = await recordOf(answer.id);
  assert.equal(record.status, 'ok');
  assert.equal(record.usageReported, true);
  assert.equal(record.promptTokens, 4);
  assert.equal(record.completionTokens, 7);
});

test('with include_usage the usage chunk is relayed as sent', async () => {
  const answer = await stream('plain', { stream_options: { include_usage: true } });
  assert.deepEqual(answer.frames, [ROLE, ...CONTENT, FINISH, USAGE, '[DONE]']);
});

test('a chunk with usage and choices keeps its choices and loses its usage unless the client asked', async () => {
  const plain = await stream('usage-on-finish');
  const { usage: _usage, ...withoutUsage } = JSON.parse(FINISH_WITH_USAGE) as Record<string, unknown>;
  assert.deepEqual(plain.frames, [ROLE, ...CONTENT, JSON.stringify(withoutUsage), '[DONE]']);
  const record = await recordOf(plain.id);
  assert.equal(record.completionTokens, 7, 'usage found despite the spacing');
  const asked = await stream('usage-on-finish', { stream_options: { include_usage: true } });
  assert.deepEqual(asked.frames, [ROLE, ...CONTENT, FINISH_WITH_USAGE, '[DONE]']);
});

test('without upstream usage the estimate counts content and tool-call argument characters', async () => {
  const answer = await stream('no-usage');
  // The Azure prompt-filter chunk is dropped; everything else leaves as sent.
  assert.deepEqual(answer.frames, [ROLE, ...CONTENT, ...TOOL_ARGUMENTS.map(argumentsChunk), FINISH, '[DONE]']);
  const record = await recordOf(answer.id);
  assert.equal(record.usageReported, false);
  const characters = [...WORDS, ...TOOL_ARGUMENTS].join('').length;
  assert.equal(record.completionTokens, Math.ceil(characters / 4));
});

test('a corrupt line that looks like a chunk ends the stream with upstream_invalid_response', async () => {
  const answer = await stream('corrupt');
  assert.deepEqual(answer.frames.slice(0, 2), [ROLE, CONTENT[0]]);
  assert.equal(answer.frames.length, 3, answer.frames.join('\n'));
  const error = JSON.parse(answer.frames[2] as string) as { error: { code: string; message: string } };
  assert.equal(error.error.code, 'upstream_invalid_response');
  assert.match(error.error.message, /not JSON/);
  const record = await recordOf(answer.id);
  assert.equal(record.status, 'error');
  assert.equal(record.errorCode, 'upstream_invalid_response');
});

test('a stored payload holds every chunk parsed, unparsed ones included', async () => {
  caller = { ...ANONYMOUS_CALLER, keyId: 'key_payloads', storePayloads: true };
  try {
    const answer = await stream('plain');
    assert.deepEqual(answer.frames, [ROLE, ...CONTENT, FINISH, '[DONE]']);
    const record = await recordOf(answer.id);
    const payload = record.payload as { response: unknown[] } | null;
    assert.deepEqual(
      payload?.response,
      [ROLE, ...CONTENT, FINISH, USAGE].map((text) => JSON.parse(text) as unknown),
    );
  } finally {
    caller = ANONYMOUS_CALLER;
  }
});

test('a stream that arrives in one upstream read leaves in one write, the end of the response included', async () => {
  caller = ANONYMOUS_CALLER;
  // The writes to the client's connection, counted where the socket hands them to the kernel.
  const writes: number[] = [];
  const server = stack.seed.app.server;
  const count = (socket: Socket) => {
    const counted = socket as Socket & { _write: (...args: unknown[]) => void; _writev: (...args: unknown[]) => void };
    for (const method of ['_write', '_writev'] as const) {
      const original = counted[method].bind(counted);
      counted[method] = (...args: unknown[]) => {
        writes.push(1);
        original(...args);
      };
    }
  };
  server.on('connection', count);
  // A fresh connection, so the counting wrapper is on it.
  const dispatcher = new Agent({ connections: 1 });
  try {
    const response = await request(`${stack.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'fast', stream: true, messages: [{ role: 'user', content: 'plain' }] }),
      dispatcher,
    });
    const text = await response.body.text();
    assert.equal(text, [ROLE, ...CONTENT, FINISH, '[DONE]'].map((data) => `data: ${data}\n\n`).join(''));
    // Headers, every chunk, [DONE] and the chunked-encoding terminator: one write, not one for
    // the chunks and another for the end.
    assert.equal(writes.length, 1, `${writes.length} writes`);
  } finally {
    server.off('connection', count);
    await dispatcher.close();
  }
});
