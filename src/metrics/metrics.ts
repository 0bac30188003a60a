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

  return {
    registry,
    record(call: CallRecord): void {
      const labels = {
        route: input.knownRoutes.has(call.route) ? call.route : 'unknown',
        deployment: call.deployment ?? 'none',
      };
      calls.inc({ ...labels, status: call.status, code: call.errorCode ?? '', stream: String(call.stream) });
      latency.observe(labels, call.latencyMs / 1000);
      if (call.ttftMs !== null) ttft.observe(labels, call.ttftMs / 1000);
      if (call.promptTokens) tokens.inc({ ...labels, kind: 'prompt' }, call.promptTokens);
      if (call.completionTokens) tokens.inc({ ...labels, kind: 'completion' }, call.completionTokens);
      if (call.cachedTokens) tokens.inc({ ...labels, kind: 'cached' }, call.cachedTokens);
      if (call.costUsd) cost.inc(labels, call.costUsd);
      if (call.attempts) attempts.inc(labels, call.attempts);
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
