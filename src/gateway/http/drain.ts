/**
 * Graceful shutdown of the HTTP surface, as a rolling deploy needs it: stop taking connections,
 * let the calls in flight finish, close each connection as its last response ends, and cut what
 * is still running when the drain's time is up, telling those clients why. Every call ends
 * through its own path (the router, the stream writer), so each is recorded in the ledger
 * before the ledger closes.
 *
 * Without it, closing waited for keep-alive connections to time out (65 s after their last
 * response) and for every stream to end however long it ran, so a `SIGTERM` took a minute or
 * more, and a supervisor's `SIGKILL` after its grace period lost the calls still running and
 * their ledger records.
 *
 * @example
 * const drain = new CallDrain();
 * // per call: const slot = drain.add(abort) … drain.delete(slot) when its response closes
 * const closing = app.close(); // stops listening; Fastify answers later requests with `Connection: close`
 * const outcome = await drain.run({ server: app.server, timeoutMs: 25_000 });
 * await closing;
 */
import type { Server } from 'node:http';
import { SeedError } from '../../errors.ts';

/** How often connections whose last response ended are closed during a drain. */
const SWEEP_INTERVAL_MS = 25;

/** How long calls cut at the deadline get to write their error event and be recorded. */
const CUT_GRACE_MS = 1_000;

/** How long a connection with no call on it may stay once the calls are done (a request still arriving, an admin call). */
const LINGER_MS = 1_000;

/** What a drain did, for the log. */
export interface DrainOutcome {
  /** Calls in flight when the drain began. */
  inFlight: number;
  /** Calls still running at the deadline, ended with `shutting_down`. */
  cut: number;
  /** Whether `hurry` cut them before the deadline. */
  hurried: boolean;
  /** How long the drain took. */
  elapsedMs: number;
}

export class CallDrain {
  /**
   * The abort of every call in flight, in a slot of its own until its response closes; slots
   * are reused. Not a Set: a Set of per-call closures cost 12–15% more instructions per call,
   * all of it in the scavenger (bench/instructions.ts), where these slots cost nothing measurable.
   */
  private readonly slots: Array<((reason: SeedError) => void) | null> = [];
  private readonly free: number[] = [];
  private inFlight = 0;
  /** A drain has begun: health checks answer 503. */
  draining = false;
  /** `hurry` was called: the drain cuts what is running now instead of at its deadline. */
  private hurried = false;

  /** A call began; `abort` ends it with a reason if the drain runs out of time. Returns its slot, for `delete`. */
  add(abort: (reason: SeedError) => void): number {
    const slot = this.free.pop() ?? this.slots.length;
    this.slots[slot] = abort;
    this.inFlight += 1;
    return slot;
  }

  /** The call in `slot` ended (its response closed). */
  delete(slot: number): void {
    this.slots[slot] = null;
    this.free.push(slot);
    this.inFlight -= 1;
  }

  get size(): number {
    return this.inFlight;
  }

  /**
   * Ends the wait of a drain under way (or of the next one) now: the calls still running are cut
   * with `shutting_down` at the next sweep, as at the deadline, so their clients are told and
   * each is recorded. For an operator who asked twice.
   */
  hurry(): void {
    this.hurried = true;
  }

  /**
   * Waits until no call is in flight, closing each connection as soon as no request is in flight
   * on it; at `timeoutMs`, aborts the calls still running with `shutting_down` (a stream ends with
   * that error event, an unanswered call gets the 503) and gives them a moment to end. Then a
   * connection still receiving a request, or serving one that is not a call, gets `LINGER_MS` at
   * most before every connection left is closed: a client that dribbles its headers does not hold
   * the shutdown. The server should have stopped listening (`server.close()`, as Fastify's
   * `close` does) or be about to.
   */
  async run(input: { server: Server; timeoutMs: number }): Promise<DrainOutcome> {
    const { server } = input;
    this.draining = true;
    const started = Date.now();
    const inFlightAtStart = this.inFlight;
    server.closeIdleConnections();
    const sweep = setInterval(() => server.closeIdleConnections(), SWEEP_INTERVAL_MS);
    try {
      let cut = 0;
      if (!(await waitUntil(async () => this.inFlight === 0, input.timeoutMs, () => this.hurried))) {
        cut = this.inFlight;
        const reason = new SeedError(
          'shutting_down',
          this.hurried
            ? 'Seed was told to stop at once while this call was running: retry it on another replica.'
            : `Seed is shutting down, and this call was still running when its drain of ${input.timeoutMs} ms ended: retry it on another replica.`,
        );
        for (const abort of this.slots.slice()) abort?.(reason);
        await waitUntil(async () => this.inFlight === 0, CUT_GRACE_MS);
      }
      await waitUntil(async () => (await connectionCount(server)) === 0, LINGER_MS);
      // Whatever is left (a call that did not end, a client still sending its request) goes now.
      server.closeAllConnections();
      return { inFlight: inFlightAtStart, cut, hurried: this.hurried, elapsedMs: Date.now() - started };
    } finally {
      clearInterval(sweep);
    }
  }
}

function connectionCount(server: Server): Promise<number> {
  return new Promise((resolvePromise) => server.getConnections((error, count) => resolvePromise(error ? 0 : count)));
}

/** Polls `done` every sweep interval until it holds (true), or `timeoutMs` passes or `stop` holds (false). */
async function waitUntil(done: () => Promise<boolean>, timeoutMs: number, stop: () => boolean = () => false): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await done()) return true;
    const left = deadline - Date.now();
    if (left <= 0 || stop()) return false;
    await new Promise((resolvePromise) => setTimeout(resolvePromise, Math.min(SWEEP_INTERVAL_MS, left)));
  }
}
