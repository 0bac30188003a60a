/**
 * Deterministic content: a hash of the request (and the simulator seed) seeds a small PRNG
 * that picks words from a built-in vocabulary, JSON values from a schema, and embedding
 * vectors. Same seed and same request, same bytes — tests and benchmarks can compare runs.
 *
 * Token accounting is an approximation, stated once here: a prompt costs one token per 4
 * characters of text (rounded up, at least 1); a generated word is one token.
 */

const vocabulary = [
  'the', 'model', 'answer', 'data', 'gateway', 'route', 'token', 'stream', 'quota', 'region',
  'seed', 'ledger', 'sample', 'version', 'policy', 'request', 'response', 'latency', 'budget', 'tenant',
  'simple', 'steady', 'quiet', 'rapid', 'careful', 'open', 'clear', 'small', 'large', 'exact',
  'and', 'of', 'to', 'in', 'with', 'for', 'on', 'by', 'from', 'as',
  'is', 'keeps', 'moves', 'finds', 'holds', 'sends', 'reads', 'writes', 'checks', 'learns',
  'river', 'stone', 'garden', 'window', 'harbor', 'signal', 'lantern', 'meadow', 'summit', 'orbit',
  'north', 'amber', 'silver', 'cedar',
] as const;

/** FNV-1a over UTF-16 code units, mixed with the seed. Fast and stable across runs. */
export function hashText(input: { text: string; seed: number }): number {
  let hash = (0x811c9dc5 ^ Math.imul(input.seed | 0, 0x9e3779b1)) >>> 0;
  const { text } = input;
  for (let index = 0; index < text.length; index += 1) {
    hash ^= text.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** mulberry32: a tiny PRNG with a 32-bit state, uniform in [0, 1). */
export function createRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let mixed = state;
    mixed = Math.imul(mixed ^ (mixed >>> 15), mixed | 1);
    mixed ^= mixed + Math.imul(mixed ^ (mixed >>> 7), mixed | 61);
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** An integer in [min, max]. */
export function randomInteger(input: { random: () => number; min: number; max: number }): number {
  return input.min + Math.floor(input.random() * (input.max - input.min + 1));
}

/** One token per 4 characters, rounded up, at least 1. */
export function estimateTokens(characters: number): number {
  return Math.max(1, Math.ceil(characters / 4));
}

/**
 * A sentence of `count` words, as stream pieces: the first capitalised, the others with a
 * leading space, a full stop on the last. Joined, the pieces are the text.
 */
export function generatePieces(input: { random: () => number; count: number }): string[] {
  const pieces: string[] = [];
  for (let index = 0; index < input.count; index += 1) {
    const word = vocabulary[Math.floor(input.random() * vocabulary.length)] as string;
    pieces.push(index === 0 ? word.charAt(0).toUpperCase() + word.slice(1) : ` ${word}`);
  }
  if (pieces.length > 0) pieces[pieces.length - 1] += '.';
  return pieces;
}

/** A few words, for string values inside generated JSON. */
export function generatePhrase(input: { random: () => number }): string {
  return generatePieces({ random: input.random, count: randomInteger({ random: input.random, min: 2, max: 5 }) })
    .join('')
    .slice(0, -1);
}

/** Splits text roughly where a tokenizer would: runs of word characters and runs of the rest. */
export function splitIntoTokens(text: string): string[] {
  return text.match(/[A-Za-z0-9_]+|[^A-Za-z0-9_]+/g) ?? [];
}

type JsonSchema = Record<string, unknown>;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * A value that roughly satisfies a JSON schema: objects get their required properties (all
 * properties when none are listed as required), strings are `fixedString` or a phrase,
 * numbers 1, booleans true, arrays one item, enums and consts their first value.
 */
export function valueFromSchema(input: {
  schema: unknown;
  random: () => number;
  fixedString?: string;
  depth?: number;
}): unknown {
  const depth = input.depth ?? 0;
  const schema: JsonSchema = isRecord(input.schema) ? input.schema : {};
  const child = (childSchema: unknown): unknown =>
    valueFromSchema({ ...input, schema: childSchema, depth: depth + 1 });
  if ('const' in schema) return schema.const;
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return schema.enum[0];
  for (const key of ['anyOf', 'oneOf', 'allOf'] as const) {
    const options = schema[key];
    if (Array.isArray(options) && options.length > 0) return child(options[0]);
  }
  const declared = Array.isArray(schema.type) ? schema.type.find((type) => type !== 'null') : schema.type;
  const type = declared ?? (isRecord(schema.properties) ? 'object' : 'string');
  // Recursive schemas would never end; past a few levels, answer with the simplest value.
  if (depth > 6) return type === 'object' ? {} : type === 'array' ? [] : null;
  switch (type) {
    case 'object': {
      const properties = isRecord(schema.properties) ? schema.properties : {};
      const required = Array.isArray(schema.required)
        ? schema.required.filter((name): name is string => typeof name === 'string')
        : Object.keys(properties);
      const value: Record<string, unknown> = {};
      for (const name of required) value[name] = child(properties[name]);
      return value;
    }
    case 'array':
      return [child(schema.items)];
    case 'number':
    case 'integer':
      return typeof schema.minimum === 'number' ? Math.ceil(schema.minimum) : 1;
    case 'boolean':
      return true;
    case 'null':
      return null;
    default:
      return input.fixedString ?? generatePhrase({ random: input.random });
  }
}

/**
 * A unit-length embedding vector of float32 values (already rounded to float32, so the
 * `float` and `base64` encodings carry the same numbers).
 */
export function embeddingVector(input: { text: string; seed: number; dimensions: number }): number[] {
  const random = createRandom(hashText({ text: input.text, seed: input.seed }));
  const raw = new Array<number>(input.dimensions);
  let sumOfSquares = 0;
  for (let index = 0; index < input.dimensions; index += 1) {
    const value = random() * 2 - 1;
    raw[index] = value;
    sumOfSquares += value * value;
  }
  const norm = Math.sqrt(sumOfSquares) || 1;
  for (let index = 0; index < input.dimensions; index += 1) raw[index] = Math.fround((raw[index] as number) / norm);
  return raw;
}

/** Little-endian float32 bytes, base64: OpenAI's `encoding_format: "base64"`. */
export function embeddingToBase64(vector: readonly number[]): string {
  const bytes = Buffer.allocUnsafe(vector.length * 4);
  for (let index = 0; index < vector.length; index += 1) bytes.writeFloatLE(vector[index] as number, index * 4);
  return bytes.toString('base64');
}
