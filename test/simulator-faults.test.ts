/**
 * Fault injection (per request, at runtime, by config), latency, the control API, and the
 * promise that matters most to the gateway's tests: a client that goes away frees its
 * socket, its in-flight slot and its timers at once.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { Client, request } from 'undici';
import { simulatorOptionsSchema, startSimulator, type Simulator } from '../src/simulator/index.ts';
import { anthropicHeaders, call, openAIChunks, sseEvents, userMessages, waitFor } from './simulator-helpers.ts';

let simulator: Simulator;

before(async () => {
  simulator = await startSimulator({
    seed: 3,
    models: {
      'first-two-fail': { faults: [{ kind: 500, firstRequests: 2 }] },
      'sometimes-fails': { faults: [{ kind: '503', probability: 0.5 }] },
      slow: { latencyMs: 60 },
    },
  });
});
after(() => simulator.close());

const body = (extra: Record<string, unknown> = {}) => ({ model: 'gpt-4o-mini', messages: userMessages, ...extra });
const chat = (input: { fault?: string; headers?: Record<string, string>; extra?: Record<string, unknown> } = {}) =>
  call({
    url: simulator.url,
    path: '/v1/chat/completions',
    body: body(input.extra),
    headers: { ...(input.fault ? { 'x-sim-fault': input.fault } : {}), ...input.headers },
  });

/** Reads a body until the connection fails; returns what arrived and the error. */
async function readUntilFailure(input: { extra?: Record<string, unknown>; fault: string }): Promise<{ text: string; error: unknown }> {
  const response = await request(`${simulator.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-sim-fault': input.fault },
    body: JSON.stringify(body(input.extra)),
  });
  let text = '';
  try {
    for await (const chunk of response.body) text += String(chunk);
  } catch (error) {
    return { text, error };
  }
  return { text, error: undefined };
}

test('status faults answer in the provider format; 429:N sends retry-after N', async () => {
  for (const status of [500, 502, 503]) {
    const answer = await chat({ fault: String(status) });
    assert.equal(answer.status, status);
    assert.equal(JSON.parse(answer.text).error.type, 'server_error');
  }
  const limited = await chat({ fault: '429:2' });
  assert.equal(limited.status, 429);
  assert.equal(limited.headers['retry-after'], '2');
  assert.equal(limited.headers['retry-after-ms'], '2000');
  assert.equal(JSON.parse(limited.text).error.code, 'rate_limit_exceeded');
  assert.equal((await chat({ fault: '429' })).headers['retry-after'], '1', 'one second by default');
  const anthropic = await call({
    url: simulator.url,
    path: '/v1/messages',
    body: { model: 'claude', messages: userMessages, max_tokens: 5 },
    headers: { ...anthropicHeaders, 'x-sim-fault': '429:3' },
  });
  assert.equal(JSON.parse(anthropic.text).error.type, 'rate_limit_error');
  assert.equal(anthropic.headers['retry-after'], '3');
  const unknown = await chat({ fault: 'explode' });
  assert.equal(unknown.status, 400);
  assert.match(JSON.parse(unknown.text).error.message, /unknown fault/);
});

test('reset destroys the connection before any response', async () => {
  await assert.rejects(chat({ fault: 'reset' }), (error: Error & { code?: string }) => {
    assert.match(String(error.code), /ECONNRESET|UND_ERR_SOCKET/);
    return true;
  });
  assert.equal(simulator.stats().byStatus['reset'] !== undefined, true);
});

test('reset-mid-stream sends some chunks then drops the connection; non-stream bodies break halfway', async () => {
  const stream = await readUntilFailure({ fault: 'reset-mid-stream:3', extra: { stream: true } });
  assert.ok(stream.error !== undefined, 'the body fails');
  assert.equal(sseEvents(stream.text).length, 3);
  assert.ok(!stream.text.includes('[DONE]'));
  const whole = await readUntilFailure({ fault: 'reset-mid-stream' });
  assert.ok(whole.error !== undefined);
  assert.ok(whole.text.startsWith('{"id":"chatcmpl-'));
});

test('stall-mid-stream sends some chunks then goes silent on an open connection, until the client leaves', async () => {
  for (const extra of [{ stream: true }, {}]) {
    const before = simulator.stats().clientAborts;
    const response = await request(`${simulator.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-sim-fault': 'stall-mid-stream:3' },
      body: JSON.stringify(body(extra)),
      bodyTimeout: 300,
    });
    assert.equal(response.statusCode, 200);
    let text = '';
    const started = Date.now();
    await assert.rejects(
      (async () => {
        for await (const chunk of response.body) text += String(chunk);
      })(),
      (error: Error & { code?: string }) => error.code === 'UND_ERR_BODY_TIMEOUT',
    );
    assert.ok(Date.now() - started >= 250, 'the body went silent rather than ending');
    if (extra.stream) {
      assert.equal(sseEvents(text).length, 3);
      assert.ok(!text.includes('[DONE]'));
    } else assert.ok(text.startsWith('{"id":"chatcmpl-') && !text.trimEnd().endsWith('}'), text);
    // The client gave up: the simulator lets the request go, holding no socket or timer for it.
    await waitFor({ check: () => simulator.stats().inFlight === 0 && simulator.stats().clientAborts > before, what: "the request released" });
  }
});

test("error-mid-stream sends some chunks then the provider's error event, and ends; a call that does not stream gets a 500", async () => {
  const openai = await chat({ fault: 'error-mid-stream:3', extra: { stream: true } });
  assert.equal(openai.status, 200);
  const openaiEvents = sseEvents(openai.text);
  assert.equal(openaiEvents.length, 4);
  assert.deepEqual(Object.keys(JSON.parse(openaiEvents[3]?.data ?? '{}').error ?? {}), ['message', 'type', 'param', 'code']);
  assert.equal(JSON.parse(openaiEvents[3]?.data ?? '{}').error.type, 'server_error');
  assert.ok(!openai.text.includes('[DONE]'));
  const azure = await call({
    url: simulator.url,
    path: '/openai/deployments/prod/chat/completions?api-version=2024-06-01',
    body: { messages: userMessages, stream: true },
    headers: { 'api-key': 'azure-key', 'x-sim-fault': 'error-mid-stream' },
  });
  const azureEvents = sseEvents(azure.text);
  assert.equal(JSON.parse(azureEvents.at(-1)?.data ?? '{}').error.type, 'server_error', 'the OpenAI service behind Azure speaks mid-stream');
  const anthropic = await call({
    url: simulator.url,
    path: '/v1/messages',
    body: { model: 'claude', messages: userMessages, max_tokens: 50, stream: true },
    headers: { ...anthropicHeaders, 'x-sim-fault': 'error-mid-stream:2' },
  });
  const anthropicEvents = sseEvents(anthropic.text);
  assert.deepEqual(
    anthropicEvents.map((event) => event.event),
    ['message_start', 'content_block_start', 'error'],
  );
  assert.deepEqual(JSON.parse(anthropicEvents[2]?.data ?? '{}'), { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded (simulated).' } });
  const whole = await chat({ fault: 'error-mid-stream' });
  assert.equal(whole.status, 500);
  assert.equal(JSON.parse(whole.text).error.type, 'server_error');
});

test('malformed-json: a 200 whose body is not JSON; in a stream, one chunk with broken JSON', async () => {
  const answer = await chat({ fault: 'malformed-json' });
  assert.equal(answer.status, 200);
  assert.throws(() => JSON.parse(answer.text));
  const stream = await chat({ fault: 'malformed-json', extra: { stream: true } });
  const events = sseEvents(stream.text);
  const broken = events.filter((event) => {
    try {
      if (event.data !== '[DONE]') JSON.parse(event.data);
      return false;
    } catch {
      return true;
    }
  });
  assert.equal(broken.length, 1);
  assert.equal(events.at(-1)?.data, '[DONE]', 'the SSE framing stays valid');
});

test('malformed-sse: a valid start, then lines that are not events or not JSON, and no [DONE]', async () => {
  const answer = await chat({ fault: 'malformed-sse', extra: { stream: true } });
  assert.equal(answer.status, 200);
  const events = sseEvents(answer.text);
  assert.doesNotThrow(() => JSON.parse(events[0]?.data ?? ''));
  assert.ok(events.slice(2).some((event) => !event.data.startsWith('{') || !event.data.endsWith('}')));
  assert.ok(!answer.text.includes('[DONE]'));
});

test('slow-stream and x-sim-tokens-per-second pace the tokens; x-sim-ttft-ms delays the first one', async () => {
  const paced = await chat({ fault: 'slow-stream:100', headers: { 'x-sim-completion-tokens': '6' }, extra: { stream: true } });
  assert.equal(openAIChunks(paced.text).length, 1 + 6 + 1);
  assert.ok(paced.totalMs >= 45, `6 tokens at 100/s take ≥ 50 ms, took ${paced.totalMs}`);
  const ttft = await chat({ headers: { 'x-sim-ttft-ms': '80' }, extra: { stream: true } });
  assert.ok(ttft.headersMs < 60, `headers go out before the first token (${ttft.headersMs} ms)`);
  assert.ok(ttft.totalMs >= 75, `first token after 80 ms, took ${ttft.totalMs}`);
  const baseline = await chat({ extra: { stream: true } });
  assert.ok(baseline.totalMs < 50, `zero latency by default, took ${baseline.totalMs}`);
});

test('latency comes from config or x-sim-latency-ms', async () => {
  const configured = await call({ url: simulator.url, path: '/v1/chat/completions', body: body({ model: 'slow' }) });
  assert.ok(configured.headersMs >= 55, `config latency 60 ms, took ${configured.headersMs}`);
  const requested = await chat({ headers: { 'x-sim-latency-ms': '60' } });
  assert.ok(requested.headersMs >= 55);
});

test('config faults: "first N requests" and seeded probabilities', async () => {
  const statuses = [];
  for (let index = 0; index < 3; index++) {
    statuses.push((await call({ url: simulator.url, path: '/v1/chat/completions', body: body({ model: 'first-two-fail' }) })).status);
  }
  assert.deepEqual(statuses, [500, 500, 200]);
  const draw = async (target: Simulator) => {
    const seen: number[] = [];
    for (let index = 0; index < 30; index++) {
      seen.push((await call({ url: target.url, path: '/v1/chat/completions', body: body({ model: 'sometimes-fails' }) })).status);
    }
    return seen;
  };
  const twin = await startSimulator({ seed: 3, models: { 'sometimes-fails': { faults: [{ kind: '503', probability: 0.5 }] } } });
  try {
    simulator.reset();
    const first = await draw(simulator);
    const failures = first.filter((status) => status === 503).length;
    assert.ok(failures >= 5 && failures <= 25, `about half fail, got ${failures}/30`);
    assert.deepEqual(await draw(twin), first, 'same seed, same faults');
  } finally {
    await twin.close();
  }
});

test('the control API sets, lists and clears runtime faults, per model or for all', async () => {
  const set = await call({ url: simulator.url, path: '/_sim/faults', body: { model: 'gpt-4o-mini', faults: [{ kind: '502' }] } });
  assert.equal(set.status, 200);
  assert.equal((await chat()).status, 502);
  const other = await call({ url: simulator.url, path: '/v1/chat/completions', body: body({ model: 'other' }) });
  assert.equal(other.status, 200, 'only the named model fails');
  const listed = JSON.parse((await call({ url: simulator.url, path: '/_sim/faults' })).text);
  assert.equal(listed.faults['gpt-4o-mini'][0].kind, '502');
  await call({ url: simulator.url, path: '/_sim/faults', body: { model: 'gpt-4o-mini', faults: [] } });
  assert.equal((await chat()).status, 200);
  simulator.setFaults({ faults: [{ kind: '503', firstRequests: 1 }] });
  assert.equal((await chat()).status, 503, 'a fault for all models');
  assert.equal((await chat()).status, 200, 'fired for the first request only');
  await call({ url: simulator.url, path: '/_sim/faults', method: 'DELETE' });
  const invalid = await call({ url: simulator.url, path: '/_sim/faults', body: { faults: [{ kind: 'boom' }] } });
  assert.equal(invalid.status, 400);
});

test('GET /_sim/stats counts requests per path, model, status and fault', async () => {
  simulator.reset();
  await chat();
  await chat({ fault: '500' });
  await call({ url: simulator.url, path: '/v1/embeddings', body: { model: 'embedder', input: 'x' } });
  const stats = JSON.parse((await call({ url: simulator.url, path: '/_sim/stats' })).text);
  assert.equal(stats.requests, 3, 'control requests are not counted');
  assert.deepEqual(stats.byPath, { '/v1/chat/completions': 2, '/v1/embeddings': 1 });
  assert.deepEqual(stats.byModel, { 'gpt-4o-mini': 2, embedder: 1 });
  assert.deepEqual(stats.byStatus, { '200': 2, '500': 1 });
  assert.deepEqual(stats.faults, { '500': 1 });
  assert.equal(stats.inFlight, 0);
});

function timers(): number {
  return process.getActiveResourcesInfo().filter((resource) => resource === 'Timeout').length;
}

/** A simulator of its own, so no other test's keep-alive sockets count as open connections. */
async function isolated(run: (target: Simulator) => Promise<void>): Promise<void> {
  const target = await startSimulator({});
  try {
    await run(target);
  } finally {
    await target.close();
  }
}

/**
 * Sends a chat request on a connection of its own (node:http, no agent) that `signal` tears
 * down; resolves with the response once headers arrive, or with the error.
 */
function sendOnOwnConnection(input: {
  url: string;
  headers: Record<string, string>;
  body: unknown;
  signal: AbortSignal;
}): Promise<IncomingMessage | Error> {
  return new Promise((resolve) => {
    const outgoing = httpRequest(`${input.url}/v1/chat/completions`, {
      method: 'POST',
      agent: false,
      headers: { 'content-type': 'application/json', ...input.headers },
      signal: input.signal,
    });
    outgoing.once('response', resolve);
    outgoing.once('error', resolve);
    outgoing.end(JSON.stringify(input.body));
  });
}

test('a client that aborts mid-stream frees the socket, the in-flight slot and the timers at once', () =>
  isolated(async (target) => {
    const baselineTimers = timers();
    const controller = new AbortController();
    const response = await sendOnOwnConnection({
      url: target.url,
      headers: { 'x-sim-tokens-per-second': '5' },
      body: body({ stream: true }),
      signal: controller.signal,
    });
    assert.ok(!(response instanceof Error));
    response.on('error', () => undefined);
    const [first] = (await once(response, 'data')) as [Buffer];
    assert.ok(String(first).startsWith('data: '));
    assert.equal(target.stats().inFlight, 1);
    assert.equal(target.stats().openConnections, 1);
    assert.ok(timers() > baselineTimers, 'the stream waits on a pacing timer');
    controller.abort();
    await waitFor({ check: () => target.stats().openConnections === 0, what: 'the upstream socket closed' });
    assert.equal(target.stats().inFlight, 0);
    assert.equal(target.stats().clientAborts, 1);
    await waitFor({ check: () => timers() <= baselineTimers, what: 'the pacing timer cleared', timeoutMs: 100 });
  }));

test('hang: accepted and never answered, released when the client goes away', () =>
  isolated(async (target) => {
    const controller = new AbortController();
    const pending = sendOnOwnConnection({ url: target.url, headers: { 'x-sim-fault': 'hang' }, body: body(), signal: controller.signal });
    await waitFor({ check: () => target.stats().inFlight === 1, what: 'the hanging request in flight' });
    const statsClient = new Client(target.url);
    const stats = JSON.parse((await call({ url: target.url, path: '/_sim/stats', dispatcher: statsClient })).text);
    await statsClient.close();
    assert.equal(stats.openConnections, 1, 'the HTTP view leaves out the asking connection');
    assert.equal(stats.inFlight, 1);
    controller.abort();
    assert.ok((await pending) instanceof Error);
    await waitFor({ check: () => target.stats().inFlight === 0 && target.stats().openConnections === 0, what: 'released' });
    assert.deepEqual(target.stats().byStatus, { none: 1 });
    assert.deepEqual(target.stats().faults, { hang: 1 });
  }));

test('options are validated: loopback only, YAML-style numeric fault kinds, sane ranges', () => {
  assert.equal(simulatorOptionsSchema.safeParse({ host: '0.0.0.0' }).success, false);
  assert.equal(simulatorOptionsSchema.safeParse({ defaults: { completionTokens: { min: 9, max: 3 } } }).success, false);
  assert.equal(simulatorOptionsSchema.safeParse({ models: { m: { faults: [{ kind: 'explode' }] } } }).success, false);
  assert.equal(simulatorOptionsSchema.safeParse({ models: { m: { unknownOption: true } } }).success, false);
  const parsed = simulatorOptionsSchema.parse({ models: { m: { faults: [{ kind: 503 }], limits: { rpm: 60 } } } });
  assert.equal(parsed.models['m']?.faults?.[0]?.kind, '503');
  assert.equal(parsed.models['m']?.limits?.windowMs, 10_000, 'RPM windows default to 10 s');
  assert.equal(parsed.port, 0);
});
