/**
 * The JSON text a wire value was parsed from, remembered so a value the gateway relays
 * unchanged (an OpenAI-format chunk or response from an OpenAI-compatible upstream) is written
 * back out without serializing it again. Values are never mutated after parsing (STYLE.md), so
 * the text stays true to the value; anything derived from a value is a new object, without text.
 */
const texts = new WeakMap<object, string>();

/** Records that `value` was parsed from `text`, and returns `value`. */
export function withJsonText<T extends object>(value: T, text: string): T {
  texts.set(value, text);
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
  return texts.get(value) ?? JSON.stringify(value);
}
