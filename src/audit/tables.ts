/** Row type of `audit_log` and a typed handle on it (the table is not in the store's `Database`). */
import type { Kysely } from 'kysely';
import type { Database } from '../store/schema.ts';

// Type aliases, not interfaces: kysely's withTables needs an implicit index signature.
export type AuditLogTable = {
  seq: number;
  at: number;
  actor: string;
  action: string;
  subject: string;
  /** Canonical JSON text of the details object. */
  details: string;
  prev_hash: string;
  hash: string;
};

export type AuditTables = {
  audit_log: AuditLogTable;
};

/** `db` with the audit table's types added. */
export function auditTables(db: Kysely<Database>): Kysely<Database & AuditTables> {
  return db.withTables<AuditTables>() as unknown as Kysely<Database & AuditTables>;
}
