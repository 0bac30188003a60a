/**
 * Bursts of CPU taken by tasks outside the benchmark, from `perf sched timehist`, and the
 * requests they overlapped (bench/host-bursts.ts).
 */
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { OpenLoopSample } from './load.ts';
import { endWithBenchmark } from './children.ts';

/** One stretch a task ran on a CPU (seconds on perf's clock). */
export interface RunSlice {
  /** When it started running: the switch-out time less its run time. */
  start: number;
  end: number;
  cpu: number;
  /** The task's name as perf gives it (`kdamond.0`, `node`, `kworker/0:1`). */
  name: string;
  tid: number;
  /** The thread group (process) id; the tid for a main thread and a kernel thread. */
  pid: number;
  /**
   * How long the task was ready to run before this slice and waited for a CPU (perf's "sch
   * delay", ms): from its wake-up, or from its preemption, to its start.
   */
  delayMs: number;
  /**
   * The task's state as it left the CPU at the end of this slice (`timehist --state`): `R` when
   * it was preempted and stayed ready to run, `S` or `D` when it went to sleep; absent from a
   * listing made without `--state`.
   */
  state?: string;
}

// `   282.395586 [0000]  kdamond.0[83]   507.294   0.007   3.505   S`: time, [cpu], task[tid] or
// task[tid/pid], then wait, scheduling delay and run time in ms, and with `--state` the state
// it switched out in. Wake-up lines (`awakened: …`) and the idle task (`<idle>`, no id) do not match.
const TIMEHIST_LINE = /^\s*(\d+\.\d+)\s+\[(\d+)\]\s+(.+?)\[(\d+)(?:\/(\d+))?\]\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)(?:\s+([A-Za-z+]+))?\s*$/;

/** The run slice a line of `perf sched timehist` (default columns) reports, or undefined for any other line. */
export function parseTimehistLine(line: string): RunSlice | undefined {
  const match = TIMEHIST_LINE.exec(line);
  if (!match) return undefined;
  const end = Number(match[1]);
  const tid = Number(match[4]);
  const slice: RunSlice = {
    start: end - Number(match[8]) / 1_000,
    end,
    cpu: Number(match[2]),
    name: match[3]!.trim(),
    tid,
    pid: match[5] === undefined ? tid : Number(match[5]),
    delayMs: Number(match[7]),
  };
  if (match[9] !== undefined) slice.state = match[9];
  return slice;
}

/** Every run slice in the text of `perf sched timehist`. */
export function parseTimehist(text: string): RunSlice[] {
  return text.split('\n').flatMap((line) => parseTimehistLine(line) ?? []);
}

/** A stretch in which tasks outside the benchmark kept a CPU busy. */
export interface Burst {
  start: number;
  end: number;
  /** CPU time they took in it (ms). */
  cpuMs: number;
  /** The task names in it, by CPU taken, most first. */
  tasks: string[];
}

/**
 * Merges the slices of tasks not in `ours` (process ids) into bursts: slices less than `gapMs`
 * apart join one burst, and a burst counts when its tasks took at least `minCpuMs` in all.
 */
export function foreignBursts(slices: readonly RunSlice[], ours: ReadonlySet<number> = new Set(), options: { gapMs?: number; minCpuMs?: number } = {}): Burst[] {
  const gap = (options.gapMs ?? 2) / 1_000;
  const minCpuMs = options.minCpuMs ?? 2;
  const foreign = slices.filter((slice) => !ours.has(slice.pid)).sort((left, right) => left.start - right.start);
  const open: Array<{ start: number; end: number; byTask: Map<string, number> }> = [];
  for (const slice of foreign) {
    const last = open.at(-1);
    const ms = (slice.end - slice.start) * 1_000;
    if (last && slice.start - last.end < gap) {
      last.end = Math.max(last.end, slice.end);
      last.byTask.set(slice.name, (last.byTask.get(slice.name) ?? 0) + ms);
    } else {
      open.push({ start: slice.start, end: slice.end, byTask: new Map([[slice.name, ms]]) });
    }
  }
  return open
    .map(({ start, end, byTask }) => ({
      start,
      end,
      cpuMs: [...byTask.values()].reduce((sum, ms) => sum + ms, 0),
      tasks: [...byTask.entries()].sort((left, right) => right[1] - left[1]).map(([name]) => name),
    }))
    .filter((burst) => burst.cpuMs >= minCpuMs);
}

/** CPU taken by each foreign task name over `slices`, in ms, most first. */
export function foreignTaskCpu(slices: readonly RunSlice[], ours: ReadonlySet<number> = new Set()): Array<{ name: string; cpuMs: number }> {
  const byName = new Map<string, number>();
  for (const slice of slices) if (!ours.has(slice.pid)) byName.set(slice.name, (byName.get(slice.name) ?? 0) + (slice.end - slice.start) * 1_000);
  return [...byName.entries()].map(([name, cpuMs]) => ({ name, cpuMs })).sort((left, right) => right.cpuMs - left.cpuMs);
}

/** A request's span on perf's clock (seconds). */
export interface Span {
  start: number;
  end: number;
}

export interface BurstOverlap {
  requests: number;
  p50Ms: number;
  p99Ms: number;
  /** Requests whose span overlapped a burst. */
  inBurst: number;
  /** The slowest 1% (latency ≥ p99) and how many of them overlapped a burst. */
  slowest: number;
  slowestInBurst: number;
  /** p99 of the requests that overlapped no burst (NaN when none did). */
  p99ClearMs: number;
}

/** Nearest-rank percentile of sorted values. */
function rank(sorted: readonly number[], fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))]!;
}

/** How the requests' latencies split by whether a burst overlapped them. */
export function burstOverlap(spans: readonly Span[], bursts: readonly Burst[]): BurstOverlap {
  const ordered = [...bursts].sort((left, right) => left.start - right.start);
  const hits = (span: Span) => {
    // The bursts are few (two a second); a linear scan is fine.
    for (const burst of ordered) {
      if (burst.start >= span.end) return false;
      if (burst.end > span.start) return true;
    }
    return false;
  };
  const latency = (span: Span) => (span.end - span.start) * 1_000;
  const all = spans.map(latency).sort((left, right) => left - right);
  const p99 = rank(all, 0.99);
  const slow = spans.filter((span) => latency(span) >= p99);
  const clear = spans
    .filter((span) => !hits(span))
    .map(latency)
    .sort((left, right) => left - right);
  return {
    requests: spans.length,
    p50Ms: rank(all, 0.5),
    p99Ms: p99,
    inBurst: spans.filter(hits).length,
    slowest: slow.length,
    slowestInBurst: slow.filter(hits).length,
    p99ClearMs: rank(clear, 0.99),
  };
}

/** The thread group of `pid` and every descendant process, from /proc (Linux). */
export function processTree(root: number): Set<number> {
  const parents = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The name may hold spaces and parentheses: the fields after the last ')' are fixed.
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const children = parents.get(parent) ?? [];
      children.push(Number(entry));
      parents.set(parent, children);
    } catch {
      // The process ended while we read.
    }
  }
  const tree = new Set<number>([root]);
  const queue = [root];
  for (let next = queue.pop(); next !== undefined; next = queue.pop()) {
    for (const child of parents.get(next) ?? []) {
      if (tree.has(child)) continue;
      tree.add(child);
      queue.push(child);
    }
  }
  return tree;
}

/**
 * Milliseconds to add to a time on the wall clock as the open loop gives it
 * (`performance.timeOrigin + performance.now()`) to put it on CLOCK_MONOTONIC, the clock the
 * recording is made on (`process.hrtime` reads it too).
 */
export function monotonicOffsetMs(): number {
  return Number(process.hrtime.bigint()) / 1e6 - (performance.timeOrigin + performance.now());
}

/** Each sample's span (from its scheduled send to its last byte) on CLOCK_MONOTONIC, in seconds. */
export function spansOf(samples: readonly OpenLoopSample[], offsetMs: number = monotonicOffsetMs()): Span[] {
  return samples.map((sample) => {
    const start = (sample.scheduledAt + offsetMs) / 1_000;
    return { start, end: start + sample.latencyMs / 1_000 };
  });
}

/** A `perf sched record -a` of every CPU on CLOCK_MONOTONIC, running until `stop`. */
export interface SchedRecording {
  /**
   * Ends the recording and returns the run slices `keep` says yes to (`outside(ours)`: every
   * task outside the benchmark's processes). Read line by line: a recording of two minutes
   * holds about a million slices, nearly all of them the benchmark's own, which the load
   * generator should not hold in its heap unless it asks for them.
   */
  stop(keep: (slice: RunSlice) => boolean): Promise<RunSlice[]>;
}

/** Keeps the slices of tasks outside `ours` (process ids): a recording's foreign slices. */
export function outside(ours: ReadonlySet<number>): (slice: RunSlice) => boolean {
  return (slice) => !ours.has(slice.pid);
}

/**
 * Why a system-wide `perf sched record` cannot run here, or undefined when it can (perf
 * installed; root, or kernel.perf_event_paranoid ≤ 0).
 */
export function schedRecordingUnavailable(directory: string): string | undefined {
  const probe = spawnSync('perf', ['sched', 'record', '-a', '-o', join(directory, 'probe.data'), '--', 'true'], { encoding: 'utf8' });
  rmSync(join(directory, 'probe.data'), { force: true });
  if (probe.error) return 'perf is not installed (Debian: apt-get install -y linux-perf)';
  if (probe.status !== 0) return `perf sched record -a failed (root, or kernel.perf_event_paranoid ≤ 0, is needed): ${probe.stderr.trim().split('\n')[0] ?? ''}`;
  return undefined;
}

/** Starts a `perf sched record -a` into `file`; resolves once perf has had time to attach. */
export async function startSchedRecording(file: string): Promise<SchedRecording> {
  const perf = endWithBenchmark(spawn('perf', ['sched', 'record', '-k', 'CLOCK_MONOTONIC', '-a', '-o', file], { stdio: 'ignore' }));
  // perf finishes its file on SIGINT, then ends by that signal.
  const exited = new Promise<boolean>((resolveExit) => perf.once('exit', (code, signal) => resolveExit(code === 0 || signal === 'SIGINT')));
  await new Promise((resolveWait) => setTimeout(resolveWait, 500));
  return {
    async stop(keep) {
      perf.kill('SIGINT');
      if (!(await exited)) throw new Error('perf sched record failed (root, or kernel.perf_event_paranoid ≤ 0, is needed)');
      const timehist = endWithBenchmark(spawn('perf', ['sched', 'timehist', '--state', '-i', file], { stdio: ['ignore', 'pipe', 'pipe'] }));
      let stderr = '';
      timehist.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-2_000)));
      const ended = new Promise<number | null>((resolveEnd) => timehist.once('close', (code) => resolveEnd(code)));
      const kept: RunSlice[] = [];
      for await (const line of createInterface({ input: timehist.stdout, crlfDelay: Infinity })) {
        const slice = parseTimehistLine(line);
        if (slice && keep(slice)) kept.push(slice);
      }
      const code = await ended;
      rmSync(file, { force: true });
      if (code !== 0) throw new Error(`perf sched timehist failed: ${stderr.slice(0, 500)}`);
      return kept;
    },
  };
}

/** The processes of the benchmark: this one, its descendants, and the first process when this one is its re-run with the client's flags (lib/client-flags.ts). */
export function benchmarkProcesses(): Set<number> {
  const ours = processTree(process.pid);
  if (process.env['SEED_BENCH_CLIENT_FLAGS'] === '1') ours.add(process.ppid);
  return ours;
}

/** Bursts from outside the benchmark while some requests were served, and how they overlapped each group of requests. */
export interface HostBursts<Side extends string = string> {
  overlap: Record<Side, BurstOverlap>;
  /** Bursts between the first request's scheduled send and the last answer, and the CPU they took (ms). */
  bursts: number;
  cpuMs: number;
  /** That window's length (s). */
  seconds: number;
  /** The foreign tasks that took the most CPU in that window (ms), most first. */
  tasks: Array<{ name: string; cpuMs: number }>;
}

/** Attributes the foreign run slices of a recording (`SchedRecording.stop`) to each group of requests' spans. */
export function attributeBursts<Side extends string>(foreign: readonly RunSlice[], sides: Readonly<Record<Side, readonly Span[]>>): HostBursts<Side> {
  const every = Object.values<readonly Span[]>(sides).flat();
  const first = every.reduce((earliest, span) => Math.min(earliest, span.start), Number.POSITIVE_INFINITY);
  const last = every.reduce((latest, span) => Math.max(latest, span.end), 0);
  const during = foreign.filter((slice) => slice.end > first && slice.start < last);
  const bursts = foreignBursts(during);
  const overlap = Object.fromEntries(Object.entries<readonly Span[]>(sides).map(([side, spans]) => [side, burstOverlap(spans, bursts)])) as Record<Side, BurstOverlap>;
  return {
    overlap,
    bursts: bursts.length,
    cpuMs: bursts.reduce((sum, burst) => sum + burst.cpuMs, 0),
    seconds: every.length > 0 ? last - first : 0,
    tasks: foreignTaskCpu(during).slice(0, 5),
  };
}

/** "host: 22 bursts (517 ms of CPU; foreign tasks' CPU kdamond.0 128, 1_scheduler 21) in 84.2 s; slowest 1% in a burst: subject 29 of 30 (p99 clear of bursts 6.59 ms), baseline 11 of 30 (4.66)". */
export function hostBurstsText(host: HostBursts): string {
  const sides = Object.entries(host.overlap).map(
    ([side, overlap], index) =>
      `${side} ${overlap.slowestInBurst} of ${overlap.slowest}` + (index === 0 ? ` (p99 clear of bursts ${overlap.p99ClearMs.toFixed(2)} ms)` : ` (${overlap.p99ClearMs.toFixed(2)})`),
  );
  const tasks = host.tasks
    .slice(0, 3)
    .map((task) => `${task.name} ${task.cpuMs.toFixed(0)}`)
    .join(', ');
  return `host: ${host.bursts} bursts (${host.cpuMs.toFixed(0)} ms of CPU${tasks ? `; foreign tasks' CPU ${tasks}` : ''}) in ${host.seconds.toFixed(1)} s; slowest 1% in a burst: ${sides.join(', ')}`;
}
