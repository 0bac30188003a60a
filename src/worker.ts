/**
 * Starts a `worker_threads` module that sits beside its caller in src/, whether the caller runs
 * from the TypeScript sources (through tsx: tests, the CLI's fallback) or compiled from dist/.
 *
 * Node 20 workers inherit neither tsx's loader hooks nor a working `--import tsx` in `execArgv`,
 * so from sources the worker is a small eval'd script that registers tsx in the worker and then
 * imports the `.ts` module. Compiled, the `.js` module beside the caller is started directly.
 */
import { writeFileSync } from 'node:fs';
import { Worker, type WorkerOptions } from 'node:worker_threads';

export interface StartModuleWorkerOptions {
  /** The module to run, relative to `from`, written as an import would be: `./name.ts`. */
  module: string;
  /** The caller's `import.meta.url`; its extension tells sources (`.ts`) from the build (`.js`). */
  from: string;
  /** Passed to `new Worker` (`workerData`, `name`, …); `eval` is chosen here. */
  options?: Omit<WorkerOptions, 'eval'>;
}

/**
 * Starts the worker module and returns its `Worker`.
 *
 * @example
 * const worker = startModuleWorker({ module: './thing-worker.ts', from: import.meta.url, options: { workerData } });
 */
export function startModuleWorker({ module, from, options = {} }: StartModuleWorkerOptions): Worker {
  if (!module.startsWith('./') && !module.startsWith('../')) throw new Error(`worker module must be relative: ${module}`);
  if (!module.endsWith('.ts')) throw new Error(`worker module must be written with its .ts extension: ${module}`);
  if (new URL(from).pathname.endsWith('.ts')) {
    const target = new URL(module, from).href;
    // Resolved here rather than in the worker: its bare specifiers would resolve from the
    // process's working directory, which need not be this project.
    const tsx = import.meta.resolve('tsx/esm/api');
    const code = `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(target)}); });`;
    return new Worker(code, { ...options, eval: true });
  }
  // Compiled: tsc rewrote the caller's imports from .ts to .js, and the worker beside it too.
  return new Worker(new URL(module.replace(/\.ts$/, '.js'), from), options);
}

/** Linux's limit on a thread's name (`TASK_COMM_LEN` less its terminating NUL). */
const THREAD_NAME_MAX = 15;

/**
 * Names the calling thread, as `top -H`, `ps -L`, `perf` and `/proc/PID/task/TID/comm` show it,
 * so that an operator can tell Seed's worker threads from V8's and libuv's (every thread of a
 * Node process is otherwise called `node`). Linux only: returns false where there is no
 * `/proc/thread-self` (macOS, a container without /proc) and leaves the thread as it was.
 *
 * @example
 * nameThisThread('seed-sql-insert'); // in the ledger's insert worker
 */
export function nameThisThread(name: string): boolean {
  if (name.length === 0 || name.length > THREAD_NAME_MAX) throw new RangeError(`a thread name is 1 to ${THREAD_NAME_MAX} characters: ${JSON.stringify(name)}`);
  try {
    writeFileSync('/proc/thread-self/comm', name);
    return true;
  } catch {
    return false;
  }
}
