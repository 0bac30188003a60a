/**
 * Store threads whose workers a test can reach, to stop one as a crash would.
 */
import type { Worker } from 'node:worker_threads';

/** A store thread (`make` over `start`) whose every worker `start` makes is kept in `workers`. */
export function reachableThread<Data, Thread>(
  start: (workerData: Data) => Worker,
  make: (startWorker: (workerData: Data) => Worker) => Thread,
): { thread: Thread; workers: Worker[] } {
  const workers: Worker[] = [];
  const thread = make((workerData) => {
    const worker = start(workerData);
    workers.push(worker);
    return worker;
  });
  return { thread, workers };
}
