/**
 * The shape of a terms profile, as shipped in `profiles.yaml` and as an operator writes one
 * under `terms.profiles` in `seed.yaml`. Validated once when the registry loads.
 */
import { z } from 'zod';
import { PURPOSES, VERDICTS } from './vocabulary.ts';

const text = z.string().trim().min(1, { error: 'expected a non-empty string' });

/** Profile ids look like deployment names' terms references: `llama-3.1`, `azure-openai`. */
export const profileIdSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9.-]*$/, { error: 'expected an id of lower-case letters, digits, "." and "-"' })
  .max(64);

/** `2024`, `2024-01` or `2024-01-31`: terms are often dated only by month. */
const calendarDate = z
  .string()
  .regex(/^\d{4}(-\d{2}(-\d{2})?)?$/, { error: 'expected a date like 2024-01-31, 2024-01 or 2024' });

/** Something a purpose's user must do; `text` is what a report shows. */
export const obligationSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('attribution'), text }).strict(),
  z.object({ kind: z.literal('name-prefix'), text }).strict(),
  z.object({ kind: z.literal('flow-down'), text }).strict(),
  z.object({ kind: z.literal('use-restriction'), text }).strict(),
  z
    .object({
      kind: z.literal('mau-threshold'),
      /** Monthly active users above which the licence requires a separate grant. */
      monthlyActiveUsers: z.number().int().positive(),
      text,
    })
    .strict(),
]);
export type Obligation = z.infer<typeof obligationSchema>;

/** The verdict a profile declares for one purpose. */
export const purposeVerdictSchema = z
  .object({
    verdict: z.enum(VERDICTS),
    /** Where in the terms this comes from, e.g. `Terms of Use 2023 §2(c)(iii)`. */
    clause: text,
    /** Why, in plain words. */
    reason: text,
    obligations: z.array(obligationSchema).default([]),
  })
  .strict()
  // "constrained" means "allowed with obligations": the two must come together.
  .refine((declared) => (declared.verdict === 'constrained') === (declared.obligations.length > 0), {
    error: 'a constrained verdict needs at least one obligation, and only a constrained verdict has obligations',
    path: ['obligations'],
  });
export type PurposeVerdict = z.infer<typeof purposeVerdictSchema>;

const purposesShape = Object.fromEntries(PURPOSES.map((purpose) => [purpose, purposeVerdictSchema])) as {
  [P in (typeof PURPOSES)[number]]: typeof purposeVerdictSchema;
};

export const quoteSchema = z
  .object({
    /** Whether `text` is the terms' own words or Seed's summary of them. */
    kind: z.enum(['quote', 'paraphrase']),
    text,
  })
  .strict();

/** A terms profile as written: what one provider's terms allow its outputs to be used for. */
export const termsProfileSchema = z
  .object({
    id: profileIdSchema,
    /** Changes whenever the profile's meaning changes; recorded on every call. */
    version: text,
    title: text,
    /** URL of the terms, or a citation when no URL is known. */
    source: text,
    /** Date of the terms the profile was built from; null when the source states none. */
    date: calendarDate.nullable(),
    quote: quoteSchema,
    /** Unverified: training purposes stay blocked until an operator confirms the profile. */
    review: z.boolean(),
    notes: text.optional(),
    purposes: z.object(purposesShape).strict(),
  })
  .strict();
export type TermsProfileData = z.infer<typeof termsProfileSchema>;

/** The shipped file: a list of profiles under `profiles`. */
export const profilesFileSchema = z.object({ profiles: z.array(termsProfileSchema).min(1) }).strict();

/** Who confirmed a `review: true` profile, and when (from `terms.confirmed` in seed.yaml). */
export interface ReviewConfirmationRecord {
  readonly by: string;
  readonly at: string;
  readonly note?: string;
}

/**
 * A profile as the registry holds it: the data, where it came from, and — for a profile under
 * review — the operator's confirmation, if any. Frozen deeply; never mutated.
 */
export type TermsProfile = Readonly<TermsProfileData> & {
  readonly origin: 'shipped' | 'operator';
  readonly confirmation: ReviewConfirmationRecord | null;
};
