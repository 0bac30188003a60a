/** Row types of the dataset tables and a typed handle on them (they are not in the store's `Database`). */
import type { Kysely } from 'kysely';
import type { Database } from '../store/schema.ts';

// Type aliases, not interfaces: kysely's withTables needs an implicit index signature.
export type DatasetSamplesTable = {
  hash: string;
  sample_id: string;
  /** Canonical JSON of the `SampleRecord`; its SHA-256 is `hash`. */
  record: string;
};

export type DatasetVersionsTable = {
  name: string;
  version: number;
  hash: string;
  parent_version: number | null;
  /** JSON of `VersionSource`. */
  source: string;
  /** JSON of `TermsSnapshot`. */
  terms: string;
  sample_count: number;
  created_at: number;
  created_by: string;
};

export type DatasetMembersTable = {
  name: string;
  version: number;
  sample_id: string;
  sample_hash: string;
};

export type DatasetTermsChecksTable = {
  name: string;
  version: number;
  checked_at: number;
  /** JSON of `TermsSnapshot`. */
  terms: string;
};

export type DatasetTables = {
  dataset_samples: DatasetSamplesTable;
  dataset_versions: DatasetVersionsTable;
  dataset_members: DatasetMembersTable;
  dataset_terms_checks: DatasetTermsChecksTable;
};

/** `db` with the dataset tables' types added. */
export type DatasetDatabase = Kysely<Database & DatasetTables>;

export function datasetTables(db: Kysely<Database>): DatasetDatabase {
  return db.withTables<DatasetTables>() as unknown as DatasetDatabase;
}
