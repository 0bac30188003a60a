/**
 * Helpers for the fuzz and fault suites: raw HTTP exchanges (for bytes and headers no HTTP
 * client would send), the check that an answer is a well-formed OpenAI error or success, and
 * polling for conditions that settle asynchronously (records, sockets).
 */
import assert from 'node:assert/strict';
import { connect, type AddressInfo } from 'node:net';

export interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Sends `bytes` on a fresh connection and reads the answer until the server closes it.
 * Callers send `Connection: close`. Rejects when no complete answer arrives in `timeoutMs`:
 * a hang is a failure, not a wait.
 */
export function rawExchange(input: { address: AddressInfo; bytes: Buffer | string; timeoutMs?: number }): Promise<RawAnswer> {
  const timeoutMs = input.timeoutMs ?? 5_000;
  return new Promise((resolvePromise, reject) => {
    const socket = connect({ host: input.address.address, port: input.address.port });
    const received: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('data', (data: Buffer) => received.push(data));
    // The server may close before reading all we sent (an early 413/400); that is an answer.
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      try {
        resolvePromise(parseAnswer(Buffer.concat(received)));
      } catch (error) {
        reject(error as Error);
      }
    });
    // write, not end: Node's server treats a half-closed client as gone and aborts its request.
    socket.write(input.bytes);
  });
}

function parseAnswer(raw: Buffer): RawAnswer {
  const text = raw.toString('utf8');
  const split = text.indexOf('\r\n\r\n');
  if (split === -1) throw new Error(`incomplete HTTP answer: ${JSON.stringify(text.slice(0, 200))}`);
  const [statusLine = '', ...lines] = text.slice(0, split).split('\r\n');
  const status = Number(statusLine.split(' ')[1]);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let body = text.slice(split + 4);
  if (headers['transfer-encoding'] === 'chunked') body = decodeChunked(body);
  return { status, headers, body };
}

function decodeChunked(text: string): string {
  let out = '';
  let rest = text;
  for (;;) {
    const lineEnd = rest.indexOf('\r\n');
    const size = Number.parseInt(rest.slice(0, lineEnd), 16);
    if (!Number.isFinite(size) || size === 0) return out;
    out += rest.slice(lineEnd + 2, lineEnd + 2 + size);
    rest = rest.slice(lineEnd + 2 + size + 2);
  }
}

/** Asserts `body` is exactly Seed's error format: `{"error":{"message","type","code","param"}}`. */
export function assertOpenAIError(body: string, status: number): void {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    assert.fail(`status ${status} with a body that is not JSON: ${body.slice(0, 300)}`);
  }
  const error = (parsed as { error?: Record<string, unknown> }).error;
  assert.ok(error && typeof error === 'object', `no error object in ${body.slice(0, 300)}`);
  assert.equal(typeof error.message, 'string', body.slice(0, 300));
  assert.equal(typeof error.type, 'string', body.slice(0, 300));
  assert.equal(typeof error.code, 'string', body.slice(0, 300));
  assert.ok(error.param === null || typeof error.param === 'string', body.slice(0, 300));
}

/**
 * The fuzz invariant: a 4xx with an OpenAI-format error body, or a 200 that is what the
 * endpoint returns (the random input happened to be valid). Never a 5xx.
 */
export function assertClientErrorOrSuccess(answer: { status: number; body: string }, context: string): void {
  assert.ok(answer.status < 500, `${context}: got ${answer.status} ${answer.body.slice(0, 300)}`);
  if (answer.status === 200) {
    const parsed = JSON.parse(answer.body) as { object?: unknown };
    assert.ok(parsed.object === 'chat.completion' || parsed.object === 'list', `${context}: 200 with ${answer.body.slice(0, 200)}`);
    return;
  }
  assert.ok(answer.status >= 400, `${context}: unexpected status ${answer.status}`);
  assertOpenAIError(answer.body, answer.status);
}

export async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((resolvePromise) => setTimeout(resolvePromise, 20));
  }
}

/** Builds a raw HTTP/1.1 request; the body's length is announced unless `headers` says otherwise. */
export function rawRequest(input: { method?: string; path: string; headers?: string[]; body?: Buffer | string }): Buffer {
  const body = input.body === undefined ? Buffer.alloc(0) : Buffer.from(input.body);
  const head = [
    `${input.method ?? 'POST'} ${input.path} HTTP/1.1`,
    'Host: seed.test',
    'Connection: close',
    ...(input.headers ?? []),
    ...(input.headers?.some((header) => /^content-length:/i.test(header)) ? [] : [`Content-Length: ${body.length}`]),
  ].join('\r\n');
  return Buffer.concat([Buffer.from(`${head}\r\n\r\n`, 'latin1'), body]);
}
