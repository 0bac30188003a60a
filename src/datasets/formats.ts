/**
 * Export formats: each turns a sample's fields into one JSONL record and says which fields it
 * read, so the gate checks exactly the lineage of what leaves. Pure.
 *
 * Field conventions (what the ledger and most imports produce):
 * - `messages`: an array of chat messages; `completion`: the assistant reply (message or string).
 * - DPO: `messages` plus `preferred` and `non_preferred` (messages or strings).
 * - Alpaca: `instruction` (else `text`, else the last user message), `input` (else ""),
 *   `output` (else `label`, else the completion's content, else "").
 */
import { SeedError } from '../errors.ts';
import type { JsonValue } from './types.ts';

export const EXPORT_FORMATS = Object.freeze(['openai-chat', 'openai-dpo', 'sharegpt', 'alpaca'] as const);
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export function isExportFormat(value: string): value is ExportFormat {
  return (EXPORT_FORMATS as readonly string[]).includes(value);
}

/** One formatted record and the fields it was built from. */
export interface Formatted {
  readonly record: JsonValue;
  readonly fieldsUsed: readonly string[];
}

type Fields = { readonly [field: string]: JsonValue };
type Message = { readonly [key: string]: JsonValue };

/**
 * Formats one sample's (selected) fields.
 *
 * @example
 * ```ts
 * formatRecord({ format: 'openai-chat', sampleId: 'a', fields: { messages: [{ role: 'user', content: 'hi' }], completion: 'hello' } });
 * // { record: { messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }] }, fieldsUsed: ['completion', 'messages'] }
 * ```
 * @throws SeedError `unprocessable_entity` when the sample lacks a field the format needs.
 */
export function formatRecord({ format, sampleId, fields }: { format: ExportFormat; sampleId: string; fields: Fields }): Formatted {
  const used = new Set<string>();
  const read = (name: string): JsonValue | undefined => {
    const value = fields[name];
    if (value !== undefined) used.add(name);
    return value;
  };
  const need = (name: string): JsonValue => {
    const value = read(name);
    if (value === undefined) throw missing({ format, sampleId, name });
    return value;
  };
  const record = build({ format, sampleId, read, need });
  return { record, fieldsUsed: [...used].sort() };
}

function build({
  format,
  sampleId,
  read,
  need,
}: {
  format: ExportFormat;
  sampleId: string;
  read: (name: string) => JsonValue | undefined;
  need: (name: string) => JsonValue;
}): JsonValue {
  switch (format) {
    case 'openai-chat':
      return { messages: conversation({ sampleId, read, need }) };
    case 'openai-dpo':
      return {
        input: { messages: messageList({ sampleId, value: need('messages') }) },
        preferred_output: [assistantMessage({ sampleId, value: need('preferred') })],
        non_preferred_output: [assistantMessage({ sampleId, value: need('non_preferred') })],
      };
    case 'sharegpt':
      return {
        conversations: conversation({ sampleId, read, need }).map((message) => ({
          from: SHAREGPT_ROLES.get(String(message['role'])) ?? String(message['role']),
          value: textOf(message['content'] ?? ''),
        })),
      };
    case 'alpaca': {
      const instruction = read('instruction') ?? read('text') ?? lastUserContent({ sampleId, read });
      if (instruction === undefined) throw missing({ format, sampleId, name: 'instruction (or text, or messages)' });
      const completion = read('output') ?? read('label') ?? completionContent({ sampleId, read });
      return { instruction: textOf(instruction), input: textOf(read('input') ?? ''), output: textOf(completion ?? '') };
    }
  }
}

/** A Map, not an object: a role named `__proto__` or `constructor` must not read the prototype's. */
const SHAREGPT_ROLES: ReadonlyMap<string, string> = new Map([
  ['system', 'system'],
  ['user', 'human'],
  ['assistant', 'gpt'],
  ['tool', 'tool'],
]);

function conversation({ sampleId, read, need }: { sampleId: string; read: (name: string) => JsonValue | undefined; need: (name: string) => JsonValue }): Message[] {
  const messages = messageList({ sampleId, value: need('messages') });
  const completion = read('completion');
  return completion === undefined ? messages : [...messages, assistantMessage({ sampleId, value: completion })];
}

function lastUserContent({ sampleId, read }: { sampleId: string; read: (name: string) => JsonValue | undefined }): JsonValue | undefined {
  const value = read('messages');
  if (value === undefined) return undefined;
  return messageList({ sampleId, value }).filter((message) => message['role'] === 'user').at(-1)?.['content'];
}

function completionContent({ sampleId, read }: { sampleId: string; read: (name: string) => JsonValue | undefined }): JsonValue | undefined {
  const value = read('completion');
  return value === undefined ? undefined : assistantMessage({ sampleId, value })['content'];
}

function messageList({ sampleId, value }: { sampleId: string; value: JsonValue }): Message[] {
  if (!Array.isArray(value) || !value.every(isMessage)) {
    throw new SeedError('unprocessable_entity', `sample "${sampleId}": messages must be an array of objects with a string role`);
  }
  return value as Message[];
}

function assistantMessage({ sampleId, value }: { sampleId: string; value: JsonValue }): Message {
  if (typeof value === 'string') return { role: 'assistant', content: value };
  if (isMessage(value)) return value;
  throw new SeedError('unprocessable_entity', `sample "${sampleId}": expected an assistant message or a string`);
}

function isMessage(value: JsonValue): value is Message {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && typeof (value as Message)['role'] === 'string';
}

/** Text of a content value: strings as they are, content parts joined, anything else as JSON. */
function textOf(value: JsonValue): string {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    return value.map((part) => (part !== null && typeof part === 'object' && !Array.isArray(part) && typeof part['text'] === 'string' ? part['text'] : '')).join('');
  }
  return JSON.stringify(value);
}

function missing({ format, sampleId, name }: { format: ExportFormat; sampleId: string; name: string }): SeedError {
  return new SeedError('unprocessable_entity', `sample "${sampleId}" has no field "${name}", which the ${format} format needs (or it was not selected)`);
}
