/**
 * Store threads whose workers a test can reach, to stop one as a crash would.
 */
import type { Worker } from 'node:worker_threads';

/** `start`, recording every worker it starts in `workers`. */
export function recordingStarts<Data>(start: (workerData: Data) => Worker): { startWorker: (workerData: Data) => Worker; workers: Worker[] } {
  const workers: Worker[] = [];
  return {
    workers,
    startWorker: (workerData) => {
      const worker = start(workerData);
      workers.push(worker);
      return worker;
    },
  };
}
