/**
 * Scenario "features" — what each of Seed's features costs per call, measured against the
 * floor of a gateway that only parses what it forwards (the buffered JSON proxy). Seed runs as
 * a ladder of processes of the same build, each with one feature fewer than the one above:
 *
 *   full               virtual keys; rpm, tpm and usd/day on the key, team and org; rpm/tpm on the deployment
 *   no caller limits   virtual keys; the deployment's quota only
 *   no limits          virtual keys only
 *   open               `auth.mode: open`, no limits
 *   buffered proxy     Fastify + undici, no Seed at all: parses the request and a JSON answer
 *   undici proxy       node:http + undici relaying the bytes (`Readable#pipe`): the first target's baseline
 *
 * Each step pairs a rung with the one below in alternating 1 s slices (as the A/B runs do) and
 * reports the throughput ratio and the CPU per request the feature adds. Open Seed over the
 * buffered proxy is what every call pays whatever is configured: the ledger row, routing, the
 * provider adapter's body work, accounting and the x-seed-* headers. The last step, the buffered
 * proxy over the minimal undici proxy, is what any gateway that reads its traffic pays over one
 * that relays bytes: Fastify, and the JSON parsed and serialized again. The steps add up to
 * Seed's whole cost over the baseline of the first target.
 *
 * Above the ladder, when PostgreSQL and Redis answer (the machine's, or SEED_BENCH_POSTGRES_URL
 * and SEED_BENCH_REDIS_URL), two more rungs price the production stores against the embedded
 * ones the overhead runs use, every feature on in all three:
 *
 *   postgres + redis   the store (ledger rows, virtual keys) in PostgreSQL, limits in Redis
 *   redis              the store in a SQLite file, limits in Redis
 *   full               (the ladder's top) the store in a SQLite file, limits in memory
 *
 * Limits in Redis cost a share of the script round trip that reserves the buckets of the calls
 * arriving in one turn, and of the one that settles the calls ending in it; the ledger in
 * PostgreSQL sends batches of rows over a connection instead of handing them to the SQLite
 * insert worker. Only Seed's process's CPU is counted: Redis and PostgreSQL run on
 * the same cores, so their share shows in the throughput ratio, not in the µs.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type ServerProcess } from '../lib/children.ts';
import { productionStoresUnavailable, REDIS_URL, redisKeyPrefix, throwawaySchema, type ThrowawaySchema } from '../lib/stores.ts';
import { OPEN_SEED, startSeedServer, startTargets, type MeasuredServer, startSimulator } from '../lib/targets.ts';
import { pairedSlices, type AbRatios, type SliceMeasurement } from './ab.ts';
import { warmUp } from './overhead.ts';

export interface FeaturesOptions {
  pairs: number;
  concurrency: number;
  workDirectory: string;
  log: (line: string) => void;
}

/** A rung of the ladder: a Seed configuration, or a proxy without Seed. */
interface Rung {
  id: 'full' | 'no-caller-limits' | 'no-limits' | 'open' | 'buffered' | 'undici';
  label: string;
  start: (simulatorUrl: string, workDirectory: string) => Promise<MeasuredServer>;
}

/** A rung above the ladder: Seed, every feature on, with one or both stores of production. */
interface StoreRung {
  id: 'postgres-redis' | 'redis';
  label: string;
  /** The step's feature: what this rung changes from the one below it. */
  feature: string;
  start: (simulatorUrl: string, workDirectory: string, postgres: ThrowawaySchema) => Promise<MeasuredServer>;
}

const FULL = { auth: true, callerLimits: true, deploymentQuota: true } as const;

/** Top first; the last one's lower rung is the ladder's `full`. */
const STORE_RUNGS: readonly StoreRung[] = [
  {
    id: 'postgres-redis',
    label: 'Seed, every feature on, the store in PostgreSQL and limits in Redis (production)',
    feature: 'the store (ledger rows, virtual keys) in PostgreSQL instead of a SQLite file',
    start: (simulatorUrl, workDirectory, postgres) =>
      startSeedServer({
        simulatorUrl,
        workDirectory,
        name: 'seed (postgres-redis)',
        ...FULL,
        storeUrl: postgres.storeUrl(),
        redisLimits: { url: REDIS_URL, keyPrefix: redisKeyPrefix() },
      }),
  },
  {
    id: 'redis',
    label: 'Seed, every feature on, limits in Redis',
    feature: 'limits in Redis instead of in memory (a script round trip reserves the 11 buckets of every call that arrived in one event-loop turn; another settles the calls that ended in it)',
    start: (simulatorUrl, workDirectory) =>
      startSeedServer({ simulatorUrl, workDirectory, name: 'seed (redis)', ...FULL, redisLimits: { url: REDIS_URL, keyPrefix: redisKeyPrefix() } }),
  },
];

const seedRung = (id: Rung['id'], label: string, settings: { auth: boolean; callerLimits: boolean; deploymentQuota: boolean }): Rung => ({
  id,
  label,
  start: (simulatorUrl, workDirectory) => startSeedServer({ simulatorUrl, workDirectory, name: `seed (${id})`, ...settings }),
});

/** A rung without Seed: one of the benchmark's proxies, started as the overhead scenario starts it. */
const proxyRung = (id: 'buffered' | 'undici', label: string): Rung => ({
  id,
  label,
  start: async (simulatorUrl, workDirectory) => {
    const { targets, skipped } = await startTargets({ simulatorUrl, workDirectory, only: [id] });
    const target = targets[0];
    if (target?.server === undefined) throw new Error(`the ${label} did not start: ${skipped[0]?.reason ?? 'no reason given'}`);
    return { ...target.server, headers: target.headers };
  },
});

const RUNGS: readonly Rung[] = [
  seedRung('full', 'Seed, every feature on (as in the overhead runs)', FULL),
  seedRung('no-caller-limits', 'Seed without the caller\'s limits', { auth: true, callerLimits: false, deploymentQuota: true }),
  seedRung('no-limits', 'Seed without limits', { auth: true, callerLimits: false, deploymentQuota: false }),
  seedRung('open', 'Seed without limits or virtual keys', OPEN_SEED),
  proxyRung('buffered', 'buffered JSON proxy (Fastify)'),
  proxyRung('undici', 'minimal undici proxy (`Readable#pipe`)'),
];

/** What one feature costs: the rung with it against the rung without it. */
const FEATURES: Readonly<Record<Exclude<Rung['id'], 'undici'>, string>> = {
  full: "the caller's limits: rpm, tpm and usd/day on the key, team and org (9 buckets reserved and settled per call)",
  'no-caller-limits': "the deployment's rpm/tpm quota (2 buckets, reserved when the attempt picks the deployment)",
  'no-limits': 'virtual-key authentication (hash of the key, cache lookup, tenant context)',
  open: 'what every call pays: routing, the provider adapter, accounting, the ledger row, the x-seed-* headers',
  buffered: 'reading the traffic: Fastify, the request parsed and sent re-serialized, a JSON answer read whole and parsed',
};

export interface FeatureStepMode {
  stream: boolean;
  /** Requests/s, with ÷ without the feature. */
  throughput: AbRatios;
  /** CPU µs per request the feature adds (with − without), per pair. */
  cpuAdded: AbRatios;
  with: SliceMeasurement;
  without: SliceMeasurement;
}

export interface FeatureStep {
  feature: string;
  /** The rung with the feature and the one without, by label. */
  withLabel: string;
  withoutLabel: string;
  modes: FeatureStepMode[];
}

export interface FeaturesResult {
  pairs: number;
  concurrency: number;
  steps: FeatureStep[];
  /** The production stores over the embedded ones, top first (runs before 2026-12-07 had none). */
  storeSteps?: FeatureStep[];
  /** Why the store steps were not measured (PostgreSQL or Redis did not answer). */
  storesSkipped?: string;
}

/** A rung's process, by the rung's id and label. */
interface Started {
  id: string;
  label: string;
  server: MeasuredServer;
}

export async function runFeatures(options: FeaturesOptions): Promise<FeaturesResult> {
  const { log } = options;
  const started: ServerProcess[] = [];
  let postgres: ThrowawaySchema | undefined;
  try {
    const simulator = await startSimulator();
    started.push(simulator);
    const start = async (id: string, label: string, run: (workDirectory: string) => Promise<MeasuredServer>): Promise<Started> => {
      const workDirectory = join(options.workDirectory, `features-${id}`);
      mkdirSync(workDirectory, { recursive: true });
      const server = await run(workDirectory);
      started.push(server);
      return { id, label, server };
    };
    const storesSkipped = await productionStoresUnavailable();
    if (storesSkipped !== undefined) log(`features: the production stores are not measured: ${storesSkipped}`);
    else postgres = await throwawaySchema('features');
    const stores: Started[] = [];
    if (postgres !== undefined) {
      const schema = postgres;
      for (const rung of STORE_RUNGS) stores.push(await start(rung.id, rung.label, (workDirectory) => rung.start(simulator.url, workDirectory, schema)));
    }
    const ladder: Started[] = [];
    for (const rung of RUNGS) ladder.push(await start(rung.id, rung.label, (workDirectory) => rung.start(simulator.url, workDirectory)));
    // Every process warmed alike before any is measured (as the overhead runs do).
    for (const { server } of [...stores, ...ladder]) {
      for (const stream of [false, true]) await warmUp({ origin: server.url, headers: server.headers }, stream, options.concurrency);
    }
    const step = async (feature: string, upper: Started, lower: Started): Promise<FeatureStep> => {
      const modes: FeatureStepMode[] = [];
      for (const stream of [false, true]) {
        const paired = await pairedSlices({ subject: upper.server, baseline: lower.server, stream, pairs: options.pairs, concurrency: options.concurrency });
        modes.push({ stream, throughput: paired.throughput, cpuAdded: paired.cpuDifference, with: paired.subject, without: paired.baseline });
        log(
          `features ${upper.id} over ${lower.id} ${stream ? 'stream' : 'non-stream'}: throughput ${paired.throughput.median.toFixed(3)}× ` +
            `(${paired.throughput.lowerQuartile.toFixed(3)}–${paired.throughput.upperQuartile.toFixed(3)}), CPU ` +
            `${paired.cpuDifference.median >= 0 ? '+' : ''}${paired.cpuDifference.median.toFixed(1)} µs/request ` +
            `(${paired.cpuDifference.lowerQuartile.toFixed(1)}…${paired.cpuDifference.upperQuartile.toFixed(1)})`,
        );
      }
      return { feature, withLabel: upper.label, withoutLabel: lower.label, modes };
    };
    const storeSteps: FeatureStep[] = [];
    for (let index = 0; index < stores.length; index += 1) {
      storeSteps.push(await step(STORE_RUNGS[index]!.feature, stores[index]!, stores[index + 1] ?? ladder[0]!));
    }
    const steps: FeatureStep[] = [];
    for (let index = 0; index + 1 < ladder.length; index += 1) {
      steps.push(await step(FEATURES[RUNGS[index]!.id as keyof typeof FEATURES], ladder[index]!, ladder[index + 1]!));
    }
    return {
      pairs: options.pairs,
      concurrency: options.concurrency,
      steps,
      ...(storesSkipped === undefined ? { storeSteps } : { storesSkipped }),
    };
  } finally {
    for (const server of started.reverse()) await server.stop();
    await postgres?.drop();
  }
}
