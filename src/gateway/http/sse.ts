/**
 * Writes chat completion chunks to the client as OpenAI's server-sent events: `data: {chunk}`
 * per chunk, `data: [DONE]` at the end. A failure after the first byte ends the stream with an
 * error event (`data: {"error":{…}}`, which the OpenAI SDKs raise as an APIError). A slow
 * reader gets backpressure, never an unbounded buffer.
 */
import type { ServerResponse } from 'node:http';
import { toSeedError } from '../../errors.ts';
import { streamChunkFrames, type StreamChunk } from '../../wire/stream-chunk.ts';
import { clientLeft } from '../calls.ts';
import type { CallSignal } from '../../abort.ts';

export async function writeEventStream(input: {
  response: ServerResponse;
  headers: Record<string, string>;
  /** Batches of chunks; each batch leaves in one write. */
  chunks: AsyncIterable<readonly StreamChunk[]>;
  /**
   * Whether no chunk is left to come, and the end waits only for the call's record to be durable
   * (the ledger's journal writes at the end of the turn).
   */
  ended?: () => boolean;
  signal: CallSignal;
  /**
   * How long a write may wait for the client to read before the connection is closed. A
   * client that never reads would otherwise hold this response and its upstream forever.
   */
  stallTimeoutMs: number;
}): Promise<void> {
  const { response } = input;
  response.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    // No `connection` header of our own: Node sends `keep-alive`, or `close` when the server is
    // shutting down (set by Fastify then), which a fixed value here would override.
    'x-accel-buffering': 'no',
    ...input.headers,
  });
  // Chunks arrive in batches, one per upstream read (or several reads when the client is slower
  // than the upstream). Writes are corked and flushed together, one syscall for many:
  // - the first batch is flushed once the microtasks of the read that brought it have run
  //   (`process.nextTick`), so the time to first token is unchanged; when that read also held
  //   the end of the stream (short answers, cached or fast upstreams), the end of the response
  //   (`[DONE]` and the chunked-encoding terminator) joins the same write: one packet instead of two.
  //   The end leaves once the call's record is durable, at the end of the turn; a first batch
  //   that is also the last waits for it (`ended`), as it is only the rest of the same turn;
  // - later batches are flushed at the end of the event loop's turn (`setImmediate`), so a fast
  //   upstream's reads, which come one after another within a turn, leave in one write.
  //   (Without the cork, CPU per streamed call rose by a quarter in the benchmark.)
  // Within a batch, plain chunks are the upstream's bytes and go out as they are; the frames of
  // parsed chunks are joined into one string.
  let first = true;
  let corked = false;
  const uncork = () => {
    corked = false;
    if (!response.destroyed) response.uncork();
  };
  // `end` uncorks whatever is corked: a first batch with nothing after it goes out with it.
  const uncorkFirst = () => {
    if (input.ended?.() !== true) uncork();
  };
  /** Writes a batch; false when the socket's buffer is full (wait for `drain`). */
  const writeBatch = (batch: readonly StreamChunk[]): boolean => {
    const now = first;
    first = false;
    if (!corked) {
      corked = true;
      response.cork();
      if (now) process.nextTick(uncorkFirst);
      else setImmediate(uncork);
    }
    let flowing = true;
    let text = '';
    for (const chunk of batch) {
      const frames = streamChunkFrames(chunk);
      if (typeof frames === 'string') text += frames;
      else {
        if (text !== '') flowing = response.write(text);
        text = '';
        flowing = response.write(frames);
      }
    }
    if (text !== '') flowing = response.write(text);
    return flowing;
  };
  let last: string | undefined;
  try {
    // The iterator must always be consumed (not just returned), so the call is settled and recorded.
    for await (const batch of input.chunks) {
      if (clientLeft(input.signal) || response.destroyed) {
        // Leaving the loop settles and records the call at once; a connection destroyed a
        // moment ago has not emitted `close` (which aborts the signal) yet, and would be
        // recorded as a complete stream.
        if (!clientLeft(input.signal)) await closed(response);
        break;
      }
      if (!writeBatch(batch)) await drained(response, input.stallTimeoutMs);
    }
    last = 'data: [DONE]\n\n';
  } catch (thrown) {
    const error = toSeedError(thrown);
    last = `data: ${JSON.stringify(error.toBody())}\n\n`;
  } finally {
    // The last frame goes out with the end of the response: one write, not two.
    if (!response.destroyed) response.end(clientLeft(input.signal) ? undefined : last);
  }
}

/**
 * Waits until the client has read what was written (`drain`), the connection closed, or the
 * stall timeout passed, which closes the connection. Every listener is removed afterwards:
 * `events.once` per write left a `close` listener behind on each slow write.
 */
function drained(response: ServerResponse, stallTimeoutMs: number): Promise<void> {
  return new Promise((resolvePromise) => {
    const done = () => {
      clearTimeout(timer);
      response.off('drain', done);
      response.off('close', done);
      resolvePromise();
    };
    // Destroying emits `close`, which ends the wait (and aborts the call's signal first).
    const timer = setTimeout(() => response.destroy(), stallTimeoutMs);
    response.on('drain', done);
    response.on('close', done);
  });
}

/** Resolves when the response's connection has closed (`close` is emitted once, after destroy). */
function closed(response: ServerResponse): Promise<void> {
  return new Promise((resolvePromise) => response.once('close', () => resolvePromise()));
}
