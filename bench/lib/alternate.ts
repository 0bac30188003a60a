import type { Pool } from 'undici';
import { clientGcOf, openLoop, openLoopPool, type ClientGc, type RequestShape } from './load.ts';
import { spansOf, type Span } from './sched-bursts.ts';

/**
 * The order every paired measurement of the benchmark uses: in pair `k`, the subject's slice and
 * the baseline's, the subject first in even pairs and second in odd ones, so a machine speeding
 * up or slowing down within a pair favours neither side.
 */
export async function alternatingPair<T>(pair: number, subject: () => Promise<T>, baseline: () => Promise<T>): Promise<{ subject: T; baseline: T }> {
  if (pair % 2 === 0) {
    const first = await subject();
    return { subject: first, baseline: await baseline() };
  }
  const first = await baseline();
  return { subject: await subject(), baseline: first };
}

/** What `pairedOpenLoop` measured: every request's latency of each side, and each pair's own p99 difference. */
export interface PairedOpenLoop {
  /** Latency of every completed request of the subject's slices (ms, from the scheduled send). */
  subjectLatencies: number[];
  baselineLatencies: number[];
  /** Per pair, the subject slice's p99 − the baseline slice's (ms). */
  addedP99PerPair: number[];
  /** Requests that failed or were not answered, both sides. */
  failures: number;
  /** The load generator's own GC during each side's slices, summed. */
  clientGc: { subject: ClientGc; baseline: ClientGc };
  /** Every completed request's span on CLOCK_MONOTONIC (`spansOf`), when asked for (`keepSpans`): to line them up with a `perf sched` recording. */
  spans?: { subject: Span[]; baseline: Span[] };
}

/**
 * `pairs` pairs of open-loop slices (`sliceSeconds` at `ratePerSecond`) of two servers, in
 * `alternatingPair` order, each slice starting once `beforeSlice` resolves (the benchmark waits
 * for its processes to be idle). Each side sends through one connection pool for the whole run.
 * Every request's latency is kept, so a caller can pool each
 * side's requests (a p99 over thousands of requests, the machine's drift shared by both) and show
 * each pair's own difference beside it.
 */
export async function pairedOpenLoop(input: {
  subject: RequestShape;
  baseline: RequestShape;
  ratePerSecond: number;
  sliceSeconds: number;
  pairs: number;
  beforeSlice?: () => Promise<unknown>;
  keepSpans?: boolean;
}): Promise<PairedOpenLoop> {
  const measured: PairedOpenLoop = {
    subjectLatencies: [],
    baselineLatencies: [],
    addedP99PerPair: [],
    failures: 0,
    clientGc: { subject: clientGcOf([]), baseline: clientGcOf([]) },
    ...(input.keepSpans ? { spans: { subject: [], baseline: [] } } : {}),
  };
  // One pool a side for the whole run, as a client in production keeps its connections (a pool
  // per slice re-opened as many connections as the slice's worst moment had requests in flight).
  const pools = new Map<RequestShape, Pool>();
  const slice = async (request: RequestShape, into: number[], gc: ClientGc, spans: Span[] | undefined) => {
    await input.beforeSlice?.();
    let pool = pools.get(request);
    if (pool === undefined) pools.set(request, (pool = openLoopPool(request.origin)));
    const result = await openLoop({ request, pool, ratePerSecond: input.ratePerSecond, count: Math.round(input.ratePerSecond * input.sliceSeconds), keepSamples: true });
    measured.failures += result.failures;
    gc.majors += result.clientGc.majors;
    gc.pauseMs += result.clientGc.pauseMs;
    gc.maxPauseMs = Math.max(gc.maxPauseMs, result.clientGc.maxPauseMs);
    for (const sample of result.samples ?? []) into.push(sample.latencyMs);
    if (spans) spans.push(...spansOf(result.samples ?? []));
    return result.latencyP99Ms;
  };
  try {
    for (let pair = 0; pair < input.pairs; pair += 1) {
      const p99 = await alternatingPair(
        pair,
        () => slice(input.subject, measured.subjectLatencies, measured.clientGc.subject, measured.spans?.subject),
        () => slice(input.baseline, measured.baselineLatencies, measured.clientGc.baseline, measured.spans?.baseline),
      );
      measured.addedP99PerPair.push(p99.subject - p99.baseline);
    }
  } finally {
    for (const pool of pools.values()) await pool.destroy();
  }
  return measured;
}
