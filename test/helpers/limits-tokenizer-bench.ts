/**
 * Measures what `src/limits/estimate.ts` states in its header. Not a test; run by hand:
 *   node --import tsx test/helpers/limits-tokenizer-bench.ts
 *
 * 1. The cost of exact BPE per prompt size (median and p95 of gpt-tokenizer's `countTokens` on
 *    distinct slices, after a warm-up that fills its merge cache as a long-running gateway
 *    would), next to the approximation's, to choose `DEFAULT_EXACT_CHARACTER_LIMIT`.
 * 2. The approximation's error per script and kind of text, against o200k_base and cl100k_base:
 *    approximate / exact over a whole corpus, and the lowest and highest ratio over its
 *    1,500-character slices, next to the old ⌈characters / 3.5⌉. The texts are real and
 *    deterministic: READMEs and sources under node_modules (English, code, JSON), generated
 *    data (numbers, CSV, UUIDs, hex, base64), TypeScript's translated diagnostics, zod's locale
 *    messages, Node's ICU names of languages, regions, currencies and dates, and emoji chat.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import * as cl100kBase from 'gpt-tokenizer/encoding/cl100k_base';
import * as o200kBase from 'gpt-tokenizer/encoding/o200k_base';
import { approximateTokens, estimateChatTokens } from '../../src/limits/estimate.ts';

const MODULES = 'node_modules';
const PLAIN_TEXT = { disallowedSpecial: new Set<string>() };
const ENCODINGS = {
  o200k_base: (text: string) => o200kBase.countTokens(text, PLAIN_TEXT),
  cl100k_base: (text: string) => cl100kBase.countTokens(text, PLAIN_TEXT),
} as const;
type Encoding = keyof typeof ENCODINGS;

// ---- corpora ---------------------------------------------------------------------------------

function readmes(): string {
  return readdirSync(MODULES)
    .map((name) => join(MODULES, name, 'README.md'))
    .filter(existsSync)
    .map((file) => readFileSync(file, 'utf8'))
    .join('\n');
}

/** README lines that read as prose: no code, tables or markup. */
function prose(text: string): string {
  let fenced = false;
  const lines: string[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    else if (!fenced && line.length > 60 && /^[A-Z][a-z].*[a-z][.,;:]/.test(line) && !/[|<>`{}[\]]/.test(line)) lines.push(line);
  }
  return lines.join('\n');
}

function sources(): string {
  const roots = ['fastify/lib', 'kysely/dist/esm/query-builder', 'pg-protocol/src', 'ai/src', 'commander/lib', 'undici/lib/dispatcher', 'zod/v4/core'];
  const files: string[] = [];
  const walk = (dir: string, limit: number): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (files.length >= limit) return;
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path, limit);
      else if (/\.(js|ts)$/.test(entry.name) && !entry.name.endsWith('.d.ts') && statSync(path).size > 2_000) files.push(path);
    }
  };
  for (const root of roots) if (existsSync(join(MODULES, root))) walk(join(MODULES, root), files.length + 15);
  return files.map((file) => readFileSync(file, 'utf8')).join('\n');
}

function packageManifests(): unknown[] {
  return readdirSync(MODULES)
    .map((name) => join(MODULES, name, 'package.json'))
    .filter(existsSync)
    .map((file) => JSON.parse(readFileSync(file, 'utf8')) as unknown);
}

/** A deterministic generator, so the data corpora are the same on every run. */
function random(seed: number): () => number {
  let state = seed;
  return () => (state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0) / 2 ** 32;
}

function uuid(next: () => number): string {
  const hex = Array.from({ length: 32 }, () => Math.floor(next() * 16).toString(16)).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function dataCorpora(): Record<string, string> {
  const next = random(1);
  const bytes = Buffer.from(Array.from({ length: 60_000 }, () => Math.floor(next() * 256)));
  const rows = Array.from({ length: 2_000 }, (_, row) => `${row},user${row}@example.com,${(next() * 100).toFixed(2)},2024-0${1 + (row % 9)}-1${row % 10}T12:3${row % 10}:00Z`);
  return {
    'data: CSV': rows.join('\n'),
    'data: numbers': Array.from({ length: 8_000 }, () => Math.floor(next() * 1e6)).join(' '),
    'data: UUIDs': Array.from({ length: 2_000 }, () => uuid(next)).join(','),
    'data: hex': bytes.subarray(0, 40_000).toString('hex'),
    'data: base64': bytes.toString('base64'),
  };
}

function typescriptDiagnostics(language: string): string {
  const file = join(MODULES, 'typescript/lib', language, 'diagnosticMessages.generated.json');
  return Object.values(JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>).join('\n');
}

/** The non-ASCII string literals of a zod locale: short messages in that language. */
function zodMessages(locale: string): string {
  const source = readFileSync(join(MODULES, 'zod/v4/locales', `${locale}.js`), 'utf8');
  return [...source.matchAll(/["`]([^"`\n]*[^\x00-\x7f][^"`\n]*)["`]/g)].map((match) => (match[1] ?? '').replace(/\$\{[^}]*\}/g, 'X')).join('\n');
}

/** Names of languages, regions and currencies, dates and relative times, from Node's ICU data. */
function icuText(locale: string): string {
  const parts: string[] = [];
  const pairs = (from: number, to: number) => {
    const codes: string[] = [];
    for (let first = from; first <= to; first++) for (let second = from; second <= to; second++) codes.push(String.fromCharCode(first, second));
    return codes;
  };
  const codes = { language: pairs(97, 122), region: pairs(65, 90), currency: Intl.supportedValuesOf('currency') };
  for (const type of ['language', 'region', 'currency'] as const) {
    const names = new Intl.DisplayNames([locale], { type, fallback: 'none' });
    for (const code of codes[type]) {
      try {
        const name = names.of(code);
        if (name !== undefined && name !== code) parts.push(name);
      } catch {
        // not a valid code of this type
      }
    }
  }
  const dates = new Intl.DateTimeFormat(locale, { dateStyle: 'full', timeStyle: 'long', timeZone: 'UTC' });
  for (let month = 0; month < 12; month++) parts.push(dates.format(new Date(Date.UTC(2024, month, 3 + month, 10, 30))));
  const relative = new Intl.RelativeTimeFormat(locale, { numeric: 'auto' });
  for (const unit of ['second', 'minute', 'hour', 'day', 'week', 'month', 'year'] as const) {
    for (const value of [-2, -1, 0, 1, 3]) parts.push(relative.format(value, unit));
  }
  return parts.join(', ');
}

const EMOJI = [
  '😀', '😂', '🤣', '😊', '😍', '🥰', '😎', '🤔', '😭', '👍', '👏', '🙏', '💪', '🔥', '✨', '🎉', '❤️', '💯', '✅', '❌', '⚠️', '🚀', '🌍', '⭐',
  '☀️', '🍕', '☕', '🐶', '🦄', '🤖', '💡', '🛠️', '🫠', '👨‍👩‍👧‍👦', '👩‍💻', '🏳️‍🌈', '❤️‍🔥', '👍🏽', '👋🏻', '🇺🇸', '🇯🇵', '1️⃣', '©️',
];
const CHAT_WORDS = 'hey team great job on the launch today we shipped the new feature and users love it thanks everyone see you at the party so happy'.split(' ');

function emojiText(kind: 'chat' | 'dense'): string {
  const next = random(7);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T;
  let text = '';
  while (text.length < 20_000) {
    if (kind === 'chat') {
      const words = Array.from({ length: 3 + Math.floor(next() * 10) }, () => pick(CHAT_WORDS));
      text += `${words.join(' ')} ${pick(EMOJI)}${next() < 0.5 ? pick(EMOJI) : ''}${next() < 0.3 ? '\n' : ' '}`;
    } else {
      text += Array.from({ length: 1 + Math.floor(next() * 6) }, () => pick(EMOJI)).join('') + (next() < 0.2 ? '\n' : ' ');
    }
  }
  return text;
}

function corpora(): Record<string, string> {
  const manifests = packageManifests();
  const english = readmes();
  const found: Record<string, string> = {
    'English prose': prose(english),
    'English READMEs': english,
    'code (JS/TS)': sources(),
    'JSON, indented': manifests.map((manifest) => JSON.stringify(manifest, null, 2)).join('\n'),
    'JSON, compact': manifests.map((manifest) => JSON.stringify(manifest)).join('\n'),
    ...dataCorpora(),
    'emoji chat': emojiText('chat'),
    'emoji only': emojiText('dense'),
  };
  for (const language of ['de', 'fr', 'es', 'it', 'pt-br', 'pl', 'cs', 'tr', 'ru', 'ja', 'ko', 'zh-cn', 'zh-tw']) {
    found[`prose ${language}`] = typescriptDiagnostics(language);
  }
  for (const locale of ['el', 'uk', 'bg', 'hy', 'he', 'ar', 'fa', 'ur', 'hi', 'bn', 'ta', 'gu', 'kn', 'th', 'ka', 'km', 'vi']) {
    found[`messages ${locale}`] = zodMessages(locale);
  }
  const icuLocales = ['fr', 'de', 'pl', 'cs', 'tr', 'vi', 'ro', 'hu', 'el', 'ru', 'uk', 'bg', 'sr', 'hy', 'he', 'ar', 'fa', 'ur', 'hi', 'mr'];
  icuLocales.push('ne', 'bn', 'ta', 'te', 'kn', 'ml', 'gu', 'pa', 'si', 'th', 'lo', 'my', 'km', 'ka', 'am', 'zh', 'zh-Hant', 'ja', 'ko');
  for (const locale of icuLocales) {
    found[`names ${locale}`] = icuText(locale);
  }
  return found;
}

// ---- 1. cost per size ------------------------------------------------------------------------

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

/** Median and p95 milliseconds of `measure` over `runs` distinct `size`-character slices of `corpus`. */
function timeSlices({ corpus, size, runs, measure }: { corpus: string; size: number; runs: number; measure: (text: string) => unknown }) {
  const samples: number[] = [];
  for (let run = 0; run < runs; run++) {
    const offset = (run * 7_919 + size) % Math.max(1, corpus.length - size);
    const text = corpus.slice(offset, offset + size);
    const start = performance.now();
    measure(text);
    samples.push(performance.now() - start);
  }
  samples.sort((a, b) => a - b);
  return { median: quantile(samples, 0.5), p95: quantile(samples, 0.95) };
}

function reportCost(texts: Record<string, string>): void {
  const sizes = [250, 500, 1_000, 2_000, 4_000, 8_000, 16_000];
  const kinds = { English: texts['English READMEs'] ?? '', code: texts['code (JS/TS)'] ?? '', Japanese: texts['prose ja'] ?? '', Russian: texts['prose ru'] ?? '' };
  for (const count of Object.values(ENCODINGS)) for (const corpus of Object.values(kinds)) count(corpus); // warm-up
  console.log('\n1. Cost per call, median / p95 ms (200 distinct slices each)');
  console.log(`${'characters'.padEnd(28)}${sizes.map((size) => String(size).padStart(14)).join('')}`);
  for (const [encoding, count] of Object.entries(ENCODINGS)) {
    for (const [kind, corpus] of Object.entries(kinds)) {
      const cells = sizes.map((size) => {
        const { median, p95 } = timeSlices({ corpus, size, runs: 200, measure: count });
        return `${median.toFixed(3)}/${p95.toFixed(2)}`.padStart(14);
      });
      console.log(`${`${encoding} ${kind}`.padEnd(28)}${cells.join('')}`);
    }
  }
  for (const [kind, corpus] of Object.entries(kinds)) {
    const cells = sizes.map((size) => {
      const { median, p95 } = timeSlices({ corpus, size, runs: 200, measure: (text) => approximateTokens(text, 'o200k_base') });
      return `${median.toFixed(3)}/${p95.toFixed(2)}`.padStart(14);
    });
    console.log(`${`approximation ${kind}`.padEnd(28)}${cells.join('')}`);
  }
  const chat = (content: string) => ({ model: 'gpt-4o', messages: [{ role: 'system' as const, content: 'You are a helpful assistant.' }, { role: 'user' as const, content }] });
  for (const size of [900, 1_100, 100_000]) {
    const { median, p95 } = timeSlices({ corpus: kinds.English, size, runs: 200, measure: (text) => estimateChatTokens({ request: chat(text) }) });
    const { counting } = estimateChatTokens({ request: chat(kinds.English.slice(0, size)) });
    console.log(`estimateChatTokens, gpt-4o, ${size} characters (${counting}): median ${median.toFixed(3)} ms, p95 ${p95.toFixed(3)} ms`);
  }
}

// ---- 2. error per script ---------------------------------------------------------------------

const SLICE = 1_500;
const MAX_SLICES = 40;

function ratios({ slices, exact, estimate }: { slices: readonly string[]; exact: readonly number[]; estimate: (text: string) => number }) {
  const estimates = slices.map(estimate);
  const each = estimates.map((value, index) => value / (exact[index] ?? 1));
  const sum = (values: readonly number[]) => values.reduce((total, value) => total + value, 0);
  return { total: sum(estimates) / sum(exact), min: Math.min(...each), max: Math.max(...each) };
}

function reportError(texts: Record<string, string>): void {
  console.log(`\n2. Approximation / exact: whole corpus [lowest–highest ${SLICE}-character slice]; ⌈chars / 3.5⌉ for comparison`);
  console.log(`${'corpus'.padEnd(18)}${'slices'.padStart(7)}   ${'o200k_base'.padEnd(22)}${'(/3.5)'.padEnd(9)}${'cl100k_base'.padEnd(22)}${'(/3.5)'.padEnd(9)}default vs higher exact`);
  const worst = { total: Number.POSITIVE_INFINITY, min: Number.POSITIVE_INFINITY };
  for (const [name, text] of Object.entries(texts)) {
    const slices: string[] = [];
    for (let offset = 0; offset < text.length && slices.length < MAX_SLICES; offset += SLICE) {
      const slice = text.slice(offset, offset + SLICE);
      if (slice.length >= 300) slices.push(slice);
    }
    if (slices.length === 0) continue;
    const cells: string[] = [];
    const exactBoth = slices.map(() => 0);
    for (const [encoding, count] of Object.entries(ENCODINGS) as [Encoding, (text: string) => number][]) {
      const exact = slices.map(count);
      exact.forEach((value, index) => (exactBoth[index] = Math.max(exactBoth[index] ?? 0, value)));
      const approximation = ratios({ slices, exact, estimate: (slice) => approximateTokens(slice, encoding) });
      const old = ratios({ slices, exact, estimate: (slice) => Math.ceil(slice.length / 3.5) });
      cells.push(`${approximation.total.toFixed(2)} [${approximation.min.toFixed(2)}–${approximation.max.toFixed(2)}]`.padEnd(22), `(${old.total.toFixed(2)})`.padEnd(9));
      if (!name.startsWith('data: base64')) {
        worst.total = Math.min(worst.total, approximation.total);
        worst.min = Math.min(worst.min, approximation.min);
      }
    }
    const fallback = ratios({ slices, exact: exactBoth, estimate: (slice) => approximateTokens(slice) });
    cells.push(`${fallback.total.toFixed(2)} [${fallback.min.toFixed(2)}–${fallback.max.toFixed(2)}]`);
    console.log(`${name.padEnd(18)}${String(slices.length).padStart(7)}   ${cells.join('')}`);
  }
  console.log(`lowest, all but base64: corpus ${worst.total.toFixed(2)}, slice ${worst.min.toFixed(2)}`);
}

const texts = corpora();
console.log(`corpora: ${Object.keys(texts).length}, ${Object.values(texts).reduce((sum, text) => sum + text.length, 0).toLocaleString('en')} characters`);
reportCost(texts);
reportError(texts);
