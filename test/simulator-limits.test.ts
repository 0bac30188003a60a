/**
 * Quota enforcement: RPM over short windows and TPM as prompt + max_tokens, answered with
 * each provider's real 429 body and headers — which must parse with Seed's own upstream
 * helpers (`src/providers/http.ts`).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { formatDuration, startSimulator, type Simulator } from '../src/simulator/index.ts';
import { MAX_UPSTREAM_WAIT_MS, parseCountHeader, parseDurationMs, parseRateLimit, retryAfterMs, upstreamStatusError } from '../src/providers/http.ts';
import { anthropicRateLimit } from '../src/providers/anthropic/upstream.ts';
import { headersOf } from '../src/providers/upstream-call.ts';
import { anthropicHeaders, call, openAIChunks, userMessages } from './simulator-helpers.ts';
import { fuzzRuns } from './helpers/fuzz-runs.ts';

const windowMs = 200;
let simulator: Simulator;

before(async () => {
  simulator = await startSimulator({
    models: {
      // 3 requests per 200 ms window (900 rpm × 200 / 60 000).
      'rpm-model': { limits: { rpm: 900, windowMs } },
      // 100 tokens per 200 ms window (30 000 tpm × 200 / 60 000).
      'tpm-model': { limits: { tpm: 30_000, tokenWindowMs: windowMs } },
      'azure-deployment': { model: 'gpt-4o', limits: { rpm: 300, windowMs } },
      'claude-limited': { limits: { rpm: 300, tpm: 30_000, windowMs, tokenWindowMs: windowMs } },
    },
  });
});
after(() => simulator.close());

/** Starts at the beginning of a window, so a burst of requests falls into one window. */
async function freshWindow(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, windowMs - (Date.now() % windowMs) + 5));
}

/**
 * Runs `burst` from the beginning of a window. On a loaded machine a burst can outlast the window
 * (200 ms), and its readings then mix two windows: a burst that failed after its window turned is
 * run again from the next one, up to 5 times; one that failed within its window fails the test.
 */
async function inOneWindow<T>(burst: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    await freshWindow();
    const windowEnds = (Math.floor(Date.now() / windowMs) + 1) * windowMs;
    try {
      return await burst();
    } catch (error) {
      if (Date.now() < windowEnds || attempt === 5) throw error;
    }
  }
}

const chat = (model: string, body: Record<string, unknown> = {}) =>
  call({ url: simulator.url, path: '/v1/chat/completions', body: { model, messages: userMessages, ...body } });

test('RPM: the window admits rpm × window / 60 s requests, then answers OpenAI 429s that parse', async () => {
  const wait = await inOneWindow(async () => {
    const remaining: string[] = [];
    for (let index = 0; index < 3; index++) {
      const answer = await chat('rpm-model');
      assert.equal(answer.status, 200);
      assert.equal(answer.headers['x-ratelimit-limit-requests'], '3');
      remaining.push(String(answer.headers['x-ratelimit-remaining-requests']));
    }
    assert.deepEqual(remaining, ['2', '1', '0']);
    const refused = await chat('rpm-model');
    assert.equal(refused.status, 429);
    const body = JSON.parse(refused.text) as { error: { message: string; type: string; code: string; param: null } };
    assert.equal(body.error.code, 'rate_limit_exceeded');
    assert.equal(body.error.type, 'requests');
    assert.match(body.error.message, /requests per min \(RPM\): Limit 3, Used 3, Requested 1/);
    const snapshot = parseRateLimit(headersOf(refused.headers));
    assert.equal(snapshot.limitRequests, 3);
    assert.equal(snapshot.remainingRequests, 0);
    assert.ok(snapshot.resetRequestsMs !== undefined && snapshot.resetRequestsMs > 0 && snapshot.resetRequestsMs <= windowMs);
    assert.equal(refused.headers['retry-after'], '1', 'whole seconds, rounded up');
    const wait = retryAfterMs(headersOf(refused.headers));
    assert.ok(wait !== undefined && wait > 0 && wait <= windowMs, `retry-after-ms is the window's rest, got ${wait}`);
    const error = upstreamStatusError({ status: 429, headers: headersOf(refused.headers), message: body.error.message, label: 'sim' });
    assert.equal(error.code, 'upstream_rate_limited');
    // The refusal's own quota report travels with the error, for the router's quota estimate.
    assert.deepEqual(
      { limit: error.upstreamQuota?.limitRequests, remaining: error.upstreamQuota?.remainingRequests },
      { limit: 3, remaining: 0 },
    );
    return wait;
  });
  await new Promise((resolve) => setTimeout(resolve, wait));
  assert.equal((await chat('rpm-model')).status, 200, 'admitted again once the window turned');
});

test('TPM: prompt estimate + max_tokens is reserved; a refused request consumes nothing', async () => {
  await inOneWindow(async () => {
    const admittedBefore = simulator.stats().admittedTokens;
    // 6 prompt tokens + 40 max_tokens = 46 tokens per request; the window holds 100.
    const first = await chat('tpm-model', { max_tokens: 40 });
    assert.equal(first.status, 200);
    assert.equal(first.headers['x-ratelimit-limit-tokens'], '100');
    assert.equal(first.headers['x-ratelimit-remaining-tokens'], '54');
    assert.equal(first.headers['x-ratelimit-limit-requests'], undefined, 'no rpm configured, no request headers');
    assert.equal((await chat('tpm-model', { max_tokens: 40 })).status, 200);
    const refused = await chat('tpm-model', { max_tokens: 40 });
    assert.equal(refused.status, 429);
    const body = JSON.parse(refused.text) as { error: { type: string; message: string } };
    assert.equal(body.error.type, 'tokens');
    assert.match(body.error.message, /Limit 100, Used 92, Requested 46/);
    assert.equal(parseRateLimit(headersOf(refused.headers)).remainingTokens, 8);
    const small = await chat('tpm-model', { max_tokens: 2 });
    assert.equal(small.status, 200, 'the refused request left its tokens in the window');
    assert.equal(small.headers['x-ratelimit-remaining-tokens'], '0');
    assert.ok((parseDurationMs(String(small.headers['x-ratelimit-reset-tokens'])) ?? Infinity) <= windowMs);
    // The stats count what the admitted requests were charged (46 + 46 + 8), not the refused one.
    assert.equal(simulator.stats().admittedTokens - admittedBefore, 100);
  });
});

test('streams carry the rate-limit headers too', async () => {
  await inOneWindow(async () => {
    const answer = await chat('rpm-model', { stream: true, max_tokens: 2 });
    assert.equal(answer.status, 200);
    assert.equal(answer.headers['x-ratelimit-remaining-requests'], '2');
    assert.equal(openAIChunks(answer.text).length, 4);
  });
});

test('Azure: 429 in Azure format with retry-after and retry-after-ms, remaining headers on success', async () => {
  await inOneWindow(async () => {
    const azure = () =>
      call({
        url: simulator.url,
        path: '/openai/deployments/azure-deployment/chat/completions?api-version=2024-06-01',
        body: { messages: userMessages },
        headers: { 'api-key': 'key' },
      });
    const ok = await azure();
    assert.equal(ok.status, 200);
    assert.equal(ok.headers['x-ratelimit-remaining-requests'], '0');
    const refused = await azure();
    assert.equal(refused.status, 429);
    const body = JSON.parse(refused.text) as { error: { code: string; message: string } };
    assert.equal(body.error.code, '429');
    assert.match(body.error.message, /exceeded call rate limit/);
    assert.ok(Number(refused.headers['retry-after-ms']) <= windowMs);
    assert.equal(refused.headers['retry-after'], '1');
  });
});

test('Anthropic: 429 rate_limit_error with anthropic-ratelimit-* headers (RFC 3339 resets) and retry-after', async () => {
  await inOneWindow(async () => {
    const send = () =>
      call({
        url: simulator.url,
        path: '/v1/messages',
        body: { model: 'claude-limited', messages: userMessages, max_tokens: 10 },
        headers: anthropicHeaders,
      });
    const ok = await send();
    assert.equal(ok.status, 200);
    assert.equal(ok.headers['anthropic-ratelimit-requests-limit'], '1');
    assert.equal(ok.headers['anthropic-ratelimit-requests-remaining'], '0');
    assert.equal(ok.headers['anthropic-ratelimit-tokens-remaining'], String(100 - 16));
    assert.equal(ok.headers['x-ratelimit-remaining-requests'], undefined, 'Anthropic does not send OpenAI headers');
    const refused = await send();
    assert.equal(refused.status, 429);
    assert.deepEqual((JSON.parse(refused.text) as { error: { type: string } }).error.type, 'rate_limit_error');
    const reset = String(refused.headers['anthropic-ratelimit-requests-reset']);
    assert.match(reset, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/);
    const untilReset = Date.parse(reset) - Date.now();
    assert.ok(untilReset > -50 && untilReset <= windowMs, `reset within the window, got ${untilReset} ms`);
    assert.equal(refused.headers['retry-after'], '1');
  });
});

test('POST /_sim/reset clears the limit windows', async () => {
  await inOneWindow(async () => {
      for (let index = 0; index < 3; index++) await chat('rpm-model');
      assert.equal((await chat('rpm-model')).status, 429);
  });
  const reset = await call({ url: simulator.url, path: '/_sim/reset', method: 'POST', body: {} });
  assert.equal(reset.status, 200);
  assert.equal((await chat('rpm-model')).status, 200);
  assert.equal(simulator.stats().rateLimited, 0, 'stats were cleared too');
});

test('durations in rate-limit headers: every OpenAI form is read, anything else is not a duration', () => {
  assert.equal(parseDurationMs('6m0s'), 360_000);
  assert.equal(parseDurationMs(' 1h2m3s '), 3_723_000);
  assert.equal(parseDurationMs('12ms'), 12);
  assert.equal(parseDurationMs('1.5s'), 1_500);
  assert.equal(parseDurationMs('250us'), 0.25);
  assert.equal(parseDurationMs('20'), 20_000);
  for (const text of [undefined, '', ' ', 's', '6m0sx', 'x6m', '6 m', '-1s', '1.s', '5d']) {
    assert.equal(parseDurationMs(text), undefined, `${JSON.stringify(text)} is not a duration`);
  }
  // Twice in a row: the parser keeps no state between calls.
  assert.equal(parseDurationMs('1m1s'), 61_000);
  assert.equal(parseDurationMs('1m1s'), 61_000);
});

test('regression: counts in rate-limit headers are plain decimals; an empty, negative or malformed one is no reading, never 0', () => {
  assert.equal(parseCountHeader('0'), 0);
  assert.equal(parseCountHeader(' 59 '), 59);
  assert.equal(parseCountHeader('149984.5'), 149_984.5);
  for (const text of [undefined, '', ' ', '-1', 'NaN', '1e309', 'abc', '0x10', '1e3', '12 rpm', '+5']) {
    assert.equal(parseCountHeader(text), undefined, `${JSON.stringify(text)} is not a count`);
  }
  // Found by test/fuzz-upstream-answers.test.ts: an empty x-ratelimit-remaining-requests read as
  // "0 left", and a negative one as less than none, held calls to a healthy deployment until reset.
  for (const remaining of ['', ' ', '-1']) {
    const openai = parseRateLimit(headersOf({ 'x-ratelimit-limit-requests': '60', 'x-ratelimit-remaining-requests': remaining, 'x-ratelimit-reset-requests': '1s' }));
    assert.deepEqual(openai, { limitRequests: 60, resetRequestsMs: 1_000 }, JSON.stringify(remaining));
    const anthropic = anthropicRateLimit({ headers: headersOf({ 'anthropic-ratelimit-requests-limit': '60', 'anthropic-ratelimit-requests-remaining': remaining }), nowMs: 0 });
    assert.deepEqual(anthropic, { limitRequests: 60 }, JSON.stringify(remaining));
  }
});

test('regression: an upstream wait or reset longer than a day is read as a day, so one bad header cannot take a deployment out for years', () => {
  assert.equal(MAX_UPSTREAM_WAIT_MS, 86_400_000);
  // Found by test/fuzz-upstream-answers.test.ts: "try again in 99999999189049580 s".
  const huge = '99999999999999999999';
  assert.deepEqual(parseRateLimit(headersOf({ 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': huge, 'x-ratelimit-reset-tokens': '9999h' })), {
    remainingRequests: 0,
    resetRequestsMs: MAX_UPSTREAM_WAIT_MS,
    resetTokensMs: MAX_UPSTREAM_WAIT_MS,
  });
  assert.equal(retryAfterMs(headersOf({ 'retry-after': huge })), MAX_UPSTREAM_WAIT_MS);
  assert.equal(retryAfterMs(headersOf({ 'retry-after-ms': huge })), MAX_UPSTREAM_WAIT_MS);
  assert.equal(retryAfterMs(headersOf({ 'retry-after': 'Fri, 01 Jan 2100 00:00:00 GMT' }), Date.parse('2026-12-06T00:00:00Z')), MAX_UPSTREAM_WAIT_MS);
  const anthropic = anthropicRateLimit({ headers: headersOf({ 'anthropic-ratelimit-requests-reset': '2100-01-01T00:00:00Z' }), nowMs: Date.parse('2026-12-06T00:00:00Z') });
  assert.equal(anthropic.resetRequestsMs, MAX_UPSTREAM_WAIT_MS);
  // Waits within a day are read as they are.
  assert.equal(retryAfterMs(headersOf({ 'retry-after': '86399' })), 86_399_000);
  assert.equal(parseRateLimit(headersOf({ 'x-ratelimit-reset-requests': '23h59m' })).resetRequestsMs, 86_340_000);
});

test("formatDuration writes OpenAI's duration format, which Seed's parser reads back exactly", () => {
  assert.equal(formatDuration(12), '12ms');
  assert.equal(formatDuration(1_000), '1s');
  assert.equal(formatDuration(1_500), '1.5s');
  assert.equal(formatDuration(360_000), '6m0s');
  assert.equal(formatDuration(3_723_000), '1h2m3s');
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 10 * 3_600_000 }), (milliseconds) => {
      assert.equal(Math.round(parseDurationMs(formatDuration(milliseconds)) ?? -1), milliseconds);
    }),
    fuzzRuns(100),
  );
});
