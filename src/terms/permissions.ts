/**
 * The permission algebra: what one profile allows for a purpose (honouring review), and what a
 * lineage of profiles allows together. Pure functions over frozen values.
 *
 * Effective permissions form a meet-semilattice per purpose: the verdict is the most
 * restrictive one (notAllowed < constrained < allowed), obligations are unioned, and every
 * notAllowed keeps the profiles and clauses that forbid it. `combinePermissions` is therefore
 * commutative, associative and idempotent, and its results are sorted so equal lineages give
 * deep-equal values whatever their order.
 */
import { canonicalJson } from './canonical.ts';
import type { Obligation, TermsProfile } from './schema.ts';
import { PURPOSES, mostRestrictive, type Purpose, type Verdict } from './vocabulary.ts';

/** The verdict that applies to one profile and purpose. */
export interface VerdictResult {
  readonly verdict: Verdict;
  /** Where in the terms the verdict comes from. */
  readonly clause: string;
  readonly obligations: readonly Obligation[];
  readonly reason: string;
  /** True when the declared verdict is held back because the profile awaits review. */
  readonly pendingReview: boolean;
}

/**
 * Purposes a `review: true` profile blocks until an operator confirms it. Training, because
 * that is what unverified terms most often forbid; evaluation too, because judging may count
 * as "developing" or "improving" a model (the Llama 2/3 wording). Serving is never held back.
 */
export const REVIEW_BLOCKED_PURPOSES: readonly Purpose[] = Object.freeze(['evaluate', 'train', 'train-competing']);

/**
 * The verdict a profile gives a purpose. A profile marked `review: true` and not confirmed by
 * the operator is `notAllowed` for {@link REVIEW_BLOCKED_PURPOSES}; otherwise its declared
 * verdict applies.
 *
 * @example
 * ```ts
 * verdictFor({ profile: registry.require('openai'), purpose: 'train-competing' }).clause;
 * // 'Terms of Use 2023 §2(c)(iii)'
 * ```
 */
export function verdictFor({ profile, purpose }: { profile: TermsProfile; purpose: Purpose }): VerdictResult {
  const declared = profile.purposes[purpose];
  const held =
    profile.review &&
    profile.confirmation === null &&
    declared.verdict !== 'notAllowed' &&
    REVIEW_BLOCKED_PURPOSES.includes(purpose);
  if (held) {
    return {
      verdict: 'notAllowed',
      clause: `pending legal review (declared: ${declared.clause})`,
      obligations: [],
      reason:
        `terms profile "${profile.id}" version ${profile.version} is unverified; "${purpose}" stays blocked ` +
        `until an operator confirms it under terms.confirmed in seed.yaml`,
      pendingReview: true,
    };
  }
  return {
    verdict: declared.verdict,
    clause: declared.clause,
    obligations: declared.obligations,
    reason: declared.reason,
    pendingReview: false,
  };
}

/** Whether outputs under this profile may be used for the purpose (allowed, or constrained with obligations). */
export function allows({ profile, purpose }: { profile: TermsProfile; purpose: Purpose }): boolean {
  return isUsable(verdictFor({ profile, purpose }).verdict);
}

/** Whether a verdict permits use: `allowed` or `constrained`. */
export function isUsable(verdict: Verdict): boolean {
  return verdict !== 'notAllowed';
}

/** A clause of one version of one profile. */
export interface ClauseReference {
  readonly profile: string;
  readonly version: string;
  readonly clause: string;
}

/** A profile and clause that forbid a purpose, with the reason, for export reports. */
export interface Responsibility extends ClauseReference {
  readonly reason: string;
}

/** An obligation and the profiles that impose it. */
export interface EffectiveObligation {
  readonly obligation: Obligation;
  readonly imposedBy: readonly ClauseReference[];
}

/** What a lineage allows for one purpose. */
export interface EffectiveVerdict {
  readonly verdict: Verdict;
  /** Obligations to carry; empty when the purpose is not allowed, since there is nothing to carry them on. */
  readonly obligations: readonly EffectiveObligation[];
  /** The profiles and clauses responsible; non-empty exactly when the verdict is `notAllowed`. */
  readonly forbiddenBy: readonly Responsibility[];
}

/** What a lineage allows, purpose by purpose. */
export type EffectivePermissions = Readonly<Record<Purpose, EffectiveVerdict>>;

/** The effective permissions of a single profile. */
export function permissionsOf(profile: TermsProfile): EffectivePermissions {
  return buildPermissions((purpose) => {
    const result = verdictFor({ profile, purpose });
    const reference = { profile: profile.id, version: profile.version, clause: result.clause };
    return {
      verdict: result.verdict,
      obligations: isUsable(result.verdict)
        ? sortedUnique(result.obligations.map((obligation) => ({ obligation, imposedBy: [reference] })))
        : [],
      forbiddenBy: result.verdict === 'notAllowed' ? [{ ...reference, reason: result.reason }] : [],
    };
  });
}

/** The permissions of two lineages joined into one: the intersection of what each allows. */
export function combinePermissions({
  left,
  right,
}: {
  left: EffectivePermissions;
  right: EffectivePermissions;
}): EffectivePermissions {
  return buildPermissions((purpose) => {
    const verdict = mostRestrictive({ left: left[purpose].verdict, right: right[purpose].verdict });
    const obligations = [...left[purpose].obligations, ...right[purpose].obligations];
    return {
      verdict,
      obligations: isUsable(verdict) ? mergeObligations(obligations) : [],
      forbiddenBy: sortedUnique([...left[purpose].forbiddenBy, ...right[purpose].forbiddenBy]),
    };
  });
}

/**
 * What a lineage allows: for each purpose the most restrictive verdict over all its profiles,
 * their obligations unioned, and for a forbidden purpose the profiles and clauses that forbid
 * it. An empty lineage (human-written, no calls) has the permissions of the `human` profile.
 *
 * @example
 * ```ts
 * const profiles = [registry.require('openai'), registry.require('llama-3.1')];
 * const permissions = effectivePermissions({ profiles, human: registry.human });
 * permissions['train-competing'].forbiddenBy;
 * // [{ profile: 'openai', version: '2024-01-31', clause: 'Terms of Use 2023 §2(c)(iii)', reason: … }]
 * ```
 */
export function effectivePermissions({
  profiles,
  human,
}: {
  profiles: readonly TermsProfile[];
  human: TermsProfile;
}): EffectivePermissions {
  const each = (profiles.length === 0 ? [human] : profiles).map(permissionsOf);
  return each.reduce((left, right) => combinePermissions({ left, right }));
}

function buildPermissions(verdictOf: (purpose: Purpose) => EffectiveVerdict): EffectivePermissions {
  return Object.freeze(
    Object.fromEntries(PURPOSES.map((purpose) => [purpose, Object.freeze(verdictOf(purpose))])) as Record<
      Purpose,
      EffectiveVerdict
    >,
  );
}

/** One entry per distinct obligation, with everyone who imposes it. */
function mergeObligations(obligations: readonly EffectiveObligation[]): EffectiveObligation[] {
  const byKey = new Map<string, EffectiveObligation>();
  for (const entry of obligations) {
    const key = canonicalJson(entry.obligation);
    const known = byKey.get(key);
    byKey.set(key, {
      obligation: entry.obligation,
      imposedBy: sortedUnique([...(known?.imposedBy ?? []), ...entry.imposedBy]),
    });
  }
  return sortedUnique([...byKey.values()]);
}

/**
 * Deduplicated by value and sorted, so results do not depend on input order: by profile (or
 * obligation kind) first, for reports a reader can scan, then by value for a total order.
 */
function sortedUnique<T extends { profile: string } | { obligation: Obligation }>(items: readonly T[]): T[] {
  const byKey = new Map(items.map((item) => [canonicalJson(item), item]));
  const orderKey = (item: T, key: string) =>
    `${'profile' in item ? item.profile : item.obligation.kind}\u0000${key}`;
  return [...byKey.entries()]
    .map(([key, item]) => ({ order: orderKey(item, key), item }))
    .sort((left, right) => (left.order < right.order ? -1 : left.order > right.order ? 1 : 0))
    .map(({ item }) => item);
}
