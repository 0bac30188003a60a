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
}

export function quartiles(values: readonly number[]): Quartiles {
  return { median: median(values), lowerQuartile: percentile(values, 0.25), upperQuartile: percentile(values, 0.75) };
}

/** Formats a number for the tables: `—` for NaN, fixed decimals otherwise. */
export function format(value: number, decimals = 0): string {
  if (!Number.isFinite(value)) return '—';
  return value.toFixed(decimals);
}
