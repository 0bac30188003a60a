/**
 * The simulator's configuration: one zod schema shared by `startSimulator`, `seed simulate
 * --config file.yaml` and the gateway's `simulator.options`. Validated once at start, then
 * frozen; per-model options are resolved (model over defaults) once per model and cached.
 */
import { z } from 'zod';

/**
 * Every fault the simulator can inject. Status codes answer at once in the provider's error
 * format; the named kinds break the connection or the body in the ways real upstreams do.
 */
export const faultKinds = [
  '400',
  '401',
  '403',
  '404',
  '408',
  '429',
  '500',
  '502',
  '503',
  '504',
  '529',
  'reset',
  'reset-mid-stream',
  'stall-mid-stream',
  'error-mid-stream',
  'malformed-json',
  'malformed-sse',
  'hang',
  'slow-stream',
] as const;
export type FaultKind = (typeof faultKinds)[number];

const faultKindSchema = z.union([
  z.enum(faultKinds),
  // YAML reads `kind: 500` as a number; accept it rather than make operators quote it.
  z
    .number()
    .int()
    .transform((status) => String(status))
    .pipe(z.enum(faultKinds)),
]);

/** One fault rule. Rules are evaluated in order; the first that fires decides the request. */
export const faultRuleSchema = z
  .object({
    kind: faultKindSchema,
    /** Chance that the rule fires for a request it applies to (0–1). Draws come from the seeded generator. */
    probability: z.number().min(0).max(1).default(1),
    /** Fire only for the first N requests of each model this rule applies to. */
    firstRequests: z.number().int().positive().optional(),
    /** `429`/`503`/`529`: the `retry-after` to send, in seconds (default 1 for 429, none otherwise). */
    retryAfterSeconds: z.number().nonnegative().optional(),
    /** `reset-mid-stream`, `stall-mid-stream`, `error-mid-stream`: frames (SSE events) sent before the socket is reset, goes silent or the error event comes (default 2). */
    afterChunks: z.number().int().nonnegative().optional(),
    /** `slow-stream`: pace of the stream in tokens per second (default 4). */
    tokensPerSecond: z.number().positive().optional(),
  })
  .strict();
export type FaultRule = z.infer<typeof faultRuleSchema>;
export type FaultRuleInput = z.input<typeof faultRuleSchema>;

/**
 * Quota of one model (or Azure deployment), enforced like Azure does: requests over short
 * windows (rpm × windowMs / 60 000 per window), tokens as prompt estimate + max_tokens.
 */
export const limitsSchema = z
  .object({
    rpm: z.number().positive().optional(),
    tpm: z.number().positive().optional(),
    /** Window over which RPM is enforced. Azure uses 1–10 s; rpm 60 with 1 000 ms allows 1 request per second. */
    windowMs: z.number().int().positive().default(10_000),
    /**
     * Window over which TPM is enforced. A minute by default: a shorter window would refuse
     * forever any single request whose max_tokens exceeds the window's share.
     */
    tokenWindowMs: z.number().int().positive().default(60_000),
  })
  .strict();
export type Limits = z.infer<typeof limitsSchema>;

/** Behaviour of one model; every field falls back to `defaults`, then to the built-in value. */
export const modelOptionsSchema = z
  .object({
    /** Model name reported in responses; for an Azure deployment, the model behind it. Default: the key. */
    model: z.string().min(1).optional(),
    /** Delay before the response starts, in milliseconds (default 0). */
    latencyMs: z.number().nonnegative().optional(),
    /** Extra delay before the first token, in milliseconds (default 0). */
    ttftMs: z.number().nonnegative().optional(),
    /** Pace of streamed tokens; 0 (default) sends every chunk as fast as possible. */
    tokensPerSecond: z.number().nonnegative().optional(),
    /** Range of completion lengths in tokens; the request hash picks one (default 16–64). */
    completionTokens: z
      .object({ min: z.number().int().positive(), max: z.number().int().positive() })
      .strict()
      .refine((range) => range.min <= range.max, { error: 'min must not exceed max' })
      .optional(),
    /** Embedding vector length when the request sends no `dimensions` (default 256). */
    embeddingDimensions: z.number().int().positive().max(8_192).optional(),
    /** Quota; replaces the default quota as a whole. */
    limits: limitsSchema.optional(),
    /** Fault rules; replace the default rules as a whole. */
    faults: z.array(faultRuleSchema).optional(),
  })
  .strict();
export type ModelOptions = z.input<typeof modelOptionsSchema>;

const loopbackHosts = ['127.0.0.1', '::1', 'localhost'] as const;

/** Options of `startSimulator`. The simulator only ever binds to loopback. */
export const simulatorOptionsSchema = z
  .object({
    /** Loopback only: the simulator is a test double and must never be reachable from the network. */
    host: z
      .string()
      .refine((host) => (loopbackHosts as readonly string[]).includes(host), {
        error: 'the simulator binds to loopback only (127.0.0.1, ::1 or localhost)',
      })
      .default('127.0.0.1'),
    /** 0 picks a free port. */
    port: z.number().int().min(0).max(65_535).default(0),
    /** Seed of generated content and of fault probabilities: same seed and request, same answer. */
    seed: z.number().int().default(0),
    defaults: modelOptionsSchema.default({}),
    /** Per model name (OpenAI, Anthropic) or Azure deployment name. */
    models: z.record(z.string().min(1), modelOptionsSchema).default({}),
    /** Largest request body accepted (413 above). */
    maxBodyBytes: z
      .number()
      .int()
      .positive()
      .default(32 * 1024 * 1024),
  })
  .strict();
export type SimulatorOptions = z.input<typeof simulatorOptionsSchema>;
export type ParsedSimulatorOptions = z.infer<typeof simulatorOptionsSchema>;

/** A model's options with every default applied. */
export interface ResolvedModelOptions {
  readonly key: string;
  readonly model: string;
  readonly latencyMs: number;
  readonly ttftMs: number;
  readonly tokensPerSecond: number;
  readonly completionTokens: { readonly min: number; readonly max: number };
  readonly embeddingDimensions: number;
  /** Undefined when neither rpm nor tpm is set: no enforcement and no rate-limit headers. */
  readonly limits: Limits | undefined;
  readonly faults: readonly FaultRule[];
}

/** Applies `models[key]` over `defaults` over the built-in values. */
export function resolveModelOptions(input: { options: ParsedSimulatorOptions; key: string }): ResolvedModelOptions {
  const own = input.options.models[input.key] ?? {};
  const fallback = input.options.defaults;
  const limits = own.limits ?? fallback.limits;
  return Object.freeze({
    key: input.key,
    model: own.model ?? input.key,
    latencyMs: own.latencyMs ?? fallback.latencyMs ?? 0,
    ttftMs: own.ttftMs ?? fallback.ttftMs ?? 0,
    tokensPerSecond: own.tokensPerSecond ?? fallback.tokensPerSecond ?? 0,
    completionTokens: own.completionTokens ?? fallback.completionTokens ?? { min: 16, max: 64 },
    embeddingDimensions: own.embeddingDimensions ?? fallback.embeddingDimensions ?? 256,
    limits: limits && (limits.rpm !== undefined || limits.tpm !== undefined) ? limits : undefined,
    faults: own.faults ?? fallback.faults ?? [],
  });
}
