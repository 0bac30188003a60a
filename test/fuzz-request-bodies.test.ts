/**
 * Fuzzes request bodies against /v1/chat/completions, /v1/embeddings and unknown paths: random
 * JSON, wrong types for every known field, random bytes, invalid UTF-8, huge strings and deep
 * nesting. The invariant: a 4xx OpenAI-format error or a valid 200, never a 5xx, a crash or a
 * hang (every request has a client timeout); afterwards the gateway still serves.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Agent } from 'undici';
import { SeedError } from '../src/errors.ts';
import { postJson } from '../src/providers/http.ts';
import { assertClientErrorOrSuccess, assertOpenAIError, assertTruthfulMessage } from './helpers/fuzz-http.ts';
import { FUZZ_BODY_LIMIT_BYTES, fuzzRuns, prototypeName, startFuzzStack, type FuzzClient } from './helpers/fuzz-stack.ts';

let client: FuzzClient;
before(async () => {
  client = await startFuzzStack();
});
after(async () => client.close());

const CHAT = '/v1/chat/completions';
const EMBEDDINGS = '/v1/embeddings';
const PATHS = [CHAT, EMBEDDINGS, '/v1/unknown', '/v1/chat/completions/extra', '/v2/embeddings'];
const RUNS = fuzzRuns(200);
/** JSON with any Unicode in strings (lone surrogates included), not only ASCII. */
const anyJson = (maxDepth?: number) =>
  fc.oneof(
    fc.jsonValue(maxDepth === undefined ? {} : { maxDepth }),
    fc.jsonValue({ stringUnit: 'binary', ...(maxDepth === undefined ? {} : { maxDepth }) }),
    prototypeName,
  );

const validChat = (): Record<string, unknown> => ({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
const validEmbedding = (): Record<string, unknown> => ({ model: 'text-embedding-3-small', input: 'hi' });

/** Every field the chat schema type-checks, including nested ones, as a path into the body. */
const CHAT_FIELDS: ReadonlyArray<readonly (string | number)[]> = [
  ...[
    'model', 'messages', 'stream', 'stream_options', 'max_tokens', 'max_completion_tokens', 'temperature', 'top_p', 'n',
    'stop', 'presence_penalty', 'frequency_penalty', 'logit_bias', 'logprobs', 'top_logprobs', 'seed', 'user', 'tools',
    'tool_choice', 'parallel_tool_calls', 'response_format', 'metadata', 'store', 'reasoning_effort',
  ].map((field) => [field]),
  ['messages', 0],
  ['messages', 0, 'role'],
  ['messages', 0, 'content'],
  ['messages', 0, 'name'],
  ['stream_options', 'include_usage'],
];
const EMBEDDING_FIELDS: ReadonlyArray<readonly (string | number)[]> = [['model'], ['input'], ['encoding_format'], ['dimensions'], ['user']];

/** Sets `value` at `path` in a fresh copy of `base`, creating containers on the way. */
function withField(base: Record<string, unknown>, path: readonly (string | number)[], value: unknown): Record<string, unknown> {
  const copy = structuredClone(base);
  let cursor: Record<string | number, unknown> = copy;
  path.forEach((segment, index) => {
    if (index === path.length - 1) {
      cursor[segment] = value;
      return;
    }
    const next = cursor[segment];
    if (next === null || typeof next !== 'object') cursor[segment] = typeof path[index + 1] === 'number' ? [] : {};
    cursor = cursor[segment] as Record<string | number, unknown>;
  });
  return copy;
}

/** The fuzz invariant, also for a streamed 200 (a valid body with `stream: true`). */
function assertAnswer(answer: Awaited<ReturnType<FuzzClient['send']>>, context: string): void {
  const contentType = String(answer.headers['content-type'] ?? '');
  if (answer.status === 200 && contentType.startsWith('text/event-stream')) {
    assert.ok(answer.body.trimEnd().endsWith('data: [DONE]'), `${context}: stream did not finish: ${answer.body.slice(-300)}`);
    return;
  }
  assertClientErrorOrSuccess(answer, context);
}

test('random JSON values as the whole body, on every path', async () => {
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...PATHS), anyJson(), async (path, value) => {
      const answer = await client.send({ path, body: JSON.stringify(value) });
      assertAnswer(answer, `${path} ${JSON.stringify(value).slice(0, 200)}`);
      assertTruthfulMessage(value, answer, `${path} ${JSON.stringify(value).slice(0, 200)}`);
    }),
    RUNS,
  );
});

// -0 is written as 0 (a message that says "got 0" is true of it: found by the random fields below).
const WRONG_VALUES: readonly unknown[] = ['', 'x', '\u4f60\u597d', '\ud800', 'a\r\nx-injected: 1', 0, -0, -1, 1.5, 1e308, -1e308, true, false, null, [], [null], {}, { a: 1 }, [[[]]], '\u0000'];

test('wrong types for every known field of chat and embeddings requests (each field, each kind of value)', async () => {
  for (const [path, base, fields] of [
    [CHAT, validChat, CHAT_FIELDS],
    [EMBEDDINGS, validEmbedding, EMBEDDING_FIELDS],
  ] as const) {
    for (const field of fields) {
      for (const value of WRONG_VALUES) {
        const sent = withField(base(), field, value);
        const answer = await client.send({ path, body: JSON.stringify(sent) });
        assertAnswer(answer, `${path} ${field.join('.')}=${JSON.stringify(value)}`);
        assertTruthfulMessage(sent, answer, `${path} ${field.join('.')}=${JSON.stringify(value)}`);
      }
    }
  }
});

test('regression: a model name with characters Node refuses in a header is a 4xx, not a 500', async () => {
  // Control characters are refused by validation (400); other non-ASCII names are unknown routes (404).
  for (const [model, status] of [['\u0000', 400], ['gpt\u4f60\u597d', 404], ['a\r\nx-injected: 1', 400], ['\ud83d\ude00', 404]] as const) {
    for (const [path, body] of [
      [CHAT, { ...validChat(), model }],
      [EMBEDDINGS, { ...validEmbedding(), model }],
    ] as const) {
      const answer = await client.send({ path, body: JSON.stringify(body) });
      assert.equal(answer.status, status, `${path} ${JSON.stringify(model)}: ${answer.body}`);
      assertOpenAIError(answer.body, answer.status);
      assert.equal(answer.headers['x-injected'], undefined);
    }
  }
});

test('random values in random known fields', async () => {
  const chatCase = fc.record({
    path: fc.constant(CHAT),
    field: fc.constantFrom(...CHAT_FIELDS),
    value: anyJson(4),
  });
  const embeddingCase = fc.record({
    path: fc.constant(EMBEDDINGS),
    field: fc.constantFrom(...EMBEDDING_FIELDS),
    value: anyJson(4),
  });
  await fc.assert(
    fc.asyncProperty(fc.oneof(chatCase, embeddingCase), async ({ path, field, value }) => {
      const sent = withField(path === CHAT ? validChat() : validEmbedding(), field, value);
      const answer = await client.send({ path, body: JSON.stringify(sent) });
      const context = `${path} ${field.join('.')}=${JSON.stringify(value).slice(0, 200)}`;
      assertAnswer(answer, context);
      assertTruthfulMessage(sent, answer, context);
    }),
    RUNS,
  );
});

/** Text tokenizers treat specially (gpt-tokenizer throws on it by default), among other text. */
const SPECIAL_TOKENS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>', '<|endofprompt|>', '<|fim_prefix|>', '<|fim_middle|>', '<|fim_suffix|>'];
const tokenizerText = fc
  .array(fc.oneof(fc.constantFrom(...SPECIAL_TOKENS), fc.string(), fc.string({ unit: 'binary' })), { maxLength: 12 })
  .map((parts) => parts.join(''));

test('regression: message text with tokenizer special tokens is estimated as text, never a 5xx', async () => {
  const long = (text: string) => text.repeat(Math.ceil(1_200 / Math.max(1, text.length)));
  await fc.assert(
    fc.asyncProperty(tokenizerText, fc.boolean(), fc.constantFrom(CHAT, EMBEDDINGS), async (text, past, path) => {
      // Short texts are counted exactly (BPE), long ones approximated: both paths get the text.
      const content = past ? long(text) : text;
      const body = path === CHAT ? { ...validChat(), messages: [{ role: 'user', content }] } : { ...validEmbedding(), input: content };
      assertAnswer(await client.send({ path, body: JSON.stringify(body) }), `${path} ${JSON.stringify(content).slice(0, 200)}`);
    }),
    RUNS,
  );
});

const CONTENT_TYPES = [
  undefined,
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=utf-16',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=seed',
  'application/octet-stream',
  '*/*',
  ';;;',
];

test('random bytes with assorted content types', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(...PATHS),
      fc.constantFrom(...CONTENT_TYPES),
      fc.uint8Array({ maxLength: 2_048 }),
      async (path, contentType, bytes) => {
        const answer = await client.send({
          path,
          body: Buffer.from(bytes),
          headers: contentType === undefined ? {} : { 'content-type': contentType },
        });
        assertAnswer(answer, `${path} ${contentType} ${Buffer.from(bytes).toString('hex').slice(0, 200)}`);
      },
    ),
    RUNS,
  );
});

test('invalid UTF-8 byte sequences inside otherwise valid bodies', async () => {
  const invalidSequences = fc.constantFrom(
    [0xff],
    [0xc0, 0xaf], // overlong '/'
    [0xed, 0xa0, 0x80], // encoded surrogate
    [0xf4, 0x90, 0x80, 0x80], // beyond U+10FFFF
    [0xe2, 0x82], // truncated
    [0x80, 0x80],
  );
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(CHAT, EMBEDDINGS),
      fc.array(fc.oneof(invalidSequences, fc.uint8Array({ maxLength: 8 }).map((bytes) => [...bytes])), { minLength: 1, maxLength: 6 }),
      async (path, pieces) => {
        const [head, tail] =
          path === CHAT
            ? ['{"model":"gpt-4o-mini","messages":[{"role":"user","content":"', '"}]}']
            : ['{"model":"text-embedding-3-small","input":"', '"}'];
        // Quotes and backslashes would end or escape the string early; keep the JSON well-formed.
        const middle = Buffer.from(pieces.flat().filter((byte) => byte !== 0x22 && byte !== 0x5c && byte >= 0x20));
        const answer = await client.send({ path, body: Buffer.concat([Buffer.from(head), middle, Buffer.from(tail)]) });
        assertAnswer(answer, `${path} ${middle.toString('hex')}`);
      },
    ),
    // Most of these bodies are valid and reach the simulator, so fewer runs buy the same coverage.
    fuzzRuns(120),
  );
});

test('huge strings within and beyond the body limit', async () => {
  const within = 'a '.repeat(Math.floor((FUZZ_BODY_LIMIT_BYTES - 200) / 2));
  const fits = await client.send({ path: CHAT, body: JSON.stringify({ ...validChat(), messages: [{ role: 'user', content: within }] }) });
  assertAnswer(fits, 'content just within the limit');
  const longModel = await client.send({ path: CHAT, body: JSON.stringify({ ...validChat(), model: 'm'.repeat(50_000) }) });
  assert.equal(longModel.status, 400, longModel.body);
  assertOpenAIError(longModel.body, longModel.status);
  for (const size of [FUZZ_BODY_LIMIT_BYTES + 1, FUZZ_BODY_LIMIT_BYTES * 16]) {
    for (const path of [CHAT, EMBEDDINGS]) {
      const answer = await client.send({ path, body: JSON.stringify({ ...validChat(), user: 'x'.repeat(size) }) });
      assert.equal(answer.status, 413, `${path} ${size}: ${answer.body.slice(0, 200)}`);
      assertOpenAIError(answer.body, answer.status);
    }
  }
});

const deepArrays = (levels: number) => `${'['.repeat(levels)}${']'.repeat(levels)}`;
const deepObjects = (levels: number) => `${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}`;

test('regression: a deeply nested body is a 400, and does not cool the deployment down', async () => {
  const before = client.stack.simulator.stats().requests;
  const bodies: Array<[string, string]> = [
    [CHAT, deepArrays(10_000)],
    [CHAT, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"extra":${deepArrays(10_000)}}`],
    [CHAT, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f","parameters":${deepObjects(5_000)}}}]}`],
    [CHAT, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"metadata":${deepObjects(10_000)}}`],
    [EMBEDDINGS, `{"model":"text-embedding-3-small","input":"hi","extra":${deepArrays(10_000)}}`],
    ['/v1/unknown', deepArrays(10_000)],
  ];
  for (const [path, body] of bodies) {
    const answer = await client.send({ path, body });
    assert.ok(answer.status >= 400 && answer.status < 500, `${path}: ${answer.status} ${answer.body.slice(0, 200)}`);
    assertOpenAIError(answer.body, answer.status);
  }
  // Before the fix these reached the upstream adapter, failed to serialize, counted as
  // connection failures and put the deployment into cooldown for every other caller.
  assert.equal(client.stack.simulator.stats().requests, before, 'no deep body reached the upstream');
  const normal = await client.send({ path: CHAT, body: JSON.stringify(validChat()) });
  assert.equal(normal.status, 200, normal.body);
  assert.equal(normal.headers['x-seed-attempts'], '1');
});

test('a body nested within the limit still passes (tool schemas are allowed real depth)', async () => {
  const body = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f","parameters":${deepObjects(100)}}}]}`;
  const answer = await client.send({ path: CHAT, body });
  assert.equal(answer.status, 200, answer.body);
});

test('regression: a body too deep to serialize is invalid_request, not a connection failure', async () => {
  // Jobs call the service without the HTTP edge; a body that cannot be serialized must not
  // look like a broken deployment (retried, and counted against its health).
  let nested: unknown = [];
  for (let level = 0; level < 100_000; level++) nested = [nested];
  const dispatcher = new Agent();
  try {
    await assert.rejects(
      postJson({
        dispatcher,
        url: 'http://127.0.0.1:9/never-reached',
        headers: {},
        body: { nested },
        signal: new AbortController().signal,
        timeoutMs: 1_000,
        label: 'deep',
      }),
      (error: unknown) => error instanceof SeedError && error.code === 'invalid_request',
    );
  } finally {
    await dispatcher.close();
  }
});

test('after the fuzzing the gateway still serves a normal request', async () => {
  await client.assertStillServes();
});
