/** Time arguments of the CLI: `7d`, `12h`, `30m`, `45s`, or an ISO date/time. */
import { InvalidArgumentError } from 'commander';

const UNIT_MS: Readonly<Record<string, number>> = Object.freeze({ s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 });

/**
 * A point in time: a duration means that long before `now`.
 *
 * @example
 * ```ts
 * parseTimeArgument({ value: '7d', now: Date.now() }); // a week ago, in epoch ms
 * parseTimeArgument({ value: '2025-06-01', now: Date.now() }); // 1748736000000
 * ```
 */
export function parseTimeArgument({ value, now }: { value: string; now: number }): number {
  const relative = /^(\d+)([smhdw])$/.exec(value.trim());
  if (relative !== null) return now - Number(relative[1]) * (UNIT_MS[relative[2] ?? ''] ?? 0);
  const absolute = Date.parse(value);
  if (/^\d{4}-\d{2}-\d{2}/.test(value) && Number.isFinite(absolute)) return absolute;
  throw new InvalidArgumentError(`expected a duration like 7d, 12h, 30m or an ISO date, got "${value}"`);
}
