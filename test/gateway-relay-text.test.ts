/**
 * Relaying without re-serializing: a response or chunk that Seed passes through unchanged
 * leaves as the upstream's own JSON text (fields Seed does not know, key order, spacing), and
 * anything Seed changes or cannot write as one SSE line is serialized again.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, test } from 'node:test';
import { toJsonText, withJsonText } from '../src/wire/json-text.ts';
import { startStack, type Stack } from './helpers/stack.ts';
import { listenOnLoopback } from './helpers/loopback.ts';

// Spacing, key order and a field Seed has never heard of, all of which must survive the relay.
const COMPLETION_TEXT =
  '{"object":"chat.completion", "id":"chatcmpl-relay","created":1,"model":"m-upstream","vendor_extra":{"kept":true},' +
  '"choices":[{"index":0,"message":{"role":"assistant","content":"héllo"},"finish_reason":"stop","logprobs":null}],' +
  '"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}';

const chunkText = (fields: string) => `{"id":"chatcmpl-relay","object":"chat.completion.chunk","created":1,"model":"m-upstream",${fields}}`;
const ROLE_CHUNK = chunkText('"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}], "vendor_extra":1');
const CONTENT_CHUNK = chunkText('"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]');
const FINISH_CHUNK = chunkText('"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]');
const USAGE_CHUNK = chunkText('"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}');
// A chunk spread over two `data:` lines (legal SSE: the lines join with a newline).
const MULTI_LINE_DATA = 'data: {"id":"chatcmpl-relay","object":"chat.completion.chunk",\ndata: "created":1,"model":"m-upstream","choices":[{"index":0,"delta":{"content":" there"},"finish_reason":null}]}\n\n';

let upstream: Server;
let upstreamConnections = 0;
let stack: Stack;

before(async () => {
  upstream = createServer((request, response) => {
    let body = '';
    request.on('data', (part: Buffer) => (body += part.toString('utf8')));
    request.on('end', () => {
      const parsed = JSON.parse(body) as { stream?: boolean };
      if (parsed.stream) {
        response.writeHead(200, { 'content-type': 'text/event-stream' });
        response.write(
          `data: ${ROLE_CHUNK}\n\ndata: ${CONTENT_CHUNK}\n\n${MULTI_LINE_DATA}data: ${FINISH_CHUNK}\n\ndata: ${USAGE_CHUNK}\n\ndata: [DONE]\n\n`,
        );
        // The body ends a moment after [DONE], as some servers do: Seed must not wait for it.
        setTimeout(() => response.end(), 30);
        return;
      }
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(COMPLETION_TEXT);
    });
  });
  upstream.on('connection', () => (upstreamConnections += 1));
  const upstreamUrl = await listenOnLoopback(upstream);
  // The upstream is not the simulator; the stack's simulator only stands by.
  stack = await startStack({
    config: () => `
deployments:
  relay:
    provider: openai-compatible
    baseUrl: ${upstreamUrl}/v1
    model: m-upstream
    terms: llama-3.1
routes:
  relay: { deployments: [{ deployment: relay }] }
`,
  });
});

after(async () => {
  await stack?.close();
  await new Promise<void>((resolve) => upstream?.close(() => resolve()));
});

async function post(body: object): Promise<{ status: number; contentType: string | null; text: string }> {
  const response = await fetch(`${stack.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: response.status, contentType: response.headers.get('content-type'), text: await response.text() };
}

test('a non-streaming answer reaches the client byte for byte, as JSON', async () => {
  const answer = await post({ model: 'relay', messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(answer.status, 200);
  assert.match(answer.contentType ?? '', /^application\/json/);
  assert.equal(answer.text, COMPLETION_TEXT);
  const [record] = await stack.waitForRecords(1);
  assert.equal(record?.promptTokens, 3, 'the relayed answer was still read for usage');
});

test('stream chunks are relayed as sent; multi-line data and stripped usage are serialized again', async () => {
  const answer = await post({ model: 'relay', stream: true, messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(answer.status, 200);
  const frames = answer.text.split('\n\n').filter(Boolean);
  // Every frame is one `data:` line, whatever the upstream sent.
  for (const frame of frames) assert.match(frame, /^data: [^\n]+$/);
  assert.equal(frames[0], `data: ${ROLE_CHUNK}`);
  assert.equal(frames[1], `data: ${CONTENT_CHUNK}`);
  assert.deepEqual(JSON.parse(frames[2]!.slice('data: '.length)).choices[0].delta, { content: ' there' });
  assert.equal(frames[3], `data: ${FINISH_CHUNK}`);
  // The client did not ask for usage, so the usage-only chunk Seed requested is not forwarded.
  assert.equal(frames[4], 'data: [DONE]');
  assert.equal(frames.length, 5);
});

test('with include_usage the usage chunk is relayed as sent', async () => {
  const answer = await post({ model: 'relay', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'hi' }] });
  const frames = answer.text.split('\n\n').filter(Boolean);
  assert.equal(frames.at(-2), `data: ${USAGE_CHUNK}`);
});

test('toJsonText: the remembered text for the parsed value only; copies are serialized', () => {
  const text = '{"b": 1,  "a": [true]}';
  const value = withJsonText(JSON.parse(text) as { b: number; a: boolean[] }, text);
  assert.equal(toJsonText(value), text);
  assert.equal(toJsonText({ ...value }), '{"b":1,"a":[true]}');
  assert.equal(toJsonText({ plain: 'value' }), '{"plain":"value"}');
});

test('a finished stream gives its upstream connection back to the pool instead of closing it', async () => {
  // Reading stopped at [DONE] used to destroy the body, and the connection with it: every
  // streamed call paid a new TCP connection (and an AbortError) upstream.
  await post({ model: 'relay', stream: true, messages: [{ role: 'user', content: 'warm' }] });
  await new Promise((resolve) => setTimeout(resolve, 100));
  const before = upstreamConnections;
  for (let index = 0; index < 3; index += 1) {
    const answer = await post({ model: 'relay', stream: true, messages: [{ role: 'user', content: 'hi' }] });
    assert.match(answer.text, /data: \[DONE\]\n\n$/);
    // Let the body drain (it ends 30 ms after [DONE]) before the next call takes a connection.
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.equal(upstreamConnections - before, 0, 'a streamed call opened a new upstream connection');
});
