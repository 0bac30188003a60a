/**
 * Terms re-check: when the registry holds a different version of a profile than a dataset
 * version's lineage last recorded, re-evaluate that version and report the purposes whose
 * status changed. Versions stay immutable; the new evaluation is appended to
 * `dataset_terms_checks`, and one `terms.changed` entry records the whole re-check.
 */
import type { AuditLog, JsonValue } from '../audit/index.ts';
import type { Store } from '../store/index.ts';
import type { TermsRegistry } from '../terms/index.ts';
import { PURPOSES, type Purpose } from '../terms/vocabulary.ts';
import { profileFor } from './permissions.ts';
import { formatReference } from './reference.ts';
import { currentTerms, listVersions, loadSamples } from './repository.ts';
import { termsSnapshot } from './snapshot.ts';
import { datasetTables } from './tables.ts';
import type { PurposeStatus, TermsSnapshot } from './types.ts';

export interface ProfileChange {
  readonly profile: string;
  readonly from: string;
  readonly to: string;
}

/** A dataset version whose export status changed for at least one purpose. */
export interface StatusChange {
  readonly dataset: string;
  readonly profiles: readonly ProfileChange[];
  readonly purposes: readonly { purpose: Purpose; before: PurposeStatus; after: PurposeStatus; exportableBefore: boolean; exportableAfter: boolean }[];
}

export interface RecheckResult {
  /** Profiles whose version differs from what some dataset version recorded. */
  readonly changedProfiles: readonly ProfileChange[];
  /** How many dataset versions were re-evaluated. */
  readonly rechecked: number;
  readonly changed: readonly StatusChange[];
}

export async function recheckTerms({
  context,
  registry,
  actor,
}: {
  context: { store: Pick<Store, 'db'>; audit: AuditLog; now: () => number };
  registry: TermsRegistry;
  actor: string;
}): Promise<RecheckResult> {
  const { db } = context.store;
  const pending: { dataset: string; name: string; version: number; snapshot: TermsSnapshot; profiles: ProfileChange[]; before: TermsSnapshot }[] = [];
  for (const version of await listVersions({ db })) {
    const before = await currentTerms({ db, version });
    const profiles = Object.entries(before.profiles)
      .map(([profile, from]) => ({ profile, from, to: profileFor({ registry, id: profile }).version }))
      .filter((change) => change.from !== change.to);
    if (profiles.length === 0) continue;
    const samples = await loadSamples({ db, name: version.name, version: version.version });
    pending.push({ dataset: formatReference(version), name: version.name, version: version.version, snapshot: termsSnapshot({ samples, registry }), profiles, before });
  }
  const changed: StatusChange[] = pending.flatMap(({ dataset, profiles, before, snapshot }) => {
    const purposes = PURPOSES.flatMap((purpose) => {
      const previous = before.status[purpose] ?? { usable: 0, forbidden: 0 };
      const next = snapshot.status[purpose] ?? { usable: 0, forbidden: 0 };
      if (previous.usable === next.usable && previous.forbidden === next.forbidden) return [];
      return [{ purpose, before: previous, after: next, exportableBefore: previous.forbidden === 0, exportableAfter: next.forbidden === 0 }];
    });
    return purposes.length === 0 ? [] : [{ dataset, profiles, purposes }];
  });
  const byProfile = new Map(pending.flatMap((each) => each.profiles).map((change) => [`${change.profile}\u0000${change.from}`, change]));
  const changedProfiles = [...byProfile.values()].sort((left, right) => left.profile.localeCompare(right.profile) || left.from.localeCompare(right.from));
  if (pending.length > 0) {
    await context.audit.transact(async ({ db: transaction, append }) => {
      const at = context.now();
      await datasetTables(transaction)
        .insertInto('dataset_terms_checks')
        .values(pending.map((each) => ({ name: each.name, version: each.version, checked_at: at, terms: JSON.stringify(each.snapshot) })))
        .execute();
      await append({
        actor,
        action: 'terms.changed',
        subject: [...new Set(changedProfiles.map((change) => change.profile))].join(','),
        details: {
          profiles: changedProfiles.map((change) => ({ ...change })),
          rechecked: pending.map((each) => each.dataset),
          changed: changed.map((change) => ({ dataset: change.dataset, purposes: change.purposes.map((each) => ({ ...each, before: { ...each.before }, after: { ...each.after } })) })) as JsonValue,
        },
      });
    });
  }
  return { changedProfiles, rechecked: pending.length, changed };
}
