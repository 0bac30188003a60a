/**
 * Config schemas for limits, for the integrator to place in `seed.yaml` (keys, teams, orgs
 * and deployments carry `limits`; the top level selects the store).
 */
import { z } from 'zod';
import { PROMPT_ESTIMATES } from './estimate.ts';

const positiveInteger = z.number().int({ error: 'expected an integer' }).positive({ error: 'expected a positive number' });
const positiveDollars = z.number().positive({ error: 'expected a positive amount of dollars' });

/** Limits of one key, team, org or deployment. Absent fields mean "no limit of that kind". */
export const limitsSchema = z
  .object({
    /** Requests per minute (sliding window). */
    rpm: positiveInteger.optional(),
    /** Tokens per minute, prompt + completion (sliding window). */
    tpm: positiveInteger.optional(),
    /** Calls in flight at once. */
    concurrent: positiveInteger.optional(),
    /** Dollars per UTC calendar day. */
    usdPerDay: positiveDollars.optional(),
    /** Dollars per UTC calendar month. */
    usdPerMonth: positiveDollars.optional(),
  })
  .strict();
export type LimitsConfig = z.infer<typeof limitsSchema>;

/**
 * How admission estimates a prompt's tokens. `approximate` (the default) counts by character
 * class and script, with no vocabulary in memory. `exact` counts OpenAI model families' prompts of
 * up to 1 000 characters with their real BPE vocabulary, loaded at start-up: 21 MB (o200k_base)
 * and 11 MB (cl100k_base) of JavaScript heap that every major garbage collection walks, which
 * made those collections 8–26 ms pauses every 3–30 s under load (src/limits/estimate.ts).
 */
const promptEstimateSchema = z.enum(PROMPT_ESTIMATES).default('approximate');

/**
 * Where limits live: `memory` for one process; `redis` to share them across replicas.
 * `onUnavailable` must be chosen explicitly: `closed` refuses calls with `limits_unavailable`
 * (503) while Redis is unreachable; `open` admits them unchecked and logs once per outage.
 * Either store takes `promptEstimate` (above).
 *
 * @example
 * limits:
 *   store: redis
 *   url: redis://redis:6379
 *   onUnavailable: closed
 *   promptEstimate: approximate
 */
export const limitStoreConfigSchema = z.discriminatedUnion('store', [
  z.object({ store: z.literal('memory'), promptEstimate: promptEstimateSchema }).strict(),
  z
    .object({
      store: z.literal('redis'),
      promptEstimate: promptEstimateSchema,
      url: z.string().regex(/^rediss?:\/\//, { error: 'expected a redis:// or rediss:// URL' }),
      keyPrefix: z.string().min(1).default('seed:limits:'),
      onUnavailable: z.enum(['closed', 'open']),
    })
    .strict(),
]);
export type LimitStoreConfig = z.infer<typeof limitStoreConfigSchema>;
