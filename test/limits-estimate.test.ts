/**
 * Token estimates. These touch no store, so unlike the other limits tests they run once.
 * Expected counts were read from gpt-tokenizer itself (o200k_base and cl100k_base agree on
 * these strings): "hello world" 2, "You are a helpful assistant." 6, "What is the capital
 * of France?" 7, each role name 1, "bob" 1, "get_weather" 2, '{"city":"Paris"}' 5.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  approximateTokens,
  estimateChatTokens,
  estimateEmbeddingTokens,
  FALLBACK_COMPLETION_CAP,
  tokenCountingFor,
} from '../src/limits/estimate.ts';
import type { ChatCompletionRequest } from '../src/wire/openai.ts';

const conversation: ChatCompletionRequest = {
  model: 'gpt-4o',
  messages: [
    { role: 'system', content: 'You are a helpful assistant.' },
    { role: 'user', content: 'What is the capital of France?' },
  ],
};

test('model families map to their encodings; unknown models are approximated', () => {
  assert.equal(tokenCountingFor('gpt-4o-mini'), 'o200k_base');
  assert.equal(tokenCountingFor('gpt-4.1'), 'o200k_base');
  assert.equal(tokenCountingFor('o3-mini'), 'o200k_base');
  assert.equal(tokenCountingFor('openai/gpt-5'), 'o200k_base');
  assert.equal(tokenCountingFor('gpt-4-turbo'), 'cl100k_base');
  assert.equal(tokenCountingFor('gpt-3.5-turbo'), 'cl100k_base');
  assert.equal(tokenCountingFor('text-embedding-3-small'), 'cl100k_base');
  assert.equal(tokenCountingFor('claude-3-5-sonnet'), 'approximate');
  assert.equal(tokenCountingFor('llama-3.1-8b'), 'approximate');
});

test('"hello world" is 2 tokens in o200k_base', () => {
  const estimate = estimateChatTokens({
    request: { model: 'gpt-4o', messages: [{ role: 'user', content: 'hello world' }], max_tokens: 10 },
  });
  // 3 reply priming + 3 per message + "user" 1 + "hello world" 2
  assert.equal(estimate.promptTokens, 9);
  assert.equal(estimate.counting, 'o200k_base');
});

test('chat messages are counted with the per-message framing', () => {
  const estimate = estimateChatTokens({ request: { ...conversation, max_tokens: 100 } });
  // 3 priming + (3 + 1 + 6) + (3 + 1 + 7)
  assert.equal(estimate.promptTokens, 24);
  assert.equal(estimate.completionTokens, 100);
  assert.equal(estimate.totalTokens, 124);
  const cl100k = estimateChatTokens({ request: { ...conversation, max_tokens: 100 }, model: 'gpt-4' });
  assert.equal(cl100k.counting, 'cl100k_base');
  assert.equal(cl100k.promptTokens, 24);
});

test('names, tool calls and images add what they cost', () => {
  const estimate = estimateChatTokens({
    request: {
      model: 'gpt-4o',
      max_tokens: 1,
      messages: [
        { role: 'user', name: 'bob', content: 'hello world' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }],
        },
        { role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://example.com/a.png', detail: 'low' } }] },
      ],
    },
  });
  // 3 + (3 + 1 + 1 name + 1 "bob" + 2) + (3 + 1 + 2 + 5) + (3 + 1 + 85)
  assert.equal(estimate.promptTokens, 111);
});

test('the completion part is max_completion_tokens, else max_tokens, else the route default, times n', () => {
  const both = estimateChatTokens({ request: { ...conversation, max_tokens: 50, max_completion_tokens: 70 } });
  assert.equal(both.completionTokens, 70);
  const routeDefault = estimateChatTokens({ request: conversation, defaultMaxTokens: 256 });
  assert.equal(routeDefault.completionTokens, 256);
  const fallback = estimateChatTokens({ request: conversation });
  assert.equal(fallback.completionTokens, FALLBACK_COMPLETION_CAP);
  const choices = estimateChatTokens({ request: { ...conversation, max_tokens: 100, n: 3 } });
  assert.equal(choices.completionTokens, 300);
});

test('other model families use ⌈characters / 3.5⌉ per text', () => {
  const estimate = estimateChatTokens({ request: { ...conversation, model: 'claude-3-5-sonnet', max_tokens: 1 } });
  const expected =
    3 +
    (3 + approximateTokens('system') + approximateTokens('You are a helpful assistant.')) +
    (3 + approximateTokens('user') + approximateTokens('What is the capital of France?'));
  assert.equal(estimate.counting, 'approximate');
  assert.equal(estimate.promptTokens, expected);
  assert.equal(approximateTokens('What is the capital of France?'), 9); // 30 characters
});

test('very large prompts take the approximate fast path even for OpenAI models', () => {
  const long = 'The quick brown fox jumps over the lazy dog. '.repeat(400); // 18,000 characters
  const fast = estimateChatTokens({ request: { model: 'gpt-4o', messages: [{ role: 'user', content: long }] } });
  assert.equal(fast.counting, 'approximate');
  const exact = estimateChatTokens({
    request: { model: 'gpt-4o', messages: [{ role: 'user', content: long }] },
    exactCharacterLimit: Number.POSITIVE_INFINITY,
  });
  assert.equal(exact.counting, 'o200k_base');
  // The approximation errs high on English prose: the safe side for a reservation.
  assert.ok(fast.promptTokens > exact.promptTokens, `${fast.promptTokens} vs ${exact.promptTokens}`);
});

test('embedding inputs: strings are tokenized, token arrays counted as they are', () => {
  assert.equal(estimateEmbeddingTokens({ request: { model: 'text-embedding-3-small', input: 'hello world' } }), 2);
  assert.equal(estimateEmbeddingTokens({ request: { model: 'text-embedding-3-small', input: ['hello world', 'bob'] } }), 3);
  assert.equal(estimateEmbeddingTokens({ request: { model: 'text-embedding-3-small', input: [1, 2, 3] } }), 3);
  assert.equal(estimateEmbeddingTokens({ request: { model: 'text-embedding-3-small', input: [[1, 2], [3]] } }), 3);
});
