/**
 * Usage reports as people ask for them (`group_by=team,route`, `since=7d`), turned into the
 * store's `UsageQuery`; shared by `GET /v1/seed/usage` and `seed usage`.
 */
import { SeedError } from '../errors.ts';
import { USAGE_DIMENSIONS, type UsageDimension, type UsageRow } from '../store/index.ts';
import { parseInstant } from './time.ts';

/** What a report covers when `since` is not given. */
export const DEFAULT_USAGE_SINCE = '7d';

/** `team,route` → `['team', 'route']`; a repeated dimension counts once; unknown ones are a 400 naming `param`. */
export function parseGroupBy({ text, param }: { text: string | undefined; param: string }): UsageDimension[] {
  if (text === undefined || text.trim() === '') return [];
  const dimensions = text.split(',').map((part) => {
    const dimension = part.trim();
    const known = USAGE_DIMENSIONS.find((candidate) => candidate === dimension);
    if (!known) {
      throw new SeedError('invalid_request', `Invalid value for '${param}': "${dimension}"; expected any of ${USAGE_DIMENSIONS.join(', ')}.`, { param });
    }
    return known;
  });
  return [...new Set(dimensions)];
}

/** `[since, until)` in epoch ms from ISO dates or relative amounts (`7d` = seven days ago). */
export function usageWindow({ since, until, now }: { since: string | undefined; until: string | undefined; now: number }): { since: number; until: number } {
  const window = {
    since: parseInstant({ text: since ?? DEFAULT_USAGE_SINCE, now, direction: 'past', param: 'since' }),
    until: until === undefined ? now + 1 : parseInstant({ text: until, now, direction: 'past', param: 'until' }),
  };
  if (window.since > window.until) throw new SeedError('invalid_request', "'since' must not be after 'until'.", { param: 'since' });
  return window;
}

/** A usage row for people: `day` as `YYYY-MM-DD` (UTC) instead of epoch ms. */
export function usageRowView(row: UsageRow): Record<string, unknown> {
  const { day, ...rest } = row;
  return day === undefined ? rest : { day: new Date(day).toISOString().slice(0, 10), ...rest };
}
