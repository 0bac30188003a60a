/**
 * Routing against real upstream failures from the simulator: fallback on 429/5xx/timeout,
 * retry-after, the deadline, cooldown and recovery, client aborts, mid-stream failures.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startStack, type Stack } from './helpers/stack.ts';

let stack: Stack;

function config(url: string): string {
  const deployment = (name: string, fault?: string, extra = '') => `
  ${name}:
    provider: openai
    baseUrl: ${url}/v1
    model: ${name}
    apiKey: sk-test${fault ? `\n    headers: { x-sim-fault: "${fault}" }` : ''}${extra}`;
  return `
retry: { maxAttempts: 3, initialDelayMs: 5, maxDelayMs: 20 }
health: { failureThreshold: 2, cooldownMs: 2000, maxCooldownMs: 4000 }
deployments:${deployment('healthy')}${deployment('fails-500', '500')}${deployment('fails-429', '429:0')}${deployment(
    'hangs',
    'hang',
    '\n    timeoutMs: 200',
  )}${deployment('resets', 'reset')}${deployment('breaks-mid-stream', 'reset-mid-stream')}${deployment(
    'malformed-json',
    'malformed-json',
  )}${deployment('malformed-sse', 'malformed-sse')}${deployment('limited-429', '429:5')}${deployment('slow', undefined, '\n    headers: { x-sim-latency-ms: "10000" }')}${deployment('flaky')}
routes:
  on-500: { deployments: [{ deployment: fails-500 }], fallbacks: [healthy-route] }
  on-429: { deployments: [{ deployment: fails-429 }], fallbacks: [healthy-route] }
  on-timeout: { deployments: [{ deployment: hangs }], fallbacks: [healthy-route] }
  on-reset: { deployments: [{ deployment: resets }], fallbacks: [healthy-route] }
  on-malformed-json: { deployments: [{ deployment: malformed-json }], fallbacks: [healthy-route] }
  only-500: { deployments: [{ deployment: fails-500 }] }
  only-malformed-json: { deployments: [{ deployment: malformed-json }] }
  only-malformed-sse: { deployments: [{ deployment: malformed-sse }] }
  mid-stream: { deployments: [{ deployment: breaks-mid-stream }], fallbacks: [healthy-route] }
  retry-after: { deployments: [{ deployment: limited-429 }], timeoutMs: 3000 }
  deadline: { deployments: [{ deployment: slow }], timeoutMs: 300 }
  abortable: { deployments: [{ deployment: slow }] }
  flaky: { deployments: [{ deployment: flaky }, { deployment: healthy }] }
  healthy-route: { deployments: [{ deployment: healthy }] }
`;
}

before(async () => {
  stack = await startStack({ config });
});
after(async () => stack.close());

async function chat(model: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  const response = await request(`${stack.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }], ...extra }),
  });
  const text = await response.body.text();
  return { status: response.statusCode, headers: response.headers, text, json: () => JSON.parse(text) };
}

for (const [route, failedDeployment] of [
  ['on-500', 'fails-500'],
  ['on-429', 'fails-429'],
  ['on-timeout', 'hangs'],
  ['on-reset', 'resets'],
  ['on-malformed-json', 'malformed-json'],
] as const) {
  test(`${route}: falls back to the healthy route`, async () => {
    const result = await chat(route);
    assert.equal(result.status, 200, result.text);
    assert.equal(result.headers['x-seed-deployment'], 'healthy');
    assert.ok(Number(result.headers['x-seed-attempts']) >= 2);
    assert.ok(stack.records.some((record) => record.id === result.headers['x-request-id'] && record.servedRoute === 'healthy-route'));
    void failedDeployment;
  });
}

test('without a fallback, an upstream 5xx is a 502 in OpenAI format with the attempts made', async () => {
  const result = await chat('only-500');
  assert.equal(result.status, 502);
  assert.equal(result.json().error.code, 'upstream_error');
  assert.ok(Number(result.headers['x-seed-attempts']) >= 1);
});

test('malformed upstream JSON and SSE are upstream_invalid_response, not crashes', async () => {
  const json = await chat('only-malformed-json');
  assert.equal(json.status, 502);
  assert.equal(json.json().error.code, 'upstream_invalid_response');
  const sse = await chat('only-malformed-sse', { stream: true });
  if (sse.status === 200) {
    assert.match(sse.text, /"code":"upstream_invalid_response"/);
  } else {
    assert.equal(sse.status, 502);
    assert.equal(sse.json().error.code, 'upstream_invalid_response');
  }
});

test('retry-after is honoured: the gateway waits, then reports the 429 once the deadline cannot fit another wait', async () => {
  const started = Date.now();
  const result = await chat('retry-after');
  const elapsed = Date.now() - started;
  assert.equal(result.status, 429);
  assert.equal(result.json().error.code, 'upstream_rate_limited');
  assert.ok(result.headers['retry-after'], 'retry-after passed to the client');
  // retry-after is 5 s and the deadline 3 s: Seed must not retry early, nor wait past the deadline.
  assert.equal(result.headers['x-seed-attempts'], '1');
  assert.equal(result.headers['retry-after'], '5');
  assert.ok(elapsed < 3000, `answered at once, within the deadline (${elapsed} ms)`);
});

test('the deadline bounds the whole call', async () => {
  const started = Date.now();
  const result = await chat('deadline');
  const elapsed = Date.now() - started;
  assert.equal(result.status, 504);
  assert.equal(result.json().error.code, 'deadline_exceeded');
  assert.ok(elapsed >= 280 && elapsed < 5000, `ended by the deadline, long before the upstream would answer (${elapsed} ms)`);
});

test('a mid-stream failure ends the stream with an SSE error event, after the first bytes', async () => {
  const result = await chat('mid-stream', { stream: true });
  assert.equal(result.status, 200);
  const events = result.text.split('\n\n').filter(Boolean);
  assert.ok(events.length >= 2, result.text);
  const last = JSON.parse((events.at(-1) ?? '').replace(/^data: /, ''));
  assert.equal(last.error.code, 'upstream_connection_failed');
  assert.ok(!result.text.includes('[DONE]'));
  const record = (await stack.waitForRecords(1)).find((each) => each.id === result.headers['x-request-id']);
  assert.equal(record?.status, 'error');
  assert.equal(record?.errorCode, 'upstream_connection_failed');
});

test('cooldown: a failing deployment is skipped after the threshold, and tried again after the cooldown', async () => {
  stack.simulator.setFaults({ model: 'flaky', faults: [{ kind: '500' }] });
  try {
    // Two failures open the circuit (weighted choice decides when flaky is picked); the
    // healthy deployment answers every call throughout.
    const flakyHits = () => stack.simulator.stats().byModel['flaky'] ?? 0;
    for (let index = 0; index < 100 && flakyHits() < 2; index++) {
      const result = await chat('flaky');
      assert.equal(result.status, 200);
    }
    assert.equal(flakyHits(), 2);
    const before = flakyHits();
    for (let index = 0; index < 5; index++) await chat('flaky');
    assert.equal(flakyHits(), before, 'no traffic to a deployment in cooldown');
  } finally {
    stack.simulator.setFaults({ model: 'flaky', faults: [] });
  }
  await new Promise((resolve) => setTimeout(resolve, 2_100));
  const seen = new Set<string>();
  for (let index = 0; index < 20; index++) seen.add(String((await chat('flaky')).headers['x-seed-deployment']));
  assert.ok(seen.has('flaky'), 'recovered deployment receives traffic again');
});

test('a client that disconnects aborts the upstream request at once (no leaked sockets)', async () => {
  const controller = new AbortController();
  const pending = request(`${stack.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'abortable', messages: [{ role: 'user', content: 'hi' }] }),
    signal: controller.signal,
  }).catch(() => undefined);
  await waitFor(() => stack.simulator.stats().inFlight === 1, 'upstream request in flight');
  controller.abort();
  await pending;
  await waitFor(() => stack.simulator.stats().inFlight === 0, 'upstream request aborted');
  const record = (await stack.waitForRecords(1)).findLast((each) => each.route === 'abortable');
  await waitFor(() => stack.records.some((each) => each.route === 'abortable' && each.status === 'aborted'), 'aborted call recorded');
  void record;
});

async function waitFor(check: () => boolean, what: string, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
