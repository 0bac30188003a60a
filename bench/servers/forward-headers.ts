/** What the bench's proxies forward of a message's headers: all but the hop-by-hop ones. */
import type { IncomingHttpHeaders } from 'node:http';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'host', 'upgrade', 'proxy-connection', 'te', 'trailer']);
/** A shared default: a baseline proxy must not allocate more per call than it needs. */
const NOTHING_MORE: ReadonlySet<string> = new Set();

/**
 * The headers to pass on. `alsoDrop` names more to leave out, e.g. `content-length` for a body
 * the proxy sends again itself.
 */
export function forwardable(
  headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>,
  alsoDrop: ReadonlySet<string> = NOTHING_MORE,
): Record<string, string | string[]> {
  const result: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name) && !alsoDrop.has(name)) result[name] = value;
  }
  return result;
}
