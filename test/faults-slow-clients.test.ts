/**
 * Slow and vanishing clients: a slowloris that drips its headers, one that drips its body, a
 * stream reader that never reads, a reader of a large stream, and a client that aborts a
 * stream. None may block other clients; server-side timeouts must close them; an abort must
 * free the upstream connection. The gateway's client timeout is 1 s here so this runs fast.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type AddressInfo, type Socket } from 'node:net';
import type { ServerResponse } from 'node:http';
import { Writable } from 'node:stream';
import { Agent, request } from 'undici';
import { writeEventStream } from '../src/gateway/http/sse.ts';
import type { ChatCompletionChunk } from '../src/wire/openai.ts';
import { callChat } from './helpers/fuzz-calls.ts';
import { waitFor } from './helpers/fuzz-http.ts';
import { PROVIDER_KINDS } from './helpers/providers.ts';
import { startStack, type Stack } from './helpers/stack.ts';

let stack: Stack;
let dispatcher: Agent;
let address: AddressInfo;

/**
 * The stream tests run on every provider adapter: a reader that never reads and a client that
 * leaves mid-stream must free the upstream whichever adapter's stream reader holds it
 * (the OpenAI-compatible one shares OpenAI's).
 */
const PROVIDERS = PROVIDER_KINDS.filter(({ name }) => name !== 'compatible');

function config(url: string): string {
  const streamed = PROVIDERS.flatMap(({ name, provider, path }) => [
    `
  ${name}-large:
    provider: ${provider}
    baseUrl: ${url}${path}
    model: ${name}-large
    apiKey: sk-test
    headers: { x-sim-completion-tokens: "60000" }`,
    `
  ${name}-trickle:
    provider: ${provider}
    baseUrl: ${url}${path}
    model: ${name}-trickle
    apiKey: sk-test
    headers: { x-sim-fault: "slow-stream:20", x-sim-completion-tokens: "2000" }`,
  ]);
  const routes = PROVIDERS.flatMap(({ name }) => [
    `  ${name}-large: { deployments: [{ deployment: ${name}-large }] }`,
    `  ${name}-trickle: { deployments: [{ deployment: ${name}-trickle }] }`,
  ]);
  return `
server: { headersTimeoutMs: 1000 }
deployments:
  fast: { provider: openai, baseUrl: ${url}/v1, model: fast, apiKey: sk-test }${streamed.join('')}
routes:
  fast: { deployments: [{ deployment: fast }] }
${routes.join('\n')}
`;
}

before(async () => {
  stack = await startStack({ config });
  dispatcher = new Agent({ connections: 8 });
  address = stack.seed.app.server.address() as AddressInfo;
});
after(async () => {
  await dispatcher.close();
  await stack.close();
});

const normalCall = () => callChat({ baseUrl: stack.seed.url, dispatcher, model: 'fast', timeoutMs: 10_000 });

/** A raw connection whose `closed` flag turns true when the server ends it. */
function openSocket(): { socket: Socket; closed: () => boolean; received: () => string } {
  const socket = connect({ host: address.address, port: address.port });
  let closed = false;
  let received = '';
  socket.on('data', (data: Buffer) => (received += data.toString('utf8')));
  socket.on('error', () => undefined);
  socket.on('close', () => (closed = true));
  return { socket, closed: () => closed, received: () => received };
}

function serverConnections(): Promise<number> {
  return new Promise((resolvePromise, reject) =>
    stack.seed.app.server.getConnections((error, count) => (error ? reject(error) : resolvePromise(count))),
  );
}

/** Normal calls made while the slow clients hang on; all must succeed. */
async function assertOthersServed(count: number): Promise<void> {
  for (let index = 0; index < count; index++) {
    const observed = await normalCall();
    assert.equal(observed.status, 200, observed.body);
  }
}

test('regression: slowloris clients (headers or body byte by byte) are closed by the server, and do not block others', async () => {
  const head = 'POST /v1/chat/completions HTTP/1.1\r\nHost: seed.test\r\nContent-Type: application/json\r\n';
  const headerDrippers = Array.from({ length: 4 }, () => openSocket());
  const bodyDrippers = Array.from({ length: 2 }, () => openSocket());
  for (const dripper of bodyDrippers) dripper.socket.write(`${head}Content-Length: 1000\r\n\r\n{`);
  let position = 0;
  const drip = setInterval(() => {
    position += 1;
    for (const dripper of headerDrippers) if (!dripper.closed()) dripper.socket.write(head.charAt(position % head.length));
    for (const dripper of bodyDrippers) if (!dripper.closed()) dripper.socket.write(' ');
  }, 100);
  try {
    await assertOthersServed(10);
    // Node checked these timeouts only every 30 s, whatever headersTimeoutMs said; now a
    // quarter of it. Generous bound: the point is that they close, not how fast.
    await waitFor(() => [...headerDrippers, ...bodyDrippers].every((dripper) => dripper.closed()), 'slow clients closed', 15_000);
    for (const dripper of [...headerDrippers, ...bodyDrippers]) {
      const answer = dripper.received();
      if (answer === '') continue;
      // Whatever the server said before closing is an OpenAI-format error.
      const body = answer.slice(answer.indexOf('\r\n\r\n') + 4);
      assert.match(answer, /^HTTP\/1\.1 4\d\d /, answer);
      assert.ok((JSON.parse(body) as { error?: { code?: string } }).error?.code, answer);
    }
  } finally {
    clearInterval(drip);
    for (const dripper of [...headerDrippers, ...bodyDrippers]) dripper.socket.destroy();
  }
  await assertOthersServed(1);
});

for (const { name } of PROVIDERS) {
test(`regression: ${name}: a stream reader that never reads is closed after the stall timeout and frees its upstream`, async () => {
  const requestId = `never_reads_${name}`;
  const body = JSON.stringify({ model: `${name}-large`, stream: true, max_tokens: 60_000, messages: [{ role: 'user', content: 'hi' }] });
  const reader = openSocket();
  reader.socket.write(
    `POST /v1/chat/completions HTTP/1.1\r\nHost: seed.test\r\nContent-Type: application/json\r\nx-request-id: ${requestId}\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  // Never read: the kernel buffers fill, then the gateway's writes stall.
  reader.socket.pause();
  try {
    await waitFor(() => stack.simulator.stats().inFlight === 1, 'the stream is in flight');
    await assertOthersServed(5);
    // Before the fix nothing ever ended this call: the response and its upstream stayed open.
    await waitFor(() => stack.records.some((record) => record.clientRequestId === requestId), 'the stalled call ends and is recorded', 15_000);
    const record = stack.records.find((each) => each.clientRequestId === requestId);
    assert.equal(record?.status, 'aborted');
    assert.equal(record?.errorCode, 'client_closed_request');
    await waitFor(() => stack.simulator.stats().inFlight === 0, 'the upstream request is released');
  } finally {
    reader.socket.destroy();
  }
  await waitFor(async () => (await serverConnections()) <= 8, 'the stalled connection is gone');
});
}

test('regression: a slow stream reader does not pile up listeners on the response', async () => {
  // Each write that had to wait raced `events.once(response, "drain")` with
  // `events.once(response, "close")` and left the `close` listener behind: one per slow write,
  // thousands on a long stream. A response that needs a drain after every write shows it.
  class SlowResponse extends Writable {
    writeHead(): this {
      return this;
    }
  }
  const response = new SlowResponse({ highWaterMark: 1, write: (_chunk, _encoding, callback) => setImmediate(callback) });
  let mostCloseListeners = 0;
  async function* chunks(): AsyncGenerator<ChatCompletionChunk[]> {
    for (let index = 0; index < 50; index++) {
      mostCloseListeners = Math.max(mostCloseListeners, response.listenerCount('close'));
      yield [{ id: 'chunk', object: 'chat.completion.chunk', created: 0, model: 'm', choices: [{ index: 0, delta: { content: 'x' } }] }];
    }
  }
  await writeEventStream({
    response: response as unknown as ServerResponse,
    headers: {},
    chunks: chunks(),
    signal: new AbortController().signal,
    stallTimeoutMs: 5_000,
  });
  assert.ok(mostCloseListeners <= 2, `close listeners grew to ${mostCloseListeners}`);
  assert.ok(response.listenerCount('close') <= 1, `${response.listenerCount('close')} close listeners left`);
});

for (const { name } of PROVIDERS) {
test(`${name}: a client that aborts a stream frees the upstream connection, and the call is recorded as aborted`, async () => {
  const requestId = `aborts_stream_${name}`;
  const controller = new AbortController();
  const response = await request(`${stack.seed.url}/v1/chat/completions`, {
    method: 'POST',
    dispatcher,
    headers: { 'content-type': 'application/json', 'x-request-id': requestId },
    body: JSON.stringify({ model: `${name}-trickle`, stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    signal: controller.signal,
  });
  assert.equal(response.statusCode, 200);
  // Read a little of the stream, then go away mid-stream.
  for await (const chunk of response.body) {
    if (String(chunk).includes('data: ')) break;
  }
  controller.abort();
  await waitFor(() => stack.simulator.stats().inFlight === 0, 'the upstream request is released');
  await waitFor(() => stack.records.some((record) => record.clientRequestId === requestId), 'the call is recorded');
  const record = stack.records.find((each) => each.clientRequestId === requestId);
  assert.equal(record?.status, 'aborted');
  assert.equal(record?.errorCode, 'client_closed_request');
  await assertOthersServed(1);
});
}
