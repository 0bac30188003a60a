/**
 * OpenAI `messages` → Anthropic `system` + `messages`. Anthropic differs in ways that matter:
 * system prompts are a top-level field, roles must alternate (so consecutive same-role
 * messages are merged), tool results are `tool_result` blocks inside a user message, tool
 * calls are `tool_use` blocks with parsed JSON input and ids of Anthropic's form (tool-ids.ts),
 * and empty or whitespace-only text blocks are rejected outright.
 */
import { SeedError } from '../../errors.ts';
import type { ChatMessage, ContentPart, ToolCall } from '../../wire/openai.ts';
import type {
  AnthropicImageBlock,
  AnthropicMessage,
  AnthropicRequestBlock,
  AnthropicTextBlock,
  AnthropicToolUseBlock,
} from './wire.ts';
import { ToolCallIds } from './tool-ids.ts';

/** Media types the Messages API accepts for base64 images. */
const IMAGE_MEDIA_TYPES = new Set(['image/jpeg', 'image/png', 'image/gif', 'image/webp']);

export interface TranslatedMessages {
  /** Omitted when the conversation has no system or developer text. */
  system: string | AnthropicTextBlock[] | undefined;
  messages: AnthropicMessage[];
}

/**
 * Translates a whole conversation. Throws `invalid_request` (with the OpenAI `param` path) for
 * content Anthropic cannot take: unparsable tool arguments, audio, unsupported image types, tool
 * calls left unanswered or results answering no call.
 *
 * @example
 * toAnthropicMessages({ messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }], warn: console.warn })
 * // → { system: 'Be brief.', messages: [{ role: 'user', content: [{ type: 'text', text: 'Hi' }] }] }
 */
export function toAnthropicMessages(input: {
  messages: readonly ChatMessage[];
  warn: (warning: string) => void;
}): TranslatedMessages {
  const systemBlocks: AnthropicTextBlock[] = [];
  const merged: AnthropicMessage[] = [];
  const ids = new ToolCallIds();
  input.messages.forEach((message, index) => {
    const param = `messages[${index}]`;
    if ('name' in message && typeof message.name === 'string') {
      input.warn('Message `name` fields are not supported by Anthropic and were ignored.');
    }
    if (message.role === 'system' || message.role === 'developer') {
      // Anthropic has one system prompt; mid-conversation system messages are hoisted into it, in order.
      systemBlocks.push(...textBlocks(message.content));
      return;
    }
    const role = message.role === 'assistant' ? 'assistant' : 'user';
    const blocks = blocksOf({ message, index, ids });
    if (blocks.length === 0) {
      input.warn(`${param} has no content Anthropic accepts (empty text) and was skipped.`);
      return;
    }
    const previous = merged.at(-1);
    if (previous?.role === role) previous.content.push(...blocks);
    else merged.push({ role, content: blocks });
  });
  if (merged.length === 0) {
    throw new SeedError('invalid_request', 'Anthropic needs at least one user or assistant message with content.', {
      param: 'messages',
    });
  }
  const messages = merged.map((message, position) =>
    finalizeMessage({ message, isLast: position === merged.length - 1 }),
  );
  ids.checkToolPairing(messages);
  const system = systemBlocks.length === 0 ? undefined : systemBlocks.length === 1 ? systemBlocks[0]?.text : systemBlocks;
  return { system, messages };
}

function blocksOf(input: {
  message: Exclude<ChatMessage, { role: 'system' | 'developer' }>;
  index: number;
  ids: ToolCallIds;
}): AnthropicRequestBlock[] {
  const { message, index, ids } = input;
  const param = `messages[${index}]`;
  switch (message.role) {
    case 'user':
      return typeof message.content === 'string'
        ? textBlocks(message.content)
        : message.content.flatMap((part, partIndex) => userPart({ part, param: `${param}.content[${partIndex}]` }));
    case 'assistant': {
      const calls = message.tool_calls ?? [];
      const callIds = ids.forCalls({ ids: calls.map((call) => call.id), message: index });
      return [
        ...assistantText(message),
        ...calls.map((call, callIndex) =>
          toolUse({ call, id: callIds[callIndex] ?? call.id, param: `${param}.tool_calls[${callIndex}].function.arguments` }),
        ),
      ];
    }
    case 'tool': {
      const content = typeof message.content === 'string' ? message.content : textBlocks(message.content);
      return [ids.result({ toolCallId: message.tool_call_id, message: index, content })];
    }
  }
}

/**
 * Tool results must open the user message that follows a tool call (Anthropic rejects text
 * before them), and a final assistant message (a prefill) must not end in whitespace.
 */
function finalizeMessage(input: { message: AnthropicMessage; isLast: boolean }): AnthropicMessage {
  const { message } = input;
  if (message.role === 'user') {
    const results = message.content.filter((block) => block.type === 'tool_result');
    const others = message.content.filter((block) => block.type !== 'tool_result');
    return { role: 'user', content: [...results, ...others] };
  }
  const last = message.content.at(-1);
  if (!input.isLast || last?.type !== 'text') return message;
  const trimmed = last.text.trimEnd();
  const head = message.content.slice(0, -1);
  return { role: 'assistant', content: trimmed === '' ? head : [...head, { type: 'text', text: trimmed }] };
}

function textBlocks(content: string | readonly { text: string }[]): AnthropicTextBlock[] {
  const texts = typeof content === 'string' ? [content] : content.map((part) => part.text);
  return texts.filter((text) => text.trim() !== '').map((text) => ({ type: 'text', text }));
}

function assistantText(message: Extract<ChatMessage, { role: 'assistant' }>): AnthropicTextBlock[] {
  const content = message.content;
  if (content === null || content === undefined) {
    // A previous refusal is still part of the conversation; keep it as what the assistant said.
    return typeof message.refusal === 'string' ? textBlocks(message.refusal) : [];
  }
  if (typeof content === 'string') return textBlocks(content);
  return textBlocks(content.map((part) => ({ text: part.type === 'text' ? part.text : part.refusal })));
}

function userPart(input: { part: ContentPart; param: string }): AnthropicRequestBlock[] {
  const { part, param } = input;
  switch (part.type) {
    case 'text':
      return textBlocks(part.text);
    case 'refusal':
      return textBlocks(part.refusal);
    case 'image_url':
      return [imageBlock({ url: part.image_url.url, param: `${param}.image_url.url` })];
    case 'file':
      return [pdfBlock({ file: part.file, param: `${param}.file` })];
    case 'input_audio':
      throw new SeedError('invalid_request', 'Anthropic models do not accept audio input.', { param });
  }
}

/** Data URLs become base64 sources; http(s) URLs are fetched by Anthropic itself. */
export function imageBlock(input: { url: string; param: string }): AnthropicImageBlock {
  const { url, param } = input;
  if (/^https?:\/\//i.test(url)) return { type: 'image', source: { type: 'url', url } };
  const dataUrl = parseDataUrl(url);
  if (dataUrl === undefined) {
    throw new SeedError('invalid_request', 'Image URLs must be http(s) URLs or base64 data URLs.', { param });
  }
  if (!IMAGE_MEDIA_TYPES.has(dataUrl.mediaType)) {
    throw new SeedError(
      'invalid_request',
      `Anthropic accepts images of type ${[...IMAGE_MEDIA_TYPES].join(', ')}, not ${dataUrl.mediaType}.`,
      { param },
    );
  }
  return { type: 'image', source: { type: 'base64', media_type: dataUrl.mediaType, data: dataUrl.data } };
}

function pdfBlock(input: { file: Record<string, unknown>; param: string }): AnthropicRequestBlock {
  const fileData = input.file['file_data'];
  const dataUrl = typeof fileData === 'string' ? parseDataUrl(fileData) : undefined;
  if (dataUrl?.mediaType !== 'application/pdf') {
    // File ids refer to OpenAI's file store, which Anthropic cannot read.
    throw new SeedError('invalid_request', 'Anthropic deployments accept files only as base64 PDF data URLs in `file_data`.', {
      param: input.param,
    });
  }
  return { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: dataUrl.data } };
}

function parseDataUrl(url: string): { mediaType: string; data: string } | undefined {
  const match = /^data:([^;,]+)(?:;[^;,=]+=[^;,]*)*;base64,(.*)$/is.exec(url);
  if (!match?.[1] || match[2] === undefined) return undefined;
  return { mediaType: match[1].toLowerCase(), data: match[2] };
}

/** OpenAI arguments are a JSON string; Anthropic wants the parsed object. `id` is the call's id on Anthropic's side. */
function toolUse(input: { call: ToolCall; id: string; param: string }): AnthropicToolUseBlock {
  const { call, param } = input;
  const text = call.function.arguments.trim();
  // Some clients send "" for a call without arguments; that means an empty object, not an error.
  let parsed: unknown = {};
  if (text !== '') {
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new SeedError('invalid_request', `Tool call ${call.id} has arguments that are not valid JSON.`, { param });
    }
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new SeedError('invalid_request', `Tool call ${call.id} has arguments that are not a JSON object.`, { param });
  }
  return { type: 'tool_use', id: input.id, name: call.function.name, input: parsed as Record<string, unknown> };
}
