/** Opt-in payload storage in the ledger, OpenAI's `store: false` opt-out, metadata, and the redaction hook. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { ANONYMOUS_CALLER, type Caller } from '../src/gateway/hooks.ts';
import { startStack, type Stack } from './helpers/stack.ts';

let stack: Stack;
let caller: Caller = ANONYMOUS_CALLER;

before(async () => {
  stack = await startStack({
    config: (url) => `
ledger:
  redact:
    - { pattern: '[\\w.+-]+@[\\w-]+\\.[\\w.]+', replacement: '[EMAIL]' }
    - { pattern: 'project falcon', flags: i }
deployments:
  mini: { provider: openai, baseUrl: ${url}/v1, model: gpt-4o-mini, apiKey: sk }
routes:
  gpt-4o-mini: { deployments: [{ deployment: mini }] }
`,
    start: { authenticate: () => caller },
  });
});
after(async () => stack.close());

async function call(body: Partial<OpenAI.ChatCompletionCreateParamsNonStreaming>) {
  const client = new OpenAI({ baseURL: stack.baseURL, apiKey: 'x', maxRetries: 0 });
  const { response } = await client.chat.completions
    .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Mail jane.doe@example.com about Project Falcon' }], ...body })
    .withResponse();
  const id = response.headers.get('x-request-id') ?? '';
  await stack.seed.ledger.flush();
  const stored = await stack.seed.store.getCall(id);
  assert.ok(stored, `the call is in the store: ${id} ${JSON.stringify(stack.seed.ledger.stats())} ${JSON.stringify(stack.records.map((record) => [record.id, record.status, record.errorCode]))}`);
  return stored;
}

test('a key that opted in stores the payload, redacted, with its metadata', async () => {
  caller = { ...ANONYMOUS_CALLER, keyId: 'key_payloads', storePayloads: true };
  const stored = await call({ metadata: { ticket: 'T-1' } });
  const text = JSON.stringify(stored.payload);
  assert.ok(stored.payload, 'payload stored');
  assert.ok(!text.includes('jane.doe@example.com'), 'e-mail redacted');
  assert.ok(!/project falcon/i.test(text), 'case-insensitive rule applied');
  assert.match(text, /\[EMAIL\]/);
  assert.match(text, /\[REDACTED\]/);
  assert.deepEqual(stored.metadata, { ticket: 'T-1' });
  assert.equal((stored.payload.response as { object: string }).object, 'chat.completion');
});

test("a request may opt out with OpenAI's store: false", async () => {
  caller = { ...ANONYMOUS_CALLER, keyId: 'key_payloads', storePayloads: true };
  const stored = await call({ store: false });
  assert.equal(stored.payload, null);
});

test('keys that did not opt in never store payloads, whatever the request says', async () => {
  caller = { ...ANONYMOUS_CALLER, keyId: 'key_plain', storePayloads: false };
  const stored = await call({ store: true, metadata: { ticket: 'T-2' } });
  assert.equal(stored.payload, null);
  assert.equal(stored.metadata, null);
});
