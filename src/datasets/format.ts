/**
 * Text for the `seed datasets` commands. Returns strings; the CLI prints them. Anything that
 * shows a verdict ends with the not-legal-advice disclaimer.
 */
import { TERMS_DISCLAIMER } from '../terms/index.ts';
import { PURPOSES } from '../terms/vocabulary.ts';
import type { DatasetDiff } from './datasets.ts';
import type { RefusalReport } from './permissions.ts';
import type { PurgeOutcome } from './purge.ts';
import type { RecheckResult } from './recheck.ts';
import { formatReference } from './reference.ts';
import type { DatasetVersion, TermsSnapshot } from './types.ts';

/** At most this many sample ids are listed inline; the rest are counted. */
const SHOWN_IDS = 20;

/**
 * The refusal report: counts by profile and clause, then the samples.
 *
 * @example
 * ```ts
 * if (!result.ok) process.stderr.write(formatRefusal({ dataset: 'chats@2', report: result.report }));
 * ```
 */
export function formatRefusal({ dataset, report }: { dataset: string; report: RefusalReport }): string {
  const lines = [
    `export of ${dataset} for purpose "${report.purpose}" refused: ${report.violating} of ${report.total} samples have a lineage that does not allow it`,
    '',
    'forbidden by:',
    ...report.byClause.map((clause) => `  ${clause.samples} samples  ${clause.profile}@${clause.version}  ${clause.clause}: ${clause.reason}`),
    '',
    `samples: ${ids(report.sampleIds)}`,
    '',
    'Re-run with --drop-violations to export a new version without them.',
    '',
    TERMS_DISCLAIMER,
  ];
  return `${lines.join('\n')}\n`;
}

/** One line per version for `seed datasets list`. */
export function formatVersionList({ versions }: { versions: readonly DatasetVersion[] }): string {
  if (versions.length === 0) return 'no datasets\n';
  const rows = versions.map(
    (version) => `${formatReference(version).padEnd(28)}  ${version.hash.slice(0, 12)}  ${String(version.sampleCount).padStart(7)} samples  ${new Date(version.createdAt).toISOString()}  ${version.source.kind}  ${version.createdBy}`,
  );
  return `${rows.join('\n')}\n`;
}

/** `seed datasets show`: the version, how it was made, and its export status per purpose. */
export function formatVersion({ version, terms }: { version: DatasetVersion; terms: TermsSnapshot }): string {
  const lines = [
    formatReference(version),
    `  hash      ${version.hash}`,
    `  samples   ${version.sampleCount}`,
    `  created   ${new Date(version.createdAt).toISOString()} by ${version.createdBy}`,
    `  parent    ${version.parentVersion === null ? '-' : formatReference({ name: version.name, version: version.parentVersion })}`,
    `  source    ${JSON.stringify(version.source)}`,
    `  terms     ${Object.entries(terms.profiles).map(([profile, profileVersion]) => `${profile}@${profileVersion}`).join(', ') || '-'}`,
    '',
    'export status (samples whose lineage allows / forbids each purpose):',
    ...PURPOSES.map((purpose) => {
      const status = terms.status[purpose] ?? { usable: 0, forbidden: 0 };
      return `  ${purpose.padEnd(16)} ${status.forbidden === 0 ? 'allowed' : 'refused'}  (${status.usable} allowed, ${status.forbidden} forbidden)`;
    }),
    '',
    TERMS_DISCLAIMER,
  ];
  return `${lines.join('\n')}\n`;
}

export function formatDiff({ diff }: { diff: DatasetDiff }): string {
  const lines = [
    `${formatReference(diff.from)} → ${formatReference(diff.to)}: +${diff.added.length} -${diff.removed.length} ~${diff.changed.length}`,
    ...diff.added.map((id) => `+ ${id}`),
    ...diff.removed.map((id) => `- ${id}`),
    ...diff.changed.map((id) => `~ ${id}`),
  ];
  return `${lines.join('\n')}\n`;
}

export function formatPurge({ outcomes }: { outcomes: readonly PurgeOutcome[] }): string {
  if (outcomes.length === 0) return 'no datasets\n';
  const lines = outcomes.map((outcome) =>
    outcome.to === null
      ? `${outcome.from}: nothing descends from the source (${outcome.kept} samples kept)`
      : `${outcome.from} → ${outcome.to}: removed ${outcome.removed.length}, kept ${outcome.kept}: ${ids(outcome.removed)}`,
  );
  return `${lines.join('\n')}\n`;
}

export function formatRecheck({ result }: { result: RecheckResult }): string {
  if (result.rechecked === 0) return 'terms unchanged for every dataset version\n';
  const lines = [
    `terms changed: ${result.changedProfiles.map((change) => `${change.profile} ${change.from} → ${change.to}`).join(', ')}`,
    `re-checked ${result.rechecked} dataset versions; export status changed for ${result.changed.length}:`,
    ...result.changed.flatMap((change) => [
      `  ${change.dataset}`,
      ...change.purposes.map(
        (each) => `    ${each.purpose}: ${each.exportableBefore ? 'allowed' : 'refused'} → ${each.exportableAfter ? 'allowed' : 'refused'} (forbidden ${each.before.forbidden} → ${each.after.forbidden})`,
      ),
    ]),
    '',
    TERMS_DISCLAIMER,
  ];
  return `${lines.join('\n')}\n`;
}

function ids(values: readonly string[]): string {
  const shown = values.slice(0, SHOWN_IDS).join(', ');
  return values.length > SHOWN_IDS ? `${shown}, … (${values.length - SHOWN_IDS} more)` : shown;
}
