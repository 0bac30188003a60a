/**
 * Anthropic stream events → OpenAI `chat.completion.chunk`s. Anthropic numbers content blocks
 * (text, thinking and tool_use alike); OpenAI numbers tool calls only, so tool-call indexes are
 * counted here. The last two chunks are the one with `finish_reason` and the usage chunk
 * (empty `choices`), which the gateway forwards only when the client asked for usage.
 */
import { SeedError } from '../../errors.ts';
import type { ChatCompletionChunk } from '../../wire/openai.ts';
import { toFinishReason, toUsage } from './response.ts';
import { anthropicStreamError } from './upstream.ts';
import { anthropicStreamEventSchema, type AnthropicStreamEvent, type AnthropicUsage } from './wire.ts';

type Delta = ChatCompletionChunk['choices'][number]['delta'];

const KNOWN_EVENTS = new Set<string>(anthropicStreamEventSchema.options.map((option) => option.shape.type.value));

interface StreamIdentity {
  id: string;
  model: string;
  created: number;
}

/**
 * Translates a stream. Throws a SeedError for an `error` event, a malformed event, or a stream
 * that ends before `message_stop` (a truncated answer must not pass for a complete one).
 *
 * @example
 * for await (const chunk of toChatCompletionChunks({ events: sseEvents(response, label, signal), createdMs: now(), responseFormatTool: undefined, label })) {
 *   process.stdout.write(chunk.choices[0]?.delta.content ?? '');
 * }
 */
export async function* toChatCompletionChunks(input: {
  events: AsyncIterable<{ data: string }>;
  createdMs: number;
  responseFormatTool: string | undefined;
  /** Names the deployment in error messages. */
  label: string;
}): AsyncGenerator<ChatCompletionChunk> {
  let identity: StreamIdentity | undefined;
  let usage: AnthropicUsage = {};
  let stopReason: string | null | undefined;
  const toolIndexByBlock = new Map<number, number>();
  const formatBlocks = new Set<number>();
  const chunk = (delta: Delta, finishReason: string | null = null): ChatCompletionChunk => ({
    ...(identity as StreamIdentity),
    object: 'chat.completion.chunk',
    choices: [{ index: 0, delta, finish_reason: finishReason, logprobs: null }],
  });

  for await (const message of input.events) {
    const event = parseEvent({ data: message.data, label: input.label });
    if (event === undefined || event.type === 'ping') continue;
    if (event.type === 'error') throw anthropicStreamError({ ...event.error, label: input.label });
    if (event.type === 'message_start') {
      identity = { id: event.message.id, model: event.message.model, created: Math.floor(input.createdMs / 1000) };
      usage = event.message.usage ?? {};
      yield chunk({ role: 'assistant', content: '' });
      continue;
    }
    if (identity === undefined) {
      throw new SeedError('upstream_invalid_response', `Deployment ${input.label} streamed ${event.type} before message_start.`);
    }
    switch (event.type) {
      case 'content_block_start': {
        const block = event.content_block;
        if (block.type === 'text' && block.text) yield chunk({ content: block.text });
        if (block.type !== 'tool_use') break;
        if (block.name === input.responseFormatTool) {
          formatBlocks.add(event.index);
          break;
        }
        const toolIndex = toolIndexByBlock.size;
        toolIndexByBlock.set(event.index, toolIndex);
        yield chunk({
          tool_calls: [{ index: toolIndex, id: block.id ?? '', type: 'function', function: { name: block.name ?? '', arguments: '' } }],
        });
        break;
      }
      case 'content_block_delta': {
        const { delta } = event;
        if (delta.type === 'text_delta' && delta.text) yield chunk({ content: delta.text });
        if (delta.type !== 'input_json_delta' || !delta.partial_json) break;
        // thinking_delta, signature_delta and unknown deltas fall through here unsent: nothing leaks.
        if (formatBlocks.has(event.index)) yield chunk({ content: delta.partial_json });
        const toolIndex = toolIndexByBlock.get(event.index);
        if (toolIndex !== undefined) yield chunk({ tool_calls: [{ index: toolIndex, function: { arguments: delta.partial_json } }] });
        break;
      }
      case 'message_delta':
        stopReason = event.delta.stop_reason ?? stopReason;
        // message_delta usage is cumulative; fields it omits keep their message_start values.
        usage = { ...usage, ...definedFields(event.usage ?? {}) };
        break;
      case 'message_stop':
        yield chunk({}, toFinishReason({ stopReason, responseFormatTool: input.responseFormatTool }));
        yield { ...identity, object: 'chat.completion.chunk', choices: [], usage: toUsage(usage) };
        return;
      case 'content_block_stop':
        break;
    }
  }
  throw new SeedError('upstream_error', `Deployment ${input.label} ended the stream before message_stop.`);
}

function parseEvent(input: { data: string; label: string }): AnthropicStreamEvent | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(input.data);
  } catch {
    throw new SeedError('upstream_invalid_response', `Deployment ${input.label} streamed an event that is not JSON.`);
  }
  const type = (parsed as { type?: unknown } | null)?.type;
  // Anthropic may add event types; skipping unknown ones is what its versioning policy asks of clients.
  if (typeof type !== 'string' || !KNOWN_EVENTS.has(type)) return undefined;
  const result = anthropicStreamEventSchema.safeParse(parsed);
  if (!result.success) {
    throw new SeedError('upstream_invalid_response', `Deployment ${input.label} streamed a malformed ${type} event.`);
  }
  return result.data;
}

function definedFields(usage: AnthropicUsage): AnthropicUsage {
  return Object.fromEntries(Object.entries(usage).filter(([, value]) => value !== null && value !== undefined));
}
