import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../src/config/load.ts';
import { SeedError } from '../src/errors.ts';
import { HealthTracker } from '../src/routing/health.ts';
import { buildRouteTable } from '../src/routing/route-table.ts';
import { createRouter, jitteredBackoff } from '../src/routing/router.ts';

const CONFIG = `
health: { failureThreshold: 2, cooldownMs: 1000, maxCooldownMs: 4000 }
retry: { maxAttempts: 4, initialDelayMs: 10, maxDelayMs: 40 }
deployments:
  a: { provider: openai, baseUrl: http://127.0.0.1:1/v1, model: m }
  b: { provider: openai, baseUrl: http://127.0.0.1:2/v1, model: m }
  c: { provider: openai, baseUrl: http://127.0.0.1:3/v1, model: m }
routes:
  main:
    deployments: [{ deployment: a, weight: 3 }, { deployment: b, weight: 1 }]
    fallbacks: [backup]
    timeoutMs: 2000
  backup:
    deployments: [{ deployment: c }]
`;

function setup(options: { now?: () => number; random?: () => number } = {}) {
  const config = parseConfig(CONFIG, { env: {} });
  const table = buildRouteTable(config);
  let clock = 1_000_000;
  const now = options.now ?? (() => clock);
  const health = new HealthTracker({ options: config.health, now });
  const slept: number[] = [];
  const router = createRouter({
    table,
    health,
    now,
    random: options.random ?? (() => 0.5),
    sleep: async (milliseconds) => {
      slept.push(milliseconds);
      clock += milliseconds;
    },
  });
  return { router, health, table, slept, advance: (milliseconds: number) => (clock += milliseconds), now };
}

const signal = new AbortController().signal;

test('weights decide which deployment is tried first', async () => {
  const chosen: Record<string, number> = {};
  for (const point of [0.1, 0.3, 0.5, 0.7, 0.9]) {
    const { router, now } = setup({ random: () => point });
    const result = await router.route({
      routeName: 'main',
      signal,
      deadlineAt: now() + 1000,
      run: async (attempt) => ({ value: attempt.deployment.name }),
    });
    assert.ok(result.ok);
    chosen[result.value] = (chosen[result.value] ?? 0) + 1;
  }
  assert.deepEqual(chosen, { a: 4, b: 1 });
});

test('a retryable failure moves to the other deployment, then to the fallback route', async () => {
  const { router, now } = setup();
  const tried: string[] = [];
  const result = await router.route({
    routeName: 'main',
    signal,
    deadlineAt: now() + 1000,
    run: async (attempt) => {
      tried.push(attempt.deployment.name);
      if (attempt.deployment.name !== 'c') throw new SeedError('upstream_error', 'boom', { upstreamStatus: 500 });
      return { value: 'ok' };
    },
  });
  assert.ok(result.ok);
  assert.deepEqual(tried, ['a', 'b', 'c']);
  assert.equal(result.route.name, 'backup');
  assert.equal(result.attempts, 3);
});

test('a non-retryable failure is returned at once', async () => {
  const { router, now } = setup();
  let attempts = 0;
  const result = await router.route({
    routeName: 'main',
    signal,
    deadlineAt: now() + 1000,
    run: async () => {
      attempts += 1;
      throw new SeedError('upstream_bad_request', 'bad', { param: 'messages' });
    },
  });
  assert.ok(!result.ok);
  assert.equal(result.error.code, 'upstream_bad_request');
  assert.equal(attempts, 1);
});

test('retry-after is honoured before trying the same deployment again', async () => {
  const { router, slept, now } = setup();
  let calls = 0;
  const result = await router.route({
    routeName: 'backup',
    signal,
    deadlineAt: now() + 5000,
    run: async () => {
      calls += 1;
      if (calls === 1) throw new SeedError('upstream_rate_limited', '429', { retryAfterMs: 700, upstreamStatus: 429 });
      return { value: 'ok' };
    },
  });
  assert.ok(result.ok);
  assert.equal(calls, 2);
  assert.equal(slept.length, 1);
  assert.ok((slept[0] ?? 0) >= 700, `waited ${slept[0]} ms`);
});

test('a retry-after beyond the deadline fails at once with the upstream error', async () => {
  const { router, slept, now } = setup();
  const result = await router.route({
    routeName: 'backup',
    signal,
    deadlineAt: now() + 500,
    run: async () => {
      throw new SeedError('upstream_rate_limited', '429', { retryAfterMs: 10_000, upstreamStatus: 429 });
    },
  });
  assert.ok(!result.ok);
  assert.equal(result.error.code, 'upstream_rate_limited');
  assert.equal(result.error.retryAfterMs, 10_000);
  assert.deepEqual(slept, []);
});

test('consecutive failures open the circuit; traffic moves away; recovery after the cooldown', async () => {
  const { router, health, advance, now } = setup();
  const failing = async (attempt: { deployment: { name: string } }) => {
    if (attempt.deployment.name === 'c') throw new SeedError('upstream_error', 'down');
    return { value: attempt.deployment.name };
  };
  for (let index = 0; index < 2; index++) {
    await router.route({ routeName: 'backup', signal, deadlineAt: now() + 1000, run: failing });
  }
  assert.equal(health.view('c').state, 'cooldown');
  const refused = await router.route({ routeName: 'backup', signal, deadlineAt: now() + 60_000, run: failing });
  assert.ok(!refused.ok);
  assert.equal(refused.error.code, 'no_healthy_deployment');
  assert.equal(refused.attempts, 0);
  assert.ok((refused.error.retryAfterMs ?? 0) > 0);

  advance(1_001);
  const recovered = await router.route({
    routeName: 'backup',
    signal,
    deadlineAt: now() + 1000,
    run: async () => ({ value: 'back' }),
  });
  assert.ok(recovered.ok);
  assert.equal(health.view('c').state, 'healthy');
});

test('a deployment whose upstream reported no quota left is chosen last', async () => {
  const { router, health, now } = setup({ random: () => 0.01 });
  health.recordSuccess({ deployment: 'a', quota: { remainingRequests: 0, limitRequests: 100, resetRequestsMs: 30_000 } });
  const result = await router.route({
    routeName: 'main',
    signal,
    deadlineAt: now() + 1000,
    run: async (attempt) => ({ value: attempt.deployment.name }),
  });
  assert.ok(result.ok);
  assert.equal(result.value, 'b');
});

test('excluded deployments are never tried, and the exclusion reason is returned when none is left', async () => {
  const { router, now } = setup();
  const reason = new SeedError('purpose_not_allowed', 'not for training');
  const result = await router.route({
    routeName: 'main',
    signal,
    deadlineAt: now() + 1000,
    exclude: () => reason,
    run: async () => assert.fail('must not run'),
  });
  assert.ok(!result.ok);
  assert.equal(result.error, reason);
});

test('an unknown route is model_not_found naming the param', async () => {
  const { router, now } = setup();
  const result = await router.route({ routeName: 'nope', signal, deadlineAt: now() + 10, run: async () => ({ value: 1 }) });
  assert.ok(!result.ok);
  assert.equal(result.error.code, 'model_not_found');
  assert.equal(result.error.param, 'model');
});

test('the deadline aborts a hanging attempt and is reported as deadline_exceeded', async () => {
  const { router } = setup({ now: Date.now });
  const started = Date.now();
  const result = await router.route({
    routeName: 'backup',
    signal,
    deadlineAt: Date.now() + 150,
    run: (attempt) =>
      new Promise<{ value: string }>((_resolve, reject) => {
        attempt.signal.addEventListener('abort', () => reject(new SeedError('upstream_timeout', 'aborted')));
      }),
  });
  assert.ok(!result.ok);
  assert.equal(result.error.code, 'deadline_exceeded');
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= 140 && elapsed < 1000, `elapsed ${elapsed} ms`);
});

test('given abort, the router aborts the caller\'s own signal at the deadline and reports deadline_exceeded', async () => {
  const { router } = setup({ now: Date.now });
  const controller = new AbortController();
  let attemptSignal: unknown;
  const result = await router.route({
    routeName: 'backup',
    signal: controller.signal,
    abort: (reason) => controller.abort(reason),
    deadlineAt: Date.now() + 100,
    run: (attempt) =>
      new Promise<{ value: string }>((_resolve, reject) => {
        attemptSignal = attempt.signal;
        attempt.signal.addEventListener('abort', () => reject(new SeedError('upstream_timeout', 'aborted')));
      }),
  });
  // One signal for the call: the attempt ran on the caller's, which the deadline aborted.
  assert.equal(attemptSignal, controller.signal);
  assert.ok(!result.ok);
  assert.equal(result.error.code, 'deadline_exceeded');
  assert.ok(controller.signal.reason instanceof SeedError);
  assert.equal((controller.signal.reason as SeedError).code, 'deadline_exceeded');
});

test('given abort, a client that leaves first stays client_closed_request, and the deadline timer no longer fires', async () => {
  const { router } = setup({ now: Date.now });
  const controller = new AbortController();
  const leaving = new SeedError('client_closed_request', 'The client closed the request.');
  const result = await router.route({
    routeName: 'backup',
    signal: controller.signal,
    abort: (reason) => controller.abort(reason),
    deadlineAt: Date.now() + 80,
    run: (attempt) =>
      new Promise<{ value: string }>((_resolve, reject) => {
        attempt.signal.addEventListener('abort', () => setTimeout(() => reject(new SeedError('client_closed_request', 'gone')), 150));
        setTimeout(() => controller.abort(leaving), 10);
      }),
  });
  assert.ok(!result.ok);
  assert.equal(result.error.code, 'client_closed_request');
  assert.equal(controller.signal.reason, leaving);
});

test('backoff is exponential with full jitter and capped', () => {
  const policy = { initialDelayMs: 100, maxDelayMs: 1000 };
  assert.equal(jitteredBackoff(policy, 1, () => 0.999999), 99);
  assert.equal(jitteredBackoff(policy, 3, () => 0.5), 200);
  assert.equal(jitteredBackoff(policy, 10, () => 0.999999), 999);
  assert.equal(jitteredBackoff(policy, 10, () => 0), 0);
});

test('the reported quota is carried forward: what was sent since comes off it, the refill goes back on', () => {
  const { health, advance } = setup();
  const tokens = (count: number) => () => count;
  // Until an upstream reports a quota (an empty report is none) the router skips every quota step.
  health.recordSuccess({ deployment: 'a', quota: {} });
  assert.equal(health.quotasReported, false);
  // 1 000 tokens left of 2 000, whole again in 1 000 ms: a refill of 1 token per ms.
  health.recordSuccess({ deployment: 'a', quota: { limitTokens: 2_000, remainingTokens: 1_000, resetTokensMs: 1_000 } });
  assert.equal(health.quotasReported, true);
  assert.equal(health.waitMs('a', tokens(900)), 0);
  health.dispatched('a', tokens(900));
  // 100 left: a call of 300 waits for 200 more.
  assert.equal(health.waitMs('a', tokens(300)), 200);
  advance(150);
  assert.equal(health.waitMs('a', tokens(300)), 50);
  advance(50);
  assert.equal(health.waitMs('a', tokens(300)), 0);
  // Without the call's tokens only the request quota (none reported here) can hold it.
  health.dispatched('a', tokens(300));
  assert.equal(health.waitMs('a'), 0);
  // A call larger than the whole quota never fits: the upstream is left to refuse it.
  assert.equal(health.waitMs('a', tokens(5_000)), 0);
  // An answer without quota headers leaves the estimate as it was.
  health.dispatched('a', tokens(1_000));
  assert.equal(health.waitMs('a', tokens(300)), 1_300);
  health.recordSuccess({ deployment: 'a', quota: {} });
  assert.equal(health.waitMs('a', tokens(300)), 1_300);
  // A new report replaces the estimate.
  health.recordSuccess({ deployment: 'a', quota: { limitTokens: 2_000, remainingTokens: 2_000, resetTokensMs: 0 } });
  assert.equal(health.waitMs('a', tokens(2_000)), 0);
});

test('the weighted choice reads the quota carried forward: a drained deployment gets its share back as it refills', async () => {
  const { router, health, now, advance } = setup({ random: () => 0.2 });
  // a (weight 3) has 5 of 100 requests left, whole again in 10 s; b (weight 1) has all of its 100.
  health.recordSuccess({ deployment: 'a', quota: { limitRequests: 100, remainingRequests: 5, resetRequestsMs: 10_000 } });
  health.recordSuccess({ deployment: 'b', quota: { limitRequests: 100, remainingRequests: 100, resetRequestsMs: 10_000 } });
  assert.equal(health.quotaShare('a'), 0.05);
  assert.equal(health.quotaShare('c'), 1, 'no report: nothing to weigh');
  const pick = async () => {
    const result = await router.route({ routeName: 'main', signal, deadlineAt: now() + 1000, run: async (attempt) => ({ value: attempt.deployment.name }) });
    assert.ok(result.ok);
    return result.value;
  };
  // Weights 3 × 0.05 against 1 × 1: the point 0.2 of the total falls on b.
  assert.equal(await pick(), 'b');
  // 5 s later a has refilled (95 in 10 s) to 52.5 of 100: 3 × 0.525 against b's 1 × 0.99 (the call above came off b).
  advance(5_000);
  assert.ok(Math.abs(health.quotaShare('a') - 0.525) < 1e-9);
  assert.equal(await pick(), 'a');
});

test('requests: one per call; no reset time reported (Azure) means no wait on the report', () => {
  const { health } = setup();
  health.recordSuccess({ deployment: 'a', quota: { limitRequests: 10, remainingRequests: 1, resetRequestsMs: 900 } });
  health.dispatched('a');
  // 0 left, 9 came back over 900 ms: one request in 100 ms.
  assert.equal(health.waitMs('a'), 100);
  health.recordSuccess({ deployment: 'b', quota: { limitRequests: 10, remainingRequests: 0, limitTokens: 100, remainingTokens: 0 } });
  assert.equal(health.waitMs('b', () => 50), 0);
});

test('with one deployment, a call waits until the quota carried forward has room for it: the refill paces the calls', async () => {
  const { router, health, now, slept } = setup();
  // Deployment c (route backup) alone: 2 calls of 100 tokens fit now, and 100 tokens come back every 100 ms.
  health.recordSuccess({ deployment: 'c', quota: { limitTokens: 1_000, remainingTokens: 200, resetTokensMs: 800 } });
  const sentAt: number[] = [];
  const call = () =>
    router.route({
      routeName: 'backup',
      signal,
      deadlineAt: now() + 2_000,
      maxWaitMs: Number.POSITIVE_INFINITY,
      tokens: () => 100,
      run: async () => {
        sentAt.push(now());
        return { value: 'ok' };
      },
    });
  const results = [];
  for (let index = 0; index < 5; index += 1) results.push(await call());
  assert.ok(results.every((result) => result.ok));
  // Two at once, then one per 100 ms of refill.
  assert.deepEqual(sentAt.map((at) => at - sentAt[0]!), [0, 0, 100, 200, 300]);
  assert.ok(slept.every((milliseconds) => milliseconds > 0));
});

test('an interactive call the quota cannot take within maxRetryAfterMs is answered 429 by the gateway, not sent', async () => {
  const { router, health, now } = setup();
  health.recordSuccess({ deployment: 'c', quota: { limitTokens: 1_000, remainingTokens: 0, resetTokensMs: 60_000 } });
  const result = await router.route({
    routeName: 'backup',
    signal,
    deadlineAt: now() + 2_000,
    maxWaitMs: 10,
    tokens: () => 500,
    run: async () => assert.fail('must not be sent'),
  });
  assert.ok(!result.ok);
  assert.equal(result.error.code, 'upstream_rate_limited');
  assert.equal(result.error.retryAfterMs, 30_000);
});

test('a 429 that asks to wait for the whole reset teaches that the quota refills in windows', () => {
  const { health, advance } = setup();
  const call = () => 100;
  health.recordSuccess({ deployment: 'a', quota: { limitTokens: 1_000, remainingTokens: 500, resetTokensMs: 1_000 } });
  health.dispatched('a', call);
  health.dispatched('a', call);
  // 300 left, 0.5 tokens per ms if the refill were continuous.
  advance(100);
  assert.equal(health.waitMs('a', () => 400), 100);
  // The upstream refuses with 50 left and asks to wait for its whole reset (its window's end).
  health.recordWait({ deployment: 'a', waitMs: 600, quota: { limitTokens: 1_000, remainingTokens: 50, resetTokensMs: 600 } });
  advance(600);
  // The window turned: whole again at once, and no refill is counted within the next one.
  assert.equal(health.waitMs('a', () => 1_000), 0);
  health.recordSuccess({ deployment: 'a', quota: { limitTokens: 1_000, remainingTokens: 100, resetTokensMs: 900 } });
  assert.equal(health.waitMs('a', () => 150), 900);
  advance(899);
  assert.equal(health.waitMs('a', () => 150), 1);
  advance(1);
  assert.equal(health.waitMs('a', () => 150), 0);
});

test('a 429 that asks only for the missing part keeps the refill continuous (OpenAI, Anthropic)', () => {
  const { health } = setup();
  health.recordWait({ deployment: 'a', waitMs: 50, quota: { limitTokens: 1_000, remainingTokens: 0, resetTokensMs: 1_000 } });
  // 1 token per ms: a call of 100 waits 100 ms, not the 1 000 of the whole reset.
  assert.equal(health.waitMs('a', () => 100), 100);
});

test("a report counts what arrived before its attempt: calls sent after it still come off", () => {
  const { health } = setup();
  const call = () => 100;
  health.recordSuccess({ deployment: 'a', quota: { limitTokens: 10_000, remainingTokens: 1_000, resetTokensMs: 60_000 } });
  const first = health.dispatched('a', call);
  health.dispatched('a', call);
  health.dispatched('a', call);
  // The first attempt's answer reports 900 left: the two sent after it are not in it.
  health.recordSuccess({ deployment: 'a', quota: { limitTokens: 10_000, remainingTokens: 900, resetTokensMs: 60_000 }, sent: first });
  assert.equal(health.waitMs('a', () => 700), 0);
  assert.ok(health.waitMs('a', () => 701) > 0, '900 − 2 × 100 sent since = 700 left');
});
