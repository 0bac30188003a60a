/**
 * Reading `strace -f` output (bench/syscalls.ts): system calls counted by name and by thread.
 *
 * With `-f` every line starts with the thread id. A call that another thread's line interrupts is
 * printed in two parts, `name(… <unfinished ...>` and later `<... name resumed> …`; it is counted
 * once, at its first part. Signals (`--- SIGCHLD …`), exits (`+++ exited …`) and strace's own
 * messages are not system calls.
 */

export interface SyscallCounts {
  /** Calls per system call name, all threads. */
  readonly byName: Map<string, number>;
  /** Calls per thread id. */
  readonly byThread: Map<number, number>;
  /** Calls per system call name, made on the thread whose id is the process id (the event loop). */
  readonly mainByName: Map<string, number>;
  readonly total: number;
}

const CALL_LINE = /^(?:\[pid\s+)?(\d+)\]?\s+([a-z_][a-z0-9_]*)\(/;

/** Counts the system calls in `text`, the output of `strace -f -o FILE -p PID`; `mainThread` is PID. */
export function countSyscalls(text: string, mainThread: number): SyscallCounts {
  const byName = new Map<string, number>();
  const byThread = new Map<number, number>();
  const mainByName = new Map<string, number>();
  let total = 0;
  for (const line of text.split('\n')) {
    const match = CALL_LINE.exec(line);
    if (!match) continue;
    const thread = Number(match[1]);
    const name = match[2] as string;
    byName.set(name, (byName.get(name) ?? 0) + 1);
    byThread.set(thread, (byThread.get(thread) ?? 0) + 1);
    if (thread === mainThread) mainByName.set(name, (mainByName.get(name) ?? 0) + 1);
    total += 1;
  }
  return { byName, byThread, mainByName, total };
}
