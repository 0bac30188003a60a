/**
 * Which fault, if any, a request meets. Sources in order of precedence: the request's own
 * `x-sim-fault` header, faults set at runtime (`POST /_sim/faults`, for one model or all),
 * then the model's configured rules. Probabilities draw from a generator seeded by the
 * simulator seed, so a run with the same requests in the same order meets the same faults.
 */
import { createRandom } from './content.ts';
import { faultKinds, faultRuleSchema, type FaultKind, type FaultRule, type FaultRuleInput } from './options.ts';

/** Scope of runtime faults that apply to every model. */
export const allModels = '*';

const kindSet: ReadonlySet<string> = new Set(faultKinds);

/** Faults that cut a stream after some frames: their number is how many (`afterChunks`). */
const MID_STREAM_FAULTS: ReadonlySet<FaultKind> = new Set(['reset-mid-stream', 'stall-mid-stream', 'error-mid-stream']);

function isFaultKind(value: string): value is FaultKind {
  return kindSet.has(value);
}

/**
 * Parses `x-sim-fault: KIND[:NUMBER]`. The number is the `retry-after` seconds of `429`,
 * `503` and `529`, the frames before the reset of `reset-mid-stream` (the silence of
 * `stall-mid-stream`, the error event of `error-mid-stream`), and the tokens per
 * second of `slow-stream`. Returns a message when the header is malformed.
 */
export function parseFaultHeader(value: string): { rule: FaultRule } | { error: string } {
  const separator = value.indexOf(':');
  const kind = (separator === -1 ? value : value.slice(0, separator)).trim();
  const argumentText = separator === -1 ? undefined : value.slice(separator + 1).trim();
  if (!isFaultKind(kind)) return { error: `x-sim-fault: unknown fault "${kind}"; expected one of ${faultKinds.join(', ')}` };
  const rule: FaultRule = { kind, probability: 1 };
  if (argumentText === undefined) return { rule };
  const number = Number(argumentText);
  if (argumentText === '' || !Number.isFinite(number) || number < 0) {
    return { error: `x-sim-fault: "${argumentText}" is not a number ≥ 0` };
  }
  if (kind === '429' || kind === '503' || kind === '529') rule.retryAfterSeconds = number;
  else if (MID_STREAM_FAULTS.has(kind)) rule.afterChunks = Math.floor(number);
  else if (kind === 'slow-stream') {
    if (number === 0) return { error: 'x-sim-fault: slow-stream needs a pace above 0 tokens per second' };
    rule.tokensPerSecond = number;
  }
  return { rule };
}

/** Runtime faults and the per-rule counters behind `firstRequests`. */
export class FaultBook {
  private readonly runtime = new Map<string, FaultRule[]>();
  private readonly counts = new Map<FaultRule, Map<string, number>>();
  private random: () => number;

  constructor(private readonly seed: number) {
    this.random = createRandom(seed);
  }

  /** Replaces the runtime faults of one model (or of all models); an empty list clears them. */
  set(input: { model?: string; faults: readonly FaultRuleInput[] }): void {
    const scope = input.model ?? allModels;
    const rules = input.faults.map((fault) => faultRuleSchema.parse(fault));
    if (rules.length === 0) this.runtime.delete(scope);
    else this.runtime.set(scope, rules);
  }

  /** Forgets runtime faults and counters, and restarts the probability draws. */
  clear(): void {
    this.runtime.clear();
    this.counts.clear();
    this.random = createRandom(this.seed);
  }

  /** Runtime faults by scope, for `GET /_sim/faults`. */
  snapshot(): Record<string, FaultRule[]> {
    return Object.fromEntries(this.runtime);
  }

  /** The fault this request meets, if any; counts the request against every rule it reaches. */
  pick(input: { modelKey: string; configured: readonly FaultRule[] }): FaultRule | undefined {
    const lists = [this.runtime.get(input.modelKey), this.runtime.get(allModels), input.configured];
    for (const rules of lists) {
      if (rules === undefined) continue;
      for (const rule of rules) if (this.fires({ rule, modelKey: input.modelKey })) return rule;
    }
    return undefined;
  }

  private fires(input: { rule: FaultRule; modelKey: string }): boolean {
    const { rule } = input;
    if (rule.firstRequests !== undefined) {
      let perModel = this.counts.get(rule);
      if (perModel === undefined) {
        perModel = new Map();
        this.counts.set(rule, perModel);
      }
      const seen = (perModel.get(input.modelKey) ?? 0) + 1;
      perModel.set(input.modelKey, seen);
      if (seen > rule.firstRequests) return false;
    }
    return rule.probability >= 1 || this.random() < rule.probability;
  }
}
