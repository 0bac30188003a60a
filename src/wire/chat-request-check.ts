/**
 * A quick yes for the chat requests clients commonly send, so the gateway can skip
 * `chatCompletionRequestSchema.safeParse` on them. zod 4 builds a new object for every object
 * and array it validates; for a request body that copy is equal to the body, and was garbage on
 * every call. This reads the parsed JSON in place and allocates nothing of its own.
 *
 * Sound, not complete: when it says yes, the schema accepts the value and its copy is
 * deep-equal to it. What it does not mirror is a no (audio and file parts, a refusal part
 * outside an assistant message, an object that is not a `{}`, an own `__proto__` key, which
 * zod leaves out of its copy), and the caller falls back to the schema: the same result, or
 * the usual detailed 400. Soundness is for values `JSON.parse` makes (no symbol keys,
 * accessors or shared references).
 *
 * The schema stays the definition: every constraint here mirrors one in openai.ts, and
 * test/wire-chat-request-check.test.ts checks this against it on real-shaped and generated
 * requests. A change to the request schema needs the same change here (or a no).
 */
import type { ChatCompletionRequest } from './openai.ts';

/**
 * True only for a value `chatCompletionRequestSchema` accepts and would copy unchanged.
 *
 * @example
 * const body = isPlainChatRequest(request.body) ? request.body : parseWithZod(request.body);
 */
export function isPlainChatRequest(value: unknown): value is ChatCompletionRequest {
  if (!isPlainObject(value)) return false;
  // `x == null` is `.nullable().optional()` (null or absent); `x === undefined` is `.optional()`.
  return (
    isRouteName(value.model) &&
    isMessages(value.messages) &&
    (value.stream == null || typeof value.stream === 'boolean') &&
    (value.stream_options == null || isStreamOptions(value.stream_options)) &&
    isNullishIntegerIn(value.max_tokens, 1, Number.MAX_SAFE_INTEGER) &&
    isNullishIntegerIn(value.max_completion_tokens, 1, Number.MAX_SAFE_INTEGER) &&
    isNullishNumberIn(value.temperature, 0, 2) &&
    isNullishNumberIn(value.top_p, 0, 1) &&
    isNullishIntegerIn(value.n, 1, 128) &&
    (value.stop == null || isStop(value.stop)) &&
    isNullishNumberIn(value.presence_penalty, -2, 2) &&
    isNullishNumberIn(value.frequency_penalty, -2, 2) &&
    (value.logit_bias == null || isLogitBias(value.logit_bias)) &&
    (value.logprobs == null || typeof value.logprobs === 'boolean') &&
    isNullishIntegerIn(value.top_logprobs, 0, 20) &&
    isNullishIntegerIn(value.seed, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER) &&
    // Optional but not nullable, unlike their neighbours: null is a 400.
    (value.user === undefined || typeof value.user === 'string') &&
    (value.tools === undefined || isArrayOf(value.tools, isTool)) &&
    (value.tool_choice === undefined || isToolChoice(value.tool_choice)) &&
    (value.parallel_tool_calls === undefined || typeof value.parallel_tool_calls === 'boolean') &&
    (value.response_format === undefined || isResponseFormat(value.response_format)) &&
    (value.metadata == null || isMetadata(value.metadata)) &&
    (value.store == null || typeof value.store === 'boolean') &&
    (value.reasoning_effort == null || typeof value.reasoning_effort === 'string')
  );
}

type Fields = Record<string, unknown>;

/**
 * An object zod accepts (as a `z.object` or a `z.record`) and copies into an equal one: its
 * copy is a `{}`, so the object must be one too (not null-prototype, not a class instance), and
 * must not have an own `__proto__` key (JSON.parse makes one; zod leaves it out of the copy).
 */
function isPlainObject(value: unknown): value is Fields {
  return (
    typeof value === 'object' &&
    value !== null &&
    Object.getPrototypeOf(value) === Object.prototype &&
    !Object.prototype.hasOwnProperty.call(value, '__proto__')
  );
}

/** `z.array(item)`. */
function isArrayOf(value: unknown, isItem: (item: unknown) => boolean): boolean {
  if (!Array.isArray(value)) return false;
  for (let index = 0; index < value.length; index += 1) {
    if (!isItem(value[index])) return false;
  }
  return true;
}

/** `z.number()`: zod 4 refuses NaN and ±Infinity. */
function isNumber(value: unknown): boolean {
  return typeof value === 'number' && Number.isFinite(value);
}

// The request's numbers are all `.nullable().optional()`, and each is read once, by a helper
// that takes the field nullish or not: V8 boxes a fraction (16 bytes) on every read from an
// object whose shape the reading code was not specialised for, as a gateway's bodies vary.

/** `z.number().min(min).max(max).nullable().optional()`; NaN and ±Infinity fail the bounds. */
function isNullishNumberIn(value: unknown, min: number, max: number): boolean {
  return value == null || (typeof value === 'number' && value >= min && value <= max);
}

/** `z.number().int().min(min).max(max).nullable().optional()`; zod 4's `int` is a safe integer. */
function isNullishIntegerIn(value: unknown, min: number, max: number): boolean {
  return value == null || (Number.isSafeInteger(value) && (value as number) >= min && (value as number) <= max);
}

/** `z.string().max(max)`: zod 4 counts code points (a surrogate pair is one, a lone surrogate one). */
function isStringOfAtMost(value: unknown, max: number): value is string {
  if (typeof value !== 'string') return false;
  const units = value.length;
  if (units <= max) return true;
  // Every code point is one or two units.
  if (units > max * 2) return false;
  let points = units;
  for (let index = 0; index < units - 1; index += 1) {
    if ((value.charCodeAt(index) & 0xfc00) === 0xd800 && (value.charCodeAt(index + 1) & 0xfc00) === 0xdc00) {
      points -= 1;
      index += 1;
    }
  }
  return points <= max;
}

/** `routeName`: 1 to 256 code points, none of them a control character. */
function isRouteName(value: unknown): boolean {
  if (!isStringOfAtMost(value, 256) || value.length === 0) return false;
  for (let index = 0; index < value.length; index += 1) {
    const code = value.charCodeAt(index);
    if (code <= 0x1f || code === 0x7f) return false;
  }
  return true;
}

/** `z.string().min(1).max(64)`: a tool's or a response schema's name. */
function isName64(value: unknown): boolean {
  return isStringOfAtMost(value, 64) && value.length > 0;
}

function isStreamOptions(value: unknown): boolean {
  return isPlainObject(value) && (value.include_usage === undefined || typeof value.include_usage === 'boolean');
}

function isString(value: unknown): boolean {
  return typeof value === 'string';
}

function isStop(value: unknown): boolean {
  return typeof value === 'string' || (Array.isArray(value) && value.length <= 4 && isArrayOf(value, isString));
}

/** `z.record(z.string(), z.number())`. */
function isLogitBias(value: unknown): boolean {
  if (!isPlainObject(value)) return false;
  for (const key in value) {
    if (!isNumber(value[key])) return false;
  }
  return true;
}

/** `z.record(z.string().max(64), z.string().max(512))`. */
function isMetadata(value: unknown): boolean {
  if (!isPlainObject(value)) return false;
  for (const key in value) {
    if (!isStringOfAtMost(key, 64) || !isStringOfAtMost(value[key], 512)) return false;
  }
  return true;
}

/** `z.record(z.string(), z.unknown())`: JSON's keys are strings and its values are anything. */
function isJsonSchemaObject(value: unknown): boolean {
  return isPlainObject(value);
}

function isMessages(value: unknown): boolean {
  return Array.isArray(value) && value.length > 0 && isArrayOf(value, isMessage);
}

/** `messageSchema`, discriminated by `role`. */
function isMessage(value: unknown): boolean {
  if (!isPlainObject(value)) return false;
  switch (value.role) {
    case 'system':
    case 'developer':
      return isTextContent(value.content) && isMessageName(value.name);
    case 'user':
      return (typeof value.content === 'string' || isArrayOf(value.content, isUserPart)) && isMessageName(value.name);
    case 'assistant':
      return (
        (value.content === undefined || value.content === null || typeof value.content === 'string' || isArrayOf(value.content, isAssistantPart)) &&
        isMessageName(value.name) &&
        (value.tool_calls === undefined || isArrayOf(value.tool_calls, isToolCall)) &&
        (value.refusal == null || typeof value.refusal === 'string')
      );
    case 'tool':
      // No `name` in this one's shape: any `name` passes as an unknown key.
      return isTextContent(value.content) && typeof value.tool_call_id === 'string';
    default:
      return false;
  }
}

/** `nameField`: an optional string of at most 256 code points. */
function isMessageName(value: unknown): boolean {
  return value === undefined || isStringOfAtMost(value, 256);
}

/** A string, or an array of text parts. */
function isTextContent(value: unknown): boolean {
  return typeof value === 'string' || isArrayOf(value, isTextPart);
}

function isTextPart(value: unknown): boolean {
  return isPlainObject(value) && value.type === 'text' && typeof value.text === 'string';
}

/** Text and image parts; audio, file and refusal parts in a user message go to the schema. */
function isUserPart(value: unknown): boolean {
  if (!isPlainObject(value)) return false;
  if (value.type === 'text') return typeof value.text === 'string';
  if (value.type !== 'image_url') return false;
  const image = value.image_url;
  return (
    isPlainObject(image) &&
    typeof image.url === 'string' &&
    (image.detail === undefined || image.detail === 'auto' || image.detail === 'low' || image.detail === 'high')
  );
}

function isAssistantPart(value: unknown): boolean {
  return isTextPart(value) || (isPlainObject(value) && value.type === 'refusal' && typeof value.refusal === 'string');
}

function isToolCall(value: unknown): boolean {
  if (!isPlainObject(value) || typeof value.id !== 'string' || value.type !== 'function') return false;
  const called = value.function;
  return isPlainObject(called) && typeof called.name === 'string' && typeof called.arguments === 'string';
}

/** `toolSchema`. */
function isTool(value: unknown): boolean {
  if (!isPlainObject(value) || value.type !== 'function') return false;
  const definition = value.function;
  return (
    isPlainObject(definition) &&
    isName64(definition.name) &&
    (definition.description === undefined || typeof definition.description === 'string') &&
    (definition.parameters === undefined || isJsonSchemaObject(definition.parameters)) &&
    (definition.strict == null || typeof definition.strict === 'boolean')
  );
}

/** `toolChoiceSchema`. */
function isToolChoice(value: unknown): boolean {
  if (value === 'none' || value === 'auto' || value === 'required') return true;
  if (!isPlainObject(value) || value.type !== 'function') return false;
  return isPlainObject(value.function) && typeof value.function.name === 'string';
}

/** `responseFormatSchema`, discriminated by `type`. */
function isResponseFormat(value: unknown): boolean {
  if (!isPlainObject(value)) return false;
  if (value.type === 'text' || value.type === 'json_object') return true;
  if (value.type !== 'json_schema') return false;
  const format = value.json_schema;
  return (
    isPlainObject(format) &&
    isName64(format.name) &&
    (format.description === undefined || typeof format.description === 'string') &&
    (format.schema === undefined || isJsonSchemaObject(format.schema)) &&
    (format.strict == null || typeof format.strict === 'boolean')
  );
}
