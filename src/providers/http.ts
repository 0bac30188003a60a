/**
 * Upstream HTTP shared by every adapter: one request function over an undici pool, SSE
 * parsing, rate-limit header parsing and the mapping of transport failures and HTTP statuses
 * onto Seed error codes. Adapters add only what differs: URLs, auth headers, body shapes and
 * how their error bodies read.
 */
import type { Dispatcher } from 'undici';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { SeedError, type ErrorCode, type UpstreamQuota } from '../errors.ts';
import type { UpstreamInfo } from './types.ts';
import type { CallSignal } from '../abort.ts';
import { transportError, upstreamCall, type UpstreamBody, type UpstreamHeaders } from './upstream-call.ts';

/** What every JSON request upstream carries, before the adapter's own headers (`postJson`'s callers spread it first). */
export const JSON_REQUEST_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
});

export interface UpstreamRequest {
  dispatcher: Dispatcher;
  url: string;
  /** Every header of the request, as sent: `JSON_REQUEST_HEADERS`, then the adapter's (auth, the deployment's own). */
  headers: Readonly<Record<string, string>>;
  body: unknown;
  signal: CallSignal;
  timeoutMs: number;
  /** Names the upstream in error messages (the deployment name). */
  label: string;
}

export interface UpstreamResponse {
  status: number;
  /** Read by name (`headers.get`), decoded only when asked for (upstream-call.ts). */
  headers: UpstreamHeaders;
  /** The body as it arrives (upstream-call.ts): read it whole (`readJson`, `readErrorText`) or as batches (`decodedBody`). */
  body: UpstreamBody;
}

/**
 * POSTs JSON upstream. `timeoutMs` bounds the wait for the response headers and then each
 * idle gap in the body; the call's overall deadline is the router's (through `signal`).
 * Rejects only with SeedErrors (timeout, connection, client abort), and so does the body.
 * Not an `async` function: a suspended frame per call for a try/catch that upstream-call.ts
 * does without.
 */
export function postJson(input: UpstreamRequest): Promise<UpstreamResponse> {
  // Serialized before the request so a body that cannot be serialized (nested too deep for
  // the stack) is the request's fault, not a "connection failure" that cools the deployment down.
  let body: string;
  let target: { origin: string; path: string };
  try {
    body = JSON.stringify(input.body);
  } catch (error) {
    return Promise.reject(
      new SeedError('invalid_request', `The request body cannot be sent to deployment ${input.label}: ${(error as Error).message}.`, {
        cause: error,
      }),
    );
  }
  try {
    // A known origin and path: parsing the URL on every call cost more than the rest of this.
    target = upstreamTarget(input.url);
  } catch (error) {
    return Promise.reject(transportError({ error, label: input.label, clientSignal: input.signal }));
  }
  // undici's own timers bound the wait for headers and each idle gap in the body; the
  // caller's signal (client gone, deadline passed) aborts everything. No extra signals per call.
  return upstreamCall({
    dispatcher: input.dispatcher,
    origin: target.origin,
    path: target.path,
    headers: input.headers,
    body,
    signal: input.signal,
    timeoutMs: Math.max(1, Math.floor(input.timeoutMs)),
    label: input.label,
  });
}

/** Origin and path of each upstream URL, parsed once (the URLs come from config: a few per deployment). */
const targets = new Map<string, { origin: string; path: string }>();

function upstreamTarget(url: string): { origin: string; path: string } {
  let target = targets.get(url);
  if (target === undefined) {
    const parsed = new URL(url);
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new TypeError(`Unsupported upstream URL protocol: ${parsed.protocol}`);
    target = { origin: parsed.origin, path: `${parsed.pathname}${parsed.search}` };
    // Bounded, in case URLs ever carry per-call parts.
    if (targets.size >= 1_000) targets.clear();
    targets.set(url, target);
  }
  return target;
}

/** Reads a whole upstream body as JSON; a body that is not JSON is `upstream_invalid_response`. */
export async function readJson(response: UpstreamResponse, label: string): Promise<unknown> {
  return (await readJsonText(response, label)).value;
}

/** A JSON body and its text (json-text.ts). */
export interface JsonText {
  value: unknown;
  text: string;
}

/**
 * Like `readJson`, also returning the text, for a response relayed as it came (json-text.ts).
 * Synchronous when the body has already ended, as a small answer usually has by the time it is
 * read (it came in the headers' read): no promise, no suspended frame.
 */
export function readJsonText(response: UpstreamResponse, label: string): JsonText | Promise<JsonText> {
  const { body } = response;
  if (body.ended) return parsedJsonText(body.wholeText(), response.status, label);
  return body.text().then((text) => parsedJsonText(text, response.status, label));
}

function parsedJsonText(text: string, status: number, label: string): JsonText {
  try {
    return { value: JSON.parse(text) as unknown, text };
  } catch {
    throw new SeedError('upstream_invalid_response', `Deployment ${label} returned a body that is not JSON.`, {
      upstreamStatus: status,
    });
  }
}

/** Reads an error body as text (bounded), for adapters to extract the upstream's message. */
export async function readErrorText(response: UpstreamResponse): Promise<string> {
  try {
    const text = await response.body.text();
    return text.length > 2_000 ? `${text.slice(0, 2_000)}…` : text;
  } catch {
    return '';
  }
}

/**
 * What turns a streamed body into the parts its consumer wants, one network read at a time,
 * synchronously (see `decodedBody`).
 */
export interface BodyDecoder<T> {
  /** Adds the parts one read completes to `batch`. Throws (a SeedError) when the body is not what it should be. */
  read(bytes: Uint8Array, batch: T[]): void;
  /** The decoder has all it needs (`[DONE]` came): the rest of the body is not read. */
  readonly complete: boolean;
  /** The body ended: adds what is left to `batch`; throws for a body that ended too early. */
  end(batch: T[]): void;
}

/** Batches of a streamed body (see `decodedBody`); `return` stops reading it. */
export interface BodyBatches<T> extends AsyncIterableIterator<T[]> {
  return(): Promise<IteratorResult<T[]>>;
}

/**
 * The events of a `text/event-stream` body, in batches (see `decodedBody`), for adapters whose
 * events are not OpenAI chunks (Anthropic's).
 */
export function sseEventBatches(response: UpstreamResponse, signal: CallSignal): BodyBatches<EventSourceMessage> {
  return decodedBody(response, signal, new SseEventDecoder());
}

class SseEventDecoder implements BodyDecoder<EventSourceMessage> {
  readonly complete = false;
  private readonly decoder = new TextDecoder();
  private readonly parser = createParser({ onEvent: (event) => this.batch?.push(event) });
  private batch: EventSourceMessage[] | null = null;

  read(bytes: Uint8Array, batch: EventSourceMessage[]): void {
    this.feed(this.decoder.decode(bytes, { stream: true }), batch);
  }

  end(batch: EventSourceMessage[]): void {
    // A last event without the blank line after it still counts.
    this.feed(`${this.decoder.decode()}\n\n`, batch);
  }

  private feed(text: string, batch: EventSourceMessage[]): void {
    this.batch = batch;
    try {
      this.parser.feed(text);
    } finally {
      this.batch = null;
    }
  }
}

/**
 * A streamed body as batches of decoded parts: each batch holds what the reads that came since
 * the consumer last asked decode to (a consumer that keeps up gets one read at a time, one that
 * falls behind gets them together), and batches are never empty. Decoding is synchronous and
 * there is one promise per batch: the path from a network read to the client's socket has no
 * other asynchronous step (nested async generators cost a promise and an iterator result per
 * layer and read). A transport failure becomes a SeedError; a decoder's error comes after the
 * parts decoded before it, so what arrived before a failure still reaches the client.
 *
 * A consumer that stops early because the stream is complete (or returns once the decoder is
 * complete) lets the rest of the body drain, so the connection goes back to the pool; one that
 * stops because the client left (`signal` aborted) or the body failed aborts it, which frees
 * the upstream at once. The buffers are the network's own (undici allocates each read afresh),
 * so parts may be views of them.
 */
export function decodedBody<T>(response: UpstreamResponse, signal: CallSignal, decoder: BodyDecoder<T>): BodyBatches<T> {
  return new DecodedBody(response.body, signal, decoder);
}

const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

class DecodedBody<T> implements BodyBatches<T> {
  /** A decoder's error, thrown at the next call after the batch decoded before it. */
  private deferred: unknown = null;
  private closed = false;
  /** The consumer waiting for the next batch. */
  private waiting: { resolve: (step: IteratorResult<T[]>) => void; reject: (error: unknown) => void } | null = null;
  private readonly onArrival = () => {
    if (this.waiting !== null) this.settle();
  };

  constructor(
    private readonly body: UpstreamBody,
    private readonly signal: CallSignal,
    private readonly decoder: BodyDecoder<T>,
  ) {
    body.watch(this.onArrival);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<T[]>> {
    if (this.waiting !== null) return Promise.reject(new Error('decodedBody: next() called before the previous batch came'));
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.settle();
    });
  }

  async return(): Promise<IteratorResult<T[]>> {
    this.close();
    return DONE;
  }

  /** Answers the waiting consumer if there is anything to answer with: a batch, the end, or an error. */
  private settle(): void {
    const waiting = this.waiting;
    if (waiting === null) return;
    let step: IteratorResult<T[]> | null = null;
    let error: unknown = null;
    try {
      step = this.step();
    } catch (thrown) {
      error = thrown;
    }
    if (step === null && error === null) return;
    this.waiting = null;
    if (error !== null) {
      this.close();
      waiting.reject(error);
    } else waiting.resolve(step as IteratorResult<T[]>);
  }

  /** The next answer, or null to wait for the body. Throws the stream's error. */
  private step(): IteratorResult<T[]> | null {
    if (this.deferred !== null) {
      const deferred = this.deferred;
      this.deferred = null;
      throw deferred;
    }
    if (this.closed) return DONE;
    const { body } = this;
    const batch: T[] = [];
    if (body.waiting) {
      try {
        for (const read of body.take()) {
          this.decoder.read(read, batch);
          if (this.decoder.complete) break;
        }
      } catch (error) {
        return this.failAfter(batch, error);
      }
      if (this.decoder.complete) this.close();
      if (batch.length > 0) return { done: false, value: batch };
      if (this.closed) return DONE;
      // Reads that decode to nothing (a comment, half an event): the body's end or failure may have come too.
    }
    if (body.failed) throw body.failure;
    if (!body.ended) return null;
    try {
      this.decoder.end(batch);
    } catch (error) {
      return this.failAfter(batch, error);
    }
    this.close();
    return batch.length > 0 ? { done: false, value: batch } : DONE;
  }

  /** A decoder's error: thrown now, or after the parts decoded before it, at the next call. */
  private failAfter(batch: T[], error: unknown): IteratorResult<T[]> {
    if (batch.length === 0) throw error;
    this.deferred = error;
    return { done: false, value: batch };
  }

  /** Stops reading: the rest of a complete body drains, a failed or abandoned one is aborted. */
  private close(): void {
    if (this.closed) return;
    this.closed = true;
    const { body } = this;
    if (this.signal.aborted || body.failed) body.destroy();
    else body.drain();
  }
}

/** Milliseconds per unit of an OpenAI-style duration. */
const DURATION_UNIT_MS: Readonly<Record<string, number>> = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1, us: 0.001, µs: 0.001, ns: 0.000001 };
/** One `<number><unit>` part of a duration; a whole duration is one or more of them, nothing else. */
const DURATION_PART = /(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)/y;
const SECONDS = /^\d+(?:\.\d+)?$/;

/**
 * Parses OpenAI-style durations: `"6m0s"`, `"12ms"`, `"1.5s"`, `"1h2m"`, or a bare number of
 * seconds. Read from two headers of every answer, so it allocates no more than its matches.
 */
export function parseDurationMs(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const trimmed = text.trim();
  if (trimmed === '') return undefined;
  if (SECONDS.test(trimmed)) return toWholeNanoseconds(Number(trimmed) * 1000);
  let total = 0;
  DURATION_PART.lastIndex = 0;
  while (DURATION_PART.lastIndex < trimmed.length) {
    const match = DURATION_PART.exec(trimmed);
    if (match === null) return undefined;
    total += Number(match[1]) * (DURATION_UNIT_MS[match[2] as string] as number);
  }
  return toWholeNanoseconds(total);
}

/**
 * Milliseconds rounded to the finest unit a duration can name: a decimal times a power of ten is
 * not exact in binary (`16.243 * 1000` is 16242.999999999998), and the reset Seed read back from
 * `16.243s` must be the 16 243 ms it wrote.
 */
function toWholeNanoseconds(milliseconds: number): number {
  return Math.round(milliseconds * 1e6) / 1e6;
}

/**
 * The longest wait an upstream's headers are believed for: a day, the longest window any
 * provider's rate limits report (OpenAI's per-day limits). A longer one (a malformed header:
 * `x-ratelimit-reset-requests: 99999999999999999999` is 3 billion years) is read as a day, so
 * one bad header cannot take a deployment out of routing for longer.
 */
export const MAX_UPSTREAM_WAIT_MS = 86_400_000;

/** A wait or reset read from an upstream's headers, at most `MAX_UPSTREAM_WAIT_MS`. */
export function boundedWaitMs(milliseconds: number | undefined): number | undefined {
  return milliseconds === undefined ? undefined : Math.min(milliseconds, MAX_UPSTREAM_WAIT_MS);
}

/**
 * How long an answer asks the client to wait: `retry-after-ms`, else `retry-after` as seconds or
 * an HTTP date (a date already past is 0). A value that is empty, negative or neither form is
 * ignored, as RFC 9110 says of an invalid Retry-After, so a malformed header never means "retry
 * at once"; a wait beyond `MAX_UPSTREAM_WAIT_MS` is read as that. Read by the gateway from upstream answers and by teacher jobs from the gateway's.
 *
 * @example retryAfterMs(headersOf({ 'retry-after': '2' })) // 2000
 */
export function retryAfterMs(headers: UpstreamHeaders, now: number = Date.now()): number | undefined {
  return boundedWaitMs(requestedWaitMs(headers, now));
}

function requestedWaitMs(headers: UpstreamHeaders, now: number): number | undefined {
  const milliseconds = headers.get('retry-after-ms');
  if (milliseconds !== undefined && milliseconds.trim() !== '') {
    const value = Number(milliseconds);
    if (Number.isFinite(value) && value >= 0) return value;
  }
  const after = headers.get('retry-after');
  if (after === undefined || after.trim() === '') return undefined;
  const seconds = Number(after);
  // A number is a delay, valid or not: never also read as a date (`Date.parse('-1')` is 1 January 2001).
  if (!Number.isNaN(seconds)) return Number.isFinite(seconds) && seconds >= 0 ? seconds * 1_000 : undefined;
  const date = Date.parse(after);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

const COUNT = /^\s*\d+(?:\.\d+)?\s*$/;

/**
 * A count from a rate-limit header (`limit`, `remaining`): a plain decimal, not negative. Any
 * other text is no reading at all, never 0: `Number('')` is 0, and an empty or malformed
 * `remaining` read as 0 would hold every call to a healthy deployment until its reset.
 */
export function parseCountHeader(text: string | undefined): number | undefined {
  if (text === undefined || !COUNT.test(text)) return undefined;
  const value = Number(text);
  return Number.isFinite(value) ? value : undefined;
}

function numberHeader(headers: UpstreamResponse['headers'], name: string): number | undefined {
  return parseCountHeader(headers.get(name));
}

/**
 * Reads `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`: the headers of every
 * OpenAI-style answer. Each field is stored by name, in one order, and only when present: an
 * object filled from a table of field names (`snapshot[field] = …`) took keyed stores of
 * changing names, and cost about as much as reading the six headers (scratch micro-benchmark).
 */
export function parseRateLimit(headers: UpstreamResponse['headers']): UpstreamQuota {
  const limitRequests = numberHeader(headers, 'x-ratelimit-limit-requests');
  const remainingRequests = numberHeader(headers, 'x-ratelimit-remaining-requests');
  const resetRequestsMs = boundedWaitMs(parseDurationMs(headers.get('x-ratelimit-reset-requests')));
  const limitTokens = numberHeader(headers, 'x-ratelimit-limit-tokens');
  const remainingTokens = numberHeader(headers, 'x-ratelimit-remaining-tokens');
  const resetTokensMs = boundedWaitMs(parseDurationMs(headers.get('x-ratelimit-reset-tokens')));
  const snapshot: UpstreamQuota = {};
  if (limitRequests !== undefined) snapshot.limitRequests = limitRequests;
  if (remainingRequests !== undefined) snapshot.remainingRequests = remainingRequests;
  if (resetRequestsMs !== undefined) snapshot.resetRequestsMs = resetRequestsMs;
  if (limitTokens !== undefined) snapshot.limitTokens = limitTokens;
  if (remainingTokens !== undefined) snapshot.remainingTokens = remainingTokens;
  if (resetTokensMs !== undefined) snapshot.resetTokensMs = resetTokensMs;
  return snapshot;
}

export function upstreamInfo(response: UpstreamResponse, requestIdHeader = 'x-request-id'): UpstreamInfo {
  const requestId = response.headers.get(requestIdHeader);
  // Not a conditional spread: keys after a spread in a literal take Node 20's slow path.
  const info: UpstreamInfo = { status: response.status, rateLimit: parseRateLimit(response.headers) };
  if (requestId) info.requestId = requestId;
  return info;
}

/**
 * The Seed error for a non-2xx upstream answer. `message` is what the upstream said, already
 * extracted from its own error format by the adapter.
 */
export function upstreamStatusError(input: {
  status: number;
  headers: UpstreamResponse['headers'];
  message: string;
  label: string;
  param?: string | null;
}): SeedError {
  const { status, label } = input;
  let code: ErrorCode;
  if (status === 429) code = 'upstream_rate_limited';
  else if (status === 401 || status === 403) code = 'upstream_auth_failed';
  else if (status === 408 || status === 504) code = 'upstream_timeout';
  else if (status >= 400 && status < 500) code = 'upstream_bad_request';
  else code = 'upstream_error';
  const wait = retryAfterMs(input.headers) ?? rateLimitWait(status, input.headers);
  const detail = input.message ? `: ${input.message}` : '';
  const quota = status === 429 ? parseRateLimit(input.headers) : undefined;
  return new SeedError(code, `Deployment ${label} answered ${status}${detail}`, {
    upstreamStatus: status,
    param: code === 'upstream_bad_request' ? (input.param ?? null) : null,
    ...(wait !== undefined ? { retryAfterMs: wait } : {}),
    ...(quota !== undefined && Object.keys(quota).length > 0 ? { upstreamQuota: quota } : {}),
  });
}

/** On a 429 without retry-after, the rate-limit reset headers say when quota returns. */
function rateLimitWait(status: number, headers: UpstreamResponse['headers']): number | undefined {
  if (status !== 429) return undefined;
  const snapshot = parseRateLimit(headers);
  const waits: number[] = [];
  if (snapshot.remainingRequests === 0 && snapshot.resetRequestsMs !== undefined) waits.push(snapshot.resetRequestsMs);
  if (snapshot.remainingTokens === 0 && snapshot.resetTokensMs !== undefined) waits.push(snapshot.resetTokensMs);
  if (waits.length === 0) {
    for (const wait of [snapshot.resetRequestsMs, snapshot.resetTokensMs]) if (wait !== undefined) waits.push(wait);
  }
  return waits.length > 0 ? Math.max(...waits) : undefined;
}

/** Extracts `error.message` from an OpenAI-format error body, or returns the text itself. */
export function openAIErrorMessage(text: string): { message: string; param: string | null } {
  try {
    const parsed = JSON.parse(text) as { error?: { message?: unknown; param?: unknown } | string };
    if (typeof parsed.error === 'string') return { message: parsed.error, param: null };
    if (parsed.error && typeof parsed.error.message === 'string') {
      return { message: parsed.error.message, param: typeof parsed.error.param === 'string' ? parsed.error.param : null };
    }
  } catch {
    // not JSON: fall through to the raw text
  }
  return { message: text.trim().slice(0, 500), param: null };
}
