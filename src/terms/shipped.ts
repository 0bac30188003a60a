/**
 * Seed's default terms profiles, read from `profiles.yaml` next to this file. Data, not code:
 * changing a shipped profile is an edit to that file (with a new version).
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { profilesFileSchema, type TermsProfileData } from './schema.ts';
import { deepFreeze } from './canonical.ts';

/** Location of the shipped profiles file. */
export const SHIPPED_PROFILES_URL = new URL('./profiles.yaml', import.meta.url);

let cached: readonly TermsProfileData[] | undefined;

/**
 * The shipped profiles, validated and frozen. Read once per process; a broken file is a bug in
 * Seed, so it throws with every problem listed rather than starting with partial terms.
 */
export function loadShippedProfiles(): readonly TermsProfileData[] {
  if (cached === undefined) {
    cached = parseProfilesFile({
      text: readFileSync(SHIPPED_PROFILES_URL, 'utf8'),
      name: SHIPPED_PROFILES_URL.pathname,
    });
  }
  return cached;
}

/** Parses and validates a profiles file's text (`profiles: [...]`); `name` is used in errors. */
export function parseProfilesFile({ text, name }: { text: string; name: string }): readonly TermsProfileData[] {
  const result = profilesFileSchema.safeParse(parse(text));
  if (!result.success) {
    const problems = result.error.issues.map((issue) => `  ${issue.path.join('.')}: ${issue.message}`);
    throw new Error(`invalid terms profiles file ${name}:\n${problems.join('\n')}`);
  }
  const seen = new Set<string>();
  for (const profile of result.data.profiles) {
    if (seen.has(profile.id)) throw new Error(`${name} lists "${profile.id}" twice`);
    seen.add(profile.id);
  }
  return deepFreeze(result.data.profiles);
}
