// Preloaded into a benchmarked server (`node --import bench/servers/gc-observer.mjs …`): records
// its garbage-collection pauses and the gaps in its event loop. SIGWINCH starts a measurement
// (forgetting earlier ones); the next SIGWINCH writes what was seen since then to
// SEED_BENCH_GC_OUT as JSON. Plain JavaScript: it runs before bin/run-ts.mjs registers the
// TypeScript loader.
//
// Gaps: a 1 ms interval timer notes when it last ran. When it runs more than GAP_MS late, the
// event loop did not get to it, and the main thread's scheduler counters
// (/proc/thread-self/schedstat: time on a CPU, time runnable but waiting for one) say why: the
// thread was busy (its own work, or a GC pause), or it was ready and the kernel ran something
// else, or neither (the timer was not due yet, or the virtual CPU itself was not running).
import { closeSync, openSync, readSync, writeFileSync } from 'node:fs';
import { PerformanceObserver, constants, performance } from 'node:perf_hooks';

const output = process.env.SEED_BENCH_GC_OUT;
if (!output) throw new Error('gc-observer: SEED_BENCH_GC_OUT is required');

/** A tick this much later than the last one is a gap (the timer asks for 1 ms). */
const GAP_MS = 2;

const KINDS = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

// Opened once and read with pread: the file is small, and a read per tick must stay cheap.
let schedstat = -1;
try {
  schedstat = openSync('/proc/thread-self/schedstat', 'r');
} catch {
  // Not Linux, or no scheduler statistics: gaps are still timed, without their split.
}
const buffer = Buffer.alloc(96);
/** [ms on a CPU, ms runnable and waiting for one] of this (the main) thread, or undefined. */
function threadTimes() {
  if (schedstat < 0) return undefined;
  const length = readSync(schedstat, buffer, 0, buffer.length, 0);
  const [onCpu, waiting] = buffer.toString('latin1', 0, length).split(' ');
  return [Number(onCpu) / 1e6, Number(waiting) / 1e6];
}

let measuring = false;
let startedAt = 0;
let pauses = [];
let gaps = [];
new PerformanceObserver((list) => {
  if (!measuring) return;
  for (const entry of list.getEntries()) pauses.push({ kind: KINDS[entry.detail?.kind] ?? 'other', at: entry.startTime, ms: entry.duration });
}).observe({ entryTypes: ['gc'] });

let lastTick = performance.now();
let lastTimes = threadTimes();
const ticker = setInterval(() => {
  const now = performance.now();
  const times = threadTimes();
  if (measuring && now - lastTick > GAP_MS + 1) {
    const gap = { at: lastTick, ms: now - lastTick, onCpuMs: null, waitingMs: null };
    if (times && lastTimes) {
      gap.onCpuMs = times[0] - lastTimes[0];
      gap.waitingMs = times[1] - lastTimes[1];
    }
    gaps.push(gap);
  }
  lastTick = now;
  lastTimes = times;
}, 1);
ticker.unref();

process.on('SIGWINCH', () => {
  if (!measuring) {
    measuring = true;
    pauses = [];
    gaps = [];
    startedAt = performance.now();
    return;
  }
  measuring = false;
  // Times are this process's performance.now(); timeOrigin puts them on the wall clock.
  writeFileSync(output, JSON.stringify({ timeOrigin: performance.timeOrigin, startedAt, seconds: (performance.now() - startedAt) / 1000, pauses, gaps }));
});
process.once('exit', () => {
  if (schedstat >= 0) closeSync(schedstat);
});
