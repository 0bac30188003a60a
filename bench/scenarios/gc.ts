/**
 * Scenario 5 — garbage collection and event-loop gaps at a fixed open-loop rate: where the tail
 * latency at 500 req/s comes from.
 *
 * The simulator, the minimal undici proxy and Seed each run with bench/servers/gc-observer.mjs
 * preloaded; each target (direct to the simulator first, then the two proxies) takes the same
 * open-loop load as section 1 (non-streaming, then streaming). The observers report every GC
 * pause and every event-loop gap over 2 ms in the measured phase, and for each gap how much of
 * it the main thread spent on a CPU and how much runnable but waiting for one (the kernel's
 * per-thread scheduler counters). The client keeps every request's timing, so the slowest 1% can
 * be lined up with the gaps: sent late by the client itself, overlapping a gap of the proxy, or
 * of the simulator.
 *
 * The observers' 1 ms timers cost each process ~1 000 wake-ups a second, so this scenario's
 * latencies are not section 1's; it explains them, it does not replace them.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type ServerProcess } from '../lib/children.ts';
import { openLoop, type OpenLoopSample } from '../lib/load.ts';
import { GcTraceLog, medianPromotedBytes } from '../lib/gc-trace.ts';
import { median } from '../lib/stats.ts';
import { startSeedServer, startSimulator, startUndiciProxy } from '../lib/targets.ts';
import { requestFor } from './overhead.ts';

/** Preloaded (`--import`) into a process to observe its GC pauses and event-loop gaps; SEED_BENCH_GC_OUT names its output. */
export const GC_OBSERVER = resolve(import.meta.dirname, '..', 'servers', 'gc-observer.mjs');

/** A request later than this at its send is counted as sent late by the client. */
const LATE_SEND_MS = 1;

export type GcTarget = 'direct' | 'undici' | 'seed';

/** What one observed process did during a phase. */
export interface ProcessObservation {
  /** Scavenges (young-generation collections) per 1 000 requests. */
  scavengesPerThousand: number;
  scavengeMedianMs: number;
  scavengeMaxMs: number;
  /** Mark-compact (major) collections and incremental marking steps in the phase. */
  majorCollections: number;
  /** Share of the phase's wall time spent in GC pauses of any kind, in percent. */
  pausedPercent: number;
  /** Event-loop gaps over 2 ms: how many, and their summed length. */
  gaps: number;
  gapMs: number;
  /** Of the gaps' length: the main thread on a CPU, runnable but waiting for a CPU, neither. NaN without scheduler statistics. */
  gapOnCpuMs: number;
  gapWaitingMs: number;
  gapOtherMs: number;
  /** GC pause time that fell inside the gaps. */
  gapGcMs: number;
  /**
   * Median KiB a scavenge promoted to the old generation (`--trace-gc-nvp`): what lived past a
   * scavenge, which the scavenge copies and a later major GC frees. Absent in older runs.
   */
  promotedKiBMedian?: number;
}

/** The slowest 1% of a phase's requests, and what they overlapped. */
export interface SlowestRequests {
  count: number;
  /** Sent more than 1 ms after their scheduled time: the client itself was not running. */
  sentLate: number;
  /** In flight during an event-loop gap of the proxy (none for direct). */
  overlapProxyGap: number;
  /** In flight during an event-loop gap of the simulator. */
  overlapSimulatorGap: number;
  /** None of the three. */
  unexplained: number;
}

export interface GcPhase {
  target: GcTarget;
  stream: boolean;
  requests: number;
  latencyP99Ms: number;
  /** The proxy's process (Seed or the undici proxy); undefined for direct. */
  proxy: ProcessObservation | undefined;
  simulator: ProcessObservation;
  slowest: SlowestRequests;
}

export interface Observed {
  timeOrigin: number;
  seconds: number;
  pauses: Array<{ kind: string; at: number; ms: number }>;
  gaps: Array<{ at: number; ms: number; onCpuMs: number | null; waitingMs: number | null }>;
}

/** A gap as a wall-clock interval. */
interface Interval {
  from: number;
  to: number;
}

/** What the observer wrote to `file`, once it has (it writes on its second SIGWINCH). */
export async function readObserved(file: string, name: string): Promise<Observed> {
  for (let waited = 0; !existsSync(file); waited += 50) {
    if (waited > 5_000) throw new Error(`${name}: the GC observer wrote nothing to ${file}`);
    await sleep(50);
  }
  return JSON.parse(readFileSync(file, 'utf8')) as Observed;
}

export function summarizeObserved(observed: Observed, requests: number): ProcessObservation {
  const scavenges = observed.pauses.filter((pause) => pause.kind === 'minor').map((pause) => pause.ms);
  const sum = (values: number[]) => values.reduce((total, value) => total + value, 0);
  const withCounters = observed.gaps.every((gap) => gap.onCpuMs !== null && gap.waitingMs !== null);
  const gapMs = sum(observed.gaps.map((gap) => gap.ms));
  const onCpu = withCounters ? sum(observed.gaps.map((gap) => gap.onCpuMs ?? 0)) : Number.NaN;
  const waiting = withCounters ? sum(observed.gaps.map((gap) => gap.waitingMs ?? 0)) : Number.NaN;
  const gapGcMs = sum(observed.gaps.map((gap) => gcInside(observed, gap)));
  return {
    scavengesPerThousand: requests > 0 ? (1_000 * scavenges.length) / requests : Number.NaN,
    scavengeMedianMs: median(scavenges),
    scavengeMaxMs: scavenges.length ? Math.max(...scavenges) : Number.NaN,
    majorCollections: observed.pauses.filter((pause) => pause.kind === 'major' || pause.kind === 'incremental').length,
    pausedPercent: (100 * sum(observed.pauses.map((pause) => pause.ms))) / 1_000 / observed.seconds,
    gaps: observed.gaps.length,
    gapMs,
    gapOnCpuMs: onCpu,
    gapWaitingMs: waiting,
    // Counters and the timer are read a few µs apart: never report a negative remainder.
    gapOtherMs: withCounters ? Math.max(0, gapMs - onCpu - waiting) : Number.NaN,
    gapGcMs,
  };
}

/** Milliseconds of GC pause inside `gap`: a pause counts for the part of it inside the gap. */
function gcInside(observed: Observed, gap: Observed['gaps'][number]): number {
  let ms = 0;
  for (const pause of observed.pauses) ms += Math.max(0, Math.min(pause.at + pause.ms, gap.at + gap.ms) - Math.max(pause.at, gap.at));
  return ms;
}

/** A gap on the wall clock (ms since the epoch), with its split and the GC pauses inside it. */
export interface WallGap extends Interval {
  ms: number;
  onCpuMs: number | null;
  waitingMs: number | null;
  gcMs: number;
}

/** `observed`'s gaps on the wall clock, the clock the load generator's samples are on. */
export function wallGaps(observed: Observed): WallGap[] {
  return observed.gaps.map((gap) => ({
    from: observed.timeOrigin + gap.at,
    to: observed.timeOrigin + gap.at + gap.ms,
    ms: gap.ms,
    onCpuMs: gap.onCpuMs,
    waitingMs: gap.waitingMs,
    gcMs: gcInside(observed, gap),
  }));
}

/** The gaps a request scheduled at `scheduledAt` and answered `latencyMs` later was in flight for. */
export function gapsDuring<Gap extends Interval>(gaps: readonly Gap[], request: { scheduledAt: number; latencyMs: number }): Gap[] {
  return gaps.filter((gap) => gap.from < request.scheduledAt + request.latencyMs && gap.to > request.scheduledAt);
}

/** What a set of requests was in flight for in one process: its distinct gaps, summed. */
export interface GapsDuring {
  /** Requests in flight during at least one of the gaps. */
  requests: number;
  /** The distinct gaps any of them was in flight for, and their length in all. */
  gaps: number;
  ms: number;
  /** The split of those gaps (NaN where the process had no scheduler counters). */
  onCpuMs: number;
  gcMs: number;
  waitingMs: number;
  otherMs: number;
}

export function summarizeGapsDuring(requests: ReadonlyArray<{ scheduledAt: number; latencyMs: number }>, gaps: readonly WallGap[]): GapsDuring {
  const seen = new Set<WallGap>();
  let inGaps = 0;
  for (const request of requests) {
    const during = gapsDuring(gaps, request);
    if (during.length > 0) inGaps += 1;
    for (const gap of during) seen.add(gap);
  }
  const list = [...seen];
  const sum = (values: number[]) => values.reduce((total, value) => total + value, 0);
  const withCounters = list.every((gap) => gap.onCpuMs !== null && gap.waitingMs !== null);
  const ms = sum(list.map((gap) => gap.ms));
  const onCpuMs = withCounters ? sum(list.map((gap) => gap.onCpuMs ?? 0)) : Number.NaN;
  const waitingMs = withCounters ? sum(list.map((gap) => gap.waitingMs ?? 0)) : Number.NaN;
  return {
    requests: inGaps,
    gaps: list.length,
    ms,
    onCpuMs,
    gcMs: sum(list.map((gap) => gap.gcMs)),
    waitingMs,
    otherMs: withCounters ? Math.max(0, ms - onCpuMs - waitingMs) : Number.NaN,
  };
}

/** Lines the slowest 1% of `samples` up with the processes' gaps and the client's own lateness. */
export function attributeSlowest(input: { samples: readonly OpenLoopSample[]; proxyGaps: readonly Interval[]; simulatorGaps: readonly Interval[] }): SlowestRequests {
  // Exactly the slowest 1% (at least one), whatever the ties.
  const slowest = [...input.samples].sort((left, right) => right.latencyMs - left.latencyMs).slice(0, Math.max(1, Math.ceil(input.samples.length / 100)));
  const overlaps = (sample: OpenLoopSample, gaps: readonly Interval[]) => gapsDuring(gaps, sample).length > 0;
  let sentLate = 0;
  let overlapProxyGap = 0;
  let overlapSimulatorGap = 0;
  let unexplained = 0;
  for (const sample of slowest) {
    const late = sample.sendLagMs > LATE_SEND_MS;
    const proxy = overlaps(sample, input.proxyGaps);
    const simulator = overlaps(sample, input.simulatorGaps);
    if (late) sentLate += 1;
    if (proxy) overlapProxyGap += 1;
    if (simulator) overlapSimulatorGap += 1;
    if (!late && !proxy && !simulator) unexplained += 1;
  }
  return { count: slowest.length, sentLate, overlapProxyGap, overlapSimulatorGap, unexplained };
}

export async function runGc(input: { ratePerSecond: number; durationSeconds: number; workDirectory: string; log: (line: string) => void }): Promise<GcPhase[]> {
  const files = {
    simulator: join(input.workDirectory, 'gc-simulator.json'),
    seed: join(input.workDirectory, 'gc-seed.json'),
    undici: join(input.workDirectory, 'gc-undici.json'),
  };
  // Each process also prints every collection (`--trace-gc-nvp`) into `<file>.nvp.log`.
  const observed = (file: string) => ({
    nodeArguments: ['--import', GC_OBSERVER, '--trace-gc-nvp'],
    env: { SEED_BENCH_GC_OUT: file },
    stdoutFile: `${file}.nvp.log`,
  });
  const traces = new Map<string, GcTraceLog>(Object.values(files).map((file) => [file, new GcTraceLog(`${file}.nvp.log`)]));
  const simulator = await startSimulator({ name: 'simulator (gc observed)', ...observed(files.simulator) });
  const targets: Array<{ id: GcTarget; origin: string; server: ServerProcess | undefined; headers: Record<string, string>; file?: string }> = [];
  const json = { 'content-type': 'application/json' };
  try {
    targets.push({ id: 'direct', origin: simulator.url, server: undefined, headers: json });
    const undici = await startUndiciProxy({ simulatorUrl: simulator.url, name: 'undici proxy (gc observed)', ...observed(files.undici) });
    targets.push({ id: 'undici', origin: undici.url, server: undici, headers: json, file: files.undici });
    const seed = await startSeedServer({ simulatorUrl: simulator.url, workDirectory: input.workDirectory, name: 'seed (gc observed)', ...observed(files.seed) });
    targets.push({ id: 'seed', origin: seed.url, server: seed, headers: seed.headers, file: files.seed });

    const count = Math.round(input.ratePerSecond * input.durationSeconds);
    const phases: GcPhase[] = [];
    for (const stream of [false, true]) {
      for (const target of targets) {
        const request = requestFor({ origin: target.origin, headers: target.headers }, stream);
        await openLoop({ request, ratePerSecond: input.ratePerSecond, count: Math.min(count, 1_000) });
        const watched = [
          { name: simulator.name, pid: simulator.pid, file: files.simulator },
          ...(target.server && target.file ? [{ name: target.server.name, pid: target.server.pid, file: target.file }] : []),
        ];
        for (const each of watched) rmSync(each.file, { force: true });
        for (const each of watched) traces.get(each.file)?.mark();
        for (const each of watched) process.kill(each.pid, 'SIGWINCH');
        const result = await openLoop({ request, ratePerSecond: input.ratePerSecond, count, keepSamples: true });
        for (const each of watched) process.kill(each.pid, 'SIGWINCH');
        const simulatorObserved = await readObserved(files.simulator, simulator.name);
        const proxyObserved = watched[1] ? await readObserved(watched[1].file, watched[1].name) : undefined;
        const promoted = (file: string) => {
          const kib = medianPromotedBytes(traces.get(file)?.since() ?? []) / 1024;
          return Number.isFinite(kib) ? { promotedKiBMedian: kib } : {};
        };
        const phase: GcPhase = {
          target: target.id,
          stream,
          requests: result.completed,
          latencyP99Ms: result.latencyP99Ms,
          proxy: proxyObserved && watched[1] ? { ...summarizeObserved(proxyObserved, result.completed), ...promoted(watched[1].file) } : undefined,
          simulator: { ...summarizeObserved(simulatorObserved, result.completed), ...promoted(files.simulator) },
          slowest: attributeSlowest({
            samples: result.samples ?? [],
            proxyGaps: proxyObserved ? wallGaps(proxyObserved) : [],
            simulatorGaps: wallGaps(simulatorObserved),
          }),
        };
        phases.push(phase);
        const observedProcess = phase.proxy ?? phase.simulator;
        input.log(
          `gc ${target.id.padEnd(6)} ${stream ? 'stream    ' : 'non-stream'} p99 ${phase.latencyP99Ms.toFixed(2)} ms; ` +
            `${observedProcess.scavengesPerThousand.toFixed(1)} scavenges/1000 req (median ${observedProcess.scavengeMedianMs.toFixed(2)} ms, ` +
            `${observedProcess.promotedKiBMedian?.toFixed(0) ?? '?'} KiB promoted), ` +
            `gaps ${observedProcess.gaps} (${observedProcess.gapMs.toFixed(0)} ms: on CPU ${observedProcess.gapOnCpuMs.toFixed(0)}, waiting ${observedProcess.gapWaitingMs.toFixed(0)}); ` +
            `slowest ${phase.slowest.count}: sent late ${phase.slowest.sentLate}, proxy gap ${phase.slowest.overlapProxyGap}, simulator gap ${phase.slowest.overlapSimulatorGap}, none ${phase.slowest.unexplained}`,
        );
      }
    }
    return phases;
  } finally {
    for (const { server } of targets) await server?.stop();
    await simulator.stop();
  }
}
