/**
 * The Messages API's request rules beyond field types: the ones a translator from another wire
 * format gets wrong, which the real API enforces with a 400 and a message naming the position.
 * A gateway test or fuzz run against the simulator then fails where production would.
 *
 * Enforced, with the real API's wording where it is known:
 * - text blocks (in messages, tool results and `system`) must hold a visible character;
 * - every message but a final assistant one needs content; a final assistant message (a prefill)
 *   must not end in whitespace;
 * - `tool_use` ids match `^[a-zA-Z0-9_-]+$` and are unique in the request; each is answered by a
 *   `tool_result` in the next message, and each `tool_result` answers a `tool_use` of the message
 *   before; `tool_use` only in assistant messages, `tool_result` only in user messages;
 * - base64 images are JPEG, PNG, GIF or WebP;
 * - tools have distinct names of `^[a-zA-Z0-9_-]{1,128}$` and an `input_schema` of type object;
 * - stop sequences hold a visible character; `temperature` and `top_p` are within 0–1.
 *
 * Not enforced: that the first message is the user's (the API required it until 2024; the
 * first-party API has taken an assistant message first since, while Bedrock's endpoint still
 * refuses it, as reported in anthropic-sdk-typescript issue 622), and limits on lengths and sizes.
 */
import { InvalidRequest, isRecord, type JsonObject } from './fields.ts';

const TOOL_USE_ID = /^[a-zA-Z0-9_-]+$/;
const TOOL_NAME = /^[a-zA-Z0-9_-]{1,128}$/;
const IMAGE_MEDIA_TYPES = new Set(['image/jpeg', 'image/png', 'image/gif', 'image/webp']);

function refuse(message: string): never {
  throw new InvalidRequest({ message });
}

function checkText(input: { text: unknown; where: string }): void {
  if (typeof input.text !== 'string') refuse(`${input.where}.text: Input should be a valid string`);
  if (input.text === '') refuse(`${input.where.split('.')[0]}: text content blocks must be non-empty`);
  if (input.text.trim() === '') refuse(`${input.where.split('.')[0]}: text content blocks must contain non-whitespace text`);
}

/** A message's content as blocks (the string shorthand is one text block). */
function blocksOf(content: unknown, where: string): JsonObject[] {
  if (typeof content === 'string') return [{ type: 'text', text: content }];
  if (!Array.isArray(content)) refuse(`${where}.content: Input should be a valid list`);
  return content.map((block, index) => (isRecord(block) ? block : refuse(`${where}.content.${index}: Input should be a valid dictionary`)));
}

function checkSystem(system: unknown): void {
  if (system === undefined || system === null) return;
  if (typeof system === 'string') {
    if (system.trim() === '' && system !== '') refuse('system: text content blocks must contain non-whitespace text');
    return;
  }
  if (!Array.isArray(system)) refuse('system: Input should be a valid string or list');
  system.forEach((block, index) => {
    if (!isRecord(block) || block.type !== 'text') refuse(`system.${index}.type: Input should be 'text'`);
    checkText({ text: block.text, where: `system.${index}` });
  });
}

function checkBlock(input: { block: JsonObject; role: string; where: string; toolUseIds: Set<string> }): void {
  const { block, role, where } = input;
  switch (block.type) {
    case 'text':
      checkText({ text: block.text, where });
      return;
    case 'image': {
      const source = isRecord(block.source) ? block.source : refuse(`${where}.image.source: Field required`);
      if (source.type === 'base64' && !IMAGE_MEDIA_TYPES.has(String(source.media_type))) {
        refuse(`${where}.image.source.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'`);
      }
      return;
    }
    case 'tool_use': {
      if (role !== 'assistant') refuse(`${where}: \`tool_use\` blocks can only be in \`assistant\` messages`);
      const id = block.id;
      if (typeof id !== 'string' || !TOOL_USE_ID.test(id)) refuse(`${where}.tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'`);
      if (input.toolUseIds.has(id)) refuse(`${where}: \`tool_use\` ids must be unique`);
      input.toolUseIds.add(id);
      if (!isRecord(block.input)) refuse(`${where}.tool_use.input: Input should be a valid dictionary`);
      return;
    }
    case 'tool_result': {
      if (role !== 'user') refuse(`${where}: \`tool_result\` blocks can only be in \`user\` messages`);
      const id = block.tool_use_id;
      if (typeof id !== 'string' || !TOOL_USE_ID.test(id)) {
        refuse(`${where}.tool_result.tool_use_id: String should match pattern '^[a-zA-Z0-9_-]+$'`);
      }
      if (Array.isArray(block.content)) {
        block.content.forEach((inner, index) => {
          if (isRecord(inner) && inner.type === 'text') checkText({ text: inner.text, where: `${where}.tool_result.content.${index}` });
        });
      }
      return;
    }
    default:
      return;
  }
}

function toolUseIdsIn(blocks: readonly JsonObject[]): string[] {
  return blocks.flatMap((block) => (block.type === 'tool_use' && typeof block.id === 'string' ? [block.id] : []));
}

function checkMessages(messages: readonly unknown[]): void {
  const toolUseIds = new Set<string>();
  const contents = messages.map((message, index) => {
    const where = `messages.${index}`;
    if (!isRecord(message)) refuse(`${where}: Input should be a valid dictionary`);
    if (message.role !== 'user' && message.role !== 'assistant') refuse(`${where}.role: Input should be 'user' or 'assistant'`);
    const blocks = blocksOf(message.content, where);
    const isFinalAssistant = index === messages.length - 1 && message.role === 'assistant';
    if (blocks.length === 0 || (typeof message.content === 'string' && message.content === '')) {
      if (!isFinalAssistant) refuse(`${where}: all messages must have non-empty content except for the optional final assistant message`);
      return { role: message.role, blocks: [] };
    }
    blocks.forEach((block, blockIndex) => checkBlock({ block, role: message.role as string, where: `${where}.content.${blockIndex}`, toolUseIds }));
    const last = blocks.at(-1);
    if (isFinalAssistant && last?.type === 'text' && typeof last.text === 'string' && last.text !== last.text.trimEnd()) {
      refuse('messages: final assistant content cannot end with trailing whitespace');
    }
    return { role: message.role, blocks };
  });
  contents.forEach(({ role, blocks }, index) => {
    if (role === 'assistant') {
      const next = contents[index + 1];
      const answered = new Set(next?.role === 'user' ? next.blocks.map((block) => block.tool_use_id) : []);
      const missing = toolUseIdsIn(blocks).filter((id) => !answered.has(id));
      if (missing.length > 0) {
        refuse(
          `messages.${index}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${missing.join(', ')}. ` +
            'Each `tool_use` block must have a corresponding `tool_result` block in the next message.',
        );
      }
      return;
    }
    const previous = contents[index - 1];
    const called = new Set(previous?.role === 'assistant' ? toolUseIdsIn(previous.blocks) : []);
    blocks.forEach((block, blockIndex) => {
      if (block.type === 'tool_result' && !called.has(String(block.tool_use_id))) {
        refuse(
          `messages.${index}.content.${blockIndex}: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ${String(block.tool_use_id)}. ` +
            'Each `tool_result` block must have a corresponding `tool_use` block in the previous message.',
        );
      }
    });
  });
}

function checkTools(tools: unknown): void {
  if (!Array.isArray(tools)) return;
  const names = new Set<string>();
  tools.forEach((tool, index) => {
    if (!isRecord(tool)) refuse(`tools.${index}: Input should be a valid dictionary`);
    if (typeof tool.name !== 'string' || !TOOL_NAME.test(tool.name)) {
      refuse(`tools.${index}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'`);
    }
    const schema = isRecord(tool.input_schema) ? tool.input_schema : refuse(`tools.${index}.custom.input_schema: Field required`);
    if (schema.type === undefined) refuse(`tools.${index}.custom.input_schema.type: Field required`);
    if (schema.type !== 'object') refuse(`tools.${index}.custom.input_schema.type: Input should be 'object'`);
    if (names.has(tool.name)) refuse('tools: Tool names must be unique.');
    names.add(tool.name);
  });
}

function checkUnitInterval(body: JsonObject, name: string): void {
  const value = body[name];
  if (value === undefined || value === null) return;
  if (typeof value !== 'number') refuse(`${name}: Input should be a valid number`);
  if (value < 0) refuse(`${name}: Input should be greater than or equal to 0`);
  if (value > 1) refuse(`${name}: Input should be less than or equal to 1`);
}

/** Throws `InvalidRequest` (a 400 in Anthropic's format) for the first rule `body` breaks. */
export function checkMessagesRequest(input: { body: JsonObject; messages: readonly unknown[]; stop: readonly string[] }): void {
  checkSystem(input.body.system);
  checkMessages(input.messages);
  checkTools(input.body.tools);
  if (input.stop.some((sequence) => sequence.trim() === '')) refuse('stop_sequences: each stop sequence must contain non-whitespace');
  checkUnitInterval(input.body, 'temperature');
  checkUnitInterval(input.body, 'top_p');
}
