/** Exponential backoff with full jitter, so replicas that lost the same database do not retry in step. */
export class Backoff {
  readonly #initialMs: number;
  readonly #maxMs: number;
  #attempt = 0;

  constructor({ initialMs, maxMs }: { initialMs: number; maxMs: number }) {
    this.#initialMs = initialMs;
    this.#maxMs = maxMs;
  }

  /** The wait before the next attempt: random in [ceiling/2, ceiling], the ceiling doubling per attempt. */
  next(): number {
    const ceiling = Math.min(this.#maxMs, this.#initialMs * 2 ** this.#attempt);
    this.#attempt += 1;
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  reset(): void {
    this.#attempt = 0;
  }
}
