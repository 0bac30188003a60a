/**
 * Turns anything thrown while handling a request into an OpenAI-format error response. Fastify's
 * own failures (unparseable JSON, oversized bodies) get their Seed code here, so no input can
 * reach the client as a 5xx unless Seed itself failed.
 */
import type { ZodError } from 'zod';
import { SeedError, toSeedError } from '../../errors.ts';
import { isStoreUnavailable } from '../../store/unavailable.ts';

interface FastifyLikeError {
  code?: string;
  statusCode?: number;
  message?: string;
}

export function httpError(thrown: unknown): SeedError {
  if (thrown instanceof SeedError) return thrown;
  const error = (thrown ?? {}) as FastifyLikeError;
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new SeedError('body_too_large', 'The request body is larger than this gateway accepts.');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new SeedError('invalid_json', 'The request body is empty; send a JSON object.');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new SeedError('unsupported_media_type', 'Send the request body as application/json.');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new SeedError('invalid_request', 'The Content-Length header does not match the body.');
    default:
      break;
  }
  if (thrown instanceof SyntaxError || error.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
    return new SeedError('invalid_json', `The request body is not valid JSON: ${error.message ?? 'parse error'}.`);
  }
  if (typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500) {
    if (error.statusCode === 413) return new SeedError('body_too_large', 'The request body is larger than this gateway accepts.');
    if (error.statusCode === 415) return new SeedError('unsupported_media_type', 'Send the request body as application/json.');
    return new SeedError('invalid_request', error.message ?? 'The request is invalid.');
  }
  if (isStoreUnavailable(thrown)) {
    return new SeedError('store_unavailable', "Seed's store is not answering right now; try again shortly.", { cause: thrown });
  }
  return toSeedError(thrown);
}

/** A key written bare in a path: no dots, brackets, quotes or spaces that would make it ambiguous. */
const BARE_KEY = /^[^.[\]'"\s]+$/;

/**
 * `messages[0].content` style path, as OpenAI writes `param`. A key that could not be read back
 * from that form (empty, or with a dot, bracket, quote or space: a `metadata` or `logit_bias`
 * key is any text) is written as a JSON string in brackets: `metadata["a.b"]`.
 */
function paramPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (typeof segment === 'string' && BARE_KEY.test(segment)) out += out === '' ? segment : `.${segment}`;
    else out += `[${JSON.stringify(String(segment))}]`;
  }
  return out;
}

/**
 * The first validation problem of a request body, as a 400 naming the parameter in OpenAI's
 * words. `body` is what the schema was given: whether a parameter is missing or present with the
 * wrong type is read from it (zod's issues do not carry the input). `text`: the values are text the
 * schema coerces (a query string, route parameters), and a number in it is named as a number.
 */
export function validationError(error: ZodError, body: unknown, options: { text?: boolean } = {}): SeedError {
  const first = error.issues[0];
  if (!first) return new SeedError('invalid_request', 'The request body is invalid.');
  const { issue, path } = deepestIssue(first, first.path, body);
  const param = paramPath(path);
  const found = valueAt(body, path);
  const expected = expectedTypes(issue, found);
  if (param === '' && expected !== undefined) {
    return found.present
      ? new SeedError('invalid_request', `The request body must be a JSON object, but got ${kindOf(found.value)} instead.`)
      : new SeedError('invalid_json', 'The request body is empty; send a JSON object.');
  }
  return new SeedError('invalid_request', issueMessage({ issue, param, found, expected, text: options.text === true }), { param: param || null });
}

function issueMessage(input: {
  issue: IssueLike;
  param: string;
  found: { present: boolean; value: unknown };
  expected: string[] | undefined;
  text: boolean;
}): string {
  const { issue, param, found, expected } = input;
  const { value } = found;
  if (expected !== undefined) {
    if (!found.present) return `Missing required parameter: '${param}'.`;
    const wanted = expected.map(typeName);
    const phrase = wanted.length === 1 ? wanted[0] : `one of ${wanted.slice(0, -1).join(', ')} or ${wanted.at(-1)}`;
    // Text read as a number (a query's `?limit=2.5`) is said of the number it reads as: "a string" is true of every query value.
    const read = input.text && expected.some((type) => NUMBER_ORIGINS.has(type)) ? numberInText(value) : value;
    return `Invalid type for '${param}': expected ${phrase}, but got ${kindOf(read)} instead.`;
  }
  // A value outside a set: an enum or literal, or a discriminated union's key (a message's `role`, a part's `type`).
  const supported = issue.code === 'invalid_value' ? issue.values : issue.code === 'invalid_union' ? issue.options : undefined;
  if (supported !== undefined) {
    if (!found.present) return `Missing required parameter: '${param}'.`;
    return `Invalid value: ${quoted(value)}. Supported values are: ${listed(supported)}.`;
  }
  if ((issue.code === 'too_small' || issue.code === 'too_big') && found.present) {
    const bounded = boundMessage(issue, value);
    if (bounded !== undefined) return `Invalid '${param}': ${bounded}`;
  }
  const detail = issue.message.replace(/^Invalid input: /, '');
  return param === '' ? `Invalid request: ${detail}.` : `Invalid value for '${param}': ${detail}.`;
}

const NUMBER_ORIGINS: ReadonlySet<string> = new Set(['number', 'int', 'bigint']);

/** The finite number a text spells (as `z.coerce.number()` reads it), else the value itself. */
function numberInText(value: unknown): unknown {
  if (typeof value !== 'string' || value.trim() === '') return value;
  const number = Number(value);
  return Number.isFinite(number) ? number : value;
}

/** `too_small` / `too_big` of a number, string or array, as OpenAI words them. */
function boundMessage(issue: IssueLike, value: unknown): string | undefined {
  const small = issue.code === 'too_small';
  const bound = small ? issue.minimum : issue.maximum;
  if (typeof bound !== 'number' && typeof bound !== 'bigint') return undefined;
  // A query parameter is text the schema coerces: its number is what was bounded.
  const numeric = NUMBER_ORIGINS.has(issue.origin ?? '') ? numberInText(value) : value;
  if (typeof numeric === 'number' && !Number.isNaN(numeric)) {
    const kind = Number.isInteger(numeric) ? 'integer' : 'decimal';
    const relation = small ? (issue.inclusive === false ? '>' : '>=') : issue.inclusive === false ? '<' : '<=';
    return `${kind} ${small ? 'below minimum' : 'above maximum'} value. Expected a value ${relation} ${bound}, but got ${numeric} instead.`;
  }
  if (NUMBER_ORIGINS.has(issue.origin ?? '')) return undefined;
  const what = typeof value === 'string' ? 'string' : Array.isArray(value) ? 'array' : undefined;
  if (what === undefined) return undefined;
  const a = what === 'array' ? 'an' : 'a';
  const limit = Number(bound);
  const violates = (size: number) => (small ? size < limit : size > limit);
  let length = (value as string | unknown[]).length;
  let trimmed = false;
  if (!violates(length) && typeof value === 'string') {
    // The schema trims before it counts (names: " " is blank).
    length = value.trim().length;
    trimmed = true;
    if (!violates(length)) return undefined;
  }
  const expected = `Expected ${a} ${what} with ${small ? 'minimum' : 'maximum'} length ${bound}${trimmed ? ' not counting surrounding whitespace' : ''}`;
  if (trimmed && length === 0) return `blank string. ${expected}, but got a string of only whitespace instead.`;
  const got = length === 0 ? `an empty ${what}` : `${a} ${what} with length ${length}${trimmed ? ' once trimmed' : ''}`;
  const headline = small ? (length === 0 ? `empty ${what}` : `${what} too short`) : `${what} too long`;
  return `${headline}. ${expected}, but got ${got} instead.`;
}

/** A value in a message: a string in single quotes, anything else as JSON (shortened). */
function quoted(value: unknown): string {
  const text = typeof value === 'string' ? `'${value}'` : (JSON.stringify(value) ?? String(value));
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** `'a'`, `'a' and 'b'`, `'a', 'b', and 'c'`. */
function listed(values: readonly unknown[]): string {
  const items = values.map(quoted);
  if (items.length <= 2) return items.join(' and ');
  return `${items.slice(0, -1).join(', ')}, and ${items.at(-1)}`;
}

/** The parts of a zod issue read here (a union's alternatives carry issues of the same shape). */
interface IssueLike {
  code: string;
  path: PropertyKey[];
  message: string;
  expected?: unknown;
  values?: readonly unknown[];
  errors?: IssueLike[][];
  /** A discriminated union's options. */
  options?: readonly unknown[];
  /** What a bound applies to: number, int, string, array… */
  origin?: string;
  minimum?: unknown;
  maximum?: unknown;
  inclusive?: boolean;
  /** Set here, not by zod: the types of several alternatives refused at one place. */
  expectedTypes?: string[];
}

/**
 * A union's failure said of the alternative the value's type matched and that got furthest into
 * it: given `[{"type":"text"}]` for a string-or-parts field, the missing `text` of part 0, not
 * "invalid input" of the field. Alternatives that fail at one place for their type alone are
 * merged (`input[0]`: a string or an integer).
 */
function deepestIssue(issue: IssueLike, path: PropertyKey[], body: unknown): { issue: IssueLike; path: PropertyKey[] } {
  if (issue.code !== 'invalid_union' || !issue.errors) return { issue, path };
  const found = valueAt(body, path);
  if (!found.present) return { issue, path };
  let deepest: IssueLike | undefined;
  const merged: string[] = [];
  for (const [inner] of issue.errors) {
    if (inner === undefined || rejectsType(inner, found.value)) continue;
    if (deepest === undefined || inner.path.length > deepest.path.length) {
      deepest = inner;
      merged.length = 0;
    }
    if (inner.code === 'invalid_type' && deepest.code === 'invalid_type' && samePath(inner.path, deepest.path)) {
      const type = String(inner.expected);
      if (!merged.includes(type)) merged.push(type);
    }
  }
  if (deepest === undefined) return { issue, path };
  const chosen = merged.length > 1 ? { ...deepest, expected: undefined, expectedTypes: merged } : deepest;
  return deepestIssue(chosen, [...path, ...deepest.path], body);
}

function samePath(a: readonly PropertyKey[], b: readonly PropertyKey[]): boolean {
  return a.length === b.length && a.every((segment, index) => segment === b[index]);
}

/** Whether an alternative's first issue refuses the value for its type alone, at the union's own place. */
function rejectsType(issue: IssueLike, value: unknown): boolean {
  if (issue.path.length > 0) return false;
  if (issue.code === 'invalid_type') return true;
  return issue.code === 'invalid_value' && issue.values !== undefined && issue.values.every((accepted) => jsonType(accepted) !== jsonType(value));
}

/**
 * The types the place accepts, when the value there is missing or of none of them; undefined
 * when the value's type was right and something else about it was wrong.
 */
function expectedTypes(issue: IssueLike, found: { present: boolean; value: unknown }): string[] | undefined {
  if (issue.code === 'invalid_type') return issue.expectedTypes ?? [String(issue.expected)];
  if (issue.code !== 'invalid_union' || !issue.errors || issue.errors.length === 0) return undefined;
  const types: string[] = [];
  for (const [inner] of issue.errors) {
    if (inner === undefined || !rejectsType(inner, found.value)) return undefined;
    const accepted = inner.code === 'invalid_type' ? [String(inner.expected)] : (inner.values ?? []).map(jsonType);
    for (const type of accepted) if (!types.includes(type)) types.push(type);
  }
  return types;
}

/** The value at `path` in a parsed JSON body, and whether anything is there at all. */
function valueAt(body: unknown, path: ReadonlyArray<PropertyKey>): { present: boolean; value: unknown } {
  let cursor = body;
  for (const segment of path) {
    if (cursor === null || typeof cursor !== 'object' || typeof segment === 'symbol' || !Object.hasOwn(cursor, segment)) {
      return { present: false, value: undefined };
    }
    cursor = (cursor as Record<PropertyKey, unknown>)[segment];
  }
  return { present: cursor !== undefined, value: cursor };
}

/** zod's name for a JSON value's type, as in an issue's `expected`. */
function jsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

const TYPE_NAMES: ReadonlyMap<string, string> = new Map([
  ['string', 'a string'],
  ['number', 'a number'],
  ['int', 'an integer'],
  ['boolean', 'a boolean'],
  ['object', 'an object'],
  ['array', 'an array'],
  ['record', 'an object'],
  ['tuple', 'an array'],
  ['null', 'null'],
]);

function typeName(expected: string): string {
  return TYPE_NAMES.get(expected) ?? expected;
}

/** A JSON value's kind as OpenAI's errors name it ("but got an integer instead"). */
function kindOf(value: unknown): string {
  if (typeof value === 'number') return Number.isInteger(value) ? 'an integer' : 'a decimal';
  return typeName(jsonType(value));
}
