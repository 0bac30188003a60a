/**
 * Fuzzes what comes before the body: header values (content-type, x-seed-purpose,
 * x-seed-priority, x-request-id, any header), oversized headers, undecodable URLs and bytes
 * that are not HTTP at all. Sent on raw sockets, because HTTP clients refuse to send most of
 * it. The invariant: a 4xx OpenAI-format error or a 200, never a 5xx, a crash or a hang.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { assertClientErrorOrSuccess, assertOpenAIError, rawExchange, rawRequest } from './helpers/fuzz-http.ts';
import { fuzzRuns, prototypeName, startFuzzStack, type FuzzClient } from './helpers/fuzz-stack.ts';

let client: FuzzClient;
let address: AddressInfo;
before(async () => {
  client = await startFuzzStack();
  address = client.stack.seed.app.server.address() as AddressInfo;
});
after(async () => client.close());

const RUNS = fuzzRuns(200);
const CHAT_BODY = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
const EMBEDDING_BODY = JSON.stringify({ model: 'text-embedding-3-small', input: 'hi' });
const HEADER_NAMES = ['content-type', 'x-seed-purpose', 'x-seed-priority', 'x-request-id', 'authorization', 'transfer-encoding', 'x-anything'];

/** Header values as bytes: printable text, Latin-1, control characters, CR and LF included. */
const headerValue = fc.oneof(
  fc.string({ maxLength: 64 }),
  fc.constantFrom('', ' ', 'batch', 'BATCH', 'serve, train', 'train-competing', 'interactive\t', 'application/json; charset=utf-16le', 'chunked'),
  prototypeName,
  fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes).toString('latin1')),
);

test('random header values on chat and embeddings requests', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(['/v1/chat/completions', CHAT_BODY] as const, ['/v1/embeddings', EMBEDDING_BODY] as const),
      fc.array(fc.tuple(fc.constantFrom(...HEADER_NAMES), headerValue), { minLength: 1, maxLength: 4 }),
      async ([path, body], headers) => {
        const lines = headers.map(([name, value]) => `${name}: ${value}`);
        if (!headers.some(([name]) => name === 'content-type')) lines.push('content-type: application/json');
        const answer = await rawExchange({ address, bytes: rawRequest({ path, headers: lines, body }) });
        assertClientErrorOrSuccess(answer, `${path} ${JSON.stringify(lines)}`);
      },
    ),
    RUNS,
  );
});

test('declared bad values of the seed headers are 400s naming the header', async () => {
  for (const [name, value] of [
    ['x-seed-purpose', 'world-domination'],
    ['x-seed-purpose', ''],
    ['x-seed-priority', 'urgent'],
    ['x-seed-priority', ''],
  ] as const) {
    const answer = await rawExchange({
      address,
      bytes: rawRequest({ path: '/v1/chat/completions', headers: ['content-type: application/json', `${name}: ${value}`], body: CHAT_BODY }),
    });
    assert.equal(answer.status, 400, `${name}=${value}: ${answer.body}`);
    assertOpenAIError(answer.body, answer.status);
    assert.equal((JSON.parse(answer.body) as { error: { param: string } }).error.param, name);
  }
});

test('an x-request-id that is unusable is neither stored nor echoed', async () => {
  for (const value of ['a'.repeat(129), 'has space', '../../etc', 'é']) {
    const answer = await rawExchange({
      address,
      bytes: rawRequest({ path: '/v1/chat/completions', headers: ['content-type: application/json', `x-request-id: ${value}`], body: CHAT_BODY }),
    });
    assert.equal(answer.status, 200, answer.body);
    assert.match(answer.headers['x-request-id'] ?? '', /^req_[0-9a-f]{32}$/);
    assert.equal(answer.headers['x-client-request-id'], undefined);
  }
});

test('regression: oversized headers are answered in OpenAI format', async () => {
  // Node refuses headers over 16 KB before Fastify sees the request; its default answer was
  // Fastify's own `{"error":"Request Header Fields Too Large",…}`, which OpenAI SDKs cannot read.
  for (const headers of [
    ['content-type: application/json', `x-request-id: ${'a'.repeat(20_000)}`],
    ['content-type: application/json', ...Array.from({ length: 1_500 }, (_, index) => `x-filler-${index}: ${'b'.repeat(16)}`)],
  ]) {
    const answer = await rawExchange({ address, bytes: rawRequest({ path: '/v1/chat/completions', headers, body: CHAT_BODY }) });
    assert.ok(answer.status >= 400 && answer.status < 500, `${answer.status} ${answer.body}`);
    assertOpenAIError(answer.body, answer.status);
  }
  // Large but within Node's limit: served.
  const large = await rawExchange({
    address,
    bytes: rawRequest({ path: '/v1/chat/completions', headers: ['content-type: application/json', `x-anything: ${'c'.repeat(8_000)}`], body: CHAT_BODY }),
  });
  assert.equal(large.status, 200, large.body);
});

test('regression: unparseable HTTP is answered in OpenAI format', async () => {
  const garbage = [
    'GARBAGE\r\n\r\n',
    'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n',
    'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nBad Header Name: 1\r\n\r\n',
    'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nx-seed-purpose: a\u0000b\r\n\r\n',
    'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
  ];
  for (const bytes of garbage) {
    const answer = await rawExchange({ address, bytes: Buffer.from(bytes, 'latin1') });
    assert.equal(answer.status, 400, `${JSON.stringify(bytes)}: ${answer.body}`);
    assertOpenAIError(answer.body, answer.status);
  }
});

test('random bytes instead of an HTTP request', async () => {
  // Bytes that are only CR and LF are empty lines, which HTTP/1.1 lets a server skip before a
  // request line (RFC 9112, section 2.2): the server rightly waits for the request, so they
  // are no head to answer (FUZZ_SEED=2162932326 FUZZ_RUNS_SCALE=10 drew [0x0a]).
  const notOnlyLineBreaks = (bytes: Uint8Array) => bytes.some((byte) => byte !== 0x0a && byte !== 0x0d);
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 512 }).filter(notOnlyLineBreaks), async (bytes) => {
      // Always a complete head, so the server has something to answer rather than waiting.
      const answer = await rawExchange({ address, bytes: Buffer.concat([Buffer.from(bytes), Buffer.from('\r\n\r\n')]) });
      assertClientErrorOrSuccess(answer, Buffer.from(bytes).toString('hex').slice(0, 200));
    }),
    fuzzRuns(100),
  );
});

test('regression: an undecodable URL is answered in OpenAI format', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom('/v1/chat/completions', '/v1/embeddings', '/v1', ''),
      fc.array(fc.constantFrom('%', '%E0%A4%A', '%ZZ', '%00', '%C0%AF', '/', 'x', '?', '#', '..', ';', '%2F'), { maxLength: 6 }),
      async (base, pieces) => {
        const path = `${base}/${pieces.join('')}`;
        const answer = await rawExchange({ address, bytes: rawRequest({ path, headers: ['content-type: application/json'], body: CHAT_BODY }) });
        assertClientErrorOrSuccess(answer, path);
      },
    ),
    fuzzRuns(100),
  );
  const answer = await rawExchange({ address, bytes: rawRequest({ path: '/v1/chat/completions/%E0%A4%A', body: CHAT_BODY }) });
  assert.equal(answer.status, 400, answer.body);
  assertOpenAIError(answer.body, answer.status);
});

test('after the fuzzing the gateway still serves a normal request', async () => {
  await client.assertStillServes();
});
