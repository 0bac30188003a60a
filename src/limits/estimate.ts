/**
 * Token estimates for admission (principle 2: reserve prompt tokens + the completion cap).
 * Settling replaces every estimate with the real usage, so an estimate has to be cheap and
 * rarely low; a high one only holds quota until the call settles.
 *
 * The gateway approximates every prompt unless `limits.promptEstimate: exact` is set. Exact
 * counts need the encoding's vocabulary in the JavaScript heap (21 MB for o200k_base), which
 * every major garbage collection walks: under 500 req/s of streaming, a gateway with it loaded
 * ran a mark-compact every 3–30 s, each an 8–26 ms pause, and one without it one in 150 s
 * (docs/benchmark-log.md, 2026-12-04 (21:40–)). Those pauses were the longest stalls of Seed's p99,
 * while the exact count refines only the prompt's part of a reservation (the completion cap is
 * most of it) that settling replaces with the real usage anyway.
 *
 * Exact counts, for short prompts. OpenAI model families are counted with their real BPE
 * encoding (gpt-tokenizer's per-encoding entry points, loaded only when used) plus OpenAI's
 * documented chat framing: 3 tokens per message, 1 more when a message has a `name`, 3 to prime
 * the reply. BPE runs synchronously on the event loop, and its cost
 * grows with the text while the gateway's whole per-call overhead is ~0.15 ms, so only prompts
 * of at most `DEFAULT_EXACT_CHARACTER_LIMIT` (1,000) characters, all texts together, are
 * counted exactly. Median ms per call, over English, code, Japanese and Russian text, measured
 * on 2 shared cores by `node --import tsx test/helpers/limits-tokenizer-bench.ts` (p95 is
 * about twice the median):
 *
 *   characters        250        500        1,000      2,000      4,000      8,000      16,000
 *   o200k_base        0.03–0.05  0.05–0.07  0.08–0.13  0.16–0.27  0.30–0.47  0.58–0.87  1.2–1.8
 *   cl100k_base       0.02–0.05  0.04–0.07  0.08–0.11  0.15–0.22  0.26–0.40  0.53–0.84  1.0–1.5
 *   approximateTokens 0.001      0.001      0.002–0.004                                  0.03–0.07
 *
 * The approximation serves everything else: longer prompts, embeddings inputs past the same
 * limit, and every model that is no OpenAI family (Anthropic, open models). It is one pass over
 * the UTF-16 code units with no allocation:
 *
 * - ASCII costs by character class and the class before it (`ASCII_COSTS`), a cheap imitation
 *   of the BPE pre-tokenizer, which splits text into words, runs of up to three digits,
 *   punctuation and whitespace, and rarely makes a token across them. The old flat ⌈characters
 *   / 3.5⌉ over-counted English prose by 41 % but under-counted indented JSON by 15 %, CSV by
 *   40 %, UUIDs and hex by 50–55 %.
 * - Any other code unit costs a rate by Unicode block (`NON_ASCII_RATES`), measured per
 *   encoding on real text: TypeScript's translated diagnostics (13 languages), zod's locale
 *   messages and Node's ICU names of languages, regions, currencies and dates (39 locales).
 *   E.g. CJK ideographs 1.0 (o200k_base) / 1.6 (cl100k_base) per character, Cyrillic 0.4 /
 *   0.65, Indic scripts 0.65 / 2.0, a surrogate half (emoji, rare ideographs) 1.0 / 1.5.
 *   ⌈characters / 3.5⌉ under-counted CJK and emoji 2–5×, cl100k_base's Indic, Georgian or
 *   Armenian text 3–6×.
 * - All of it times `MARGIN` (1.1). On 1,500-character slices of the texts above the result is
 *   at most 9 % below the exact count on prose, code, data and emoji in every language measured,
 *   and at most 23 % below on lists of proper names (the worst text we found); it is 1.1–1.5×
 *   the exact count on English, code and JSON, at most 1.8× elsewhere. Random base64 is the
 *   known exception (0.65–0.7×): no character class tells its letters from words without a
 *   vocabulary.
 *
 * A model of no OpenAI family is approximated with the higher of the two encodings' costs (in
 * practice cl100k_base's, the older and less efficient vocabulary). Parts without text are fixed
 * guesses: an image 765 tokens (85 at `detail: low`), an audio or file part 1,000.
 */
import { createRequire } from 'node:module';
import type { ChatCompletionRequest, ChatMessage, EmbeddingRequest } from '../wire/openai.ts';

export type TokenCounting = 'o200k_base' | 'cl100k_base' | 'approximate';
export type Encoding = Exclude<TokenCounting, 'approximate'>;

const TOKENS_PER_MESSAGE = 3;
const TOKENS_PER_NAME = 1;
const REPLY_PRIMING_TOKENS = 3;
const IMAGE_TOKENS = 765;
const LOW_DETAIL_IMAGE_TOKENS = 85;
const OTHER_PART_TOKENS = 1_000;
/** Used when neither the request nor the route caps the completion. */
export const FALLBACK_COMPLETION_CAP = 4_096;
/** Prompts (all their texts together) up to this many characters are counted with exact BPE. */
export const DEFAULT_EXACT_CHARACTER_LIMIT = 1_000;

/** How the gateway's admission may estimate prompts (`limits.promptEstimate` in seed.yaml). */
export const PROMPT_ESTIMATES = ['approximate', 'exact'] as const;
export type PromptEstimate = (typeof PROMPT_ESTIMATES)[number];

/** The `exactCharacterLimit` that a `PromptEstimate` setting stands for. */
export function exactCharacterLimitOf(promptEstimate: PromptEstimate): number {
  return promptEstimate === 'exact' ? DEFAULT_EXACT_CHARACTER_LIMIT : 0;
}

/**
 * Special-token text such as `<|endoftext|>` in a prompt is counted as the plain text it is
 * (as OpenAI counts user content) instead of throwing, gpt-tokenizer's default.
 */
const PLAIN_TEXT = { disallowedSpecial: new Set<string>() };
/**
 * An encoding's vocabulary is loaded when first needed, or ahead by `loadTokenCounting` (Seed
 * loads those of its deployments' models at start-up). Each is large and lives in the
 * JavaScript heap for good: o200k_base 21 MB and cl100k_base 11 MB, which every major GC marks
 * (a full GC took 22 ms with both loaded, 2.6 ms without), and each takes ~0.4 s to load. They
 * are loaded synchronously (gpt-tokenizer's CommonJS build), as the estimate is synchronous.
 */
const ENCODING_MODULES: Record<Encoding, string> = {
  o200k_base: 'gpt-tokenizer/cjs/encoding/o200k_base',
  cl100k_base: 'gpt-tokenizer/cjs/encoding/cl100k_base',
};
const requireModule = createRequire(import.meta.url);
const encoders: Partial<Record<Encoding, (text: string) => number>> = {};

function encoder(encoding: Encoding): (text: string) => number {
  let count = encoders[encoding];
  if (count === undefined) {
    const { countTokens } = requireModule(ENCODING_MODULES[encoding]) as {
      countTokens: (text: string, options: typeof PLAIN_TEXT) => number;
    };
    count = (text) => countTokens(text, PLAIN_TEXT);
    encoders[encoding] = count;
  }
  return count;
}

/**
 * Loads now the encodings that `models` are counted with (none for models without one), so no
 * call waits for a vocabulary to load; returns them.
 *
 * @example
 * loadTokenCounting(['gpt-4o-mini', 'claude-sonnet-4']); // ['o200k_base']
 */
export function loadTokenCounting(models: Iterable<string>): Encoding[] {
  const needed = new Set<Encoding>();
  for (const model of models) {
    const counting = tokenCountingFor(model);
    if (counting !== 'approximate') needed.add(counting);
  }
  for (const encoding of needed) encoder(encoding);
  return [...needed];
}

/** The encodings loaded so far in this process. */
export function loadedTokenCounting(): Encoding[] {
  return (Object.keys(encoders) as Encoding[]).sort();
}

/** On top of every cost below, which are fit to the measured texts: keeps slices of real text from coming out more than ~10 % low. */
const MARGIN = 1.1;

/** Tokens per ASCII character, by its class and the class of the character before it. */
const ASCII_COSTS = {
  /** A letter that starts a word: an English word is mostly one token whatever its length… */
  wordStart: 0.6,
  /** An upper-case letter after a lower-case one (`camelCase`) starts a new piece, like a word. */
  caseChange: 0.6,
  /** An upper-case letter after another (acronyms, constants). */
  capital: 0.1,
  /** Numbers are split into runs of at most three digits. */
  numberStart: 1,
  digit: 0.35,
  punctuationStart: 0.7,
  punctuation: 0.2,
  space: 0.15,
  spaceRun: 0.1,
  lineBreak: 0.9,
  lineBreakRun: 0.1,
} as const;
/** …but long and non-English words are not: each further letter of a word, per encoding. */
const LETTER_COST = { o200k: 0.15, cl100k: 0.2 } as const;

/**
 * Tokens per UTF-16 code unit outside ASCII: [first, last, o200k_base, cl100k_base], measured
 * on real text where we had it (see the header). Blocks not listed cost `RARE_CHARACTER_RATE`.
 */
const NON_ASCII_RATES: readonly (readonly [first: number, last: number, o200k: number, cl100k: number])[] = [
  [0x0080, 0x02ff, 0.9, 1.6], //    Latin-1, Latin Extended-A and -B, IPA
  [0x0300, 0x036f, 1.5, 1.5], //    combining marks (decomposed text; not measured)
  [0x0370, 0x03ff, 0.5, 1.05], //   Greek
  [0x0400, 0x052f, 0.4, 0.65], //   Cyrillic
  [0x0530, 0x058f, 0.45, 2.1], //   Armenian
  [0x0590, 0x05ff, 0.5, 1.25], //   Hebrew
  [0x0600, 0x08ff, 0.5, 1.25], //   Arabic, Syriac, Thaana, N'Ko
  [0x0900, 0x0dff, 0.65, 2.0], //   Devanagari … Sinhala
  [0x0e00, 0x0e7f, 0.5, 0.95], //   Thai
  [0x0e80, 0x0fff, 1.6, 1.85], //   Lao, Tibetan
  [0x1000, 0x109f, 0.6, 1.85], //   Myanmar
  [0x10a0, 0x10ff, 0.45, 2.1], //   Georgian
  [0x1100, 0x11ff, 2.0, 2.0], //    Hangul Jamo (decomposed Korean; not measured)
  [0x1200, 0x139f, 1.9, 2.55], //   Ethiopic
  [0x1780, 0x17ff, 0.65, 1.7], //   Khmer
  [0x1e00, 0x1fff, 1.0, 1.5], //    Latin Extended Additional (Vietnamese), Greek Extended
  [0x2000, 0x206f, 1.0, 1.5], //    punctuation: quotes, dashes, zero-width joiner
  [0x2070, 0x2bff, 1.5, 2.0], //    symbols, arrows, math, box drawing, dingbats
  [0x2e80, 0x303f, 1.0, 1.0], //    CJK radicals, CJK symbols and punctuation
  [0x3040, 0x30ff, 0.7, 1.05], //   Hiragana, Katakana
  [0x4e00, 0x9fff, 1.0, 1.6], //    CJK unified ideographs
  [0xac00, 0xd7ff, 0.85, 1.3], //   Hangul syllables
  [0xd800, 0xdfff, 1.0, 1.5], //    surrogate halves: emoji (2–3 tokens each), rare ideographs
  [0xfe00, 0xfe0f, 1.0, 1.5], //    variation selectors (emoji presentation)
  [0xff00, 0xffef, 1.0, 1.0], //    fullwidth and halfwidth forms
];
/** Scripts without measurements: near byte-level BPE (3 UTF-8 bytes per code unit). */
const RARE_CHARACTER_RATE = 2.5;

// Character classes; `NON_ASCII` and `START` only ever precede a character.
const LOWER = 0;
const UPPER = 1;
const DIGIT = 2;
const PUNCTUATION = 3;
const SPACE = 4;
const LINE_BREAK = 5;
const NON_ASCII = 6;
const START = 7;
const CLASSES = 8;

const ASCII_CLASS = buildAsciiClasses();

/** One encoding's costs, margin included. */
interface CostTable {
  /** `ascii[class * CLASSES + previous class]` */
  readonly ascii: Float64Array;
  /** A non-ASCII code unit's cost by its 16-unit block: `blocks[code >> 4]`. */
  readonly blocks: Float64Array;
}
const COSTS: Record<TokenCounting, CostTable> = {
  o200k_base: buildCosts((rates) => rates.o200k),
  cl100k_base: buildCosts((rates) => rates.cl100k),
  // Any other tokenizer: the higher of the two, block by block.
  approximate: buildCosts((rates) => Math.max(rates.o200k, rates.cl100k)),
};

function buildAsciiClasses(): Uint8Array {
  const classes = new Uint8Array(128);
  for (let code = 0; code < 128; code++) {
    if (code >= 0x61 && code <= 0x7a) classes[code] = LOWER;
    else if (code >= 0x41 && code <= 0x5a) classes[code] = UPPER;
    else if (code >= 0x30 && code <= 0x39) classes[code] = DIGIT;
    else if (code === 0x20 || code === 0x09) classes[code] = SPACE;
    else if (code === 0x0a || code === 0x0d) classes[code] = LINE_BREAK;
    else classes[code] = PUNCTUATION;
  }
  return classes;
}

function buildCosts(pick: (rates: { o200k: number; cl100k: number }) => number): CostTable {
  const letter = pick(LETTER_COST);
  const ascii = new Float64Array(CLASSES * CLASSES);
  for (let previous = 0; previous < CLASSES; previous++) {
    // A non-ASCII character is most often a letter: accented Latin inside a word, or CJK.
    const inWord = previous === LOWER || previous === UPPER || previous === NON_ASCII;
    const cost = (kind: number): number => {
      switch (kind) {
        case LOWER:
          return inWord ? letter : ASCII_COSTS.wordStart;
        case UPPER:
          if (previous === LOWER) return ASCII_COSTS.caseChange;
          if (previous === UPPER) return ASCII_COSTS.capital;
          return inWord ? letter : ASCII_COSTS.wordStart;
        case DIGIT:
          return previous === DIGIT ? ASCII_COSTS.digit : ASCII_COSTS.numberStart;
        case PUNCTUATION:
          return previous === PUNCTUATION ? ASCII_COSTS.punctuation : ASCII_COSTS.punctuationStart;
        case SPACE:
          return previous === SPACE ? ASCII_COSTS.spaceRun : ASCII_COSTS.space;
        default:
          return previous === LINE_BREAK ? ASCII_COSTS.lineBreakRun : ASCII_COSTS.lineBreak;
      }
    };
    for (let kind = LOWER; kind <= LINE_BREAK; kind++) ascii[kind * CLASSES + previous] = cost(kind) * MARGIN;
  }
  const blocks = new Float64Array(0x10000 >> 4).fill(RARE_CHARACTER_RATE * MARGIN);
  for (const [first, last, o200k, cl100k] of NON_ASCII_RATES) blocks.fill(pick({ o200k, cl100k }) * MARGIN, first >> 4, (last >> 4) + 1);
  return { ascii, blocks };
}

/** Which encoding a model name uses; `approximate` when it is not an OpenAI family we know. */
export function tokenCountingFor(model: string): TokenCounting {
  const name = model.toLowerCase().replace(/^openai\//, '');
  if (/^(gpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|chatgpt-4o|o1|o3|o4|gpt-oss|text-embedding-3)/.test(name)) {
    return name.startsWith('text-embedding-3') ? 'cl100k_base' : 'o200k_base';
  }
  if (/^(gpt-4|gpt-3\.5|text-embedding-ada)/.test(name)) return 'cl100k_base';
  return 'approximate';
}

/**
 * Approximate tokens of a text in one pass without allocation, erring high (see the header).
 * `rates` picks the measured rates of one encoding; the default suits any tokenizer.
 *
 * @example
 * approximateTokens('What is the capital of France?'); // 10 (exact: 7)
 * approximateTokens('东京是日本的首都。', 'o200k_base'); // 10 (exact: 7)
 */
export function approximateTokens(text: string, rates: TokenCounting = 'approximate'): number {
  const { ascii, blocks } = COSTS[rates];
  let tokens = 0;
  let previous = START;
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (code < 128) {
      const kind = ASCII_CLASS[code] as number;
      tokens += ascii[kind * CLASSES + previous] as number;
      previous = kind;
    } else {
      tokens += blocks[code >> 4] as number;
      previous = NON_ASCII;
    }
  }
  return Math.ceil(tokens);
}

/** The exact counter when `characters` are within the limit and the model has an encoding, else the approximation. */
function counterFor({ model, characters, exactCharacterLimit }: { model: string; characters: number; exactCharacterLimit: number }): {
  counting: TokenCounting;
  count: (text: string) => number;
} {
  const encoding = tokenCountingFor(model);
  if (encoding !== 'approximate' && exactCharacterLimit > 0 && characters <= exactCharacterLimit) return { counting: encoding, count: encoder(encoding) };
  return { counting: 'approximate', count: (text) => approximateTokens(text, encoding) };
}

export interface ChatEstimate {
  readonly promptTokens: number;
  /** The completion cap, times `n` choices. */
  readonly completionTokens: number;
  readonly totalTokens: number;
  /** The encoding that counted the prompt exactly, or `approximate`. */
  readonly counting: TokenCounting;
}

/**
 * Estimated tokens of a chat call: prompt tokens plus the completion cap.
 *
 * @example
 * const estimate = estimateChatTokens({ request, model: deployment.model, defaultMaxTokens: route.defaultMaxTokens });
 * await limiter.admit({ ..., tokens: estimate.totalTokens, usd: price(estimate) });
 */
export function estimateChatTokens({
  request,
  model = request.model,
  defaultMaxTokens,
  exactCharacterLimit = DEFAULT_EXACT_CHARACTER_LIMIT,
}: {
  request: ChatCompletionRequest;
  /** The upstream model, when known; decides the encoding. Defaults to the requested model. */
  model?: string;
  defaultMaxTokens?: number;
  /** Prompts with more characters than this are approximated even for OpenAI models; 0 approximates every prompt. */
  exactCharacterLimit?: number;
}): ChatEstimate {
  const texts: string[] = [];
  let fixedTokens = REPLY_PRIMING_TOKENS;
  for (const message of request.messages) {
    fixedTokens += TOKENS_PER_MESSAGE + collectMessage({ message, texts });
  }
  if (request.tools !== undefined && request.tools.length > 0) texts.push(JSON.stringify(request.tools));
  const characters = texts.reduce((sum, text) => sum + text.length, 0);
  const { counting, count } = counterFor({ model, characters, exactCharacterLimit });
  const promptTokens = fixedTokens + texts.reduce((sum, text) => sum + (text.length === 0 ? 0 : count(text)), 0);
  const cap = request.max_completion_tokens ?? request.max_tokens ?? defaultMaxTokens ?? FALLBACK_COMPLETION_CAP;
  const completionTokens = cap * (request.n ?? 1);
  return { promptTokens, completionTokens, totalTokens: promptTokens + completionTokens, counting };
}

/** Pushes a message's texts; returns the tokens it costs beyond them (names, images, …). */
function collectMessage({ message, texts }: { message: ChatMessage; texts: string[] }): number {
  let extra = 0;
  texts.push(message.role);
  if ('name' in message && typeof message.name === 'string') {
    texts.push(message.name);
    extra += TOKENS_PER_NAME;
  }
  const content = message.content;
  if (typeof content === 'string') texts.push(content);
  else if (Array.isArray(content)) {
    for (const part of content) {
      if (part.type === 'text') texts.push(part.text);
      else if (part.type === 'refusal') texts.push(part.refusal);
      else if (part.type === 'image_url') extra += part.image_url.detail === 'low' ? LOW_DETAIL_IMAGE_TOKENS : IMAGE_TOKENS;
      else extra += OTHER_PART_TOKENS;
    }
  }
  if (message.role === 'assistant' && message.tool_calls !== undefined) {
    for (const call of message.tool_calls) texts.push(call.function.name, call.function.arguments);
  }
  return extra;
}

/**
 * Tokens of an embeddings input (no completion). Strings are counted exactly while all of them
 * together stay within `exactCharacterLimit` characters, else approximated; token-array inputs
 * are counted as they are.
 */
export function estimateEmbeddingTokens({
  request,
  model = request.model,
  exactCharacterLimit = DEFAULT_EXACT_CHARACTER_LIMIT,
}: {
  request: EmbeddingRequest;
  model?: string;
  exactCharacterLimit?: number;
}): number {
  const input = request.input;
  const items: readonly (string | number | readonly number[])[] = typeof input === 'string' ? [input] : input;
  let characters = 0;
  for (const item of items) if (typeof item === 'string') characters += item.length;
  const { count } = counterFor({ model, characters, exactCharacterLimit });
  let total = 0;
  for (const item of items) {
    if (typeof item === 'string') total += count(item);
    else if (typeof item === 'number') total += 1;
    else total += item.length;
  }
  return total;
}
