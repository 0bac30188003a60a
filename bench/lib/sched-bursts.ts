/**
 * Bursts of CPU taken by tasks outside the benchmark, from `perf sched timehist`, and the
 * requests they overlapped (bench/host-bursts.ts).
 */
import { readdirSync, readFileSync } from 'node:fs';

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
}

// `   282.395586 [0000]  kdamond.0[83]   507.294   0.007   3.505`: time, [cpu], task[tid] or
// task[tid/pid], then wait, scheduling delay and run time in ms. Wake-up lines (`awakened: …`)
// and the idle task (`<idle>`, no id) do not match.
const TIMEHIST_LINE = /^\s*(\d+\.\d+)\s+\[(\d+)\]\s+(.+?)\[(\d+)(?:\/(\d+))?\]\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$/;

/** Every run slice in the text of `perf sched timehist` (default columns). */
export function parseTimehist(text: string): RunSlice[] {
  const slices: RunSlice[] = [];
  for (const line of text.split('\n')) {
    const match = TIMEHIST_LINE.exec(line);
    if (!match) continue;
    const end = Number(match[1]);
    const runMs = Number(match[8]);
    const tid = Number(match[4]);
    slices.push({ start: end - runMs / 1_000, end, cpu: Number(match[2]), name: match[3]!.trim(), tid, pid: match[5] === undefined ? tid : Number(match[5]) });
  }
  return slices;
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
export function foreignBursts(slices: readonly RunSlice[], ours: ReadonlySet<number>, options: { gapMs?: number; minCpuMs?: number } = {}): Burst[] {
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
export function foreignTaskCpu(slices: readonly RunSlice[], ours: ReadonlySet<number>): Array<{ name: string; cpuMs: number }> {
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
