/**
 * Fuzzes what upstreams answer. A mutating proxy sits between the gateway and the simulator:
 * it forwards each upstream request, takes the simulator's real answer in the provider's own
 * wire format (OpenAI, Azure OpenAI, an OpenAI-compatible server, Anthropic; JSON or SSE) and
 * damages it the way a property drew: another status, noise in the rate-limit and retry-after
 * headers, fields of the JSON replaced or deleted, events dropped, repeated, rewritten or
 * replaced with junk, the body cut short, the connection dropped, the bytes split at random.
 *
 * The invariant, for every call: an answer within the deadline that is either a valid success
 * (a chat.completion; a stream whose every event is JSON and that ends with `[DONE]`) or a
 * clear OpenAI-format error (a stream that already started ends with an error event) — never a
 * 500, a hang, or a damaged line passed on as a success; exactly one ledger record per call
 * that says what the client saw, with token counts and cost that are finite and not negative.
 * Afterwards no upstream request is left open and the gateway still serves.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { Agent, request } from 'undici';
import { assertRecorded, callChat, type Observed } from './helpers/fuzz-calls.ts';
import { waitFor } from './helpers/fuzz-http.ts';
import { fuzzRuns, prototypeName } from './helpers/fuzz-stack.ts';
import { startStack, type Stack } from './helpers/stack.ts';

/** How the proxy damages one upstream answer (every attempt of a call gets the same damage). */
interface Damage {
  status: number | null;
  headers: Record<string, string>;
  /** JSON edits: a path picked by index among all the body's (or an event's) paths. */
  edits: Array<{ event: number; pick: number; value: { set: unknown } | 'delete' }>;
  /** Stream events: per event index, what to do with it. */
  events: Array<{ event: number; action: 'drop' | 'repeat' | { data: string } | { line: string } }>;
  /** Cut the body after this fraction of its bytes (null: whole). */
  cutAt: number | null;
  /** After the (possibly cut) body: end the response cleanly, or destroy the connection. */
  ending: 'end' | 'destroy';
  /** Sizes of the writes the body is split into (cycled). */
  writes: number[];
}

const NO_DAMAGE: Damage = { status: null, headers: {}, edits: [], events: [], cutAt: null, ending: 'end', writes: [] };
let damage: Damage = NO_DAMAGE;
let upstreamInFlight = 0;
let clockOffsetMs = 0;
const DAY_MS = 86_400_000;

/** Header values a proxy may send (Node refuses control characters in them). */
const headerValue = fc.oneof(
  fc.constantFrom('0', '-1', '1e309', 'NaN', '', '99999999999999999999', '1.5', 'Wed, 21 Oct 2015 07:28:00 GMT', '6m0s', '2ms', '1h2m3.5s', 'abc', '0.000001'),
  fc.string({ maxLength: 24 }).filter((value) => !/[^\t\x20-\x7e]/.test(value)),
);
const NOISY_HEADERS = [
  'retry-after',
  'retry-after-ms',
  'content-type',
  'x-ratelimit-limit-requests',
  'x-ratelimit-remaining-requests',
  'x-ratelimit-reset-requests',
  'x-ratelimit-limit-tokens',
  'x-ratelimit-remaining-tokens',
  'x-ratelimit-reset-tokens',
  'anthropic-ratelimit-requests-limit',
  'anthropic-ratelimit-requests-remaining',
  'anthropic-ratelimit-requests-reset',
  'anthropic-ratelimit-tokens-remaining',
  'anthropic-ratelimit-tokens-reset',
] as const;
const anyJson = fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.jsonValue({ maxDepth: 2, stringUnit: 'binary' }), prototypeName);

const damageArbitrary: fc.Arbitrary<Damage> = fc.record({
  // Weighted towards answers that keep their status and length, so successes with damaged
  // headers, fields and events are drawn as often as outright failures.
  status: fc.oneof(
    { arbitrary: fc.constant(null), weight: 3 },
    { arbitrary: fc.oneof(fc.constantFrom(200, 201, 204, 400, 401, 403, 404, 408, 409, 413, 422, 429, 500, 502, 503, 504, 529), fc.integer({ min: 200, max: 599 })), weight: 1 },
  ),
  headers: fc.dictionary(fc.constantFrom(...NOISY_HEADERS), headerValue, { maxKeys: 4 }),
  edits: fc.array(
    fc.record({ event: fc.nat({ max: 40 }), pick: fc.nat(), value: fc.oneof(fc.constant('delete' as const), anyJson.map((set) => ({ set }))) }),
    { maxLength: 3 },
  ),
  events: fc.array(
    fc.record({
      event: fc.nat({ max: 40 }),
      action: fc.oneof(
        fc.constantFrom('drop' as const, 'repeat' as const),
        anyJson.map((value) => ({ data: JSON.stringify(value) })),
        fc.constantFrom('[DONE]', '{', '{"object":"chat.completion.chunk"}', '{"type":"message_stop"}', '{"type":"error","error":{"type":"overloaded_error","message":"x"}}').map((data) => ({ data })),
        prototypeName.map((type) => ({ data: JSON.stringify({ type: 'error', error: { type, message: 'x' } }) })),
        fc.string({ maxLength: 40 }).map((line) => ({ line })),
      ),
    }),
    { maxLength: 4 },
  ),
  cutAt: fc.oneof({ arbitrary: fc.constant(null), weight: 4 }, { arbitrary: fc.double({ min: 0, max: 1, noNaN: true }), weight: 1 }),
  ending: fc.oneof({ arbitrary: fc.constant('end' as const), weight: 4 }, { arbitrary: fc.constant('destroy' as const), weight: 1 }),
  writes: fc.array(fc.integer({ min: 1, max: 300 }), { maxLength: 4 }),
});

/** Every path into a JSON value (object keys and array indices), depth first. */
function pathsOf(value: unknown, prefix: Array<string | number> = [], found: Array<Array<string | number>> = []): Array<Array<string | number>> {
  if (value !== null && typeof value === 'object') {
    for (const [key, child] of Object.entries(value)) {
      const path = [...prefix, Array.isArray(value) ? Number(key) : key];
      found.push(path);
      pathsOf(child, path, found);
    }
  }
  return found;
}

function edit(value: unknown, change: Damage['edits'][number]): void {
  const paths = pathsOf(value);
  if (paths.length === 0) return;
  const path = paths[change.pick % paths.length]!;
  let parent = value as Record<string | number, unknown>;
  for (const segment of path.slice(0, -1)) parent = parent[segment] as Record<string | number, unknown>;
  const last = path.at(-1)!;
  // A copy: the drawn value is the plan's, and every attempt of a call applies the plan again.
  if (change.value !== 'delete') parent[last] = structuredClone(change.value.set);
  else if (Array.isArray(parent)) parent.splice(last as number, 1);
  else delete parent[last];
}

/** Applies the JSON edits aimed at `index` (0 for a whole JSON body) to `text`, if it is JSON. */
function editJson(text: string, index: number, edits: Damage['edits']): string {
  const mine = edits.filter((change) => change.event === index);
  if (mine.length === 0) return text;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return text;
  }
  for (const change of mine) edit(value, change);
  return JSON.stringify(value);
}

/** A JSON body, damaged as one event: every edit applies to it, and the actions aimed at event 0. */
function damageJson(body: string, plan: Damage): string {
  let text = editJson(body, 0, plan.edits.map((change) => ({ ...change, event: 0 })));
  for (const { action } of plan.events.filter((each) => each.event === 0)) {
    if (action === 'drop') text = '';
    else if (action === 'repeat') text = `${text}${text}`;
    else text = 'data' in action ? action.data : action.line;
  }
  return text;
}

/** The simulator's SSE body, damaged event by event. */
function damageStream(body: string, plan: Damage): string {
  const events = body.split('\n\n').filter((event) => event.trim() !== '');
  const out: string[] = [];
  events.forEach((event, index) => {
    const lines = event.split('\n').map((line) => (line.startsWith('data: ') ? `data: ${editJson(line.slice(6), index, plan.edits)}` : line));
    let kept = [lines.join('\n')];
    for (const { action } of plan.events.filter((each) => each.event === index)) {
      if (action === 'drop') kept = [];
      else if (action === 'repeat') kept = [...kept, ...kept];
      else if ('data' in action) kept = [`data: ${action.data}`];
      else kept = [action.line];
    }
    out.push(...kept);
  });
  return out.map((event) => `${event}\n\n`).join('');
}

const HOP_BY_HOP = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'date']);

async function answer(input: { response: ServerResponse; status: number; headers: IncomingHttpHeaders; body: string; stream: boolean; plan: Damage }): Promise<void> {
  const { response, status, headers, body, stream, plan } = input;
  let text = stream ? damageStream(body, plan) : damageJson(body, plan);
  if (plan.cutAt !== null) text = text.slice(0, Math.floor(text.length * plan.cutAt));
  const outgoing: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) outgoing[name] = value;
  Object.assign(outgoing, plan.headers);
  response.writeHead(plan.status ?? status, outgoing);
  const bytes = Buffer.from(text);
  let offset = 0;
  for (let index = 0; offset < bytes.length; index++) {
    const size = plan.writes.length === 0 ? bytes.length : plan.writes[index % plan.writes.length]!;
    response.write(bytes.subarray(offset, offset + size));
    offset += size;
    if (plan.writes.length > 0) await new Promise((resolveLater) => setImmediate(resolveLater));
  }
  if (plan.ending === 'destroy') response.destroy();
  else response.end();
}

const ROUTES = ['openai', 'azure', 'compatible', 'claude'] as const;
const CLEAN_HEADER = 'x-fuzz-clean';

let proxy: Server;
let proxyUrl: string;
let stack: Stack;
let dispatcher: Agent;

function config(url: string): string {
  // Each provider twice: the deployment the properties damage, and a clean twin (its requests
  // carry x-fuzz-clean, which the proxy passes through undamaged) for the check afterwards.
  const deployment = (name: string, provider: string, model: string, baseUrl: string) =>
    ['', '-clean']
      .map(
        (twin) => `
  ${name}${twin}:
    provider: ${provider}
    baseUrl: ${baseUrl}
    model: ${model}
    apiKey: key-${name}
    terms: ${provider === 'openai-compatible' ? 'llama-3.1' : provider}${twin ? `\n    headers: { ${CLEAN_HEADER}: '1' }` : ''}`,
      )
      .join('');
  const routes = ROUTES.flatMap((route) =>
    ['', '-clean'].map((twin) => `  ${route}${twin}: { deployments: [{ deployment: ${route}${twin} }], timeoutMs: 3000 }`),
  );
  return `
retry: { maxAttempts: 2, initialDelayMs: 1, maxDelayMs: 5, maxRetryAfterMs: 20 }
health: { failureThreshold: 1000000, cooldownMs: 0, maxCooldownMs: 0 }
deployments:${deployment('openai', 'openai', 'gpt-4o-mini', `${url}/v1`)}${deployment('azure', 'azure-openai', 'gpt-4o-mini', url)}${deployment('compatible', 'openai-compatible', 'llama-3.1-8b', `${url}/v1`)}${deployment('claude', 'anthropic', 'claude-sonnet-4-20250514', url)}
routes:
${routes.join('\n')}
`;
}

before(async () => {
  // The proxy forwards to the simulator the stack starts; the stack's gateway points at the proxy.
  let simulatorUrl = '';
  proxy = createServer((incoming, response) => {
    upstreamInFlight++;
    response.on('close', () => upstreamInFlight--);
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', async () => {
      const plan = incoming.headers[CLEAN_HEADER] === undefined ? damage : NO_DAMAGE;
      const headers = { ...incoming.headers };
      delete headers.host;
      delete headers['content-length'];
      delete headers.connection;
      try {
        const upstream = await request(`${simulatorUrl}${incoming.url}`, { method: 'POST', headers, body: Buffer.concat(chunks) });
        const body = await upstream.body.text();
        const stream = String(upstream.headers['content-type'] ?? '').startsWith('text/event-stream');
        await answer({ response, status: upstream.statusCode, headers: upstream.headers as IncomingHttpHeaders, body, stream, plan });
      } catch {
        // The gateway gave up on this attempt (its deadline) while the proxy worked: nothing to answer.
        response.destroy();
      }
    });
  });
  await new Promise<void>((resolveListen) => proxy.listen(0, '127.0.0.1', resolveListen));
  proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  stack = await startStack({
    config: (url) => {
      simulatorUrl = url;
      return config(proxyUrl);
    },
    // The gateway's clock: each property run moves it two days on, past any wait, cooldown or
    // quota reset the previous run's damage made the router honour (a real upstream's longest
    // window is a day), so every run meets a deployment the router still sends to.
    start: { now: () => Date.now() + clockOffsetMs },
  });
  dispatcher = new Agent({ connections: 8 });
});

after(async () => {
  await dispatcher.close();
  await stack.close();
  await new Promise((resolveClose) => proxy.close(resolveClose));
});

/** The invariant for one call's answer, as the client saw it. */
function assertAnswer(call: Observed, stream: boolean, context: string): void {
  assert.notEqual(call.status, 500, `${context}: ${call.body.slice(0, 300)}`);
  assert.notEqual(call.errorCode, 'internal_error', `${context}: ${call.body.slice(0, 300)}`);
  if (call.status !== 200) return; // callChat parsed the OpenAI error and its code.
  if (!stream) {
    const parsed = JSON.parse(call.body) as { object?: unknown; choices?: unknown };
    assert.equal(parsed.object, 'chat.completion', `${context}: ${call.body.slice(0, 300)}`);
    assert.ok(Array.isArray(parsed.choices), `${context}: ${call.body.slice(0, 300)}`);
    return;
  }
  // A stream: every event is [DONE], the final error event, or JSON with what the gateway
  // vouches for in a chunk (src/providers/openai-stream.ts, isChunk): a `choices` array and a
  // `usage` that is an object when present. Fields inside a chunk are the upstream's: a content
  // chunk is relayed as its bytes once it is known to be JSON, so a chunk whose `object` the
  // upstream left out passes, as clients (the openai SDK, the AI SDK) accept it.
  for (const event of call.body.split('\n\n').filter((each) => each.trim() !== '')) {
    assert.ok(event.startsWith('data: '), `${context}: a stream event that is not data: ${event.slice(0, 200)}`);
    const data = event.slice(6);
    if (data === '[DONE]') continue;
    const parsed = JSON.parse(data) as { choices?: unknown; usage?: unknown; error?: unknown };
    if (parsed.error !== undefined) continue;
    assert.ok(Array.isArray(parsed.choices), `${context}: relayed ${data.slice(0, 200)}`);
    assert.ok(parsed.usage === undefined || (typeof parsed.usage === 'object'), `${context}: relayed ${data.slice(0, 200)}`);
  }
}

for (const route of ROUTES) {
  for (const stream of [false, true]) {
    test(`${route}${stream ? ', streamed' : ''}: damaged upstream answers are a valid success or a clear error, each recorded once`, async () => {
      const seen = stack.records.length;
      const observed: Observed[] = [];
      await fc.assert(
        fc.asyncProperty(damageArbitrary, async (drawn) => {
          damage = drawn;
          clockOffsetMs += 2 * DAY_MS;
          const call = await callChat({ baseUrl: stack.seed.url, dispatcher, model: route, stream, timeoutMs: 8_000 });
          observed.push(call);
          assertAnswer(call, stream, `${route} ${JSON.stringify(drawn).slice(0, 400)}`);
        }),
        // Shrinking a failure replays calls: bound the whole property, and count running out as failing.
        { ...fuzzRuns(60), interruptAfterTimeLimit: 90_000, markInterruptAsFailure: true },
      );
      damage = NO_DAMAGE;
      await stack.waitForRecords(seen + observed.length);
      assertRecorded(observed, stack.records);
      for (const record of stack.records.slice(seen)) {
        for (const count of [record.promptTokens, record.completionTokens, record.cachedTokens]) {
          assert.ok(Number.isSafeInteger(count) && count >= 0, `${record.id}: token count ${count}`);
        }
        assert.ok(Number.isFinite(record.costUsd) && record.costUsd >= 0, `${record.id}: cost ${record.costUsd}`);
      }
      await waitFor(() => upstreamInFlight === 0 && stack.simulator.stats().inFlight === 0, 'every upstream request ended');
    });
  }
}

/** One call with `plan` as the damage, and the record it left. */
async function damagedCall(route: (typeof ROUTES)[number], stream: boolean, plan: Partial<Damage>) {
  damage = { ...NO_DAMAGE, ...plan };
  const seen = stack.records.length;
  try {
    const call = await callChat({ baseUrl: stack.seed.url, dispatcher, model: route, stream });
    const records = await stack.waitForRecords(seen + 1);
    assertRecorded([call], records);
    return { call, record: records.find((record) => record.id === call.requestId)! };
  } finally {
    damage = NO_DAMAGE;
  }
}

const usageChunk = (usage: Record<string, unknown>) =>
  JSON.stringify({ id: 'chatcmpl-x', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini', choices: [], usage });

test('regression: a streamed choice without a delta is relayed as sent, not a 500', async () => {
  const odd = JSON.stringify({ id: 'chatcmpl-x', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini', choices: [{ index: 0, finish_reason: null }] });
  const { call, record } = await damagedCall('openai', true, { events: [{ event: 1, action: { data: odd } }] });
  assert.equal(call.status, 200, call.body);
  assert.equal(call.errorCode, null, call.body);
  assert.ok(call.body.includes(`data: ${odd}\n\n`), call.body);
  assert.equal(record.status, 'ok');
});

test('regression: usage with negative, fractional or unstorable token counts is an invalid answer, never a negative cost', async () => {
  for (const usage of [
    { prompt_tokens: -5, completion_tokens: 3, total_tokens: -2 },
    { prompt_tokens: 5, completion_tokens: 2.5, total_tokens: 7.5 },
    // Beyond the ledger's integer columns: PostgreSQL would refuse the row, and its batch with it.
    { prompt_tokens: 2_147_483_648, completion_tokens: 1, total_tokens: 2_147_483_649 },
  ]) {
    const streamed = await damagedCall('openai', true, { events: [{ event: 1, action: { data: usageChunk(usage) } }] });
    assert.equal(streamed.call.errorCode, 'upstream_invalid_response', streamed.call.body);
    assert.ok(streamed.record.costUsd >= 0 && streamed.record.promptTokens >= 0, JSON.stringify(streamed.record));
    const whole = JSON.stringify({ id: 'chatcmpl-x', object: 'chat.completion', created: 1, model: 'gpt-4o-mini', choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }], usage });
    const answered = await damagedCall('openai', false, { events: [{ event: 0, action: { data: whole } }] });
    assert.equal(answered.call.status, 502, answered.call.body);
    assert.equal(answered.call.errorCode, 'upstream_invalid_response', answered.call.body);
  }
  const message = JSON.stringify({
    id: 'msg_x', type: 'message', role: 'assistant', model: 'claude-sonnet-4-20250514', content: [{ type: 'text', text: 'hi' }],
    stop_reason: 'end_turn', stop_sequence: null, usage: { input_tokens: -5, output_tokens: 3 },
  });
  const claude = await damagedCall('claude', false, { events: [{ event: 0, action: { data: message } }] });
  assert.equal(claude.call.status, 502, claude.call.body);
  assert.equal(claude.call.errorCode, 'upstream_invalid_response', claude.call.body);
});

test('after the damaged answers the gateway still serves: every clean twin succeeds, every damaged deployment succeeds or waits out the quota it was told of', async () => {
  damage = NO_DAMAGE;
  for (const route of ROUTES) {
    for (const stream of [false, true]) {
      const clean = await callChat({ baseUrl: stack.seed.url, dispatcher, model: `${route}-clean`, stream });
      assert.equal(clean.status, 200, `${route}-clean: ${clean.body.slice(0, 300)}`);
      assert.equal(clean.errorCode, null, `${route}-clean: ${clean.body.slice(0, 300)}`);
      // The damaged deployment's last report may have said no quota is left until a reset the
      // router now honours: then a 429 that says when to retry, and nothing else.
      const damaged = await callChat({ baseUrl: stack.seed.url, dispatcher, model: route, stream });
      if (damaged.status === 429) {
        assert.equal(damaged.errorCode, 'upstream_rate_limited', damaged.body);
        assert.match(damaged.retryAfter ?? '', /^\d+$/, damaged.body);
      } else {
        assert.equal(damaged.status, 200, `${route}: ${damaged.body.slice(0, 300)}`);
        assert.equal(damaged.errorCode, null, `${route}: ${damaged.body.slice(0, 300)}`);
      }
    }
  }
});
