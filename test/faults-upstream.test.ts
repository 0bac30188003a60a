/**
 * Upstream faults in bulk: resets before and during a stream, malformed JSON and SSE, 5xx and
 * 429 storms, hangs past the deadline. Fallback where one exists, a clear error otherwise; one
 * ledger record per call that says what the client saw; no sockets or requests left behind.
 * (Single-fault fallbacks and the cooldown are covered by gateway-faults.test.ts.)
 */
import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent } from 'undici';
import { assertRecorded, callChat, type Observed } from './helpers/fuzz-calls.ts';
import { waitFor } from './helpers/fuzz-http.ts';
// Every provider adapter, each with its own deployments on the one simulator.
import { PROVIDER_KINDS as PROVIDERS, type ProviderKind as Provider } from './helpers/providers.ts';
import { startStack, type Stack } from './helpers/stack.ts';
import type { FaultKind, FaultRuleInput } from '../src/simulator/options.ts';

let stack: Stack;
let dispatcher: Agent;


function config(url: string): string {
  const deployment = (provider: Provider, name: string, extra = '') => `
  ${provider.name}-${name}:
    provider: ${provider.provider}
    baseUrl: ${url}${provider.path}
    model: ${provider.name}-${name}
    apiKey: key-${provider.name}
    terms: ${provider.terms}${extra}`;
  const deployments = PROVIDERS.flatMap((provider) => [
    deployment(provider, 'primary'),
    deployment(provider, 'lonely'),
    deployment(provider, 'backup'),
    deployment(provider, 'hanger', '\n    headers: { x-sim-fault: hang }'),
    deployment(provider, 'staller', '\n    timeoutMs: 300\n    headers: { x-sim-fault: "stall-mid-stream:3" }'),
  ]);
  const routes = PROVIDERS.flatMap(({ name }) => [
    `  ${name}-with-fallback: { deployments: [{ deployment: ${name}-primary }], fallbacks: [${name}-backup-route] }`,
    `  ${name}-no-fallback: { deployments: [{ deployment: ${name}-lonely }], timeoutMs: 2000 }`,
    `  ${name}-hang-deadline: { deployments: [{ deployment: ${name}-hanger }], timeoutMs: 300 }`,
    `  ${name}-stall: { deployments: [{ deployment: ${name}-staller }], fallbacks: [${name}-backup-route] }`,
    `  ${name}-backup-route: { deployments: [{ deployment: ${name}-backup }] }`,
  ]);
  return `
retry: { maxAttempts: 3, initialDelayMs: 5, maxDelayMs: 20 }
health: { failureThreshold: 3, cooldownMs: 200, maxCooldownMs: 400 }
deployments:${deployments.join('')}
routes:
${routes.join('\n')}
`;
}

before(async () => {
  stack = await startStack({ config });
  dispatcher = new Agent({ connections: 16 });
});
after(async () => {
  await dispatcher.close();
  await stack.close();
});
beforeEach(() => {
  for (const { name } of PROVIDERS) {
    stack.simulator.setFaults({ model: `${name}-primary`, faults: [] });
    stack.simulator.setFaults({ model: `${name}-lonely`, faults: [] });
  }
});

const call = (model: string, stream = false) => callChat({ baseUrl: stack.seed.url, dispatcher, model, stream });
const UPSTREAM_CODES = new Set([
  'upstream_error',
  'upstream_rate_limited',
  'upstream_invalid_response',
  'upstream_connection_failed',
  'upstream_timeout',
  'no_healthy_deployment',
  'deadline_exceeded',
]);
/** `529` is Anthropic's "overloaded"; the other adapters meet it as one more 5xx. */
const FAULTS = ['500', '502', '503', '529', '429:0', 'reset', 'reset-mid-stream', 'error-mid-stream', 'malformed-json', 'malformed-sse'] as const;

function faultRule(fault: (typeof FAULTS)[number]): FaultRuleInput {
  const [kind, seconds] = fault.split(':') as [FaultKind, string | undefined];
  return { kind, ...(seconds === undefined ? {} : { retryAfterSeconds: Number(seconds) }) };
}

/** Sets the same faults on the primary and lonely deployments of the providers given. */
function setFaults(providers: readonly Provider[], faults: FaultRuleInput[]): void {
  for (const { name } of providers) {
    stack.simulator.setFaults({ model: `${name}-primary`, faults });
    stack.simulator.setFaults({ model: `${name}-lonely`, faults });
  }
}

/** Every fault kind on both routes of each provider given, streamed and not, all at once. */
async function storm(providers: readonly Provider[] = PROVIDERS): Promise<Observed[]> {
  const calls: Array<Promise<Observed>> = [];
  for (const fault of FAULTS) {
    setFaults(providers, [faultRule(fault)]);
    for (const { name } of providers) {
      for (const stream of [false, true]) {
        for (let index = 0; index < 2; index++) calls.push(call(`${name}-with-fallback`, stream), call(`${name}-no-fallback`, stream));
      }
    }
    // Faults are read when a request arrives: give this kind's calls a moment to arrive. A
    // call that meets the next kind instead is still checked against its own record.
    await new Promise((resolve) => setTimeout(resolve, 30));
  }
  return Promise.all(calls);
}

async function assertNothingInFlight(): Promise<void> {
  await waitFor(() => stack.simulator.stats().inFlight === 0, 'every upstream request ended');
}

for (const provider of PROVIDERS) {
  const { name } = provider;

  // First for each provider (with the next): its deployments have not failed yet, so none is
  // cooling down or waiting out a quota.
  test(`${name}: a stream cut after its first events ends with an error event, recorded as the failure the client saw`, async () => {
    setFaults([provider], [{ kind: 'reset-mid-stream', afterChunks: 3 }]);
    const recordsBefore = stack.records.length;
    const cut = await call(`${name}-no-fallback`, true);
    assert.equal(cut.status, 200, cut.body);
    assert.ok(cut.body.startsWith('data: {'), `the first events went out: ${cut.body.slice(0, 200)}`);
    assert.equal(cut.errorCode, 'upstream_connection_failed', cut.body.slice(-300));
    assert.ok(!cut.body.includes('[DONE]'), 'a cut stream never claims to be complete');
    await stack.waitForRecords(recordsBefore + 1);
    assertRecorded([cut], stack.records);
    await assertNothingInFlight();
  });

  test(`${name}: the upstream's own error event mid-stream reaches the client as an error event with its message`, async () => {
    setFaults([provider], [{ kind: 'error-mid-stream', afterChunks: 3 }]);
    const recordsBefore = stack.records.length;
    const [streamed, buffered] = await Promise.all([call(`${name}-no-fallback`, true), call(`${name}-with-fallback`)]);
    assert.equal(streamed.status, 200, streamed.body);
    assert.ok(streamed.body.startsWith('data: {'), streamed.body.slice(0, 200));
    assert.equal(streamed.errorCode, 'upstream_error', streamed.body.slice(-300));
    const last = JSON.parse(streamed.body.trimEnd().split('\n\n').at(-1)!.slice('data: '.length)) as { error: { message: string } };
    // What the upstream said, and which deployment said it.
    assert.match(last.error.message, new RegExp(`${name}-lonely failed mid-stream: .*(had an error|Overloaded)`), last.error.message);
    assert.ok(!streamed.body.includes('[DONE]'));
    // Not streamed, the same fault is the provider's 500 before any byte: the fallback serves it.
    assert.equal(buffered.status, 200, buffered.body);
    assert.equal(buffered.deployment, `${name}-backup`);
    await stack.waitForRecords(recordsBefore + 2);
    assertRecorded([streamed, buffered], stack.records);
    await assertNothingInFlight();
  });

  test(`${name}: reset before a stream starts: fallback when there is one, a 502 otherwise`, async () => {
    setFaults([provider], [{ kind: 'reset' }]);
    const recordsBefore = stack.records.length;
    const fallback = await call(`${name}-with-fallback`, true);
    assert.equal(fallback.status, 200, fallback.body);
    assert.equal(fallback.errorCode, null, fallback.body);
    assert.equal(fallback.deployment, `${name}-backup`);
    const alone = await call(`${name}-no-fallback`, true);
    assert.equal(alone.status, 502, alone.body);
    assert.equal(alone.errorCode, 'upstream_connection_failed');
    await stack.waitForRecords(recordsBefore + 2);
    assertRecorded([fallback, alone], stack.records);
  });

  test(`${name}: a storm of every fault kind: fallback or a clear upstream error, and a matching record for every call`, async () => {
    const recordsBefore = stack.records.length;
    const observed = await storm([provider]);
    for (const each of observed) {
      assert.notEqual(each.status, 500, each.body);
      if (each.errorCode !== null) assert.ok(UPSTREAM_CODES.has(each.errorCode), `${each.errorCode}: ${each.body.slice(0, 300)}`);
      else assert.equal(each.status, 200);
    }
    await stack.waitForRecords(recordsBefore + observed.length);
    assert.equal(stack.records.length - recordsBefore, observed.length, 'one record per call, no more');
    assertRecorded(observed, stack.records);
    await assertNothingInFlight();
  });

  test(`${name}: a 5xx storm with a fallback is served entirely by the fallback`, async () => {
    setFaults([provider], [{ kind: '500' }]);
    const observed = await Promise.all(Array.from({ length: 24 }, (_, index) => call(`${name}-with-fallback`, index % 2 === 0)));
    for (const each of observed) {
      assert.equal(each.status, 200, each.body);
      assert.equal(each.errorCode, null, each.body);
      assert.equal(each.deployment, `${name}-backup`);
    }
    await waitFor(() => observed.every((each) => stack.records.some((record) => record.id === each.requestId)), 'records');
    assertRecorded(observed, stack.records);
  });

  test(`${name}: a 429 storm with retry-after and no fallback: every answer says when to retry`, async () => {
    setFaults([provider], [{ kind: '429', retryAfterSeconds: 5 }]);
    const observed = await Promise.all(Array.from({ length: 20 }, (_, index) => call(`${name}-no-fallback`, index % 2 === 0)));
    for (const each of observed) {
      assert.ok(each.status === 429 || each.status === 503, `${each.status} ${each.body}`);
      assert.ok(each.errorCode === 'upstream_rate_limited' || each.errorCode === 'no_healthy_deployment', each.body);
      assert.ok(each.retryAfter !== undefined && Number(each.retryAfter) >= 1, `retry-after on ${each.body}`);
    }
    await waitFor(() => observed.every((each) => stack.records.some((record) => record.id === each.requestId)), 'records');
    assertRecorded(observed, stack.records);
    await assertNothingInFlight();
  });

  test(`${name}: an upstream that goes silent mid-answer: a streamed call ends with an error event, a buffered one falls back`, async () => {
    const recordsBefore = stack.records.length;
    const [streamed, buffered] = await Promise.all([call(`${name}-stall`, true), call(`${name}-stall`)]);
    // The stream's first events went out: no fallback can take over; the client learns why it ended.
    assert.equal(streamed.status, 200, streamed.body);
    assert.ok(streamed.body.startsWith('data: {'), streamed.body.slice(0, 200));
    assert.equal(streamed.errorCode, 'upstream_timeout', streamed.body.slice(-300));
    assert.ok(!streamed.body.includes('[DONE]'), 'a stalled stream never claims to be complete');
    // Nothing went out yet: the fallback serves the call.
    assert.equal(buffered.status, 200, buffered.body);
    assert.equal(buffered.errorCode, null, buffered.body);
    assert.equal(buffered.deployment, `${name}-backup`);
    await stack.waitForRecords(recordsBefore + 2);
    assertRecorded([streamed, buffered], stack.records);
    // Seed gave up on both silent upstream requests: none is left holding a connection.
    await assertNothingInFlight();
  });

  test(`${name}: a hang past the deadline without a fallback is a 504 deadline_exceeded, and the hung request is abandoned`, async () => {
    const route = `${name}-hang-deadline`;
    const observed = await Promise.all([call(route), call(route, true), call(route)]);
    for (const each of observed) {
      assert.equal(each.status, 504, each.body);
      assert.equal(each.errorCode, 'deadline_exceeded');
    }
    await waitFor(() => observed.every((each) => stack.records.some((record) => record.id === each.requestId)), 'records');
    assertRecorded(observed, stack.records);
    await assertNothingInFlight();
  });
}

test('no leaked sockets or handles across many faulted calls, every provider at once', async () => {
  const resources = () => process.getActiveResourcesInfo().length;
  // One round to warm the pools (client, gateway, simulator), then the baseline.
  await storm();
  await assertNothingInFlight();
  const baselineResources = resources();
  const baselineConnections = stack.simulator.stats().openConnections;
  let calls = 0;
  for (let round = 0; round < 3; round++) calls += (await storm()).length;
  await assertNothingInFlight();
  // A per-call leak would add hundreds; pools and timers wobble by a few.
  const slack = 10;
  await waitFor(() => stack.simulator.stats().openConnections <= baselineConnections + slack, `upstream connections back near ${baselineConnections} after ${calls} calls (now ${stack.simulator.stats().openConnections})`);
  await waitFor(() => resources() <= baselineResources + slack, `active handles back near ${baselineResources} (now ${resources()}: ${process.getActiveResourcesInfo().join(', ')})`);
});
