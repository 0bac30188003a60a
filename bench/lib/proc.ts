/**
 * Per-process CPU and memory from /proc (Linux): works the same for Node children and nginx,
 * and costs the measured process nothing.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let clockTicks: number | undefined;

function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

export interface ProcessSample {
  /** user + system CPU time since the process started, in milliseconds (10 ms resolution). */
  cpuMs: number;
  /** Resident set size now, in KiB. */
  rssKiB: number;
  /** Peak resident set size (VmHWM) since start, in KiB. */
  peakRssKiB: number;
  /** Minor page faults since the process started (memory touched afresh, no disk read). */
  minorFaults: number;
}

/** Reads /proc/PID/stat and /proc/PID/status; undefined when the process is gone. */
export function sampleProcess(pid: number): ProcessSample | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start at field 3 (state).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const userTicks = Number(fields[11]);
    const systemTicks = Number(fields[12]);
    const minorFaults = Number(fields[7]);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? Number.NaN);
    return {
      cpuMs: ((userTicks + systemTicks) * 1000) / ticksPerSecond(),
      rssKiB: kib('VmRSS'),
      peakRssKiB: kib('VmHWM'),
      minorFaults,
    };
  } catch {
    return undefined;
  }
}

/** Busy CPU time of the whole machine (all cores, /proc/stat), in milliseconds. */
export function systemBusyMs(): number {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
    const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
    return (((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) * 1000) / ticksPerSecond();
  } catch {
    return Number.NaN;
  }
}

/**
 * Waits until none of `pids` uses more than `maxCores` of CPU over a 500 ms window, or `maxMs`
 * passed; returns how long it waited and whether they went quiet. An overloaded proxy (Portkey
 * at 500 req/s) works through its backlog for seconds after its phase ended, which would
 * otherwise land in the next target's phase as "other load".
 */
export async function waitForQuiet(pids: readonly number[], options: { maxCores?: number; maxMs?: number } = {}): Promise<{ waitedMs: number; quiet: boolean }> {
  const maxCores = options.maxCores ?? 0.05;
  const maxMs = options.maxMs ?? 30_000;
  const windowMs = 500;
  const started = performance.now();
  const cpuOf = () => pids.reduce((sum, pid) => sum + (sampleProcess(pid)?.cpuMs ?? 0), 0);
  for (;;) {
    const before = cpuOf();
    await new Promise((resolveWait) => setTimeout(resolveWait, windowMs));
    const waitedMs = performance.now() - started;
    if (cpuOf() - before <= maxCores * windowMs) return { waitedMs, quiet: true };
    if (waitedMs >= maxMs) return { waitedMs, quiet: false };
  }
}

/**
 * How long thread `tid` has been ready to run and waited for a CPU since it started, in ms, by
 * the kernel's count (/proc/TID/schedstat's second field, in ns); NaN when it is gone or the
 * kernel keeps no such count (it needs CONFIG_SCHED_INFO).
 */
export function runDelayMs(tid: number): number {
  try {
    const [, waitingNs] = readFileSync(`/proc/${tid}/schedstat`, 'utf8').trim().split(/\s+/);
    return waitingNs === undefined ? Number.NaN : Number(waitingNs) / 1e6;
  } catch {
    return Number.NaN;
  }
}
