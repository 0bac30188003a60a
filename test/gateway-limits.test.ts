/**
 * Admission through the gateway, on the memory store and on Redis: caller limits, budgets and
 * deployment quotas are reserved before a call and settled after it; Seed's own 429s carry
 * OpenAI-format rate-limit headers; concurrency races do not overshoot.
 */
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { ANONYMOUS_CALLER, type Caller } from '../src/gateway/hooks.ts';
import type { LimitsConfig } from '../src/limits/config.ts';
import { limitStoreBackends, REDIS_URL } from './helpers/limits-stores.ts';
import { startStack, type Stack } from './helpers/stack.ts';

const backends = await limitStoreBackends({ file: 'gateway-limits' });

function callerWith(limits: LimitsConfig): Caller {
  const keyId = `key_${randomUUID()}`;
  return { ...ANONYMOUS_CALLER, keyId, teamId: 'team_1', limits: [{ owner: 'key', id: keyId, limits }] };
}

async function stackFor(input: {
  backend: 'memory' | 'redis';
  caller: Caller;
  deploymentLimits?: string;
  latencyMs?: number;
  /** Adds a deployment `backup` (its own quota) behind the route as a fallback. */
  fallback?: boolean;
}): Promise<Stack> {
  const limits =
    input.backend === 'redis'
      ? `limits: { store: redis, url: "${REDIS_URL}", keyPrefix: "seed-test:${randomUUID()}:", onUnavailable: closed }`
      : 'limits: { store: memory }';
  return startStack({
    config: (url) => `
${limits}
deployments:
  mini:
    provider: openai
    baseUrl: ${url}/v1
    model: gpt-4o-mini
    apiKey: sk-test
    ${input.deploymentLimits ?? ''}
  backup:
    provider: openai
    baseUrl: ${url}/v1
    model: gpt-4o-mini
    apiKey: sk-test
    limits: { rpm: 100 }
routes:
  gpt-4o-mini: { deployments: [{ deployment: mini }]${input.fallback === true ? ', fallbacks: [backup-route]' : ''} }
  backup-route: { deployments: [{ deployment: backup }] }
`,
    start: { authenticate: () => input.caller },
    simulator: { defaults: { latencyMs: input.latencyMs ?? 0 } },
  });
}

async function chat(stack: Stack, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  const response = await request(`${stack.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello' }], max_tokens: 20, ...extra }),
  });
  return { status: response.statusCode, headers: response.headers, body: (await response.body.json()) as { error?: { code: string } } };
}

for (const backend of backends) {
  describe(`limits through the gateway on ${backend.name}`, { skip: backend.skip }, () => {
    test('200 concurrent requests against a limit of 50 per minute admit exactly 50; the rest are 429 with headers', async () => {
      const stack = await stackFor({ backend: backend.name, caller: callerWith({ rpm: 50 }) });
      try {
        const results = await Promise.all(Array.from({ length: 200 }, () => chat(stack)));
        const admitted = results.filter((result) => result.status === 200);
        const refused = results.filter((result) => result.status === 429);
        assert.equal(admitted.length, 50);
        assert.equal(refused.length, 150, JSON.stringify(results.filter((result) => result.status !== 200 && result.status !== 429).map((result) => result.body)));
        const sample = refused[0]!;
        assert.equal(sample.body.error?.code, 'rate_limit_exceeded');
        assert.equal(sample.headers['x-ratelimit-limit-requests'], '50');
        assert.equal(sample.headers['x-ratelimit-remaining-requests'], '0');
        assert.ok(Number(sample.headers['retry-after']) >= 1);
        assert.ok(sample.headers['x-ratelimit-reset-requests']);
        assert.equal(admitted[0]!.headers['x-ratelimit-limit-requests'], '50');
        // Refused calls are recorded too, with their code, and never reached the upstream.
        const records = await stack.waitForRecords(200);
        assert.equal(records.filter((record) => record.errorCode === 'rate_limit_exceeded').length, 150);
        assert.equal(stack.simulator.stats().requests, 50);
      } finally {
        await stack.close();
      }
    });

    test('a USD budget admits calls until spent, racing included, then answers budget_exceeded', async () => {
      // Each call reserves its estimate (prompt + max_tokens 20 at gpt-4o-mini prices, ≈ $0.0000135)
      // and settles on real usage; a budget of $0.0001 holds only a handful at once.
      const stack = await stackFor({ backend: backend.name, caller: callerWith({ usdPerDay: 0.0001 }) });
      try {
        const results = await Promise.all(Array.from({ length: 200 }, () => chat(stack)));
        const admitted = results.filter((result) => result.status === 200).length;
        const refused = results.filter((result) => result.body.error?.code === 'budget_exceeded').length;
        assert.equal(admitted + refused, 200);
        const records = await stack.waitForRecords(200);
        const spent = records.reduce((sum, record) => sum + record.costUsd, 0);
        // Reservations are atomic and sized at the worst case (max_tokens), so spend never exceeds the budget.
        assert.ok(admitted >= 1 && admitted <= 8, `admitted ${admitted}`);
        assert.ok(spent <= 0.0001 + 1e-12, `spent ${spent}`);
      } finally {
        await stack.close();
      }
    });

    test("a deployment's own quota is enforced before the upstream refuses", async () => {
      const stack = await stackFor({ backend: backend.name, caller: ANONYMOUS_CALLER, deploymentLimits: 'limits: { rpm: 5 }' });
      try {
        const results = [];
        for (let index = 0; index < 8; index++) results.push(await chat(stack));
        assert.equal(results.filter((result) => result.status === 200).length, 5);
        assert.equal(stack.simulator.stats().requests, 5, 'no request beyond the quota reached the upstream');
        assert.equal(results.at(-1)?.status, 429, JSON.stringify(results.at(-1)?.body));
        // The quota's wait (about a minute) is longer than an interactive call waits: answered at once.
        assert.ok(Number(results.at(-1)?.headers['retry-after']) > 10);
      } finally {
        await stack.close();
      }
    });

    test("a deployment quota of 5 admits exactly 5 of 20 concurrent calls from a caller with its own limits", async () => {
      // Admission reserves the caller and the deployment in one step; the deployment must still be charged once per call.
      const stack = await stackFor({ backend: backend.name, caller: callerWith({ rpm: 100, tpm: 1_000_000 }), deploymentLimits: 'limits: { rpm: 5 }' });
      try {
        const results = await Promise.all(Array.from({ length: 20 }, () => chat(stack)));
        assert.equal(results.filter((result) => result.status === 200).length, 5);
        // Refused by Seed's reservation, or by the router that already knows the quota is spent.
        const refused = results.filter((result) => result.status !== 200);
        assert.equal(refused.length, 15);
        for (const result of refused) {
          assert.equal(result.status, 429);
          assert.ok(['rate_limit_exceeded', 'upstream_rate_limited'].includes(result.body.error?.code ?? ''), JSON.stringify(result.body));
        }
        assert.equal(stack.simulator.stats().requests, 5);
      } finally {
        await stack.close();
      }
    });

    test("a refusal by the deployment's own quota fails over to the fallback, batch calls too", async () => {
      const stack = await stackFor({
        backend: backend.name,
        caller: callerWith({ rpm: 100 }),
        deploymentLimits: 'limits: { rpm: 2 }',
        fallback: true,
      });
      try {
        const served: Array<string | string[] | undefined> = [];
        for (let index = 0; index < 3; index++) {
          const result = await chat(stack);
          assert.equal(result.status, 200, JSON.stringify(result.body));
          served.push(result.headers['x-seed-deployment']);
        }
        const started = Date.now();
        const batch = await chat(stack, {}, { 'x-seed-priority': 'batch' });
        assert.equal(batch.status, 200, JSON.stringify(batch.body));
        served.push(batch.headers['x-seed-deployment']);
        assert.ok(Date.now() - started < 5_000, 'the batch call did not wait for the quota of a deployment with a fallback');
        assert.deepEqual(served, ['mini', 'mini', 'backup', 'backup']);
        assert.equal(stack.simulator.stats().requests, 4);
      } finally {
        await stack.close();
      }
    });

    test('a prompt that spells a special token (<|endoftext|>) is estimated as text: 200, not a 500', async () => {
      // gpt-tokenizer throws on special-token text by default; the estimate runs before every call with a tpm limit.
      const stack = await stackFor({ backend: backend.name, caller: callerWith({ tpm: 1_000_000 }) });
      try {
        const result = await chat(stack, { messages: [{ role: 'user', content: 'Say <|endoftext|> and <|im_start|> back to me.' }] });
        assert.equal(result.status, 200, JSON.stringify(result.body));
      } finally {
        await stack.close();
      }
    });

    test('x-seed-priority: batch waits for capacity instead of failing', async () => {
      const stack = await stackFor({ backend: backend.name, caller: callerWith({ concurrent: 1 }), latencyMs: 400 });
      try {
        const first = chat(stack);
        await new Promise((resolve) => setTimeout(resolve, 100));
        const results = await Promise.all([
          first,
          chat(stack, {}, { 'x-seed-priority': 'batch' }),
          chat(stack, {}, { 'x-seed-priority': 'interactive' }),
        ]);
        assert.equal(results[0]!.status, 200);
        assert.equal(results[1]!.status, 200, 'the batch call waited for the slot');
        assert.equal(results[2]!.status, 429);
        assert.equal(results[2]!.body.error?.code, 'concurrency_limit_exceeded');
      } finally {
        await stack.close();
      }
    });
  });
}
