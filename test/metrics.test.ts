/**
 * The metrics module keeps its counts itself and hands them to prom-client at scrape time
 * (src/metrics/metrics.ts). The oracle here is prom-client fed every call directly, the way
 * the module used to: for any sequence of calls, scrapes in between included, the /metrics
 * text must be the same, byte for byte, and a call prom-client would refuse must still throw.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Counter, Histogram, Registry } from 'prom-client';
import type { CallRecord } from '../src/ledger/types.ts';
import { createMetrics } from '../src/metrics/metrics.ts';
import { fuzzRuns } from './helpers/fuzz-runs.ts';

const ROUTES = ['gpt-4o-mini', 'claude-sonnet'];
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
const TTFT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** prom-client fed each call through its own labelled `inc`/`observe`: names, help and buckets as exposed. */
function oracle(knownRoutes: ReadonlySet<string>) {
  const registry = new Registry();
  const registers = [registry];
  const calls = new Counter({
    name: 'seed_calls_total',
    help: 'Calls through the gateway, by route, deployment, status and error code.',
    labelNames: ['route', 'deployment', 'status', 'code', 'stream'],
    registers,
  });
  const latency = new Histogram({
    name: 'seed_call_duration_seconds',
    help: 'Whole-call latency, all attempts included.',
    labelNames: ['route', 'deployment'],
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const ttft = new Histogram({
    name: 'seed_time_to_first_token_seconds',
    help: 'Time to the first streamed chunk.',
    labelNames: ['route', 'deployment'],
    buckets: TTFT_BUCKETS,
    registers,
  });
  const tokens = new Counter({
    name: 'seed_tokens_total',
    help: 'Tokens by route, deployment and kind (prompt, completion, cached).',
    labelNames: ['route', 'deployment', 'kind'],
    registers,
  });
  const cost = new Counter({
    name: 'seed_cost_usd_total',
    help: 'Cost of calls in US dollars, by route and deployment.',
    labelNames: ['route', 'deployment'],
    registers,
  });
  const attempts = new Counter({
    name: 'seed_upstream_attempts_total',
    help: 'Upstream attempts (retries and fallbacks included).',
    labelNames: ['route', 'deployment'],
    registers,
  });
  new Counter({ name: 'seed_errors_total', help: 'Error responses by code.', labelNames: ['code', 'status'], registers });
  return {
    record(call: CallRecord): void {
      const route = knownRoutes.has(call.route) ? call.route : 'unknown';
      const deployment = call.deployment ?? 'none';
      const labels = { route, deployment };
      const stream = call.stream ? 'true' : 'false';
      calls.inc({ route, deployment, status: call.status, code: call.errorCode ?? '', stream });
      latency.observe(labels, call.latencyMs / 1000);
      if (call.ttftMs !== null) ttft.observe(labels, call.ttftMs / 1000);
      if (call.promptTokens) tokens.inc({ route, deployment, kind: 'prompt' }, call.promptTokens);
      if (call.completionTokens) tokens.inc({ route, deployment, kind: 'completion' }, call.completionTokens);
      if (call.cachedTokens) tokens.inc({ route, deployment, kind: 'cached' }, call.cachedTokens);
      if (call.costUsd) cost.inc(labels, call.costUsd);
      if (call.attempts) attempts.inc(labels, call.attempts);
    },
    text: () => registry.metrics(),
  };
}

function callRecord(fields: Partial<CallRecord>): CallRecord {
  return {
    id: 'call_1',
    clientRequestId: null,
    startedAt: 0,
    endpoint: 'chat.completions',
    route: 'gpt-4o-mini',
    servedRoute: null,
    deployment: 'openai-mini',
    provider: 'openai',
    model: 'gpt-4o-mini',
    region: null,
    purpose: 'inference',
    termsProfile: null,
    termsVersion: null,
    orgId: null,
    teamId: null,
    keyId: null,
    status: 'ok',
    httpStatus: 200,
    errorCode: null,
    stream: false,
    attempts: 1,
    promptTokens: 10,
    completionTokens: 5,
    cachedTokens: 0,
    usageReported: true,
    costUsd: 0.000_01,
    latencyMs: 120,
    ttftMs: null,
    metadata: null,
    payload: null,
    ...fields,
  };
}

/** Milliseconds: on and around every bucket bound, past the last, zero, and any. */
const milliseconds = fc.oneof(
  fc.constantFrom(...LATENCY_BUCKETS.map((bound) => bound * 1000), 0, 0.5, 5.000_001, 120_000.5, 3_600_000),
  fc.double({ min: 0, max: 200_000, noNaN: true }),
);
/** Mostly sane, sometimes what prom-client refuses (negative, infinite) or skips (NaN, 0). */
const amount = (sane: fc.Arbitrary<number>) =>
  fc.oneof({ weight: 12, arbitrary: sane }, { weight: 1, arbitrary: fc.constantFrom(0, -1, Number.NaN, Infinity) });
const call = fc.record({
  route: fc.constantFrom(...ROUTES, 'not-a-route'),
  deployment: fc.constantFrom('openai-mini', 'azure-mini', null),
  status: fc.constantFrom('ok' as const, 'error' as const, 'aborted' as const),
  errorCode: fc.constantFrom(null, 'upstream_rate_limited' as const, 'upstream_error' as const),
  stream: fc.boolean(),
  attempts: amount(fc.integer({ min: 1, max: 4 })),
  promptTokens: amount(fc.integer({ min: 0, max: 100_000 })),
  completionTokens: amount(fc.integer({ min: 0, max: 10_000 })),
  cachedTokens: amount(fc.integer({ min: 0, max: 5_000 })),
  costUsd: amount(fc.double({ min: 0, max: 3, noNaN: true })),
  latencyMs: fc.oneof({ weight: 20, arbitrary: milliseconds }, { weight: 1, arbitrary: fc.constantFrom(Number.NaN, Infinity) }),
  ttftMs: fc.option(milliseconds),
});
/** A call, or a scrape between calls (a scrape must not change what later scrapes show). */
const step = fc.oneof({ weight: 8, arbitrary: call }, { weight: 1, arbitrary: fc.constant('scrape' as const) });

test('the /metrics text is what prom-client fed every call directly would expose', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(step, { maxLength: 60 }), async (steps) => {
      const knownRoutes = new Set(ROUTES);
      const metrics = createMetrics({ knownRoutes, defaultMetrics: false });
      const expected = oracle(knownRoutes);
      for (const each of steps) {
        if (each === 'scrape') {
          assert.equal(await metrics.text(), await expected.text());
          continue;
        }
        const record = callRecord(each);
        let expectedError: unknown;
        try {
          expected.record(record);
        } catch (error) {
          expectedError = error;
        }
        if (expectedError === undefined) metrics.record(record);
        else assert.throws(() => metrics.record(record), { name: (expectedError as Error).name, message: (expectedError as Error).message });
      }
      assert.equal(await metrics.text(), await expected.text());
    }),
    fuzzRuns(300),
  );
});

test('a call shows in every series it touches, and scraping twice gives the same text', async () => {
  const metrics = createMetrics({ knownRoutes: new Set(ROUTES), defaultMetrics: false });
  metrics.record(callRecord({ stream: true, ttftMs: 40, cachedTokens: 3, latencyMs: 250 }));
  const text = await metrics.text();
  assert.equal(await metrics.text(), text);
  const labels = 'route="gpt-4o-mini",deployment="openai-mini"';
  assert.match(text, new RegExp(`^seed_calls_total\\{${labels},status="ok",code="",stream="true"\\} 1$`, 'm'));
  assert.match(text, new RegExp(`^seed_call_duration_seconds_bucket\\{le="0\\.25",${labels}\\} 1$`, 'm'));
  assert.match(text, new RegExp(`^seed_call_duration_seconds_bucket\\{le="0\\.1",${labels}\\} 0$`, 'm'));
  assert.match(text, new RegExp(`^seed_call_duration_seconds_sum\\{${labels}\\} 0\\.25$`, 'm'));
  assert.match(text, new RegExp(`^seed_time_to_first_token_seconds_count\\{${labels}\\} 1$`, 'm'));
  assert.match(text, new RegExp(`^seed_tokens_total\\{${labels},kind="cached"\\} 3$`, 'm'));
  assert.match(text, new RegExp(`^seed_upstream_attempts_total\\{${labels}\\} 1$`, 'm'));
});

test('metrics.eventLoopPrecisionMs sets how often the event-loop-delay monitor samples', async () => {
  const { parseConfig } = await import('../src/config/load.ts');
  // The monitor records the interval between its own timer's runs, so its smallest sample is
  // about the precision: at 10 ms (the default) well under 40 ms, at 50 ms at least ~50.
  const smallestLag = async (eventLoopPrecisionMs?: number) => {
    const metrics = createMetrics({ knownRoutes: new Set(), ...(eventLoopPrecisionMs === undefined ? {} : { eventLoopPrecisionMs }) });
    await metrics.text();
    await new Promise((resolve) => setTimeout(resolve, 400));
    const text = await metrics.text();
    const line = text.split('\n').find((each) => each.startsWith('seed_process_nodejs_eventloop_lag_min_seconds '));
    assert.ok(line, 'the event-loop lag series is exposed');
    return Number(line.split(' ')[1]);
  };
  assert.ok((await smallestLag()) < 0.04, 'the default samples every 10 ms');
  assert.ok((await smallestLag(50)) >= 0.045, 'a 50 ms precision samples every 50 ms');

  const base = { deployments: {}, routes: {} };
  assert.equal(parseConfig(JSON.stringify(base)).metrics.eventLoopPrecisionMs, 10);
  assert.equal(parseConfig(JSON.stringify({ ...base, metrics: { eventLoopPrecisionMs: 100 } })).metrics.eventLoopPrecisionMs, 100);
  for (const wrong of [0, -5, 1.5, '10']) {
    assert.throws(() => parseConfig(JSON.stringify({ ...base, metrics: { eventLoopPrecisionMs: wrong } })), /eventLoopPrecisionMs/, `rejects ${String(wrong)}`);
  }
});
