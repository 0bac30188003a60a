/**
 * Samples, their provenance and dataset versions.
 *
 * A sample is named fields (`messages`, `completion`, `text`, `label`, …). Each field carries
 * its own provenance: where its value came from (origin), how (transform), from which fields of
 * which samples (derivedFrom), and — computed when the sample is built — every source in its
 * transitive lineage. The closure is stored in the record, so permissions and purges never
 * walk a graph, and the record's hash covers it.
 */
import type { JsonValue } from '../audit/types.ts';
import type { Purpose } from '../terms/vocabulary.ts';

export type { JsonValue } from '../audit/types.ts';

/** How a field was derived from other fields. */
export const TRANSFORMS = Object.freeze(['generation', 'annotation', 'filtering', 'rewriting', 'judging'] as const);
export type Transform = (typeof TRANSFORMS)[number];

/** A call of the ledger as lineage records it: enough to evaluate terms and to purge by. */
export interface CallSource {
  readonly kind: 'call';
  readonly callId: string;
  readonly provider: string | null;
  readonly deployment: string | null;
  readonly model: string | null;
  readonly route: string;
  readonly startedAt: number;
  readonly termsProfile: string;
  /** The profile's version when the call was made. */
  readonly termsVersion: string | null;
}

/** Data brought in from outside under a declared licence (a terms profile id). */
export interface ImportSource {
  readonly kind: 'import';
  /** Where it came from: a file name, a URL, a dataset card. */
  readonly source: string;
  readonly termsProfile: string;
  /** The profile's version when the data was imported. */
  readonly termsVersion: string;
}

/** Written by a person, within the operator's organisation. */
export interface HumanSource {
  readonly kind: 'human';
  readonly author: string | null;
}

/** A root of lineage: something not derived from another sample. */
export type LineageSource = CallSource | ImportSource | HumanSource;

/**
 * Where a field's value came from. `derived` adds no source of its own: the value is a copy or
 * mechanical filter of the fields it was derived from.
 */
export type Origin = LineageSource | { readonly kind: 'derived' };

/** A field of an earlier sample, by the sample's content hash (so it always resolves). */
export interface FieldReference {
  readonly sample: string;
  readonly field: string;
}

export interface FieldProvenance {
  readonly origin: Origin;
  /** Null for a field not derived from another sample. */
  readonly transform: Transform | null;
  readonly derivedFrom: readonly FieldReference[];
  /** Every source in the field's transitive lineage, its own origin included; sorted, unique. */
  readonly lineage: readonly LineageSource[];
}

/** A sample as stored: content-addressed by SHA-256 of its canonical JSON. */
export interface SampleRecord {
  /** Stable identity across versions (a call id, an import line id, a job's id). */
  readonly id: string;
  readonly fields: { readonly [field: string]: JsonValue };
  readonly provenance: { readonly [field: string]: FieldProvenance };
}

/** A stored sample with its hash. */
export interface StoredSample {
  readonly hash: string;
  readonly record: SampleRecord;
}

/** How a dataset version came to be; part of its content hash. */
export type VersionSource =
  | { readonly kind: 'ledger'; readonly filters: { readonly [key: string]: JsonValue } }
  | { readonly kind: 'import'; readonly file: string; readonly licence: string }
  | { readonly kind: 'samples'; readonly description: string }
  | { readonly kind: 'purge'; readonly from: number; readonly criteria: { readonly [key: string]: JsonValue } }
  | { readonly kind: 'drop-violations'; readonly from: number; readonly purpose: Purpose; readonly fields: readonly string[] | null };

/** Export status for one purpose: how many samples it allows and forbids. */
export interface PurposeStatus {
  readonly usable: number;
  readonly forbidden: number;
}

/** The terms a version's lineage referenced when it was created or last re-checked. */
export interface TermsSnapshot {
  /** Profile id → the version the registry held. */
  readonly profiles: { readonly [profile: string]: string };
  readonly status: { readonly [purpose: string]: PurposeStatus };
}

/** One immutable dataset version. */
export interface DatasetVersion {
  readonly name: string;
  /** Increasing per dataset from 1; `name@version`. */
  readonly version: number;
  /** SHA-256 of the version's content: name, source and the sorted sample hashes. */
  readonly hash: string;
  readonly parentVersion: number | null;
  readonly source: VersionSource;
  readonly terms: TermsSnapshot;
  readonly sampleCount: number;
  readonly createdAt: number;
  readonly createdBy: string;
}
