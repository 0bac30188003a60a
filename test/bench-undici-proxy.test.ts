/**
 * The benchmark's minimal undici proxy (bench/servers/undici-proxy.ts), with each of its relays:
 * it must relay what the simulator answers byte for byte, streamed or not, and end a client's
 * answer when the upstream breaks mid-stream rather than leave it hanging or call it complete,
 * or every ratio measured against it would be measured against something that is not a proxy.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { SIMULATOR_HEADERS, startSimulator, startUndiciProxy } from '../bench/lib/targets.ts';
import type { ServerProcess } from '../bench/lib/children.ts';

const REQUEST = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say something.' }], max_tokens: 12 };

async function post(origin: string, extra: { stream?: boolean; headers?: Record<string, string> } = {}): Promise<{ status: number; text: string }> {
  const body = JSON.stringify(extra.stream ? { ...REQUEST, stream: true, stream_options: { include_usage: true } } : REQUEST);
  const response = await request(`${origin}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...SIMULATOR_HEADERS, ...extra.headers },
    body,
    // A relay that leaves a broken answer open must fail the test, not hang it.
    headersTimeout: 10_000,
    bodyTimeout: 10_000,
  });
  return { status: response.statusCode, text: await response.body.text() };
}

/** The answer without what differs between two calls: ids and times. */
function comparable(text: string): string {
  return text.replace(/"id":"[^"]*"/g, '"id":"…"').replace(/"created":\d+/g, '"created":0');
}

let simulator: ServerProcess;
before(async () => {
  simulator = await startSimulator({ name: 'proxy-test simulator' });
});
after(async () => {
  await simulator.stop();
});

for (const relay of ['pipe', 'pipeline'] as const) {
  describe(`the minimal undici proxy, RELAY=${relay}`, () => {
    let proxy: ServerProcess;
    before(async () => {
      proxy = await startUndiciProxy({ simulatorUrl: simulator.url, name: `proxy ${relay}`, env: { RELAY: relay } });
    });
    after(async () => {
      await proxy.stop();
    });

    test('relays a JSON answer and a stream as the simulator sends them', async () => {
      for (const stream of [false, true]) {
        const direct = await post(simulator.url, { stream });
        const relayed = await post(proxy.url, { stream });
        assert.equal(relayed.status, 200);
        assert.equal(comparable(relayed.text), comparable(direct.text));
        if (stream) assert.match(relayed.text, /data: \[DONE\]\n\n$/);
      }
    });

    test('a stream the upstream breaks ends broken for the client, and the proxy serves on', async () => {
      await assert.rejects(post(proxy.url, { stream: true, headers: { 'x-sim-fault': 'reset-mid-stream' } }), (error: { code?: string }) => {
        assert.notEqual(error.code, 'UND_ERR_BODY_TIMEOUT', 'the broken answer was left open');
        return true;
      });
      const next = await post(proxy.url);
      assert.equal(next.status, 200);
    });
  });
}

test('an unknown RELAY is refused at start', async () => {
  await assert.rejects(
    startUndiciProxy({ simulatorUrl: simulator.url, name: 'proxy bad relay', env: { RELAY: 'splice' }, timeoutMs: 10_000 }),
    /RELAY: pipe or pipeline, got splice/,
  );
});
