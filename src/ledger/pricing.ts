/**
 * What a call cost: token counts × the model's price per million tokens. Prices are data
 * (`prices.yaml`, loaded once); a deployment may override them (`pricing` in its config), which
 * is how Azure deployment names, fine-tunes and self-hosted models get a price.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { z } from 'zod';

const perMillion = z.number().nonnegative({ error: 'expected USD per 1M tokens ≥ 0' });

/** `pricing` on a deployment: USD per 1M tokens. Cached input defaults to the input price. */
export const deploymentPricingSchema = z
  .object({
    inputPerMTok: perMillion,
    outputPerMTok: perMillion,
    cachedInputPerMTok: perMillion.optional(),
  })
  .strict();
export type DeploymentPricing = z.infer<typeof deploymentPricingSchema>;

const modelPriceSchema = z
  .object({
    input: perMillion,
    output: perMillion,
    cachedInput: perMillion.optional(),
    aliases: z.array(z.string().min(1)).default([]),
  })
  .strict();

const priceFileSchema = z.object({
  recorded: z.union([z.string(), z.number()]).transform(String),
  sources: z.array(z.string()),
  models: z.record(z.string().min(1), modelPriceSchema),
});

/** A model's prices, USD per 1M tokens. */
export interface ModelPrice {
  inputPerMTok: number;
  outputPerMTok: number;
  cachedInputPerMTok: number;
}

/** Prices by model name (aliases included), plus where they came from. */
export interface PriceTable {
  recorded: string;
  sources: readonly string[];
  models: ReadonlyMap<string, ModelPrice>;
}

/** Parses a price file (the format of `prices.yaml`); throws on anything malformed. */
export function parsePriceTable(text: string): PriceTable {
  const file = priceFileSchema.parse(parse(text));
  const models = new Map<string, ModelPrice>();
  for (const [name, price] of Object.entries(file.models)) {
    const entry = {
      inputPerMTok: price.input,
      outputPerMTok: price.output,
      cachedInputPerMTok: price.cachedInput ?? price.input,
    };
    for (const key of [name, ...price.aliases]) models.set(key, entry);
  }
  return { recorded: file.recorded, sources: Object.freeze(file.sources), models };
}

let defaultTable: PriceTable | null = null;

/** The shipped price table, read and validated on first use. */
export function defaultPriceTable(): PriceTable {
  defaultTable ??= parsePriceTable(readFileSync(new URL('./prices.yaml', import.meta.url), 'utf8'));
  return defaultTable;
}

// Dated snapshots (`-2024-08-06`, `-20241022`) and `-latest` bill like their base model; other
// suffixes (`-audio-preview`, `-realtime`) are different products and must not match.
const SNAPSHOT_SUFFIX = /-(?:\d{4}-\d{2}-\d{2}|\d{8}|latest)$/;

/** The price of `model` in `table`, matching dated snapshots to their base model; null when unknown. */
export function findModelPrice({ model, table }: { model: string; table: PriceTable }): ModelPrice | null {
  const exact = table.models.get(model);
  if (exact !== undefined) return exact;
  const base = model.replace(SNAPSHOT_SUFFIX, '');
  return base === model ? null : (table.models.get(base) ?? null);
}

export interface PriceCallInput {
  /** Upstream model name; null when no deployment served the call. */
  model: string | null;
  /** All input tokens, cached ones included (OpenAI's `prompt_tokens`). */
  promptTokens: number;
  completionTokens: number;
  /** The part of `promptTokens` served from the provider's prompt cache. */
  cachedTokens: number;
  /** The deployment's `pricing`, which wins over the table. */
  override?: DeploymentPricing | null;
  /** Defaults to the shipped table. */
  table?: PriceTable;
}

export interface PriceCallResult {
  costUsd: number;
  /** False when neither an override nor the table priced the model: cost is 0, not a guess. */
  known: boolean;
}

/**
 * Prices one call. Cached tokens are billed at the cached rate and not again at the input rate.
 *
 * @example
 * priceCall({ model: 'gpt-4o', promptTokens: 1200, completionTokens: 300, cachedTokens: 1024 });
 * // → { costUsd: 0.00472, known: true }
 */
export function priceCall(input: PriceCallInput): PriceCallResult {
  const price = input.override
    ? {
        inputPerMTok: input.override.inputPerMTok,
        outputPerMTok: input.override.outputPerMTok,
        cachedInputPerMTok: input.override.cachedInputPerMTok ?? input.override.inputPerMTok,
      }
    : input.model === null
      ? null
      : findModelPrice({ model: input.model, table: input.table ?? defaultPriceTable() });
  if (price === null) return { costUsd: 0, known: false };
  const promptTokens = Math.max(0, input.promptTokens);
  // Never bill more cached tokens than there were prompt tokens, whatever the upstream reported.
  const cachedTokens = Math.min(Math.max(0, input.cachedTokens), promptTokens);
  const completionTokens = Math.max(0, input.completionTokens);
  const microDollars =
    (promptTokens - cachedTokens) * price.inputPerMTok +
    cachedTokens * price.cachedInputPerMTok +
    completionTokens * price.outputPerMTok;
  // Round to 1e-12 USD so float noise (0.1 + 0.2) does not leak into sums and comparisons.
  return { costUsd: Math.round(microDollars * 1e6) / 1e12, known: true };
}
