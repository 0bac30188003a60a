/**
 * Measures the cost of estimateChatTokens on ~2k-token prompts (8,000-character slices of the
 * READMEs in node_modules: real, varied English and code). Not a test; run by hand:
 *   node --import tsx test/helpers/limits-tokenizer-bench.ts
 */
import { performance } from 'node:perf_hooks';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
const { estimateChatTokens } = await import('../../src/limits/estimate.ts');
const o200 = await import('gpt-tokenizer/encoding/o200k_base');
const corpus = readdirSync('node_modules').map((d) => `node_modules/${d}/README.md`).filter(existsSync).map((f) => readFileSync(f, 'utf8')).join('\n');
console.log('corpus chars', corpus.length);
// slices of ~2k o200k tokens
const texts: string[] = [];
for (let offset = 0; texts.length < 200 && offset + 8000 < corpus.length; offset += 8000 + 997) texts.push(corpus.slice(offset, offset + 8000));
const counts = texts.map((t) => o200.countTokens(t)); counts.sort((a, b) => a - b);
console.log('prompts', texts.length, 'median tokens', counts[counts.length >> 1], 'chars 8000');
const request = (text: string, model: string) => ({ model, messages: [{ role: 'system' as const, content: 'You are a helpful assistant.' }, { role: 'user' as const, content: text }] });
for (const model of ['gpt-4o', 'gpt-4', 'claude-3-5-sonnet']) {
  const samples: number[] = [];
  for (const text of texts) { const s = performance.now(); estimateChatTokens({ request: request(text, model) }); samples.push(performance.now() - s); }
  const n = samples.length; samples.sort((a, b) => a - b);
  console.log(model, 'n', n, 'median ms', samples[n >> 1]!.toFixed(3), 'p95', samples[Math.floor(n * 0.95)]!.toFixed(3), 'max', samples[n - 1]!.toFixed(3));
}
const approximate = texts.map((text) => Math.ceil(text.length / 3.5)).reduce((a, b) => a + b, 0);
const exact = texts.map((text) => o200.countTokens(text)).reduce((a, b) => a + b, 0);
console.log('chars/3.5 vs o200k_base on the same prompts', ((approximate / exact - 1) * 100).toFixed(1), '%');
for (const size of [16000, 32000]) { const slice = corpus.slice(50000, 50000 + size); const t = performance.now(); const n = o200.countTokens(slice); console.log(size, 'chars exact ms', (performance.now() - t).toFixed(2), 'tokens', n); }
const big = corpus.slice(0, 32000); let s = performance.now(); const bt = o200.countTokens(big); console.log('32k chars exact ms', (performance.now() - s).toFixed(2), 'tokens', bt);
