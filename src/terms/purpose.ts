/**
 * The purpose a caller declares for a request (header `x-seed-purpose`, default `serve`), and
 * the message the router gives when no deployment's terms allow it.
 */
import { SeedError } from '../errors.ts';
import { verdictFor } from './permissions.ts';
import type { TermsProfile } from './schema.ts';
import { PURPOSES, isPurpose, type Purpose } from './vocabulary.ts';

export { PURPOSES, isPurpose, type Purpose } from './vocabulary.ts';

/** The request header that declares a purpose. */
export const PURPOSE_HEADER = 'x-seed-purpose';

/** The purpose of a request that declares none. */
export const DEFAULT_PURPOSE: Purpose = 'serve';

/**
 * Reads the `x-seed-purpose` header: case-insensitive, trimmed, `serve` when absent. A value
 * that is present but empty, repeated or unknown is an error rather than a silent `serve`,
 * because a caller who meant to train would otherwise create data it cannot use.
 *
 * @example
 * ```ts
 * parsePurpose(request.headers['x-seed-purpose']); // 'serve' when absent
 * parsePurpose(' Train '); // 'train'
 * ```
 * @throws SeedError `invalid_request` with `param: 'x-seed-purpose'`.
 */
export function parsePurpose(value: string | readonly string[] | undefined): Purpose {
  if (value === undefined) return DEFAULT_PURPOSE;
  if (typeof value !== 'string') {
    const [only] = value;
    if (value.length === 1 && only !== undefined) return parsePurpose(only);
    if (value.length === 0) return DEFAULT_PURPOSE;
    throw invalidPurpose(`${PURPOSE_HEADER} was sent ${value.length} times; send it once`);
  }
  const normalized = value.trim().toLowerCase();
  if (isPurpose(normalized)) return normalized;
  const got = normalized === '' ? 'an empty value' : JSON.stringify(value.trim());
  throw invalidPurpose(`${PURPOSE_HEADER} must be one of ${PURPOSES.join(', ')}; got ${got}`);
}

function invalidPurpose(message: string): SeedError {
  return new SeedError('invalid_request', message, { param: PURPOSE_HEADER });
}

/** A deployment the router considered, with the terms profile that governs its outputs. */
export interface RefusalCandidate {
  readonly deployment: string;
  readonly profile: TermsProfile;
}

/**
 * The message for `purpose_not_allowed`: names the route, the purpose, and for each candidate
 * deployment that forbids the purpose its profile, version and clause.
 *
 * @example
 * ```ts
 * explainRefusal({ route: 'chat', purpose: 'train-competing', candidates: [{ deployment: 'gpt-4o', profile: openai }] });
 * // 'No deployment of route "chat" may be used for purpose "train-competing": deployment "gpt-4o"
 * //  (terms openai, version 2024-01-31) is notAllowed by Terms of Use 2023 §2(c)(iii): …'
 * ```
 */
export function explainRefusal({
  route,
  purpose,
  candidates,
}: {
  route: string;
  purpose: Purpose;
  candidates: readonly RefusalCandidate[];
}): string {
  const refusals = candidates.flatMap(({ deployment, profile }) => {
    const result = verdictFor({ profile, purpose });
    if (result.verdict !== 'notAllowed') return [];
    return [
      `deployment "${deployment}" (terms ${profile.id}, version ${profile.version}) is notAllowed by ` +
        `${result.clause}: ${result.reason}`,
    ];
  });
  const head = `No deployment of route "${route}" may be used for purpose "${purpose}"`;
  if (refusals.length === 0) return `${head}: the route has no deployment to check.`;
  return (
    `${head}: ${refusals.join('; ')}. Declare the purpose you need in ${PURPOSE_HEADER}, or use a route ` +
    `whose deployments' terms allow "${purpose}".`
  );
}

/** The `purpose_not_allowed` (403) error for a route, with {@link explainRefusal}'s message. */
export function purposeNotAllowedError(options: {
  route: string;
  purpose: Purpose;
  candidates: readonly RefusalCandidate[];
}): SeedError {
  return new SeedError('purpose_not_allowed', explainRefusal(options), { param: PURPOSE_HEADER });
}
