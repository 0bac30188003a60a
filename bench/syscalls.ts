/**
 * System calls per call, counted by strace: the kernel work of a gateway call that the
 * instruction count (bench/instructions.ts) leaves out. On the hosts this project runs on a
 * system call costs far more than its instructions (page-table isolation on the Intel hosts, a
 * CPU-buffer clear at every return to user space on the AMD ones: the Machine section of
 * docs/benchmarks.md lists the host's mitigations), and the ledger's one journal `write` a call
 * cost ~10% of the process's CPU at saturation (docs/benchmark-log.md, 2026-12-06 (18:10–)), so how many a call makes, and
 * which, is worth counting apart.
 *
 *   node bin/run-ts.mjs bench/syscalls.ts [--targets seed,undici] [--modes json,stream]
 *       [--baseline GIT_REF] [--warm 20000] [--requests 5000] [--windows 3] [--top 12] [--json]
 *
 * Each target is warmed up natively, then serves `--windows` windows of `--requests` calls per
 * mode with `strace -f` attached to every one of its threads; a window ends once the process is
 * idle again (the ledger's insert worker writes the window's last batch after its calls have
 * answered). The counts of the calls that move data (`read`, `writev`, `write`, `pwrite64`) are
 * exact per call; those that wait (`epoll_pwait`, `futex`) depend on timing, which strace changes
 * (it stops the process at every system call), so compare those between targets only loosely. An
 * idle window as long as the longest loaded one is counted too: what the target's timers cost per
 * second with no load.
 *
 * `--baseline` builds that ref in a temporary worktree (as `npm run bench -- --only ab` does) and
 * adds the target `baseline`, Seed from that build.
 *
 * Needs strace (on Debian: `apt-get install -y strace`) and the right to trace the target (root,
 * or `kernel.yama.ptrace_scope` 0). Seed runs from dist/ (`npm run build` first) with every
 * feature on, as in `npm run bench`.
 */
import './lib/client-flags.ts';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import { waitForQuiet } from './lib/proc.ts';
import { median } from './lib/stats.ts';
import { countSyscalls, type SyscallCounts } from './lib/strace.ts';
import { SIMULATOR_HEADERS, startSeedServer, startUndiciProxy, type MeasuredServer } from './lib/targets.ts';
import { forEachTarget, serveCounted, targetsAndModes, wholeNumbers, type CountedTarget } from './lib/per-call.ts';
import { parseCommandLine } from './lib/command-line.ts';
import { endWithBenchmark } from './lib/children.ts';

const { values } = parseCommandLine(import.meta.filename, {
  options: {
    targets: { type: 'string', default: 'seed,undici' },
    modes: { type: 'string', default: 'json,stream' },
    baseline: { type: 'string' },
    warm: { type: 'string', default: '20000' },
    requests: { type: 'string', default: '5000' },
    windows: { type: 'string', default: '3' },
    top: { type: 'string', default: '12' },
    json: { type: 'boolean', default: false },
  },
});
const { warm, requests, windows, top } = wholeNumbers({ warm: values.warm, requests: values.requests, windows: values.windows, top: values.top });
const { targets, modes } = targetsAndModes(values);
if (spawnSync('strace', ['-V']).error) {
  console.error('strace is not installed (Debian: apt-get install -y strace)');
  process.exit(1);
}

/** Calls in flight, as in the closed-loop benchmark. */
const CONCURRENCY = 50;
/** How long to wait for strace to be attached to every thread of the target. */
const ATTACH_TIMEOUT_MS = 10_000;

interface Window {
  /** System calls per call, all threads. */
  perCall: number;
  /** On the event loop's thread. */
  mainPerCall: number;
  /** Per call, by name, all threads. */
  byName: Record<string, number>;
  /** Per call, by name, on the event loop's thread. */
  mainByName: Record<string, number>;
  seconds: number;
}

interface Reading {
  target: CountedTarget;
  mode: string;
  windows: Window[];
}

interface IdleReading {
  target: CountedTarget;
  /** System calls per second with no load, all threads. */
  perSecond: number;
  byName: Record<string, number>;
}

const readings: Reading[] = [];
const idle: IdleReading[] = [];
await forEachTarget({
  targets,
  baseline: values.baseline,
  workPrefix: 'seed-syscalls-',
  measure: (target, { simulatorUrl, root, workDirectory }) => measure({ target, simulatorUrl, root, workDirectory }),
});
report();

async function measure(input: { target: CountedTarget; simulatorUrl: string; root: string | undefined; workDirectory: string }): Promise<void> {
  const { target, simulatorUrl, root } = input;
  const directory = join(input.workDirectory, target);
  mkdirSync(directory, { recursive: true });
  const server: MeasuredServer =
    target === 'undici'
      ? { ...(await startUndiciProxy({ simulatorUrl })), headers: { ...SIMULATOR_HEADERS } }
      : await startSeedServer({ simulatorUrl, workDirectory: directory, name: target, ...(root ? { root } : {}) });
  const pool = new Pool(server.url, { connections: CONCURRENCY, pipelining: 1 });
  try {
    for (const mode of modes) await serveCounted({ pool, server, mode, count: warm, concurrency: CONCURRENCY });
    await waitForQuiet([server.pid], { maxCores: 0.1, maxMs: 30_000 });
    const perMode = new Map(modes.map((mode) => [mode, [] as Window[]]));
    let longest = 0;
    for (let window = 0; window < windows; window += 1) {
      for (const mode of modes) {
        const counted = await traced(server, directory, async () => {
          await serveCounted({ pool, server, mode, count: requests, concurrency: CONCURRENCY });
          if (!(await waitForQuiet([server.pid], { maxCores: 0.1, maxMs: 60_000 })).quiet) {
            throw new Error(`${server.name} did not go idle within 60 s of its window:\n${server.stderrTail()}`);
          }
        });
        longest = Math.max(longest, counted.seconds);
        const reading = perCallOf(counted.counts, requests, counted.seconds);
        perMode.get(mode)?.push(reading);
        console.error(`${target} ${mode} window ${window + 1}/${windows}: ${reading.perCall.toFixed(2)} system calls per call (${reading.mainPerCall.toFixed(2)} on the event loop)`);
      }
    }
    for (const mode of modes) readings.push({ target, mode, windows: perMode.get(mode) ?? [] });
    // What the target's timers cost with no load, over as long as its longest window.
    const quiet = await traced(server, directory, () => sleep(Math.max(1_000, longest * 1_000)));
    idle.push({ target, perSecond: quiet.counts.total / quiet.seconds, byName: perUnit(quiet.counts.byName, quiet.seconds) });
  } finally {
    await pool.close();
    await server.stop(30_000);
  }
}

/** Runs `work` with strace attached to every thread of `server`; the counts and how long it was attached. */
async function traced(server: MeasuredServer, directory: string, work: () => Promise<unknown>): Promise<{ counts: SyscallCounts; seconds: number }> {
  const out = join(directory, `strace-${Date.now()}.log`);
  const tracer = endWithBenchmark(spawn('strace', ['-f', '-qq', '-o', out, '-p', String(server.pid)], { stdio: ['ignore', 'ignore', 'pipe'] }));
  let stderr = '';
  tracer.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => tracer.once('exit', () => resolve()));
  try {
    await attached(server.pid, () => tracer.exitCode !== null, () => stderr);
    const startedAt = performance.now();
    await work();
    const seconds = (performance.now() - startedAt) / 1000;
    tracer.kill('SIGINT');
    await exited;
    const counts = countSyscalls(readFileSync(out, 'utf8'), server.pid);
    return { counts, seconds };
  } finally {
    if (tracer.exitCode === null) {
      tracer.kill('SIGKILL');
      await exited;
    }
    rmSync(out, { force: true });
  }
}

/** Waits until every thread of `pid` has a tracer (`TracerPid` in its status). */
async function attached(pid: number, gone: () => boolean, stderr: () => string): Promise<void> {
  const deadline = performance.now() + ATTACH_TIMEOUT_MS;
  for (;;) {
    if (gone()) throw new Error(`strace exited before attaching to ${pid}: ${stderr().slice(0, 500)}`);
    const threads = readdirSync(`/proc/${pid}/task`);
    const tracers = threads.map((thread) => /^TracerPid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/task/${thread}/status`, 'utf8'))?.[1]);
    if (tracers.every((tracer) => tracer !== undefined && tracer !== '0')) return;
    if (performance.now() > deadline) throw new Error(`strace did not attach to every thread of ${pid} within ${ATTACH_TIMEOUT_MS} ms: ${stderr().slice(0, 500)}`);
    await sleep(20);
  }
}

function perUnit(counts: ReadonlyMap<string, number>, units: number): Record<string, number> {
  return Object.fromEntries([...counts].map(([name, count]) => [name, count / units]));
}

function perCallOf(counts: SyscallCounts, calls: number, seconds: number): Window {
  const main = [...counts.mainByName.values()].reduce((sum, count) => sum + count, 0);
  return {
    perCall: counts.total / calls,
    mainPerCall: main / calls,
    byName: perUnit(counts.byName, calls),
    mainByName: perUnit(counts.mainByName, calls),
    seconds,
  };
}

/** The median over windows of one name's calls per call (0 where a window made none). */
function medianOf(reading: Reading, name: string, main: boolean): number {
  return median(reading.windows.map((window) => (main ? window.mainByName : window.byName)[name] ?? 0));
}

function report(): void {
  if (values.json) {
    console.log(JSON.stringify({ warm, requests, windows, concurrency: CONCURRENCY, readings, idle }, null, 2));
    return;
  }
  console.log(`\nSystem calls per call, strace -f, every thread of the target; ${windows} windows of ${requests} calls after ${warm} warm-up calls per mode, ${CONCURRENCY} in flight; medians of the windows\n`);
  console.log('| target | mode | all threads | event loop | other threads | lowest–highest (all) |');
  console.log('|---|---|---:|---:|---:|---|');
  for (const reading of readings) {
    const all = reading.windows.map((window) => window.perCall);
    const main = median(reading.windows.map((window) => window.mainPerCall));
    console.log(
      `| ${reading.target} | ${reading.mode} | ${median(all).toFixed(2)} | ${main.toFixed(2)} | ${(median(all) - main).toFixed(2)} | ${Math.min(...all).toFixed(2)}–${Math.max(...all).toFixed(2)} |`,
    );
  }
  for (const mode of modes) {
    const inMode = readings.filter((reading) => reading.mode === mode);
    const names = new Set(inMode.flatMap((reading) => reading.windows.flatMap((window) => Object.keys(window.byName))));
    const rows = [...names]
      .map((name) => ({ name, counts: inMode.map((reading) => [medianOf(reading, name, false), medianOf(reading, name, true)] as const) }))
      .sort((a, b) => Math.max(...b.counts.map(([all]) => all)) - Math.max(...a.counts.map(([all]) => all)))
      .slice(0, top);
    console.log(`\n${mode}: per call, by system call (all threads / event loop)\n`);
    console.log(`| system call | ${inMode.map((reading) => reading.target).join(' | ')} |`);
    console.log(`|---|${inMode.map(() => '---:').join('|')}|`);
    for (const row of rows) console.log(`| ${row.name} | ${row.counts.map(([all, main]) => `${all.toFixed(3)} / ${main.toFixed(3)}`).join(' | ')} |`);
  }
  console.log('\nIdle (no load), system calls per second, all threads\n');
  console.log('| target | per second | most made |');
  console.log('|---|---:|---|');
  for (const reading of idle) {
    const most = Object.entries(reading.byName)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 5)
      .map(([name, perSecond]) => `${name} ${perSecond.toFixed(1)}`)
      .join(', ');
    console.log(`| ${reading.target} | ${reading.perSecond.toFixed(1)} | ${most} |`);
  }
}
