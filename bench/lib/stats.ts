/** Small statistics helpers for the benchmark: percentiles over raw samples and medians of rounds. */

/** The `fraction` percentile (0–1) of `values` by nearest rank; NaN when there are none. */
export function percentile(values: readonly number[], fraction: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((left, right) => left - right);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1));
  return sorted[rank] ?? Number.NaN;
}

/** The median of finite values; NaN when there are none. */
export function median(values: readonly number[]): number {
  const finite = values.filter((value) => Number.isFinite(value));
  if (finite.length === 0) return Number.NaN;
  const sorted = [...finite].sort((left, right) => left - right);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] ?? Number.NaN) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

/** The median and quartiles of per-pair values: how every paired measurement of the benchmark reports its spread. */
export interface Quartiles {
  median: number;
  lowerQuartile: number;
  upperQuartile: number;
  /**
   * The 95% interval of the median (`medianInterval`): what a difference must clear to be told
   * from none. Absent with fewer than 6 values, and in runs saved before it was kept.
   */
  interval?: MedianInterval;
}

export function quartiles(values: readonly number[]): Quartiles {
  const spread: Quartiles = { median: median(values), lowerQuartile: percentile(values, 0.25), upperQuartile: percentile(values, 0.75) };
  const interval = medianInterval(values);
  if (interval !== undefined) spread.interval = interval;
  return spread;
}

/**
 * The range a paired measurement is judged by: the 95% interval of its median where it was kept,
 * else (runs saved before) its quartiles.
 */
export function judgedRange(spread: Pick<Quartiles, 'lowerQuartile' | 'upperQuartile' | 'interval'>): { lower: number; upper: number } {
  return { lower: spread.interval?.lower ?? spread.lowerQuartile, upper: spread.interval?.upper ?? spread.upperQuartile };
}

/** Whether `judgedRange` leaves `value` out: the measurement is told from it. */
export function toldFrom(spread: Pick<Quartiles, 'lowerQuartile' | 'upperQuartile' | 'interval'>, value: number): boolean {
  const { lower, upper } = judgedRange(spread);
  return lower > value || upper < value;
}

/** Formats a number for the tables: `—` for NaN, fixed decimals otherwise. */
export function format(value: number, decimals = 0): string {
  if (!Number.isFinite(value)) return '—';
  return value.toFixed(decimals);
}

/** A range that holds the median of what was sampled with the stated probability, at the least. */
export interface MedianInterval {
  lower: number;
  upper: number;
  /** The interval's exact coverage (at least the confidence asked for). */
  coverage: number;
}

/**
 * A distribution-free confidence interval for the median of what `values` sample, from their
 * order statistics: the k-th smallest and the k-th largest value, for the largest k with
 * P(Binomial(n, ½) < k) ≤ (1 − confidence) / 2, so that the interval covers the median with at
 * least `confidence`. It assumes nothing of the values' distribution (paired ratios of a shared
 * machine are skewed and heavy-tailed), only that they are independent draws of it; undefined
 * when there are too few for any k (fewer than 6 at 95%). For 20 values at 95%: the 6th and the
 * 15th smallest (coverage 95.9%).
 */
export function medianInterval(values: readonly number[], confidence = 0.95): MedianInterval | undefined {
  const sorted = values.filter((value) => Number.isFinite(value)).sort((left, right) => left - right);
  const count = sorted.length;
  const tail = (1 - confidence) / 2;
  // P(B ≤ index) for B ~ Binomial(count, ½), summed in log space (½^count underflows past ~1 000):
  // the order k is the last index + 1 whose sum stays within the tail, `outside` that sum.
  let logChoose = 0;
  let atMost = 0;
  let order = 0;
  let outside = 0;
  for (let index = 0; index < count; index += 1) {
    if (index > 0) logChoose += Math.log(count - index + 1) - Math.log(index);
    atMost += Math.exp(logChoose - count * Math.LN2);
    if (atMost > tail) break;
    order = index + 1;
    outside = atMost;
  }
  if (order === 0) return undefined;
  return { lower: sorted[order - 1] as number, upper: sorted[count - order] as number, coverage: 1 - 2 * outside };
}
