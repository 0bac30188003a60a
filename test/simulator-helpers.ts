/**
 * Small HTTP helpers for the simulator's tests: one POST returning status, headers and text,
 * and an SSE parser (eventsource-parser, the one the gateway uses) for stream bodies.
 */
import { request, type Dispatcher } from 'undici';
import { createParser, type EventSourceMessage } from 'eventsource-parser';

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** Milliseconds from sending to the response headers, and to the end of the body. */
  headersMs: number;
  totalMs: number;
}

export async function call(input: {
  url: string;
  path: string;
  body?: unknown;
  rawBody?: string;
  method?: 'GET' | 'POST' | 'DELETE';
  headers?: Record<string, string>;
  dispatcher?: Dispatcher;
}): Promise<Answer> {
  const started = performance.now();
  const hasBody = input.body !== undefined || input.rawBody !== undefined;
  const response = await request(`${input.url}${input.path}`, {
    method: input.method ?? (hasBody ? 'POST' : 'GET'),
    headers: { ...(hasBody ? { 'content-type': 'application/json' } : {}), ...input.headers },
    ...(hasBody ? { body: input.rawBody ?? JSON.stringify(input.body) } : {}),
    ...(input.dispatcher ? { dispatcher: input.dispatcher } : {}),
  });
  const headersMs = performance.now() - started;
  const text = await response.body.text();
  return { status: response.statusCode, headers: response.headers, text, headersMs, totalMs: performance.now() - started };
}

export function sseEvents(text: string): EventSourceMessage[] {
  const events: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (event) => events.push(event) });
  parser.feed(text);
  return events;
}

/** The JSON payloads of an OpenAI stream, without the final `[DONE]`. */
export function openAIChunks(text: string): Array<Record<string, unknown>> {
  return sseEvents(text)
    .filter((event) => event.data !== '[DONE]')
    .map((event) => JSON.parse(event.data) as Record<string, unknown>);
}

export const userMessages = [{ role: 'user', content: 'Tell me about the river.' }];

export const anthropicHeaders = { 'x-api-key': 'sk-ant-test', 'anthropic-version': '2023-06-01' };

export async function waitFor(input: { check: () => boolean; what: string; timeoutMs?: number }): Promise<void> {
  const deadline = Date.now() + (input.timeoutMs ?? 2_000);
  while (!input.check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${input.what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
