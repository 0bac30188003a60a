/**
 * Reading an OpenAI-format chat completion stream from the upstream's bytes. The usual framing
 * (`data: {chunk}\n\n`, OpenAI's, Azure's, vLLM's) is read without decoding: each event's JSON
 * is scanned in place (openai-chunk-scan.ts), and a run of plain content chunks leaves as a view
 * of the bytes that came (`PlainChunks`), ready to be written to the client as they are; the
 * scan notes a finish reason (the stream is complete even without `[DONE]`), and the usage
 * chunk leaves as its bytes with the token counts the scan read (`UsageChunk`). The other chunks
 * the gateway reads (errors, usage in any other shape) are decoded and parsed. At the first byte
 * of any other framing (`\r\n` line ends, `event:` or `id:` fields, `data:` without the space,
 * data over several lines; comments and blank lines stay on the fast path), the rest of the
 * stream goes through a general SSE parser and every chunk is parsed: correct for every server,
 * fast for the common ones.
 */
import { isUtf8 } from 'node:buffer';
import { TextDecoder } from 'node:util';
import { createParser, type EventSourceParser } from 'eventsource-parser';
import { SeedError } from '../errors.ts';
import { withJsonText } from '../wire/json-text.ts';
import type { ChatCompletionChunk } from '../wire/openai.ts';
import { isTokenCount } from '../wire/chat-completion-check.ts';
import { chunkFinishes, PlainChunks, UsageChunk, type StreamChunk } from '../wire/stream-chunk.ts';
import { decodedBody, openAIErrorMessage, type BodyBatches, type BodyDecoder, type UpstreamResponse } from './http.ts';
import { PlainChunkScanner, USAGE_ONLY } from './openai-chunk-scan.ts';
import type { CallSignal } from '../abort.ts';

const LF = 0x0a;
const CR = 0x0d;
const COLON = 0x3a;
/** `data: `: the field every event of the usual framing starts with. */
const DATA_FIELD = Buffer.from('data: ');
const DONE = '[DONE]';
/**
 * `Buffer#indexOf` for one byte, called on any Uint8Array: `memchr` in C++ behind a fast call.
 * `TypedArray#indexOf`, V8's builtin, compares element by element: on Node 20 it took 115 ns
 * to find a byte 230 bytes on (a stream line's end) against 19. The reader looks for the end of
 * every line it cannot join with it; the scanner's short strings are read with loops instead.
 */
const indexOfByte = Buffer.prototype.indexOf as (this: Uint8Array, value: number, byteOffset: number) => number;
/** Longest start of an event kept for the next read on the fast path (bytes). */
const MAX_PENDING = 64 * 1024;

/**
 * Chunks of an OpenAI-format stream, one batch per batch of upstream reads (see `decodedBody`).
 * Plain content chunks (no usage, no error; see openai-chunk-scan.ts) pass as `PlainChunks`, the
 * upstream's bytes, and the usage chunk as a `UsageChunk`; the rest are parsed, each keeping the
 * JSON text it came from (json-text.ts), so the gateway relays every chunk without serializing it
 * again. Throws a SeedError for an event that is not a chunk, an error event, or a stream that
 * ends unfinished.
 *
 * @example
 * for await (const parts of openAIStreamChunks(response, label, signal)) {
 *   for (const part of parts) process.stdout.write(streamChunkFrames(part));
 * }
 */
export function openAIStreamChunks(response: UpstreamResponse, label: string, signal: CallSignal): BodyBatches<StreamChunk> {
  return decodedBody(response, signal, new OpenAIStreamReader(label));
}

/** The general parser a stream switches to at its first unusual byte, and the events it found. */
interface GeneralReader {
  parser: EventSourceParser;
  decoder: TextDecoder;
  events: string[];
}

/** The state of one stream between reads. */
class OpenAIStreamReader implements BodyDecoder<StreamChunk> {
  /** `[DONE]` came: nothing after it is read. */
  done = false;
  /** A chunk with a finish reason came. */
  finished = false;
  private readonly scanner = new PlainChunkScanner();
  /** The start of an event cut by the end of the last read (usual framing only). */
  private pending: Uint8Array | null = null;
  private general: GeneralReader | null = null;

  constructor(private readonly label: string) {}

  get complete(): boolean {
    return this.done;
  }

  /** Adds the parts of one read to `batch`. Throws on an event that fails the stream. */
  read(bytes: Uint8Array, batch: StreamChunk[]): void {
    if (this.general !== null) return this.readGeneral(bytes, batch);
    const data = this.pending === null ? bytes : Buffer.concat([this.pending, bytes]);
    this.pending = null;
    // Plain chunks in [runStart, at) leave together, as one view of `data`.
    let runStart = 0;
    let runChars = 0;
    let at = 0;
    while (at < data.length) {
      // A line whose start the last line's scan vouched for (`data: ` and the stream's usual
      // prefix): when it also ends as the last did, the scanner knows where, with no search.
      const joined = this.scanner.scanJoined(data, at + DATA_FIELD.length);
      if (joined >= 0) {
        runChars += joined;
        at = this.scanner.lineEnd + 2;
        continue;
      }
      if (data[at] === LF) {
        // A blank line between events (after a comment, or a third line end) dispatches nothing.
        this.flushRun(data, runStart, at, runChars, batch);
        at += 1;
        runStart = at;
        runChars = 0;
        continue;
      }
      if (data[at] === COLON) {
        // A comment line (`: keep-alive`, OpenRouter's `: OPENROUTER PROCESSING`): skipped, like
        // the general parser does. Not when a CR in it would end the line earlier.
        const commentEnd = indexOfByte.call(data, LF, at);
        if (commentEnd === -1) {
          this.flushRun(data, runStart, at, runChars, batch);
          this.pending = data.subarray(at);
          return;
        }
        if (!hasByte(data, CR, at, commentEnd)) {
          this.flushRun(data, runStart, at, runChars, batch);
          at = commentEnd + 1;
          runStart = at;
          runChars = 0;
          continue;
        }
      }
      if (!hasBytesAt(data, at, DATA_FIELD)) {
        this.flushRun(data, runStart, at, runChars, batch);
        if (data.length - at < DATA_FIELD.length && isDataFieldStart(data, at)) this.pending = data.subarray(at);
        else this.readGeneral(data.subarray(at), batch);
        return;
      }
      const lineEnd = indexOfByte.call(data, LF, at + DATA_FIELD.length);
      if (lineEnd === -1 || lineEnd + 1 === data.length) {
        // The event goes on in the next read. An event longer than MAX_PENDING (a huge tool-call
        // argument) goes to the general parser instead, which reads it incrementally: joining
        // the pending bytes to every read would copy it over and over.
        this.flushRun(data, runStart, at, runChars, batch);
        if (data.length - at > MAX_PENDING) this.readGeneral(data.subarray(at), batch);
        else this.pending = data.subarray(at);
        return;
      }
      const dataStart = at + DATA_FIELD.length;
      if (data[lineEnd + 1] === LF) {
        const chars = this.scanner.scan(data, dataStart, lineEnd);
        if (chars >= 0) {
          if (this.scanner.finished) this.finished = true;
          runChars += chars;
          at = lineEnd + 2;
          continue;
        }
        if (chars === USAGE_ONLY) {
          // Relayed as it came only in valid UTF-8 (see flushRun); else parsed below, as any other chunk.
          const frame = data.subarray(at, lineEnd + 2);
          if (isUtf8(frame)) {
            this.flushRun(data, runStart, at, runChars, batch);
            batch.push(new UsageChunk(frame, this.scanner.usage));
            at = lineEnd + 2;
            runStart = at;
            runChars = 0;
            continue;
          }
        }
      }
      this.flushRun(data, runStart, at, runChars, batch);
      if (data[lineEnd + 1] !== LF || hasByte(data, CR, dataStart, lineEnd)) {
        // A second line in the event, or a CR (a line end of its own in SSE): not the usual framing.
        this.readGeneral(data.subarray(at), batch);
        return;
      }
      // `[DONE]` as it usually comes is known by its bytes; any other event is decoded.
      if (isDone(data, dataStart, lineEnd)) this.done = true;
      else this.event(Buffer.from(data.buffer, data.byteOffset + dataStart, lineEnd - dataStart).toString('utf8'), batch);
      at = lineEnd + 2;
      runStart = at;
      runChars = 0;
      if (this.done) return;
    }
    this.flushRun(data, runStart, at, runChars, batch);
  }

  /**
   * The stream's body ended: an event not closed by a blank line still counts, as in
   * `sseEventBatches`. Some compatible servers omit `[DONE]`; a stream that reached a
   * finish_reason is complete, any other is cut short.
   */
  end(batch: StreamChunk[]): void {
    if (this.done) return;
    if (this.pending !== null) {
      const pending = this.pending;
      this.pending = null;
      this.readGeneral(pending, batch);
    }
    const general = this.general;
    if (general !== null) {
      general.parser.feed(general.decoder.decode());
      general.parser.feed('\n\n');
      this.takeEvents(general, batch);
    }
    if (!this.done && !this.finished) {
      throw new SeedError('upstream_invalid_response', `Deployment ${this.label} ended the stream before it finished.`);
    }
  }

  /**
   * Plain chunks leave as a view of the bytes, once the bytes are known to be UTF-8 (the scan
   * looks at the JSON structure only). Invalid UTF-8 goes the way the general path takes it:
   * decoded with replacement characters, then parsed.
   */
  private flushRun(data: Uint8Array, start: number, end: number, completionChars: number, batch: StreamChunk[]): void {
    if (end <= start) return;
    const frames = data.subarray(start, end);
    if (isUtf8(frames)) {
      batch.push(new PlainChunks(frames, completionChars));
      return;
    }
    for (const frame of Buffer.from(frames.buffer, frames.byteOffset, frames.byteLength).toString('utf8').split('\n\n')) {
      if (frame !== '') this.event(frame.slice(DATA_FIELD.length), batch);
    }
  }

  /** Reads the rest of the stream with the general SSE parser. */
  private readGeneral(bytes: Uint8Array, batch: StreamChunk[]): void {
    let general = this.general;
    if (general === null) {
      const events: string[] = [];
      general = { parser: createParser({ onEvent: (event) => events.push(event.data) }), decoder: new TextDecoder(), events };
      this.general = general;
    }
    general.parser.feed(general.decoder.decode(bytes, { stream: true }));
    this.takeEvents(general, batch);
  }

  private takeEvents(general: GeneralReader, batch: StreamChunk[]): void {
    const events = general.events.splice(0);
    for (const data of events) {
      if (this.done) return;
      this.event(data, batch);
    }
  }

  /** One event's data, decoded: `[DONE]`, nothing, or a chunk to parse. */
  private event(text: string, batch: StreamChunk[]): void {
    const data = text.trim();
    if (data === '') return;
    if (data === DONE) {
      this.done = true;
      return;
    }
    const chunk = parseChunk(data, this.label);
    if (chunkFinishes(chunk)) this.finished = true;
    // Chunks with neither choices nor usage (Azure's prompt-filter results, sent first with an
    // empty id and object) carry nothing of the canonical format: clients do not get them.
    if (chunk.choices.length === 0 && !chunk.usage) return;
    batch.push(chunk);
  }
}

const DONE_BYTES = Buffer.from(DONE);

/** Whether the bytes in `[from, to)` are exactly `[DONE]`. */
function isDone(data: Uint8Array, from: number, to: number): boolean {
  return to - from === DONE_BYTES.length && hasBytesAt(data, from, DONE_BYTES);
}

function hasByte(data: Uint8Array, byte: number, from: number, to: number): boolean {
  for (let at = from; at < to; at += 1) if (data[at] === byte) return true;
  return false;
}

/** Whether `data` holds all of `expected` from `at` (a loop: these are a few bytes). */
function hasBytesAt(data: Uint8Array, at: number, expected: Uint8Array): boolean {
  if (data.length - at < expected.length) return false;
  for (let index = 0; index < expected.length; index += 1) if (data[at + index] !== expected[index]) return false;
  return true;
}

/** Whether the bytes from `at` to the end are the start of `data: ` (the rest comes in the next read). */
function isDataFieldStart(data: Uint8Array, at: number): boolean {
  for (let index = 0; at + index < data.length; index += 1) if (data[at + index] !== DATA_FIELD[index]) return false;
  return true;
}

function parseChunk(data: string, label: string): ChatCompletionChunk {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    throw new SeedError('upstream_invalid_response', `Deployment ${label} sent a stream event that is not JSON.`);
  }
  if (!isChunk(value)) {
    const { message } = openAIErrorMessage(data);
    if (value !== null && typeof value === 'object' && 'error' in value) {
      throw new SeedError('upstream_error', `Deployment ${label} failed mid-stream: ${message}`);
    }
    throw new SeedError('upstream_invalid_response', `Deployment ${label} sent a stream event that is not a chat.completion.chunk.`);
  }
  // Multi-line data (pretty-printed JSON over several `data:` lines) cannot be written back as
  // one SSE line: such a chunk is serialized again instead.
  return data.includes('\n') ? value : withJsonText(value, data);
}

/**
 * A cheap structural check per chunk: a full schema parse of every chunk costs more than the
 * rest of the stream path, and the fields the gateway acts on are exactly these: a `choices`
 * array (read by `chunkCompletionChars` and `chunkFinishes`, which take any shape of choice, as
 * the scan of plain chunks does) and a `usage` whose counts are what the call settles on. Counts
 * that are not token counts (`isTokenCount`) would put negative, fractional or unstorable tokens
 * and costs in the ledger: such a chunk is not vouched for, as the scan reads only digits.
 */
function isChunk(value: unknown): value is ChatCompletionChunk {
  if (value === null || typeof value !== 'object') return false;
  const record = value as Record<string, unknown>;
  return Array.isArray(record.choices) && (record.usage === undefined || record.usage === null || isStreamedUsage(record.usage));
}

function isStreamedUsage(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const usage = value as Record<string, unknown>;
  if (!isOptionalCount(usage.prompt_tokens) || !isOptionalCount(usage.completion_tokens)) return false;
  // Details of another kind carry no cached count (0), as the scan of a usage chunk reads them.
  const details = usage.prompt_tokens_details;
  if (details === null || typeof details !== 'object') return true;
  return isOptionalCount((details as Record<string, unknown>).cached_tokens);
}

function isOptionalCount(value: unknown): boolean {
  return value === undefined || isTokenCount(value);
}
