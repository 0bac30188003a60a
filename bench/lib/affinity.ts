/**
 * CPU affinity for the benchmark's processes (Linux, `taskset` from util-linux). On two shared
 * cores over loopback, the kernel places a server woken by a socket write on the writer's CPU
 * (a "sync" wake-up: it expects the writer to sleep soon), and a load generator that goes on
 * sending keeps the server waiting while the other CPU idles (bench/lib/sched-waits.ts measures
 * it). Pinning the load generator and the upstream to one CPU and the gateway to the others puts
 * each side where a deployment has it: the clients and the provider elsewhere, the gateway on a
 * host of its own.
 *
 * On two CPUs that layout has costs of its own: the load generator and the simulator share one
 * CPU (direct's own p99 doubled in a paired run), the gateway has one CPU for all its threads
 * (Seed's ledger thread and V8's helpers), and no pinned process can move away from a kernel
 * thread's burst on its CPU. Pinned and unpinned read differently rather than one truer than the
 * other (docs/benchmark-log.md, 2026-12-07 (21:00–), items 4 and 7).
 */
import { execFileSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { existsSync, readdirSync, readFileSync } from 'node:fs';

/** Where each side of a pinned benchmark runs: CPU lists as `taskset -c` takes them. */
export interface PinLayout {
  /** The load generator and the upstream simulator. */
  world: string;
  /** The gateway under test (Seed, a proxy). */
  gateway: string;
}

/** The layout on this machine: CPU 0 for the world, the rest for the gateway; undefined (with why) on one CPU. */
export function pinLayout(cpus: number = availableParallelism()): PinLayout | { unavailable: string } {
  if (cpus < 2) return { unavailable: `pinning needs at least 2 CPUs; this machine offers ${cpus}` };
  return { world: '0', gateway: cpus === 2 ? '1' : `1-${cpus - 1}` };
}

/**
 * Pins every thread of process `pid` (and the threads it starts later, which inherit it) to
 * `cpus` (`0`, `1`, `1-7`: written as the kernel lists them back), and checks that each thread
 * took it. Throws when it cannot: no taskset, no such process (which `taskset --all-tasks`
 * does not report), a CPU list the machine does not have.
 */
export function pinProcess(pid: number, cpus: string): void {
  const failed = (why: string) => new Error(`taskset could not pin process ${pid} to CPUs ${cpus}: ${why}`);
  if (!existsSync(`/proc/${pid}/task`)) throw failed('no such process');
  try {
    execFileSync('taskset', ['--all-tasks', '--cpu-list', '--pid', cpus, String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim();
    throw failed(stderr || (error as Error).message);
  }
  const astray = [...threadAffinity(pid)].filter(([, allowed]) => allowed !== cpus);
  if (astray.length > 0) throw failed(`threads ${astray.map(([tid, allowed]) => `${tid} (${allowed})`).join(', ')} are not on them`);
}

/** The CPUs each thread of `pid` may run on (`Cpus_allowed_list` of /proc/PID/task/TID/status), by thread id. */
export function threadAffinity(pid: number): Map<number, string> {
  const affinity = new Map<number, string>();
  const tasks = readdirSync(`/proc/${pid}/task`);
  for (const tid of tasks) {
    try {
      const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      const list = /^Cpus_allowed_list:\s*(\S+)/m.exec(status)?.[1];
      if (list !== undefined) affinity.set(Number(tid), list);
    } catch {
      // The thread ended while we read.
    }
  }
  return affinity;
}

/**
 * For a benchmark tool's `--pin`: when `enabled`, pins this process (the load generator) to the
 * world's CPU and returns the layout for the servers it starts (`pinProcess(simulator.pid,
 * layout.world)`, `pinProcess(gateway.pid, layout.gateway)`); exits with status 2 and the reason
 * where the machine cannot be split. Undefined when not enabled.
 */
export function pinLoadGenerator(enabled: boolean): PinLayout | undefined {
  if (!enabled) return undefined;
  const layout = machineLayout();
  if ('unavailable' in layout) {
    console.error(`--pin: ${layout.unavailable}`);
    process.exit(2);
  }
  // The load generator is this process: the re-run with the client's flags (client-flags.ts), when there is one.
  pinProcess(process.pid, layout.world);
  return layout;
}

/**
 * The layout on this machine, or why it cannot be pinned apart: Linux only (affinity is read
 * from /proc), taskset installed, and 2 CPUs or more (`pinLayout`).
 */
export function machineLayout(): PinLayout | { unavailable: string } {
  if (process.platform !== 'linux') return { unavailable: 'thread affinity is set through /proc and taskset: Linux only' };
  try {
    execFileSync('taskset', ['--version'], { stdio: 'ignore' });
  } catch {
    return { unavailable: 'taskset is not installed (Debian: util-linux)' };
  }
  return pinLayout();
}

/**
 * Runs `body` with each process of `assignments` pinned to its CPUs, then gives each back the
 * CPUs its main thread had before, whether `body` succeeded or not.
 */
export async function whilePinned<T>(assignments: ReadonlyArray<{ pid: number; cpus: string }>, body: () => Promise<T>): Promise<T> {
  const before = assignments.map(({ pid }) => ({ pid, cpus: threadAffinity(pid).get(pid) }));
  try {
    for (const { pid, cpus } of assignments) pinProcess(pid, cpus);
    return await body();
  } finally {
    for (const { pid, cpus } of before) if (cpus !== undefined && existsSync(`/proc/${pid}/task`)) pinProcess(pid, cpus);
  }
}
