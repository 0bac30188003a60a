/**
 * A bound on how long to wait for a store. A store that stops answering without an error (a
 * partition that drops packets) is reported by TCP only after ~15 minutes; whoever waits on it
 * must give up sooner, on its own clock.
 */

/**
 * `work`, or a rejection with `timedOut()` once `ms` have passed, whichever comes first. The work
 * is not cancelled: it may still finish (or fail) later, and that late outcome is no one's any
 * more; a caller that must not act on it checks whether it gave up.
 *
 * @example
 * await withinTime(store.insertCalls(batch), 10_000, () => new Error('the store did not answer within 10 000 ms'));
 */
export function withinTime<T>(work: Promise<T>, ms: number, timedOut: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(timedOut()), ms);
  });
  // A failure after the wait was given up on is not an unhandled rejection.
  work.catch(() => undefined);
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
