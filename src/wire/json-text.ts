/**
 * The JSON text a wire value was parsed from, kept on the value so a value the gateway relays
 * unchanged (an OpenAI-format chunk or response from an OpenAI-compatible upstream) is written
 * back out without serializing it again. Values are never mutated after parsing (STYLE.md), so
 * the text stays true to the value; anything derived from a value (a spread copy, a translation)
 * is a new object without it. (Plain content chunks of a stream are not parsed at all; they
 * travel as text alone: stream-chunk.ts.)
 *
 * The text rides on a non-enumerable symbol property: spreads, `Object.keys`, `JSON.stringify`
 * and deep-equality checks do not see it. (A WeakMap from value to text was the first design;
 * with one entry per streamed chunk its ephemerons made garbage collection a sixth of Seed's
 * CPU in the benchmark.)
 */
const JSON_TEXT = Symbol('seed.jsonText');

/** Records that `value` was parsed from `text`, and returns `value`. */
export function withJsonText<T extends object>(value: T, text: string): T {
  Object.defineProperty(value, JSON_TEXT, { value: text, enumerable: false, writable: false, configurable: false });
  return value;
}

/**
 * `value` as JSON: its original text when it has one, else `JSON.stringify`.
 *
 * @example
 * const chunk = withJsonText(JSON.parse(data), data);
 * response.write(`data: ${toJsonText(chunk)}\n\n`);
 */
export function toJsonText(value: object): string {
  const text = (value as { [JSON_TEXT]?: string })[JSON_TEXT];
  return typeof text === 'string' ? text : JSON.stringify(value);
}
