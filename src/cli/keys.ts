/**
 * `seed orgs|teams|keys|usage`: tenant administration and usage reports from the command line.
 * The CLI talks to the store directly through the same tenant service as the admin API, at the
 * store URL of seed.yaml (or `--store URL`); every change lands in the audit log as `cli:<user>`.
 */
import { userInfo } from 'node:os';
import { type Command, InvalidArgumentError } from 'commander';
import type { z } from 'zod';
import { createAuditLog } from '../audit/index.ts';
import { ConfigError } from '../config/load.ts';
import { SeedError } from '../errors.ts';
import { loadSeedConfig } from '../config/seed-config.ts';
import { openStore, type Store } from '../store/index.ts';
import {
  createKeyInputSchema,
  createOrgInputSchema,
  createTeamInputSchema,
  createTenantService,
  type LimitsConfig,
  type TenantService,
} from '../tenants/index.ts';
import { formatKeys, formatOrgs, formatTeams, formatUsage } from '../tenants/format.ts';
import { parseGroupBy, usageWindow } from '../tenants/usage.ts';

interface StoreFlags {
  store?: string;
  config?: string;
}

interface LimitFlags {
  rpm?: number;
  tpm?: number;
  concurrent?: number;
  usdPerDay?: number;
  usdPerMonth?: number;
}

/** Flag names for the input fields a validation error may name. */
const FLAG_OF: Readonly<Record<string, string>> = {
  'limits.rpm': '--rpm',
  'limits.tpm': '--tpm',
  'limits.concurrent': '--concurrent',
  'limits.usdPerDay': '--usd-per-day',
  'limits.usdPerMonth': '--usd-per-month',
  allowedRoutes: '--routes',
  expiresAt: '--expires',
};

function number(value: string): number {
  const parsed = Number(value);
  if (value.trim() === '' || !Number.isFinite(parsed)) throw new InvalidArgumentError('expected a number');
  return parsed;
}

function limitsOf(flags: LimitFlags): LimitsConfig | undefined {
  const limits = Object.fromEntries(
    (['rpm', 'tpm', 'concurrent', 'usdPerDay', 'usdPerMonth'] as const).flatMap((name) => (flags[name] === undefined ? [] : [[name, flags[name]]])),
  );
  return Object.keys(limits).length === 0 ? undefined : limits;
}

function validated<Schema extends z.ZodType>(schema: Schema, value: unknown): z.infer<Schema> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const path = (issue?.path ?? []).map(String).join('.');
  const flag = FLAG_OF[path] ?? FLAG_OF[path.split('.')[0] ?? ''] ?? (path || 'input');
  throw new SeedError('invalid_request', `${flag}: ${issue?.message ?? 'invalid'}`);
}

function storeUrlOf(flags: StoreFlags): string {
  if (flags.store) return flags.store;
  return loadSeedConfig({ ...(flags.config ? { path: flags.config } : {}) }).config.store.url;
}

/** Opens the store, runs `work` with the tenant service, closes; failures become one line on stderr and exit code 1. */
async function withTenants(flags: StoreFlags, work: (services: { tenants: TenantService; store: Store }) => Promise<void>): Promise<void> {
  let store: Store | undefined;
  try {
    store = await openStore({ url: storeUrlOf(flags) });
    const tenants = createTenantService({ store, audit: createAuditLog({ store }) });
    await work({ tenants, store });
  } catch (error) {
    if (!(error instanceof SeedError || error instanceof ConfigError)) throw error;
    process.stderr.write(`seed: ${error.message}\n`);
    process.exitCode = 1;
  } finally {
    await store?.close();
  }
}

const actor = () => `cli:${userInfo().username}`;
const print = (text: string) => process.stdout.write(`${text}\n`);

function storeOptions(command: Command): Command {
  return command
    .option('--store <url>', 'store URL (default: store.url of seed.yaml, else sqlite:./data/seed.db)')
    .option('-c, --config <file>', 'config file whose store.url to use');
}

function limitOptions(command: Command): Command {
  return command
    .option('--rpm <n>', 'requests per minute', number)
    .option('--tpm <n>', 'tokens per minute', number)
    .option('--concurrent <n>', 'calls in flight at once', number)
    .option('--usd-per-day <usd>', 'dollars per UTC day', number)
    .option('--usd-per-month <usd>', 'dollars per UTC month', number);
}

export function registerTenantCommands(program: Command): void {
  const orgs = program.command('orgs').description('Organizations: the top of org → team → key.');
  limitOptions(storeOptions(orgs.command('create').description('Create an org.').argument('<name>')))
    .action((name: string, flags: StoreFlags & LimitFlags) =>
      withTenants(flags, async ({ tenants }) => {
        const limits = limitsOf(flags);
        const org = await tenants.createOrg({ input: validated(createOrgInputSchema, { name, ...(limits ? { limits } : {}) }), actor: actor() });
        print(formatOrgs([org]));
      }),
    );
  storeOptions(orgs.command('list').description('List orgs.')).action((flags: StoreFlags) =>
    withTenants(flags, async ({ tenants }) => {
      print(formatOrgs(await tenants.listOrgs()));
    }),
  );

  const teams = program.command('teams').description('Teams: own keys, usage and limits within an org.');
  limitOptions(storeOptions(teams.command('create').description('Create a team in an org.').argument('<name>').requiredOption('--org <org>', 'org id or name')))
    .action((name: string, flags: StoreFlags & LimitFlags & { org: string }) =>
      withTenants(flags, async ({ tenants }) => {
        const limits = limitsOf(flags);
        const input = validated(createTeamInputSchema, { org: flags.org, name, ...(limits ? { limits } : {}) });
        print(formatTeams([await tenants.createTeam({ input, actor: actor() })]));
      }),
    );
  storeOptions(teams.command('list').description('List teams.').option('--org <org>', 'only this org (id or name)')).action((flags: StoreFlags & { org?: string }) =>
    withTenants(flags, async ({ tenants }) => {
      const orgId = flags.org === undefined ? undefined : (await tenants.findOrg({ reference: flags.org })).id;
      print(formatTeams(await tenants.listTeams(orgId === undefined ? {} : { orgId })));
    }),
  );

  const keys = program.command('keys').description('Virtual keys: what clients send as their API key.');
  limitOptions(
    storeOptions(
      keys
        .command('create')
        .description('Create a key; prints its secret once on stdout (details on stderr).')
        .requiredOption('--team <team>', 'team id, ORG/TEAM, or a unique team name')
        .option('--name <name>', 'a label for the key')
        .option('--routes <routes>', 'comma-separated routes the key may use (default: all)')
        .option('--region <region>', 'region its traffic must stay in (e.g. eu)')
        .option('--expires <when>', 'expiry: a duration from now (30d, 12h) or an ISO date')
        .option('--store-payloads', 'store request and response bodies of its calls'),
    ),
  ).action((flags: StoreFlags & LimitFlags & { team: string; name?: string; routes?: string; region?: string; expires?: string; storePayloads?: boolean }) =>
    withTenants(flags, async ({ tenants }) => {
      const limits = limitsOf(flags);
      const input = validated(createKeyInputSchema, {
        team: flags.team,
        ...(flags.name === undefined ? {} : { name: flags.name }),
        ...(flags.routes === undefined ? {} : { allowedRoutes: flags.routes.split(',').map((route) => route.trim()).filter(Boolean) }),
        ...(flags.region === undefined ? {} : { region: flags.region }),
        ...(flags.expires === undefined ? {} : { expiresAt: flags.expires }),
        ...(limits ? { limits } : {}),
        ...(flags.storePayloads ? { storePayloads: true } : {}),
      });
      const { key, secret } = await tenants.createKey({ input, actor: actor() });
      process.stderr.write(`${formatKeys({ keys: [key], now: Date.now() })}\n\nThe secret below is shown once and cannot be recovered:\n`);
      print(secret);
    }),
  );
  storeOptions(keys.command('list').description('List keys (never their secrets).').option('--team <team>', 'only this team')).action(
    (flags: StoreFlags & { team?: string }) =>
      withTenants(flags, async ({ tenants }) => {
        const teamId = flags.team === undefined ? undefined : (await tenants.findTeam({ reference: flags.team })).id;
        print(formatKeys({ keys: await tenants.listKeys(teamId === undefined ? {} : { teamId }), now: Date.now() }));
      }),
  );
  storeOptions(keys.command('revoke').description('Revoke a key; every gateway refuses it within a second.').argument('<id>')).action(
    (id: string, flags: StoreFlags) =>
      withTenants(flags, async ({ tenants }) => {
        const key = await tenants.revokeKey({ id, actor: actor() });
        print(`revoked ${key.id} (${key.prefix}…)`);
      }),
  );

  storeOptions(
    program
      .command('usage')
      .description('Usage from the ledger: requests, tokens, cost, latency, grouped.')
      .option('--by <dimensions>', 'group by: team,key,route,deployment,day,org,model,provider', 'team')
      .option('--since <when>', 'start: a duration back (7d, 24h) or an ISO date', '7d')
      .option('--until <when>', 'end (exclusive): a duration back or an ISO date (default: now)')
      .option('--team <team>', 'only this team')
      .option('--json', 'print JSON rows instead of a table'),
  ).action((flags: StoreFlags & { by: string; since: string; until?: string; team?: string; json?: boolean }) =>
    withTenants(flags, async ({ tenants, store }) => {
      const groupBy = parseGroupBy({ text: flags.by, param: '--by' });
      const window = usageWindow({ since: flags.since, until: flags.until, now: Date.now() });
      const teamId = flags.team === undefined ? undefined : (await tenants.findTeam({ reference: flags.team })).id;
      const rows = await store.usage({ groupBy, ...window, ...(teamId === undefined ? {} : { teamId }) });
      print(flags.json ? JSON.stringify(rows, null, 2) : formatUsage({ rows, groupBy }));
    }),
  );
}
