/**
 * The operator's `terms:` section of `seed.yaml`: extra or overriding profiles, and the
 * review confirmations that unlock training purposes for profiles marked `review: true`.
 *
 * @example
 * ```yaml
 * terms:
 *   profiles:
 *     - id: mistral-api              # override a shipped profile: state a new version
 *       version: 2025-03-acme-legal
 *       review: false
 *     - id: acme-apache              # add a profile: every field is required
 *       version: "1"
 *       title: Apache-2.0 open weights
 *       ...
 *   confirmed:
 *     - id: azure-openai
 *       version: "2023-09"
 *       by: jane.doe@acme.example
 *       at: 2025-02-01
 * ```
 */
import { z } from 'zod';
import { PURPOSES } from './vocabulary.ts';
import { profileIdSchema, purposeVerdictSchema, quoteSchema, termsProfileSchema } from './schema.ts';

const purposesPartialShape = Object.fromEntries(
  PURPOSES.map((purpose) => [purpose, purposeVerdictSchema.optional()]),
) as { [P in (typeof PURPOSES)[number]]: z.ZodOptional<typeof purposeVerdictSchema> };

/**
 * An operator profile. For a new id every field is required (checked when the registry
 * merges, because only then is it known whether the id is new). For a shipped id, any field
 * may be left out and is taken from the shipped profile; each purpose given replaces that
 * purpose's verdict whole. `version` is always required, so a changed profile is never
 * recorded under the version of the text it replaced.
 */
export const operatorProfileSchema = termsProfileSchema
  .partial()
  .extend({
    id: profileIdSchema,
    version: termsProfileSchema.shape.version,
    quote: quoteSchema.optional(),
    purposes: z.object(purposesPartialShape).strict().optional(),
  })
  .strict();
export type OperatorProfile = z.infer<typeof operatorProfileSchema>;

/**
 * An operator's confirmation that a `review: true` profile is right for them. It names the
 * version it confirms: a new version of the terms needs a new review.
 */
export const reviewConfirmationSchema = z
  .object({
    id: profileIdSchema,
    version: z.string().trim().min(1),
    /** Who confirmed, e.g. an e-mail address. */
    by: z.string().trim().min(1),
    /** When, as an ISO date or date-time. */
    at: z.union([z.iso.date(), z.iso.datetime({ offset: true })], {
      error: 'expected an ISO date (2025-02-01) or date-time (2025-02-01T10:00:00Z)',
    }),
    note: z.string().optional(),
  })
  .strict();
export type ReviewConfirmation = z.infer<typeof reviewConfirmationSchema>;

/** The `terms:` section of `seed.yaml`. */
export const termsConfigSchema = z
  .object({
    profiles: z.array(operatorProfileSchema).default([]),
    confirmed: z.array(reviewConfirmationSchema).default([]),
  })
  .strict();
export type TermsConfig = z.infer<typeof termsConfigSchema>;
