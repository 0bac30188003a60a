import type { Pool } from 'undici';
import { clientGcOf, openLoop, openLoopPool, type ClientGc, type RequestShape } from './load.ts';
import { spansOf, type Span } from './sched-bursts.ts';
import { median } from './stats.ts';

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

/**
 * Which process of each side (`subjects` and `baselines` of them) pair number `pair` measures.
 * With as many processes a side, both sides move on every pair (subject `k mod n`, baseline
 * `(k + ⌊k / n⌋) mod n`; from three a side on), so every process of either side idles as long between its slices;
 * holding one side's process for n pairs while the other rotated measured a process that had
 * just served against one that had idled for five slices. Otherwise the subject rotates every
 * pair and the baseline every `subjects` pairs. Either way, any S × B pairs in a row from pair 0
 * meet every pairing once.
 */
export function processesOfPair(pair: number, subjects: number, baselines: number): readonly [subject: number, baseline: number] {
  if (subjects === baselines) return [pair % subjects, (pair + Math.floor(pair / subjects)) % baselines];
  return [pair % subjects, Math.floor(pair / subjects) % baselines];
}

/**
 * Per process of one side (`side` 0: subjects, 1: baselines; `count` of them), the median of the
 * ratios of the pairs it took part in; `processPairs[k]` is pair k's `processesOfPair` (absent:
 * one process a side).
 */
export function mediansByProcess(
  ratios: readonly number[],
  processPairs: ReadonlyArray<readonly [number, number]> | undefined,
  side: 0 | 1,
  count: number,
): number[] {
  return Array.from({ length: count }, (_, process) => median(ratios.filter((_, pair) => (processPairs?.[pair]?.[side] ?? 0) === process)));
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
  /** One request shape a side, or one a process of the side: pair `k` sends to `processesOfPair`'s choice. */
  subject: RequestShape | readonly RequestShape[];
  baseline: RequestShape | readonly RequestShape[];
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
  const subjects = listOf(input.subject);
  const baselines = listOf(input.baseline);
  try {
    for (let pair = 0; pair < input.pairs; pair += 1) {
      const [subjectIndex, baselineIndex] = processesOfPair(pair, subjects.length, baselines.length);
      const p99 = await alternatingPair(
        pair,
        () => slice(subjects[subjectIndex]!, measured.subjectLatencies, measured.clientGc.subject, measured.spans?.subject),
        () => slice(baselines[baselineIndex]!, measured.baselineLatencies, measured.clientGc.baseline, measured.spans?.baseline),
      );
      measured.addedP99PerPair.push(p99.subject - p99.baseline);
    }
  } finally {
    for (const pool of pools.values()) await pool.destroy();
  }
  return measured;
}

/** One of a side, or several: as a list. */
export function listOf<T extends object>(one: T | readonly T[]): readonly T[] {
  return Array.isArray(one) ? (one as readonly T[]) : [one as T];
}
