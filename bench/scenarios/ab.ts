/**
 * Scenario "ab" — this checkout's Seed against another build of Seed (a git ref), to measure a
 * change rather than a comparison with other proxies. The ref is checked out into a temporary
 * git worktree (sharing this checkout's node_modules) and built; both Seeds run the generated
 * benchmark config in front of one simulator, each with its own ledger file, and alternate in
 * 1 s closed-loop slices (who goes first alternating), non-streaming and streaming. Each pair of
 * slices gives a throughput ratio and a CPU-per-request ratio (this ÷ baseline); the medians and
 * quartiles are reported. Then, per mode, they alternate in open-loop slices at the p99 target's
 * rate, and each build's requests are pooled into one p50 and p99. On a shared, noisy machine
 * these paired figures are what can tell a 5% change from drift; absolute figures from
 * different runs cannot. With `baselineSettings` (`--baseline HEAD --baseline-set
 * ledger.journal=false`) the two sides differ by configuration instead of, or as well as, code.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type ServerProcess } from '../lib/children.ts';
import { alternatingPair, listOf, mediansByProcess, pairedOpenLoop, processesOfPair } from '../lib/alternate.ts';
import { closedLoop } from '../lib/load.ts';
import { sampleProcess, waitForQuiet } from '../lib/proc.ts';
import { median, percentile, quartiles, type Quartiles } from '../lib/stats.ts';
import { settingsText, startSeedServer, startSimulator, type ConfigSetting, type MeasuredServer, type SeedServer } from '../lib/targets.ts';
import { requestFor, TAIL_SLICE_SECONDS, warmUp, warmUpOpenLoop } from './overhead.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');

export interface AbOptions {
  /** A git ref (commit, branch, tag) of the baseline build. */
  baseline: string;
  pairs: number;
  /** Processes of each build the pairs rotate over (`processesOfPair`): two processes of one build differ by 5–15%. */
  processes: number;
  concurrency: number;
  /** Open-loop rate of the paired tails (req/s): the p99 target's load. */
  ratePerSecond: number;
  workDirectory: string;
  /** Settings laid over the baseline's config only: with the baseline ref at HEAD, an A/B of a config change. */
  baselineSettings?: readonly ConfigSetting[];
  /**
   * Settings laid over both sides' configs (`--set`), the baseline's own going over them: an A/B
   * of a change in a configuration the benchmark config does not use (limits in Redis, say).
   */
  sharedSettings?: readonly ConfigSetting[];
  log: (line: string) => void;
}

/** Per-pair values of an A/B, as median and quartiles. */
export type AbRatios = Quartiles;

export interface AbMode {
  stream: boolean;
  /** Requests/s, this ÷ baseline, per pair. */
  throughput: AbRatios;
  /** CPU µs per request, this ÷ baseline, per pair (below 1: this build is cheaper). */
  cpuPerRequest: AbRatios;
  /** Medians of the slices, for orientation only (not comparable between runs). */
  current: SliceMeasurement;
  baselineBuild: SliceMeasurement;
  /** With several processes a side: the median throughput ratio of the pairs each process was in, per side. */
  byProcess?: { current: number[]; baseline: number[] };
  /** Latency at the p99 target's open-loop rate, from alternating slices (absent in older runs). */
  tail?: AbTail;
}

/**
 * The two builds' latency at a fixed open-loop rate: `pairs` pairs of `sliceSeconds` open-loop
 * slices, who goes first alternating, every request of a side pooled (as the overhead scenario's
 * paired tails measure each proxy against the simulator).
 */
export interface AbTail {
  ratePerSecond: number;
  sliceSeconds: number;
  pairs: number;
  failures: number;
  currentP50Ms: number;
  currentP99Ms: number;
  baselineP50Ms: number;
  baselineP99Ms: number;
  /** Per pair, this build's slice p99 − the baseline's (ms). */
  p99DifferencePerPair: AbRatios;
}

export interface AbResult {
  baselineRef: string;
  baselineCommit: string;
  currentCommit: string;
  /** Whether this checkout had uncommitted changes (they are part of "current"). */
  currentDirty: boolean;
  /** The baseline's own settings over the benchmark config (`--baseline-set`), as text; absent when none. */
  baselineSettings?: string;
  /** Both sides' settings over the benchmark config (`--set`), as text; absent when none. */
  sharedSettings?: string;
  pairs: number;
  /** Processes of each build (absent in runs before it: one). */
  processes?: number;
  concurrency: number;
  modes: AbMode[];
}


/** Checks the ref out into `directory` (a detached worktree), links node_modules and builds dist/. */
export function prepareBaseline(ref: string, directory: string, log: (line: string) => void): string {
  const commit = execFileSync('git', ['rev-parse', '--verify', `${ref}^{commit}`], { cwd: ROOT, encoding: 'utf8' }).trim();
  execFileSync('git', ['worktree', 'add', '--detach', '--force', directory, commit], { cwd: ROOT, stdio: 'ignore' });
  symlinkSync(join(ROOT, 'node_modules'), join(directory, 'node_modules'));
  log(`building the baseline ${ref} (${commit.slice(0, 10)}) in ${directory}`);
  const build = spawnSync(process.execPath, [join(directory, 'scripts', 'build.mjs')], { cwd: directory, stdio: 'inherit' });
  if (build.status !== 0) throw new Error(`the baseline ${ref} does not build`);
  return commit;
}

function cpuMs(server: ServerProcess): number {
  const sample = sampleProcess(server.pid);
  if (!sample) throw new Error(`${server.name} has exited:\n${server.stderrTail()}`);
  return sample.cpuMs;
}

/** One slice's measurement, or the medians of several. */
export interface SliceMeasurement {
  requestsPerSecond: number;
  cpuMicrosecondsPerRequest: number;
}

/** What alternating slices of two servers measured, per pair (subject against baseline). */
export interface PairedSlices {
  /** Requests/s, subject ÷ baseline. */
  throughput: AbRatios;
  /** CPU µs per request, subject ÷ baseline. */
  cpuPerRequest: AbRatios;
  /** CPU µs per request, subject − baseline. */
  cpuDifference: AbRatios;
  /** Medians of each side's slices, for orientation only. */
  subject: SliceMeasurement;
  baseline: SliceMeasurement;
  /** With several processes on a side: the median throughput ratio of the pairs each process was in. */
  byProcess?: { subject: number[]; baseline: number[] };
}

/**
 * `pairs` pairs of 1 s closed-loop slices of two warm servers, who goes first alternating (a
 * machine speeding up or slowing down favours neither). Given several processes a side, pair `k`
 * measures `processesOfPair`'s choice, so every process of one side meets every process of the
 * other. Any failed request fails the run: a server that errors is not measured as fast.
 */
export async function pairedSlices(input: {
  subject: MeasuredServer | readonly MeasuredServer[];
  baseline: MeasuredServer | readonly MeasuredServer[];
  stream: boolean;
  pairs: number;
  concurrency: number;
}): Promise<PairedSlices> {
  const slice = async (server: MeasuredServer): Promise<SliceMeasurement> => {
    const before = cpuMs(server);
    const result = await closedLoop({
      request: requestFor({ origin: server.url, headers: server.headers }, input.stream),
      connections: input.concurrency,
      durationSeconds: 1,
    });
    if (result.failures > 0) throw new Error(`${server.name}: ${result.failures} failed requests:\n${server.stderrTail()}`);
    return { requestsPerSecond: result.requestsPerSecond, cpuMicrosecondsPerRequest: ((cpuMs(server) - before) * 1_000) / result.completed };
  };
  const subjects = listOf(input.subject);
  const baselines = listOf(input.baseline);
  const subjectSlices: SliceMeasurement[] = [];
  const baselineSlices: SliceMeasurement[] = [];
  const processPairs: Array<readonly [number, number]> = [];
  for (let pair = 0; pair < input.pairs; pair += 1) {
    const [subjectIndex, baselineIndex] = processesOfPair(pair, subjects.length, baselines.length);
    const measured = await alternatingPair(pair, () => slice(subjects[subjectIndex]!), () => slice(baselines[baselineIndex]!));
    subjectSlices.push(measured.subject);
    baselineSlices.push(measured.baseline);
    processPairs.push([subjectIndex, baselineIndex]);
  }
  const throughputs = subjectSlices.map((each, index) => each.requestsPerSecond / baselineSlices[index]!.requestsPerSecond);
  const byProcessOf = (side: 0 | 1, count: number) => mediansByProcess(throughputs, processPairs, side, count);
  const perPair = (combine: (subject: SliceMeasurement, baseline: SliceMeasurement) => number) =>
    quartiles(subjectSlices.map((each, index) => combine(each, baselineSlices[index]!)));
  const medians = (slices: SliceMeasurement[]): SliceMeasurement => ({
    requestsPerSecond: median(slices.map((each) => each.requestsPerSecond)),
    cpuMicrosecondsPerRequest: median(slices.map((each) => each.cpuMicrosecondsPerRequest)),
  });
  return {
    throughput: perPair((subject, baseline) => subject.requestsPerSecond / baseline.requestsPerSecond),
    cpuPerRequest: perPair((subject, baseline) => subject.cpuMicrosecondsPerRequest / baseline.cpuMicrosecondsPerRequest),
    cpuDifference: perPair((subject, baseline) => subject.cpuMicrosecondsPerRequest - baseline.cpuMicrosecondsPerRequest),
    subject: medians(subjectSlices),
    baseline: medians(baselineSlices),
    ...(subjects.length > 1 || baselines.length > 1
      ? { byProcess: { subject: byProcessOf(0, subjects.length), baseline: byProcessOf(1, baselines.length) } }
      : {}),
  };
}

export async function runAb(options: AbOptions): Promise<AbResult> {
  const { log } = options;
  const baselineDirectory = join(options.workDirectory, 'baseline-checkout');
  const servers: ServerProcess[] = [];
  try {
    const baselineCommit = prepareBaseline(options.baseline, baselineDirectory, log);
    const currentCommit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const currentDirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, encoding: 'utf8' }).trim() !== '';
    const simulator = await startSimulator();
    servers.push(simulator);
    const start = async (name: string, root: string, settings: readonly ConfigSetting[] = []): Promise<SeedServer> => {
      const workDirectory = join(options.workDirectory, name);
      mkdirSync(workDirectory, { recursive: true });
      const server = await startSeedServer({ simulatorUrl: simulator.url, workDirectory, name, root, settings });
      servers.push(server);
      return server;
    };
    const sharedSettings = options.sharedSettings ?? [];
    const ownSettings = options.baselineSettings ?? [];
    const baselineSettings = [...sharedSettings, ...ownSettings];
    if (sharedSettings.length > 0) log(`both builds run with ${settingsText(sharedSettings)}`);
    if (ownSettings.length > 0) log(`the baseline also runs with ${settingsText(ownSettings)}`);
    const currents: SeedServer[] = [];
    const baselines: SeedServer[] = [];
    for (let index = 0; index < options.processes; index += 1) {
      const suffix = options.processes > 1 ? `-${index + 1}` : '';
      currents.push(await start(`seed-current${suffix}`, ROOT, sharedSettings));
      baselines.push(await start(`seed-baseline${suffix}`, baselineDirectory, baselineSettings));
    }
    const modes: AbMode[] = [];
    for (const stream of [false, true]) {
      // Warm every process up (JIT, pools, caches) as the overhead runs do, before the first measured slice.
      for (const server of [...currents, ...baselines]) await warmUp({ origin: server.url, headers: server.headers }, stream, options.concurrency);
      const paired = await pairedSlices({ subject: currents, baseline: baselines, stream, pairs: options.pairs, concurrency: options.concurrency });
      for (const server of [...currents, ...baselines]) {
        await waitForQuiet(servers.map((each) => each.pid), { maxMs: 5_000 });
        await warmUpOpenLoop({ origin: server.url, headers: server.headers }, stream, options.ratePerSecond);
      }
      const tails = await pairedOpenLoop({
        subject: currents.map((server) => requestFor({ origin: server.url, headers: server.headers }, stream)),
        baseline: baselines.map((server) => requestFor({ origin: server.url, headers: server.headers }, stream)),
        ratePerSecond: options.ratePerSecond,
        sliceSeconds: TAIL_SLICE_SECONDS,
        pairs: options.pairs,
        beforeSlice: () => waitForQuiet(servers.map((server) => server.pid), { maxMs: 5_000 }),
      });
      const mode: AbMode = {
        stream,
        throughput: paired.throughput,
        cpuPerRequest: paired.cpuPerRequest,
        current: paired.subject,
        baselineBuild: paired.baseline,
        ...(paired.byProcess ? { byProcess: { current: paired.byProcess.subject, baseline: paired.byProcess.baseline } } : {}),
        tail: {
          ratePerSecond: options.ratePerSecond,
          sliceSeconds: TAIL_SLICE_SECONDS,
          pairs: options.pairs,
          failures: tails.failures,
          currentP50Ms: percentile(tails.subjectLatencies, 0.5),
          currentP99Ms: percentile(tails.subjectLatencies, 0.99),
          baselineP50Ms: percentile(tails.baselineLatencies, 0.5),
          baselineP99Ms: percentile(tails.baselineLatencies, 0.99),
          p99DifferencePerPair: quartiles(tails.addedP99PerPair),
        },
      };
      log(
        `ab ${stream ? 'stream' : 'non-stream'}: throughput ${mode.throughput.median.toFixed(3)}× ` +
          `(${mode.throughput.lowerQuartile.toFixed(3)}–${mode.throughput.upperQuartile.toFixed(3)}), CPU/request ` +
          `${mode.cpuPerRequest.median.toFixed(3)}× (${mode.cpuPerRequest.lowerQuartile.toFixed(3)}–${mode.cpuPerRequest.upperQuartile.toFixed(3)}); ` +
          `p99 at ${options.ratePerSecond} req/s ${mode.tail!.currentP99Ms.toFixed(2)} against ${mode.tail!.baselineP99Ms.toFixed(2)} ms pooled, ` +
          `failures ${mode.tail!.failures}` +
          (mode.byProcess ? `; by process ${mode.byProcess.current.map((each) => each.toFixed(2)).join(', ')} (this) and ${mode.byProcess.baseline.map((each) => each.toFixed(2)).join(', ')} (baseline)` : ''),
      );
      modes.push(mode);
    }
    return {
      baselineRef: options.baseline,
      baselineCommit,
      currentCommit,
      currentDirty,
      ...(ownSettings.length > 0 ? { baselineSettings: settingsText(ownSettings) } : {}),
      ...(sharedSettings.length > 0 ? { sharedSettings: settingsText(sharedSettings) } : {}),
      pairs: options.pairs,
      processes: options.processes,
      concurrency: options.concurrency,
      modes,
    };
  } finally {
    for (const server of servers.reverse()) await server.stop();
    removeBaseline(baselineDirectory);
  }
}

/** Removes a worktree `prepareBaseline` made (nothing when there is none). */
export function removeBaseline(directory: string): void {
  if (!existsSync(directory)) return;
  spawnSync('git', ['worktree', 'remove', '--force', directory], { cwd: ROOT, stdio: 'ignore' });
  rmSync(directory, { recursive: true, force: true });
  spawnSync('git', ['worktree', 'prune'], { cwd: ROOT, stdio: 'ignore' });
}
