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
import { startStack, type Stack } from './helpers/stack.ts';

let stack: Stack;
let dispatcher: Agent;

function config(url: string): string {
  const deployment = (name: string, extra = '') => `
  ${name}:
    provider: openai
    baseUrl: ${url}/v1
    model: ${name}
    apiKey: sk-test${extra}`;
  return `
retry: { maxAttempts: 3, initialDelayMs: 5, maxDelayMs: 20 }
health: { failureThreshold: 3, cooldownMs: 200, maxCooldownMs: 400 }
deployments:${deployment('primary')}${deployment('lonely')}${deployment('backup')}${deployment('hanger', '\n    headers: { x-sim-fault: hang }')}
routes:
  with-fallback: { deployments: [{ deployment: primary }], fallbacks: [backup-route] }
  no-fallback: { deployments: [{ deployment: lonely }], timeoutMs: 2000 }
  hang-deadline: { deployments: [{ deployment: hanger }], timeoutMs: 300 }
  backup-route: { deployments: [{ deployment: backup }] }
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
  stack.simulator.setFaults({ model: 'primary', faults: [] });
  stack.simulator.setFaults({ model: 'lonely', faults: [] });
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
const FAULTS = ['500', '502', '503', '429:0', 'reset', 'reset-mid-stream', 'malformed-json', 'malformed-sse'] as const;

function faultRule(fault: (typeof FAULTS)[number]) {
  const [kind, seconds] = fault.split(':') as [string, string | undefined];
  return { kind: kind as 'reset', ...(seconds === undefined ? {} : { retryAfterSeconds: Number(seconds) }) };
}

/** Every fault kind on both routes, streamed and not, all at once. */
async function storm(): Promise<Observed[]> {
  const calls: Array<Promise<Observed>> = [];
  for (const fault of FAULTS) {
    stack.simulator.setFaults({ model: 'primary', faults: [faultRule(fault)] });
    stack.simulator.setFaults({ model: 'lonely', faults: [faultRule(fault)] });
    for (const stream of [false, true]) {
      for (let index = 0; index < 2; index++) calls.push(call('with-fallback', stream), call('no-fallback', stream));
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

test('reset before a stream starts: fallback when there is one, a 502 otherwise', async () => {
  stack.simulator.setFaults({ model: 'primary', faults: [{ kind: 'reset' }] });
  stack.simulator.setFaults({ model: 'lonely', faults: [{ kind: 'reset' }] });
  const recordsBefore = stack.records.length;
  const fallback = await call('with-fallback', true);
  assert.equal(fallback.status, 200, fallback.body);
  assert.equal(fallback.errorCode, null, fallback.body);
  assert.equal(fallback.deployment, 'backup');
  const alone = await call('no-fallback', true);
  assert.equal(alone.status, 502, alone.body);
  assert.equal(alone.errorCode, 'upstream_connection_failed');
  await stack.waitForRecords(recordsBefore + 2);
  assertRecorded([fallback, alone], stack.records);
});

test('a storm of every fault kind: fallback or a clear upstream error, and a matching record for every call', async () => {
  const recordsBefore = stack.records.length;
  const observed = await storm();
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

test('a 5xx storm with a fallback is served entirely by the fallback', async () => {
  stack.simulator.setFaults({ model: 'primary', faults: [{ kind: '500' }] });
  const observed = await Promise.all(Array.from({ length: 24 }, (_, index) => call('with-fallback', index % 2 === 0)));
  for (const each of observed) {
    assert.equal(each.status, 200, each.body);
    assert.equal(each.errorCode, null, each.body);
    assert.equal(each.deployment, 'backup');
  }
  await waitFor(() => observed.every((each) => stack.records.some((record) => record.id === each.requestId)), 'records');
  assertRecorded(observed, stack.records);
});

test('a 429 storm with retry-after and no fallback: every answer says when to retry', async () => {
  stack.simulator.setFaults({ model: 'lonely', faults: [{ kind: '429', retryAfterSeconds: 5 }] });
  const observed = await Promise.all(Array.from({ length: 20 }, (_, index) => call('no-fallback', index % 2 === 0)));
  for (const each of observed) {
    assert.ok(each.status === 429 || each.status === 503, `${each.status} ${each.body}`);
    assert.ok(each.errorCode === 'upstream_rate_limited' || each.errorCode === 'no_healthy_deployment', each.body);
    assert.ok(each.retryAfter !== undefined && Number(each.retryAfter) >= 1, `retry-after on ${each.body}`);
  }
  await waitFor(() => observed.every((each) => stack.records.some((record) => record.id === each.requestId)), 'records');
  assertRecorded(observed, stack.records);
  await assertNothingInFlight();
});

test('a hang past the deadline without a fallback is a 504 deadline_exceeded, and the hung request is abandoned', async () => {
  const observed = await Promise.all([call('hang-deadline'), call('hang-deadline', true), call('hang-deadline')]);
  for (const each of observed) {
    assert.equal(each.status, 504, each.body);
    assert.equal(each.errorCode, 'deadline_exceeded');
  }
  await waitFor(() => observed.every((each) => stack.records.some((record) => record.id === each.requestId)), 'records');
  assertRecorded(observed, stack.records);
  await assertNothingInFlight();
});

test('no leaked sockets or handles across many faulted calls', async () => {
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
