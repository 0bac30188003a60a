/**
 * Scenario 1 — overhead and throughput. Every target sits in front of the same simulator
 * process; for each round (targets in a rotated order, so drift on a shared machine spreads
 * over all of them) each target gets four phases: closed loop at fixed concurrency and open
 * loop at a fixed rate, each non-streaming and streaming. Rounds are summarized by their median;
 * ratios and added latencies are computed within a round, then the median is taken.
 *
 * The machine's speed drifts within seconds (CPU steal from neighbours), which a 5 s phase per
 * target cannot separate from a difference between targets. So the throughput ratios the
 * issue's targets are judged on are also measured paired, before the rounds: Seed and one
 * baseline alternate in 1 s closed-loop slices, which one goes first alternating too, and each
 * adjacent pair gives one ratio; the median of the pairs is reported with its quartiles. The
 * pairs rotate over several processes of Seed and of the undici proxy (`processes`).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { alternatingPair, mediansByProcess, pairedOpenLoop, processesOfPair, type PairedOpenLoop } from '../lib/alternate.ts';
import { machineLayout, whilePinned, type PinLayout } from '../lib/affinity.ts';
import { attributeBursts, benchmarkProcesses, hostBurstsText, outside, schedRecordingUnavailable, startSchedRecording, type HostBursts } from '../lib/sched-bursts.ts';
import { checkTarget, clientGcText, closedLoop, openLoop, type RequestShape } from '../lib/load.ts';
import { sampleProcess, systemBusyMs, waitForQuiet } from '../lib/proc.ts';
import { median, percentile, quartiles, type Quartiles } from '../lib/stats.ts';
import { SIMULATOR_HEADERS, startTargets, type SkippedTarget, type Target, type TargetId, startSimulator } from '../lib/targets.ts';

export interface OverheadOptions {
  durationSeconds: number;
  rounds: number;
  concurrency: number;
  ratePerSecond: number;
  /** Alternating 1 s slice pairs per baseline and mode for the paired ratios (0: none). */
  pairs: number;
  /**
   * Processes of Seed and of the minimal undici proxy the paired ratios rotate over, every Seed
   * process meeting every proxy process: identical processes keep speeds 5–15% apart for their
   * whole life (docs/benchmark-log.md, 2026-12-04 (03:14–), item 2), which one process each cannot average out.
   */
  processes: number;
  /** Seed's `server.keepWarmBytesPerSecond` for every Seed process (0: the timer off); Seed's default when absent. */
  seedKeepWarmBytesPerSecond?: number;
  /**
   * Also measure the paired tails with the load generator and the simulator on one CPU and the
   * proxy on the others (`PairedTail.pinned`), where the machine allows it. Unpinned, a server
   * woken by a socket write waits on the writer's CPU while another idles (docs/benchmark-log.md,
   * 2026-12-07 (21:00–), item 3); pinned has costs of its own (item 7 there), so it is opt-in
   * (`npm run bench -- --pinned-tails`).
   */
  pinnedTails?: boolean;
  only: readonly TargetId[];
  workDirectory: string;
  log: (line: string) => void;
}

export type PhaseName = 'closed' | 'closed-stream' | 'open' | 'open-stream';
export const PHASES: readonly PhaseName[] = ['closed', 'closed-stream', 'open', 'open-stream'];

export interface PhaseMeasurement {
  requestsPerSecond: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  firstByteP50Ms: number;
  completed: number;
  failures: number;
  /** CPU (user+sys) of the proxy process per completed request, in µs; NaN for direct. */
  cpuMicrosecondsPerRequest: number;
  simulatorCpuMicrosecondsPerRequest: number;
  sendLagP99Ms: number;
  /** CPU used by processes outside the benchmark during the phase, in cores (noise indicator). */
  otherLoadCores: number;
}

export interface TargetSummary {
  id: TargetId;
  label: string;
  note: string;
  pid: number | undefined;
  peakRssMiB: number;
  phases: Record<PhaseName, PhaseSummary>;
}

export interface PhaseSummary {
  rounds: PhaseMeasurement[];
  requestsPerSecond: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  firstByteP50Ms: number;
  cpuMicrosecondsPerRequest: number;
  failures: number;
  /** Median over rounds of (this − direct) in the same round. */
  addedP50Ms: number;
  addedP99Ms: number;
  addedFirstByteP50Ms: number;
  /** Median over rounds of requests/s ÷ the baseline's in the same round. */
  ratioToUndici: number;
  ratioToPortkey: number;
  sendLagP99Ms: number;
}

/** Seed's closed-loop throughput over a baseline's, from alternating 1 s slices. */
export interface PairedRatio {
  /** The numerator: Seed, or the undici proxy for the bound any Node proxy has against Portkey (absent in older runs: Seed). */
  subject?: TargetId;
  baseline: TargetId;
  stream: boolean;
  /** One ratio per pair of adjacent slices (Seed req/s ÷ baseline req/s). */
  ratios: number[];
  /**
   * CPU per request of the subject's process ÷ the baseline's, per pair (user + system of the
   * whole process over its slice ÷ requests completed); absent in older runs. It tells a
   * throughput ratio that comes from doing more work per request from one that comes from how
   * the shared cores were scheduled.
   */
  cpuRatios?: number[];
  /**
   * Which process of each side every pair measured (index into that side's processes); absent
   * in runs with one process per side.
   */
  processPairs?: Array<readonly [subject: number, baseline: number]>;
  /** Processes per side the pairs rotated over (absent: one each). */
  subjectProcesses?: number;
  baselineProcesses?: number;
  median: number;
  lowerQuartile: number;
  upperQuartile: number;
}

/**
 * A proxy's added latency at a fixed open-loop rate, from alternating open-loop slices of the
 * proxy and of the simulator itself (`direct`), who goes first alternating: the drift of a
 * shared machine, which decides a p99 far more than any proxy does here, falls on both alike.
 */
export interface PairedTail {
  subject: TargetId;
  baseline: TargetId;
  stream: boolean;
  ratePerSecond: number;
  sliceSeconds: number;
  pairs: number;
  /** Requests that failed or were not answered, both sides. */
  failures: number;
  /** Percentiles of every request of each side, pooled over the pairs (ms, from the scheduled send). */
  subjectP50Ms: number;
  subjectP99Ms: number;
  baselineP50Ms: number;
  baselineP99Ms: number;
  /** Per pair, the subject slice's p99 − the baseline slice's (ms). */
  addedP99PerPair: number[];
  /** The load generator's own GC during each side's slices (absent in older runs). */
  clientGc?: PairedOpenLoop['clientGc'];
  /** Whether each side served one unmeasured open-loop slice first (`warmUpOpenLoop`; absent in older runs, which did not). */
  openLoopWarmUp?: boolean;
  /**
   * Bursts of CPU taken by tasks outside the benchmark (kernel threads, the host's other
   * services) during the slices, from `perf sched record -a`, and which requests of each side
   * they overlapped; absent where perf could not record (`hostBurstsSkipped` says why) and in
   * older runs.
   */
  hostBursts?: HostBursts<'subject' | 'baseline'>;
  /**
   * Where the slices ran when pinned: the load generator and the simulator (direct) on `world`,
   * the proxy on `gateway`, as a deployment has them on different hosts. Absent: wherever the
   * kernel put them (every run before 2026-12-07 (21:00–)).
   */
  pinned?: PinLayout;
}

export interface OverheadResult {
  options: Omit<OverheadOptions, 'log' | 'workDirectory'>;
  targets: TargetSummary[];
  paired: PairedRatio[];
  /** Added latency from alternating open-loop slices (absent in older runs); the pinned ones after the others. */
  pairedTails?: PairedTail[];
  /** Why the paired tails were not also measured pinned, when they were asked to be. */
  pinnedTailsSkipped?: string;
  skipped: SkippedTarget[];
  simulatorPeakRssMiB: number;
  /**
   * The quota the simulator reported on every answer (`x-ratelimit-limit-requests` /
   * `-tokens`, read off a direct request), as real upstreams do; undefined when it reported none.
   */
  upstreamQuota?: { requests: string; tokens: string };
  /** Closed-loop load per target and mode before the rounds (1 s in runs before this field). */
  warmUpSeconds?: number;
  /** Why the paired tails carry no `hostBursts`, when they do not. */
  hostBurstsSkipped?: string;
}

/** Closed-loop load per target and mode before anything is measured. */
export const WARM_UP_SECONDS = 8;

/** `WARM_UP_SECONDS` of closed-loop load on one target in one mode: how every scenario warms a process before measuring it. */
export async function warmUp(target: Pick<Target, 'origin' | 'headers'>, stream: boolean, concurrency: number): Promise<void> {
  await closedLoop({ request: requestFor(target, stream), connections: concurrency, durationSeconds: WARM_UP_SECONDS });
}

const BODY = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hello' }], max_tokens: 32 };

export function requestFor(target: Pick<Target, 'origin' | 'headers'>, stream: boolean): RequestShape {
  return {
    origin: target.origin,
    path: '/v1/chat/completions',
    headers: target.headers,
    body: JSON.stringify(stream ? { ...BODY, stream: true } : BODY),
  };
}

async function measurePhase(input: {
  target: Target;
  simulatorPid: number;
  phase: PhaseName;
  options: OverheadOptions;
}): Promise<PhaseMeasurement> {
  const { target, phase, options } = input;
  const stream = phase.endsWith('stream');
  const request = requestFor(target, stream);
  const proxyBefore = target.server ? sampleProcess(target.server.pid) : undefined;
  const simulatorBefore = sampleProcess(input.simulatorPid);
  const systemBefore = systemBusyMs();
  const selfBefore = process.cpuUsage();
  const wallBefore = performance.now();
  let measurement: Omit<PhaseMeasurement, 'cpuMicrosecondsPerRequest' | 'simulatorCpuMicrosecondsPerRequest' | 'otherLoadCores'>;
  if (phase.startsWith('closed')) {
    const result = await closedLoop({ request, connections: options.concurrency, durationSeconds: options.durationSeconds });
    measurement = { ...result, firstByteP50Ms: Number.NaN, sendLagP99Ms: Number.NaN };
  } else {
    const result = await openLoop({ request, ratePerSecond: options.ratePerSecond, count: Math.round(options.ratePerSecond * options.durationSeconds) });
    measurement = {
      requestsPerSecond: result.achievedPerSecond,
      latencyP50Ms: result.latencyP50Ms,
      latencyP99Ms: result.latencyP99Ms,
      firstByteP50Ms: result.firstByteP50Ms,
      completed: result.completed,
      failures: result.failures,
      sendLagP99Ms: result.sendLagP99Ms,
    };
  }
  const proxyAfter = target.server ? sampleProcess(target.server.pid) : undefined;
  const simulatorAfter = sampleProcess(input.simulatorPid);
  const self = process.cpuUsage(selfBefore);
  const ownMs =
    (self.user + self.system) / 1_000 +
    (simulatorAfter && simulatorBefore ? simulatorAfter.cpuMs - simulatorBefore.cpuMs : 0) +
    (proxyAfter && proxyBefore ? proxyAfter.cpuMs - proxyBefore.cpuMs : 0);
  const otherLoadCores = Math.max(0, (systemBusyMs() - systemBefore - ownMs) / (performance.now() - wallBefore));
  const perRequest = (before?: { cpuMs: number }, after?: { cpuMs: number }) =>
    before && after && measurement.completed > 0 ? ((after.cpuMs - before.cpuMs) * 1_000) / measurement.completed : Number.NaN;
  return {
    ...measurement,
    cpuMicrosecondsPerRequest: perRequest(proxyBefore, proxyAfter),
    simulatorCpuMicrosecondsPerRequest: perRequest(simulatorBefore, simulatorAfter),
    otherLoadCores,
  };
}

/**
 * Alternates 1 s closed-loop slices of a `subjects` process and a `baselines` process; one ratio
 * per pair, and the ratio of the two processes' CPU per request. Which processes pair `k` measures
 * is `processesOfPair`'s rotation: any S × B pairs in a row have every process of one side meet
 * every process of the other. Every slice starts with the
 * benchmark's processes (`quietPids`) idle: a closed loop that ends leaves up to `concurrency`
 * requests in flight, and a slow target (Portkey's p99 is over a second under this load) would
 * otherwise still be working them off, and collecting their garbage, during the other target's
 * slice.
 */
export async function pairedRatio(input: {
  subjects: readonly Target[];
  baselines: readonly Target[];
  stream: boolean;
  options: Pick<OverheadOptions, 'concurrency' | 'pairs'>;
  quietPids: readonly number[];
}): Promise<PairedRatio> {
  const { subjects, baselines, stream, options } = input;
  const slice = async (target: Target) => {
    await waitForQuiet(input.quietPids, { maxMs: 5_000 });
    const before = target.server ? sampleProcess(target.server.pid)?.cpuMs : undefined;
    const result = await closedLoop({ request: requestFor(target, stream), connections: options.concurrency, durationSeconds: 1 });
    const after = target.server ? sampleProcess(target.server.pid)?.cpuMs : undefined;
    const cpuPerRequest = before !== undefined && after !== undefined && result.completed > 0 ? ((after - before) * 1_000) / result.completed : Number.NaN;
    return { requestsPerSecond: result.requestsPerSecond, cpuPerRequest };
  };
  const ratios: number[] = [];
  const cpuRatios: number[] = [];
  const processPairs: Array<readonly [number, number]> = [];
  for (let pair = 0; pair < options.pairs; pair += 1) {
    const [subjectIndex, baselineIndex] = processesOfPair(pair, subjects.length, baselines.length);
    const subject = subjects[subjectIndex]!;
    const baseline = baselines[baselineIndex]!;
    const { subject: mine, baseline: theirs } = await alternatingPair(pair, () => slice(subject), () => slice(baseline));
    ratios.push(mine.requestsPerSecond / theirs.requestsPerSecond);
    cpuRatios.push(mine.cpuPerRequest / theirs.cpuPerRequest);
    processPairs.push([subjectIndex, baselineIndex]);
  }
  const several = subjects.length > 1 || baselines.length > 1;
  return {
    subject: subjects[0]!.id,
    baseline: baselines[0]!.id,
    stream,
    ratios,
    ...(cpuRatios.every(Number.isFinite) ? { cpuRatios } : {}),
    ...quartiles(ratios),
    ...(several ? { processPairs, subjectProcesses: subjects.length, baselineProcesses: baselines.length } : {}),
  };
}

/** Open-loop slices per pair side for the paired tails: at 500 req/s, 1 000 requests a slice. */
export const TAIL_SLICE_SECONDS = 2;

/**
 * The options of the commands that take open-loop slices as the paired tails do
 * (bench/tail-trace.ts, bench/host-bursts.ts): `--slices N`, `--rate R` and `--json` (non-streaming).
 */
export function sliceOptions(values: { slices: string; rate: string; json: boolean }): { slices: number; rate: number; stream: boolean } {
  const slices = Number(values.slices);
  const rate = Number(values.rate);
  if (!Number.isInteger(slices) || slices < 1) throw new Error(`--slices: expected a whole number of at least 1, got ${values.slices}`);
  if (!Number.isFinite(rate) || rate <= 0) throw new Error(`--rate: expected a positive number, got ${values.rate}`);
  return { slices, rate, stream: !values.json };
}

/**
 * One unmeasured open-loop slice (`TAIL_SLICE_SECONDS` at `ratePerSecond`, through a pool of its
 * own) on a target that has so far served closed loops, before its open-loop slices are measured.
 * An open loop opens connections as its requests need them and lets them idle between requests,
 * paths of Node's HTTP server and timers that 50 long-lived, always-busy connections never take:
 * in the first open-loop slice after 8 s of closed-loop warm-up, V8 optimized 64 of Seed's and
 * Node's functions again and threw away the code of 7 (its assumptions about `Timeout` objects
 * broken by the new connections), against 27 and none after this slice (docs/benchmark-log.md,
 * 2026-12-05 (16:14–)). Without it, the first measured slice of a side carried that, on a
 * congested host a stall of up to ~290 ms.
 */
export async function warmUpOpenLoop(target: Pick<Target, 'origin' | 'headers'>, stream: boolean, ratePerSecond: number): Promise<void> {
  await openLoop({ request: requestFor(target, stream), ratePerSecond, count: Math.round(ratePerSecond * TAIL_SLICE_SECONDS) });
}

/**
 * `pairs` pairs of open-loop slices (`TAIL_SLICE_SECONDS` at the phase rate) of `subject` and
 * `baseline`, who goes first alternating, each slice starting with the benchmark's processes idle,
 * after one unmeasured open-loop slice of each (`warmUpOpenLoop`).
 * Every request's latency is kept, so the report can pool them per side (a p99 over
 * `pairs` × 1 000 requests, drift shared) and show each pair's own difference beside it.
 */
async function pairedTail(input: {
  subject: Target;
  baseline: Target;
  stream: boolean;
  options: OverheadOptions;
  quietPids: readonly number[];
  /** Record every CPU with `perf sched` over the slices and attribute the host's bursts (`schedRecordingUnavailable` said it can). */
  recordHost: boolean;
  /** The layout the processes were pinned to for these slices, to record with them. */
  pinned?: PinLayout;
}): Promise<PairedTail> {
  const { subject, baseline, stream, options } = input;
  for (const target of [subject, baseline]) {
    await waitForQuiet(input.quietPids, { maxMs: 5_000 });
    await warmUpOpenLoop(target, stream, options.ratePerSecond);
  }
  const recording = input.recordHost ? await startSchedRecording(join(options.workDirectory, 'paired-tail-sched.data')) : undefined;
  let measured: PairedOpenLoop;
  try {
    measured = await pairedOpenLoop({
      subject: requestFor(subject, stream),
      baseline: requestFor(baseline, stream),
      ratePerSecond: options.ratePerSecond,
      sliceSeconds: TAIL_SLICE_SECONDS,
      pairs: options.pairs,
      beforeSlice: () => waitForQuiet(input.quietPids, { maxMs: 5_000 }),
      keepSpans: recording !== undefined,
    });
  } catch (error) {
    await recording?.stop(() => false).catch(() => undefined);
    throw error;
  }
  const { subjectLatencies, baselineLatencies, addedP99PerPair, failures, clientGc, spans } = measured;
  const hostBursts = recording && spans ? attributeBursts(await recording.stop(outside(benchmarkProcesses())), spans) : undefined;
  return {
    subject: subject.id,
    baseline: baseline.id,
    stream,
    ratePerSecond: options.ratePerSecond,
    sliceSeconds: TAIL_SLICE_SECONDS,
    pairs: options.pairs,
    failures,
    subjectP50Ms: percentile(subjectLatencies, 0.5),
    subjectP99Ms: percentile(subjectLatencies, 0.99),
    baselineP50Ms: percentile(baselineLatencies, 0.5),
    baselineP99Ms: percentile(baselineLatencies, 0.99),
    addedP99PerPair,
    clientGc,
    openLoopWarmUp: true,
    ...(hostBursts ? { hostBursts } : {}),
    ...(input.pinned ? { pinned: input.pinned } : {}),
  };
}

/** The median ratio of the pairs each process of one side took part in, in process order. */
export function perProcessMedians(paired: PairedRatio, side: 0 | 1): number[] {
  return mediansByProcess(paired.ratios, paired.processPairs, side, (side === 0 ? paired.subjectProcesses : paired.baselineProcesses) ?? 1);
}

/**
 * `count − 1` more processes like `target`: Seed with its own work directory and key, or the
 * minimal undici proxy. They are warmed up with the first, so every process of a side has the
 * same history when the pairs begin.
 */
async function moreProcesses(input: {
  target: Target;
  count: number;
  simulatorUrl: string;
  workDirectory: string;
  seedKeepWarmBytesPerSecond?: number;
}): Promise<Target[]> {
  const extra: Target[] = [];
  try {
    for (let index = 1; index < input.count; index += 1) {
      const workDirectory = join(input.workDirectory, `${input.target.id}-${index + 1}`);
      mkdirSync(workDirectory, { recursive: true });
      const started = await startTargets({
        simulatorUrl: input.simulatorUrl,
        workDirectory,
        only: [input.target.id],
        seedKeepWarmBytesPerSecond: input.seedKeepWarmBytesPerSecond,
      });
      const target = started.targets[0];
      if (target === undefined) throw new Error(`process ${index + 1} of ${input.target.id} did not start: ${started.skipped[0]?.reason ?? 'no reason given'}`);
      extra.push(target);
    }
  } catch (error) {
    for (const target of extra) await target.server?.stop();
    throw error;
  }
  return extra;
}

function summarize(input: {
  measurements: Map<TargetId, Record<PhaseName, PhaseMeasurement[]>>;
  target: Target;
  phase: PhaseName;
}): PhaseSummary {
  const own = input.measurements.get(input.target.id)![input.phase];
  const other = (id: TargetId) => input.measurements.get(id)?.[input.phase];
  const perRound = (baseline: PhaseMeasurement[] | undefined, combine: (mine: PhaseMeasurement, theirs: PhaseMeasurement) => number) =>
    baseline ? median(own.map((mine, round) => (baseline[round] ? combine(mine, baseline[round]) : Number.NaN))) : Number.NaN;
  return {
    rounds: own,
    requestsPerSecond: median(own.map((each) => each.requestsPerSecond)),
    latencyP50Ms: median(own.map((each) => each.latencyP50Ms)),
    latencyP99Ms: median(own.map((each) => each.latencyP99Ms)),
    firstByteP50Ms: median(own.map((each) => each.firstByteP50Ms)),
    cpuMicrosecondsPerRequest: median(own.map((each) => each.cpuMicrosecondsPerRequest)),
    sendLagP99Ms: median(own.map((each) => each.sendLagP99Ms)),
    failures: own.reduce((sum, each) => sum + each.failures, 0),
    addedP50Ms: perRound(other('direct'), (mine, theirs) => mine.latencyP50Ms - theirs.latencyP50Ms),
    addedP99Ms: perRound(other('direct'), (mine, theirs) => mine.latencyP99Ms - theirs.latencyP99Ms),
    addedFirstByteP50Ms: perRound(other('direct'), (mine, theirs) => mine.firstByteP50Ms - theirs.firstByteP50Ms),
    ratioToUndici: perRound(other('undici'), (mine, theirs) => mine.requestsPerSecond / theirs.requestsPerSecond),
    ratioToPortkey: perRound(other('portkey'), (mine, theirs) => mine.requestsPerSecond / theirs.requestsPerSecond),
  };
}

/** The request and token quota the simulator reports on an answer, or undefined when it reports none. */
async function reportedQuota(simulatorUrl: string): Promise<{ requests: string; tokens: string } | undefined> {
  const request = requestFor({ origin: simulatorUrl, headers: { ...SIMULATOR_HEADERS } }, false);
  const response = await fetch(`${request.origin}${request.path}`, { method: 'POST', headers: request.headers, body: request.body });
  await response.arrayBuffer();
  const requests = response.headers.get('x-ratelimit-limit-requests');
  const tokens = response.headers.get('x-ratelimit-limit-tokens');
  return requests !== null && tokens !== null ? { requests, tokens } : undefined;
}

export async function runOverhead(options: OverheadOptions): Promise<OverheadResult> {
  const { log } = options;
  const simulator = await startSimulator();
  const upstreamQuota = await reportedQuota(simulator.url);
  const started = await startTargets({
    simulatorUrl: simulator.url,
    workDirectory: options.workDirectory,
    only: options.only,
    seedKeepWarmBytesPerSecond: options.seedKeepWarmBytesPerSecond,
  });
  const skipped = [...started.skipped];
  const targets: Target[] = [];
  try {
    for (const target of started.targets) {
      const problem =
        (await checkTarget(requestFor(target, false), '"chat.completion"')) ?? (await checkTarget(requestFor(target, true), '[DONE]'));
      if (problem) {
        skipped.push({ id: target.id, reason: `smoke request failed: ${problem}` });
        await target.server?.stop();
      } else targets.push(target);
    }
    for (const each of skipped) log(`skipping ${each.id}: ${each.reason}`);

    // Seed's and the undici proxy's further processes exist only for the paired ratios.
    const seed = targets.find((target) => target.id === 'seed');
    const undici = targets.find((target) => target.id === 'undici');
    const portkey = targets.find((target) => target.id === 'portkey');
    const buffered = targets.find((target) => target.id === 'buffered');
    const rotating = options.pairs > 0 && options.processes > 1;
    const seeds = seed ? [seed] : [];
    const proxies = undici ? [undici] : [];
    const paired: PairedRatio[] = [];
    const pairedTails: PairedTail[] = [];
    let hostBurstsSkipped: string | undefined;
    let pinnedTailsSkipped: string | undefined;
    try {
      if (rotating && seed) seeds.push(...(await moreProcesses({ target: seed, count: options.processes, simulatorUrl: simulator.url, workDirectory: options.workDirectory, seedKeepWarmBytesPerSecond: options.seedKeepWarmBytesPerSecond })));
      if (rotating && undici) proxies.push(...(await moreProcesses({ target: undici, count: options.processes, simulatorUrl: simulator.url, workDirectory: options.workDirectory })));
      const extras = [...seeds.slice(1), ...proxies.slice(1)];

      // Long enough for every Node target to reach its steady state: the minimal undici proxy's CPU
      // per request kept falling for ~15 s of load (~170 → ~120 µs), so 1 s warm-ups and short runs
      // compared a warm Seed with a half-warm proxy and flattered Seed by up to a third. Every
      // process gets the same warm-up, and the pairs come before the rounds: a process that has
      // served more is warmer, and the pairs compare processes with the same history.
      log(
        `warm-up (${WARM_UP_SECONDS} s per mode): ${targets.map((target) => target.id).join(', ')}` +
          (extras.length > 0 ? `, and ${extras.length} more processes of ${[...new Set(extras.map((target) => target.id))].join(' and ')}` : ''),
      );
      for (const target of [...targets, ...extras]) {
        for (const stream of [false, true]) await warmUp(target, stream, options.concurrency);
      }

      const spreadText = (spread: Quartiles) => `${spread.median.toFixed(2)}× (${spread.lowerQuartile.toFixed(2)}–${spread.upperQuartile.toFixed(2)})`;
      const logPaired = (result: PairedRatio) => {
        const byProcess =
          result.processPairs === undefined
            ? ''
            : `; by ${result.subject} process ${perProcessMedians(result, 0).map((value) => value.toFixed(2)).join(' ')}, ` +
              `by ${result.baseline} process ${perProcessMedians(result, 1).map((value) => value.toFixed(2)).join(' ')}`;
        log(
          `paired ${result.subject}/${result.baseline} ${result.stream ? 'stream' : 'non-stream'}: median ${result.median.toFixed(2)}× ` +
            `(quartiles ${result.lowerQuartile.toFixed(2)}–${result.upperQuartile.toFixed(2)}, ${result.ratios.length} pairs of 1 s slices${byProcess})` +
            (result.cpuRatios ? `; CPU per request ${spreadText(quartiles(result.cpuRatios))}` : ''),
        );
      };
      if (options.pairs > 0) {
        const quietPids = [simulator.pid, ...[...targets, ...extras].flatMap((each) => (each.server ? [each.server.pid] : []))];
        const pairings: Array<[readonly Target[], readonly Target[]]> = [];
        if (seeds.length > 0 && undici) pairings.push([seeds, proxies]);
        if (seeds.length > 0 && buffered) pairings.push([seeds, [buffered]]);
        if (seeds.length > 0 && portkey) pairings.push([seeds, [portkey]]);
        // The same measurement for the minimal undici proxy against Portkey: how far above Portkey
        // a Node proxy that does nothing gets on this machine in this run, the bound for Seed's ratio.
        if (proxies.length > 0 && portkey) pairings.push([proxies, [portkey]]);
        for (const [subjects, baselines] of pairings) {
          for (const stream of [false, true]) {
            await waitForQuiet(quietPids);
            const result = await pairedRatio({ subjects, baselines, stream, options, quietPids });
            paired.push(result);
            logPaired(result);
          }
        }
        // The added-latency target, paired the same way against the simulator itself; the
        // undici proxy's shows what a proxy that only forwards adds here.
        const direct = targets.find((target) => target.id === 'direct');
        // Which of the slowest requests a burst from outside the benchmark overlapped: on the
        // 2-core VM of 2026-12-05 the kernel's DAMON thread took a core for 5–11 ms every ~512 ms
        // (docs/benchmark-log.md, 2026-12-05 (16:14–)).
        hostBurstsSkipped = direct && (seed || undici) ? schedRecordingUnavailable(options.workDirectory) : undefined;
        if (hostBurstsSkipped) log(`paired tails: the host's bursts are not attributed: ${hostBurstsSkipped}`);
        const tails = async (pinned?: PinLayout) => {
          for (const subject of [seed, undici]) {
            if (subject === undefined || direct === undefined) continue;
            const measure = async () => {
              for (const stream of [false, true]) {
                await waitForQuiet(quietPids);
                const tail = await pairedTail({ subject, baseline: direct, stream, options, quietPids, recordHost: hostBurstsSkipped === undefined, ...(pinned ? { pinned } : {}) });
                pairedTails.push(tail);
                log(
                  `paired tail ${tail.subject}/${tail.baseline} ${stream ? 'stream' : 'non-stream'} at ${tail.ratePerSecond} req/s${pinned ? `, pinned (the load generator and the simulator on CPU ${pinned.world}, ${tail.subject} on CPU ${pinned.gateway})` : ''}: ` +
                    `p99 ${tail.subjectP99Ms.toFixed(2)} against ${tail.baselineP99Ms.toFixed(2)} ms pooled over ${tail.pairs} pairs ` +
                    `(added ${(tail.subjectP99Ms - tail.baselineP99Ms).toFixed(2)} ms; per pair median ${median(tail.addedP99PerPair).toFixed(2)}), failures ${tail.failures}; ` +
                    `load generator's GC: ${clientGcText(tail.clientGc!.subject)} in ${tail.subject}'s slices, ${clientGcText(tail.clientGc!.baseline)} in ${tail.baseline}'s` +
                    (tail.hostBursts ? `; ${hostBurstsText(tail.hostBursts)}` : ''),
                );
              }
            };
            if (pinned === undefined) await measure();
            else if (subject.server !== undefined) {
              // This process is the load generator; the subject's every thread goes to the gateway's CPUs.
              await whilePinned(
                [
                  { pid: process.pid, cpus: pinned.world },
                  { pid: simulator.pid, cpus: pinned.world },
                  { pid: subject.server.pid, cpus: pinned.gateway },
                ],
                measure,
              );
            }
          }
        };
        await tails();
        if (options.pinnedTails && direct && (seed || undici)) {
          const layout = machineLayout();
          if ('unavailable' in layout) {
            pinnedTailsSkipped = layout.unavailable;
            log(`paired tails: not measured pinned: ${pinnedTailsSkipped}`);
          } else await tails(layout);
        }
      }
    } finally {
      for (const extra of [...seeds.slice(1), ...proxies.slice(1)]) await extra.server?.stop();
    }

    const measurements = new Map<TargetId, Record<PhaseName, PhaseMeasurement[]>>(
      targets.map((target) => [target.id, { closed: [], 'closed-stream': [], open: [], 'open-stream': [] }]),
    );
    for (let round = 0; round < options.rounds; round += 1) {
      const order = targets.map((_, index) => targets[(index + round) % targets.length]!);
      for (const target of order) {
        // Every process of the benchmark idle first: a target still working through the last
        // one's backlog would be measured as the previous target's load.
        const settled = await waitForQuiet([simulator.pid, ...targets.flatMap((each) => (each.server ? [each.server.pid] : []))]);
        if (!settled.quiet) log(`round ${round + 1}: the servers were still busy after ${(settled.waitedMs / 1000).toFixed(0)} s; measuring ${target.id} anyway`);
        for (const phase of PHASES) {
          const measurement = await measurePhase({ target, simulatorPid: simulator.pid, phase, options });
          measurements.get(target.id)![phase][round] = measurement;
          log(
            `round ${round + 1}/${options.rounds} ${target.id.padEnd(7)} ${phase.padEnd(13)} ` +
              `${measurement.requestsPerSecond.toFixed(0).padStart(6)} req/s  p50 ${measurement.latencyP50Ms.toFixed(2)} ms  ` +
              `p99 ${measurement.latencyP99Ms.toFixed(2)} ms  cpu ${measurement.cpuMicrosecondsPerRequest.toFixed(0)} µs/req  failures ${measurement.failures}  other load ${measurement.otherLoadCores.toFixed(2)} cores`,
          );
        }
      }
    }

    const summaries: TargetSummary[] = targets.map((target) => {
      const sample = target.server ? sampleProcess(target.server.pid) : undefined;
      return {
        id: target.id,
        label: target.label,
        note: target.note,
        pid: target.server?.pid,
        peakRssMiB: sample ? sample.peakRssKiB / 1024 : Number.NaN,
        phases: Object.fromEntries(PHASES.map((phase) => [phase, summarize({ measurements, target, phase })])) as Record<PhaseName, PhaseSummary>,
      };
    });
    const simulatorSample = sampleProcess(simulator.pid);
    const { log: _log, workDirectory: _workDirectory, ...reported } = options;
    return {
      options: reported,
      targets: summaries,
      paired,
      ...(pairedTails.length > 0 ? { pairedTails } : {}),
      ...(pinnedTailsSkipped ? { pinnedTailsSkipped } : {}),
      skipped,
      simulatorPeakRssMiB: simulatorSample ? simulatorSample.peakRssKiB / 1024 : Number.NaN,
      ...(upstreamQuota ? { upstreamQuota } : {}),
      warmUpSeconds: WARM_UP_SECONDS,
      ...(hostBurstsSkipped ? { hostBurstsSkipped } : {}),
    };
  } finally {
    for (const target of started.targets) await target.server?.stop();
    await simulator.stop();
  }
}
