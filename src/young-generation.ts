/**
 * Keeps V8's young generation committed while the gateway idles.
 *
 * At the end of every scavenge V8 (11.3, Node 20) reads the process's allocation rate over the
 * last ~5 s, measured from one garbage collection to the next; below 1 000 bytes per millisecond
 * it "shrinks" the young generation, which releases the spare semi-space (16 MB with `npm start`'s
 * flags) to the operating system, whatever `--min-semi-space-size` says. An idle gateway allocates
 * ~56 KB a second, so the first scavenge after a quiet spell reads the rate over the whole spell,
 * and so do the next few, until the burst's own allocation outweighs it: each releases the
 * semi-space the next one must map and fault in again (~4 000 page faults a time). In the first
 * second after 60–80 s of idling a gateway served about half the calls a gateway warmed just
 * before it served, and took 12 000–21 000 page faults in that second against ~300
 * (docs/benchmark-log.md, 2026-12-05 (21:21–)).
 *
 * This timer allocates a little short-lived garbage, so that every collection reads a rate above
 * V8's line; with it the first second after 60 s idle served 0.79–1.07× instead of 0.48–0.72×,
 * with no extra page faults. Under load it adds ~1–2% to what the gateway itself allocates; an
 * idle gateway took 10.25 ms of CPU a second with it against 9.67 without (the same section).
 */

/** Elements per array: 32 KB each with 8-byte slots, far below V8's largest regular object (128 KB). */
const ARRAY_LENGTH = 4_096;
const SLOT_BYTES = (process.config.variables as { v8_enable_pointer_compression?: number }).v8_enable_pointer_compression ? 4 : 8;
const ARRAY_BYTES = ARRAY_LENGTH * SLOT_BYTES;

/** `server.keepWarmBytesPerSecond` by default: twice V8's line, whatever the gateway allocates itself. */
export const DEFAULT_KEEP_WARM_BYTES_PER_SECOND = 2 * 1024 * 1024;

/**
 * Where each array goes, so that no compiler can prove it unused and drop the allocation; only
 * one array is reachable at a time, and none after the call, so a scavenge copies nothing of it.
 */
let sink: unknown;

/** Allocates about `bytes` (at least one array) of young arrays that are garbage at once, none written. */
export function allocateShortLived(bytes: number): void {
  const arrays = Math.max(1, Math.round(bytes / ARRAY_BYTES));
  for (let index = 0; index < arrays; index += 1) sink = new Array(ARRAY_LENGTH);
  sink = undefined;
}

export interface YoungGenerationKeepWarm {
  stop(): void;
}

/**
 * Allocates `bytesPerSecond` of short-lived arrays, in ticks every `intervalMs` (250 ms by
 * default: four wake-ups a second, and a tick's allocation stays below V8's smallest semi-space,
 * so no collection reads the rate over an interval without allocation). The timer does not keep
 * the process alive. `bytesPerSecond` 0 starts nothing.
 */
export function keepYoungGenerationWarm(options: { bytesPerSecond: number; intervalMs?: number }): YoungGenerationKeepWarm {
  const intervalMs = options.intervalMs ?? 250;
  if (!Number.isFinite(options.bytesPerSecond) || options.bytesPerSecond < 0) {
    throw new RangeError(`keepYoungGenerationWarm: bytesPerSecond must be a number of bytes ≥ 0, got ${options.bytesPerSecond}`);
  }
  if (!Number.isInteger(intervalMs) || intervalMs < 1) throw new RangeError(`keepYoungGenerationWarm: intervalMs must be a whole number ≥ 1, got ${intervalMs}`);
  if (options.bytesPerSecond === 0) return { stop() {} };
  const bytesPerTick = (options.bytesPerSecond * intervalMs) / 1000;
  const timer = setInterval(() => allocateShortLived(bytesPerTick), intervalMs);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
    },
  };
}
