/**
 * Token estimates. These touch no store, so unlike the other limits tests they run once.
 * Expected counts were read from gpt-tokenizer itself (o200k_base and cl100k_base agree on
 * these strings): "hello world" 2, "You are a helpful assistant." 6, "What is the capital
 * of France?" 7, each role name 1, "bob" 1, "get_weather" 2, '{"city":"Paris"}' 5.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import * as cl100kBase from 'gpt-tokenizer/encoding/cl100k_base';
import * as o200kBase from 'gpt-tokenizer/encoding/o200k_base';
import {
  approximateTokens,
  DEFAULT_EXACT_CHARACTER_LIMIT,
  estimateChatTokens,
  estimateEmbeddingTokens,
  FALLBACK_COMPLETION_CAP,
  tokenCountingFor,
} from '../src/limits/estimate.ts';
import type { ChatCompletionRequest } from '../src/wire/openai.ts';
import { fuzzRuns } from './helpers/fuzz-runs.ts';

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

test('other model families are approximated text by text, with the rates that suit any tokenizer', () => {
  const estimate = estimateChatTokens({ request: { ...conversation, model: 'claude-3-5-sonnet', max_tokens: 1 } });
  const expected =
    3 +
    (3 + approximateTokens('system') + approximateTokens('You are a helpful assistant.')) +
    (3 + approximateTokens('user') + approximateTokens('What is the capital of France?'));
  assert.equal(estimate.counting, 'approximate');
  assert.equal(estimate.promptTokens, expected);
  // Erring high against the exact 7; ⌈30 characters / 3.5⌉ made it 9.
  assert.equal(approximateTokens('What is the capital of France?'), 10);
});

test('a prompt up to the exact limit is counted exactly; one character more is approximated', () => {
  const request = (characters: number): ChatCompletionRequest => ({
    model: 'gpt-4o',
    // "user" counts towards the limit too.
    messages: [{ role: 'user', content: 'a'.repeat(characters - 'user'.length) }],
  });
  assert.equal(DEFAULT_EXACT_CHARACTER_LIMIT, 1_000);
  assert.equal(estimateChatTokens({ request: request(DEFAULT_EXACT_CHARACTER_LIMIT) }).counting, 'o200k_base');
  assert.equal(estimateChatTokens({ request: request(DEFAULT_EXACT_CHARACTER_LIMIT + 1) }).counting, 'approximate');
  assert.equal(estimateChatTokens({ request: request(DEFAULT_EXACT_CHARACTER_LIMIT + 1), model: 'gpt-4' }).counting, 'approximate');
  // Tool definitions count towards the limit as well.
  const tools = [{ type: 'function' as const, function: { name: 'lookup', description: 'x'.repeat(DEFAULT_EXACT_CHARACTER_LIMIT) } }];
  assert.equal(estimateChatTokens({ request: { ...conversation, tools } }).counting, 'approximate');
});

test('a long prompt is approximated with its model family’s rates, erring high', () => {
  const long = 'The quick brown fox jumps over the lazy dog. '.repeat(40); // 1,800 characters
  const request: ChatCompletionRequest = { model: 'gpt-4o', messages: [{ role: 'user', content: long }] };
  const fast = estimateChatTokens({ request });
  assert.equal(fast.counting, 'approximate');
  assert.equal(fast.promptTokens, 3 + 3 + approximateTokens('user', 'o200k_base') + approximateTokens(long, 'o200k_base'));
  const exact = estimateChatTokens({ request, exactCharacterLimit: Number.POSITIVE_INFINITY });
  assert.equal(exact.counting, 'o200k_base');
  assert.ok(fast.promptTokens > exact.promptTokens, `${fast.promptTokens} vs ${exact.promptTokens}`);
  assert.ok(fast.promptTokens < exact.promptTokens * 1.5, `${fast.promptTokens} vs ${exact.promptTokens}`);
});

test('special-token text in a prompt is counted as text, not thrown on', () => {
  // gpt-tokenizer throws on "<|endoftext|>" by default, which failed admission for such a prompt.
  const estimate = estimateChatTokens({ request: { model: 'gpt-4o', messages: [{ role: 'user', content: 'say <|endoftext|> now' }] } });
  assert.equal(estimate.counting, 'o200k_base');
  assert.ok(estimate.promptTokens > 7 + 3, String(estimate.promptTokens));
});

test('embedding inputs: strings are tokenized, token arrays counted as they are', () => {
  assert.equal(estimateEmbeddingTokens({ request: { model: 'text-embedding-3-small', input: 'hello world' } }), 2);
  assert.equal(estimateEmbeddingTokens({ request: { model: 'text-embedding-3-small', input: ['hello world', 'bob'] } }), 3);
  assert.equal(estimateEmbeddingTokens({ request: { model: 'text-embedding-3-small', input: [1, 2, 3] } }), 3);
  assert.equal(estimateEmbeddingTokens({ request: { model: 'text-embedding-3-small', input: [[1, 2], [3]] } }), 3);
});

test('an embeddings batch past the exact limit is approximated, all strings together', () => {
  const item = 'Seed reserves tokens before every call. ';
  const batch = Array.from({ length: 30 }, () => item); // 1,200 characters, each string short
  const estimate = estimateEmbeddingTokens({ request: { model: 'text-embedding-3-small', input: batch } });
  assert.equal(estimate, 30 * approximateTokens(item, 'cl100k_base'));
  const exact = estimateEmbeddingTokens({ request: { model: 'text-embedding-3-small', input: batch }, exactCharacterLimit: Number.POSITIVE_INFINITY });
  assert.equal(exact, 30 * cl100kBase.countTokens(item));
  assert.ok(estimate >= exact, `${estimate} vs ${exact}`);
});

// ---- the approximation against real tokenizers -------------------------------------------------

/**
 * The bounds the approximation promises (see the header of `estimate.ts`, measured on much more
 * text by `test/helpers/limits-tokenizer-bench.ts`): on real text it is at most 10 % below the
 * exact count, and at most 2.5× above it.
 */
const LOWEST_RATIO = 0.9;
const HIGHEST_RATIO = 2.5;

const SAMPLES: Readonly<Record<string, string>> = {
  english:
    'Admission reserves the prompt tokens and the completion cap before every call, and settles with the real usage when the response ends. ' +
    'An estimate that is too low lets a tenant overshoot its tokens-per-minute limit until the call settles; one that is too high refuses calls that would have fit. ' +
    'Both errors are bounded, but only the first breaks a promise we made to the provider, so the estimate errs high.\n\n' +
    'The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs!',
  code:
    "export function approximateTokens(text: string, rates: TokenCounting = 'approximate'): number {\n" +
    '  const blockCost = BLOCK_COST[rates];\n' +
    '  let tokens = 0;\n' +
    '  for (let index = 0; index < text.length; index++) {\n' +
    '    const code = text.charCodeAt(index);\n' +
    '    if (code < 128) tokens += ASCII_COST[code] ?? 0;\n' +
    '    else tokens += blockCost[code >> 4] ?? 2.5;\n' +
    '  }\n' +
    '  return Math.ceil(tokens);\n' +
    '}\n',
  json: JSON.stringify([
    {
      type: 'function',
      function: {
        name: 'get_weather',
        description: 'Current weather for a city',
        parameters: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } }, required: ['city'] },
      },
    },
    { id: '3f1c9a52-7d4e-4b1a-9c2e-5a8f0d6b7e31', created: 1_717_171_717, amounts: [12.5, 3.75, 1024, 65_536], sha: '9fceb02d0ae598e95dc970b74767f19372d61af8' },
  ]),
  chinese:
    '人人生而自由，在尊严和权利上一律平等。他们赋有理性和良心，并应以兄弟关系的精神相对待。' +
    '今天北京的天气很好，我们决定去公园散步，然后在附近的餐馆吃午饭。' +
    '这个网关在每次调用之前预留令牌，调用结束后再按实际用量结算。',
  japanese:
    'すべての人間は、生まれながらにして自由であり、かつ、尊厳と権利とについて平等である。' +
    '人間は、理性と良心とを授けられており、互いに同胞の精神をもって行動しなければならない。' +
    '東京は日本の首都で、世界で最も人口の多い都市圏の一つです。',
  korean:
    '모든 인간은 태어날 때부터 자유로우며 그 존엄과 권리에 있어 동등하다. ' +
    '인간은 천부적으로 이성과 양심을 부여받았으며 서로 형제애의 정신으로 행동하여야 한다. ' +
    '서울은 대한민국의 수도이며 가장 큰 도시입니다.',
  russian:
    'Все люди рождаются свободными и равными в своем достоинстве и правах. ' +
    'Они наделены разумом и совестью и должны поступать в отношении друг друга в духе братства. ' +
    'Каждый человек должен обладать всеми правами и всеми свободами, провозглашенными настоящей Декларацией.',
  emoji:
    'Launch day!! 🚀🚀 The team shipped it 🎉👏 and users love it ❤️😍 ' +
    'Thanks everyone 🙏🏽 see you at the party 🍕🍺🎂 tonight 🌙✨ ' +
    '👨‍👩‍👧‍👦 family photo 📸 from 🇯🇵🇩🇪🇧🇷 trips 🌍 — best year ever 💯🔥😂🤣',
  greek:
    'Όλοι οι άνθρωποι γεννιούνται ελεύθεροι και ίσοι στην αξιοπρέπεια και τα δικαιώματα. ' +
    'Είναι προικισμένοι με λογική και συνείδηση, και οφείλουν να συμπεριφέρονται μεταξύ τους με πνεύμα αδελφοσύνης.',
  arabic: 'يولد جميع الناس أحرارًا متساوين في الكرامة والحقوق. ' + 'وقد وهبوا عقلاً وضميرًا وعليهم أن يعامل بعضهم بعضًا بروح الإخاء.',
  hindi:
    'सभी मनुष्यों को गौरव और अधिकारों के मामले में जन्मजात स्वतन्त्रता और समानता प्राप्त है। ' +
    'उन्हें बुद्धि और अन्तरात्मा की देन प्राप्त है और परस्पर उन्हें भाईचारे के भाव से बर्ताव करना चाहिए।',
  thai: 'มนุษย์ทั้งหลายเกิดมามีอิสระและเสมอภาคกันในเกียรติศักดิ์และสิทธิ ' + 'ต่างมีเหตุผลและมโนธรรม และควรปฏิบัติต่อกันด้วยเจตนารมณ์แห่งภราดรภาพ',
  german:
    'Alle Menschen sind frei und gleich an Würde und Rechten geboren. Sie sind mit Vernunft und Gewissen begabt ' +
    'und sollen einander im Geist der Brüderlichkeit begegnen. Die Schnittstellenbeschreibung enthält Größenangaben.',
  french:
    'Tous les êtres humains naissent libres et égaux en dignité et en droits. Ils sont doués de raison et de conscience ' +
    "et doivent agir les uns envers les autres dans un esprit de fraternité. L'été dernier, nous sommes allés à Genève.",
};

const PLAIN_TEXT = { disallowedSpecial: new Set<string>() };
const EXACT = {
  o200k_base: (text: string) => o200kBase.countTokens(text, PLAIN_TEXT),
  cl100k_base: (text: string) => cl100kBase.countTokens(text, PLAIN_TEXT),
} as const;

/** Approximate / exact for each encoding's rates, and for the default rates against the higher exact count. */
function ratios(text: string): Record<'o200k_base' | 'cl100k_base' | 'default', { estimate: number; exact: number }> {
  const o200k = EXACT.o200k_base(text);
  const cl100k = EXACT.cl100k_base(text);
  return {
    o200k_base: { estimate: approximateTokens(text, 'o200k_base'), exact: o200k },
    cl100k_base: { estimate: approximateTokens(text, 'cl100k_base'), exact: cl100k },
    default: { estimate: approximateTokens(text), exact: Math.max(o200k, cl100k) },
  };
}

for (const [script, text] of Object.entries(SAMPLES)) {
  test(`${script}: the approximation is at most ${Math.round((1 - LOWEST_RATIO) * 100)} % low and ${HIGHEST_RATIO}× high`, () => {
    for (const [rates, { estimate, exact }] of Object.entries(ratios(text))) {
      const ratio = estimate / exact;
      assert.ok(ratio >= LOWEST_RATIO, `${script}, ${rates} rates: ${estimate} for ${exact} exact tokens (${ratio.toFixed(2)})`);
      assert.ok(ratio <= HIGHEST_RATIO, `${script}, ${rates} rates: ${estimate} for ${exact} exact tokens (${ratio.toFixed(2)})`);
    }
  });
}

test('random text of random scripts stays within the bounds (property)', () => {
  // Real words in new orders: slices of the samples joined by separators, numbers and emoji.
  const texts = Object.values(SAMPLES);
  const fragment = fc
    .constantFrom(...texts)
    .chain((text) => fc.tuple(fc.nat({ max: text.length - 1 }), fc.integer({ min: 1, max: 80 })).map(([start, length]) => text.slice(start, start + length)));
  const number = fc.oneof(fc.nat({ max: 1e9 }).map(String), fc.double({ min: 0, max: 1e4, noNaN: true }).map((value) => value.toFixed(2)));
  const emoji = fc.constantFrom('😀', '🚀', '❤️', '👍🏽', '🇺🇸', '👨‍👩‍👧‍👦', '🫠', '✨');
  const separator = fc.constantFrom('', ' ', '\n', '\n\n', ', ', '. ', ' - ', '"', '(', ') ');
  const piece = fc.oneof({ weight: 6, arbitrary: fragment }, { weight: 1, arbitrary: number }, { weight: 1, arbitrary: emoji });
  const text = fc.array(fc.tuple(piece, separator), { minLength: 1, maxLength: 30 }).map((pieces) => pieces.map(([part, gap]) => part + gap).join(''));
  fc.assert(
    fc.property(text, (sample) => {
      for (const [rates, { estimate, exact }] of Object.entries(ratios(sample))) {
        // A few tokens of slack for tiny texts: a slice that starts mid-word, without the word's
        // leading space, can cost BPE two or three tokens more ("liquor jugs) ": 7 in o200k_base).
        assert.ok(estimate >= LOWEST_RATIO * exact - 3, `${rates} rates: ${estimate} for ${exact} exact tokens in ${JSON.stringify(sample)}`);
        assert.ok(estimate <= HIGHEST_RATIO * exact + 3, `${rates} rates: ${estimate} for ${exact} exact tokens in ${JSON.stringify(sample)}`);
      }
    }),
    fuzzRuns(500),
  );
});

test('arbitrary strings, not text, are at worst 2.5× low (property)', () => {
  // Random code points defeat BPE's merges (it falls back towards one token per UTF-8 byte),
  // which no per-character rate fit on real text can follow; the bound only rules out a gross miss.
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (sample) => {
      for (const [rates, { estimate, exact }] of Object.entries(ratios(sample))) {
        assert.ok(estimate >= exact / 2.5 - 1, `${rates} rates: ${estimate} for ${exact} exact tokens in ${JSON.stringify(sample)}`);
      }
    }),
    fuzzRuns(500),
  );
});
