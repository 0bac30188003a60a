/** The terms snapshot a version records: each referenced profile's version now, and per-purpose status. Pure. */
import type { TermsRegistry } from '../terms/index.ts';
import { lineageOf, profileFor, sourceProfile, statusByPurpose } from './permissions.ts';
import type { StoredSample, TermsSnapshot } from './types.ts';

/**
 * @example
 * ```ts
 * termsSnapshot({ samples, registry }); // { profiles: { openai: '2024-01-31' }, status: { 'train-competing': { usable: 0, forbidden: 12 }, … } }
 * ```
 */
export function termsSnapshot({ samples, registry }: { samples: readonly StoredSample[]; registry: TermsRegistry }): TermsSnapshot {
  const ids = [...new Set(samples.flatMap((sample) => lineageOf({ record: sample.record }).map(sourceProfile)))].sort();
  return {
    profiles: Object.fromEntries(ids.map((id) => [id, profileFor({ registry, id }).version])),
    status: statusByPurpose({ samples, registry }),
  };
}
