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

/**
 * A 400's message must be true of the body it answers: "Missing required parameter: 'p'" only
 * when nothing is at `p`, "Invalid type for 'p': … but got X instead" only when `p` holds an X,
 * and "must be a JSON object, but got X" only for a body that is an X. `sent` is the value sent as JSON.
 * `textKeys`: its top-level keys whose values are text the route reads (query and route
 * parameters), where a number is expected and the text spells one, "got" names that number.
 */
export function assertTruthfulMessage(
  sent: unknown,
  answer: { status: number; body: string },
  context: string,
  textKeys: readonly string[] = [],
): void {
  if (answer.status !== 400) return;
  // Judged against the JSON the server read, not the value before it was written: `-0` is sent as `0`.
  const body: unknown = sent === undefined ? undefined : JSON.parse(JSON.stringify(sent));
  const error = (JSON.parse(answer.body) as { error: { message: unknown; param: unknown } }).error;
  const message = String(error.message);
  const says = `${context}: says ${message}`;
  const missing = /^Missing required parameter: '(.*)'\.$/.exec(message);
  if (missing) {
    assert.equal(at(body, missing[1]!).present, false, `${says} but the body has it`);
    return;
  }
  const wrongType = /^Invalid type for '(.*)': expected (.+), but got (.+) instead\.$/.exec(message);
  if (wrongType) {
    const [, path, expected, got] = wrongType;
    const found = at(body, path!);
    assert.ok(found.present, `${says} but nothing is there`);
    const spelled = typeof found.value === 'string' && found.value.trim() !== '' ? Number(found.value) : Number.NaN;
    const readAsNumber = textKeys.includes(path!) && /\b(?:integer|number)\b/.test(expected!) && Number.isFinite(spelled);
    assert.equal(readAsNumber ? kindOfJson(spelled) : kindOfJson(found.value), got, says);
    return;
  }
  const number = /^Invalid '(.*)': (integer|decimal) (?:below minimum|above maximum) value\. Expected a value (>=|>|<=|<) (\S+), but got (\S+) instead\.$/.exec(message);
  if (number) {
    const [, path, kind, relation, bound, got] = number;
    const found = at(body, path!).value;
    // A query parameter is text the route reads as a number.
    const value = typeof found === 'string' && found.trim() !== '' ? Number(found) : found;
    assert.ok(typeof value === 'number', `${says} but the value is ${JSON.stringify(found)}`);
    assert.equal(kindOfJson(value), `a${kind === 'integer' ? 'n' : ''} ${kind}`, says);
    assert.equal(Number(got), value, says);
    const limit = Number(bound);
    const holds = relation === '>=' ? value >= limit : relation === '>' ? value > limit : relation === '<=' ? value <= limit : value < limit;
    assert.equal(holds, false, `${says} but ${value} ${relation} ${limit}`);
    return;
  }
  const length = /^Invalid '(.*)': .+\. Expected an? (array|string) with (minimum|maximum) length (\d+), but got .+ instead\.$/.exec(message);
  if (length) {
    const [, path, kind, side, bound] = length;
    const { value } = at(body, path!);
    assert.ok(kind === 'array' ? Array.isArray(value) : typeof value === 'string', `${says} but the value is ${JSON.stringify(value)}`);
    const size = typeof value === 'string' && message.includes('not counting surrounding whitespace') ? value.trim().length : (value as string | unknown[]).length;
    assert.ok(side === 'minimum' ? size < Number(bound) : size > Number(bound), `${says} but its length is ${size}`);
    return;
  }
  const option = /^Invalid value: (.+)\. Supported values are: (.+)\.$/.exec(message);
  if (option) {
    const found = at(body, String(error.param));
    assert.ok(found.present, `${says} but nothing is at ${String(error.param)}`);
    if (typeof found.value === 'string' && !option[1]!.endsWith('...')) assert.equal(option[1], `'${found.value}'`, says);
    assert.ok(!option[2]!.split(/, (?:and )?| and /).includes(option[1]!), `${says} but it is among them`);
    return;
  }
  const notObject = /^The request body must be a JSON object, but got (.+) instead\.$/.exec(message);
  if (notObject) assert.equal(kindOfJson(body), notObject[1], says);
}

/** What is at an OpenAI-style parameter path (`messages[0].content`) of a JSON value. */
function at(value: unknown, path: string): { present: boolean; value: unknown } {
  let cursor = value;
  for (const [, key, index, quotedKey] of path.matchAll(/([^.[\]]+)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]/g)) {
    const segment = index !== undefined ? Number(index) : quotedKey !== undefined ? (JSON.parse(quotedKey) as string) : key!;
    if (cursor === null || typeof cursor !== 'object' || !Object.hasOwn(cursor, segment)) return { present: false, value: undefined };
    cursor = (cursor as Record<string | number, unknown>)[segment];
  }
  return { present: true, value: cursor };
}

/** A JSON value's kind in the words of the gateway's messages, written here apart from the gateway's own. */
function kindOfJson(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'an integer' : 'a decimal';
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value}`;
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
