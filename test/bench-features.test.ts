import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseConfig } from '../src/config/load.ts';
import { seedConfig, startSimulator, startTargets } from '../bench/lib/targets.ts';
import { productionStoresUnavailable } from '../bench/lib/stores.ts';
import { featureCostResolved, featuresSection } from '../bench/lib/report.ts';
import type { FeaturesResult } from '../bench/scenarios/features.ts';
import { quartiles, type Quartiles } from '../bench/lib/stats.ts';

const generated = (settings: {
  auth?: boolean;
  deploymentQuota?: boolean;
  keepWarmBytesPerSecond?: number;
  storeUrl?: string;
  redisLimits?: { url: string; keyPrefix: string };
}) =>
  parseConfig(seedConfig({ simulatorUrl: 'http://127.0.0.1:9', workDirectory: '/tmp/seed-bench-test', ...settings }));

test("the features ladder's configurations differ by exactly the feature each rung removes", () => {
  const full = generated({});
  assert.equal(full.auth.mode, 'keys');
  assert.deepEqual(full.deployments['sim-mini']?.limits, { rpm: 100_000_000, tpm: 100_000_000_000 });

  const noQuota = generated({ deploymentQuota: false });
  assert.equal(noQuota.auth.mode, 'keys');
  assert.equal(Object.keys(noQuota.deployments['sim-mini']?.limits ?? {}).length, 0, 'no deployment quota');

  const open = generated({ auth: false, deploymentQuota: false });
  assert.equal(open.auth.mode, 'open');
  // Everything else is the same: one deployment, one route, the same store.
  assert.deepEqual(Object.keys(open.routes), Object.keys(full.routes));
  assert.deepEqual(open.store, full.store);
});

test('the production-store rungs change only the store and the limits store from the full rung', () => {
  const full = generated({});
  assert.match(full.store.url, /^sqlite:/);
  assert.equal(full.limits.store, 'memory');

  const redisLimits = { url: 'redis://127.0.0.1:6379', keyPrefix: 'seed:bench:test:' };
  const redis = generated({ redisLimits });
  assert.equal(redis.limits.store, 'redis');
  assert.equal(redis.limits.url, redisLimits.url);
  assert.equal(redis.limits.keyPrefix, redisLimits.keyPrefix);
  // An unreachable Redis refuses calls: a rung that admitted them unchecked would look cheap.
  assert.equal(redis.limits.onUnavailable, 'closed');
  assert.deepEqual(redis.store, full.store);

  const storeUrl = 'postgres://postgres@127.0.0.1:5432/test?options=-c+search_path%3Dseed_bench_x';
  const production = generated({ redisLimits, storeUrl });
  assert.equal(production.store.url, storeUrl);
  assert.deepEqual(production.limits, redis.limits);
  for (const config of [redis, production]) {
    assert.equal(config.auth.mode, full.auth.mode);
    assert.deepEqual(config.deployments, full.deployments);
    assert.deepEqual(config.routes, full.routes);
    assert.deepEqual(config.ledger, full.ledger);
  }
});

test('the production stores are reported unavailable, with the one that did not answer, when a server does not answer', async () => {
  const noPostgres = await productionStoresUnavailable({ postgresUrl: 'postgres://postgres@127.0.0.1:9/test', timeoutMs: 1_000 });
  assert.match(noPostgres ?? '', /^PostgreSQL at postgres:\/\/postgres@127\.0\.0\.1:9\/test did not answer: /);
  const withPassword = await productionStoresUnavailable({ postgresUrl: 'postgres://postgres:hunter2@127.0.0.1:9/test', timeoutMs: 1_000 });
  assert.doesNotMatch(withPassword ?? '', /hunter2/);
  // Redis is asked only once PostgreSQL answers; the machine's PostgreSQL may be down locally.
  const postgresUp = (await productionStoresUnavailable({ redisUrl: 'redis://127.0.0.1:6379', timeoutMs: 1_000 })) === undefined;
  if (postgresUp) {
    const noRedis = await productionStoresUnavailable({ redisUrl: 'redis://127.0.0.1:9', timeoutMs: 1_000 });
    assert.match(noRedis ?? '', /^Redis at redis:\/\/127\.0\.0\.1:9 did not answer: /);
  }
});

test("the generated config keeps Seed's keep-warm default unless a bench sets it (bench/idle-burst.ts --keep-warm)", () => {
  assert.equal(generated({}).server.keepWarmBytesPerSecond, 2 * 1024 * 1024);
  assert.equal(generated({ keepWarmBytesPerSecond: 0 }).server.keepWarmBytesPerSecond, 0);
});

test("the overhead scenario's Seeds run with the keep-warm rate it is given (npm run bench -- --seed-keep-warm 0), and say so", async () => {
  const simulator = await startSimulator();
  const directory = mkdtempSync(join(tmpdir(), 'seed-bench-keep-warm-'));
  try {
    for (const [setting, expected, note] of [
      [undefined, 2 * 1024 * 1024, undefined],
      [0, 0, 'server.keepWarmBytesPerSecond 0 (the keep-warm timer off)'],
    ] as const) {
      const workDirectory = join(directory, String(setting));
      mkdirSync(workDirectory);
      const { targets, skipped } = await startTargets({ simulatorUrl: simulator.url, workDirectory, only: ['seed'], seedKeepWarmBytesPerSecond: setting });
      assert.deepEqual(skipped, []);
      const [seed] = targets;
      try {
        // The config the running Seed was started with.
        assert.equal(parseConfig(readFileSync(join(workDirectory, 'seed.yaml'), 'utf8')).server.keepWarmBytesPerSecond, expected);
        if (note === undefined) assert.doesNotMatch(seed!.note, /keepWarm/);
        else assert.match(seed!.note, new RegExp(note.replace(/[().]/g, '\\$&')));
      } finally {
        await seed?.server?.stop();
      }
    }
  } finally {
    await simulator.stop();
    rmSync(directory, { recursive: true, force: true });
  }
});

test("a feature cost counts as resolved only when its median's 95% interval lies on one side of zero", () => {
  const interval = (lower: number, upper: number) => ({ lower, upper, coverage: 0.96 });
  assert.equal(featureCostResolved({ lowerQuartile: 5, upperQuartile: 30, interval: interval(2, 40) }), true);
  assert.equal(featureCostResolved({ lowerQuartile: -30, upperQuartile: -5, interval: interval(-40, -2) }), true);
  assert.equal(featureCostResolved({ lowerQuartile: 5, upperQuartile: 30, interval: interval(-2, 40) }), false, 'quartiles clear of zero are not enough');
  assert.equal(featureCostResolved({ lowerQuartile: 5, upperQuartile: 30, interval: interval(0, 40) }), false);
  // A run saved before the interval was kept: its quartiles, as it was judged then.
  assert.equal(featureCostResolved({ lowerQuartile: 2, upperQuartile: 30 }), true);
  assert.equal(featureCostResolved({ lowerQuartile: -2, upperQuartile: 30 }), false);
  assert.equal(featureCostResolved({ lowerQuartile: 0, upperQuartile: 30 }), false);
});

test("the features section shows and judges by the median's interval when the run kept one", () => {
  const added = quartiles([4, 9, 12, 14, 15, 17, 18, 19, 20, 22, 23, 25, 27, 30, 33, 35, 40, 41, 45, 60]);
  assert.deepEqual([added.interval?.lower, added.interval?.upper], [17, 33]);
  // Of 20 values the interval runs from the 6th to the 15th, the quartiles from the 5th to the
  // 15th: a cost whose 5th value is under zero and 6th above is resolved now, not before.
  const resolvedNow = quartiles([-20, -9, -5, -2, -1, 1, 3, 5, 8, 10, 12, 13, 15, 16, 18, 20, 22, 25, 30, 40]);
  assert.ok(resolvedNow.lowerQuartile < 0 && (resolvedNow.interval?.lower ?? 0) > 0, JSON.stringify(resolvedNow));
  const unresolved = quartiles([-20, -9, -5, -2, -1, -0.5, 3, 5, 8, 10, 12, 13, 15, 16, 18, 20, 22, 25, 30, 40]);
  const mode = (stream: boolean, cpuAdded: Quartiles) => ({
    stream,
    throughput: quartiles([0.8, 0.9, 1, 0.85, 0.95, 0.9]),
    cpuAdded,
    with: { requestsPerSecond: 3000, cpuMicrosecondsPerRequest: 250 },
    without: { requestsPerSecond: 3300, cpuMicrosecondsPerRequest: 220 },
  });
  const text = featuresSection({
    pairs: 20,
    concurrency: 50,
    steps: [
      { feature: 'limits', withLabel: 'A', withoutLabel: 'B', modes: [mode(false, added), mode(true, unresolved)] },
      { feature: 'keys', withLabel: 'B', withoutLabel: 'C', modes: [mode(false, resolvedNow)] },
    ],
  });
  assert.match(text, /per pair \(median, 95% interval of the median\)/);
  const rows = text.split('\n').filter((line) => line.startsWith('| ') && !line.startsWith('| feature'));
  assert.match(rows[0]!, /\| \+22\.5 µs \(\+17\.0 … \+33\.0\) \| yes \|/);
  assert.match(rows[1]!, /\| \+11\.0 µs \(-0\.5 … \+18\.0\) \| no: within the noise \|/);
  assert.match(rows[2]!, /\| \+11\.0 µs \(\+1\.0 … \+18\.0\) \| yes \|/);
});

test('the features section reports every step and mode, with its verdict and the sum', () => {
  const mode = (stream: boolean, added: [number, number, number]) => ({
    stream,
    throughput: { median: 0.9, lowerQuartile: 0.85, upperQuartile: 0.95 },
    cpuAdded: { lowerQuartile: added[0], median: added[1], upperQuartile: added[2] },
    with: { requestsPerSecond: 3000, cpuMicrosecondsPerRequest: 250 },
    without: { requestsPerSecond: 3300, cpuMicrosecondsPerRequest: 220 },
  });
  const result: FeaturesResult = {
    pairs: 10,
    concurrency: 50,
    steps: [
      { feature: 'limits', withLabel: 'A', withoutLabel: 'B', modes: [mode(false, [10, 20, 30]), mode(true, [-5, 4, 12])] },
      { feature: 'the rest', withLabel: 'B', withoutLabel: 'C', modes: [mode(false, [90, 100, 110]), mode(true, [100, 120, 130])] },
    ],
  };
  const text = featuresSection(result);
  assert.match(text, /A → B → C/);
  const rows = text.split('\n').filter((line) => line.startsWith('| ') && !line.startsWith('| feature'));
  assert.equal(rows.length, 4);
  assert.match(rows[0]!, /\| limits \| non-streaming \| 0\.900× .*\| \+20\.0 µs \(\+10\.0 … \+30\.0\) \| yes \|/);
  assert.match(rows[1]!, /\| streaming \|.*\| no: within the noise \|/);
  assert.match(text, /Sum of the medians, A over C: 120\.0 µs per non-streaming request, 124\.0 µs per streamed one/);
  assert.doesNotMatch(text, /production stores/, 'a run without store steps (before 2026-12-07) renders as it did');

  const withStores = featuresSection({
    ...result,
    storeSteps: [
      { feature: 'the store in PostgreSQL', withLabel: 'P', withoutLabel: 'R', modes: [mode(false, [1, 5, 9]), mode(true, [-3, 1, 4])] },
      { feature: 'limits in Redis', withLabel: 'R', withoutLabel: 'A', modes: [mode(false, [20, 40, 60]), mode(true, [25, 45, 65])] },
    ],
  });
  const [, stores] = withStores.split('### The production stores');
  assert.ok(stores !== undefined, 'a section for the stores');
  assert.match(stores, /P → R → A/);
  const storeRows = stores.split('\n').filter((line) => line.startsWith('| ') && !line.startsWith('| store'));
  assert.equal(storeRows.length, 4);
  assert.match(storeRows[0]!, /\| the store in PostgreSQL \| non-streaming \|.*\| \+5\.0 µs \(\+1\.0 … \+9\.0\) \| yes \|/);
  assert.match(storeRows[2]!, /\| limits in Redis \| non-streaming \|.*\| \+40\.0 µs/);
  // The ladder's sum is still the ladder's: the stores are not part of the first target's gap.
  assert.match(withStores, /Sum of the medians, A over C: 120\.0 µs/);

  const skipped = featuresSection({ ...result, storesSkipped: 'Redis at redis://127.0.0.1:6379/ did not answer: connect ECONNREFUSED' });
  assert.match(skipped, /### The production stores\n\nNot measured in this run: Redis at redis:\/\/127\.0\.0\.1:6379\/ did not answer: connect ECONNREFUSED\./);
});
