/**
 * Inputs of tenant administration, validated at every edge (admin API, CLI) with the same
 * schemas, so `seed keys create` and `POST /v1/seed/admin/keys` accept exactly the same things.
 */
import { z } from 'zod';
import { limitsSchema } from '../limits/index.ts';

/** Org and team names: addressable from a shell without quoting. */
export const tenantNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, { error: 'expected 1–64 letters, digits, . _ - (starting with a letter or digit)' });

const keyNameSchema = z.string().trim().min(1).max(128).regex(/^[\x20-\x7e]+$/, { error: 'expected printable ASCII' });
const routeNameSchema = z.string().min(1).max(128);
const regionSchema = z.string().regex(/^[a-z0-9][a-z0-9-]{0,31}$/, { error: 'expected a region such as eu or us-east' });
/** An org or team id or name (`org_…`, `acme`; teams also `acme/search`). */
const referenceSchema = z.string().min(1).max(200);
/** ISO date or a relative amount from now (`30d`); null = never. */
const expirySchema = z.string().min(1).max(64).nullable();

export const createOrgInputSchema = z.object({ name: tenantNameSchema, limits: limitsSchema.optional() }).strict();
export type CreateOrgInput = z.infer<typeof createOrgInputSchema>;

export const createTeamInputSchema = z
  .object({ org: referenceSchema, name: tenantNameSchema, limits: limitsSchema.optional() })
  .strict();
export type CreateTeamInput = z.infer<typeof createTeamInputSchema>;

/** PATCH of an org or team: its limits replace the old ones; null clears them. */
export const updateLimitsInputSchema = z.object({ limits: limitsSchema.nullable() }).strict();

export const createKeyInputSchema = z
  .object({
    team: referenceSchema,
    name: keyNameSchema.optional(),
    region: regionSchema.nullable().optional(),
    /** Null or absent: every route. An empty list is refused: a key that can call nothing is a mistake. */
    allowedRoutes: z.array(routeNameSchema).min(1).max(1000).nullable().optional(),
    limits: limitsSchema.optional(),
    storePayloads: z.boolean().optional(),
    expiresAt: expirySchema.optional(),
  })
  .strict();
export type CreateKeyInput = z.infer<typeof createKeyInputSchema>;

export const updateKeyInputSchema = z
  .object({
    name: keyNameSchema.optional(),
    region: regionSchema.nullable().optional(),
    allowedRoutes: z.array(routeNameSchema).min(1).max(1000).nullable().optional(),
    limits: limitsSchema.nullable().optional(),
    storePayloads: z.boolean().optional(),
    expiresAt: expirySchema.optional(),
  })
  .strict()
  .refine((changes) => Object.keys(changes).length > 0, { error: 'expected at least one field to change' });
export type UpdateKeyInput = z.infer<typeof updateKeyInputSchema>;
