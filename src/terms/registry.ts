/**
 * The terms registry: shipped profiles merged with the operator's `terms:` section, frozen.
 * Loading checks everything at once and reports every problem with its path under `terms`,
 * so the config loader can point at the line in seed.yaml.
 */
import { SeedError } from '../errors.ts';
import { canonicalJson, deepFreeze } from './canonical.ts';
import type { OperatorProfile, ReviewConfirmation } from './config.ts';
import { termsProfileSchema, type TermsProfile, type TermsProfileData } from './schema.ts';
import { loadShippedProfiles } from './shipped.ts';

/** The id of the profile that governs an empty lineage (human-written, no calls). */
export const HUMAN_PROFILE_ID = 'human';

/** One problem in the operator's `terms:` section; `path` is relative to `terms`. */
export interface TermsProblem {
  readonly path: readonly (string | number)[];
  readonly message: string;
}

/** Thrown by {@link loadTermsRegistry} with every problem found. */
export class TermsRegistryError extends Error {
  readonly problems: readonly TermsProblem[];

  constructor(problems: readonly TermsProblem[]) {
    super(
      `terms: ${problems.length} problem${problems.length === 1 ? '' : 's'}\n` +
        problems.map((problem) => `  terms.${problem.path.join('.')}: ${problem.message}`).join('\n'),
    );
    this.name = 'TermsRegistryError';
    this.problems = problems;
  }
}

/** Immutable lookup of terms profiles by id. */
export interface TermsRegistry {
  /** The profile with this id, or undefined. */
  get(id: string): TermsProfile | undefined;
  /** The profile with this id; throws SeedError `not_found` naming the known ids. */
  require(id: string): TermsProfile;
  /** Every profile: shipped ones in file order, then operator additions in config order. */
  list(): readonly TermsProfile[];
  /** The profile of an empty lineage. */
  readonly human: TermsProfile;
  /** Things worth telling the operator that do not stop Seed (e.g. a stale confirmation). */
  readonly warnings: readonly string[];
}

export interface LoadTermsRegistryOptions {
  /** `terms.profiles` from seed.yaml: new profiles, or overrides of shipped ones by id. */
  overrides?: readonly OperatorProfile[];
  /** `terms.confirmed` from seed.yaml. */
  confirmed?: readonly ReviewConfirmation[];
  /** Defaults to the shipped `profiles.yaml`; tests pass their own. */
  shipped?: readonly TermsProfileData[];
}

/**
 * Builds the registry. An override of a shipped id may leave fields out (they come from the
 * shipped profile; each purpose given replaces that purpose whole) but must state a version
 * different from the shipped one whenever it changes anything. A new id needs every field.
 * A confirmation applies only to the version it names; one for an older version is ignored
 * with a warning, because changed terms need a new review.
 *
 * @example
 * ```ts
 * const registry = loadTermsRegistry({ overrides: config.terms.profiles, confirmed: config.terms.confirmed });
 * registry.require('openai').purposes['train-competing'].verdict; // 'notAllowed'
 * ```
 */
export function loadTermsRegistry(options: LoadTermsRegistryOptions = {}): TermsRegistry {
  const { overrides = [], confirmed = [], shipped = loadShippedProfiles() } = options;
  const problems: TermsProblem[] = [];
  const warnings: string[] = [];
  const profiles = new Map<string, { data: TermsProfileData; origin: TermsProfile['origin'] }>();
  for (const data of shipped) profiles.set(data.id, { data, origin: 'shipped' });
  const shippedById = new Map(shipped.map((data) => [data.id, data]));

  const overridden = new Set<string>();
  overrides.forEach((override, index) => {
    if (overridden.has(override.id)) {
      problems.push({ path: ['profiles', index, 'id'], message: `profile "${override.id}" is listed twice` });
      return;
    }
    overridden.add(override.id);
    const base = shippedById.get(override.id);
    const merged = termsProfileSchema.safeParse(base === undefined ? override : mergeOverride({ base, override }));
    if (!merged.success) {
      for (const issue of merged.error.issues) {
        const message = base === undefined ? `${issue.message} (a new profile needs every field)` : issue.message;
        problems.push({ path: ['profiles', index, ...issue.path.map(pathSegment)], message });
      }
      return;
    }
    if (base !== undefined && base.version === merged.data.version && !sameContent(base, merged.data)) {
      problems.push({
        path: ['profiles', index, 'version'],
        message: `changes the shipped profile "${base.id}" but keeps its version "${base.version}"; state a new version`,
      });
      return;
    }
    profiles.set(override.id, { data: merged.data, origin: 'operator' });
  });

  const confirmations = new Map<string, ReviewConfirmation>();
  confirmed.forEach((confirmation, index) => {
    const profile = profiles.get(confirmation.id)?.data;
    if (profile === undefined) {
      problems.push({ path: ['confirmed', index, 'id'], message: `unknown terms profile "${confirmation.id}"` });
    } else if (confirmations.has(confirmation.id)) {
      problems.push({ path: ['confirmed', index, 'id'], message: `"${confirmation.id}" is confirmed twice` });
    } else if (profile.version !== confirmation.version) {
      warnings.push(
        `terms.confirmed[${index}]: confirms "${profile.id}" version "${confirmation.version}", but the profile is ` +
          `now version "${profile.version}"; it stays under review until that version is confirmed`,
      );
    } else {
      if (!profile.review) warnings.push(`terms.confirmed[${index}]: "${profile.id}" is not marked for review`);
      confirmations.set(confirmation.id, confirmation);
    }
  });

  if (problems.length > 0) throw new TermsRegistryError(problems);
  return buildRegistry({ profiles, confirmations, warnings });
}

function buildRegistry({
  profiles,
  confirmations,
  warnings,
}: {
  profiles: ReadonlyMap<string, { data: TermsProfileData; origin: TermsProfile['origin'] }>;
  confirmations: ReadonlyMap<string, ReviewConfirmation>;
  warnings: readonly string[];
}): TermsRegistry {
  const byId = new Map<string, TermsProfile>();
  for (const [id, { data, origin }] of profiles) {
    const confirmation = confirmations.get(id);
    const note = confirmation?.note === undefined ? {} : { note: confirmation.note };
    const record = confirmation === undefined ? null : { by: confirmation.by, at: confirmation.at, ...note };
    byId.set(id, deepFreeze({ ...structuredClone(data), origin, confirmation: record }));
  }
  const human = byId.get(HUMAN_PROFILE_ID);
  if (human === undefined) throw new TermsRegistryError([{ path: ['profiles'], message: 'no "human" profile' }]);
  const all = Object.freeze([...byId.values()]);
  return Object.freeze({
    get: (id: string) => byId.get(id),
    require: (id: string) => {
      const profile = byId.get(id);
      if (profile !== undefined) return profile;
      throw new SeedError('not_found', `unknown terms profile "${id}"; known: ${[...byId.keys()].join(', ')}`);
    },
    list: () => all,
    human,
    warnings: Object.freeze([...warnings]),
  });
}

/** The shipped profile with the operator's fields laid over it; fields left out are kept. */
function mergeOverride({ base, override }: { base: TermsProfileData; override: OperatorProfile }): unknown {
  const { purposes, ...rest } = override;
  const given = Object.fromEntries(Object.entries(rest).filter(([, value]) => value !== undefined));
  const givenPurposes = Object.fromEntries(Object.entries(purposes ?? {}).filter(([, value]) => value !== undefined));
  return { ...base, ...given, purposes: { ...base.purposes, ...givenPurposes } };
}

function sameContent(left: TermsProfileData, right: TermsProfileData): boolean {
  return canonicalJson(left) === canonicalJson(right);
}

function pathSegment(segment: PropertyKey): string | number {
  return typeof segment === 'number' ? segment : String(segment);
}
