/**
 * Shared pieces of the tenant suites: a recording audit log, a query counter, and a gateway
 * (simulator + Seed) wired with the tenant authenticator and admin API over a given store.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KyselyPlugin, PluginTransformQueryArgs, PluginTransformResultArgs, QueryResult, RootOperationNode, UnknownRow } from 'kysely';
import { createAdminApi } from '../src/gateway/http/admin.ts';
import type { Logger } from '../src/log.ts';
import type { Store } from '../src/store/index.ts';
import { createAuthenticator, createTenantService, type AuditEntry, type AuditLog, type Authenticator, type AuthMode, type TenantService } from '../src/tenants/index.ts';
import { standardConfig, startStack, type Stack } from './helpers/stack.ts';

export const ADMIN_TOKEN = 'admin-token-for-tests-0123456789';
export const ROUTES = new Set(['gpt-4o-mini', 'azure-mini', 'llama', 'claude-sonnet', 'text-embedding-3-small']);

export function recordingAudit(): AuditLog & { entries: AuditEntry[] } {
  const entries: AuditEntry[] = [];
  return {
    entries,
    async append(entry) {
      entries.push(entry);
      return entry;
    },
  };
}

/** Counts statements sent to the database, to prove which paths do not touch it. */
export function countingStore(store: Store): { store: Pick<Store, 'db' | 'dialect'>; queries: () => number } {
  let count = 0;
  const plugin: KyselyPlugin = {
    transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
      return args.node;
    },
    // Once per statement executed (a query compiled once and run again counts each time).
    async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
      count += 1;
      return args.result;
    },
  };
  return { store: { db: store.db.withPlugin(plugin), dialect: store.dialect }, queries: () => count };
}

export interface TenantGateway {
  stack: Stack;
  tenants: TenantService;
  authenticator: Authenticator;
  audit: ReturnType<typeof recordingAudit>;
  /** `http://127.0.0.1:PORT` (no `/v1`). */
  url: string;
  close(): Promise<void>;
}

/** Simulator + gateway over `store`, with tenant auth, the admin API and a private spill directory. */
export async function startTenantGateway({
  store,
  mode = 'keys',
  logger,
  pollIntervalMs,
}: {
  store: Store;
  mode?: AuthMode;
  logger?: Logger;
  pollIntervalMs?: number;
}): Promise<TenantGateway> {
  const spill = mkdtempSync(join(tmpdir(), 'seed-tenants-spill-'));
  const audit = recordingAudit();
  const tenants = createTenantService({ store, audit });
  const authenticator = createAuthenticator({ store, mode, host: '127.0.0.1', ...(pollIntervalMs === undefined ? {} : { pollIntervalMs }) });
  const plugin = createAdminApi({ tenants, authenticator, store, adminToken: ADMIN_TOKEN, knownRoutes: ROUTES });
  const stack = await startStack({
    config: (simulatorUrl) => `${standardConfig(simulatorUrl)}\nledger: { spillDirectory: ${JSON.stringify(spill)}, flushIntervalMs: 10 }\n`,
    start: { store, authenticate: authenticator.authenticate, plugins: [plugin], ...(logger ? { logger } : {}) },
  });
  return {
    stack,
    tenants,
    authenticator,
    audit,
    url: stack.seed.url,
    async close() {
      await stack.close();
      await authenticator.close();
      rmSync(spill, { recursive: true, force: true });
    },
  };
}

/** A JSON request to the gateway; returns status and parsed body. */
export async function requestJson({
  url,
  method = 'GET',
  token,
  body,
}: {
  url: string;
  method?: string;
  token?: string;
  body?: unknown;
}): Promise<{ status: number; body: Record<string, unknown>; text: string }> {
  const response = await fetch(url, {
    method,
    headers: {
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>), text };
}

/** The `error.code` of an OpenAI-format error body. */
export function errorCode(body: Record<string, unknown>): unknown {
  return (body['error'] as { code?: unknown } | undefined)?.code;
}
