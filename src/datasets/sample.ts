/**
 * Building a sample record from its fields: checks the references, computes each field's
 * lineage closure from its parents, and content-addresses the result. Pure.
 */
import { createHash } from 'node:crypto';
import { SeedError } from '../errors.ts';
import { canonicalJson } from '../terms/canonical.ts';
import type {
  FieldProvenance,
  FieldReference,
  JsonValue,
  LineageSource,
  Origin,
  SampleRecord,
  StoredSample,
  Transform,
} from './types.ts';

/** One field of a sample being built. */
export interface FieldInput {
  readonly value: JsonValue;
  readonly origin: Origin;
  /** How it was derived from `derivedFrom`; null or absent for a verbatim copy or an underived field. */
  readonly transform?: Transform | null;
  readonly derivedFrom?: readonly FieldReference[];
}

/** A sample being built: an id and its fields. */
export interface SampleInput {
  readonly id: string;
  readonly fields: { readonly [field: string]: FieldInput };
}

/** SHA-256 (hex) of a value's canonical JSON. */
export function contentHash(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex');
}

/** The stored text of a record; its SHA-256 is the record's hash. */
export function recordText(record: SampleRecord): string {
  return canonicalJson(record);
}

/**
 * Builds a record. Every `derivedFrom` must name a field of a sample in `parents` (by hash);
 * each field's lineage is its own origin plus the lineage of every field it was derived from.
 *
 * @example
 * ```ts
 * const labelled = buildSample({
 *   input: {
 *     id: 'review-17',
 *     fields: {
 *       text: { value: text, origin: { kind: 'derived' }, derivedFrom: [{ sample: parent.hash, field: 'text' }] },
 *       label: { value: 'positive', origin: callSource, transform: 'annotation', derivedFrom: [{ sample: parent.hash, field: 'text' }] },
 *     },
 *   },
 *   parents: new Map([[parent.hash, parent.record]]),
 * });
 * ```
 */
export function buildSample({
  input,
  parents,
}: {
  input: SampleInput;
  parents: ReadonlyMap<string, SampleRecord>;
}): StoredSample {
  if (typeof input.id !== 'string' || input.id.trim() === '') {
    throw new SeedError('invalid_request', 'every sample needs a non-empty id', { param: 'id' });
  }
  // Ids are stored as text, and PostgreSQL refuses NUL in text: refused here on both stores
  // rather than as a database error on one (test/fuzz-datasets-import.test.ts found it).
  if (input.id.includes('\u0000')) {
    throw new SeedError('invalid_request', `sample id ${JSON.stringify(input.id)} contains a NUL character`, { param: 'id' });
  }
  const names = Object.keys(input.fields).sort();
  if (names.length === 0) throw new SeedError('invalid_request', `sample "${input.id}" has no fields`);
  const fields: Record<string, JsonValue> = {};
  const provenance: Record<string, FieldProvenance> = {};
  for (const name of names) {
    const field = input.fields[name] as FieldInput;
    const derivedFrom = sortedUnique(field.derivedFrom ?? []);
    if (field.origin.kind === 'derived' && derivedFrom.length === 0) {
      throw new SeedError('invalid_request', `sample "${input.id}" field "${name}": a derived field needs derivedFrom`);
    }
    const inherited = derivedFrom.flatMap((reference) => parentLineage({ sampleId: input.id, name, reference, parents }));
    const own = field.origin.kind === 'derived' ? [] : [field.origin];
    fields[name] = field.value;
    provenance[name] = {
      origin: field.origin,
      transform: field.transform ?? null,
      derivedFrom,
      lineage: sortedUnique<LineageSource>([...own, ...inherited]),
    };
  }
  // Round-trip through JSON so the record holds exactly what storage returns.
  const record = JSON.parse(canonicalJson({ id: input.id, fields, provenance })) as SampleRecord;
  return { hash: contentHash(record), record };
}

function parentLineage({
  sampleId,
  name,
  reference,
  parents,
}: {
  sampleId: string;
  name: string;
  reference: FieldReference;
  parents: ReadonlyMap<string, SampleRecord>;
}): readonly LineageSource[] {
  const parent = parents.get(reference.sample);
  const lineage = parent?.provenance[reference.field]?.lineage;
  if (lineage === undefined) {
    const what = parent === undefined ? `unknown sample ${reference.sample}` : `sample "${parent.id}" has no field "${reference.field}"`;
    throw new SeedError('invalid_request', `sample "${sampleId}" field "${name}" is derived from ${what}`);
  }
  return lineage;
}

/** Unique by canonical JSON, sorted by it: equal sets give equal arrays (and equal hashes). */
export function sortedUnique<T>(items: readonly T[]): T[] {
  const byKey = new Map(items.map((item) => [canonicalJson(item), item]));
  return [...byKey.keys()].sort().map((key) => byKey.get(key) as T);
}
