/**
 * Redis going away under load, through the gateway: limits fail closed (503 limits_unavailable)
 * or open (admitted unchecked) as configured, the log says which once per outage, and every
 * call is still recorded; a connection that stops answering is replaced rather than waited on.
 * Redis sits behind a TCP relay the test can cut or freeze, so the shared server
 * never stops.
 */
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { ANONYMOUS_CALLER } from '../src/gateway/hooks.ts';
import { limitStoreBackends, REDIS_URL } from './helpers/limits-stores.ts';
import { startStack } from './helpers/stack.ts';
import { startTcpRelay } from './helpers/tcp-relay.ts';

const backends = await limitStoreBackends({ file: 'faults-redis-outage' });
const redis = backends.find((backend) => backend.name === 'redis');

/**
 * A gateway whose limits live in Redis behind a relay the test can cut or freeze; every call has
 * a key with an rpm limit, so every call reserves in Redis. `chat` sends one and returns its
 * status, error code and how long it took.
 */
async function redisOutageStack(onUnavailable: 'closed' | 'open') {
  const redisUrl = new URL(REDIS_URL);
  const proxy = await startTcpRelay({ host: redisUrl.hostname, port: Number(redisUrl.port || 6379) });
  const lines: string[] = [];
  const keyId = `key_${randomUUID()}`;
  const stack = await startStack({
    config: (url) => `
limits: { store: redis, url: "redis://127.0.0.1:${proxy.port}", keyPrefix: "seed-test:${randomUUID()}:", onUnavailable: ${onUnavailable} }
deployments:
  mini: { provider: openai, baseUrl: ${url}/v1, model: gpt-4o-mini, apiKey: sk }
routes:
  gpt-4o-mini: { deployments: [{ deployment: mini }] }
`,
    start: {
      authenticate: () => ({ ...ANONYMOUS_CALLER, keyId, limits: [{ owner: 'key', id: keyId, limits: { rpm: 1000 } }] }),
      logger: (level, message) => lines.push(`${level} ${message}`),
    },
  });
  const chat = async () => {
    const startedAt = Date.now();
    const response = await request(`${stack.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], max_tokens: 8 }),
      headersTimeout: 10_000,
    });
    const body = (await response.body.json()) as { error?: { code: string } };
    return { status: response.statusCode, code: body.error?.code, ms: Date.now() - startedAt };
  };
  return {
    stack,
    proxy,
    lines,
    chat,
    async close() {
      proxy.restore();
      await stack.close();
      await proxy.close();
    },
  };
}

for (const onUnavailable of ['closed', 'open'] as const) {
  describe(`Redis outage with onUnavailable: ${onUnavailable}`, { skip: redis?.skip ?? 'no Redis backend' }, () => {
    test('calls during the outage follow the policy, the log says so, calls after it are limited again, all recorded', async () => {
      const { stack, proxy, lines, chat, close } = await redisOutageStack(onUnavailable);
      try {
        const before = await Promise.all(Array.from({ length: 10 }, chat));
        assert.deepEqual(new Set(before.map((result) => result.status)), new Set([200]));

        proxy.cut();
        const during = await Promise.all(Array.from({ length: 20 }, chat));
        if (onUnavailable === 'closed') {
          for (const result of during) assert.deepEqual({ status: result.status, code: result.code }, { status: 503, code: 'limits_unavailable' });
        } else {
          for (const result of during) assert.equal(result.status, 200);
        }
        // The metrics say it too: what SeedLimitStoreUnreachable and SeedLimitsFailingOpen alert on.
        const metrics = async () => (await (await request(`${stack.seed.url}/metrics`)).body.text());
        const duringMetrics = await metrics();
        assert.match(duringMetrics, /^seed_limits\{counter="storeReachable"\} 0$/m);
        assert.match(duringMetrics, new RegExp(`^seed_limits\\{counter="uncheckedCalls"\\} ${onUnavailable === 'open' ? 20 : 0}$`, 'm'));
        const said = lines.filter((line) => /unavailable|unreachable|unchecked|fail/i.test(line));
        assert.ok(said.length >= 1, `the log names the outage and the policy:\n${lines.join('\n')}`);
        assert.ok(said.length <= 3, `once per outage, not per call:\n${said.join('\n')}`);
        assert.ok(said.some((line) => line.includes(`failing ${onUnavailable}`)), `the log names the policy:\n${said.join('\n')}`);

        proxy.restore();
        let recovered = false;
        for (let attempt = 0; attempt < 50 && !recovered; attempt++) {
          // A 200 alone is no sign under onUnavailable: open; the limiter saying the store answers is.
          recovered = (await chat()).status === 200 && /^seed_limits\{counter="storeReachable"\} 1$/m.test(await metrics());
          if (!recovered) await new Promise((resolve) => setTimeout(resolve, 100));
        }
        assert.ok(recovered, 'limits work again once Redis is back');
        const records = await stack.waitForRecords(31);
        assert.ok(records.length >= 31, 'every call is in the ledger, refused ones included');
      } finally {
        await close();
      }
    });
  });
}

describe('Redis that stops answering (packets dropped, no reset), then a failover', { skip: redis?.skip ?? 'no Redis backend' }, () => {
  test('calls fail closed within the command timeout while it is frozen, and limits work again soon after new connections get through, although the old one never answers', { timeout: 60_000 }, async () => {
    const { proxy, lines, chat, close } = await redisOutageStack('closed');
    try {
      assert.equal((await chat()).status, 200);
      proxy.freeze();
      const during = await Promise.all(Array.from({ length: 5 }, chat));
      for (const result of during) {
        assert.deepEqual({ status: result.status, code: result.code }, { status: 503, code: 'limits_unavailable' });
        assert.ok(result.ms < 3_000, `refused after ${result.ms} ms, not held`);
      }
      // New connections reach Redis again; the one open when it froze never answers (a failover).
      proxy.restore({ keepFrozen: true });
      const startedAt = Date.now();
      let last = await chat();
      while (last.status !== 200 && Date.now() - startedAt < 10_000) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        last = await chat();
      }
      const tookMs = Date.now() - startedAt;
      assert.equal(last.status, 200, `limits still unavailable ${tookMs} ms after the failover: the frozen connection was kept`);
      assert.ok(lines.some((line) => /store reachable again; limits enforced/.test(line)), lines.join('\n'));
    } finally {
      await close();
    }
  });
});
