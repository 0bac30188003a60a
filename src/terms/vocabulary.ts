/**
 * The words of the terms registry: purposes and verdicts. Kept in a file with no imports so
 * every other terms module can depend on it without import cycles.
 */

/**
 * What a caller will do with an output.
 *
 * - `serve`: show or return it to a user.
 * - `evaluate`: use it to score, judge or compare models (including model-as-judge).
 * - `train`: train or improve any model with it.
 * - `train-competing`: train a model that competes with the output's provider.
 */
export const PURPOSES = Object.freeze(['serve', 'evaluate', 'train', 'train-competing'] as const);

/** One of {@link PURPOSES}. */
export type Purpose = (typeof PURPOSES)[number];

/**
 * A C2PA-like verdict for one purpose. `constrained` means allowed, with obligations that an
 * output (and anything derived from it) must carry.
 */
export const VERDICTS = Object.freeze(['notAllowed', 'constrained', 'allowed'] as const);

/** One of {@link VERDICTS}. */
export type Verdict = (typeof VERDICTS)[number];

/** Rank of a verdict: lower is more restrictive (`notAllowed` < `constrained` < `allowed`). */
export function verdictRank(verdict: Verdict): number {
  return VERDICTS.indexOf(verdict);
}

/** The more restrictive of two verdicts. */
export function mostRestrictive({ left, right }: { left: Verdict; right: Verdict }): Verdict {
  return verdictRank(left) <= verdictRank(right) ? left : right;
}

/** Whether a string is one of {@link PURPOSES}. */
export function isPurpose(value: string): value is Purpose {
  return (PURPOSES as readonly string[]).includes(value);
}
