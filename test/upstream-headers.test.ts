/**
 * An upstream answer's headers as Seed's undici handler hands them on (upstream-call.ts): kept as
 * the parser read them and decoded only when asked for. A name matches whatever case the upstream
 * wrote it in, a repeated header gives its first value, a value decodes as Latin-1 (as undici's
 * own parse did), an informational 103 before the answer is skipped, and the rate-limit reading
 * built on top (`upstreamInfo`) sees the same values as before.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, test } from 'node:test';
import { Agent } from 'undici';
import { CallAbort } from '../src/abort.ts';
import { postJson, readJsonText, retryAfterMs, upstreamInfo, upstreamStatusError } from '../src/providers/http.ts';
import { RawHeaders, headersOf } from '../src/providers/upstream-call.ts';
import { listenOnLoopback } from './helpers/loopback.ts';

let server: Server;
let origin: string;
const agent = new Agent();

before(async () => {
  server = createServer((request, response) => {
    request.resume();
    if (request.url === '/early-hints') response.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
    if (request.url === '/refused') {
      response.writeHead(429, [
        ['Content-Type', 'application/json'],
        ['Retry-After-Ms', '1250'],
        ['X-RateLimit-Remaining-Requests', '0'],
      ]);
      response.end('{"error":{"message":"slow down"}}');
      return;
    }
    // Raw header pairs: names in the case an upstream may use, one name twice, a Latin-1 value.
    response.writeHead(200, [
      ['Content-Type', 'application/json'],
      ['X-Request-ID', 'req_upstream_1'],
      ['x-ratelimit-limit-requests', '500'],
      ['X-RATELIMIT-REMAINING-REQUESTS', '499'],
      ['X-Ratelimit-Reset-Requests', '120ms'],
      ['x-ratelimit-limit-tokens', '30000'],
      ['x-ratelimit-remaining-tokens', '29950'],
      ['x-ratelimit-reset-tokens', '1m30s'],
      ['X-Twice', 'first'],
      ['x-twice', 'second'],
      ['X-Latin1', Buffer.from('caf\xe9', 'latin1').toString('latin1')],
    ]);
    response.end('{"ok":true}');
  });
  origin = await listenOnLoopback(server);
});

after(async () => {
  await agent.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function post(path: string) {
  return postJson({ dispatcher: agent, url: `${origin}${path}`, headers: {}, body: {}, signal: new CallAbort(), timeoutMs: 10_000, label: 'test' });
}

test('headers read off the wire match by name in any case; a repeated one gives its first value', async () => {
  const response = await post('/');
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('x-request-id'), 'req_upstream_1');
  assert.equal(response.headers.get('x-ratelimit-remaining-requests'), '499');
  assert.equal(response.headers.get('x-twice'), 'first');
  assert.equal(response.headers.get('x-latin1'), 'caf\xe9', 'Latin-1, as undici decodes header values');
  assert.equal(response.headers.get('x-absent'), undefined);
  assert.equal(response.headers.get('x-twic'), undefined, 'a prefix of a name is not the name');
  assert.deepEqual(upstreamInfo(response), {
    status: 200,
    requestId: 'req_upstream_1',
    rateLimit: {
      limitRequests: 500,
      remainingRequests: 499,
      resetRequestsMs: 120,
      limitTokens: 30_000,
      remainingTokens: 29_950,
      resetTokensMs: 90_000,
    },
  });
  const read = readJsonText(response, 'test');
  assert.deepEqual((read instanceof Promise ? await read : read).value, { ok: true });
});

test('an informational 103 before the answer is skipped: the call resolves with the answer and its headers', async () => {
  const response = await post('/early-hints');
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('link'), undefined, "the hint's headers are not the answer's");
  assert.equal(response.headers.get('x-request-id'), 'req_upstream_1');
  const read = readJsonText(response, 'test');
  assert.deepEqual((read instanceof Promise ? await read : read).value, { ok: true });
});

test("a 429's retry-after-ms and quota headers reach the error, whatever their case", async () => {
  const response = await post('/refused');
  assert.equal(retryAfterMs(response.headers), 1_250);
  const error = upstreamStatusError({ status: response.status, headers: response.headers, message: 'slow down', label: 'test' });
  assert.equal(error.code, 'upstream_rate_limited');
  assert.equal(error.retryAfterMs, 1_250);
  assert.equal(error.upstreamQuota?.remainingRequests, 0);
  await response.body.text();
});

test('RawHeaders: names compare without regard to ASCII case only; string and Buffer entries both read', () => {
  const headers = new RawHeaders([Buffer.from('X-Caret^'), Buffer.from('a'), 'Content-Type', 'text/plain', Buffer.from('Odd'), Buffer.from('')]);
  assert.equal(headers.get('x-caret^'), 'a');
  assert.equal(headers.get('x-caret~'), undefined, "'^' and '~' differ only in bit 0x20 but are not letters");
  assert.equal(headers.get('content-type'), 'text/plain');
  assert.equal(headers.get('odd'), '');
  assert.equal(new RawHeaders([Buffer.from('dangling')]).get('dangling'), undefined, 'a name without its value is ignored');
});

test('headersOf: an object of headers read the same way, first of several values, own keys only', () => {
  const headers = headersOf({ 'retry-after': '2', 'set-cookie': ['a=1', 'b=2'] });
  assert.equal(headers.get('retry-after'), '2');
  assert.equal(headers.get('set-cookie'), 'a=1');
  assert.equal(headers.get('constructor'), undefined);
  assert.equal(retryAfterMs(headers), 2_000);
});

test('retryAfterMs: retry-after-ms wins; seconds and HTTP dates are read; empty, negative and unreadable values are ignored', () => {
  const wait = (record: Record<string, string>, now?: number) => retryAfterMs(headersOf(record), now);
  assert.equal(wait({ 'retry-after-ms': '250', 'retry-after': '3' }), 250);
  assert.equal(wait({ 'retry-after-ms': '0' }), 0);
  assert.equal(wait({ 'retry-after': '2' }), 2_000);
  assert.equal(wait({ 'retry-after': '1.5' }), 1_500);
  assert.equal(wait({ 'retry-after': new Date(10_000).toUTCString() }, 7_000), 3_000);
  assert.equal(wait({ 'retry-after': new Date(5_000).toUTCString() }, 7_000), 0, 'a date already past');
  // A malformed retry-after-ms falls back to retry-after, never to "retry at once".
  assert.equal(wait({ 'retry-after-ms': '', 'retry-after': '3' }), 3_000);
  assert.equal(wait({ 'retry-after-ms': '-5', 'retry-after': '3' }), 3_000);
  assert.equal(wait({ 'retry-after-ms': 'soon', 'retry-after': '3' }), 3_000);
  for (const value of ['', '  ', '-1', 'soon', 'Infinity']) assert.equal(wait({ 'retry-after': value }), undefined, JSON.stringify(value));
  assert.equal(wait({}), undefined);
});
