/**
 * Ledger queries: batch insert (idempotent per call id), one call, and a keyset-paginated list.
 */
import type { Kysely } from 'kysely';
import type { CallRecord, CallStatus } from '../ledger/types.ts';
import { SeedError } from '../errors.ts';
import type { StoreDialect } from './connect.ts';
import type { Database } from './schema.ts';
import { fromCallRow, toCallRow } from './call-rows.ts';

interface Context {
  dialect: StoreDialect;
  db: Kysely<Database>;
}

// 29 columns × 500 rows stays under SQLite's 32 766 and PostgreSQL's 65 535 bind parameters.
const ROWS_PER_STATEMENT = 500;

/**
 * Inserts `records`, skipping ids already stored (so replays are harmless). All or nothing:
 * one transaction per call. Returns how many rows were new.
 */
export async function insertCalls({
  context,
  records,
}: {
  context: Context;
  records: readonly CallRecord[];
}): Promise<{ inserted: number }> {
  if (records.length === 0) return { inserted: 0 };
  const rows = records.map((call) => toCallRow({ dialect: context.dialect, call }));
  return context.db.transaction().execute(async (transaction) => {
    let inserted = 0;
    for (let start = 0; start < rows.length; start += ROWS_PER_STATEMENT) {
      const result = await transaction
        .insertInto('calls')
        .values(rows.slice(start, start + ROWS_PER_STATEMENT))
        .onConflict((conflict) => conflict.column('id').doNothing())
        .executeTakeFirst();
      inserted += Number(result.numInsertedOrUpdatedRows ?? 0n);
    }
    return { inserted };
  });
}

/** The call with this id, or null. */
export async function getCall({ context, id }: { context: Context; id: string }): Promise<CallRecord | null> {
  const row = await context.db.selectFrom('calls').selectAll().where('id', '=', id).executeTakeFirst();
  return row === undefined ? null : fromCallRow(row);
}

/** Which calls `listCalls` returns; every field narrows the list. */
export interface CallFilters {
  /** Inclusive lower bound on `startedAt` (epoch ms). */
  since?: number;
  /** Exclusive upper bound on `startedAt` (epoch ms). */
  until?: number;
  orgId?: string;
  teamId?: string;
  keyId?: string;
  route?: string;
  deployment?: string;
  status?: CallStatus;
}

export interface ListCallsOptions {
  filters?: CallFilters;
  /** Page size, 1…1000 (default 100). */
  limit?: number;
  /** `nextCursor` of the previous page. */
  cursor?: string | null;
}

export interface CallPage {
  /** Newest first (by `startedAt`, then id). */
  calls: CallRecord[];
  /** Pass to the next `listCalls`; null on the last page. */
  nextCursor: string | null;
}

/** Lists calls newest first, filtered, with a cursor that stays stable while new calls arrive. */
export async function listCalls({ context, options }: { context: Context; options: ListCallsOptions }): Promise<CallPage> {
  const limit = options.limit ?? 100;
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
    throw new SeedError('invalid_request', 'limit must be an integer from 1 to 1000', { param: 'limit' });
  }
  const filters = options.filters ?? {};
  let query = context.db.selectFrom('calls').selectAll();
  if (filters.since !== undefined) query = query.where('started_at', '>=', filters.since);
  if (filters.until !== undefined) query = query.where('started_at', '<', filters.until);
  if (filters.orgId !== undefined) query = query.where('org_id', '=', filters.orgId);
  if (filters.teamId !== undefined) query = query.where('team_id', '=', filters.teamId);
  if (filters.keyId !== undefined) query = query.where('key_id', '=', filters.keyId);
  if (filters.route !== undefined) query = query.where('route', '=', filters.route);
  if (filters.deployment !== undefined) query = query.where('deployment', '=', filters.deployment);
  if (filters.status !== undefined) query = query.where('status', '=', filters.status);
  if (options.cursor !== undefined && options.cursor !== null) {
    const after = decodeCursor(options.cursor);
    query = query.where((expression) =>
      expression.or([
        expression('started_at', '<', after.startedAt),
        expression.and([expression('started_at', '=', after.startedAt), expression('id', '<', after.id)]),
      ]),
    );
  }
  // One extra row tells whether another page exists without a count query.
  const rows = await query.orderBy('started_at', 'desc').orderBy('id', 'desc').limit(limit + 1).execute();
  const calls = rows.slice(0, limit).map(fromCallRow);
  const last = calls.at(-1);
  const nextCursor = rows.length > limit && last !== undefined ? encodeCursor(last) : null;
  return { calls, nextCursor };
}

function encodeCursor(call: CallRecord): string {
  return Buffer.from(JSON.stringify([call.startedAt, call.id])).toString('base64url');
}

function decodeCursor(cursor: string): { startedAt: number; id: string } {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(value) && typeof value[0] === 'number' && typeof value[1] === 'string') {
      return { startedAt: value[0], id: value[1] };
    }
  } catch {
    // fall through to the error below
  }
  throw new SeedError('invalid_request', 'cursor is not one returned by a previous page', { param: 'cursor' });
}
