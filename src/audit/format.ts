/** Text for `seed audit log` and `seed audit verify`. Returns strings; the CLI prints them. */
import { canonicalJson } from '../terms/canonical.ts';
import type { AuditEntry, AuditVerification } from './types.ts';

/**
 * One line per entry: sequence, time, actor, action, subject, details, and a hash prefix.
 *
 * @example
 * ```ts
 * process.stdout.write(formatAuditEntries({ entries: await audit.list({ limit: 20 }) }));
 * ```
 */
export function formatAuditEntries({ entries }: { entries: readonly AuditEntry[] }): string {
  if (entries.length === 0) return 'no audit entries\n';
  const lines = entries.map(
    (entry) =>
      `#${entry.seq}  ${new Date(entry.at).toISOString()}  ${entry.actor}  ${entry.action}  ${entry.subject}  ` +
      `${canonicalJson(entry.details)}  ${entry.hash.slice(0, 12)}`,
  );
  const head = entries.at(-1);
  if (head !== undefined) lines.push('', `head: #${head.seq} ${head.hash}`);
  return `${lines.join('\n')}\n`;
}

/** The result of `verify` as one or two lines. */
export function formatVerification({ result }: { result: AuditVerification }): string {
  if (result.ok) return `audit log ok: ${result.entries} entries, every hash and link checks out\n`;
  const where = result.firstBadSeq === 0 ? 'a record no entry accounts for' : `entry #${result.firstBadSeq}`;
  return `audit log FAILED at ${where} (of ${result.entries} entries): ${result.reason}\n`;
}
