/**
 * The abort signal of one call: what the call path (router, limiter, adapters, undici) asks of
 * a signal, and a cheap one for the HTTP layer to make per request.
 *
 * Why not `AbortController`: in Node 20 the first read of `controller.signal` creates the
 * `AbortSignal` at about 2.2 µs, and adding and removing a listener on it about 1.7 µs more
 * (measured on this project's 2-core machine), several times what the rest of the router costs
 * per call; and every call needs one. Everything Seed does with a call's signal is read
 * `aborted` and `reason` and add or remove an `abort` listener, which `CallAbort` does with a
 * field and a small array. undici takes any signal with `addEventListener` (it checks for the
 * method, not the class), and a real `AbortSignal` still satisfies `CallSignal`, so jobs and
 * tests may pass their own.
 */

/** What Seed's call path reads of an abort signal. `AbortSignal` satisfies it. */
export interface CallSignal {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/**
 * A call's signal and the means to abort it. Listeners run once, in the order they were added,
 * at the first `abort`; one added after that never runs (as with `AbortSignal`).
 *
 * @example
 * const call = new CallAbort();
 * call.addEventListener('abort', () => console.log('stopped:', call.reason));
 * call.abort(new SeedError('client_closed_request', 'The client closed the request.'));
 */
export class CallAbort implements CallSignal {
  aborted = false;
  reason: unknown = undefined;
  #listeners: Array<() => void> | null = null;

  /** `options` is accepted for AbortSignal's callers; every listener runs once anyway. */
  addEventListener(type: 'abort', listener: () => void, _options?: { once?: boolean }): void {
    if (type !== 'abort' || this.aborted) return;
    (this.#listeners ??= []).push(listener);
  }

  removeEventListener(type: 'abort', listener: () => void): void {
    const listeners = this.#listeners;
    if (type !== 'abort' || listeners === null) return;
    const index = listeners.indexOf(listener);
    if (index !== -1) listeners.splice(index, 1);
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listeners = this.#listeners;
    this.#listeners = null;
    if (listeners === null) return;
    for (const listener of listeners) {
      try {
        listener();
      } catch (error) {
        // As an EventTarget does: the other listeners still run, and the error is not lost.
        process.nextTick(() => {
          throw error;
        });
      }
    }
  }
}
