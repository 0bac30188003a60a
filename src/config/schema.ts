/**
 * The shape of `seed.yaml`. Validated once at start, then frozen; every other module receives
 * the parsed, typed value and never looks at raw YAML.
 */
import { z } from 'zod';
import { termsConfigSchema } from '../terms/config.ts';
import { deploymentPricingSchema } from '../ledger/pricing.ts';
import { limitStoreConfigSchema } from '../limits/config.ts';
import { redactionRuleSchema } from '../ledger/redact.ts';
import { DEFAULT_KEEP_WARM_BYTES_PER_SECOND } from '../young-generation.ts';

const positive = (what: string) =>
  z.number({ error: `expected a positive number (${what})` }).positive({ error: 'expected a positive number' });
const nonNegativeInt = z.number().int({ error: 'expected an integer' }).nonnegative({ error: 'expected a number ≥ 0' });
const name = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]*$/, { error: 'expected a name of letters, digits and . _ : / -' });

export const deploymentLimitsSchema = z
  .object({
    /** Requests per minute the upstream grants this deployment. */
    rpm: positive('requests per minute').optional(),
    /** Tokens per minute the upstream grants this deployment. */
    tpm: positive('tokens per minute').optional(),
  })
  .strict();

export const deploymentSchema = z
  .object({
    /** Wire protocol family, a key of the provider registry (`openai`, `azure-openai`, `anthropic`, `openai-compatible`). */
    provider: z.string().min(1),
    /** Base URL of the upstream API, e.g. `https://api.openai.com/v1`. */
    baseUrl: z.url({ error: 'expected an absolute http(s) URL' }),
    /** Model name sent upstream (for Azure, the deployment name). */
    model: z.string().min(1),
    /** Credential; use `${ENV_VAR}` interpolation rather than a literal. Optional for openai-compatible servers. */
    apiKey: z.string().optional(),
    /** Extra headers sent upstream with every request. */
    headers: z.record(z.string(), z.string()).default({}),
    region: z.string().min(1).default('global'),
    /**
     * Id of the terms profile that governs this deployment's outputs (`seed terms list`).
     * Defaults to the provider's own (openai, azure-openai, anthropic); required for
     * openai-compatible servers, whose model's licence only the operator knows.
     */
    terms: z.string().min(1).optional(),
    limits: deploymentLimitsSchema.default({}),
    /**
     * USD per 1M tokens; overrides the shipped price table (src/ledger/prices.yaml), which is
     * keyed by model name. Needed for Azure deployment names, fine-tunes and self-hosted models.
     */
    pricing: deploymentPricingSchema.optional(),
    /** Per-attempt timeout for this deployment, in milliseconds. */
    timeoutMs: positive('milliseconds').optional(),
    /** Adapter-specific options, validated by the adapter (e.g. `apiVersion` for azure-openai). */
    options: z.record(z.string(), z.unknown()).default({}),
    /** Use this deployment only when the named environment variable is set and non-empty. */
    enabledIfEnv: z.string().min(1).optional(),
    /** Skip this deployment when the named environment variable is set and non-empty. */
    disabledIfEnv: z.string().min(1).optional(),
  })
  .strict();
export type DeploymentConfig = z.infer<typeof deploymentSchema>;

export const routeTargetSchema = z
  .object({
    deployment: name,
    weight: positive('relative share of traffic').default(1),
  })
  .strict();

export const retrySchema = z
  .object({
    /** Attempts per call across all deployments and fallbacks, the first included. */
    maxAttempts: z.number().int().min(1).max(20).default(3),
    /** First backoff delay; doubles each retry, with full jitter. */
    initialDelayMs: nonNegativeInt.default(100),
    maxDelayMs: nonNegativeInt.default(5_000),
    /**
     * Longest upstream `retry-after` an interactive call waits out before trying again; a
     * longer one is returned to the client at once, with the header. Batch-priority calls
     * (`x-seed-priority: batch`) wait as long as their deadline allows.
     */
    maxRetryAfterMs: nonNegativeInt.default(10_000),
  })
  .strict();

export const routeSchema = z
  .object({
    description: z.string().optional(),
    /** Weighted deployments that serve this route. */
    deployments: z.array(routeTargetSchema).min(1, { error: 'a route needs at least one deployment' }),
    /** Other routes to try, in order, when every deployment of this one failed. */
    fallbacks: z.array(name).default([]),
    retry: retrySchema.optional(),
    /** Deadline for the whole call (all attempts), in milliseconds. */
    timeoutMs: positive('milliseconds').optional(),
    /** Default `max_tokens` used for admission estimates when the caller sends none. */
    defaultMaxTokens: z.number().int().positive().optional(),
    /** Hidden routes serve traffic but are not listed by GET /v1/models. */
    hidden: z.boolean().default(false),
  })
  .strict();
export type RouteConfig = z.infer<typeof routeSchema>;

export const healthSchema = z
  .object({
    /** Consecutive failures that put a deployment into cooldown. */
    failureThreshold: z.number().int().min(1).default(3),
    /** First cooldown; doubles while the deployment keeps failing its probe requests. */
    cooldownMs: nonNegativeInt.default(5_000),
    maxCooldownMs: nonNegativeInt.default(60_000),
  })
  .strict();

export const metricsSchema = z
  .object({
    /**
     * How often the event-loop-delay monitor behind `seed_process_nodejs_eventloop_lag_*` wakes
     * the process, in milliseconds (prom-client's default, 10). It is most of an idle gateway's
     * wake-ups (~80 of ~100 a second); a longer interval wakes it less but misses stalls shorter
     * than itself.
     */
    eventLoopPrecisionMs: z.number().int().min(1).max(10_000).default(10),
  })
  .strict();

export const serverSchema = z
  .object({
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(0).max(65_535).default(4000),
    /** Largest request body accepted, in bytes. */
    bodyLimitBytes: z.number().int().positive().default(4 * 1024 * 1024),
    /** Default deadline per call (all attempts), in milliseconds. */
    requestTimeoutMs: positive('milliseconds').default(120_000),
    /** Time the server waits for a client to send the request headers. */
    headersTimeoutMs: positive('milliseconds').default(30_000),
    /**
     * Short-lived garbage the gateway allocates per second, in bytes, so that V8 keeps its young
     * generation committed through quiet spells (src/young-generation.ts); 0 turns it off.
     */
    keepWarmBytesPerSecond: z.number().int().min(0).default(DEFAULT_KEEP_WARM_BYTES_PER_SECOND),
    /**
     * How long a shutdown (`SIGTERM`, `SIGINT`) lets the calls in flight finish before it ends the
     * rest with `shutting_down`, in milliseconds. Under Kubernetes' default grace period of 30 s,
     * with time left to write the ledger and exit.
     */
    shutdownTimeoutMs: z.number().int().min(0).max(600_000).default(25_000),
  })
  .strict();

export const simulatorSchema = z
  .object({
    /** Start Seed's provider simulator in the same process (used by the bundled example). */
    enabled: z.boolean().default(false),
    host: z.string().default('127.0.0.1'),
    port: z.number().int().min(0).max(65_535).default(4010),
    /** Passed to the simulator as its own config (latency, limits, faults). */
    options: z.record(z.string(), z.unknown()).default({}),
  })
  .strict();

export const storeSchema = z
  .object({
    /** `sqlite:<path>`, `sqlite::memory:` or `postgres://…` (shared by replicas). */
    url: z.string().min(1).default('sqlite:./data/seed.db'),
    /**
     * PostgreSQL: a connection whose query has had no answer for this long is closed and the
     * query fails, so that connections to a server that stopped answering (a failover, dropped
     * packets) are not held until TCP gives up (~15 min) and the pool works again once the store
     * is back. Longer than any query the gateway runs; migrations are exempt.
     */
    queryTimeoutMs: z.number().int().min(100).max(3_600_000).default(60_000),
  })
  .strict();

export const authSchema = z
  .object({
    /** `open`: no keys, every caller is anonymous (loopback only); `keys`: a virtual key is required. */
    mode: z.enum(['open', 'keys']).default('open'),
    /** Bearer token of the admin API (`/v1/seed/admin/…`); use `${ENV_VAR}`. No token: admin API disabled. */
    adminToken: z.string().min(16, { error: 'expected an admin token of at least 16 characters' }).optional(),
    /**
     * How often each replica reads key changes from the store (revocations, limits, expiry made
     * on another replica): how long such a change takes to reach every replica, against one
     * small query per interval per replica.
     */
    keyPollIntervalMs: z.number().int().min(10).max(600_000).default(250),
    /**
     * How long a key lookup or a poll for key changes waits for the store. A key not yet cached
     * whose lookup waits longer is refused with `auth_unavailable` (503, retryable); a poll that
     * does is given up, and the next one starts afresh. Cached keys never wait on the store.
     */
    storeTimeoutMs: z.number().int().min(100).max(600_000).default(5_000),
  })
  .strict();

export const ledgerSchema = z
  .object({
    /** Where call records wait when the store is unreachable; replayed when it returns. */
    spillDirectory: z.string().min(1).default('./data/spill'),
    /** Records per store write. */
    batchSize: z.number().int().positive().default(500),
    /** Longest a record waits in memory before it is written. */
    flushIntervalMs: z.number().int().positive().default(50),
    /** Longest a store write may take before its calls are spilled and replayed later (a store that stops answering). */
    writeTimeoutMs: z.number().int().min(100).max(600_000).default(10_000),
    /**
     * Append every call to a journal in the spill directory as it is recorded, so a process killed
     * without warning loses none of the calls it answered (one `write` per call; see docs).
     */
    journal: z.boolean().default(true),
    /** Rules applied to every string of a stored payload before it is written (opted-in keys only). */
    redact: z.array(redactionRuleSchema).default([]),
  })
  .strict();

export const seedConfigSchema = z
  .object({
    server: serverSchema.default(serverSchema.parse({})),
    retry: retrySchema.default(retrySchema.parse({})),
    health: healthSchema.default(healthSchema.parse({})),
    metrics: metricsSchema.default(metricsSchema.parse({})),
    simulator: simulatorSchema.default(simulatorSchema.parse({})),
    /** Operator terms profiles and review confirmations (see docs/terms.md). */
    terms: termsConfigSchema.default({ profiles: [], confirmed: [] }),
    store: storeSchema.default(storeSchema.parse({})),
    auth: authSchema.default(authSchema.parse({})),
    ledger: ledgerSchema.default(ledgerSchema.parse({})),
    /** Where limits and budgets live: `memory` (one process) or `redis` (shared by replicas). */
    limits: limitStoreConfigSchema.default(limitStoreConfigSchema.parse({ store: 'memory' })),
    deployments: z.record(name, deploymentSchema),
    routes: z.record(name, routeSchema),
  })
  .strict();
export type SeedConfig = z.infer<typeof seedConfigSchema>;
