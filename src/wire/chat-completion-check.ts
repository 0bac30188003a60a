/**
 * Checks of an upstream's non-streaming responses that accept exactly what
 * `chatCompletionSchema` and `embeddingResponseSchema` (openai.ts) accept, without copying.
 * zod 4 builds a new object for every object and array it validates; for a response the
 * gateway relays as the upstream's own text (json-text.ts), that copy was garbage on every
 * call. These read the parsed JSON in place and hand back the same value.
 *
 * The schemas stay the definition: every constraint here mirrors one there, the failure path
 * is the dotted path of zod's first issue (it ends up in the error message), and
 * test/wire-chat-completion-check.test.ts checks both against the schemas on generated
 * responses. A change to either schema needs the same change here.
 */
import { MAX_TOKEN_COUNT, type ChatCompletion, type EmbeddingResponse } from './openai.ts';

/** The value itself when it passes; else where the first problem is (`''` for the value itself). */
export type CheckResult<T> = { ok: true; value: T } | { ok: false; path: string };

/**
 * Checks an upstream's chat completion response as `chatCompletionSchema.safeParse` would.
 *
 * @example
 * const checked = checkChatCompletion(JSON.parse(text));
 * if (!checked.ok) throw new Error(`not a chat completion (at ${checked.path})`);
 * relay(withJsonText(checked.value, text));
 */
export function checkChatCompletion(value: unknown): CheckResult<ChatCompletion> {
  const path = chatCompletionProblem(value);
  return path === undefined ? { ok: true, value: value as ChatCompletion } : { ok: false, path };
}

/** Checks an upstream's embeddings response as `embeddingResponseSchema.safeParse` would. */
export function checkEmbeddingResponse(value: unknown): CheckResult<EmbeddingResponse> {
  const path = embeddingResponseProblem(value);
  return path === undefined ? { ok: true, value: value as EmbeddingResponse } : { ok: false, path };
}

// Each `…Problem` returns the path of the first field that fails, relative to its value, or
// undefined when it passes. Fields are checked in the schema's key order, which is the order
// zod reports issues in. Paths are only built on failure.

type Fields = Record<string, unknown>;

/** zod's object test: a non-null object that is not an array. */
function isObject(value: unknown): value is Fields {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `z.number()`: finite (zod 4 refuses NaN and ±Infinity). */
function isNumber(value: unknown): boolean {
  return typeof value === 'number' && Number.isFinite(value);
}

/** `tokenCount` (openai.ts): a whole number (zod 4's `int()` is a safe integer) from 0 to `MAX_TOKEN_COUNT`. */
export function isTokenCount(value: unknown): boolean {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 && value <= MAX_TOKEN_COUNT;
}

function within(key: string | number, path: string): string {
  return path === '' ? String(key) : `${key}.${path}`;
}

function chatCompletionProblem(value: unknown): string | undefined {
  if (!isObject(value)) return '';
  if (typeof value.id !== 'string') return 'id';
  if (value.object !== 'chat.completion') return 'object';
  if (!isNumber(value.created)) return 'created';
  if (typeof value.model !== 'string') return 'model';
  const choices = value.choices;
  if (!Array.isArray(choices)) return 'choices';
  for (let index = 0; index < choices.length; index += 1) {
    const problem = choiceProblem(choices[index]);
    if (problem !== undefined) return within(`choices.${index}`, problem);
  }
  if (value.usage !== undefined) {
    const problem = usageProblem(value.usage);
    if (problem !== undefined) return within('usage', problem);
  }
  const fingerprint = value.system_fingerprint;
  if (fingerprint !== undefined && fingerprint !== null && typeof fingerprint !== 'string') return 'system_fingerprint';
  return undefined;
}

function choiceProblem(choice: unknown): string | undefined {
  if (!isObject(choice)) return '';
  if (!isNumber(choice.index)) return 'index';
  const problem = messageProblem(choice.message);
  if (problem !== undefined) return within('message', problem);
  if (choice.finish_reason !== null && typeof choice.finish_reason !== 'string') return 'finish_reason';
  // `logprobs` is `z.unknown().optional()`: anything.
  return undefined;
}

function messageProblem(message: unknown): string | undefined {
  if (!isObject(message)) return '';
  if (message.role !== 'assistant') return 'role';
  if (message.content !== null && typeof message.content !== 'string') return 'content';
  const toolCalls = message.tool_calls;
  if (toolCalls !== undefined) {
    if (!Array.isArray(toolCalls)) return 'tool_calls';
    for (let index = 0; index < toolCalls.length; index += 1) {
      const problem = toolCallProblem(toolCalls[index]);
      if (problem !== undefined) return within(`tool_calls.${index}`, problem);
    }
  }
  const refusal = message.refusal;
  if (refusal !== undefined && refusal !== null && typeof refusal !== 'string') return 'refusal';
  return undefined;
}

function toolCallProblem(toolCall: unknown): string | undefined {
  if (!isObject(toolCall)) return '';
  if (typeof toolCall.id !== 'string') return 'id';
  if (toolCall.type !== 'function') return 'type';
  const called = toolCall.function;
  if (!isObject(called)) return 'function';
  if (typeof called.name !== 'string') return 'function.name';
  if (typeof called.arguments !== 'string') return 'function.arguments';
  return undefined;
}

function usageProblem(usage: unknown): string | undefined {
  if (!isObject(usage)) return '';
  if (!isTokenCount(usage.prompt_tokens)) return 'prompt_tokens';
  if (!isTokenCount(usage.completion_tokens)) return 'completion_tokens';
  if (!isTokenCount(usage.total_tokens)) return 'total_tokens';
  const prompt = detailsProblem(usage.prompt_tokens_details, 'cached_tokens');
  if (prompt !== undefined) return within('prompt_tokens_details', prompt);
  const completion = detailsProblem(usage.completion_tokens_details, 'reasoning_tokens');
  if (completion !== undefined) return within('completion_tokens_details', completion);
  return undefined;
}

/** A `…_tokens_details` object: absent, null, or an object whose one known count is absent or a token count. */
function detailsProblem(details: unknown, count: string): string | undefined {
  if (details === undefined || details === null) return undefined;
  if (!isObject(details)) return '';
  if (details[count] !== undefined && !isTokenCount(details[count])) return count;
  return undefined;
}

function embeddingResponseProblem(value: unknown): string | undefined {
  if (!isObject(value)) return '';
  if (value.object !== 'list') return 'object';
  const data = value.data;
  if (!Array.isArray(data)) return 'data';
  for (let index = 0; index < data.length; index += 1) {
    const problem = embeddingProblem(data[index]);
    if (problem !== undefined) return within(`data.${index}`, problem);
  }
  if (typeof value.model !== 'string') return 'model';
  const usage = value.usage;
  if (!isObject(usage)) return 'usage';
  if (!isTokenCount(usage.prompt_tokens)) return 'usage.prompt_tokens';
  if (!isTokenCount(usage.total_tokens)) return 'usage.total_tokens';
  return undefined;
}

function embeddingProblem(item: unknown): string | undefined {
  if (!isObject(item)) return '';
  if (item.object !== 'embedding') return 'object';
  if (!isNumber(item.index)) return 'index';
  // A union (numbers or base64): zod reports a failure of both at the field itself.
  const embedding = item.embedding;
  if (typeof embedding === 'string') return undefined;
  if (!Array.isArray(embedding)) return 'embedding';
  for (let index = 0; index < embedding.length; index += 1) {
    if (!isNumber(embedding[index])) return 'embedding';
  }
  return undefined;
}
