/**
 * Reading an upstream SSE body (sseEventBatches): a consumer that stops early because the
 * client left destroys the body, and the error undici emits for that on a later tick must find a
 * listener; one that stops because the stream is complete lets the body drain.
 */
import assert from 'node:assert/strict';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { after, before, test } from 'node:test';
import { Agent, request } from 'undici';
import { sseEventBatches } from '../src/providers/http.ts';
import { listenOnLoopback } from './helpers/loopback.ts';

let server: Server;
let origin: string;
const open = new Set<ServerResponse>();
const agent = new Agent();

before(async () => {
  server = createServer((_request, response) => {
    // One event now, then nothing: the body stays open until the test ends it.
    response.writeHead(200, { 'content-type': 'text/event-stream' });
    response.write('data: {"n":1}\n\n');
    open.add(response);
  });
  origin = await listenOnLoopback(server);
});

after(async () => {
  for (const response of open) response.end();
  await agent.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

test('a consumer that stops after the client left destroys the body without an unhandled error', async () => {
  const uncaught: unknown[] = [];
  const onUncaught = (error: unknown) => uncaught.push(error);
  process.on('uncaughtException', onUncaught);
  try {
    const response = await request(origin, { dispatcher: agent });
    const client = new AbortController();
    const batches = sseEventBatches({ status: response.statusCode, headers: response.headers, body: response.body }, 'test', client.signal);
    const first = await batches.next();
    assert.deepEqual(
      (first.value as Array<{ data: string }>).map((event) => event.data),
      ['{"n":1}'],
    );
    client.abort();
    await batches.return();
    assert.equal(response.body.destroyed, true, 'the body of a stream the client left is destroyed at once');
    // undici emits its RequestAbortedError on a later tick.
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(uncaught, []);
  } finally {
    process.off('uncaughtException', onUncaught);
  }
});

test('a consumer that stops with the stream complete leaves the body to drain', async () => {
  const response = await request(origin, { dispatcher: agent });
  const batches = sseEventBatches({ status: response.statusCode, headers: response.headers, body: response.body }, 'test', new AbortController().signal);
  await batches.next();
  await batches.return();
  assert.equal(response.body.destroyed, false, 'a complete stream keeps its connection');
  for (const each of open) each.end();
  await new Promise<void>((resolve) => response.body.once('end', () => resolve()));
});
