/**
 * The composition root: the one place that wires Seed together. Read this file to see the
 * whole system — config, providers, routing, admission, the call service, sinks, HTTP.
 */
import { Agent } from 'undici';
import type { FastifyInstance } from 'fastify';
import type { SeedConfig } from './config/schema.ts';
import { createCallService } from './gateway/calls.ts';
import { ANONYMOUS_CALLER, type Admission, type Authenticate } from './gateway/hooks.ts';
import { createAdminApi } from './gateway/http/admin.ts';
import { createAuditLog } from './audit/log.ts';
import { datasetIntegrityCheck } from './datasets/integrity.ts';
import { createAuthenticator } from './tenants/authenticator.ts';
import { createTenantService } from './tenants/service.ts';
import { createGatewayApp } from './gateway/http/app.ts';
import { CallDrain } from './gateway/http/drain.ts';
import type { CallRecord, CallSink } from './ledger/types.ts';
import { createLogger, type Logger } from './log.ts';
import { priceCall } from './ledger/pricing.ts';
import { LedgerWriter } from './ledger/writer.ts';
import { createRedactor } from './ledger/redact.ts';
import { createLimitAdmission } from './limits/admission.ts';
import { loadTokenCounting } from './limits/estimate.ts';
import { createLimitStore } from './limits/create-store.ts';
import { RedisLimitStore, waitForRedis } from './limits/redis-store.ts';
import { Limiter } from './limits/limiter.ts';
import type { Deployment } from './routing/route-table.ts';
import { openStore, type Store } from './store/store.ts';
import { ABANDON_WAIT_MS } from './store/call-insert-thread.ts';
import { redact } from './store/connect.ts';
import { createMetrics } from './metrics/metrics.ts';
import { createProviderRegistry } from './providers/registry.ts';
import { HealthTracker } from './routing/health.ts';
import { buildRouteTable } from './routing/route-table.ts';
import { createRouter } from './routing/router.ts';
import { createDeploymentPolicy } from './routing/policy.ts';
import { loadTermsRegistry } from './terms/registry.ts';
import { simulatorOptionsSchema, startSimulator, type SimulatorHandle } from './simulator/index.ts';
import type { CallSignal } from './abort.ts';
import { keepYoungGenerationWarm } from './young-generation.ts';

export { EXAMPLE_CONFIG, loadSeedConfig, providerChecks, type LoadedConfig } from './config/seed-config.ts';

export interface SeedInstance {
  url: string;
  app: FastifyInstance;
  simulator: SimulatorHandle | undefined;
  store: Store;
  ledger: LedgerWriter;
  /**
   * Shuts down gracefully: stops taking connections, lets the calls in flight finish for up to
   * `drainTimeoutMs` (default `server.shutdownTimeoutMs`) and ends the rest with `shutting_down`,
   * then writes the ledger and closes the stores.
   */
  close(options?: { drainTimeoutMs?: number }): Promise<void>;
  /**
   * Ends the drain of a `close` under way now: the calls still running end with `shutting_down`
   * (their clients are told, each is recorded) and the close goes on to write the ledger.
   */
  hurry(): void;
  /**
   * For a process that must exit now, without `close` (a second signal, a fatal error, a close
   * that hung): writes the ledger's unstored calls to the spill directory synchronously and says
   * what was saved and what was not. The process should exit right after.
   */
  abandon(): string;
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
  /** Replaces the limiter-backed admission (tests). */
  admission?: Admission;
  /** An already open store (tests share one); otherwise `config.store.url` is opened. */
  store?: Store;
  /** Extra HTTP routes (admin API, usage) registered on the gateway's app. */
  plugins?: Array<(app: FastifyInstance) => void | Promise<void>>;
  now?: () => number;
  random?: () => number;
}

export async function startSeed(options: StartOptions): Promise<SeedInstance> {
  const { config } = options;
  const logger = options.logger ?? createLogger();
  const now = options.now ?? Date.now;

  const simulator = config.simulator.enabled
    ? await startSimulator({
        ...simulatorOptionsSchema.parse(config.simulator.options),
        host: simulatorOptionsSchema.shape.host.parse(config.simulator.host),
        port: config.simulator.port,
      })
    : undefined;
  if (simulator) logger('info', `provider simulator listening on ${simulator.url}`);

  // One pool for all upstream traffic; keep-alive matters more than anything else for overhead.
  const dispatcher = new Agent({ keepAliveTimeout: 30_000, keepAliveMaxTimeout: 600_000, connections: 512 });
  const providers = createProviderRegistry({ dependencies: { dispatcher, now } });
  const table = buildRouteTable(config, (provider) => providers.definition(provider)?.defaultTerms);
  const terms = loadTermsRegistry({ overrides: config.terms.profiles, confirmed: config.terms.confirmed });
  for (const warning of terms.warnings) logger('warn', warning);
  const exclude = createDeploymentPolicy({ table, terms });
  const health = new HealthTracker({ options: config.health, now });
  const router = createRouter({
    table,
    health,
    now,
    random: options.random ?? Math.random,
    sleep: (milliseconds, signal) => sleep(milliseconds, signal),
  });
  const metrics = createMetrics({ knownRoutes: new Set(table.routes.keys()), eventLoopPrecisionMs: config.metrics.eventLoopPrecisionMs });

  // The ledger: every call record goes through a bounded queue to the store, off the request
  // path; when the store is down, records spill to disk and are replayed when it returns.
  let store: Store;
  try {
    store = options.store ?? (await openStore({ url: config.store.url, queryTimeoutMs: config.store.queryTimeoutMs }));
  } catch (error) {
    await simulator?.close();
    await dispatcher.close();
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`the store ${redact(config.store.url)} cannot be opened: ${reason}`, { cause: error });
  }
  const ownsStore = options.store === undefined;
  const ledger = await LedgerWriter.open({
    store,
    spillDirectory: config.ledger.spillDirectory,
    batchSize: config.ledger.batchSize,
    flushIntervalMs: config.ledger.flushIntervalMs,
    writeTimeoutMs: config.ledger.writeTimeoutMs,
    journal: config.ledger.journal,
    onError: (error, context) => {
      if (context.operation === 'reject') {
        logger('error', `ledger: the store refused a call; it is kept in ${config.ledger.spillDirectory}/rejected.jsonl`, error);
      } else if (context.operation === 'corrupt') {
        logger('error', `ledger: a spill file in ${config.ledger.spillDirectory} had unreadable lines`, error);
      } else logger('error', `ledger ${context.operation} failed`, error);
    },
  });
  metrics.observeStats({
    name: 'seed_ledger',
    help: 'Ledger writer counters: queued now; journaled now (in the journal, not yet stored or spilled); recorded, written, spilled, replayed, rejected (refused by the store, kept in rejected.jsonl) and failed since start; store healthy (1/0).',
    stats: () => ({ ...ledger.stats() }),
  });
  logger('info', `ledger: ${redact(config.store.url)} (spill directory ${config.ledger.spillDirectory})`);
  if (ledger.adoptedJournalSegments > 0) {
    logger(
      'warn',
      `ledger: ${ledger.adoptedJournalSegments} journal segment(s) left by a process that did not shut down (killed?) are replayed; calls already stored are skipped`,
    );
  }

  const price = (input: { deployment: Deployment; promptTokens: number; completionTokens: number; cachedTokens?: number }) =>
    priceCall({
      model: input.deployment.model,
      promptTokens: input.promptTokens,
      completionTokens: input.completionTokens,
      cachedTokens: input.cachedTokens ?? 0,
      override: input.deployment.pricing ?? null,
    }).costUsd;

  const limitStore = createLimitStore(config.limits);
  if (limitStore instanceof RedisLimitStore) {
    // Redis commands fail fast rather than queue; give the connection a moment before traffic.
    try {
      await waitForRedis({ client: limitStore.client, timeoutMs: 5_000 });
      logger('info', `limits: Redis ${redact(config.limits.store === 'redis' ? config.limits.url : '')}`);
    } catch (error) {
      logger('error', `limits: Redis is not reachable yet; calls are ${config.limits.store === 'redis' && config.limits.onUnavailable === 'open' ? 'admitted unchecked (fail open)' : 'refused with limits_unavailable (fail closed)'} until it is`, error);
    }
  } else logger('info', 'limits: in memory (one process; use limits.store: redis to share limits across replicas)');
  const limiter = new Limiter({
    store: limitStore,
    onUnavailable: config.limits.store === 'redis' ? config.limits.onUnavailable : 'closed',
    logger: {
      info: (message, details) => logger('info', message, details),
      warn: (message, details) => logger('warn', message, details),
      error: (message, details) => logger('error', message, details),
    },
    leaseMs: Math.max(15 * 60_000, config.server.requestTimeoutMs * 2),
  });
  metrics.observeStats({
    name: 'seed_limits',
    help: 'Limiter: storeReachable (1/0: 0 while the limit store is unreachable, calls then refused or admitted unchecked as limits.onUnavailable says); uncheckedCalls admitted without limits or budgets since start.',
    stats: () => limiter.stats(),
  });
  const { promptEstimate } = config.limits;
  const admission = options.admission ?? createLimitAdmission({ limiter, price, promptEstimate });
  // With exact estimates, admission counts prompts with the encoding of the route's first
  // deployment's model: load those vocabularies now rather than on a call (only the ones used:
  // each is 11–21 MB of heap).
  if (!options.admission && promptEstimate === 'exact') loadTokenCounting([...table.deployments.values()].map((deployment) => deployment.model));

  const sinks: CallSink[] = [metrics, ledger, ...(options.sinks ?? [])];
  const sink: CallSink = {
    // Held until every sink that answers with a promise (the ledger's journal) has settled it.
    record(call: CallRecord) {
      let held: Promise<void> | undefined;
      for (const each of sinks) {
        try {
          const durable = each.record(call);
          if (durable instanceof Promise) held = held === undefined ? durable : Promise.all([held, durable]).then(() => undefined);
        } catch (error) {
          logger('error', 'a call sink failed', error);
        }
      }
      return held;
    },
  };

  const calls = createCallService({
    router,
    routes: table.routes,
    adapterFor: (deployment) => providers.adapter(deployment.provider),
    admission,
    sink,
    price,
    exclude,
    redact: createRedactor(config.ledger.redact),
    termsVersion: (deployment) => (deployment.terms ? (terms.get(deployment.terms)?.version ?? null) : null),
    now,
  });

  // Who is calling: virtual keys from the store (cached, refreshed every 250 ms), or, in open
  // mode on loopback, everyone as the anonymous caller. The admin and usage API sit beside it.
  const host = options.host ?? config.server.host;
  const audit = createAuditLog({ store, checks: [datasetIntegrityCheck({ store })] });
  // A caller-supplied `authenticate` (tests, embedders) replaces the built-in tenant auth and
  // its admin API together: the API manages exactly the keys that authenticator knows.
  const authenticator = options.authenticate
    ? undefined
    : createAuthenticator({
        store,
        mode: config.auth.mode,
        pollIntervalMs: config.auth.keyPollIntervalMs,
        storeTimeoutMs: config.auth.storeTimeoutMs,
        host,
        onWarning: (message, details) => logger('warn', message, details),
      });
  const authenticate: Authenticate = options.authenticate ?? authenticator?.authenticate ?? (() => ANONYMOUS_CALLER);
  const tenantPlugins = authenticator
    ? [
        createAdminApi({
          tenants: createTenantService({ store, audit }),
          authenticator,
          store,
          adminToken: config.auth.adminToken,
          knownRoutes: new Set(table.routes.keys()),
        }),
      ]
    : [];
  if (authenticator && config.auth.mode === 'open') {
    logger('warn', `auth.mode is open: no API key needed, every caller is anonymous (allowed only on loopback: ${host})`);
  }
  if (authenticator && !config.auth.adminToken) logger('info', 'admin API disabled (set auth.adminToken to enable /v1/seed/admin)');

  const startedAt = Math.floor(now() / 1000);
  const drain = new CallDrain();
  const app = await createGatewayApp({
    drain,
    calls,
    authenticate,
    bodyLimitBytes: config.server.bodyLimitBytes,
    headersTimeoutMs: config.server.headersTimeoutMs,
    listModels: (caller) =>
      [...table.routes.values()]
        .filter((route) => !route.hidden && (!caller.allowedRoutes || caller.allowedRoutes.has(route.name)))
        .map((route) => ({ id: route.name, created: startedAt, owned_by: 'seed' })),
    metricsText: () => metrics.text(),
    onError: (error) => metrics.countError(error),
    log: logger,
    plugins: [...tenantPlugins, ...(options.plugins ?? [])],
  });

  const port = options.port ?? config.server.port;
  await app.listen({ host, port });
  const address = app.server.address();
  const boundPort = typeof address === 'object' && address ? address.port : port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${boundPort}`;
  // So that a burst after a quiet spell does not start on a young generation V8 has half released.
  const keepWarm = keepYoungGenerationWarm({ bytesPerSecond: config.server.keepWarmBytesPerSecond });

  return {
    url,
    app,
    simulator,
    store,
    ledger,
    async close(closeOptions = {}) {
      keepWarm.stop();
      // Fastify's close stops listening, then waits for every connection to close; the drain
      // closes each as its last response ends and, at its deadline, ends the calls left.
      const closing = app.close();
      const timeoutMs = closeOptions.drainTimeoutMs ?? config.server.shutdownTimeoutMs;
      const inFlight = drain.size;
      if (inFlight > 0) logger('info', `shutting down: waiting up to ${timeoutMs} ms for ${inFlight} call(s) in flight`);
      const outcome = await drain.run({ server: app.server, timeoutMs });
      if (outcome.cut > 0) {
        const when = outcome.hurried ? `when told to stop at once, after ${outcome.elapsedMs} ms` : `after ${timeoutMs} ms`;
        logger('warn', `shutting down: ${outcome.cut} call(s) still running ${when} were ended with shutting_down`);
      } else if (inFlight > 0) logger('info', `shutting down: every call in flight finished, in ${outcome.elapsedMs} ms`);
      await closing;
      await authenticator?.close();
      await ledger.close();
      await limitStore.close();
      if (ownsStore) await store.close();
      await dispatcher.close();
      await simulator?.close();
    },
    hurry() {
      drain.hurry();
    },
    abandon() {
      const spilled = ledger.abandon();
      const inFlight = drain.size;
      // After the spill: a batch the insert worker was still trying to store is in it.
      const insertsStopped = ownsStore ? store.abandon() : true;
      let said = `${spilled} ledger record(s) not yet stored were written to ${config.ledger.spillDirectory} (replayed at the next start)`;
      if (inFlight > 0) said += `; ${inFlight} call(s) still in flight were cut and are not recorded`;
      if (!insertsStopped) said += `; the ledger's insert worker was still running a SQLite statement after ${ABANDON_WAIT_MS} ms`;
      return said;
    },
  };
}

function sleep(milliseconds: number, signal: CallSignal): Promise<void> {
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
