/**
 * Shown wherever Seed displays a terms profile or a verdict derived from one (CLI, console,
 * export reports). The profiles are Seed's reading of public terms, not a lawyer's.
 */
export const TERMS_DISCLAIMER =
  'Not legal advice. Terms profiles are summaries of public terms as Seed read them, with their source ' +
  'and date; they may be incomplete or out of date. Check the source, and override a profile in ' +
  'seed.yaml (terms.profiles) where your agreement with a provider says otherwise.';
