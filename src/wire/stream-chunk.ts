/**
 * A part of a chat completion stream as it travels from an adapter to the client: a parsed
 * chunk, a run of plain content chunks still as the upstream's bytes, or a usage chunk as its
 * bytes with the counts read from them. Most chunks of a stream only carry a few characters of
 * content the gateway relays without reading; decoding, parsing and framing each of them again
 * (and collecting the strings and objects afterwards) was most of a streamed call's cost. An
 * adapter that can tell such chunks apart without parsing them (the OpenAI-compatible one,
 * src/providers/openai-stream.ts) passes them on as `PlainChunks` and the usage chunk as a
 * `UsageChunk`; every other chunk is a parsed `ChatCompletionChunk`.
 */
import { toJsonText, withJsonText } from './json-text.ts';
import type { ChatCompletionChunk, Usage } from './openai.ts';

const FRAME_END = '\n\n';
const DATA_FIELD = 'data: ';

/**
 * One or more plain content chunks, as the server-sent events the client receives:
 * `data: {chunk}\n\n` each, exactly as the upstream sent them. The adapter that made it vouches
 * for what the gateway relies on: every chunk is one line of valid JSON in valid UTF-8, a chunk
 * object with at least one choice, no `error`, and `usage` absent or null (a choice's
 * `finish_reason` may be set: the adapter itself notes that the stream finished). So the
 * gateway writes the bytes as they are and only counts `completionChars` toward its usage
 * estimate.
 */
export class PlainChunks {
  constructor(
    /** The chunks' SSE frames, back to back (a view of the upstream's read; not to be modified). */
    readonly frames: Uint8Array,
    /** Characters of `content` and tool-call `arguments` in them (for the estimate when no usage is reported). */
    readonly completionChars: number,
  ) {}

  /**
   * The chunks parsed, for the few uses that need values (payload capture). Parses on every
   * call; the bytes were validated when they arrived, so this does not throw.
   */
  parse(): ChatCompletionChunk[] {
    return parsedFrames(this.frames);
  }
}

/** The token counts a usage chunk reports, as the gateway settles a call on them. */
export interface ReportedUsage {
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
}

/**
 * A usage chunk (`"choices":[]` and a `usage` object: the last chunk of an OpenAI-format stream
 * when usage is asked for) still as the upstream's bytes, with the counts the adapter read from
 * it. The adapter vouches for it as for `PlainChunks` (one line of valid JSON in valid UTF-8, no
 * `error`) and for `usage` being what parsing the chunk would give. The gateway always asks the
 * upstream for usage and relays this chunk only to a client that asked for it too; most calls
 * only read the counts.
 */
export class UsageChunk {
  constructor(
    /** The chunk's SSE frame, `data: {chunk}\n\n` (a view of the upstream's read; not to be modified). */
    readonly frame: Uint8Array,
    readonly usage: ReportedUsage,
  ) {}

  /** The chunk parsed (payload capture); the bytes were validated when they arrived, so this does not throw. */
  parse(): ChatCompletionChunk {
    return parsedFrames(this.frame)[0] as ChatCompletionChunk;
  }
}

/** The chunks of SSE frames an adapter validated (`data: {chunk}\n\n` each), parsed, each keeping its text. */
function parsedFrames(frames: Uint8Array): ChatCompletionChunk[] {
  const chunks: ChatCompletionChunk[] = [];
  for (const frame of Buffer.from(frames.buffer, frames.byteOffset, frames.byteLength).toString('utf8').split(FRAME_END)) {
    if (frame === '') continue;
    const text = frame.slice(DATA_FIELD.length);
    chunks.push(withJsonText(JSON.parse(text) as ChatCompletionChunk, text));
  }
  return chunks;
}

/**
 * The counts the gateway settles a call on, from an OpenAI-format `usage` (a missing count is 0):
 * for a non-streaming answer and for a streamed chunk that was parsed.
 */
export function reportedUsage(usage: Usage): ReportedUsage {
  return {
    promptTokens: usage.prompt_tokens ?? 0,
    completionTokens: usage.completion_tokens ?? 0,
    cachedTokens: usage.prompt_tokens_details?.cached_tokens ?? 0,
  };
}

/**
 * Characters of `content` and tool-call `arguments` in a parsed chunk's choices, for the usage
 * estimate. Only string values count, as in the adapter's scan of plain chunks, and no shape of
 * a choice throws: a chunk is checked only for what the gateway acts on (a `choices` array), and
 * an upstream may send a choice without a `delta`, or with fields of other types, which the
 * client then gets as it was sent.
 */
export function chunkCompletionChars(chunk: ChatCompletionChunk): number {
  let chars = 0;
  for (const choice of chunk.choices as unknown[]) {
    const delta = fieldOf(choice, 'delta');
    const content = fieldOf(delta, 'content');
    if (typeof content === 'string') chars += content.length;
    const calls = fieldOf(delta, 'tool_calls');
    if (!Array.isArray(calls)) continue;
    for (const call of calls as unknown[]) {
      const args = fieldOf(fieldOf(call, 'function'), 'arguments');
      if (typeof args === 'string') chars += args.length;
    }
  }
  return chars;
}

/** Whether a parsed chunk has a choice with a finish reason (the stream reached its end). */
export function chunkFinishes(chunk: ChatCompletionChunk): boolean {
  for (const choice of chunk.choices as unknown[]) if (fieldOf(choice, 'finish_reason')) return true;
  return false;
}

function fieldOf(value: unknown, key: string): unknown {
  return value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined;
}

/** A part of a stream: a parsed chunk, or plain content chunks or a usage chunk not parsed (yet). */
export type StreamChunk = ChatCompletionChunk | PlainChunks | UsageChunk;

/**
 * The part as server-sent events: the upstream's own frames for plain chunks and usage chunks,
 * else one `data:` frame with the chunk's JSON (the upstream's text when it has one, json-text.ts).
 */
export function streamChunkFrames(chunk: StreamChunk): Uint8Array | string {
  if (chunk instanceof PlainChunks) return chunk.frames;
  if (chunk instanceof UsageChunk) return chunk.frame;
  return `${DATA_FIELD}${toJsonText(chunk)}${FRAME_END}`;
}

/** The part's chunks as values, parsing them if they were not. */
export function parsedChunks(chunk: StreamChunk): ChatCompletionChunk[] {
  if (chunk instanceof PlainChunks) return chunk.parse();
  if (chunk instanceof UsageChunk) return [chunk.parse()];
  return [chunk];
}
