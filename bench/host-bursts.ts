/**
 * Whether the slowest requests at 500 req/s fell in bursts of CPU taken by tasks outside the
 * benchmark: kernel threads and other processes of the host. Direct to the simulator, through the
 * minimal undici proxy and through Seed, one after the other, each under the paired tails' open
 * loop (2 s slices at `--rate`, each starting once the processes are idle) while
 * `perf sched record -a` records every task switch on every CPU. Prints, per target, the p99 of
 * all requests and of those no burst overlapped, and how many of the slowest 1% a burst
 * overlapped; then the foreign tasks by CPU taken.
 *
 *   node bin/run-ts.mjs bench/host-bursts.ts [--targets direct,undici,seed] [--slices 3] [--rate 500] [--json]
 *
 * A burst is a stretch in which foreign tasks ran with gaps under 2 ms, taking 2 ms of CPU or
 * more in all. On the 2-core VM of 2026-12-05 the kernel's DAMON thread (`kdamond.0`, proactive
 * reclaim with a 500 ms aggregation interval) took a core for 5–11 ms every ~512 ms
 * (docs/benchmark-log.md, 2026-12-05 (16:14–)).
 *
 * Needs Linux `perf` (Debian: `apt-get install -y linux-perf`) and root, or
 * kernel.perf_event_paranoid ≤ 0 for system-wide recording. Seed runs from dist/ (`npm run build`
 * first) with every feature on, as in `npm run bench`.
 */
import './lib/client-flags.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServerProcess } from './lib/children.ts';
import { openLoop, openLoopPool } from './lib/load.ts';
import { waitForQuiet } from './lib/proc.ts';
import { attributeBursts, benchmarkProcesses, schedRecordingUnavailable, spansOf, startSchedRecording, type HostBursts, type Span } from './lib/sched-bursts.ts';
import { SIMULATOR_HEADERS, TARGET_LABELS, startSeedServer, startSimulator, startUndiciProxy } from './lib/targets.ts';
import { requestFor, sliceOptions, TAIL_SLICE_SECONDS, warmUp, warmUpOpenLoop } from './scenarios/overhead.ts';
import { parseCommandLine } from './lib/command-line.ts';

const { values } = parseCommandLine(import.meta.filename, {
  options: {
    targets: { type: 'string', default: 'direct,undici,seed' },
    slices: { type: 'string', default: '3' },
    rate: { type: 'string', default: '500' },
    json: { type: 'boolean', default: false },
  },
});
const { slices, rate, stream } = sliceOptions(values);
const KINDS = ['direct', 'undici', 'seed'] as const;
type Kind = (typeof KINDS)[number];
const targets = values.targets.split(',').map((target) => target.trim());
for (const target of targets) if (!(KINDS as readonly string[]).includes(target)) throw new Error(`--targets: direct, undici or seed, got ${target}`);


interface Measured extends HostBursts<'target'> {
  target: Kind;
}

const directory = mkdtempSync(join(tmpdir(), 'seed-host-bursts-'));
const measured: Measured[] = [];
try {
  const unavailable = schedRecordingUnavailable(directory);
  if (unavailable) {
    console.error(unavailable);
    rmSync(directory, { recursive: true, force: true });
    process.exit(2);
  }
  const simulator = await startSimulator();
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
        const origin = proxy?.url ?? simulator.url;
        await warmUp({ origin, headers }, stream, 50);
        await warmUpOpenLoop({ origin, headers }, stream, rate);
        const pids = [simulator.pid, ...(proxy ? [proxy.pid] : [])];
        const recording = await startSchedRecording(join(directory, `${target}.data`));
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
        measured.push({ target, ...attributeBursts(await recording.stop(benchmarkProcesses()), { target: spans }) });
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

console.log(`\n${stream ? 'Streaming' : 'Non-streaming'}, ${rate} req/s, ${slices} slice(s) of ${TAIL_SLICE_SECONDS} s per target\n`);
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
