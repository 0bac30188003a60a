/**
 * Whether the slowest requests at 500 req/s fell in bursts of CPU taken by tasks outside the
 * benchmark: kernel threads and other processes of the host. Direct to the simulator, through the
 * minimal undici proxy and through Seed, one after the other, each under the paired tails' open
 * loop (2 s slices at `--rate`, each starting once the processes are idle) while
 * `perf sched record -a` records every task switch on every CPU. Prints, per target, the p99 of
 * all requests and of those no burst overlapped, and how many of the slowest 1% a burst
 * overlapped; then the foreign tasks by CPU taken.
 *
 *   node bin/run-ts.mjs bench/host-bursts.ts [--targets direct,undici,seed] [--slices 3] [--rate 500] [--json] [--pin]
 *
 * A burst is a stretch in which foreign tasks ran with gaps under 2 ms, taking 2 ms of CPU or
 * more in all. On the 2-core VM of 2026-12-05 the kernel's DAMON thread (`kdamond.0`, proactive
 * reclaim with a 500 ms aggregation interval) took a core for 5–11 ms every ~512 ms
 * (docs/benchmark-log.md, 2026-12-05 (16:14–)).
 *
 * Then, for each target's event loop (the simulator's, direct), the time it was ready to run
 * and waited for a CPU: what ran instead on the CPU it then ran on (the benchmark's own
 * processes and the target's own threads included), and how much of the wait another CPU was
 * idle (bench/lib/sched-waits.ts). perf's count of the waits is checked against the kernel's
 * (/proc/PID/schedstat).
 *
 * `--pin` puts the load generator and the simulator on CPU 0 and the target on the other CPUs
 * (bench/lib/affinity.ts), as a deployment has them on different hosts; unpinned, the kernel
 * wakes a server on the CPU of the process that wrote to its socket. Pinning has costs of its
 * own (affinity.ts says which), so it is another view, not a truer one.
 *
 * Needs Linux `perf` (Debian: `apt-get install -y linux-perf`) and root, or
 * kernel.perf_event_paranoid ≤ 0 for system-wide recording. Seed runs from dist/ (`npm run build`
 * first) with every feature on, as in `npm run bench`.
 */
import './lib/client-flags.ts';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ServerProcess } from './lib/children.ts';
import { openLoop, openLoopPool } from './lib/load.ts';
import { runDelayMs, waitForQuiet } from './lib/proc.ts';
import { attributeBursts, benchmarkProcesses, outside, schedRecordingUnavailable, spansOf, startSchedRecording, type HostBursts, type RunSlice, type Span } from './lib/sched-bursts.ts';
import { taskFamily, waitHolders, type WaitHolders } from './lib/sched-waits.ts';
import { pinLoadGenerator, pinProcess } from './lib/affinity.ts';
import { SIMULATOR_HEADERS, TARGET_LABELS, startSeedServer, startSimulator, startUndiciProxy } from './lib/targets.ts';
import { requestFor, sliceOptions, TAIL_SLICE_SECONDS, warmUp, warmUpOpenLoop } from './scenarios/overhead.ts';
import { parseCommandLine } from './lib/command-line.ts';
import { scratchDirectory } from './lib/children.ts';

const { values } = parseCommandLine(import.meta.filename, {
  options: {
    targets: { type: 'string', default: 'direct,undici,seed' },
    slices: { type: 'string', default: '3' },
    rate: { type: 'string', default: '500' },
    json: { type: 'boolean', default: false },
    pin: { type: 'boolean', default: false },
  },
});
const { slices, rate, stream } = sliceOptions(values);
const KINDS = ['direct', 'undici', 'seed'] as const;
type Kind = (typeof KINDS)[number];
const targets = values.targets.split(',').map((target) => target.trim());
for (const target of targets) if (!(KINDS as readonly string[]).includes(target)) throw new Error(`--targets: direct, undici or seed, got ${target}`);


interface Measured extends HostBursts<'target'> {
  target: Kind;
  /** What the target's event loop (the simulator's, direct) waited behind while it was ready to run. */
  waits: WaitHolders;
  /** The event loop's wait for a CPU over the recording by the kernel's count (schedstat), to check perf's against. */
  kernelWaitMs: number;
}

/**
 * Names the task of a slice for `waitHolders`: the target's own threads by their names (Seed
 * names its ledger threads; V8's and libuv's are all `node`), the simulator, the recording,
 * the load generator (the rest of the benchmark's processes), and foreign tasks by family.
 */
function holderOf(slice: RunSlice, input: { target: Kind; targetPid: number; simulatorPid: number; ours: ReadonlySet<number> }): string {
  if (slice.pid === input.targetPid && input.target !== 'direct') {
    return slice.tid === slice.pid ? `${input.target}: event loop` : `${input.target}: ${slice.name === 'node' ? 'other threads' : slice.name}`;
  }
  if (slice.pid === input.simulatorPid) return slice.tid === slice.pid ? 'simulator: event loop' : 'simulator: other threads';
  if (!input.ours.has(slice.pid)) return taskFamily(slice.name);
  return slice.name === 'perf' ? 'perf (the recording)' : 'load generator';
}

const layout = pinLoadGenerator(values.pin);

const directory = scratchDirectory('seed-host-bursts-');
const measured: Measured[] = [];
try {
  const unavailable = schedRecordingUnavailable(directory);
  if (unavailable) {
    console.error(unavailable);
    rmSync(directory, { recursive: true, force: true });
    process.exit(2);
  }
  const simulator = await startSimulator();
  if (layout) pinProcess(simulator.pid, layout.world);
  try {
    for (const target of targets as Kind[]) {
      let proxy: ServerProcess | undefined;
      let headers: Record<string, string> = { ...SIMULATOR_HEADERS };
      if (target === 'undici') proxy = await startUndiciProxy({ simulatorUrl: simulator.url });
      if (target === 'seed') {
        const seed = await startSeedServer({ simulatorUrl: simulator.url, workDirectory: directory });
        proxy = seed;
        headers = seed.headers;
      }
      try {
        if (layout && proxy) pinProcess(proxy.pid, layout.gateway);
        const origin = proxy?.url ?? simulator.url;
        await warmUp({ origin, headers }, stream, 50);
        await warmUpOpenLoop({ origin, headers }, stream, rate);
        const pids = [simulator.pid, ...(proxy ? [proxy.pid] : [])];
        const targetPid = proxy?.pid ?? simulator.pid;
        const recording = await startSchedRecording(join(directory, `${target}.data`));
        const delayBefore = runDelayMs(targetPid);
        const spans: Span[] = [];
        const pool = openLoopPool(origin);
        try {
          for (let index = 0; index < slices; index += 1) {
            await waitForQuiet(pids, { maxMs: 5_000 });
            const result = await openLoop({ request: requestFor({ origin, headers }, stream), ratePerSecond: rate, count: Math.round(rate * TAIL_SLICE_SECONDS), keepSamples: true, pool });
            spans.push(...spansOf(result.samples ?? []));
          }
        } finally {
          await pool.close();
        }
        const kernelWaitMs = runDelayMs(targetPid) - delayBefore;
        const ours = benchmarkProcesses();
        // Every slice, the benchmark's own too: a few seconds of load make some 100 000.
        const everyTask = await recording.stop(() => true);
        const waits = waitHolders(everyTask, targetPid, (slice) => holderOf(slice, { target, targetPid, simulatorPid: simulator.pid, ours }));
        measured.push({ target, waits, kernelWaitMs, ...attributeBursts(everyTask.filter(outside(ours)), { target: spans }) });
      } finally {
        await proxy?.stop(15_000);
      }
    }
  } finally {
    await simulator.stop();
  }
} finally {
  rmSync(directory, { recursive: true, force: true });
}

const pinned = layout ? `; the load generator and the simulator on CPU ${layout.world}, the target on CPU ${layout.gateway}` : '';
console.log(`\n${stream ? 'Streaming' : 'Non-streaming'}, ${rate} req/s, ${slices} slice(s) of ${TAIL_SLICE_SECONDS} s per target${pinned}\n`);
console.log('| target | requests | p50 ms | p99 ms | p99 of requests no burst overlapped | requests a burst overlapped | slowest 1% a burst overlapped | bursts (their CPU) |');
console.log('|---|---|---|---|---|---|---|---|');
for (const { target, overlap: { target: overlap }, bursts, cpuMs, seconds } of measured) {
  console.log(
    `| ${TARGET_LABELS[target]} | ${overlap.requests} | ${overlap.p50Ms.toFixed(2)} | ${overlap.p99Ms.toFixed(2)} | ${overlap.p99ClearMs.toFixed(2)} | ` +
      `${((100 * overlap.inBurst) / Math.max(1, overlap.requests)).toFixed(1)}% | ${overlap.slowestInBurst} of ${overlap.slowest} | ` +
      `${bursts} in ${seconds.toFixed(1)} s (${cpuMs.toFixed(0)} ms) |`,
  );
}
console.log('\nForeign tasks by CPU taken while each target was measured (ms):');
for (const { target, tasks } of measured) console.log(`  ${TARGET_LABELS[target]}: ${tasks.map((task) => `${task.name} ${task.cpuMs.toFixed(1)}`).join(', ') || 'none'}`);

console.log(
  "\nWhile each target's event loop (the simulator's, direct) was ready to run and waited for a CPU: what ran instead on the CPU it then ran on, as a share of its wait, " +
    'and how much of its wait another CPU was idle. perf counts the waits; the kernel\'s own count (schedstat) over the same recording is beside it.\n',
);
console.log("| target | waits (after a preemption) | waited, ms (kernel's count) | waited behind | another CPU idle |");
console.log('|---|---|---|---|---|');
for (const { target, waits, kernelWaitMs } of measured) {
  const share = (ms: number) => `${((100 * ms) / Math.max(waits.waitMs, Number.MIN_VALUE)).toFixed(1)}%`;
  const behind = [...waits.behind.slice(0, 5).map(({ holder, ms }) => `${holder} ${share(ms)}`), `nothing (waking the CPU) ${share(waits.idleThereMs)}`];
  console.log(
    `| ${TARGET_LABELS[target]} | ${waits.waits} (${waits.preempted}) | ${waits.waitMs.toFixed(1)} (${kernelWaitMs.toFixed(1)}) | ${behind.join(', ')} | ${share(waits.idleElsewhereMs)} |`,
  );
}
