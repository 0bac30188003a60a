/**
 * Usage aggregates over the ledger: requests, errors, tokens, cost and latency per group.
 * Percentiles are left out on purpose: PostgreSQL has `percentile_cont`, SQLite has nothing
 * portable, and one query must mean the same on both.
 */
import { sql, type Kysely, type RawBuilder } from 'kysely';
import { SeedError } from '../errors.ts';
import type { StoreDialect } from './connect.ts';
import type { Database } from './schema.ts';

/** What usage can be grouped by. `day` is the UTC day, as epoch ms of its midnight. */
export type UsageDimension = 'team' | 'key' | 'route' | 'deployment' | 'day' | 'org' | 'model' | 'provider';

export const USAGE_DIMENSIONS: readonly UsageDimension[] = Object.freeze([
  'team', 'key', 'route', 'deployment', 'day', 'org', 'model', 'provider',
]);

export interface UsageQuery {
  groupBy: readonly UsageDimension[];
  /** Inclusive lower bound on `startedAt` (epoch ms). */
  since: number;
  /** Exclusive upper bound on `startedAt` (epoch ms). */
  until: number;
  teamId?: string;
  keyId?: string;
  orgId?: string;
}

/** The group's key: one field per requested dimension (absent ones are not set). */
export interface UsageGroup {
  team?: string | null;
  key?: string | null;
  route?: string;
  deployment?: string | null;
  day?: number;
  org?: string | null;
  model?: string | null;
  provider?: string | null;
}

export interface UsageMetrics {
  requests: number;
  /** Calls with status `error` (aborted calls are counted in `aborted`). */
  errors: number;
  aborted: number;
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
  costUsd: number;
  avgLatencyMs: number;
  maxLatencyMs: number;
}

export type UsageRow = UsageGroup & UsageMetrics;

const DAY_MS = 86_400_000;

// Literals, not bound parameters: PostgreSQL only matches a select expression to its GROUP BY
// twin when the text is identical, and `$1` vs `$2` would not be.
const DIMENSION_SQL: Readonly<Record<UsageDimension, RawBuilder<unknown>>> = {
  team: sql`team_id`,
  key: sql`key_id`,
  route: sql`route`,
  deployment: sql`deployment`,
  day: sql`(started_at / ${sql.lit(DAY_MS)}) * ${sql.lit(DAY_MS)}`,
  org: sql`org_id`,
  model: sql`model`,
  provider: sql`provider`,
};

interface Context {
  dialect: StoreDialect;
  db: Kysely<Database>;
}

function buildUsageQuery({ context, query }: { context: Context; query: UsageQuery }) {
  validate(query);
  const dimensions = [...new Set(query.groupBy)];
  let builder = context.db
    .selectFrom('calls')
    .where('started_at', '>=', query.since)
    .where('started_at', '<', query.until);
  if (query.teamId !== undefined) builder = builder.where('team_id', '=', query.teamId);
  if (query.keyId !== undefined) builder = builder.where('key_id', '=', query.keyId);
  if (query.orgId !== undefined) builder = builder.where('org_id', '=', query.orgId);
  const selected = builder.select([
    ...dimensions.map((dimension) => DIMENSION_SQL[dimension].as(`group_${dimension}`)),
    sql<number>`count(*)`.as('requests'),
    sql<number>`sum(case when status = 'error' then 1 else 0 end)`.as('errors'),
    sql<number>`sum(case when status = 'aborted' then 1 else 0 end)`.as('aborted'),
    sql<number>`sum(prompt_tokens)`.as('prompt_tokens'),
    sql<number>`sum(completion_tokens)`.as('completion_tokens'),
    sql<number>`sum(cached_tokens)`.as('cached_tokens'),
    sql<number>`sum(cost_usd)`.as('cost_usd'),
    sql<number>`avg(latency_ms)`.as('avg_latency_ms'),
    sql<number>`max(latency_ms)`.as('max_latency_ms'),
  ]);
  if (dimensions.length === 0) return selected;
  const keys = dimensions.map((dimension) => DIMENSION_SQL[dimension]);
  return keys.reduce((ordered, key) => ordered.orderBy(key), selected.groupBy(keys));
}

/**
 * Aggregates calls started in `[since, until)`, grouped by the requested dimensions.
 *
 * @example
 * await usage({ context, query: { groupBy: ['team', 'day'], since: Date.now() - 7 * 86_400_000, until: Date.now() } });
 */
export async function usage({ context, query }: { context: Context; query: UsageQuery }): Promise<UsageRow[]> {
  const rows = await buildUsageQuery({ context, query }).execute();
  const dimensions = [...new Set(query.groupBy)];
  return rows.map((row) => decodeRow({ row: row as Record<string, unknown>, dimensions }));
}

/** The database's plan for `usage(query)`: EXPLAIN QUERY PLAN (SQLite) or EXPLAIN (PostgreSQL), one line per step. */
export async function explainUsage({ context, query }: { context: Context; query: UsageQuery }): Promise<string[]> {
  const compiled = buildUsageQuery({ context, query }).compile();
  const prefix = context.dialect === 'sqlite' ? 'explain query plan ' : 'explain ';
  const result = await context.db.executeQuery<Record<string, unknown>>({
    ...compiled,
    sql: prefix + compiled.sql,
  });
  return result.rows.map((row) =>
    context.dialect === 'sqlite' ? String(row['detail']) : String(row['QUERY PLAN']),
  );
}

function validate(query: UsageQuery): void {
  for (const dimension of query.groupBy) {
    if (!USAGE_DIMENSIONS.includes(dimension)) {
      throw new SeedError('invalid_request', `cannot group usage by "${String(dimension)}"`, { param: 'groupBy' });
    }
  }
  if (!Number.isFinite(query.since) || !Number.isFinite(query.until) || query.since > query.until) {
    throw new SeedError('invalid_request', 'usage needs finite since ≤ until (epoch ms)', { param: 'since' });
  }
}

function decodeRow({ row, dimensions }: { row: Record<string, unknown>; dimensions: UsageDimension[] }): UsageRow {
  const number = (name: string): number => Number(row[name] ?? 0);
  const result: UsageRow = {
    requests: number('requests'),
    errors: number('errors'),
    aborted: number('aborted'),
    promptTokens: number('prompt_tokens'),
    completionTokens: number('completion_tokens'),
    cachedTokens: number('cached_tokens'),
    costUsd: number('cost_usd'),
    avgLatencyMs: number('avg_latency_ms'),
    maxLatencyMs: number('max_latency_ms'),
  };
  for (const dimension of dimensions) {
    const value = row[`group_${dimension}`];
    if (dimension === 'day') result.day = Number(value);
    else if (dimension === 'route') result.route = String(value);
    else result[dimension] = value === null || value === undefined ? null : String(value);
  }
  return result;
}
