/**
 * The gateway's admission (`createLimitAdmission`) with the real router, on the memory store
 * and on Redis. Admission reserves the caller and the deployment the router will most likely
 * try first in one store operation; these tests pin what must not change because of that: the
 * held deployment is charged exactly once, its refusal fails over (batch calls included) instead
 * of refusing the call, another pick charges the deployment actually used and refunds the held
 * one, and release and settle refund what they should.
 */
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { after, describe, test } from 'node:test';
import { parseConfig } from '../src/config/load.ts';
import { SeedError } from '../src/errors.ts';
import { ANONYMOUS_CALLER, type AdmissionTicket, type Caller, type Priority } from '../src/gateway/hooks.ts';
import { createLimitAdmission } from '../src/limits/admission.ts';
import { bucketsFor, MINUTE_MS, type LimitScope } from '../src/limits/buckets.ts';
import { Limiter, type Admission as LimiterAdmission } from '../src/limits/limiter.ts';
import type { BucketStatus, LimitStore, Usage } from '../src/limits/types.ts';
import { HealthTracker } from '../src/routing/health.ts';
import { buildRouteTable, type Deployment } from '../src/routing/route-table.ts';
import { createRouter } from '../src/routing/router.ts';
import type { ChatCompletionRequest } from '../src/wire/openai.ts';
import { limitStoreBackends, type StoreHandle } from './helpers/limits-stores.ts';

const backends = await limitStoreBackends({ file: 'admission' });

const CONFIG = `
retry: { maxAttempts: 3, initialDelayMs: 1, maxDelayMs: 2 }
deployments:
  a: { provider: openai, baseUrl: http://127.0.0.1:1/v1, model: gpt-4o-mini, limits: { rpm: 5, tpm: 100000 } }
  b: { provider: openai, baseUrl: http://127.0.0.1:2/v1, model: gpt-4o-mini, limits: { rpm: 5, tpm: 100000 } }
  requests-only: { provider: openai, baseUrl: http://127.0.0.1:3/v1, model: gpt-4o-mini, limits: { rpm: 100 } }
  few-tokens: { provider: openai, baseUrl: http://127.0.0.1:4/v1, model: gpt-4o-mini, limits: { tpm: 1000 } }
routes:
  only-a: { deployments: [{ deployment: a }] }
  a-then-b: { deployments: [{ deployment: a }], fallbacks: [only-b] }
  only-b: { deployments: [{ deployment: b }] }
  weighted: { deployments: [{ deployment: a, weight: 3 }, { deployment: b, weight: 1 }] }
  requests-only: { deployments: [{ deployment: requests-only }] }
`;

const signal = new AbortController().signal;

/** Settle and release are fire-and-forget in the ticket; this limiter lets a test wait for them. */
class TrackingLimiter extends Limiter {
  readonly #pending: Array<void | Promise<void>> = [];
  override settle(admission: LimiterAdmission, usage: Usage): void | Promise<void> {
    const settling = super.settle(admission, usage);
    this.#pending.push(settling);
    return settling;
  }
  override release(admission: LimiterAdmission): void | Promise<void> {
    const releasing = super.release(admission);
    this.#pending.push(releasing);
    return releasing;
  }
  async finished(): Promise<void> {
    await Promise.all(this.#pending.splice(0));
  }
}

function callerWith(limits: LimitScope['limits']): Caller {
  return { ...ANONYMOUS_CALLER, keyId: 'k_1', limits: [{ owner: 'key', id: 'k_1', limits }] };
}

function chatBody(maxTokens = 20): ChatCompletionRequest {
  return { model: 'x', messages: [{ role: 'user', content: 'hello' }], max_tokens: maxTokens };
}

function setup(store: LimitStore, options: { random?: () => number } = {}) {
  const config = parseConfig(CONFIG, { env: {} });
  const table = buildRouteTable(config);
  const limiter = new TrackingLimiter({ store, onUnavailable: 'closed' });
  const admission = createLimitAdmission({ limiter, price: () => 0 });
  const router = createRouter({
    table,
    health: new HealthTracker({ options: config.health, now: Date.now }),
    now: Date.now,
    random: options.random ?? (() => 0.5),
    sleep: async () => {},
  });
  const deployment = (name: string): Deployment => {
    const found = table.deployments.get(name);
    assert.ok(found, name);
    return found;
  };

  async function admit(input: { routeName: string; caller: Caller; priority?: Priority; body?: ChatCompletionRequest }): Promise<AdmissionTicket> {
    const route = table.routes.get(input.routeName);
    assert.ok(route, input.routeName);
    return admission.admit({
      caller: input.caller,
      route,
      endpoint: 'chat.completions',
      body: input.body ?? chatBody(),
      purpose: 'serve',
      priority: input.priority ?? 'interactive',
      deadlineAt: Date.now() + 10_000,
      signal,
    });
  }

  /** One call the way the gateway makes it: admit, route (reserving each attempt), settle or release. */
  async function call(input: { routeName: string; caller: Caller; priority?: Priority; usage?: { promptTokens: number; completionTokens: number } }) {
    const ticket = await admit(input);
    const result = await router.route({
      routeName: input.routeName,
      signal,
      deadlineAt: Date.now() + 10_000,
      run: async (attempt) => {
        await ticket.reserveDeployment?.(attempt.deployment);
        return { value: attempt.deployment.name };
      },
    });
    if (result.ok) ticket.settle({ promptTokens: 0, completionTokens: 0, cachedTokens: 0, costUsd: 0, ...input.usage });
    else ticket.release();
    await limiter.finished();
    return { result, headers: ticket.headers?.() ?? {} };
  }

  /** A scope's capacity left, by bucket kind, read with a zero-token reserve that is refunded. */
  async function remaining(scope: LimitScope): Promise<Record<string, number>> {
    const outcome = await store.reserve({
      parts: [{ buckets: bucketsFor({ scope, windowMs: MINUTE_MS }), tokens: 0, usd: 0 }],
      leaseMs: MINUTE_MS,
    });
    if (outcome.admitted) for (const reservation of outcome.reservations) await store.release(reservation);
    // An admitted probe's statuses already count its own request.
    const probeRequest = outcome.admitted ? 1 : 0;
    return Object.fromEntries(
      outcome.statuses.map((status) => [status.bucket.kind, status.remaining + (status.bucket.kind === 'requests' ? probeRequest : 0)]),
    );
  }
  const deploymentScope = (name: string): LimitScope => ({ owner: 'deployment', id: name, limits: deployment(name).limits });
  const keyScope = (caller: Caller): LimitScope => caller.limits?.[0] ?? assert.fail('caller without limits');

  return { admit, call, remaining, deployment, deploymentScope, keyScope, limiter };
}

for (const backend of backends) {
  describe(`admission with the router (${backend.name})`, { skip: backend.skip }, () => {
    const handles: StoreHandle[] = [];
    async function open(): Promise<StoreHandle> {
      const handle = await backend.open();
      handles.push(handle);
      return handle;
    }
    after(async () => {
      await Promise.all(handles.map((handle) => handle.cleanup()));
    });

    test('the deployment reserved at admission is charged once: rpm 5 admits exactly 5 of 20 concurrent calls', async () => {
      const { store } = await open();
      const { call, remaining, deploymentScope, keyScope } = setup(store);
      const caller = callerWith({ rpm: 100, tpm: 1_000_000 });
      const results = await Promise.all(Array.from({ length: 20 }, () => call({ routeName: 'only-a', caller })));
      const served = results.filter(({ result }) => result.ok);
      assert.equal(served.length, 5);
      for (const { result } of results) if (!result.ok) assert.equal(result.error.code, 'rate_limit_exceeded');
      assert.equal((await remaining(deploymentScope('a'))).requests, 0);
      // Calls refused by the deployment never reached an upstream: the caller got them back.
      assert.equal((await remaining(keyScope(caller))).requests, 95);
    });

    test("a refusal by the held deployment's quota fails over to the fallback; batch calls do not wait for it", async () => {
      const { store } = await open();
      const { call, remaining, deploymentScope, keyScope } = setup(store);
      const caller = callerWith({ rpm: 100 });
      const servedBy: string[] = [];
      for (let index = 0; index < 5; index += 1) {
        const { result } = await call({ routeName: 'a-then-b', caller });
        assert.ok(result.ok);
        servedBy.push(result.value);
      }
      const started = Date.now();
      for (let index = 0; index < 3; index += 1) {
        const { result } = await call({ routeName: 'a-then-b', caller, priority: 'batch' });
        assert.ok(result.ok, result.ok ? '' : result.error.message);
        servedBy.push(result.value);
      }
      assert.ok(Date.now() - started < 2_000, 'a batch call waits for the caller, not for a deployment with a fallback');
      assert.deepEqual(servedBy, ['a', 'a', 'a', 'a', 'a', 'b', 'b', 'b']);
      assert.equal((await remaining(deploymentScope('a'))).requests, 0);
      assert.equal((await remaining(deploymentScope('b'))).requests, 2);
      assert.equal((await remaining(keyScope(caller))).requests, 92, 'the caller is charged once per call');
    });

    test('a weighted pick of another deployment charges that one and refunds the held one', async () => {
      const { store } = await open();
      // 0.9 falls in b's quarter of the weight (a: 3, b: 1); admission holds a, the heavier.
      const { call, remaining, deploymentScope, keyScope } = setup(store, { random: () => 0.9 });
      const caller = callerWith({ rpm: 100, tpm: 1_000_000 });
      const { result } = await call({ routeName: 'weighted', caller, usage: { promptTokens: 30, completionTokens: 20 } });
      assert.ok(result.ok);
      assert.equal(result.value, 'b');
      assert.deepEqual(await remaining(deploymentScope('a')), { requests: 5, tokens: 100_000 });
      assert.deepEqual(await remaining(deploymentScope('b')), { requests: 4, tokens: 100_000 - 50 });
      assert.deepEqual(await remaining(keyScope(caller)), { requests: 99, tokens: 1_000_000 - 50 });
    });

    test('release before any attempt refunds the caller and the held deployment whole', async () => {
      const { store } = await open();
      const { admit, remaining, deploymentScope, keyScope, limiter } = setup(store);
      const caller = callerWith({ rpm: 100, tpm: 1_000_000 });
      const ticket = await admit({ routeName: 'only-a', caller });
      assert.equal((await remaining(deploymentScope('a'))).requests, 4, 'admission holds the deployment');
      ticket.release();
      await limiter.finished();
      assert.deepEqual(await remaining(deploymentScope('a')), { requests: 5, tokens: 100_000 });
      assert.deepEqual(await remaining(keyScope(caller)), { requests: 100, tokens: 1_000_000 });
    });

    test('after an attempt was sent, release keeps the request counted and refunds the tokens; settle charges the real usage', async () => {
      const { store } = await open();
      const { admit, remaining, deployment, deploymentScope, keyScope, limiter } = setup(store);
      const caller = callerWith({ rpm: 100, tpm: 1_000_000 });
      const aborted = await admit({ routeName: 'only-a', caller });
      await aborted.reserveDeployment?.(deployment('a'));
      aborted.release();
      await limiter.finished();
      assert.deepEqual(await remaining(deploymentScope('a')), { requests: 4, tokens: 100_000 });
      assert.deepEqual(await remaining(keyScope(caller)), { requests: 99, tokens: 1_000_000 });

      const settled = await admit({ routeName: 'only-a', caller });
      await settled.reserveDeployment?.(deployment('a'));
      settled.settle({ promptTokens: 10, completionTokens: 5, cachedTokens: 0, costUsd: 0 });
      settled.settle({ promptTokens: 1_000, completionTokens: 1_000, cachedTokens: 0, costUsd: 0 }); // a repeat changes nothing
      await limiter.finished();
      assert.deepEqual(await remaining(deploymentScope('a')), { requests: 3, tokens: 100_000 - 15 });
      assert.deepEqual(await remaining(keyScope(caller)), { requests: 98, tokens: 1_000_000 - 15 });
    });

    test('a failover from the held deployment settles its sent attempt and reserves the next', async () => {
      const { store } = await open();
      const { admit, remaining, deployment, deploymentScope, limiter } = setup(store);
      const ticket = await admit({ routeName: 'a-then-b', caller: ANONYMOUS_CALLER });
      await ticket.reserveDeployment?.(deployment('a')); // sent, then failed upstream
      await ticket.reserveDeployment?.(deployment('b'));
      ticket.settle({ promptTokens: 7, completionTokens: 3, cachedTokens: 0, costUsd: 0 });
      await limiter.finished();
      assert.deepEqual(await remaining(deploymentScope('a')), { requests: 4, tokens: 100_000 });
      assert.deepEqual(await remaining(deploymentScope('b')), { requests: 4, tokens: 100_000 - 10 });
    });

    test('tokens are estimated when only a later deployment charges them', async () => {
      const { store } = await open();
      const { admit, deployment } = setup(store);
      // Neither the caller nor the held deployment counts tokens; the failover target does.
      const ticket = await admit({ routeName: 'requests-only', caller: callerWith({ rpm: 10 }), body: chatBody(5_000) });
      await assert.rejects(ticket.reserveDeployment?.(deployment('few-tokens')) ?? Promise.resolve(), (error: unknown) => {
        assert.ok(error instanceof SeedError);
        assert.equal(error.code, 'rate_limit_exceeded');
        assert.match(error.message, /needs about \d+ tokens .* more than the limit of 1000 tokens/);
        return true;
      });
      ticket.release();
    });

    test("a refusal by the caller while a deployment is held reports the caller's buckets", async () => {
      const { store } = await open();
      const { call, admit } = setup(store);
      const caller = callerWith({ rpm: 1, tpm: 1_000_000 });
      assert.ok((await call({ routeName: 'only-a', caller })).result.ok);
      await assert.rejects(admit({ routeName: 'only-a', caller }), (error: unknown) => {
        assert.ok(error instanceof SeedError);
        assert.equal(error.code, 'rate_limit_exceeded');
        assert.match(error.message, /key k_1/);
        assert.equal(error.headers['x-ratelimit-limit-requests'], '1');
        // The deployment's tokens (100,000) are tighter, but it did not refuse: not reported.
        assert.equal(error.headers['x-ratelimit-limit-tokens'], '1000000');
        return true;
      });
    });

    test("response headers describe the caller's own limits, before and after an attempt reserves a deployment", async () => {
      const { store } = await open();
      const { admit, deployment } = setup(store);
      const caller = callerWith({ rpm: 50 });
      const ticket = await admit({ routeName: 'only-a', caller });
      assert.equal(ticket.headers?.()['x-ratelimit-limit-requests'], '50');
      await ticket.reserveDeployment?.(deployment('a'));
      const headers = ticket.headers?.() ?? {};
      // Deployment a's quota (rpm 5, tpm 100 000) is shared by every caller: not in the headers.
      assert.equal(headers['x-ratelimit-limit-requests'], '50');
      assert.equal(headers['x-ratelimit-remaining-requests'], '49');
      assert.equal(headers['x-ratelimit-limit-tokens'], undefined);
      const anonymous = await admit({ routeName: 'only-a', caller: ANONYMOUS_CALLER });
      await anonymous.reserveDeployment?.(deployment('a'));
      assert.deepEqual(anonymous.headers?.(), {}, 'a caller without limits gets no x-ratelimit-* headers');
      anonymous.release();
      ticket.release();
    });

    test('regression: admission asks the store for the header statuses only, and a ticket keeps those two', async () => {
      // A status per bucket (11 with key, team, org and deployment limits) was ~1.7 KB of
      // garbage per call, of which the headers read two. Holding them all in the ticket, which
      // lives as long as its call, made them outlive scavenges under load, and V8 then allocated
      // every status in the old generation for good (allocation-site pretenuring).
      const { store } = await open();
      const returned: Array<WeakRef<BucketStatus>> = [];
      const reports: Array<string | undefined> = [];
      const recording: LimitStore = {
        reserve: async (request) => {
          reports.push(request.report);
          const result = await store.reserve(request);
          for (const status of result.statuses) returned.push(new WeakRef(status));
          if (result.admitted) {
            for (const { requests, tokens } of result.headerStatuses) {
              for (const status of [requests, tokens]) if (status !== undefined) returned.push(new WeakRef(status));
            }
          }
          return result;
        },
        settle: (reservation, usage) => store.settle(reservation, usage),
        release: (reservation) => store.release(reservation),
        finish: (request) => store.finish(request),
        close: () => store.close(),
      };
      const { admit, deployment } = setup(recording);
      const limits = { rpm: 100, tpm: 1_000_000, concurrent: 10, usdPerDay: 5 };
      const caller: Caller = {
        ...ANONYMOUS_CALLER,
        keyId: 'k_1',
        limits: [
          { owner: 'key', id: 'k_1', limits },
          { owner: 'team', id: 't_1', limits },
        ],
      };
      const ticket = await admit({ routeName: 'only-a', caller });
      await ticket.reserveDeployment?.(deployment('a'));
      const before = ticket.headers?.();
      assert.deepEqual(reports, ['headers']);
      // The caller's tightest requests and tokens buckets, and the deployment's.
      assert.equal(returned.length, 4, `${returned.length} statuses`);
      // WeakRef targets stay alive until the current job ends.
      await new Promise((resolve) => setImmediate(resolve));
      collectGarbage();
      await new Promise((resolve) => setImmediate(resolve));
      const alive = returned.filter((ref) => ref.deref() !== undefined).length;
      assert.ok(alive <= 2, `${alive} of ${returned.length} statuses still held by the ticket`);
      assert.deepEqual(ticket.headers?.(), before, 'the headers are unchanged');
      assert.equal(before?.['x-ratelimit-limit-requests'], '100');
      // The estimate of the call is reserved: fewer than the limit remain.
      assert.ok(Number(before?.['x-ratelimit-remaining-tokens']) < 1_000_000, before?.['x-ratelimit-remaining-tokens']);
      ticket.release();
    });
  });
}

/** A full garbage collection (V8's `gc`, exposed for this process only). */
function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

