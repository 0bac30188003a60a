/**
 * Samples from a CSV file (RFC 4180, read with csv-parse): the header row names the fields; an
 * `id` column, when present, gives the sample id. Every field's origin is the import under the
 * declared licence, as for JSONL. Values stay strings: CSV has no types, and guessing them
 * would change the data.
 */
import { parse } from 'csv-parse/sync';
import { SeedError } from '../errors.ts';
import type { SampleInput } from './sample.ts';
import type { ImportSource } from './types.ts';

/**
 * @example
 * ```ts
 * const samples = samplesFromCsv({ text: 'id,text\na,hello\n', source });
 * // [{ id: 'a', fields: { text: { value: 'hello', origin: source } } }]
 * ```
 */
export function samplesFromCsv({ text, source }: { text: string; source: ImportSource }): SampleInput[] {
  let rows: Array<Record<string, string>>;
  try {
    rows = parse(text, { columns: true, skip_empty_lines: true, bom: true, trim: false }) as Array<Record<string, string>>;
  } catch (error) {
    throw new SeedError('invalid_request', `${source.source}: not valid CSV (${(error as Error).message})`);
  }
  if (rows.length === 0) throw new SeedError('invalid_request', `${source.source}: no samples (no rows after the header)`);
  return rows.map((row, index) => {
    const { id, ...rest } = row;
    const entries = Object.entries(rest);
    if (entries.length === 0) throw new SeedError('invalid_request', `${source.source}: row ${index + 2} has no fields besides id`);
    return {
      id: id === undefined || id === '' ? `row-${index + 2}` : id,
      fields: Object.fromEntries(entries.map(([name, value]) => [name, { value, origin: source }])),
    };
  });
}
