/**
 * Prometheus metrics, fed from call records (one per call) and from error responses. Exposed
 * at GET /metrics in the text format. Labels are bounded: route and deployment come from
 * config, codes from the error table; the client-supplied `model` is never a label unless it
 * names a configured route (unknown names collapse to `unknown`).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { SeedError } from '../errors.ts';
import type { CallRecord, CallSink } from '../ledger/types.ts';

export interface Metrics extends CallSink {
  countError(error: SeedError): void;
  /** Exposes the ledger writer's counters (read at scrape time). */
  observeLedger(stats: () => Record<string, number | boolean>): void;
  text(): Promise<string>;
  registry: Registry;
}

export function createMetrics(input: { knownRoutes: ReadonlySet<string>; defaultMetrics?: boolean }): Metrics {
  const registry = new Registry();
  if (input.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'seed_process_' });
  const labelNames = ['route', 'deployment'] as const;
  const calls = new Counter({
    name: 'seed_calls_total',
    help: 'Calls through the gateway, by route, deployment, status and error code.',
    labelNames: [...labelNames, 'status', 'code', 'stream'],
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'seed_call_duration_seconds',
    help: 'Whole-call latency, all attempts included.',
    labelNames,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    registers: [registry],
  });
  const ttft = new Histogram({
    name: 'seed_time_to_first_token_seconds',
    help: 'Time to the first streamed chunk.',
    labelNames,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const tokens = new Counter({
    name: 'seed_tokens_total',
    help: 'Tokens by route, deployment and kind (prompt, completion, cached).',
    labelNames: [...labelNames, 'kind'],
    registers: [registry],
  });
  const cost = new Counter({
    name: 'seed_cost_usd_total',
    help: 'Cost of calls in US dollars, by route and deployment.',
    labelNames,
    registers: [registry],
  });
  const attempts = new Counter({
    name: 'seed_upstream_attempts_total',
    help: 'Upstream attempts (retries and fallbacks included).',
    labelNames,
    registers: [registry],
  });
  const errors = new Counter({
    name: 'seed_errors_total',
    help: 'Error responses by code.',
    labelNames: ['code', 'status'],
    registers: [registry],
  });

  // prom-client hashes a labels object on every inc/observe; a call touches up to eight series,
  // so the labelled children are looked up once per (route, deployment) and (status, code, stream).
  interface SeriesForDeployment {
    latency: ReturnType<typeof latency.labels>;
    ttft: ReturnType<typeof ttft.labels>;
    promptTokens: ReturnType<typeof tokens.labels>;
    completionTokens: ReturnType<typeof tokens.labels>;
    cachedTokens: ReturnType<typeof tokens.labels>;
    cost: ReturnType<typeof cost.labels>;
    attempts: ReturnType<typeof attempts.labels>;
    calls: Map<string, ReturnType<typeof calls.labels>>;
  }
  const series = new Map<string, SeriesForDeployment>();
  const seriesFor = (route: string, deployment: string): SeriesForDeployment => {
    const key = `${route}\u0000${deployment}`;
    let found = series.get(key);
    if (found === undefined) {
      const labels = { route, deployment };
      found = {
        latency: latency.labels(labels),
        ttft: ttft.labels(labels),
        promptTokens: tokens.labels({ ...labels, kind: 'prompt' }),
        completionTokens: tokens.labels({ ...labels, kind: 'completion' }),
        cachedTokens: tokens.labels({ ...labels, kind: 'cached' }),
        cost: cost.labels(labels),
        attempts: attempts.labels(labels),
        calls: new Map(),
      };
      series.set(key, found);
    }
    return found;
  };

  return {
    registry,
    record(call: CallRecord): void {
      const route = input.knownRoutes.has(call.route) ? call.route : 'unknown';
      const deployment = call.deployment ?? 'none';
      const each = seriesFor(route, deployment);
      const code = call.errorCode ?? '';
      const stream = call.stream ? 'true' : 'false';
      const callsKey = `${call.status}\u0000${code}\u0000${stream}`;
      let callsChild = each.calls.get(callsKey);
      if (callsChild === undefined) {
        callsChild = calls.labels({ route, deployment, status: call.status, code, stream });
        each.calls.set(callsKey, callsChild);
      }
      callsChild.inc();
      each.latency.observe(call.latencyMs / 1000);
      if (call.ttftMs !== null) each.ttft.observe(call.ttftMs / 1000);
      if (call.promptTokens) each.promptTokens.inc(call.promptTokens);
      if (call.completionTokens) each.completionTokens.inc(call.completionTokens);
      if (call.cachedTokens) each.cachedTokens.inc(call.cachedTokens);
      if (call.costUsd) each.cost.inc(call.costUsd);
      if (call.attempts) each.attempts.inc(call.attempts);
    },
    countError(error: SeedError): void {
      errors.inc({ code: error.code, status: String(error.status) });
    },
    observeLedger(stats) {
      const gauge = new Gauge({
        name: 'seed_ledger',
        help: 'Ledger writer counters: queued now; recorded, written, spilled, replayed and failed since start; store healthy (1/0).',
        labelNames: ['counter'],
        registers: [registry],
        collect() {
          for (const [counter, value] of Object.entries(stats())) gauge.set({ counter }, Number(value));
        },
      });
    },
    text: () => registry.metrics(),
  };
}
