/**
 * The composition root: the one place that wires Seed together. Read this file to see the
 * whole system — config, providers, routing, admission, the call service, sinks, HTTP.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent } from 'undici';
import type { FastifyInstance } from 'fastify';
import { loadConfigFile, type PathSegment } from './config/load.ts';
import type { SeedConfig } from './config/schema.ts';
import { createCallService } from './gateway/calls.ts';
import { ANONYMOUS_CALLER, OPEN_ADMISSION, type Admission, type Authenticate } from './gateway/hooks.ts';
import { createGatewayApp } from './gateway/http/app.ts';
import type { CallRecord, CallSink } from './ledger/types.ts';
import { createLogger, type Logger } from './log.ts';
import { createMetrics } from './metrics/metrics.ts';
import { BUILTIN_PROVIDERS, createProviderRegistry } from './providers/registry.ts';
import { HealthTracker } from './routing/health.ts';
import { buildRouteTable } from './routing/route-table.ts';
import { createRouter } from './routing/router.ts';
import { startSimulator, type SimulatorHandle } from './simulator/index.ts';

export const EXAMPLE_CONFIG = fileURLToPath(new URL('../config/example.seed.yaml', import.meta.url));

/** Checks that need the provider registry: known provider names and valid adapter options. */
export function providerChecks(config: SeedConfig): Array<{ path: PathSegment[]; message: string }> {
  const problems: Array<{ path: PathSegment[]; message: string }> = [];
  const known = new Map(BUILTIN_PROVIDERS.map((definition) => [definition.name, definition]));
  for (const [name, deployment] of Object.entries(config.deployments)) {
    const definition = known.get(deployment.provider);
    if (!definition) {
      problems.push({
        path: ['deployments', name, 'provider'],
        message: `unknown provider "${deployment.provider}" (known: ${[...known.keys()].join(', ')})`,
      });
      continue;
    }
    const options = definition.optionsSchema.safeParse(deployment.options);
    if (!options.success) {
      for (const issue of options.error.issues) {
        const path = issue.path.filter((segment): segment is PathSegment => typeof segment !== 'symbol');
        problems.push({ path: ['deployments', name, 'options', ...path], message: issue.message });
      }
    }
  }
  return problems;
}

export interface LoadedConfig {
  config: SeedConfig;
  path: string;
  /** True when no config was given and the bundled example (simulator-backed) is used. */
  isExample: boolean;
}

/**
 * Finds and loads the config: an explicit path, else `./seed.yaml`, else the bundled example.
 * Throws ConfigError with every problem and its line.
 */
export function loadSeedConfig(input: { path?: string; cwd?: string; env?: NodeJS.ProcessEnv } = {}): LoadedConfig {
  const cwd = input.cwd ?? process.cwd();
  const explicit = input.path ?? input.env?.SEED_CONFIG;
  const local = resolve(cwd, 'seed.yaml');
  const path = explicit ? resolve(cwd, explicit) : existsSync(local) ? local : EXAMPLE_CONFIG;
  const config = loadConfigFile(path, { env: input.env ?? process.env, checks: providerChecks });
  return { config, path, isExample: path === EXAMPLE_CONFIG };
}

export interface SeedInstance {
  url: string;
  app: FastifyInstance;
  simulator: SimulatorHandle | undefined;
  close(): Promise<void>;
}

export interface StartOptions {
  config: SeedConfig;
  logger?: Logger;
  /** Overrides server.host / server.port from config. */
  host?: string;
  port?: number;
  /** Extra sinks for call records (tests use one to observe calls). */
  sinks?: CallSink[];
  authenticate?: Authenticate;
  admission?: Admission;
  now?: () => number;
  random?: () => number;
}

export async function startSeed(options: StartOptions): Promise<SeedInstance> {
  const { config } = options;
  const logger = options.logger ?? createLogger();
  const now = options.now ?? Date.now;

  const simulator = config.simulator.enabled
    ? await startSimulator({ ...config.simulator.options, host: config.simulator.host, port: config.simulator.port })
    : undefined;
  if (simulator) logger('info', `provider simulator listening on ${simulator.url}`);

  // One pool for all upstream traffic; keep-alive matters more than anything else for overhead.
  const dispatcher = new Agent({ keepAliveTimeout: 30_000, keepAliveMaxTimeout: 600_000, connections: 512 });
  const providers = createProviderRegistry({ dependencies: { dispatcher, now } });
  const table = buildRouteTable(config);
  const health = new HealthTracker({ options: config.health, now });
  const router = createRouter({
    table,
    health,
    now,
    random: options.random ?? Math.random,
    sleep: (milliseconds, signal) => sleep(milliseconds, signal),
  });
  const metrics = createMetrics({ knownRoutes: new Set(table.routes.keys()) });
  const sinks: CallSink[] = [metrics, ...(options.sinks ?? [])];
  const sink: CallSink = {
    record(call: CallRecord) {
      for (const each of sinks) {
        try {
          each.record(call);
        } catch (error) {
          logger('error', 'a call sink failed', error);
        }
      }
    },
  };

  const calls = createCallService({
    router,
    routes: table.routes,
    adapterFor: (deployment) => providers.adapter(deployment.provider),
    admission: options.admission ?? OPEN_ADMISSION,
    sink,
    price: () => 0,
    exclude: () => null,
    termsVersion: () => null,
    now,
  });

  const startedAt = Math.floor(now() / 1000);
  const app = await createGatewayApp({
    calls,
    authenticate: options.authenticate ?? (() => ANONYMOUS_CALLER),
    bodyLimitBytes: config.server.bodyLimitBytes,
    headersTimeoutMs: config.server.headersTimeoutMs,
    listModels: (caller) =>
      [...table.routes.values()]
        .filter((route) => !route.hidden && (!caller.allowedRoutes || caller.allowedRoutes.has(route.name)))
        .map((route) => ({ id: route.name, created: startedAt, owned_by: 'seed' })),
    metricsText: () => metrics.text(),
    onError: (error) => metrics.countError(error),
    log: logger,
  });

  const host = options.host ?? config.server.host;
  const port = options.port ?? config.server.port;
  await app.listen({ host, port });
  const address = app.server.address();
  const boundPort = typeof address === 'object' && address ? address.port : port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${boundPort}`;

  return {
    url,
    app,
    simulator,
    async close() {
      await app.close();
      await dispatcher.close();
      await simulator?.close();
    },
  };
}

function sleep(milliseconds: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolvePromise) => {
    if (signal.aborted) return resolvePromise();
    const timer = setTimeout(done, milliseconds);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolvePromise();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
