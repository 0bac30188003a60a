/** Tenants, keys and usage as aligned plain-text tables for the terminal (`seed keys list`, `seed usage`). */
import type { UsageDimension, UsageRow } from '../store/index.ts';
import type { ApiKey, LimitsConfig, Org, Team } from './types.ts';

/** Columns padded to their widest cell; numbers right-aligned. */
export function formatTable({ header, rows }: { header: readonly string[]; rows: ReadonlyArray<readonly string[]> }): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)));
  const numeric = header.map((_title, column) => rows.length > 0 && rows.every((row) => /^-?[\d.,$]+$/.test(row[column] ?? '')));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) => (numeric[column] ? cell.padStart(widths[column] ?? 0) : cell.padEnd(widths[column] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

const date = (epochMs: number | null) => (epochMs === null ? '-' : new Date(epochMs).toISOString().slice(0, 16).replace('T', ' '));

export function formatLimits(limits: LimitsConfig): string {
  const parts = Object.entries(limits).map(([name, value]) => `${name}=${String(value)}`);
  return parts.length === 0 ? '-' : parts.join(',');
}

export function keyStatus({ key, now }: { key: ApiKey; now: number }): 'active' | 'revoked' | 'expired' {
  if (key.revokedAt !== null) return 'revoked';
  if (key.expiresAt !== null && key.expiresAt <= now) return 'expired';
  return 'active';
}

export function formatKeys({ keys, now }: { keys: readonly ApiKey[]; now: number }): string {
  return formatTable({
    header: ['ID', 'KEY', 'TEAM', 'NAME', 'REGION', 'ROUTES', 'LIMITS', 'EXPIRES', 'STATUS'],
    rows: keys.map((key) => [
      key.id,
      `${key.prefix}…`,
      key.teamId,
      key.name,
      key.region ?? '-',
      key.allowedRoutes?.join(',') ?? 'all',
      formatLimits(key.limits),
      date(key.expiresAt),
      keyStatus({ key, now }),
    ]),
  });
}

export function formatOrgs(orgs: readonly Org[]): string {
  return formatTable({ header: ['ID', 'NAME', 'LIMITS', 'CREATED'], rows: orgs.map((org) => [org.id, org.name, formatLimits(org.limits), date(org.createdAt)]) });
}

export function formatTeams(teams: readonly Team[]): string {
  return formatTable({
    header: ['ID', 'ORG', 'NAME', 'LIMITS', 'CREATED'],
    rows: teams.map((team) => [team.id, team.orgId, team.name, formatLimits(team.limits), date(team.createdAt)]),
  });
}

export function formatUsage({ rows, groupBy }: { rows: readonly UsageRow[]; groupBy: readonly UsageDimension[] }): string {
  return formatTable({
    header: [...groupBy.map((dimension) => dimension.toUpperCase()), 'REQUESTS', 'ERRORS', 'PROMPT', 'COMPLETION', 'COST_USD', 'AVG_MS'],
    rows: rows.map((row) => [
      ...groupBy.map((dimension) => {
        const value = row[dimension];
        if (dimension === 'day' && typeof value === 'number') return new Date(value).toISOString().slice(0, 10);
        return value === null || value === undefined ? '-' : String(value);
      }),
      String(row.requests),
      String(row.errors),
      String(row.promptTokens),
      String(row.completionTokens),
      row.costUsd.toFixed(6),
      row.avgLatencyMs.toFixed(0),
    ]),
  });
}
