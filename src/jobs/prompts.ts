/**
 * The input of a generation job: JSONL, one prompt a line. A line is either
 * `{"id"?, "messages": [...]}` (OpenAI chat messages, sent as they are) or
 * `{"id"?, "prompt": "…", "system"?: "…"}` (one user message, after an optional system one).
 * Without an `id`, a line's number is its id. Every problem is reported with its line number,
 * before any call is made.
 */
import { SeedError } from '../errors.ts';

/** One chat message as the gateway takes it; the gateway validates it in full. */
export type PromptMessage = { readonly role: string; readonly content?: unknown } & Readonly<Record<string, unknown>>;

export interface PromptItem {
  readonly id: string;
  readonly messages: readonly PromptMessage[];
}

/** Longest `id` a prompt may have: it goes into the call's metadata, whose values OpenAI caps at 512 characters. */
const MAX_ID_LENGTH = 512;

function invalid(where: string, message: string): SeedError {
  return new SeedError('invalid_request', `${where}: ${message}`);
}

function messagesOf(line: Record<string, unknown>, where: string): PromptMessage[] {
  const { messages, prompt, system } = line;
  if (messages !== undefined) {
    if (prompt !== undefined || system !== undefined) throw invalid(where, 'give either "messages" or "prompt" (with an optional "system"), not both');
    if (!Array.isArray(messages) || messages.length === 0) throw invalid(where, '"messages" must be a non-empty array');
    messages.forEach((message: unknown, index) => {
      if (message === null || typeof message !== 'object' || Array.isArray(message) || typeof (message as { role?: unknown }).role !== 'string') {
        throw invalid(where, `messages[${index}] must be an object with a string "role"`);
      }
    });
    return messages as PromptMessage[];
  }
  if (typeof prompt !== 'string' || prompt.length === 0) throw invalid(where, 'expected "messages" (an array) or "prompt" (a non-empty string)');
  if (system !== undefined && typeof system !== 'string') throw invalid(where, '"system" must be a string');
  return [...(system ? [{ role: 'system', content: system }] : []), { role: 'user', content: prompt }];
}

/**
 * Parses a JSONL prompt file.
 *
 * @example
 * parsePrompts('{"id":"a","prompt":"Name a colour."}\n{"messages":[{"role":"user","content":"Hi"}]}\n', 'prompts.jsonl');
 * // → [{ id: 'a', messages: [{ role: 'user', content: 'Name a colour.' }] }, { id: '2', messages: [...] }]
 */
export function parsePrompts(text: string, file = 'input'): PromptItem[] {
  const items: PromptItem[] = [];
  const seen = new Set<string>();
  const lines = text.split('\n');
  for (let index = 0; index < lines.length; index += 1) {
    const raw = (lines[index] as string).trim();
    if (raw === '') continue;
    const where = `${file}:${index + 1}`;
    let line: unknown;
    try {
      line = JSON.parse(raw);
    } catch {
      throw invalid(where, 'not valid JSON');
    }
    if (line === null || typeof line !== 'object' || Array.isArray(line)) throw invalid(where, 'expected a JSON object');
    const record = line as Record<string, unknown>;
    const rawId = record['id'];
    if (rawId !== undefined && typeof rawId !== 'string' && typeof rawId !== 'number') throw invalid(where, '"id" must be a string or a number');
    const id = rawId === undefined ? String(index + 1) : String(rawId);
    if (id.length === 0 || id.length > MAX_ID_LENGTH) throw invalid(where, `"id" must be 1–${MAX_ID_LENGTH} characters`);
    if (seen.has(id)) throw invalid(where, `id "${id}" appears twice`);
    seen.add(id);
    items.push({ id, messages: messagesOf(record, where) });
  }
  if (items.length === 0) throw new SeedError('invalid_request', `${file}: no prompts (expected one JSON object a line)`);
  return items;
}
