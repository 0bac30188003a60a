/**
 * Token-counting vocabularies are loaded on demand (src/limits/estimate.ts): each is 11–21 MB of
 * heap that every major GC marks, so the gateway loads none unless `limits.promptEstimate` is
 * `exact`, and then only those its deployments' models use.
 * Runs in its own process (the node test runner's default), so what is loaded is this file's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countTokens as o200kCount } from 'gpt-tokenizer/encoding/o200k_base';
import { countTokens as cl100kCount } from 'gpt-tokenizer/encoding/cl100k_base';
import { parseConfig } from '../src/config/load.ts';
import { ANONYMOUS_CALLER } from '../src/gateway/hooks.ts';
import { createLimitAdmission } from '../src/limits/admission.ts';
import { estimateChatTokens, loadedTokenCounting, loadTokenCounting, type PromptEstimate } from '../src/limits/estimate.ts';
import { Limiter } from '../src/limits/limiter.ts';
import { MemoryLimitStore } from '../src/limits/memory-store.ts';
import { buildRouteTable } from '../src/routing/route-table.ts';
import { startStack } from './helpers/stack.ts';

const TEXT = 'Tokenizers split text like this: “héllo wörld”, 12345, <|endoftext|> and 東京.';

const TWO_DEPLOYMENTS = (url: string, limits: string) => `
${limits}
deployments:
  mini: { provider: openai, baseUrl: ${url}/v1, model: gpt-4o-mini, apiKey: sk-test, limits: { tpm: 1000000 } }
  claude: { provider: anthropic, baseUrl: ${url}, model: claude-sonnet-4-5, apiKey: sk-ant-test }
routes:
  fast: { deployments: [{ deployment: mini }] }
  smart: { deployments: [{ deployment: claude }] }
`;

test('the gateway estimates without a vocabulary by default; `promptEstimate: exact` loads only its deployments\' encodings', async () => {
  assert.deepEqual(loadedTokenCounting(), [], 'importing the estimator loads no vocabulary');
  const approximate = await startStack({ config: (url) => TWO_DEPLOYMENTS(url, '') });
  try {
    // The deployment's tpm quota makes admission estimate the call.
    const response = await fetch(`${approximate.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'fast', messages: [{ role: 'user', content: TEXT }], max_tokens: 8 }),
    });
    assert.equal(response.status, 200, await response.text());
    assert.deepEqual(loadedTokenCounting(), [], 'a default gateway estimated a gpt-4o-mini call with no vocabulary loaded');
  } finally {
    await approximate.close();
  }
  const exact = await startStack({ config: (url) => TWO_DEPLOYMENTS(url, 'limits: { store: memory, promptEstimate: exact }') });
  try {
    assert.deepEqual(loadedTokenCounting(), ['o200k_base'], 'claude is approximated; gpt-4o-mini needs o200k_base only');
  } finally {
    await exact.close();
  }
});

test('admission reserves the exact count only with `promptEstimate: exact`', async () => {
  const config = parseConfig(TWO_DEPLOYMENTS('http://127.0.0.1:9', ''), { env: {} });
  const route = buildRouteTable(config).routes.get('fast');
  assert.ok(route);
  const body = { model: 'fast', messages: [{ role: 'user' as const, content: TEXT }], max_tokens: 8 };
  const routingEstimate = async (promptEstimate: PromptEstimate | undefined) => {
    const limiter = new Limiter({ store: new MemoryLimitStore(), onUnavailable: 'closed' });
    const admission = createLimitAdmission({ limiter, price: () => 0, ...(promptEstimate ? { promptEstimate } : {}) });
    const ticket = await admission.admit({
      caller: ANONYMOUS_CALLER,
      route,
      endpoint: 'chat.completions',
      body,
      purpose: 'serve',
      priority: 'interactive',
      deadlineAt: Date.now() + 10_000,
      signal: new AbortController().signal,
    });
    const tokens = ticket.estimatedTokens?.();
    ticket.release();
    return tokens;
  };
  const exact = estimateChatTokens({ request: body, model: 'gpt-4o-mini' });
  const approximate = estimateChatTokens({ request: body, model: 'gpt-4o-mini', exactCharacterLimit: 0 });
  assert.equal(exact.counting, 'o200k_base');
  assert.equal(approximate.counting, 'approximate');
  assert.notEqual(exact.totalTokens, approximate.totalTokens, 'the text tells the two estimates apart');
  assert.equal(await routingEstimate('exact'), exact.totalTokens);
  assert.equal(await routingEstimate('approximate'), approximate.totalTokens);
  assert.equal(await routingEstimate(undefined), approximate.totalTokens, 'approximate is the default');
});

test('loadTokenCounting names what the models need; counts are exact either way', () => {
  assert.deepEqual(loadTokenCounting(['gpt-4o-mini', 'claude-sonnet-4-5', 'o3']), ['o200k_base']);
  assert.deepEqual(loadTokenCounting(['mistral-large']), []);
  // An encoding no deployment asked for is loaded by the first estimate that needs it.
  const before = loadedTokenCounting();
  assert.ok(!before.includes('cl100k_base'));
  const prompt = (model: string, content: string) =>
    estimateChatTokens({ request: { model, messages: [{ role: 'user', content }] }, model, defaultMaxTokens: 16 });
  const estimate = prompt('gpt-4', TEXT);
  assert.equal(estimate.counting, 'cl100k_base');
  assert.deepEqual(loadedTokenCounting(), ['cl100k_base', 'o200k_base']);
  // The text's part of the estimate is its exact count (special-token text as plain text).
  const plain = { disallowedSpecial: new Set<string>() };
  assert.equal(estimate.promptTokens - prompt('gpt-4', '').promptTokens, cl100kCount(TEXT, plain));
  assert.equal(prompt('gpt-4o', TEXT).promptTokens - prompt('gpt-4o', '').promptTokens, o200kCount(TEXT, plain));
  assert.notEqual(cl100kCount(TEXT, plain), o200kCount(TEXT, plain), 'the text tells the two encodings apart');
});
