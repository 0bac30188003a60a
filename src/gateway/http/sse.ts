/**
 * Writes chat completion chunks to the client as OpenAI's server-sent events: `data: {chunk}`
 * per chunk, `data: [DONE]` at the end. A failure after the first byte ends the stream with an
 * error event (`data: {"error":{…}}`, which the OpenAI SDKs raise as an APIError). A slow
 * reader gets backpressure, never an unbounded buffer.
 */
import { once } from 'node:events';
import type { ServerResponse } from 'node:http';
import { toSeedError } from '../../errors.ts';
import type { ChatCompletionChunk } from '../../wire/openai.ts';

export async function writeEventStream(input: {
  response: ServerResponse;
  headers: Record<string, string>;
  chunks: AsyncIterable<ChatCompletionChunk>;
  signal: AbortSignal;
}): Promise<void> {
  const { response } = input;
  response.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
    ...input.headers,
  });
  const write = async (text: string): Promise<void> => {
    if (response.destroyed || input.signal.aborted) return;
    if (!response.write(text)) {
      await Promise.race([once(response, 'drain'), once(response, 'close')]);
    }
  };
  try {
    // The iterator must always be consumed (not just returned), so the call is settled and recorded.
    for await (const chunk of input.chunks) {
      if (input.signal.aborted || response.destroyed) break;
      await write(`data: ${JSON.stringify(chunk)}\n\n`);
    }
    await write('data: [DONE]\n\n');
  } catch (thrown) {
    const error = toSeedError(thrown);
    await write(`data: ${JSON.stringify(error.toBody())}\n\n`);
  } finally {
    if (!response.destroyed) response.end();
  }
}
