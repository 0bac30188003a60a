/** The child side of bench/lib/children.ts: announce the URL, exit cleanly on SIGTERM. */

/** Prints the ready line the parent waits for. */
export function announceReady(url: string): void {
  process.stdout.write(`${JSON.stringify({ ready: true, url })}\n`);
}

/**
 * Exits through `process.exit` on SIGTERM/SIGINT so `--cpu-prof` writes its profile (it does not
 * when a signal kills the process).
 */
export function exitOnSignals(close: () => Promise<void>): void {
  const stop = () => {
    const force = setTimeout(() => process.exit(0), 3_000);
    force.unref();
    close().then(
      () => process.exit(0),
      () => process.exit(0),
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

/**
 * With `--expose-gc`, a full garbage collection on SIGUSR2: the soak samples RSS after one, so
 * garbage not yet collected does not pass for growth.
 */
export function collectGarbageOnSignal(): void {
  const collect = (globalThis as { gc?: () => void }).gc;
  if (collect) process.on('SIGUSR2', () => collect());
}
