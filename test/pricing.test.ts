import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { defaultPriceTable, deploymentPricingSchema, parsePriceTable, priceCall } from '../src/ledger/pricing.ts';
import { fuzzRuns } from './helpers/fuzz-runs.ts';

const close = (actual: number, expected: number) =>
  assert.ok(Math.abs(actual - expected) < 1e-12, `${actual} ≠ ${expected}`);

test('the shipped table prices every model it promises, with a date and sources', () => {
  const table = defaultPriceTable();
  for (const model of [
    'gpt-4o', 'gpt-4o-mini', 'gpt-4.1', 'gpt-4.1-mini', 'gpt-4.1-nano', 'o3', 'o4-mini',
    'text-embedding-3-small', 'text-embedding-3-large',
    'claude-sonnet-4', 'claude-3-5-sonnet', 'claude-3-5-haiku', 'claude-opus-4',
  ]) {
    assert.ok(table.models.has(model), model);
  }
  assert.match(table.recorded, /^\d{4}-\d{2}/);
  assert.ok(table.sources.length > 0);
});

test('cached tokens are billed at the cached rate and not again at the input rate', () => {
  // gpt-4o: $2.50 input, $1.25 cached, $10 output per 1M tokens.
  const result = priceCall({ model: 'gpt-4o', promptTokens: 1200, completionTokens: 300, cachedTokens: 1024 });
  assert.equal(result.known, true);
  close(result.costUsd, (176 * 2.5 + 1024 * 1.25 + 300 * 10) / 1e6);
  // More cached than prompt tokens (a confused upstream) never bills negative input.
  close(priceCall({ model: 'gpt-4o', promptTokens: 10, completionTokens: 0, cachedTokens: 50 }).costUsd, (10 * 1.25) / 1e6);
});

test('dated snapshots and -latest match their model; other variants do not', () => {
  close(priceCall({ model: 'claude-3-5-sonnet-20241022', promptTokens: 1e6, completionTokens: 0, cachedTokens: 0 }).costUsd, 3);
  close(priceCall({ model: 'gpt-4o-2024-08-06', promptTokens: 0, completionTokens: 1e6, cachedTokens: 0 }).costUsd, 10);
  close(priceCall({ model: 'claude-3-5-haiku-latest', promptTokens: 1e6, completionTokens: 0, cachedTokens: 0 }).costUsd, 0.8);
  close(priceCall({ model: 'claude-sonnet-4-0', promptTokens: 0, completionTokens: 1e6, cachedTokens: 0 }).costUsd, 15);
  // gpt-4o-mini must not be priced as gpt-4o, nor an audio model as its text sibling.
  close(priceCall({ model: 'gpt-4o-mini', promptTokens: 1e6, completionTokens: 0, cachedTokens: 0 }).costUsd, 0.15);
  assert.deepEqual(priceCall({ model: 'gpt-4o-audio-preview', promptTokens: 5, completionTokens: 5, cachedTokens: 0 }), { costUsd: 0, known: false });
});

test('unknown models cost 0 and are flagged, never guessed', () => {
  assert.deepEqual(priceCall({ model: 'my-llama-70b', promptTokens: 1000, completionTokens: 1000, cachedTokens: 0 }), { costUsd: 0, known: false });
  assert.deepEqual(priceCall({ model: null, promptTokens: 1000, completionTokens: 1000, cachedTokens: 0 }), { costUsd: 0, known: false });
});

test('a deployment override wins over the table; cached input defaults to the input price', () => {
  const override = deploymentPricingSchema.parse({ inputPerMTok: 1, outputPerMTok: 2 });
  assert.deepEqual(priceCall({ model: 'my-llama-70b', promptTokens: 1e6, completionTokens: 1e6, cachedTokens: 5e5, override }), { costUsd: 3, known: true });
  const azure = { inputPerMTok: 2, outputPerMTok: 8, cachedInputPerMTok: 0.5 };
  close(priceCall({ model: 'gpt-4o', promptTokens: 1e6, completionTokens: 0, cachedTokens: 1e6, override: azure }).costUsd, 0.5);
  assert.equal(deploymentPricingSchema.safeParse({ inputPerMTok: -1, outputPerMTok: 1 }).success, false);
  assert.equal(deploymentPricingSchema.safeParse({ inputPerMTok: 1, outputPerMTok: 1, currency: 'EUR' }).success, false);
});

test('cost is additive and monotone in tokens (property)', () => {
  const tokens = fc.integer({ min: 0, max: 5_000_000 });
  fc.assert(
    fc.property(tokens, tokens, tokens, tokens, (prompt, completion, cachedShare, extra) => {
      const cached = Math.min(cachedShare, prompt);
      const base = priceCall({ model: 'gpt-4.1', promptTokens: prompt, completionTokens: completion, cachedTokens: cached }).costUsd;
      const more = priceCall({ model: 'gpt-4.1', promptTokens: prompt + extra, completionTokens: completion, cachedTokens: cached }).costUsd;
      assert.ok(base >= 0);
      assert.ok(Math.abs(more - base - (extra * 2) / 1e6) < 1e-9, 'extra uncached prompt tokens cost the input price');
      // Caching can only make a call cheaper.
      const uncached = priceCall({ model: 'gpt-4.1', promptTokens: prompt, completionTokens: completion, cachedTokens: 0 }).costUsd;
      assert.ok(base <= uncached + 1e-12);
    }),
    fuzzRuns(100),
  );
});

test('a malformed price file is rejected', () => {
  assert.throws(() => parsePriceTable('recorded: 2025-06\nsources: []\nmodels:\n  x: { input: -1, output: 1 }\n'));
  assert.throws(() => parsePriceTable('recorded: 2025-06\nsources: []\nmodels:\n  x: { input: 1 }\n'));
  const table = parsePriceTable('recorded: 2025-06\nsources: [here]\nmodels:\n  x: { input: 1, output: 2, aliases: [y] }\n');
  assert.deepEqual(table.models.get('y'), { inputPerMTok: 1, outputPerMTok: 2, cachedInputPerMTok: 1 });
});
