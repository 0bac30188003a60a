/**
 * Token estimates for admission (principle 2: reserve prompt tokens + the completion cap).
 *
 * OpenAI model families are counted with their real BPE encoding (gpt-tokenizer's per-encoding
 * entry points, so only the two encodings we use are loaded) plus OpenAI's documented chat
 * framing: 3 tokens per message, 1 more when a message has a `name`, 3 to prime the reply.
 * Everything else (Anthropic, open models) is approximated as ⌈characters / 3.5⌉, which
 * over-counts English prose for most modern tokenizers — the safe direction for a reservation.
 * Parts without text are fixed guesses: an image 765 tokens (85 at `detail: low`), an audio
 * or file part 1,000. Settling replaces every estimate with the real usage anyway.
 *
 * Fast path: BPE runs synchronously on the event loop and its cost grows with the text
 * (measured by `test/helpers/limits-tokenizer-bench.ts` on a 2-vCPU machine: a ~2k-token
 * prompt costs 1.7–2.0 ms median with o200k_base, 2.5–3.5 ms with cl100k_base; ~8k tokens
 * 9–12 ms). Past `exactCharacterLimit` characters (default 16,000 ≈ 4k tokens) the
 * approximation is used even for OpenAI models: a bounded CPU cost per request matters more
 * than a precise estimate that settle corrects anyway (chars/3.5 over-counted o200k_base by
 * 7 % on the benchmark's English/code prompts).
 */
import * as cl100kBase from 'gpt-tokenizer/encoding/cl100k_base';
import * as o200kBase from 'gpt-tokenizer/encoding/o200k_base';
import type { ChatCompletionRequest, ChatMessage, EmbeddingRequest } from '../wire/openai.ts';

export type TokenCounting = 'o200k_base' | 'cl100k_base' | 'approximate';

const CHARACTERS_PER_TOKEN = 3.5;
const TOKENS_PER_MESSAGE = 3;
const TOKENS_PER_NAME = 1;
const REPLY_PRIMING_TOKENS = 3;
const IMAGE_TOKENS = 765;
const LOW_DETAIL_IMAGE_TOKENS = 85;
const OTHER_PART_TOKENS = 1_000;
/** Used when neither the request nor the route caps the completion. */
export const FALLBACK_COMPLETION_CAP = 4_096;
export const DEFAULT_EXACT_CHARACTER_LIMIT = 16_000;

const ENCODERS: Record<Exclude<TokenCounting, 'approximate'>, (text: string) => number> = {
  o200k_base: (text) => o200kBase.countTokens(text),
  cl100k_base: (text) => cl100kBase.countTokens(text),
};

/** Which encoding a model name uses; `approximate` when it is not an OpenAI family we know. */
export function tokenCountingFor(model: string): TokenCounting {
  const name = model.toLowerCase().replace(/^openai\//, '');
  if (/^(gpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|chatgpt-4o|o1|o3|o4|gpt-oss|text-embedding-3)/.test(name)) {
    return name.startsWith('text-embedding-3') ? 'cl100k_base' : 'o200k_base';
  }
  if (/^(gpt-4|gpt-3\.5|text-embedding-ada)/.test(name)) return 'cl100k_base';
  return 'approximate';
}

export function approximateTokens(text: string): number {
  return Math.ceil(text.length / CHARACTERS_PER_TOKEN);
}

export interface ChatEstimate {
  readonly promptTokens: number;
  /** The completion cap, times `n` choices. */
  readonly completionTokens: number;
  readonly totalTokens: number;
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
  exactCharacterLimit?: number;
}): ChatEstimate {
  const texts: string[] = [];
  let fixedTokens = REPLY_PRIMING_TOKENS;
  for (const message of request.messages) {
    fixedTokens += TOKENS_PER_MESSAGE + collectMessage({ message, texts });
  }
  if (request.tools !== undefined && request.tools.length > 0) texts.push(JSON.stringify(request.tools));
  const characters = texts.reduce((sum, text) => sum + text.length, 0);
  let counting = tokenCountingFor(model);
  if (characters > exactCharacterLimit) counting = 'approximate';
  const count = counting === 'approximate' ? approximateTokens : ENCODERS[counting];
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

/** Tokens of an embeddings input (no completion). Token-array inputs are counted exactly. */
export function estimateEmbeddingTokens({ request, model = request.model }: { request: EmbeddingRequest; model?: string }): number {
  const input = request.input;
  const counting = tokenCountingFor(model);
  const count = counting === 'approximate' ? approximateTokens : ENCODERS[counting];
  if (typeof input === 'string') return count(input);
  let total = 0;
  for (const item of input) {
    if (typeof item === 'string') total += count(item);
    else if (typeof item === 'number') total += 1;
    else total += item.length;
  }
  return total;
}
