/**
 * Row types of every table, as kysely sees them. Timestamps are epoch milliseconds (bigint on
 * PostgreSQL, parsed to `number`; integer on SQLite). JSON columns hold text so both dialects
 * store and return the same thing. Booleans are `boolean` on PostgreSQL and 0/1 on SQLite,
 * which is why their select type is `boolean | number`; read them with `Boolean(value)`.
 */
import type { ColumnType } from 'kysely';

/** A boolean column: written as `true`/`false` (PostgreSQL) or 1/0 (SQLite). */
export type BooleanColumn = ColumnType<boolean | number, boolean | number, boolean | number>;

/** The ledger: one row per call, the columns of `CallRecord` in snake_case. */
export interface CallsTable {
  id: string;
  started_at: number;
  endpoint: string;
  route: string;
  served_route: string | null;
  deployment: string | null;
  provider: string | null;
  model: string | null;
  region: string | null;
  purpose: string;
  terms_profile: string | null;
  terms_version: string | null;
  org_id: string | null;
  team_id: string | null;
  key_id: string | null;
  status: string;
  http_status: number;
  error_code: string | null;
  stream: BooleanColumn;
  attempts: number;
  prompt_tokens: number;
  completion_tokens: number;
  cached_tokens: number;
  usage_reported: BooleanColumn;
  cost_usd: number;
  latency_ms: number;
  ttft_ms: number | null;
  /** JSON text of `Record<string, string>`, or null. */
  metadata: string | null;
  /** JSON text of `{ request, response }`, or null. */
  payload: string | null;
  client_request_id: string | null;
}

export interface OrgsTable {
  id: string;
  name: string;
  created_at: number;
}

export interface TeamsTable {
  id: string;
  org_id: string;
  name: string;
  created_at: number;
}

export interface ApiKeysTable {
  id: string;
  team_id: string;
  name: string;
  /** Hash of the secret; the secret itself is never stored. */
  key_hash: string;
  /** The first characters of the secret, shown in listings to tell keys apart. */
  key_prefix: string;
  region: string | null;
  /** JSON text of `string[]`, or null for "all routes". */
  allowed_routes: string | null;
  /** JSON text, or null. */
  limits: string | null;
  /** JSON text, or null. */
  budget: string | null;
  store_payloads: ColumnType<boolean | number, boolean | number | undefined, boolean | number>;
  expires_at: number | null;
  revoked_at: number | null;
  created_at: number;
}

/** The whole database, for `Kysely<Database>`. */
export interface Database {
  calls: CallsTable;
  orgs: OrgsTable;
  teams: TeamsTable;
  api_keys: ApiKeysTable;
}
