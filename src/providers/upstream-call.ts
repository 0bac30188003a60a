/**
 * One upstream HTTP request on undici's dispatcher, with Seed's own handler instead of undici's
 * `request` API. `request` wraps every response body in a Node `Readable` (and its handler in an
 * `AsyncResource`), which Seed only ever read whole or turned back into batches of reads; here
 * the reads are kept as they came, in an `UpstreamBody` that a whole-body reader takes at once and
 * a stream decoder takes as they arrive. A gateway call allocated 3.7 KiB less (47.9 → 44.2 KiB
 * non-streaming, `npm run bench -- --only alloc`), and a small answer that came whole with its
 * headers is read without another turn of the event loop. In a client loop alone the CPU
 * difference is inside this machine's noise (bench/micro/upstream-call.ts: 0.95× / 1.00×).
 *
 * Flow control and aborts stay undici's: a body whose reads pile up pauses the connection, the
 * call's signal aborts the request, and a body nobody needs any more is either left to drain
 * (the connection goes back to the pool) or aborted.
 */
import { errors as undiciErrors, type Dispatcher } from 'undici';
import { SeedError } from '../errors.ts';
import type { CallSignal } from '../abort.ts';

/** Reads waiting for a consumer before the connection is paused (backpressure from a slow client). */
export const MAX_WAITING_READS = 16;

/** How long a body may take to end after its consumer has all it needs (`drain`). */
const DRAIN_MS = 2_000;

const NO_READS: readonly Buffer[] = Object.freeze([]);

function utf8(reads: readonly Buffer[]): string {
  if (reads.length === 0) return '';
  if (reads.length === 1) return (reads[0] as Buffer).toString('utf8');
  return Buffer.concat(reads).toString('utf8');
}

/** What aborts a request from the body's side (undici's dispatch controller, or nothing in tests). */
export interface BodyFlow {
  pause(): void;
  resume(): void;
  abort(reason: Error): void;
}

/**
 * A response body as it arrives: the producer (the dispatch handler, or a test) pushes reads and
 * then ends or fails it; the consumer takes the reads that have arrived and is told, through one
 * watcher, when more come. Failures are what the producer gave (`upstreamCall`'s are SeedErrors).
 */
export class UpstreamBody {
  #reads: Buffer[] = [];
  #ended = false;
  #failure: unknown = null;
  #failed = false;
  #watcher: (() => void) | null = null;
  /** Reads are dropped as they come (`drain`). */
  #discarding = false;
  #paused = false;
  #drainTimer: NodeJS.Timeout | null = null;
  readonly #resume = () => {
    if (!this.#paused) this.flow?.resume();
  };

  constructor(private readonly flow: BodyFlow | null = null) {}

  // The producer's side.

  push(read: Buffer): void {
    if (this.#discarding) return;
    this.#reads.push(read);
    this.#watcher?.();
    // Paused only after the watcher had its turn, so a read taken at once never pauses; and
    // nothing resumes from inside a read: undici's parser must not be resumed while it runs.
    if (this.#reads.length >= MAX_WAITING_READS && !this.#paused && this.flow !== null) {
      this.#paused = true;
      this.flow.pause();
    }
  }

  end(): void {
    if (this.#ended || this.#failed) return;
    this.#ended = true;
    this.#stopDrainTimer();
    this.#watcher?.();
  }

  fail(error: unknown): void {
    if (this.#ended || this.#failed) return;
    this.#failed = true;
    this.#failure = error;
    this.#stopDrainTimer();
    this.#watcher?.();
  }

  // The consumer's side.

  /** The body ended, every read pushed. */
  get ended(): boolean {
    return this.#ended;
  }

  /** The body failed: what it failed with (the producer's error); check `failed` first. */
  get failure(): unknown {
    return this.#failure;
  }

  get failed(): boolean {
    return this.#failed;
  }

  /** Whether reads are waiting to be taken. */
  get waiting(): boolean {
    return this.#reads.length > 0;
  }

  /** The reads that arrived since the last take, in order; resumes a paused connection. */
  take(): readonly Buffer[] {
    const reads = this.#reads;
    if (reads.length === 0) return NO_READS;
    this.#reads = [];
    if (this.#paused) {
      this.#paused = false;
      // Not now: undici's resume parses what the socket holds at once, and those reads would
      // reach the watcher before the caller has handled the ones it just took.
      queueMicrotask(this.#resume);
    }
    return reads;
  }

  /** Called, synchronously, after each read, the end and a failure; null stops it. One watcher at a time. */
  watch(watcher: (() => void) | null): void {
    this.#watcher = watcher;
  }

  /** The whole body as UTF-8 text, once it has `ended`. */
  wholeText(): string {
    if (!this.#ended) throw new Error('UpstreamBody.wholeText: the body has not ended');
    return utf8(this.take());
  }

  /** The whole body as UTF-8 text; rejects with the body's failure. */
  text(): Promise<string> {
    // A small answer has usually ended by the time its reader asks (it came in the headers' read).
    if (this.#ended) return Promise.resolve(this.wholeText());
    if (this.#failed) return Promise.reject(this.#failure);
    // Reads are taken as they come, so a large body never pauses the connection waiting for its reader.
    const reads = [...this.take()];
    return new Promise((resolve, reject) => {
      this.watch(() => {
        for (const read of this.take()) reads.push(read);
        if (this.#ended) {
          this.watch(null);
          resolve(utf8(reads));
        } else if (this.#failed) {
          this.watch(null);
          reject(this.#failure);
        }
      });
    });
  }

  /**
   * The consumer needs no more: the rest is read and dropped, so the connection can be reused,
   * and the request is aborted if it has not ended within DRAIN_MS.
   */
  drain(): void {
    this.#discarding = true;
    this.#reads = [];
    this.#watcher = null;
    if (this.#ended || this.#failed) return;
    if (this.#paused) {
      this.#paused = false;
      queueMicrotask(this.#resume);
    }
    if (this.flow !== null && this.#drainTimer === null) {
      this.#drainTimer = setTimeout(() => this.destroy(), DRAIN_MS);
      this.#drainTimer.unref();
    }
  }

  /** Aborts the request: the connection is closed at once (a client that left, a failed stream). */
  destroy(): void {
    this.#discarding = true;
    this.#reads = [];
    this.#watcher = null;
    if (this.#ended || this.#failed) return;
    this.flow?.abort(new Error('The upstream body was abandoned.'));
  }

  #stopDrainTimer(): void {
    if (this.#drainTimer !== null) {
      clearTimeout(this.#drainTimer);
      this.#drainTimer = null;
    }
  }
}

/**
 * A response's headers, read by name. Upstream answers carry a dozen or more headers of which
 * Seed reads a few (the rate-limit ones, the request id, retry-after on a 429), so none is
 * decoded until it is asked for: undici's own parse of every name and value into an object cost
 * 5.6–6.3 µs of the event loop's CPU per call (docs/benchmark-log.md, 2026-12-05 (05:49–), item 2).
 */
export interface UpstreamHeaders {
  /** The value of header `name` (given in lower case), the first one when it came several times; undefined when absent. */
  get(name: string): string | undefined;
}

const UPPER_A = 0x41;
const UPPER_Z = 0x5a;

/**
 * The headers as undici's HTTP/1.1 parser hands them over: names and values alternating, as the
 * bytes came. Names compare without regard to ASCII case; values decode as Latin-1, as undici's
 * own parse decodes them.
 */
export class RawHeaders implements UpstreamHeaders {
  constructor(private readonly raw: readonly (Buffer | string)[]) {}

  get(name: string): string | undefined {
    const { raw } = this;
    for (let index = 0; index + 1 < raw.length; index += 2) {
      if (nameIs(raw[index] as Buffer | string, name)) {
        const value = raw[index + 1] as Buffer | string;
        return typeof value === 'string' ? value : value.toString('latin1');
      }
    }
    return undefined;
  }
}

/** Whether a raw header name is `lowerCaseName`, ignoring ASCII case. */
function nameIs(raw: Buffer | string, lowerCaseName: string): boolean {
  if (raw.length !== lowerCaseName.length) return false;
  if (typeof raw === 'string') return raw.toLowerCase() === lowerCaseName;
  for (let index = 0; index < raw.length; index += 1) {
    let code = raw[index] as number;
    if (code >= UPPER_A && code <= UPPER_Z) code += 0x20;
    if (code !== lowerCaseName.charCodeAt(index)) return false;
  }
  return true;
}

/** Headers from an object of them (names in lower case, as Node and undici give them): for answers not read off the wire. */
export function headersOf(record: Readonly<Record<string, string | readonly string[] | undefined>>): UpstreamHeaders {
  return {
    get(name) {
      const value = Object.hasOwn(record, name) ? record[name] : undefined;
      return typeof value === 'string' || value === undefined ? value : value[0];
    },
  };
}

export interface UpstreamCallResponse {
  status: number;
  headers: UpstreamHeaders;
  body: UpstreamBody;
}

export interface UpstreamCallRequest {
  dispatcher: Dispatcher;
  origin: string;
  path: string;
  headers: Record<string, string>;
  body: string;
  signal: CallSignal;
  /** Bounds the wait for the response headers and then each idle gap in the body (undici's timers). */
  timeoutMs: number;
  /** Names the upstream in error messages (the deployment name). */
  label: string;
}

/**
 * Sends a POST and resolves with the status, headers and a body still arriving. Rejects when no
 * response starts; a failure after that is the body's. Either is a SeedError (`transportError`).
 * The signal aborts the request at any point until the body ends.
 */
export function upstreamCall(request: UpstreamCallRequest): Promise<UpstreamCallResponse> {
  if (request.signal.aborted) return Promise.reject(transportError({ error: request.signal.reason, label: request.label, clientSignal: request.signal }));
  return new Promise((resolve, reject) => {
    const handler = new UpstreamCallHandler(request.signal, request.label, resolve, reject);
    request.dispatcher.dispatch(
      {
        origin: request.origin,
        path: request.path,
        method: 'POST',
        headers: request.headers,
        body: request.body,
        headersTimeout: request.timeoutMs,
        bodyTimeout: request.timeoutMs,
      },
      handler,
    );
  });
}

/**
 * undici's handler for one call. Until the response starts, a failure rejects the call; after,
 * it fails the body. The signal's listener is removed once the body ends or fails.
 *
 * It speaks undici 7's original handler interface (`onConnect`, `onHeaders`, `onData`,
 * `onComplete`, `onError`), the one undici's HTTP/1.1 client calls and its own `request` API
 * implements. undici marks it deprecated in favour of `onRequestStart`/`onResponseStart`/…, but
 * a handler of that kind is wrapped in an adapter that parses every header of every answer into
 * an object before the handler sees them (undici's `UnwrapHandler`); this one keeps the raw
 * headers and reads only the ones asked for (`RawHeaders`). test/upstream-call.test.ts pins the
 * behaviour, so an undici that drops the interface fails there, not in production.
 */
class UpstreamCallHandler implements Dispatcher.DispatchHandler, BodyFlow {
  #abort: ((reason: Error) => void) | null = null;
  #resume: (() => void) | null = null;
  #paused = false;
  #body: UpstreamBody | null = null;
  #settled = false;
  readonly #onAbort = () => this.abort(this.signal.reason instanceof Error ? this.signal.reason : new Error(String(this.signal.reason)));

  constructor(
    private readonly signal: CallSignal,
    private readonly label: string,
    private resolve: ((response: UpstreamCallResponse) => void) | null,
    private reject: ((error: unknown) => void) | null,
  ) {
    signal.addEventListener('abort', this.#onAbort);
  }

  onConnect(abort: (reason?: Error) => void): void {
    this.#abort = abort;
    // Aborted while the request waited for a connection.
    if (this.signal.aborted) this.#onAbort();
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    // An informational answer (103 Early Hints): the response proper follows.
    if (statusCode < 200) return true;
    this.#resume = resume;
    const body = new UpstreamBody(this);
    this.#body = body;
    const resolve = this.resolve;
    this.resolve = null;
    this.reject = null;
    resolve?.({ status: statusCode, headers: new RawHeaders(rawHeaders), body });
    return !this.#paused;
  }

  /** False pauses the connection until `resume` (the body's reads piled up). */
  onData(chunk: Buffer): boolean {
    this.#body?.push(chunk);
    return !this.#paused;
  }

  onComplete(): void {
    this.#finish();
    this.#body?.end();
  }

  onError(error: Error): void {
    this.#finish();
    if (this.#body !== null) this.#body.fail(this.#failure(error));
    else this.#rejectCall(error);
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#resume?.();
  }

  abort(reason: Error): void {
    if (this.#abort !== null) {
      this.#abort(reason);
      return;
    }
    // Still waiting for a connection: the caller is answered now, and undici is told at
    // `onConnect` (which checks the signal).
    this.#rejectCall(reason);
  }

  /** Rejects the call's promise, once (a response that started answers through its body instead). */
  #rejectCall(error: unknown): void {
    const reject = this.reject;
    this.resolve = null;
    this.reject = null;
    reject?.(this.#failure(error));
  }

  #failure(error: unknown): SeedError {
    return transportError({ error, label: this.label, clientSignal: this.signal });
  }

  #finish(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.signal.removeEventListener('abort', this.#onAbort);
  }
}

/** Maps a transport failure (undici's error, or the reason the call's signal gave) onto the right Seed error. */
export function transportError(input: { error: unknown; label: string; clientSignal: CallSignal }): SeedError {
  const { error, label } = input;
  if (error instanceof SeedError) return error;
  if (input.clientSignal.aborted) {
    const reason: unknown = input.clientSignal.reason;
    if (reason instanceof SeedError) return reason;
    return new SeedError('client_closed_request', 'The client closed the request before the upstream answered.', {
      cause: error,
    });
  }
  if (
    error instanceof undiciErrors.HeadersTimeoutError ||
    error instanceof undiciErrors.BodyTimeoutError ||
    error instanceof undiciErrors.ConnectTimeoutError
  ) {
    return new SeedError('upstream_timeout', `Deployment ${label} did not answer in time.`, { cause: error });
  }
  const code = (error as { code?: string } | null)?.code;
  return new SeedError(
    'upstream_connection_failed',
    `Connection to deployment ${label} failed${code ? ` (${code})` : ''}.`,
    { cause: error },
  );
}
