/**
 * Who a thread waited behind while it was ready to run and had no CPU. From the run slices of
 * every task of a `perf sched record -a` (sched-bursts.ts, listed with `--state`): a slice of the
 * waiting thread that follows a preemption (the slice before it ended in state `R`) waited from
 * that slice's end; one that follows a sleep waited from its wake-up (perf's "sch delay", which
 * counts from wake-ups only). The tasks that ran meanwhile on the CPU the thread then ran on are
 * what it waited behind; the time that CPU ran nothing is the wake-up's own latency (on a
 * virtual machine, a halted virtual CPU takes the host's time to wake). Apart from that, how much
 * of the wait another CPU was idle: time the thread could have run at once had the kernel put
 * it there. The kernel places a task woken by a socket write on the writer's CPU when it expects
 * the writer to sleep soon (a "sync" wake-up, as loopback TCP makes); a writer that goes on
 * running keeps it waiting.
 *
 * Used by bench/host-bursts.ts on each target's event loop: the tail-trace's gaps
 * (bench/tail-trace.ts --gaps) measured how long Seed's event loop waited for a CPU, and this
 * says behind what, the benchmark's own processes included.
 */
import type { RunSlice } from './sched-bursts.ts';

/** A thread's waits for a CPU, and who ran instead. */
export interface WaitHolders {
  /** Slices of the thread that came after a wait. */
  waits: number;
  /** Of them, those that came after a preemption rather than a wake-up. */
  preempted: number;
  /** The thread's time waiting for a CPU (ms). */
  waitMs: number;
  /** Over the waits, what ran on the CPU the thread then ran on (ms), by class of task, most first. */
  behind: Array<{ holder: string; ms: number }>;
  /** Over the waits, the time that CPU ran nothing (ms). */
  idleThereMs: number;
  /** Over the waits, the time at least one other CPU ran nothing (ms). */
  idleElsewhereMs: number;
}

/** The slices of one CPU, by start (they do not overlap each other). */
function byCpu(slices: readonly RunSlice[]): Map<number, RunSlice[]> {
  const cpus = new Map<number, RunSlice[]>();
  for (const slice of slices) {
    const list = cpus.get(slice.cpu) ?? [];
    list.push(slice);
    cpus.set(slice.cpu, list);
  }
  for (const list of cpus.values()) list.sort((left, right) => left.start - right.start);
  return cpus;
}

/** Index of the first slice in `list` (by start) that ends after `time`. */
function firstEndingAfter(list: readonly RunSlice[], time: number): number {
  let low = 0;
  let high = list.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (list[middle]!.end <= time) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** The slices of `list` within [from, to), clipped to it. */
function* within(list: readonly RunSlice[], from: number, to: number): Generator<{ slice: RunSlice; start: number; end: number }> {
  for (let index = firstEndingAfter(list, from); index < list.length && list[index]!.start < to; index += 1) {
    const slice = list[index]!;
    const start = Math.max(slice.start, from);
    const end = Math.min(slice.end, to);
    if (end > start) yield { slice, start, end };
  }
}

/** Length (s) of the union of `intervals`. */
function unionLength(intervals: Array<[number, number]>): number {
  intervals.sort((left, right) => left[0] - right[0]);
  let total = 0;
  let [openStart, openEnd] = [Number.NaN, Number.NaN];
  for (const [start, end] of intervals) {
    if (!(start <= openEnd)) {
      if (openEnd > openStart) total += openEnd - openStart;
      [openStart, openEnd] = [start, end];
    } else openEnd = Math.max(openEnd, end);
  }
  if (openEnd > openStart) total += openEnd - openStart;
  return total;
}

/**
 * Shares out the waits of thread `tid` among the tasks it waited behind, by `holder` (a class
 * name for each slice: "simulator", "load generator", a kernel thread's name). Only waits of at
 * least `minWaitMs` count.
 *
 * @example
 * waitHolders(slices, seed.pid, (slice) => (slice.pid === simulator.pid ? 'simulator' : slice.name))
 */
export function waitHolders(slices: readonly RunSlice[], tid: number, holder: (slice: RunSlice) => string, options: { minWaitMs?: number } = {}): WaitHolders {
  const minWaitMs = options.minWaitMs ?? 0;
  const cpus = byCpu(slices.filter((slice) => slice.tid !== tid));
  const own = slices.filter((slice) => slice.tid === tid).sort((left, right) => left.start - right.start);
  const behind = new Map<string, number>();
  let waits = 0;
  let preempted = 0;
  let waitMs = 0;
  let idleThereMs = 0;
  let idleElsewhereMs = 0;
  for (let index = 0; index < own.length; index += 1) {
    const slice = own[index]!;
    const before = index > 0 ? own[index - 1]! : undefined;
    const afterPreemption = before?.state?.startsWith('R') === true;
    const from = afterPreemption ? before!.end : slice.start - slice.delayMs / 1_000;
    const to = slice.start;
    const lengthMs = (to - from) * 1_000;
    if (!(lengthMs > 0) || lengthMs < minWaitMs) continue;
    waits += 1;
    if (afterPreemption) preempted += 1;
    waitMs += lengthMs;
    const idleElsewhere: Array<[number, number]> = [];
    for (const [cpu, list] of cpus) {
      let busyMs = 0;
      let idleFrom = from;
      for (const part of within(list, from, to)) {
        const ms = (part.end - part.start) * 1_000;
        busyMs += ms;
        if (cpu === slice.cpu) behind.set(holder(part.slice), (behind.get(holder(part.slice)) ?? 0) + ms);
        else if (part.start > idleFrom) idleElsewhere.push([idleFrom, part.start]);
        idleFrom = Math.max(idleFrom, part.end);
      }
      if (cpu === slice.cpu) idleThereMs += Math.max(0, lengthMs - busyMs);
      else if (to > idleFrom) idleElsewhere.push([idleFrom, to]);
    }
    idleElsewhereMs += unionLength(idleElsewhere) * 1_000;
  }
  return {
    waits,
    preempted,
    waitMs,
    behind: [...behind.entries()].map(([name, ms]) => ({ holder: name, ms })).sort((left, right) => right.ms - left.ms),
    idleThereMs,
    idleElsewhereMs,
  };
}

/** A kernel thread's name without its CPU and instance (`kworker/1:2H` → `kworker`, `ksoftirqd/0` → `ksoftirqd`). */
export function taskFamily(name: string): string {
  const slash = name.indexOf('/');
  return slash > 0 ? name.slice(0, slash) : name;
}
