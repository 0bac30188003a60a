/**
 * `CallRecord` ⇄ `calls` row. Kept apart from the queries so the mapping is one screen a
 * reader can check column by column.
 */
import type { Selectable, Insertable } from 'kysely';
import type { CallEndpoint, CallRecord, CallStatus } from '../ledger/types.ts';
import type { ErrorCode } from '../errors.ts';
import type { StoreDialect } from './connect.ts';
import type { CallsTable } from './schema.ts';

/** The column types `calls` uses, as PostgreSQL's `format_type` spells them. */
export type PostgresColumnType = 'text' | 'bigint' | 'integer' | 'boolean' | 'double precision';

/**
 * Every `calls` column in insert order, with its PostgreSQL type. The one list the batch
 * inserts are written from (see calls.ts): typing it as a `Record` over `CallsTable` makes the
 * compiler ask for any column added to the schema, and a store test compares the types with
 * the live table, so the statements cannot drift from the migrations.
 */
export const CALL_COLUMN_TYPES: Readonly<Record<keyof CallsTable, PostgresColumnType>> = Object.freeze({
  id: 'text',
  started_at: 'bigint',
  endpoint: 'text',
  route: 'text',
  served_route: 'text',
  deployment: 'text',
  provider: 'text',
  model: 'text',
  region: 'text',
  purpose: 'text',
  terms_profile: 'text',
  terms_version: 'text',
  org_id: 'text',
  team_id: 'text',
  key_id: 'text',
  status: 'text',
  http_status: 'integer',
  error_code: 'text',
  stream: 'boolean',
  attempts: 'integer',
  prompt_tokens: 'integer',
  completion_tokens: 'integer',
  cached_tokens: 'integer',
  usage_reported: 'boolean',
  cost_usd: 'double precision',
  latency_ms: 'double precision',
  ttft_ms: 'double precision',
  metadata: 'text',
  payload: 'text',
  client_request_id: 'text',
});

/** The names of `CALL_COLUMN_TYPES`, in the same order. */
export const CALL_COLUMNS = Object.freeze(Object.keys(CALL_COLUMN_TYPES) as Array<keyof CallsTable>);

/** A value as both drivers bind it (booleans already encoded for the dialect). */
export type CallColumnValue = string | number | boolean | null;

/**
 * The values of `call` in `CALL_COLUMNS` order, for statements that bind by position.
 * A missing value binds NULL, as kysely's column DEFAULT would (no `calls` column has a default).
 */
export function toCallValues({ dialect, call }: { dialect: StoreDialect; call: CallRecord }): CallColumnValue[] {
  // Written out in CALL_COLUMNS order rather than mapped from `toCallRow` by name: the ledger
  // encodes every call, and the row object plus a lookup by name per column cost 1.6 µs per call
  // on the gateway's thread. The store tests check this order against CALL_COLUMNS and toCallRow.
  const values: Array<CallColumnValue | undefined> = [
    call.id,
    call.startedAt,
    call.endpoint,
    call.route,
    call.servedRoute,
    call.deployment,
    call.provider,
    call.model,
    call.region,
    call.purpose,
    call.termsProfile,
    call.termsVersion,
    call.orgId,
    call.teamId,
    call.keyId,
    call.status,
    call.httpStatus,
    call.errorCode,
    encodeBoolean({ dialect, value: call.stream }),
    call.attempts,
    call.promptTokens,
    call.completionTokens,
    call.cachedTokens,
    encodeBoolean({ dialect, value: call.usageReported }),
    call.costUsd,
    call.latencyMs,
    call.ttftMs,
    call.metadata === null ? null : JSON.stringify(call.metadata),
    call.payload === null ? null : JSON.stringify(call.payload),
    call.clientRequestId,
  ];
  // A record from an older spill file may lack a later field: NULL, as by name.
  for (let index = 0; index < values.length; index++) if (values[index] === undefined) values[index] = null;
  return values as CallColumnValue[];
}

/**
 * The values of one call as the ledger's journal writes them, one line per call: `toCallValues`
 * with the `postgres` dialect (booleans as booleans), as JSON text.
 */
export function encodeCallValues(call: CallRecord): string {
  return JSON.stringify(toCallValues({ dialect: 'postgres', call }));
}

/** Encodes a boolean as the dialect binds it: better-sqlite3 accepts only numbers for 0/1. */
export function encodeBoolean({ dialect, value }: { dialect: StoreDialect; value: boolean }): boolean | number {
  if (dialect === 'sqlite') return value ? 1 : 0;
  return value;
}

/** The row to insert for `call`. */
export function toCallRow({ dialect, call }: { dialect: StoreDialect; call: CallRecord }): Insertable<CallsTable> {
  return {
    id: call.id,
    started_at: call.startedAt,
    endpoint: call.endpoint,
    route: call.route,
    served_route: call.servedRoute,
    deployment: call.deployment,
    provider: call.provider,
    model: call.model,
    region: call.region,
    purpose: call.purpose,
    terms_profile: call.termsProfile,
    terms_version: call.termsVersion,
    org_id: call.orgId,
    team_id: call.teamId,
    key_id: call.keyId,
    status: call.status,
    http_status: call.httpStatus,
    error_code: call.errorCode,
    stream: encodeBoolean({ dialect, value: call.stream }),
    attempts: call.attempts,
    prompt_tokens: call.promptTokens,
    completion_tokens: call.completionTokens,
    cached_tokens: call.cachedTokens,
    usage_reported: encodeBoolean({ dialect, value: call.usageReported }),
    cost_usd: call.costUsd,
    latency_ms: call.latencyMs,
    ttft_ms: call.ttftMs,
    metadata: call.metadata === null ? null : JSON.stringify(call.metadata),
    payload: call.payload === null ? null : JSON.stringify(call.payload),
    client_request_id: call.clientRequestId,
  };
}

/** The `CallRecord` stored in `row`. */
export function fromCallRow(row: Selectable<CallsTable>): CallRecord {
  return {
    id: row.id,
    clientRequestId: row.client_request_id ?? null,
    startedAt: Number(row.started_at),
    endpoint: row.endpoint as CallEndpoint,
    route: row.route,
    servedRoute: row.served_route,
    deployment: row.deployment,
    provider: row.provider,
    model: row.model,
    region: row.region,
    purpose: row.purpose,
    termsProfile: row.terms_profile,
    termsVersion: row.terms_version,
    orgId: row.org_id,
    teamId: row.team_id,
    keyId: row.key_id,
    status: row.status as CallStatus,
    httpStatus: row.http_status,
    errorCode: row.error_code as ErrorCode | null,
    stream: Boolean(row.stream),
    attempts: row.attempts,
    promptTokens: row.prompt_tokens,
    completionTokens: row.completion_tokens,
    cachedTokens: row.cached_tokens,
    usageReported: Boolean(row.usage_reported),
    costUsd: row.cost_usd,
    latencyMs: row.latency_ms,
    ttftMs: row.ttft_ms,
    metadata: row.metadata === null ? null : (JSON.parse(row.metadata) as Record<string, string>),
    payload: row.payload === null ? null : (JSON.parse(row.payload) as CallRecord['payload']),
  };
}
