/**
 * The audit log: append-only, hash-chained, in the store. Each entry's hash covers its own
 * fields and the previous entry's hash, so editing, reordering or removing an entry in the
 * middle breaks every later link; `verify` finds the first break. Records kept elsewhere
 * (dataset versions) are tied in through {@link AuditCheck}s.
 */
import type { Kysely } from 'kysely';
import { SeedError } from '../errors.ts';
import type { Store } from '../store/index.ts';
import type { Database } from '../store/schema.ts';
import { canonicalJson } from '../terms/canonical.ts';
import { runExclusive } from './exclusive.ts';
import { entryHash, GENESIS_HASH } from './hash.ts';
import { auditTables, type AuditLogTable } from './tables.ts';
import type { AuditAppend, AuditCheck, AuditEntry, AuditProblem, AuditVerification, JsonValue } from './types.ts';

/** What `list` returns. */
export interface ListAuditOptions {
  /** Only entries at or after this time (epoch ms). */
  since?: number;
  /** Only entries with this action. */
  action?: string;
  /** At most this many entries: the most recent ones (default 100, at most 10 000). */
  limit?: number;
}

/** A transaction in which dataset tables and audit entries are written together, or not at all. */
export interface AuditScope {
  readonly db: Kysely<Database>;
  append(input: AuditAppend): Promise<AuditEntry>;
}

export interface AuditLog {
  /** Appends one entry after the current last one; concurrent appenders are serialized. */
  append(input: AuditAppend): Promise<AuditEntry>;
  /**
   * Runs `work` in the same exclusive transaction appends use, so a module can write its own
   * rows and the entry that vouches for them atomically.
   */
  transact<T>(work: (scope: AuditScope) => Promise<T>): Promise<T>;
  /** Re-derives every hash and link, then runs the checks; reports the first bad entry. */
  verify(): Promise<AuditVerification>;
  /** Entries in sequence order, filtered. */
  list(options?: ListAuditOptions): Promise<AuditEntry[]>;
}

const PAGE = 1000;

/**
 * Opens the audit log over a store (its table comes with the store's migrations).
 *
 * @example
 * ```ts
 * const audit = createAuditLog({ store, checks: [datasetIntegrityCheck({ store })] });
 * await audit.append({ actor: 'cli:jane', action: 'key.revoked', subject: 'key_123', details: { reason: 'leaked' } });
 * const result = await audit.verify(); // { ok: true, entries: 1 }
 * ```
 */
export function createAuditLog({
  store,
  checks = [],
  now = Date.now,
}: {
  store: Pick<Store, 'db' | 'dialect'>;
  /** Checks that tie other tables to the chain (see `datasetIntegrityCheck`). */
  checks?: readonly AuditCheck[];
  now?: () => number;
}): AuditLog {
  const append = (db: Kysely<Database>, input: AuditAppend) => appendWithin({ db, input, now });
  return Object.freeze({
    append: (input: AuditAppend) => runExclusive({ store, work: (db) => append(db, input) }),
    transact: <T>(work: (scope: AuditScope) => Promise<T>) =>
      runExclusive({ store, work: (db) => work({ db, append: (input) => append(db, input) }) }),
    verify: () => verify({ store, checks }),
    list: (options: ListAuditOptions = {}) => list({ store, options }),
  });
}

async function appendWithin({
  db,
  input,
  now,
}: {
  db: Kysely<Database>;
  input: AuditAppend;
  now: () => number;
}): Promise<AuditEntry> {
  for (const [field, value] of Object.entries({ actor: input.actor, action: input.action, subject: input.subject })) {
    if (typeof value !== 'string' || value.trim() === '') {
      throw new SeedError('invalid_request', `audit entry needs a non-empty ${field}`, { param: field });
    }
  }
  const tables = auditTables(db);
  const last = await tables.selectFrom('audit_log').select(['seq', 'hash']).orderBy('seq', 'desc').limit(1).executeTakeFirst();
  // Round-trip the details through canonical JSON first, so the hash covers exactly what is
  // stored and read back (undefined dropped, key order fixed).
  const detailsText = canonicalJson(input.details ?? {});
  const unhashed = {
    seq: last === undefined ? 1 : Number(last.seq) + 1,
    at: now(),
    actor: input.actor,
    action: input.action,
    subject: input.subject,
    details: JSON.parse(detailsText) as AuditEntry['details'],
    prevHash: last?.hash ?? GENESIS_HASH,
  };
  const entry: AuditEntry = { ...unhashed, hash: entryHash(unhashed) };
  await tables
    .insertInto('audit_log')
    .values({
      seq: entry.seq,
      at: entry.at,
      actor: entry.actor,
      action: entry.action,
      subject: entry.subject,
      details: detailsText,
      prev_hash: entry.prevHash,
      hash: entry.hash,
    })
    .execute();
  return entry;
}

async function verify({
  store,
  checks,
}: {
  store: Pick<Store, 'db'>;
  checks: readonly AuditCheck[];
}): Promise<AuditVerification> {
  const tables = auditTables(store.db);
  const wanted = new Set(checks.flatMap((check) => check.actions));
  const kept: AuditEntry[] = [];
  let previousHash = GENESIS_HASH;
  let count = 0;
  for (let after = 0; ; ) {
    const rows = await tables.selectFrom('audit_log').selectAll().where('seq', '>', after).orderBy('seq').limit(PAGE).execute();
    for (const row of rows) {
      const expectedSeq = count + 1;
      const parsed = parseRow(row);
      const problem =
        Number(row.seq) !== expectedSeq
          ? `expected entry ${expectedSeq} next, found ${row.seq} (an entry was removed or inserted)`
          : parsed === null
            ? 'details are not valid JSON'
            : row.prev_hash !== previousHash
              ? `prev_hash does not match the hash of entry ${expectedSeq - 1}`
              : entryHash(parsed) !== row.hash
                ? 'hash does not match the entry (a field was changed)'
                : null;
      if (problem !== null || parsed === null) {
        return { ok: false, entries: await countEntries(store), firstBadSeq: expectedSeq, reason: problem ?? 'unreadable entry' };
      }
      if (wanted.has(parsed.action)) kept.push(parsed);
      previousHash = row.hash;
      count += 1;
    }
    if (rows.length < PAGE) break;
    after = Number(rows.at(-1)?.seq);
  }
  const problems: AuditProblem[] = [];
  for (const check of checks) {
    const entries = kept.filter((entry) => check.actions.includes(entry.action));
    problems.push(...(await check.check({ entries })).map((problem) => ({ ...problem, reason: `${check.name}: ${problem.reason}` })));
  }
  const first = problems.sort((left, right) => left.seq - right.seq)[0];
  if (first !== undefined) return { ok: false, entries: count, firstBadSeq: first.seq, reason: first.reason };
  return { ok: true, entries: count };
}

async function list({ store, options }: { store: Pick<Store, 'db'>; options: ListAuditOptions }): Promise<AuditEntry[]> {
  const limit = options.limit ?? 100;
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
    throw new SeedError('invalid_request', 'limit must be an integer from 1 to 10000', { param: 'limit' });
  }
  let query = auditTables(store.db).selectFrom('audit_log').selectAll();
  if (options.since !== undefined) query = query.where('at', '>=', options.since);
  if (options.action !== undefined) query = query.where('action', '=', options.action);
  const rows = await query.orderBy('seq', 'desc').limit(limit).execute();
  return rows
    .reverse()
    .map((row) => parseRow(row))
    .filter((entry): entry is AuditEntry => entry !== null);
}

async function countEntries(store: Pick<Store, 'db'>): Promise<number> {
  const row = await auditTables(store.db)
    .selectFrom('audit_log')
    .select((expression) => expression.fn.countAll<number>().as('count'))
    .executeTakeFirst();
  return Number(row?.count ?? 0);
}

/** The entry a row holds, or null when its details are not a JSON object. */
function parseRow(row: AuditLogTable): AuditEntry | null {
  let details: unknown;
  try {
    details = JSON.parse(row.details);
  } catch {
    return null;
  }
  if (details === null || typeof details !== 'object' || Array.isArray(details)) return null;
  return {
    seq: Number(row.seq),
    at: Number(row.at),
    actor: row.actor,
    action: row.action,
    subject: row.subject,
    details: details as { [key: string]: JsonValue },
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}
