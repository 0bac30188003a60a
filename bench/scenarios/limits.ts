/**
 * Scenario 2 — limit fidelity across replicas: 4 Seed processes share one Redis
 * (127.0.0.1:6379, a fresh key prefix per run) and one deployment quota; an open-loop client
 * spreads requests over the four at a rate well above the quota, for less than the quota's
 * one-minute window, so the allowance is exactly the quota. Reported: admitted vs allowed, and
 * for a token quota the tokens actually used (from each response's `usage`) vs the quota.
 * Budget: the same 4 replicas, now with keys in one PostgreSQL store (a throwaway schema) and a
 * dollar budget on one key; spent is what the ledger priced the admitted calls at.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Pool } from 'undici';
import { type ServerProcess } from '../lib/children.ts';
import { REDIS_URL, redisKeyPrefix, throwawaySchema } from '../lib/stores.ts';
import { provisionKey, seedConfig, startSeedServer, waitForKey, startSimulator } from '../lib/targets.ts';

export interface LimitRun {
  quota: string;
  /** How `used` and `allowed` read: a count, or dollars. */
  unit: 'count' | 'usd';
  allowed: number;
  offered: number;
  admitted: number;
  refused: number;
  other: number;
  /** Requests admitted (rpm) or tokens used by admitted calls (tpm), over `allowed`. */
  used: number;
  overshootPercent: number;
}

const REPLICAS = 4;
const BODY = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hello' }], max_tokens: 32 });

async function drive(input: {
  origins: string[];
  ratePerSecond: number;
  seconds: number;
  headers?: Record<string, string>;
}): Promise<{ admitted: number; refused: number; other: number; tokens: number }> {
  const pools = input.origins.map((origin) => new Pool(origin, { connections: 64 }));
  let admitted = 0;
  let refused = 0;
  let other = 0;
  let tokens = 0;
  const pending: Array<Promise<void>> = [];
  const total = Math.round(input.ratePerSecond * input.seconds);
  const start = performance.now();
  for (let index = 0; index < total; index += 1) {
    const due = start + (index * 1_000) / input.ratePerSecond;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((resolveWait) => setTimeout(resolveWait, wait));
    const pool = pools[index % pools.length]!;
    pending.push(
      pool
        .request({ path: '/v1/chat/completions', method: 'POST', headers: { 'content-type': 'application/json', ...input.headers }, body: BODY })
        .then(async (response) => {
          const text = await response.body.text();
          if (response.statusCode === 200) {
            admitted += 1;
            tokens += (JSON.parse(text) as { usage?: { total_tokens?: number } }).usage?.total_tokens ?? 0;
          } else if (response.statusCode === 429) refused += 1;
          else other += 1;
        })
        .catch(() => {
          other += 1;
        }),
    );
  }
  await Promise.all(pending);
  await Promise.all(pools.map((pool) => pool.close()));
  return { admitted, refused, other, tokens };
}

/** What every limit run is given: the load, the simulator, a directory, a log. */
interface RunInput {
  ratePerSecond: number;
  seconds: number;
  simulatorUrl: string;
  workDirectory: string;
  log: (line: string) => void;
}

/** Starts the replicas, each with its own config file (its own ledger file and spill directory) under `directory`. */
async function startReplicas(input: { config: string; directory: string; simulatorUrl: string }): Promise<ServerProcess[]> {
  const replicas: ServerProcess[] = [];
  try {
    for (let index = 0; index < REPLICAS; index += 1) {
      const replicaDirectory = join(input.directory, `replica-${index}`);
      mkdirSync(replicaDirectory, { recursive: true });
      const file = join(replicaDirectory, 'seed.yaml');
      writeFileSync(file, input.config.replaceAll(input.directory, replicaDirectory));
      replicas.push(await startSeedServer({ simulatorUrl: input.simulatorUrl, workDirectory: replicaDirectory, configFile: file, name: `seed replica ${index}` }));
    }
  } catch (error) {
    for (const replica of replicas) await replica.stop();
    throw error;
  }
  return replicas;
}

async function runQuota(input: RunInput & { quota: { rpm?: number; tpm?: number } }): Promise<LimitRun> {
  const name = input.quota.rpm ? `rpm ${input.quota.rpm}` : `tpm ${input.quota.tpm}`;
  const directory = join(input.workDirectory, `limits-${name.replace(' ', '-')}`);
  mkdirSync(directory, { recursive: true });
  const quota = Object.entries(input.quota)
    .map(([key, value]) => `${key}: ${value}`)
    .join(', ');
  // The quota measured is the deployment's, shared through Redis; callers are anonymous.
  const config = seedConfig({ simulatorUrl: input.simulatorUrl, workDirectory: directory, auth: false, redisLimits: { url: REDIS_URL, keyPrefix: redisKeyPrefix() } }).replace(
    /limits: \{ rpm: \d+, tpm: \d+ \}/,
    `limits: { ${quota} }`,
  );
  // The quota lives in Redis; each replica has its own ledger file.
  const replicas = await startReplicas({ config, directory, simulatorUrl: input.simulatorUrl });
  try {
    const result = await drive({ origins: replicas.map((replica) => replica.url), ratePerSecond: input.ratePerSecond, seconds: input.seconds });
    const allowed = input.quota.rpm ?? input.quota.tpm ?? 0;
    const used = input.quota.rpm ? result.admitted : result.tokens;
    input.log(`limits ${name}: ${result.admitted} admitted, ${result.refused} refused, ${result.other} other; used ${used} of ${allowed}`);
    return {
      quota: name,
      unit: 'count',
      allowed,
      offered: Math.round(input.ratePerSecond * input.seconds),
      admitted: result.admitted,
      refused: result.refused,
      other: result.other,
      used,
      overshootPercent: (100 * (used - allowed)) / allowed,
    };
  } finally {
    for (const replica of replicas) await replica.stop();
  }
}

/**
 * A dollar budget on one key, enforced by 4 replicas sharing Redis (the limits) and PostgreSQL
 * (keys and ledger). `used` is the ledger's cost of the admitted calls once every replica has
 * flushed at shutdown.
 */
async function runBudget(input: RunInput & { usdPerDay: number }): Promise<LimitRun> {
  const name = `usd/day ${input.usdPerDay} (key)`;
  const directory = join(input.workDirectory, 'limits-budget');
  mkdirSync(directory, { recursive: true });
  const store = await throwawaySchema('budget');
  const { schema, admin } = store;
  const replicas: ServerProcess[] = [];
  try {
    const config = seedConfig({
      simulatorUrl: input.simulatorUrl,
      workDirectory: directory,
      storeUrl: store.storeUrl(),
      redisLimits: { url: REDIS_URL, keyPrefix: redisKeyPrefix() },
    });
    replicas.push(...(await startReplicas({ config, directory, simulatorUrl: input.simulatorUrl })));
    const none = {};
    const { secret, keyId } = await provisionKey(replicas[0]!.url, { org: none, team: none, key: { usdPerDay: input.usdPerDay } });
    const headers = { authorization: `Bearer ${secret}` };
    for (const replica of replicas) await waitForKey(replica.url, { ...headers, 'content-type': 'application/json' });
    const result = await drive({ origins: replicas.map((replica) => replica.url), ratePerSecond: input.ratePerSecond, seconds: input.seconds, headers });
    for (const replica of replicas.splice(0)) await replica.stop(15_000);
    const spent = await admin.query<{ usd: number | null; calls: string }>(
      `SELECT sum(cost_usd) AS usd, count(*) AS calls FROM ${schema}.calls WHERE key_id = $1 AND status = 'ok'`,
      [keyId],
    );
    const used = Number(spent.rows[0]?.usd ?? 0);
    input.log(`limits ${name}: ${result.admitted} admitted, ${result.refused} refused, ${result.other} other; spent $${used.toFixed(6)} of $${input.usdPerDay} (${spent.rows[0]?.calls} ledger rows)`);
    return {
      quota: name,
      unit: 'usd',
      allowed: input.usdPerDay,
      offered: Math.round(input.ratePerSecond * input.seconds),
      admitted: result.admitted,
      refused: result.refused,
      other: result.other,
      used,
      overshootPercent: (100 * (used - input.usdPerDay)) / input.usdPerDay,
    };
  } finally {
    for (const replica of replicas) await replica.stop();
    await store.drop();
  }
}

export async function runLimits(input: { workDirectory: string; log: (line: string) => void }): Promise<LimitRun[]> {
  const simulator = await startSimulator();
  try {
    // 600 req/min offered at 80 req/s for 20 s (1 600 requests): all inside one minute window.
    const rpm = await runQuota({ quota: { rpm: 600 }, ratePerSecond: 80, seconds: 20, simulatorUrl: simulator.url, workDirectory: input.workDirectory, log: input.log });
    const tpm = await runQuota({ quota: { tpm: 20_000 }, ratePerSecond: 80, seconds: 20, simulatorUrl: simulator.url, workDirectory: input.workDirectory, log: input.log });
    // About 400 calls' worth at the simulator's answer sizes and gpt-4o-mini's list price.
    const budget = await runBudget({ usdPerDay: 0.01, ratePerSecond: 80, seconds: 20, simulatorUrl: simulator.url, workDirectory: input.workDirectory, log: input.log });
    return [rpm, tpm, budget];
  } finally {
    await simulator.stop();
  }
}
