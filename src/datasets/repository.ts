/**
 * Reading and writing dataset versions, samples and memberships. Writes happen inside the
 * audit log's exclusive transaction, so a version and the entry that vouches for it are
 * committed together, and version numbers never race.
 */
import type { Kysely } from 'kysely';
import type { AuditAppend, AuditEntry, AuditLog } from '../audit/index.ts';
import { SeedError } from '../errors.ts';
import type { Database } from '../store/schema.ts';
import { formatReference, type DatasetReference } from './reference.ts';
import { contentHash, recordText } from './sample.ts';
import { datasetTables, type DatasetVersionsTable } from './tables.ts';
import type { DatasetVersion, SampleRecord, StoredSample, TermsSnapshot, VersionSource } from './types.ts';

type Handle = Kysely<Database>;

// SQLite allows 32 766 bound parameters per statement; 4 columns × 500 rows stays far below.
const ROWS_PER_STATEMENT = 500;

/** The content hash of a version: its name, its source and the sorted hashes of its samples. */
export function versionHash({ name, source, sampleHashes }: { name: string; source: VersionSource; sampleHashes: readonly string[] }): string {
  return contentHash({ name, source, samples: [...sampleHashes].sort() });
}

/** Hash of a terms snapshot, recorded in the audit entry so the snapshot cannot be edited unnoticed. */
export function termsHash(terms: TermsSnapshot): string {
  return contentHash(terms);
}

/** The version a reference names; throws `not_found`. */
export async function resolveVersion({ db, reference }: { db: Handle; reference: DatasetReference }): Promise<DatasetVersion> {
  let query = datasetTables(db).selectFrom('dataset_versions').selectAll().where('name', '=', reference.name);
  if (reference.version.kind === 'number') query = query.where('version', '=', reference.version.value);
  if (reference.version.kind === 'hash') query = query.where('hash', 'like', `${reference.version.prefix}%`);
  const row = await query.orderBy('version', 'desc').limit(1).executeTakeFirst();
  if (row === undefined) {
    const shown = reference.version.kind === 'latest' ? reference.name : `${reference.name}@${reference.version.kind === 'number' ? reference.version.value : reference.version.prefix}`;
    throw new SeedError('not_found', `no dataset version ${shown}`);
  }
  return fromVersionRow(row);
}

/** Every version of every dataset, or of one, oldest first. */
export async function listVersions({ db, name }: { db: Handle; name?: string }): Promise<DatasetVersion[]> {
  let query = datasetTables(db).selectFrom('dataset_versions').selectAll();
  if (name !== undefined) query = query.where('name', '=', name);
  const rows = await query.orderBy('name').orderBy('version').execute();
  return rows.map(fromVersionRow);
}

/** The samples of a version, by sample id. */
export async function loadSamples({ db, name, version }: { db: Handle; name: string; version: number }): Promise<StoredSample[]> {
  const rows = await datasetTables(db)
    .selectFrom('dataset_members')
    .innerJoin('dataset_samples', 'dataset_samples.hash', 'dataset_members.sample_hash')
    .select(['dataset_members.sample_hash as hash', 'dataset_samples.record as record'])
    .where('dataset_members.name', '=', name)
    .where('dataset_members.version', '=', version)
    .orderBy('dataset_members.sample_id')
    .execute();
  return rows.map((row) => ({ hash: row.hash, record: JSON.parse(row.record) as SampleRecord }));
}

/** Stored sample records by hash (any dataset, any version); unknown hashes are left out. */
export async function loadRecords({ db, hashes }: { db: Handle; hashes: readonly string[] }): Promise<Map<string, SampleRecord>> {
  const found = new Map<string, SampleRecord>();
  const unique = [...new Set(hashes)];
  for (let start = 0; start < unique.length; start += ROWS_PER_STATEMENT) {
    const rows = await datasetTables(db)
      .selectFrom('dataset_samples')
      .select(['hash', 'record'])
      .where('hash', 'in', unique.slice(start, start + ROWS_PER_STATEMENT))
      .execute();
    for (const row of rows) found.set(row.hash, JSON.parse(row.record) as SampleRecord);
  }
  return found;
}

/** What `writeVersion` needs. */
export interface NewVersion {
  readonly name: string;
  readonly samples: readonly StoredSample[];
  readonly source: VersionSource;
  readonly terms: TermsSnapshot;
  readonly parentVersion: number | null;
  readonly actor: string;
  readonly now: number;
  /** More entries to append in the same transaction, after the version's own (e.g. `dataset.purged`); given the new version number. */
  readonly also?: (version: number) => readonly AuditAppend[];
}

/**
 * Writes a new version and its `dataset.version.created` entry in one exclusive transaction;
 * the version number is the dataset's last plus one.
 */
export async function writeVersion({ audit, version }: { audit: AuditLog; version: NewVersion }): Promise<{ version: DatasetVersion; entry: AuditEntry }> {
  const ids = new Set<string>();
  for (const sample of version.samples) {
    if (ids.has(sample.record.id)) throw new SeedError('invalid_request', `sample id "${sample.record.id}" appears twice in one version`);
    ids.add(sample.record.id);
  }
  const hash = versionHash({ name: version.name, source: version.source, sampleHashes: version.samples.map((sample) => sample.hash) });
  return audit.transact(async ({ db, append }) => {
    const tables = datasetTables(db);
    const last = await tables
      .selectFrom('dataset_versions')
      .select('version')
      .where('name', '=', version.name)
      .orderBy('version', 'desc')
      .limit(1)
      .executeTakeFirst();
    const number = (last?.version ?? 0) + 1;
    const sampleRows = version.samples.map((sample) => ({ hash: sample.hash, sample_id: sample.record.id, record: recordText(sample.record) }));
    for (let start = 0; start < sampleRows.length; start += ROWS_PER_STATEMENT) {
      await tables
        .insertInto('dataset_samples')
        .values(sampleRows.slice(start, start + ROWS_PER_STATEMENT))
        .onConflict((conflict) => conflict.column('hash').doNothing())
        .execute();
    }
    const row: DatasetVersionsTable = {
      name: version.name,
      version: number,
      hash,
      parent_version: version.parentVersion,
      source: JSON.stringify(version.source),
      terms: JSON.stringify(version.terms),
      sample_count: version.samples.length,
      created_at: version.now,
      created_by: version.actor,
    };
    await tables.insertInto('dataset_versions').values(row).execute();
    const members = version.samples.map((sample) => ({ name: version.name, version: number, sample_id: sample.record.id, sample_hash: sample.hash }));
    for (let start = 0; start < members.length; start += ROWS_PER_STATEMENT) {
      await tables.insertInto('dataset_members').values(members.slice(start, start + ROWS_PER_STATEMENT)).execute();
    }
    const entry = await append({
      actor: version.actor,
      action: 'dataset.version.created',
      subject: formatReference({ name: version.name, version: number }),
      details: {
        name: version.name,
        version: number,
        hash,
        samples: version.samples.length,
        parentVersion: version.parentVersion,
        source: version.source.kind,
        termsHash: termsHash(version.terms),
      },
    });
    for (const extra of version.also?.(number) ?? []) await append(extra);
    return { version: fromVersionRow(row), entry };
  });
}

/** The latest re-checked terms of a version, or its creation snapshot when never re-checked. */
export async function currentTerms({ db, version }: { db: Handle; version: DatasetVersion }): Promise<TermsSnapshot> {
  const row = await datasetTables(db)
    .selectFrom('dataset_terms_checks')
    .select('terms')
    .where('name', '=', version.name)
    .where('version', '=', version.version)
    .orderBy('checked_at', 'desc')
    .limit(1)
    .executeTakeFirst();
  return row === undefined ? version.terms : (JSON.parse(row.terms) as TermsSnapshot);
}

export function fromVersionRow(row: DatasetVersionsTable): DatasetVersion {
  return {
    name: row.name,
    version: Number(row.version),
    hash: row.hash,
    parentVersion: row.parent_version === null ? null : Number(row.parent_version),
    source: JSON.parse(row.source) as VersionSource,
    terms: JSON.parse(row.terms) as TermsSnapshot,
    sampleCount: Number(row.sample_count),
    createdAt: Number(row.created_at),
    createdBy: row.created_by,
  };
}
