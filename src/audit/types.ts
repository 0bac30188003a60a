/**
 * The audit log's vocabulary: entries, what `append` takes, what `verify` returns, and the
 * checks other modules plug into `verify` to tie their own tables to the chain.
 */

/** Actions Seed writes. Other modules may append their own (`tenant.created`, …); these are the ones it documents. */
export const AUDIT_ACTIONS = Object.freeze([
  'dataset.version.created',
  'dataset.exported',
  'dataset.export.refused',
  'dataset.purged',
  'terms.changed',
  'key.created',
  'key.revoked',
] as const);

/** JSON that survives a round trip through the database unchanged. */
export type JsonValue = string | number | boolean | null | readonly JsonValue[] | { readonly [key: string]: JsonValue };

/** What a caller of `append` supplies; sequence number, time and hashes are the log's. */
export interface AuditAppend {
  /** Who did it: `cli:jane`, `admin:key_123`, `system`. */
  readonly actor: string;
  /** What happened, dotted: `dataset.exported`. */
  readonly action: string;
  /** What it happened to: `support-chats@3`, `key_123`. */
  readonly subject: string;
  /** Anything a reader needs later; must be JSON. */
  readonly details?: { readonly [key: string]: JsonValue };
}

/** One entry, as stored and returned. */
export interface AuditEntry {
  readonly seq: number;
  /** Epoch milliseconds. */
  readonly at: number;
  readonly actor: string;
  readonly action: string;
  readonly subject: string;
  readonly details: { readonly [key: string]: JsonValue };
  /** `hash` of the previous entry; {@link GENESIS_HASH} for the first. */
  readonly prevHash: string;
  /** SHA-256 (hex) of the canonical serialization of every field above. */
  readonly hash: string;
}

/** Result of `verify`: the whole chain checks out, or the first entry that does not. */
export type AuditVerification =
  | { readonly ok: true; readonly entries: number }
  | {
      readonly ok: false;
      readonly entries: number;
      /** Sequence number of the first bad entry; 0 when a record exists that no entry accounts for. */
      readonly firstBadSeq: number;
      readonly reason: string;
    };

/** A problem a check found, tied to the entry that vouches for the damaged record. */
export interface AuditProblem {
  readonly seq: number;
  readonly reason: string;
}

/**
 * Ties records outside the log to it. `verify` hands each check the entries with its actions
 * (after the chain itself checked out); the check re-derives what those entries vouch for
 * (e.g. a dataset version's content hash) and reports every mismatch.
 */
export interface AuditCheck {
  readonly name: string;
  readonly actions: readonly string[];
  check(input: { entries: readonly AuditEntry[] }): Promise<readonly AuditProblem[]>;
}
