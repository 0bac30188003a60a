/**
 * The entry hash: SHA-256 over a canonical serialization, so the same entry hashes the same on
 * every machine and dialect whatever order its details' keys were written in.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../terms/canonical.ts';
import type { AuditEntry } from './types.ts';

/** `prevHash` of the first entry. */
export const GENESIS_HASH = '0'.repeat(64);

/**
 * The hash an entry must carry: SHA-256 (hex) of the canonical JSON of
 * `{ seq, at, actor, action, subject, details, prevHash }` (keys sorted at every level).
 *
 * @example
 * ```ts
 * entryHash({ seq: 1, at: 0, actor: 'system', action: 'terms.changed', subject: 'openai', details: {}, prevHash: GENESIS_HASH });
 * ```
 */
export function entryHash(entry: Omit<AuditEntry, 'hash'>): string {
  const { seq, at, actor, action, subject, details, prevHash } = entry;
  return createHash('sha256').update(canonicalJson({ seq, at, actor, action, subject, details, prevHash })).digest('hex');
}
