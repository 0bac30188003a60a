/**
 * fast-check parameters every property in the suite takes, so that one variable explores them
 * all: a fixed seed, so a failure reproduces, and bounded runs, so `npm test` stays bounded.
 * `FUZZ_SEED=<n>` draws other inputs; `FUZZ_RUNS_SCALE` (a positive number, default 1) multiplies
 * every count for a longer exploration. A failure prints its seed and counterexample.
 */

/** fast-check seed: fixed so a failure reproduces; `FUZZ_SEED` overrides it for exploration. */
export const FUZZ_SEED = readSeed(process.env.FUZZ_SEED);

/** fast-check parameters for a property of `numRuns` runs (scaled by `FUZZ_RUNS_SCALE`). */
export function fuzzRuns(numRuns: number): { numRuns: number; seed: number } {
  const text = process.env.FUZZ_RUNS_SCALE ?? '1';
  const scale = Number(text);
  if (!Number.isFinite(scale) || scale <= 0) throw new Error(`FUZZ_RUNS_SCALE: expected a positive number, got ${text}`);
  return { numRuns: Math.max(1, Math.round(numRuns * scale)), seed: FUZZ_SEED };
}

function readSeed(text: string | undefined): number {
  if (text === undefined || text === '') return 20_260_501;
  const seed = Number(text);
  // Passed as given, so the seed a failure prints is the one to set again.
  if (!Number.isSafeInteger(seed)) throw new Error(`FUZZ_SEED: expected an integer, got ${text}`);
  return seed;
}
