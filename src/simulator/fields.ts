/**
 * Reading request bodies without a schema library on the hot path: a few typed readers that
 * throw `InvalidRequest` (a 400 naming the field, in the provider's error format) on a wrong
 * type. Only the fields the simulator acts on are checked.
 */

/** A client mistake the router turns into a 400 in the provider's own error format. */
export class InvalidRequest extends Error {
  readonly param: string | null;
  readonly status: number;

  constructor(input: { message: string; param?: string | null; status?: number }) {
    super(input.message);
    this.name = 'InvalidRequest';
    this.param = input.param ?? null;
    this.status = input.status ?? 400;
  }
}

export type JsonObject = Record<string, unknown>;

export function isRecord(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function requireObject(value: unknown): JsonObject {
  if (!isRecord(value)) throw new InvalidRequest({ message: 'The request body must be a JSON object.' });
  return value;
}

export function requireString(input: { body: JsonObject; name: string; missing?: string }): string {
  const value = input.body[input.name];
  if (value === undefined || value === null) {
    throw new InvalidRequest({ message: input.missing ?? `Missing required parameter: '${input.name}'.`, param: input.name });
  }
  if (typeof value !== 'string' || value === '') {
    throw new InvalidRequest({ message: `'${input.name}' must be a non-empty string.`, param: input.name });
  }
  return value;
}

/** An integer field; `null` and absence both read as undefined. */
export function optionalInteger(input: { body: JsonObject; name: string; min: number; max?: number }): number | undefined {
  const value = input.body[input.name];
  if (value === undefined || value === null) return undefined;
  const max = input.max ?? Number.MAX_SAFE_INTEGER;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < input.min || value > max) {
    const range = input.max === undefined ? `≥ ${input.min}` : `between ${input.min} and ${max}`;
    throw new InvalidRequest({ message: `'${input.name}' must be an integer ${range}.`, param: input.name });
  }
  return value;
}

/** A string or a list of strings (`stop`, `stop_sequences`). */
export function optionalStringList(input: { body: JsonObject; name: string }): string[] {
  const value = input.body[input.name];
  if (value === undefined || value === null) return [];
  if (typeof value === 'string') return [value];
  if (Array.isArray(value) && value.every((item) => typeof item === 'string')) return value;
  throw new InvalidRequest({ message: `'${input.name}' must be a string or a list of strings.`, param: input.name });
}

/** A non-empty array field. */
export function requireList(input: { body: JsonObject; name: string; missing?: string }): unknown[] {
  const value = input.body[input.name];
  if (value === undefined || value === null) {
    throw new InvalidRequest({ message: input.missing ?? `Missing required parameter: '${input.name}'.`, param: input.name });
  }
  if (!Array.isArray(value) || value.length === 0) {
    throw new InvalidRequest({ message: `'${input.name}' must be a non-empty array.`, param: input.name });
  }
  return value;
}

/**
 * Characters of text in message content of either provider: strings, text parts, tool
 * arguments and results. The prompt token estimate is these characters / 4.
 */
export function contentCharacters(content: unknown): number {
  if (typeof content === 'string') return content.length;
  if (Array.isArray(content)) {
    let total = 0;
    for (const item of content) total += contentCharacters(item);
    return total;
  }
  if (!isRecord(content)) return 0;
  let total = 0;
  if (typeof content.text === 'string') total += content.text.length;
  if (content.content !== undefined) total += contentCharacters(content.content);
  if (content.tool_calls !== undefined) total += contentCharacters(content.tool_calls);
  if (content.input !== undefined) total += JSON.stringify(content.input).length;
  if (isRecord(content.function) && typeof content.function.arguments === 'string') {
    total += content.function.arguments.length;
  }
  return total;
}

/** Text of message content: strings and text parts as they are, other parts as JSON. */
function plainText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return content === undefined || content === null ? '' : JSON.stringify(content);
  let text = '';
  for (const part of content) {
    text += isRecord(part) && part.type === 'text' && typeof part.text === 'string' ? part.text : JSON.stringify(part);
  }
  return text;
}

/**
 * What the generated answer depends on: roles and text of the conversation, in a form both
 * providers share, so an OpenAI request and its faithful Anthropic translation get the same
 * words (a gateway test can check translation that way).
 */
export function conversationFingerprint(input: { system?: unknown; messages: readonly unknown[] }): string {
  let text = input.system === undefined || input.system === null ? '' : `system:${plainText(input.system)}\n`;
  for (const message of input.messages) {
    if (!isRecord(message)) continue;
    const role = message.role === 'developer' ? 'system' : String(message.role);
    text += `${role}:${plainText(message.content)}\n`;
    if (message.tool_calls !== undefined) text += JSON.stringify(message.tool_calls);
  }
  return text;
}
