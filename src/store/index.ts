/** The store: database access for SQLite and PostgreSQL, migrations, ledger queries. */
export { openStore, type Store, type OpenStoreOptions } from './store.ts';
export { DEFAULT_STORE_URL, redact, type StoreDialect, type ConnectOptions } from './connect.ts';
export { MIGRATIONS } from './migrations.ts';
export { isStoreUnavailable } from './unavailable.ts';
export type { CallFilters, CallPage, ListCallsOptions } from './calls.ts';
export { USAGE_DIMENSIONS, type UsageDimension, type UsageGroup, type UsageMetrics, type UsageQuery, type UsageRow } from './usage.ts';
export type { Database, CallsTable, OrgsTable, TeamsTable, ApiKeysTable } from './schema.ts';
