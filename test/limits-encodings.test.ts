/**
 * Token-counting vocabularies are loaded on demand (src/limits/estimate.ts): each is 11–21 MB of
 * heap that every major GC marks, so a process loads only those its deployments' models use.
 * Runs in its own process (the node test runner's default), so what is loaded is this file's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countTokens as o200kCount } from 'gpt-tokenizer/encoding/o200k_base';
import { countTokens as cl100kCount } from 'gpt-tokenizer/encoding/cl100k_base';
import { estimateChatTokens, loadedTokenCounting, loadTokenCounting } from '../src/limits/estimate.ts';
import { startStack } from './helpers/stack.ts';

const TEXT = 'Tokenizers split text like this: “héllo wörld”, 12345, <|endoftext|> and 東京.';

test('nothing is loaded until needed; a start-up loads only the encodings of its deployments', async () => {
  assert.deepEqual(loadedTokenCounting(), [], 'importing the estimator loads no vocabulary');
  const stack = await startStack({
    config: (url) => `
deployments:
  mini: { provider: openai, baseUrl: ${url}/v1, model: gpt-4o-mini, apiKey: sk-test }
  claude: { provider: anthropic, baseUrl: ${url}, model: claude-sonnet-4-5, apiKey: sk-ant-test }
routes:
  fast: { deployments: [{ deployment: mini }] }
  smart: { deployments: [{ deployment: claude }] }
`,
  });
  try {
    assert.deepEqual(loadedTokenCounting(), ['o200k_base'], 'claude is approximated; gpt-4o-mini needs o200k_base only');
  } finally {
    await stack.close();
  }
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
