/** The tamper-evident audit log: append, verify, list. */
export { createAuditLog, type AuditLog, type AuditScope, type ListAuditOptions } from './log.ts';
export { entryHash, GENESIS_HASH } from './hash.ts';
export { runExclusive } from './exclusive.ts';
export { formatAuditEntries, formatVerification } from './format.ts';
export {
  AUDIT_ACTIONS,
  type AuditAppend,
  type AuditCheck,
  type AuditEntry,
  type AuditProblem,
  type AuditVerification,
  type JsonValue,
} from './types.ts';
