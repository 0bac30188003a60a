/**
 * Prometheus metrics, fed from call records (one per call) and from error responses. Exposed
 * at GET /metrics in the text format. Labels are bounded: route and deployment come from
 * config, codes from the error table; the client-supplied `model` is never a label unless it
 * names a configured route (unknown names collapse to `unknown`).
 *
 * Recording a call only adds to numbers kept here; prom-client's registry reads them when it is
 * scraped and writes the text. prom-client's own `inc`/`observe` (a `labels(...)` child's too)
 * builds a hash string from the labels object and checks every label on each call
 * (lib/counter.js, lib/histogram.js): with up to eight series per call that was about 5 µs and
 * 2.4 KB of garbage per call.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type LabelValues } from 'prom-client';
import type { SeedError } from '../errors.ts';
import type { CallRecord, CallSink } from '../ledger/types.ts';

export interface Metrics extends CallSink {
  countError(error: SeedError): void;
  /**
   * Exposes a component's counters as one gauge, `name{counter="<key>"}` per key of what `stats`
   * returns (read at scrape time; booleans as 1/0): the ledger writer's, the limiter's.
   */
  observeStats(input: { name: string; help: string; stats: () => Readonly<Record<string, number | boolean>> }): void;
  text(): Promise<string>;
  registry: Registry;
}

export function createMetrics(input: {
  knownRoutes: ReadonlySet<string>;
  defaultMetrics?: boolean;
  /** How often the event-loop-delay monitor samples, in ms (config `metrics.eventLoopPrecisionMs`; prom-client's default 10). */
  eventLoopPrecisionMs?: number;
}): Metrics {
  const registry = new Registry();
  if (input.defaultMetrics !== false) {
    collectDefaultMetrics({ register: registry, prefix: 'seed_process_', eventLoopMonitoringPrecision: input.eventLoopPrecisionMs ?? 10 });
  }
  const labelNames = ['route', 'deployment'] as const;
  const calls = countedSeries({
    name: 'seed_calls_total',
    help: 'Calls through the gateway, by route, deployment, status and error code.',
    labelNames: [...labelNames, 'status', 'code', 'stream'],
    registry,
  });
  const latency = histogramSeries({
    name: 'seed_call_duration_seconds',
    help: 'Whole-call latency, all attempts included.',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    registry,
  });
  const ttft = histogramSeries({
    name: 'seed_time_to_first_token_seconds',
    help: 'Time to the first streamed chunk.',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registry,
  });
  const tokens = countedSeries({
    name: 'seed_tokens_total',
    help: 'Tokens by route, deployment and kind (prompt, completion, cached).',
    labelNames: [...labelNames, 'kind'],
    registry,
  });
  const cost = countedSeries({
    name: 'seed_cost_usd_total',
    help: 'Cost of calls in US dollars, by route and deployment.',
    labelNames,
    registry,
  });
  const attempts = countedSeries({
    name: 'seed_upstream_attempts_total',
    help: 'Upstream attempts (retries and fallbacks included).',
    labelNames,
    registry,
  });
  const errors = new Counter({
    name: 'seed_errors_total',
    help: 'Error responses by code.',
    labelNames: ['code', 'status'],
    registers: [registry],
  });

  /** A (route, deployment)'s series, made on its first call. */
  interface SeriesForDeployment {
    latency: HistogramSeries;
    ttft: HistogramSeries;
    promptTokens: CounterSeries;
    completionTokens: CounterSeries;
    cachedTokens: CounterSeries;
    cost: CounterSeries;
    attempts: CounterSeries;
    /** By status, error code and stream flag. */
    calls: Map<string, CounterSeries>;
  }
  const series = new Map<string, Map<string, SeriesForDeployment>>();
  const seriesFor = (route: string, deployment: string): SeriesForDeployment => {
    let forRoute = series.get(route);
    if (forRoute === undefined) {
      forRoute = new Map();
      series.set(route, forRoute);
    }
    let found = forRoute.get(deployment);
    if (found === undefined) {
      found = {
        latency: latency({ route, deployment }),
        ttft: ttft({ route, deployment }),
        promptTokens: tokens({ route, deployment, kind: 'prompt' }),
        completionTokens: tokens({ route, deployment, kind: 'completion' }),
        cachedTokens: tokens({ route, deployment, kind: 'cached' }),
        cost: cost({ route, deployment }),
        attempts: attempts({ route, deployment }),
        calls: new Map(),
      };
      forRoute.set(deployment, found);
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
      let callsSeries = each.calls.get(callsKey);
      if (callsSeries === undefined) {
        callsSeries = calls({ route, deployment, status: call.status, code, stream });
        each.calls.set(callsKey, callsSeries);
      }
      callsSeries.inc();
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
    observeStats({ name, help, stats }) {
      const gauge = new Gauge({
        name,
        help,
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

type Labels = LabelValues<string>;

/** One series of a `countedSeries` counter. */
interface CounterSeries {
  /** Adds `amount` (1 if omitted); like prom-client's `inc`, throws for a negative or infinite amount. */
  inc(amount?: number): void;
}

/**
 * A prom-client Counter whose series are running totals kept here and handed to it in its
 * `collect` hook, at scrape time. Returns the function that makes a series for a labels object
 * (once per series: the caller keeps it). A series is listed from its first increment on, and
 * series are handed over in that order: prom-client lists them in the order they first
 * appeared, so the text is the same as if each `inc` had gone to prom-client.
 */
function countedSeries(configuration: {
  name: string;
  help: string;
  labelNames: readonly string[];
  registry: Registry;
}): (labels: Labels) => CounterSeries {
  const listed: Array<{ labels: Labels; total: number }> = [];
  const counter: Counter = new Counter({
    name: configuration.name,
    help: configuration.help,
    labelNames: configuration.labelNames,
    registers: [configuration.registry],
    collect() {
      counter.reset();
      for (const each of listed) counter.inc(each.labels, each.total);
    },
  });
  return (labels) => {
    const entry = { labels, total: 0 };
    let isListed = false;
    return {
      inc(amount = 1) {
        // prom-client's checks (lib/counter.js), so a bad amount still fails at the call.
        if (amount && !Number.isFinite(amount)) throw new TypeError(`Value is not a valid number: ${amount}`);
        if (amount < 0) throw new Error('It is not possible to decrease a counter');
        if (!isListed) {
          listed.push(entry);
          isListed = true;
        }
        entry.total += amount;
      },
    };
  };
}

/** One series of a `histogramSeries` histogram. */
interface HistogramSeries {
  /** Counts `value`; like prom-client's `observe`, throws for a value that is not finite. */
  observe(value: number): void;
}

/** A histogram value as prom-client's `Histogram#get()` gives it. */
interface HistogramValue {
  metricName: string;
  labels: Labels;
  value: number;
}

/**
 * A histogram whose series are bucket counts kept here. prom-client has no way to give its
 * Histogram counts (only `observe`, one value at a time), so this registers a metric of its
 * own with the registry: an object with `get()` returning what prom-client's Histogram returns
 * — the form the registry reads from every metric, and the one prom-client's cluster
 * aggregation registers too (lib/cluster.js). The registry still writes the text;
 * test/metrics.test.ts checks it against prom-client's Histogram fed the same values.
 * A series is listed from its first observation on, in that order, as prom-client does.
 */
function histogramSeries(configuration: {
  name: string;
  help: string;
  buckets: readonly number[];
  registry: Registry;
}): (labels: Labels) => HistogramSeries {
  const { name, help, buckets } = configuration;
  interface Counts {
    labels: Labels;
    /** Observations per bucket, not cumulative; those above the last bound are only in `count`. */
    inBucket: number[];
    sum: number;
    count: number;
  }
  const listed: Counts[] = [];
  const valuesOf = (counts: Counts): HistogramValue[] => {
    const values: HistogramValue[] = [];
    let cumulative = 0;
    buckets.forEach((bound, index) => {
      cumulative += counts.inBucket[index]!;
      values.push({ metricName: `${name}_bucket`, labels: { le: bound, ...counts.labels }, value: cumulative });
    });
    values.push(
      { metricName: `${name}_bucket`, labels: { le: '+Inf', ...counts.labels }, value: counts.count },
      { metricName: `${name}_sum`, labels: { ...counts.labels }, value: counts.sum },
      { metricName: `${name}_count`, labels: { ...counts.labels }, value: counts.count },
    );
    return values;
  };
  const metric = {
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    get: async () => ({ name, help, type: 'histogram', aggregator: 'sum', values: listed.flatMap(valuesOf) }),
    // `registry.resetMetrics()` (Seed never calls it) leaves these totals, as it leaves the
    // counters' (their `collect` hands the totals over again).
    reset() {},
  };
  // The registry's typings name only prom-client's classes; it reads a metric's name, type and
  // get() (and reset() on resetMetrics), as lib/registry.js shows.
  configuration.registry.registerMetric(metric as unknown as Histogram);
  return (labels) => {
    const counts: Counts = { labels, inBucket: buckets.map(() => 0), sum: 0, count: 0 };
    return {
      observe(value) {
        // prom-client's check (lib/histogram.js).
        if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
        if (counts.count === 0) listed.push(counts);
        // The first bucket whose bound is at least the value: prom-client's `findBound`.
        for (let index = 0; index < buckets.length; index += 1) {
          if (value <= buckets[index]!) {
            counts.inBucket[index]! += 1;
            break;
          }
        }
        counts.sum += value;
        counts.count += 1;
      },
    };
  };
}
