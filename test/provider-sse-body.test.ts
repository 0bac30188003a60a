/**
 * An upstream body on its way through Seed's undici handler (upstream-call.ts) and the batch
 * reader (`sseEventBatches`, `decodedBody`): a consumer that stops early because the client
 * left aborts the request at once, without an unhandled error; one that stops because the stream
 * is complete lets the body drain, keeping the connection; a body nobody reads fast enough
 * pauses the connection instead of piling up, and a slow reader still gets every read in order; a large whole body is read to its end; and a
 * client that leaves while the request waits for a connection is answered at once.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { after, before, test } from 'node:test';
import { Agent } from 'undici';
import { CallAbort } from '../src/abort.ts';
import { SeedError } from '../src/errors.ts';
import { postJson, readJsonText, sseEventBatches, type UpstreamResponse } from '../src/providers/http.ts';
import { MAX_WAITING_READS } from '../src/providers/upstream-call.ts';
import { listenOnLoopback } from './helpers/loopback.ts';

let server: Server;
let origin: string;
/** The server's side of each open response, by request path. */
const open = new Map<string, ServerResponse>();
const agent = new Agent();
const BIG_READ = 'x'.repeat(64 * 1024);
const NUMBERED_EVENTS = 600;

before(async () => {
  server = createServer((request: IncomingMessage, response: ServerResponse) => {
    request.resume();
    const path = request.url ?? '/';
    if (path.startsWith('/big-json')) {
      // 8 MB of JSON in many writes: far more reads than MAX_WAITING_READS.
      response.writeHead(200, { 'content-type': 'application/json' });
      response.write('{"text":"');
      for (let index = 0; index < 128; index++) response.write(BIG_READ);
      response.end('"}');
      return;
    }
    if (path.startsWith('/numbered')) {
      // Numbered events, each written on its own turn, far faster than the test reads them.
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      void (async () => {
        for (let index = 0; index < NUMBERED_EVENTS; index++) {
          response.write(`data: {"n":${index},"pad":"${'p'.repeat(2_000)}"}\n\n`);
          await new Promise((resolve) => setImmediate(resolve));
        }
        response.end();
      })();
      return;
    }
    if (path.startsWith('/hold')) {
      // Takes the only connection and never answers until the test ends it.
      open.set(path, response);
      return;
    }
    // One event now, then nothing: the body stays open until the test ends it.
    response.writeHead(200, { 'content-type': 'text/event-stream' });
    response.write('data: {"n":1}\n\n');
    open.set(path, response);
  });
  origin = await listenOnLoopback(server);
});

after(async () => {
  for (const response of open.values()) response.end();
  await agent.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function post(path: string, signal: CallAbort, dispatcher = agent): Promise<UpstreamResponse> {
  return postJson({ dispatcher, url: `${origin}${path}`, headers: {}, body: {}, signal, timeoutMs: 10_000, label: 'test' });
}

/** Resolves when the server sees the response's connection close before the response ended. */
function closedEarly(path: string): Promise<boolean> {
  const response = open.get(path);
  assert.ok(response, `the server holds ${path}`);
  return new Promise((resolve) => response.once('close', () => resolve(!response.writableFinished)));
}

test('a consumer that stops after the client left aborts the request, without an unhandled error', async () => {
  const uncaught: unknown[] = [];
  const onUncaught = (error: unknown) => uncaught.push(error);
  process.on('uncaughtException', onUncaught);
  try {
    const client = new CallAbort();
    const response = await post('/left', client);
    const batches = sseEventBatches(response, client);
    const first = await batches.next();
    assert.deepEqual(
      (first.value as Array<{ data: string }>).map((event) => event.data),
      ['{"n":1}'],
    );
    const closed = closedEarly('/left');
    client.abort(new SeedError('client_closed_request', 'gone'));
    await batches.return();
    assert.equal(await closed, true, 'the upstream connection of a stream the client left is closed at once');
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(uncaught, []);
  } finally {
    process.off('uncaughtException', onUncaught);
  }
});

test('a consumer that stops with the stream complete leaves the body to drain', async () => {
  const response = await post('/complete', new CallAbort());
  const batches = sseEventBatches(response, new CallAbort());
  await batches.next();
  await batches.return();
  const upstream = open.get('/complete') as ServerResponse;
  let closedBeforeEnd = false;
  upstream.once('close', () => (closedBeforeEnd = !upstream.writableFinished));
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(response.body.failed, false, 'a complete stream keeps its connection');
  upstream.end('data: {"n":2}\n\n');
  const deadline = Date.now() + 5_000;
  while (!response.body.ended && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(response.body.ended, true, 'the rest of the body was read to its end');
  assert.equal(closedBeforeEnd, false);
});

test('reads nobody takes pause the connection, and taking them resumes it', async () => {
  const response = await post('/slow-reader', new CallAbort());
  const upstream = open.get('/slow-reader') as ServerResponse;
  // Far more than MAX_WAITING_READS reads, each on its own turn so each is its own read.
  let written = 0;
  for (let index = 0; index < MAX_WAITING_READS * 8; index++) {
    upstream.write(`: ${BIG_READ}\n\n`);
    written += 1;
    await new Promise((resolve) => setImmediate(resolve));
  }
  await new Promise((resolve) => setTimeout(resolve, 100));
  // Paused: only a bounded number of reads waits in the body (undici may deliver one more after pausing).
  let taken = response.body.take().length;
  assert.ok(taken >= MAX_WAITING_READS && taken <= MAX_WAITING_READS + 2, `${taken} reads waited`);
  upstream.end();
  const deadline = Date.now() + 5_000;
  while (!response.body.ended && Date.now() < deadline) {
    taken += response.body.take().length;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  taken += response.body.take().length;
  assert.equal(response.body.ended, true, 'taking the reads resumed the connection');
  assert.ok(taken > MAX_WAITING_READS + 2, `${taken} of ${written} writes' reads arrived in all`);
});

test('regression: a slow consumer gets every event in order across pauses and resumes', async () => {
  // Resuming a paused connection makes undici parse what its socket holds at once; resumed from
  // inside the consumer's take, those reads were decoded before the ones just taken.
  const signal = new CallAbort();
  const response = await post('/numbered', signal);
  const seen: number[] = [];
  for await (const batch of sseEventBatches(response, signal)) {
    for (const event of batch) seen.push((JSON.parse(event.data) as { n: number }).n);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  assert.equal(seen.length, NUMBERED_EVENTS);
  assert.deepEqual(seen, Array.from({ length: NUMBERED_EVENTS }, (_, index) => index));
});

test('a whole body far larger than the waiting bound is read to its end', async () => {
  const response = await post('/big-json', new CallAbort());
  const { value, text } = await readJsonText(response, 'test');
  assert.equal(text.length, 128 * BIG_READ.length + '{"text":""}'.length);
  assert.equal((value as { text: string }).text.length, 128 * BIG_READ.length);
});

test('a client that leaves while the request waits for a connection is answered at once', async () => {
  const single = new Agent({ connections: 1 });
  try {
    const holding = postJson({ dispatcher: single, url: `${origin}/hold`, headers: {}, body: {}, signal: new CallAbort(), timeoutMs: 10_000, label: 'test' });
    holding.catch(() => {});
    while (!open.has('/hold')) await new Promise((resolve) => setTimeout(resolve, 5));
    const client = new CallAbort();
    const queued = post('/queued', client, single);
    const reason = new SeedError('client_closed_request', 'gone while queued');
    setTimeout(() => client.abort(reason), 20);
    const started = Date.now();
    await assert.rejects(queued, (error) => error === reason);
    assert.ok(Date.now() - started < 1_000);
    (open.get('/hold') as ServerResponse).end();
  } finally {
    await single.destroy();
  }
});
