/**
 * Ties dataset versions to the audit log. Each `dataset.version.created` entry records the
 * version's content hash and terms hash; this check re-derives both from the tables (every
 * sample record re-hashed, the membership re-hashed) and reports any difference against the
 * entry, so an SQL UPDATE to a sample, a membership, a version row or a terms snapshot makes
 * `seed audit verify` fail naming that entry. A version no entry vouches for is reported too.
 */
import type { AuditCheck, AuditEntry, AuditProblem } from '../audit/index.ts';
import type { Store } from '../store/index.ts';
import { formatReference } from './reference.ts';
import { termsHash, versionHash } from './repository.ts';
import { contentHash } from './sample.ts';
import { datasetTables, type DatasetDatabase } from './tables.ts';
import type { TermsSnapshot, VersionSource } from './types.ts';

/**
 * The check to pass to `createAuditLog({ store, checks: [datasetIntegrityCheck({ store })] })`.
 *
 * @example
 * ```ts
 * const audit = createAuditLog({ store, checks: [datasetIntegrityCheck({ store })] });
 * await audit.verify(); // { ok: false, firstBadSeq: 4, reason: 'datasets: chats@2: sample "call_1" was modified …' }
 * ```
 */
export function datasetIntegrityCheck({ store }: { store: Pick<Store, 'db'> }): AuditCheck {
  return Object.freeze({
    name: 'datasets',
    actions: Object.freeze(['dataset.version.created']),
    check: ({ entries }: { entries: readonly AuditEntry[] }) => check({ store, entries }),
  });
}

async function check({ store, entries }: { store: Pick<Store, 'db'>; entries: readonly AuditEntry[] }): Promise<AuditProblem[]> {
  const tables = datasetTables(store.db);
  const problems: AuditProblem[] = [];
  const vouched = new Set<string>();
  for (const entry of entries) {
    const name = String(entry.details['name']);
    const number = Number(entry.details['version']);
    const reference = formatReference({ name, version: number });
    vouched.add(reference);
    const problem = await checkVersion({ tables, name, number, entry });
    if (problem !== null) problems.push({ seq: entry.seq, reason: `${reference}: ${problem}` });
  }
  const rows = await tables.selectFrom('dataset_versions').select(['name', 'version']).execute();
  for (const row of rows) {
    const reference = formatReference({ name: row.name, version: Number(row.version) });
    if (!vouched.has(reference)) problems.push({ seq: 0, reason: `${reference} exists but no audit entry records its creation` });
  }
  return problems;
}

async function checkVersion({
  tables,
  name,
  number,
  entry,
}: {
  tables: DatasetDatabase;
  name: string;
  number: number;
  entry: AuditEntry;
}): Promise<string | null> {
  const row = await tables.selectFrom('dataset_versions').selectAll().where('name', '=', name).where('version', '=', number).executeTakeFirst();
  if (row === undefined) return 'the version row is missing';
  const members = await tables
    .selectFrom('dataset_members')
    .leftJoin('dataset_samples', 'dataset_samples.hash', 'dataset_members.sample_hash')
    .select(['dataset_members.sample_id as sampleId', 'dataset_members.sample_hash as hash', 'dataset_samples.record as record'])
    .where('dataset_members.name', '=', name)
    .where('dataset_members.version', '=', number)
    .execute();
  for (const member of members) {
    if (member.record === null) return `sample "${member.sampleId}" is missing`;
    if (rehash(member.record) !== member.hash) return `sample "${member.sampleId}" was modified (its record no longer matches its hash ${member.hash.slice(0, 12)})`;
  }
  let source: VersionSource;
  let terms: TermsSnapshot;
  try {
    source = JSON.parse(row.source) as VersionSource;
    terms = JSON.parse(row.terms) as TermsSnapshot;
  } catch {
    return 'the version row holds invalid JSON';
  }
  const recomputed = versionHash({ name, source, sampleHashes: members.map((member) => member.hash) });
  if (recomputed !== entry.details['hash']) return 'its samples or source differ from what the audit entry recorded (content hash mismatch)';
  if (row.hash !== entry.details['hash']) return 'the stored content hash differs from the audit entry';
  if (Number(row.sample_count) !== members.length || members.length !== entry.details['samples']) return 'the sample count differs from the audit entry';
  if (termsHash(terms) !== entry.details['termsHash']) return 'its terms snapshot differs from the audit entry';
  return null;
}

function rehash(text: string): string | null {
  try {
    return contentHash(JSON.parse(text));
  } catch {
    return null;
  }
}
