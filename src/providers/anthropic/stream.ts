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
 * Translates a stream, batch by batch (one batch per upstream read; see `sseEventBatches`).
 * Throws a SeedError for an `error` event, a malformed event, or a stream that ends before
 * `message_stop` (a truncated answer must not pass for a complete one).
 *
 * @example
 * const events = sseEventBatches(response, signal);
 * for await (const chunks of toChatCompletionChunks({ events, createdMs: now(), responseFormatTool: undefined, label })) {
 *   for (const chunk of chunks) process.stdout.write(chunk.choices[0]?.delta.content ?? '');
 * }
 */
export async function* toChatCompletionChunks(input: {
  events: AsyncIterable<ReadonlyArray<{ data: string }>>;
  createdMs: number;
  responseFormatTool: string | undefined;
  /** Names the deployment in error messages. */
  label: string;
}): AsyncGenerator<ChatCompletionChunk[]> {
  const translate = chunkTranslator(input);
  for await (const messages of input.events) {
    const chunks: ChatCompletionChunk[] = [];
    let stopped = false;
    let failure: unknown = null;
    try {
      for (const message of messages) {
        stopped = translate(message.data, chunks);
        if (stopped) break;
      }
    } catch (error) {
      failure = error;
    }
    // What arrived before a failure in the same read still reaches the client, then the error.
    if (chunks.length > 0) yield chunks;
    if (failure !== null) throw failure;
    if (stopped) return;
  }
  throw new SeedError('upstream_error', `Deployment ${input.label} ended the stream before message_stop.`);
}

/**
 * The translation state of one stream: a function that takes one event's data, appends the
 * chunks it becomes to `out`, and returns true at `message_stop`.
 */
function chunkTranslator(input: { createdMs: number; responseFormatTool: string | undefined; label: string }) {
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

  return (data: string, out: ChatCompletionChunk[]): boolean => {
    const event = parseEvent({ data, label: input.label });
    if (event === undefined || event.type === 'ping') return false;
    if (event.type === 'error') throw anthropicStreamError({ ...event.error, label: input.label });
    if (event.type === 'message_start') {
      identity = { id: event.message.id, model: event.message.model, created: Math.floor(input.createdMs / 1000) };
      usage = event.message.usage ?? {};
      out.push(chunk({ role: 'assistant', content: '' }));
      return false;
    }
    if (identity === undefined) {
      throw new SeedError('upstream_invalid_response', `Deployment ${input.label} streamed ${event.type} before message_start.`);
    }
    switch (event.type) {
      case 'content_block_start': {
        const block = event.content_block;
        if (block.type === 'text' && block.text) out.push(chunk({ content: block.text }));
        if (block.type !== 'tool_use') break;
        if (block.name === input.responseFormatTool) {
          formatBlocks.add(event.index);
          break;
        }
        const toolIndex = toolIndexByBlock.size;
        toolIndexByBlock.set(event.index, toolIndex);
        out.push(
          chunk({
            tool_calls: [{ index: toolIndex, id: block.id ?? '', type: 'function', function: { name: block.name ?? '', arguments: '' } }],
          }),
        );
        break;
      }
      case 'content_block_delta': {
        const { delta } = event;
        if (delta.type === 'text_delta' && delta.text) out.push(chunk({ content: delta.text }));
        if (delta.type !== 'input_json_delta' || !delta.partial_json) break;
        // thinking_delta, signature_delta and unknown deltas fall through here unsent: nothing leaks.
        if (formatBlocks.has(event.index)) out.push(chunk({ content: delta.partial_json }));
        const toolIndex = toolIndexByBlock.get(event.index);
        if (toolIndex !== undefined) out.push(chunk({ tool_calls: [{ index: toolIndex, function: { arguments: delta.partial_json } }] }));
        break;
      }
      case 'message_delta':
        stopReason = event.delta.stop_reason ?? stopReason;
        // message_delta usage is cumulative; fields it omits keep their message_start values.
        usage = { ...usage, ...definedFields(event.usage ?? {}) };
        break;
      case 'message_stop':
        out.push(chunk({}, toFinishReason({ stopReason, responseFormatTool: input.responseFormatTool })));
        out.push({ ...identity, object: 'chat.completion.chunk', choices: [], usage: toUsage(usage) });
        return true;
      case 'content_block_stop':
        break;
    }
    return false;
  };
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
