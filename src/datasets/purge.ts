/**
 * Phase-out: remove every sample descended from a source from the latest version of every
 * dataset. Descent is read from each field's stored lineage closure, so a sample derived (at
 * any depth, in any dataset) from a matching call is found without walking a graph.
 */
import type { AuditLog, JsonValue } from '../audit/index.ts';
import { SeedError } from '../errors.ts';
import type { Store } from '../store/index.ts';
import type { TermsRegistry } from '../terms/index.ts';
import { lineageOf, sourceProfile } from './permissions.ts';
import { formatReference } from './reference.ts';
import { listVersions, loadSamples, writeVersion } from './repository.ts';
import { termsSnapshot } from './snapshot.ts';
import type { DatasetVersion, LineageSource } from './types.ts';

/**
 * What to phase out; every criterion given must match. `provider`, `deployment`, `model`,
 * `since` and `until` (epoch ms, on the call's start) select calls; `termsProfile` selects
 * calls and imports under that profile (and, for `human`, human-written data).
 */
export interface PurgeSource {
  readonly provider?: string;
  readonly deployment?: string;
  readonly model?: string;
  readonly termsProfile?: string;
  readonly since?: number;
  readonly until?: number;
}

/** What a purge did to one dataset. */
export interface PurgeOutcome {
  readonly dataset: string;
  readonly from: string;
  /** The new version, or null when nothing in the dataset descended from the source. */
  readonly to: string | null;
  readonly removed: readonly string[];
  readonly kept: number;
}

/** Whether a lineage source is (one of) the purged source(s). */
export function matchesSource({ source, criteria }: { source: LineageSource; criteria: PurgeSource }): boolean {
  const callOnly = criteria.provider ?? criteria.deployment ?? criteria.model ?? criteria.since ?? criteria.until;
  if (callOnly !== undefined && source.kind !== 'call') return false;
  if (criteria.termsProfile !== undefined && sourceProfile(source) !== criteria.termsProfile) return false;
  if (source.kind !== 'call') return true;
  return (
    (criteria.provider === undefined || source.provider === criteria.provider) &&
    (criteria.deployment === undefined || source.deployment === criteria.deployment) &&
    (criteria.model === undefined || source.model === criteria.model) &&
    (criteria.since === undefined || source.startedAt >= criteria.since) &&
    (criteria.until === undefined || source.startedAt < criteria.until)
  );
}

export async function purge({
  context,
  criteria,
  actor,
}: {
  context: { store: Pick<Store, 'db'>; audit: AuditLog; registry: TermsRegistry; now: () => number };
  criteria: PurgeSource;
  actor: string;
}): Promise<PurgeOutcome[]> {
  const given = Object.fromEntries(Object.entries(criteria).filter(([, value]) => value !== undefined)) as { [key: string]: JsonValue };
  if (Object.keys(given).length === 0) {
    throw new SeedError('invalid_request', 'purge needs a source: provider, deployment, model, termsProfile, since or until');
  }
  const latest = new Map<string, DatasetVersion>();
  for (const version of await listVersions({ db: context.store.db })) latest.set(version.name, version);
  const outcomes: PurgeOutcome[] = [];
  for (const version of latest.values()) {
    const samples = await loadSamples({ db: context.store.db, name: version.name, version: version.version });
    const descends = (sample: (typeof samples)[number]) => lineageOf({ record: sample.record }).some((source) => matchesSource({ source, criteria }));
    const removed = samples.filter(descends).map((sample) => sample.record.id);
    const kept = samples.filter((sample) => !descends(sample));
    if (removed.length === 0) {
      outcomes.push({ dataset: version.name, from: formatReference(version), to: null, removed, kept: kept.length });
      continue;
    }
    const { version: written } = await writeVersion({
      audit: context.audit,
      version: {
        name: version.name,
        samples: kept,
        source: { kind: 'purge', from: version.version, criteria: given },
        terms: termsSnapshot({ samples: kept, registry: context.registry }),
        parentVersion: version.version,
        actor,
        now: context.now(),
        also: (number) => [
          {
            actor,
            action: 'dataset.purged',
            subject: formatReference({ name: version.name, version: number }),
            details: { criteria: given, from: formatReference(version), removed: [...removed], kept: kept.length },
          },
        ],
      },
    });
    outcomes.push({ dataset: version.name, from: formatReference(version), to: formatReference(written), removed, kept: kept.length });
  }
  return outcomes;
}
