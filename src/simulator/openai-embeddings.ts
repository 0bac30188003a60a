/**
 * `POST /v1/embeddings` (and Azure's deployment route) and `GET /v1/models`. Vectors are
 * deterministic per input text and seed, unit length, and a shorter `dimensions` is a prefix
 * of the longer vector re-normalized — the property OpenAI's text-embedding-3 models have.
 */
import { embeddingToBase64, embeddingVector, estimateTokens } from './content.ts';
import type { SimulatorContext } from './context.ts';
import type { Dialect } from './dialect.ts';
import type { Exchange } from './exchange.ts';
import { InvalidRequest, optionalInteger, requireObject, requireString, type JsonObject } from './fields.ts';
import { admitModelCall, deliverJson, type Overrides } from './model-call.ts';

interface EmbeddingInputs {
  texts: string[];
  tokens: number;
}

const invalidInput = () => new InvalidRequest({ message: "'$.input' is invalid. Please check the API reference.", param: 'input' });

function isTokenArray(value: unknown): value is number[] {
  return Array.isArray(value) && value.length > 0 && value.every((item) => Number.isInteger(item));
}

/** Accepts a string, strings, a token array or token arrays; token arrays count their length. */
function readInputs(body: JsonObject): EmbeddingInputs {
  const value = body.input;
  if (typeof value === 'string') {
    if (value === '') throw invalidInput();
    return { texts: [value], tokens: estimateTokens(value.length) };
  }
  if (!Array.isArray(value) || value.length === 0 || value.length > 2_048) throw invalidInput();
  if (isTokenArray(value)) return { texts: [value.join(',')], tokens: value.length };
  const texts: string[] = [];
  let tokens = 0;
  for (const item of value) {
    if (typeof item === 'string' && item !== '') {
      texts.push(item);
      tokens += estimateTokens(item.length);
    } else if (isTokenArray(item)) {
      texts.push(item.join(','));
      tokens += item.length;
    } else {
      throw invalidInput();
    }
  }
  return { texts, tokens };
}

export async function handleEmbeddings(input: {
  context: SimulatorContext;
  exchange: Exchange;
  dialect: Dialect;
  overrides: Overrides;
  body: unknown;
  deployment?: string;
}): Promise<void> {
  const { context, exchange, dialect } = input;
  const body = requireObject(input.body);
  const modelKey = input.deployment ?? requireString({ body, name: 'model', missing: 'you must provide a model parameter' });
  const inputs = readInputs(body);
  const requestedDimensions = optionalInteger({ body, name: 'dimensions', min: 1, max: 8_192 });
  const encoding = body.encoding_format ?? 'float';
  if (encoding !== 'float' && encoding !== 'base64') {
    throw new InvalidRequest({ message: "'encoding_format' must be 'float' or 'base64'.", param: 'encoding_format' });
  }
  const admission = await admitModelCall({
    context,
    exchange,
    dialect,
    overrides: input.overrides,
    modelKey,
    promptTokens: inputs.tokens,
    maxTokens: 0,
    choices: 1,
  });
  if (admission === undefined) return;
  const dimensions = requestedDimensions ?? admission.options.embeddingDimensions;
  const data = inputs.texts.map((text, index) => {
    const vector = embeddingVector({ text, seed: context.options.seed, dimensions });
    return { object: 'embedding', index, embedding: encoding === 'base64' ? embeddingToBase64(vector) : vector };
  });
  const response = {
    object: 'list',
    data,
    model: admission.options.model,
    usage: { prompt_tokens: inputs.tokens, total_tokens: inputs.tokens },
  };
  await deliverJson({ exchange, admission, body: JSON.stringify(response), tokens: 1 });
}

/** `GET /v1/models`: the configured model names. */
export function handleModels(input: { context: SimulatorContext; exchange: Exchange }): void {
  const data = Object.keys(input.context.options.models).map((id) => ({
    id,
    object: 'model',
    created: 1_700_000_000,
    owned_by: 'seed-simulator',
  }));
  input.exchange.send({ status: 200, body: JSON.stringify({ object: 'list', data }) });
}
