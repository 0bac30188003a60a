/**
 * The calls `bench/redis-instructions.ts` makes of the Redis limit store, by how much a turn's
 * calls share their buckets (`bench/lib/redis-limits-driver.ts` drives them).
 */
import type * as BucketsModule from '../../src/limits/buckets.ts';
import type { Bucket } from '../../src/limits/types.ts';

export type DriverMode = 'shared' | 'mixed' | 'none';
export const DRIVER_MODES: readonly DriverMode[] = ['shared', 'mixed', 'none'];

/**
 * The caller and deployment parts of a turn's ten calls, with limits that admit every call: in
 * `shared`, one tenant's key, team and org and one deployment (the benchmark's traffic); in
 * `mixed`, ten keys of one team and org on one deployment; in `none`, ten tenants, each with its
 * own key, team, org and deployment. Each scope's buckets are one frozen array, as the limiter
 * keeps them.
 */
export function callParts(
  mode: DriverMode,
  bucketsOf: typeof BucketsModule.bucketsFor,
): Array<readonly [caller: readonly Bucket[], deployment: readonly Bucket[]]> {
  const scopeBuckets = new Map<string, readonly Bucket[]>();
  const scope = (owner: 'key' | 'team' | 'org' | 'deployment', id: string): readonly Bucket[] => {
    const name = `${owner}:${id}`;
    let buckets = scopeBuckets.get(name);
    if (buckets === undefined) {
      const limits = owner === 'deployment' ? { rpm: 1e9, tpm: 1e12 } : { rpm: 1e9, tpm: 1e12, usdPerDay: 1e9 };
      buckets = Object.freeze(bucketsOf({ scope: { owner, id, limits }, windowMs: 60_000 }));
      scopeBuckets.set(name, buckets);
    }
    return buckets;
  };
  const callers = new Map<string, readonly Bucket[]>();
  return Array.from({ length: 10 }, (_, call) => {
    const tenant = mode === 'none' ? `t${call}` : 't0';
    const key = mode === 'shared' ? 'k0' : `k${call}`;
    const callerName = `${key}/${tenant}`;
    let caller = callers.get(callerName);
    if (caller === undefined) {
      caller = Object.freeze([...scope('key', key), ...scope('team', tenant), ...scope('org', tenant)]);
      callers.set(callerName, caller);
    }
    return [caller, scope('deployment', tenant)] as const;
  });
}
