/** What the tenant service's parts share: the database, the audit log, a clock and randomness. */
import { sql } from 'kysely';
import { SeedError } from '../errors.ts';
import type { StoreDialect } from '../store/index.ts';
import type { RandomBytes } from './secrets.ts';
import type { TenantDb } from './tables.ts';
import type { AuditEntry, AuditLog, JsonValue } from './types.ts';

export interface TenantContext {
  db: TenantDb;
  dialect: StoreDialect;
  audit: AuditLog;
  now: () => number;
  random: RandomBytes;
}

/**
 * The next `updated_at` of a row: now, or one past its current value if the clock has not
 * moved on. Key caches treat a different `updated_at` as "changed", so two changes in one
 * millisecond must not share a value.
 */
export function nextUpdatedAt(now: number) {
  return sql<number>`case when updated_at >= ${now} then updated_at + 1 else ${now} end`;
}

/** A boolean column value: SQLite (better-sqlite3) binds only numbers, so 1/0 there. */
export function booleanValue({ dialect, value }: { dialect: StoreDialect; value: boolean }): boolean | number {
  return dialect === 'sqlite' ? Number(value) : value;
}

export function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}

/**
 * Appends to the audit log after the change is stored. When the log refuses, the caller is told
 * (500) rather than left believing the change went unrecorded silently.
 */
export async function audited({
  context,
  entry,
}: {
  context: TenantContext;
  entry: Omit<AuditEntry, 'details'> & { details: Record<string, unknown> };
}): Promise<void> {
  // Through JSON: drops undefined fields and turns values into what the log stores and hashes.
  const details = JSON.parse(JSON.stringify(entry.details)) as { readonly [key: string]: JsonValue };
  try {
    await context.audit.append({ ...entry, details });
  } catch (error) {
    throw new SeedError('internal_error', `${entry.action} of ${entry.subject} was stored, but appending it to the audit log failed`, {
      cause: error,
    });
  }
}
