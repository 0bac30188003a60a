/**
 * What a sample's lineage allows, using the terms algebra: every profile in the lineage of
 * the fields in question, combined by `effectivePermissions`. Pure.
 *
 * Profiles are evaluated as the registry holds them now (the current version), not as they
 * were when the output was made: terms changes are re-checked (`recheckTerms`), and an export
 * must follow the terms in force. A profile missing from the registry forbids every purpose.
 */
import {
  effectivePermissions,
  HUMAN_PROFILE_ID,
  type EffectivePermissions,
  type Purpose,
  type Responsibility,
  type TermsProfile,
  type TermsRegistry,
} from '../terms/index.ts';
import { PURPOSES } from '../terms/vocabulary.ts';
import type { LineageSource, SampleRecord, StoredSample } from './types.ts';
import { sortedUnique } from './sample.ts';

/** The profile id that governs a lineage source. */
export function sourceProfile(source: LineageSource): string {
  return source.kind === 'human' ? HUMAN_PROFILE_ID : source.termsProfile;
}

/** Every source in the lineage of the given fields (all fields when `fields` is absent). */
export function lineageOf({ record, fields }: { record: SampleRecord; fields?: readonly string[] }): LineageSource[] {
  const names = fields ?? Object.keys(record.provenance);
  return sortedUnique(names.flatMap((name) => record.provenance[name]?.lineage ?? []));
}

/** The registry's profile, or one that forbids everything when the id is unknown (fail closed). */
export function profileFor({ registry, id }: { registry: TermsRegistry; id: string }): TermsProfile {
  return registry.get(id) ?? unknownProfile(id);
}

/**
 * Effective permissions of a sample, or of some of its fields.
 *
 * @example
 * ```ts
 * samplePermissions({ record, fields: ['text'], registry })['train-competing'].verdict; // 'allowed'
 * samplePermissions({ record, fields: ['label'], registry })['train-competing'].forbiddenBy[0]?.profile; // 'openai'
 * ```
 */
export function samplePermissions({
  record,
  fields,
  registry,
}: {
  record: SampleRecord;
  fields?: readonly string[];
  registry: TermsRegistry;
}): EffectivePermissions {
  const ids = [...new Set(lineageOf({ record, ...(fields === undefined ? {} : { fields }) }).map(sourceProfile))].sort();
  return effectivePermissions({ profiles: ids.map((id) => profileFor({ registry, id })), human: registry.human });
}

/** A sample that may not be used for a purpose, and why. */
export interface Violation {
  readonly sampleId: string;
  readonly sampleHash: string;
  readonly forbiddenBy: readonly Responsibility[];
}

/** Why an export was refused: counts by profile and clause, and the samples. */
export interface RefusalReport {
  readonly purpose: Purpose;
  readonly total: number;
  readonly violating: number;
  readonly byClause: readonly { profile: string; version: string; clause: string; reason: string; samples: number }[];
  readonly sampleIds: readonly string[];
}

/** Splits samples into those the purpose allows and the violations, for the fields each uses. */
export function partitionByPurpose({
  samples,
  purpose,
  registry,
  fieldsOf,
}: {
  samples: readonly StoredSample[];
  purpose: Purpose;
  registry: TermsRegistry;
  /** The fields whose lineage counts for a sample; all of them when this returns undefined. */
  fieldsOf?: (sample: StoredSample) => readonly string[] | undefined;
}): { allowed: StoredSample[]; violations: Violation[] } {
  const allowed: StoredSample[] = [];
  const violations: Violation[] = [];
  for (const sample of samples) {
    const fields = fieldsOf?.(sample);
    const verdict = samplePermissions({ record: sample.record, registry, ...(fields === undefined ? {} : { fields }) })[purpose];
    if (verdict.verdict === 'notAllowed') {
      violations.push({ sampleId: sample.record.id, sampleHash: sample.hash, forbiddenBy: verdict.forbiddenBy });
    } else allowed.push(sample);
  }
  return { allowed, violations };
}

/** The report a refused export shows. */
export function refusalReport({
  purpose,
  total,
  violations,
}: {
  purpose: Purpose;
  total: number;
  violations: readonly Violation[];
}): RefusalReport {
  const byKey = new Map<string, RefusalReport['byClause'][number]>();
  for (const violation of violations) {
    for (const responsibility of violation.forbiddenBy) {
      const key = `${responsibility.profile}\u0000${responsibility.version}\u0000${responsibility.clause}`;
      const known = byKey.get(key);
      byKey.set(key, { ...responsibility, samples: (known?.samples ?? 0) + 1 });
    }
  }
  return {
    purpose,
    total,
    violating: violations.length,
    byClause: [...byKey.values()].sort((left, right) => right.samples - left.samples || left.profile.localeCompare(right.profile)),
    sampleIds: violations.map((violation) => violation.sampleId).sort(),
  };
}

/** Usable and forbidden counts per purpose, for a version's terms snapshot. */
export function statusByPurpose({
  samples,
  registry,
}: {
  samples: readonly StoredSample[];
  registry: TermsRegistry;
}): Record<Purpose, { usable: number; forbidden: number }> {
  const permissions = samples.map((sample) => samplePermissions({ record: sample.record, registry }));
  return Object.fromEntries(
    PURPOSES.map((purpose) => {
      const forbidden = permissions.filter((each) => each[purpose].verdict === 'notAllowed').length;
      return [purpose, { usable: permissions.length - forbidden, forbidden }];
    }),
  ) as Record<Purpose, { usable: number; forbidden: number }>;
}

function unknownProfile(id: string): TermsProfile {
  const verdict: TermsProfile['purposes']['serve'] = {
    verdict: 'notAllowed',
    clause: 'profile not in the terms registry',
    reason: `terms profile "${id}" is not known to this Seed; add it under terms.profiles in seed.yaml`,
    obligations: [],
  };
  return Object.freeze({
    id,
    version: 'unknown',
    title: `unknown profile ${id}`,
    source: 'none',
    date: null,
    quote: { kind: 'paraphrase' as const, text: 'unknown' },
    review: false,
    purposes: { serve: verdict, evaluate: verdict, train: verdict, 'train-competing': verdict },
    origin: 'operator' as const,
    confirmation: null,
  });
}
