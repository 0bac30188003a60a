/**
 * The terms registry: which purposes each provider's terms allow its outputs to be used for,
 * and what a lineage of outputs allows together. Pure: no database, no network.
 */
export { PURPOSES, VERDICTS, verdictRank, mostRestrictive, isPurpose, type Purpose, type Verdict } from './vocabulary.ts';
export {
  termsProfileSchema,
  purposeVerdictSchema,
  obligationSchema,
  quoteSchema,
  profileIdSchema,
  profilesFileSchema,
  type TermsProfile,
  type TermsProfileData,
  type PurposeVerdict,
  type Obligation,
  type ReviewConfirmationRecord,
} from './schema.ts';
export {
  termsConfigSchema,
  operatorProfileSchema,
  reviewConfirmationSchema,
  type TermsConfig,
  type OperatorProfile,
  type ReviewConfirmation,
} from './config.ts';
export { loadShippedProfiles, parseProfilesFile, SHIPPED_PROFILES_URL } from './shipped.ts';
export {
  loadTermsRegistry,
  TermsRegistryError,
  HUMAN_PROFILE_ID,
  type TermsRegistry,
  type TermsProblem,
  type LoadTermsRegistryOptions,
} from './registry.ts';
export {
  verdictFor,
  allows,
  isUsable,
  permissionsOf,
  combinePermissions,
  effectivePermissions,
  REVIEW_BLOCKED_PURPOSES,
  type VerdictResult,
  type ClauseReference,
  type Responsibility,
  type EffectiveObligation,
  type EffectiveVerdict,
  type EffectivePermissions,
} from './permissions.ts';
export {
  parsePurpose,
  explainRefusal,
  purposeNotAllowedError,
  PURPOSE_HEADER,
  DEFAULT_PURPOSE,
  type RefusalCandidate,
} from './purpose.ts';
export { formatTermsList, formatTermsProfile, describeObligation } from './format.ts';
export { TERMS_DISCLAIMER } from './disclaimer.ts';
