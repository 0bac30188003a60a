/**
 * Instants and durations as people type them: ISO dates (`2025-06-01`, `2025-06-01T12:00Z`) or
 * relative amounts (`90s`, `30m`, `24h`, `7d`, `2w`). Used by the usage API, key expiry and the CLI.
 */
import { SeedError } from '../errors.ts';

const UNIT_MS: Readonly<Record<string, number>> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
const RELATIVE = /^(\d{1,6})([smhdw])$/;

/** Milliseconds in a relative amount (`7d` → 604 800 000), or null when `text` is not one. */
export function parseDurationMs(text: string): number | null {
  const match = RELATIVE.exec(text.trim());
  if (!match) return null;
  const [, amount, unit] = match;
  return Number(amount) * (UNIT_MS[unit ?? ''] ?? Number.NaN);
}

/**
 * An instant in epoch ms: a relative amount counts back from `now` (`direction: 'past'`, for
 * `since`) or forward (`'future'`, for expiry); anything else must be an ISO date.
 *
 * @example
 * parseInstant({ text: '7d', now: Date.now(), direction: 'past', param: 'since' });
 */
export function parseInstant({
  text,
  now,
  direction,
  param,
}: {
  text: string;
  now: number;
  direction: 'past' | 'future';
  param: string;
}): number {
  const duration = parseDurationMs(text);
  if (duration !== null) return direction === 'past' ? now - duration : now + duration;
  // Date.parse accepts far more than ISO (e.g. "1"); insist on a leading yyyy-mm-dd.
  const parsed = /^\d{4}-\d{2}-\d{2}/.test(text) ? Date.parse(text) : Number.NaN;
  if (!Number.isFinite(parsed)) {
    throw new SeedError('invalid_request', `'${param}' must be an ISO date (2025-06-01T00:00:00Z) or a relative amount such as 24h or 7d.`, {
      param,
    });
  }
  return parsed;
}
