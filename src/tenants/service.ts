/**
 * The tenant service: orgs, teams and virtual keys over the store, with every administrative
 * change appended to the audit log. The admin API and the CLI are thin layers over it.
 */
import { randomBytes } from 'node:crypto';
import type { Store } from '../store/index.ts';
import type { LimitsConfig } from '../limits/index.ts';
import type { TenantContext } from './context.ts';
import { createKey, getKey, listKeys, revokeKey, updateKey } from './keys.ts';
import { createOrg, createTeam, findOrg, findTeam, listOrgs, listTeams, setLimits } from './orgs-teams.ts';
import type { CreateKeyInput, CreateOrgInput, CreateTeamInput, UpdateKeyInput } from './schemas.ts';
import type { RandomBytes } from './secrets.ts';
import { tenantDatabase } from './tables.ts';
import type { ApiKey, AuditLog, CreatedKey, Org, Team } from './types.ts';

export interface TenantServiceOptions {
  store: Pick<Store, 'db' | 'dialect'>;
  /** Receives key, team and org administration (`src/audit/` in production). */
  audit: AuditLog;
  now?: () => number;
  random?: RandomBytes;
}

/** Who is acting, for the audit log: `admin-token`, `cli:<user>`. */
interface Acting {
  actor: string;
}

export interface TenantService {
  createOrg(input: { input: CreateOrgInput } & Acting): Promise<Org>;
  listOrgs(): Promise<Org[]>;
  /** By id or name; not_found otherwise. */
  findOrg(input: { reference: string }): Promise<Org>;
  setOrgLimits(input: { id: string; limits: LimitsConfig | null } & Acting): Promise<Org>;
  createTeam(input: { input: CreateTeamInput } & Acting): Promise<Team>;
  listTeams(input?: { orgId?: string }): Promise<Team[]>;
  /** By id, `org/team`, or a team name unique across orgs. */
  findTeam(input: { reference: string }): Promise<Team>;
  setTeamLimits(input: { id: string; limits: LimitsConfig | null } & Acting): Promise<Team>;
  /** Creates a key; the secret is in the result and nowhere else, ever. */
  createKey(input: { input: CreateKeyInput } & Acting): Promise<CreatedKey>;
  listKeys(input?: { teamId?: string; orgId?: string }): Promise<ApiKey[]>;
  /** With `teamId`, a key of another team is not_found. */
  getKey(input: { id: string; teamId?: string }): Promise<ApiKey>;
  updateKey(input: { id: string; changes: UpdateKeyInput } & Acting): Promise<ApiKey>;
  revokeKey(input: { id: string } & Acting): Promise<ApiKey>;
}

/**
 * @example
 * const tenants = createTenantService({ store, audit });
 * const org = await tenants.createOrg({ input: { name: 'acme' }, actor: 'admin-token' });
 * const team = await tenants.createTeam({ input: { org: org.id, name: 'search' }, actor: 'admin-token' });
 * const { key, secret } = await tenants.createKey({ input: { team: team.id, limits: { rpm: 60 } }, actor: 'admin-token' });
 * await tenants.revokeKey({ id: key.id, actor: 'admin-token' });
 */
export function createTenantService(options: TenantServiceOptions): TenantService {
  const context: TenantContext = {
    db: tenantDatabase(options.store),
    dialect: options.store.dialect,
    audit: options.audit,
    now: options.now ?? Date.now,
    random: options.random ?? randomBytes,
  };
  return Object.freeze({
    createOrg: ({ input, actor }) => createOrg({ context, input, actor }),
    listOrgs: () => listOrgs({ context }),
    findOrg: ({ reference }) => findOrg({ context, reference }),
    async setOrgLimits({ id, limits, actor }) {
      await setLimits({ context, table: 'orgs', id, limits, actor });
      return findOrg({ context, reference: id });
    },
    createTeam: ({ input, actor }) => createTeam({ context, input, actor }),
    listTeams: ({ orgId } = {}) => listTeams({ context, ...(orgId === undefined ? {} : { orgId }) }),
    findTeam: ({ reference }) => findTeam({ context, reference }),
    async setTeamLimits({ id, limits, actor }) {
      await setLimits({ context, table: 'teams', id, limits, actor });
      return findTeam({ context, reference: id });
    },
    createKey: ({ input, actor }) => createKey({ context, input, actor }),
    listKeys: (filters = {}) => listKeys({ context, ...filters }),
    getKey: ({ id, teamId }) => getKey({ context, id, ...(teamId === undefined ? {} : { teamId }) }),
    updateKey: ({ id, changes, actor }) => updateKey({ context, id, changes, actor }),
    revokeKey: ({ id, actor }) => revokeKey({ context, id, actor }),
  } satisfies TenantService);
}
