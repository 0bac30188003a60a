/**
 * Samples from a JSONL file: one JSON object per line; its keys become fields (an `id` key, if
 * a string, becomes the sample id). Every field's origin is the import under the declared
 * licence — a terms profile id, `human` by default.
 */
import { SeedError } from '../errors.ts';
import type { SampleInput } from './sample.ts';
import type { ImportSource, JsonValue } from './types.ts';

/**
 * Parses JSONL text into samples; blank lines are skipped, any other bad line is an error
 * naming its line number.
 *
 * @example
 * ```ts
 * const samples = samplesFromJsonl({ text: '{"id":"a","text":"hi"}\n', source: { kind: 'import', source: 'a.jsonl', termsProfile: 'human', termsVersion: '1' } });
 * ```
 */
export function samplesFromJsonl({ text, source }: { text: string; source: ImportSource }): SampleInput[] {
  const samples: SampleInput[] = [];
  text.split(/\r?\n/).forEach((line, index) => {
    if (line.trim() === '') return;
    const lineNumber = index + 1;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      throw new SeedError('invalid_request', `${source.source}:${lineNumber}: not JSON (${(error as Error).message})`);
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new SeedError('invalid_request', `${source.source}:${lineNumber}: expected a JSON object per line`);
    }
    const { id, ...rest } = value as Record<string, JsonValue>;
    const fields = Object.fromEntries(Object.entries(rest).map(([name, fieldValue]) => [name, { value: fieldValue, origin: source }]));
    if (Object.keys(fields).length === 0) throw new SeedError('invalid_request', `${source.source}:${lineNumber}: the object has no fields besides id`);
    const given = typeof id === 'string' || typeof id === 'number' ? String(id) : '';
    samples.push({ id: given === '' ? `line-${lineNumber}` : given, fields });
  });
  if (samples.length === 0) throw new SeedError('invalid_request', `${source.source}: no samples (the file is empty)`);
  return samples;
}
