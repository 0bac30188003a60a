import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import { SeedError } from '../src/errors.ts';
import { bucketsFor, MINUTE_MS, type LimitScope } from '../src/limits/buckets.ts';
import { formatResetDuration } from '../src/limits/headers.ts';
import { parseDurationMs } from '../src/providers/http.ts';
import { Limiter, type LimitsLogger } from '../src/limits/limiter.ts';
import { createRedisClient, RedisLimitStore } from '../src/limits/redis-store.ts';
import {
  LimitStoreUnavailableError,
  type FinishRequest,
  type LimitStore,
  type Reservation,
  type ReserveRequest,
  type ReserveResult,
  type Usage,
} from '../src/limits/types.ts';
import { limitStoreBackends, ManualClock, type StoreHandle } from './helpers/limits-stores.ts';
import { fuzzRuns } from './helpers/fuzz-runs.ts';

const backends = await limitStoreBackends({ file: 'limiter' });

function recordingLogger() {
  const lines: Array<{ level: string; message: string }> = [];
  const logger: LimitsLogger = {
    info: (message) => lines.push({ level: 'info', message }),
    warn: (message) => lines.push({ level: 'warn', message }),
    error: (message) => lines.push({ level: 'error', message }),
  };
  return { lines, logger };
}

/**
 * A store that can be switched off, to see the limiter through an outage and back. It answers in
 * the same turn when the store it wraps does (the memory store), so the outage is seen on both
 * of the limiter's paths.
 */
class SwitchableStore implements LimitStore {
  down = false;
  readonly reserveNow?: (request: ReserveRequest) => ReserveResult;
  readonly finishNow?: (request: FinishRequest) => readonly boolean[];
  constructor(private readonly inner: LimitStore) {
    const { reserveNow, finishNow } = inner;
    if (reserveNow) {
      this.reserveNow = (request) => {
        this.#check();
        return reserveNow.call(inner, request);
      };
    }
    if (finishNow) {
      this.finishNow = (request) => {
        this.#check();
        return finishNow.call(inner, request);
      };
    }
  }
  #check(): void {
    if (this.down) throw new LimitStoreUnavailableError('switched off by the test');
  }
  async reserve(request: ReserveRequest) {
    this.#check();
    return this.inner.reserve(request);
  }
  async settle(reservation: Reservation, usage: Usage) {
    this.#check();
    return this.inner.settle(reservation, usage);
  }
  async release(reservation: Reservation) {
    this.#check();
    return this.inner.release(reservation);
  }
  async finish(request: FinishRequest) {
    this.#check();
    return this.inner.finish(request);
  }
  async close() {}
}

/**
 * Capacity left per bucket id of `scopes`, read with a zero-token reserve of every bucket that
 * is then released (its own request is not counted).
 */
async function remaining(store: LimitStore, scopes: readonly LimitScope[]): Promise<Record<string, number>> {
  const buckets = scopes.flatMap((scope) => bucketsFor({ scope, windowMs: MINUTE_MS }));
  const result = await store.reserve({ parts: [{ buckets, tokens: 0, usd: 0 }], leaseMs: MINUTE_MS });
  assert.ok(result.admitted, 'the probe was refused');
  for (const reservation of result.reservations) await store.release(reservation);
  return Object.fromEntries(result.statuses.map((status) => [status.bucket.id, status.remaining + (status.bucket.kind === 'requests' ? 1 : 0)]));
}

async function refusalOf(promise: Promise<unknown>): Promise<SeedError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof SeedError, `expected a SeedError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected a refusal');
}

const key = (limits: LimitScope['limits']): LimitScope => ({ owner: 'key', id: 'k_1', limits });

test('reset durations are written the way OpenAI writes them', () => {
  assert.equal(formatResetDuration(20), '20ms');
  assert.equal(formatResetDuration(1_000), '1s');
  assert.equal(formatResetDuration(1_500), '1.5s');
  assert.equal(formatResetDuration(360_000), '6m0s');
  assert.equal(formatResetDuration(3_723_000), '1h2m3s');
  assert.equal(formatResetDuration(61_050), '1m1.05s');
  assert.equal(formatResetDuration(1_005), '1.005s');
  // Regression: read back as 16242.999999999998 (16.243 × 1000 in binary floating point); found by the property below in CI.
  assert.equal(parseDurationMs(formatResetDuration(16_243)), 16_243);
  // Every duration reads back exactly, and as JavaScript prints the seconds (three decimals at most, no trailing zeros).
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 10 * 3_600_000 }), (milliseconds) => {
      const written = formatResetDuration(milliseconds);
      assert.equal(parseDurationMs(written), milliseconds);
      if (milliseconds >= 1_000) assert.ok(written.endsWith(`${(milliseconds % 60_000) / 1_000}s`), written);
    }),
    fuzzRuns(100),
  );
});

for (const backend of backends) {
  describe(`limiter (${backend.name})`, { skip: backend.skip }, () => {
    const handles: StoreHandle[] = [];
    async function open(clock?: ManualClock): Promise<StoreHandle> {
      const handle = await backend.open(clock === undefined ? {} : { now: clock.now });
      handles.push(handle);
      return handle;
    }
    after(async () => {
      await Promise.all(handles.map((handle) => handle.cleanup()));
    });

    test('a refused call is a 429 SeedError with retry-after and OpenAI x-ratelimit headers', async () => {
      const clock = new ManualClock('2025-01-31T10:00:00.000Z');
      const { store } = await open(clock);
      const limiter = new Limiter({ store, onUnavailable: 'closed', now: clock.now });
      const scopes = [key({ rpm: 2, tpm: 1_000 })];
      const first = await limiter.admit({ scopes, tokens: 300, usd: 0 });
      assert.equal(first.headerStatuses.requests?.remaining, 1);
      assert.equal(first.headerStatuses.tokens?.remaining, 700);
      await limiter.admit({ scopes, tokens: 300, usd: 0 });
      const error = await refusalOf(limiter.admit({ scopes, tokens: 300, usd: 0 }));
      assert.equal(error.code, 'rate_limit_exceeded');
      assert.equal(error.status, 429);
      assert.equal(error.retryAfterMs, 60_500);
      assert.match(error.message, /key k_1: 2 requests per minute/);
      assert.deepEqual(error.responseHeaders(), {
        'x-ratelimit-limit-requests': '2',
        'x-ratelimit-remaining-requests': '0',
        'x-ratelimit-reset-requests': '1m0.5s',
        'x-ratelimit-limit-tokens': '1000',
        'x-ratelimit-remaining-tokens': '400',
        'x-ratelimit-reset-tokens': '1m0.5s',
        'retry-after': '61',
        'retry-after-ms': '60500',
      });
    });

    test('concurrency and budget refusals carry their own codes; an oversized call is not retryable later', async () => {
      const clock = new ManualClock('2025-01-31T10:00:00.000Z');
      const { store } = await open(clock);
      const limiter = new Limiter({ store, onUnavailable: 'closed', now: clock.now });
      const held = await limiter.admit({ scopes: [{ owner: 'team', id: 't', limits: { concurrent: 1 } }], tokens: 1, usd: 0 });
      const busy = await refusalOf(limiter.admit({ scopes: [{ owner: 'team', id: 't', limits: { concurrent: 1 } }], tokens: 1, usd: 0 }));
      assert.equal(busy.code, 'concurrency_limit_exceeded');
      await limiter.settle(held, { tokens: 1, usd: 0 });
      await limiter.admit({ scopes: [{ owner: 'team', id: 't', limits: { concurrent: 1 } }], tokens: 1, usd: 0 });

      const org: LimitScope = { owner: 'org', id: 'o', limits: { usdPerDay: 1 } };
      await limiter.admit({ scopes: [org], tokens: 1, usd: 0.9 });
      const broke = await refusalOf(limiter.admit({ scopes: [org], tokens: 1, usd: 0.2 }));
      assert.equal(broke.code, 'budget_exceeded');
      assert.equal(broke.retryAfterMs, 14 * 3_600_000);

      const huge = await refusalOf(limiter.admit({ scopes: [key({ tpm: 1_000 })], tokens: 5_000, usd: 0, priority: 'batch' }));
      assert.equal(huge.code, 'rate_limit_exceeded');
      assert.equal(huge.retryAfterMs, undefined);
      assert.match(huge.message, /more than the limit of 1000 tokens/);
    });

    test('caller and deployment buckets are reserved together; failover moves only the deployment part', async () => {
      const clock = new ManualClock('2025-01-31T10:00:00.000Z');
      const { store } = await open(clock);
      const limiter = new Limiter({ store, onUnavailable: 'closed', now: clock.now });
      const deploymentA: LimitScope = { owner: 'deployment', id: 'a', limits: { rpm: 10, tpm: 1_000 } };
      const deploymentB: LimitScope = { owner: 'deployment', id: 'b', limits: { rpm: 10, tpm: 1_000 } };
      const scopes = [key({ tpm: 2_000 })];
      const admission = await limiter.admit({ scopes, deployment: deploymentA, tokens: 800, usd: 0 });
      assert.ok(admission.call !== null && admission.attempt !== null);

      const switched = await limiter.switchDeployment({ admission, deployment: deploymentB, previousAttempt: 'sent' });
      assert.equal(switched.admitted, true);
      if (!switched.admitted) return;
      await limiter.settle(switched.admission, { tokens: 500, usd: 0 });

      const left = await remaining(store, [...scopes, deploymentA, deploymentB]);
      assert.equal(left['deployment:a:rpm'], 9, 'the failed attempt reached a and still counts as a request');
      assert.equal(left['deployment:a:tpm'], 1_000, 'its tokens were refunded');
      assert.equal(left['key:k_1:tpm'], 1_500, 'the caller is charged the real usage once');
      assert.equal(left['deployment:b:tpm'], 500);
    });

    test('tryAdmit returns a refusal instead of throwing it; admissions are the same as admit gives', async () => {
      const clock = new ManualClock('2025-01-31T10:00:00.000Z');
      const { store } = await open(clock);
      const limiter = new Limiter({ store, onUnavailable: 'closed', now: clock.now });
      const scopes = [key({ rpm: 1 })];
      const deployment: LimitScope = { owner: 'deployment', id: 'd', limits: { rpm: 5 } };
      const first = await limiter.tryAdmit({ scopes, deployment, tokens: 1, usd: 0 });
      assert.equal(first.admitted, true);
      if (!first.admitted) return;
      assert.ok(first.admission.call !== null && first.admission.attempt !== null);
      assert.equal(first.admission.enforced, true);
      // The headers report the caller's buckets; the deployment's quota was charged all the same.
      assert.equal(first.admission.headerStatuses.requests?.bucket.id, 'key:k_1:rpm');
      assert.equal(first.admission.headerStatuses.requests?.remaining, 0);
      assert.equal(first.admission.headerStatuses.tokens, undefined);
      assert.equal((await remaining(store, [deployment]))['deployment:d:rpm'], 4);
      const second = await limiter.tryAdmit({ scopes, deployment, tokens: 1, usd: 0 });
      assert.equal(second.admitted, false);
      if (second.admitted) return;
      assert.equal(second.refusal.bucket.id, 'key:k_1:rpm');
      assert.equal(second.error.code, 'rate_limit_exceeded');
      assert.equal(second.error.retryAfterMs, 60_500);
      await limiter.release(first.admission);
      const afterRelease = await limiter.tryAdmit({ scopes, tokens: 1, usd: 0 });
      assert.equal(afterRelease.admitted, true, 'release refunded the request');
    });

    test('a store that answers in the same turn is answered without a promise: admission, refusal, settle', async () => {
      const { store } = await open();
      // The memory store must keep answering in the same turn: admission is on every call's path.
      if (backend.name === 'memory') assert.ok(store.reserveNow && store.finishNow);
      const synchronous = store.reserveNow !== undefined;
      const limiter = new Limiter({ store, onUnavailable: 'closed' });
      const scopes = [key({ tpm: 100 })];
      const admitting = limiter.admitNow({ scopes, tokens: 70, usd: 0 });
      assert.equal(admitting instanceof Promise, !synchronous);
      const admission = await admitting;
      assert.equal(admission.headerStatuses.tokens?.remaining, 30);
      // A refusal is thrown at once on the synchronous path, rejected on the other.
      let refusing: Promise<unknown>;
      try {
        refusing = Promise.resolve(limiter.admitNow({ scopes, tokens: 70, usd: 0 }));
        assert.equal(synchronous, false, 'a store answering in the same turn refused through a promise');
      } catch (error) {
        assert.equal(synchronous, true);
        refusing = Promise.reject(error);
      }
      assert.equal((await refusalOf(refusing)).code, 'rate_limit_exceeded');
      // The public admit always answers with a promise, and rejects (never throws) a refusal.
      const refused = limiter.admit({ scopes, tokens: 70, usd: 0 });
      assert.ok(refused instanceof Promise);
      assert.equal((await refusalOf(refused)).code, 'rate_limit_exceeded');
      const settling = limiter.settle(admission, { tokens: 10, usd: 0 });
      assert.equal(settling instanceof Promise, store.finishNow === undefined);
      await settling;
      // Settled in this turn: the 60 tokens of the estimate not used are free again.
      assert.equal((await remaining(store, scopes))['key:k_1:tpm'], 90);
    });

    test('batch priority waits for capacity, then succeeds; interactive is refused at once', async () => {
      const { store } = await open();
      const limiter = new Limiter({ store, onUnavailable: 'closed', windowMs: 1_200 });
      const scopes = [key({ rpm: 1 })];
      await limiter.admit({ scopes, tokens: 1, usd: 0 });
      await refusalOf(limiter.admit({ scopes, tokens: 1, usd: 0 }));
      const started = Date.now();
      const waited = await limiter.admit({ scopes, tokens: 1, usd: 0, priority: 'batch', deadlineAt: Date.now() + 5_000 });
      const elapsed = Date.now() - started;
      assert.equal(waited.enforced, true);
      assert.ok(elapsed >= 1_000 && elapsed < 3_000, `waited ${elapsed} ms for a 1.2 s window`);
    });

    test('batch priority waits for a concurrent slot freed by another call', async () => {
      const { store } = await open();
      const limiter = new Limiter({ store, onUnavailable: 'closed' });
      const scopes = [key({ concurrent: 1 })];
      const holder = await limiter.admit({ scopes, tokens: 1, usd: 0 });
      setTimeout(() => void limiter.settle(holder, { tokens: 1, usd: 0 }), 200);
      const started = Date.now();
      await limiter.admit({ scopes, tokens: 1, usd: 0, priority: 'batch', deadlineAt: Date.now() + 5_000 });
      assert.ok(Date.now() - started >= 190);
    });

    test('batch priority gives up at its deadline', async () => {
      const { store } = await open();
      const limiter = new Limiter({ store, onUnavailable: 'closed', windowMs: 10_000 });
      const scopes = [key({ rpm: 1 })];
      await limiter.admit({ scopes, tokens: 1, usd: 0 });
      const error = await refusalOf(limiter.admit({ scopes, tokens: 1, usd: 0, priority: 'batch', deadlineAt: Date.now() + 300 }));
      assert.equal(error.code, 'rate_limit_exceeded');
    });

    test('an unreachable store fails closed with limits_unavailable, logging once per outage', async () => {
      const { store } = await open();
      const switchable = new SwitchableStore(store);
      const { lines, logger } = recordingLogger();
      const limiter = new Limiter({ store: switchable, onUnavailable: 'closed', logger });
      const scopes = [key({ rpm: 100 })];
      switchable.down = true;
      for (let attempt = 0; attempt < 3; attempt += 1) {
        const error = await refusalOf(limiter.admit({ scopes, tokens: 1, usd: 0 }));
        assert.equal(error.code, 'limits_unavailable');
        assert.equal(error.status, 503);
      }
      assert.equal(lines.length, 1);
      assert.match(lines[0]?.message ?? '', /failing closed.*onUnavailable: closed/);
      assert.deepEqual(limiter.stats(), { storeReachable: false, uncheckedCalls: 0 });
      switchable.down = false;
      await limiter.admit({ scopes, tokens: 1, usd: 0 });
      assert.equal(lines.length, 2);
      assert.match(lines[1]?.message ?? '', /reachable again/);
      assert.deepEqual(limiter.stats(), { storeReachable: true, uncheckedCalls: 0 });
    });

    test('an unreachable store fails open when configured: admitted unchecked, logged once', async () => {
      const { store } = await open();
      const switchable = new SwitchableStore(store);
      const { lines, logger } = recordingLogger();
      const limiter = new Limiter({ store: switchable, onUnavailable: 'open', logger });
      const scopes = [key({ rpm: 1 })];
      const held = await limiter.admit({ scopes, tokens: 1, usd: 0 });
      switchable.down = true;
      const unchecked = await limiter.admit({ scopes, tokens: 1, usd: 0 });
      const again = await limiter.admit({ scopes, tokens: 1, usd: 0 });
      assert.equal(unchecked.enforced, false);
      assert.equal(again.enforced, false);
      assert.deepEqual(limiter.stats(), { storeReachable: false, uncheckedCalls: 2 });
      await limiter.settle(held, { tokens: 1, usd: 0 }); // settling during the outage does not throw
      assert.equal(lines.filter((line) => line.level === 'warn').length, 1);
      assert.match(lines[0]?.message ?? '', /failing open.*onUnavailable: open/);
      switchable.down = false;
      await refusalOf(limiter.admit({ scopes, tokens: 1, usd: 0 })); // enforced again: rpm 1 already used
      assert.deepEqual(limiter.stats(), { storeReachable: true, uncheckedCalls: 2 }, 'unchecked calls count since start, over outages');
    });
  });
}

describe('limiter against a Redis that is not there', () => {
  const unreachable = 'redis://127.0.0.1:1';
  const stores: RedisLimitStore[] = [];
  after(async () => Promise.all(stores.map((store) => store.close())));
  function deadStore(): RedisLimitStore {
    const store = new RedisLimitStore({ client: createRedisClient({ url: unreachable }) });
    stores.push(store);
    return store;
  }

  test('fails closed: 503 limits_unavailable', async () => {
    const { logger } = recordingLogger();
    const limiter = new Limiter({ store: deadStore(), onUnavailable: 'closed', logger });
    const error = await refusalOf(limiter.admit({ scopes: [key({ rpm: 1 })], tokens: 1, usd: 0 }));
    assert.equal(error.code, 'limits_unavailable');
    assert.equal(error.retryAfterMs, 1_000);
  });

  test('fails open: admitted, unchecked', async () => {
    const { lines, logger } = recordingLogger();
    const limiter = new Limiter({ store: deadStore(), onUnavailable: 'open', logger });
    const admission = await limiter.admit({ scopes: [key({ rpm: 1 })], tokens: 1, usd: 0 });
    assert.equal(admission.enforced, false);
    await limiter.settle(admission, { tokens: 1, usd: 0 });
    assert.equal(lines.length, 1);
  });
});
