/**
 * The tenant tables as this module sees them: the store's row types plus the columns added by
 * migration `0003_tenant_limits` (limits on teams and orgs, `updated_at` everywhere).
 */
import type { Store } from '../store/index.ts';

type TenantColumns = {
  orgs: { limits: string | null; updated_at: number };
  teams: { limits: string | null; updated_at: number };
  api_keys: { updated_at: number };
};

/** The store's database with the tenant columns typed. */
export function tenantDatabase(store: Pick<Store, 'db'>) {
  return store.db.withTables<TenantColumns>();
}

export type TenantDb = ReturnType<typeof tenantDatabase>;
