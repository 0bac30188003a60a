/**
 * A chunk of a chat completion stream as it travels from an adapter to the client: parsed, or
 * still the upstream's JSON text. Most chunks of a stream only carry a few characters of
 * content the gateway relays without reading; parsing each of them (and collecting the objects
 * afterwards) was most of a streamed call's per-chunk cost. An adapter that can tell such a
 * chunk apart without parsing it (the OpenAI-compatible one, src/providers/openai-chunk-scan.ts)
 * passes it on as an `UnparsedChunk`; every other chunk is a parsed `ChatCompletionChunk`.
 */
import { toJsonText, withJsonText } from './json-text.ts';
import type { ChatCompletionChunk } from './openai.ts';

/**
 * A plain content chunk, kept as the upstream's text. The adapter that made it vouches for
 * what the gateway relies on: `text` is one line of valid JSON, a chunk object with at least
 * one choice, no `error`, and `usage` and every `finish_reason` absent or null. So the gateway
 * relays it as it is and only counts `completionChars` toward its usage estimate.
 */
export class UnparsedChunk {
  constructor(
    /** The chunk's JSON, one line, exactly as the upstream sent it. */
    readonly text: string,
    /** Characters of `content` and tool-call `arguments` in it (for the estimate when no usage is reported). */
    readonly completionChars: number,
  ) {}

  /**
   * The chunk parsed, for the few uses that need the value (payload capture). Parses on every
   * call; the text was validated when it arrived, so this does not throw.
   */
  parse(): ChatCompletionChunk {
    return withJsonText(JSON.parse(this.text) as ChatCompletionChunk, this.text);
  }
}

/** A chunk on the stream path: parsed, or a plain content chunk not parsed (yet). */
export type StreamChunk = ChatCompletionChunk | UnparsedChunk;

/**
 * The chunk as one line of JSON for an SSE `data:` field: the upstream's own text when it has
 * one (json-text.ts), else serialized.
 */
export function streamChunkText(chunk: StreamChunk): string {
  return chunk instanceof UnparsedChunk ? chunk.text : toJsonText(chunk);
}

/** The chunk as a value, parsing it if it was not. */
export function parsedChunk(chunk: StreamChunk): ChatCompletionChunk {
  return chunk instanceof UnparsedChunk ? chunk.parse() : chunk;
}
