/**
 * One request and its response: writing JSON and paced SSE, abortable sleeps, and deliberate
 * connection resets. When the client goes away the exchange stops writing and clears its
 * timer at once, so an abandoned request holds no timer and no socket.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { StatsRecorder } from './stats.ts';

/** One server-sent event. `paced` frames carry tokens: they wait for TTFT and the token pace. */
export interface StreamFrame {
  event?: string;
  data: string;
  paced: boolean;
}

export type HeaderMap = Record<string, string>;

export function serializeFrame(frame: StreamFrame): string {
  return frame.event === undefined ? `data: ${frame.data}\n\n` : `event: ${frame.event}\ndata: ${frame.data}\n\n`;
}

/** What `malformed-sse` sends after a valid start: lines no SSE parser can turn into JSON. */
const sseGarbage =
  'this line is not server-sent events\n' +
  'data: {"choices":[{"delta":{"content":"unterminated\n\n' +
  'data: <html><body>502 Bad Gateway</body></html>\n\n';

/**
 * How a stream is cut short after `afterFrames` frames: the connection dropped (`reset`), left
 * open and silent until the client closes it (`stall`), the provider's error event and the end
 * (`error`), or unparseable lines and the end (`garbage`).
 */
export type StreamCut =
  | { afterFrames: number; then: 'reset' | 'stall' | 'garbage' }
  | { afterFrames: number; then: 'error'; frame: StreamFrame };

export class Exchange {
  /** Aborted when the connection closes before the response ended. */
  readonly signal: AbortSignal;
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private wake: ((open: boolean) => void) | undefined;
  private statusSent = false;
  private deliberateClose = false;

  constructor(
    readonly input: {
      request: IncomingMessage;
      response: ServerResponse;
      requestId: string;
      stats: StatsRecorder;
      /** Control requests are not counted in the stats. */
      counted: boolean;
    },
  ) {
    this.signal = this.controller.signal;
    input.response.setHeader('x-request-id', input.requestId);
    input.response.once('close', () => {
      const abandoned = !input.response.writableFinished;
      if (this.timer !== undefined) clearTimeout(this.timer);
      this.timer = undefined;
      if (abandoned) this.controller.abort();
      this.wake?.(false);
      this.wake = undefined;
      if (input.counted) {
        input.stats.requestEnded({ abandoned: abandoned && !this.deliberateClose, statusSent: this.statusSent });
      }
    });
  }

  get closed(): boolean {
    return this.signal.aborted || this.input.response.writableEnded;
  }

  /** Sets a header on whatever response follows (e.g. Anthropic's `request-id`). */
  setHeader(name: string, value: string): void {
    this.input.response.setHeader(name, value);
  }

  private writeHead(status: number, headers: HeaderMap): void {
    this.statusSent = true;
    if (this.input.counted) this.input.stats.status(status);
    this.input.response.writeHead(status, headers);
  }

  /** Sends a complete body with its content length. */
  send(input: { status: number; headers?: HeaderMap; contentType?: string; body: string }): void {
    if (this.closed) return;
    this.writeHead(input.status, {
      ...input.headers,
      'content-type': input.contentType ?? 'application/json',
      'content-length': String(Buffer.byteLength(input.body)),
    });
    this.input.response.end(input.body);
  }

  /** Waits, unless the client goes away first; resolves whether the exchange is still open. */
  sleep(milliseconds: number): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    if (milliseconds <= 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      this.wake = resolve;
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.wake = undefined;
        resolve(true);
      }, milliseconds);
    });
  }

  /** Resets the TCP connection (RST) before any response: the client sees ECONNRESET. */
  resetConnection(): void {
    if (this.closed) return;
    this.deliberateClose = true;
    if (this.input.counted) this.input.stats.status('reset');
    this.input.request.socket.resetAndDestroy();
  }

  /**
   * Announces the whole body's length, sends half of it, then drops the connection, or with
   * `then: 'stall'` sends nothing more and holds it open until the client closes it.
   */
  sendTruncated(input: { status: number; headers: HeaderMap; contentType: string; body: string; then?: 'drop' | 'stall' }): void {
    if (this.closed) return;
    this.writeHead(input.status, {
      ...input.headers,
      'content-type': input.contentType,
      'content-length': String(Buffer.byteLength(input.body)),
    });
    const half = input.body.slice(0, Math.floor(input.body.length / 2));
    if (input.then === 'stall') this.input.response.write(half);
    else this.input.response.write(half, () => this.dropConnection());
  }

  /** Closes the socket after what was written reached it (FIN, not RST, so the written bytes arrive). */
  private dropConnection(): void {
    if (this.input.response.destroyed) return;
    this.deliberateClose = true;
    this.input.request.socket.destroy();
  }

  /**
   * Streams frames as `text/event-stream`. Unpaced frames go out together in one write;
   * the first paced frame waits `ttftMs`, each later one `intervalMs`. `cut` ends the stream
   * after `afterFrames` frames (see `StreamCut`).
   */
  stream(input: {
    headers: HeaderMap;
    frames: readonly StreamFrame[];
    ttftMs: number;
    intervalMs: number;
    cut?: StreamCut;
  }): void {
    if (this.closed) return;
    const { response } = this.input;
    this.writeHead(200, {
      ...input.headers,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
    });
    let index = 0;
    let pacedFramesSent = 0;
    let waitedFor = -1;
    const pump = (): void => {
      this.timer = undefined;
      if (this.closed) return;
      let buffer = '';
      while (index < input.frames.length) {
        const { cut } = input;
        if (cut !== undefined && index >= cut.afterFrames) {
          if (cut.then === 'reset') {
            if (buffer === '') response.flushHeaders();
            response.write(buffer, () => this.dropConnection());
          } else if (cut.then === 'stall') {
            // Silence: the frames so far reach the client, then nothing, until it closes the connection.
            if (buffer === '') response.flushHeaders();
            else response.write(buffer);
          } else response.end(buffer + (cut.then === 'error' ? serializeFrame(cut.frame) : sseGarbage));
          return;
        }
        const frame = input.frames[index] as StreamFrame;
        if (frame.paced && waitedFor !== index) {
          waitedFor = index;
          const delay = pacedFramesSent === 0 ? input.ttftMs : input.intervalMs;
          pacedFramesSent += 1;
          if (delay > 0) {
            if (buffer === '') response.flushHeaders();
            else response.write(buffer);
            this.timer = setTimeout(pump, delay);
            return;
          }
        }
        buffer += serializeFrame(frame);
        index += 1;
      }
      response.end(buffer);
    };
    pump();
  }
}
