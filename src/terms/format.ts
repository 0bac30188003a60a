/**
 * Text for `seed terms list` and `seed terms show ID`. Returns strings; the CLI prints them.
 * Verdicts shown are the ones Seed applies (review honoured), with the declared one alongside
 * where review holds it back, so the table never suggests more is allowed than the gate allows.
 */
import { TERMS_DISCLAIMER } from './disclaimer.ts';
import { verdictFor } from './permissions.ts';
import type { Obligation, TermsProfile } from './schema.ts';
import { PURPOSES } from './vocabulary.ts';

/** Marks a verdict held back by review in the list table. */
const HELD_MARK = '*';

/**
 * `seed terms list`: one row per profile (id, version, a verdict per purpose, review state),
 * then a legend and the disclaimer.
 *
 * @example
 * ```ts
 * process.stdout.write(formatTermsList({ profiles: registry.list() }));
 * ```
 */
export function formatTermsList({ profiles }: { profiles: readonly TermsProfile[] }): string {
  const header = ['ID', 'VERSION', ...PURPOSES.map((purpose) => purpose.toUpperCase()), 'REVIEW'];
  const rows = profiles.map((profile) => [
    profile.id,
    profile.version,
    ...PURPOSES.map((purpose) => {
      const result = verdictFor({ profile, purpose });
      return result.pendingReview ? `${result.verdict}${HELD_MARK}` : result.verdict;
    }),
    reviewState(profile),
  ]);
  const lines = table([header, ...rows]);
  const anyHeld = rows.some((row) => row.some((cell) => cell.endsWith(HELD_MARK)));
  if (anyHeld) {
    lines.push('', `${HELD_MARK} held back until an operator confirms the profile (terms.confirmed in seed.yaml)`);
  }
  lines.push('', TERMS_DISCLAIMER);
  return `${lines.join('\n')}\n`;
}

/**
 * `seed terms show ID`: the whole profile: source, date, quote, review state, and per purpose
 * the applied verdict, clause, reason and obligations, then the disclaimer.
 */
export function formatTermsProfile({ profile }: { profile: TermsProfile }): string {
  const lines = [
    `${profile.id} — ${profile.title}`,
    ...table([
      ['version', profile.version],
      ['date', profile.date ?? 'not stated'],
      ['source', profile.source],
      ['origin', profile.origin === 'shipped' ? 'shipped with Seed' : 'operator (seed.yaml)'],
      ['review', reviewDescription(profile)],
      [profile.quote.kind, profile.quote.text],
      ...(profile.notes === undefined ? [] : [['notes', profile.notes]]),
    ]).map((line) => `  ${line}`),
  ];
  for (const purpose of PURPOSES) {
    const result = verdictFor({ profile, purpose });
    const declared = profile.purposes[purpose];
    const verdict = result.pendingReview ? `${result.verdict} (pending review; declared ${declared.verdict})` : result.verdict;
    lines.push('', `${purpose}: ${verdict}`);
    const details: string[][] = [
      ['clause', result.clause],
      ['reason', result.reason],
      ...declared.obligations.map((obligation) => ['obligation', describeObligation(obligation)]),
    ];
    lines.push(...table(details).map((line) => `  ${line}`));
  }
  lines.push('', TERMS_DISCLAIMER);
  return `${lines.join('\n')}\n`;
}

/** One line for an obligation, e.g. `attribution: Built with Llama`. */
export function describeObligation(obligation: Obligation): string {
  if (obligation.kind === 'mau-threshold') {
    const users = obligation.monthlyActiveUsers.toLocaleString('en-US');
    return `${obligation.kind} (${users} monthly active users): ${obligation.text}`;
  }
  return `${obligation.kind}: ${obligation.text}`;
}

function reviewState(profile: TermsProfile): string {
  if (!profile.review) return '-';
  return profile.confirmation === null ? 'pending' : 'confirmed';
}

function reviewDescription(profile: TermsProfile): string {
  if (!profile.review) return 'not required';
  if (profile.confirmation === null) {
    return 'pending: unverified; evaluation and training stay blocked until confirmed under terms.confirmed';
  }
  const note = profile.confirmation.note === undefined ? '' : ` (${profile.confirmation.note})`;
  return `confirmed by ${profile.confirmation.by} at ${profile.confirmation.at}${note}`;
}

/** Left-aligned columns separated by two spaces; the last column is not padded. */
function table(rows: readonly (readonly string[])[]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, column) => (widths[column] = Math.max(widths[column] ?? 0, cell.length)));
  return rows.map((row) =>
    row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column] ?? 0))).join('  '),
  );
}
