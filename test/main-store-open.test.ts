/** Starting the gateway on a store it cannot open: a clear refusal naming the store, nothing left running. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { parseConfig } from '../src/config/load.ts';
import { startSeed } from '../src/main.ts';
import { silentLogger } from '../src/log.ts';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

test('a store that refuses connections stops the start with the store named (password hidden) and the cause; the simulator it started is closed', async () => {
  // Ports nothing listens on: each taken, then released.
  const port = await freePort();
  const simulatorPort = await freePort();
  const config = parseConfig(`
store: { url: "postgres://seed:s3cret@127.0.0.1:${port}/seed" }
simulator: { enabled: true, port: ${simulatorPort} }
deployments:
  mini: { provider: openai, baseUrl: http://127.0.0.1:${simulatorPort}/v1, model: gpt-4o-mini, apiKey: sk }
routes:
  gpt-4o-mini: { deployments: [{ deployment: mini }] }
`);
  await assert.rejects(startSeed({ config, logger: silentLogger, port: 0 }), (error: Error) => {
    assert.ok(error.message.startsWith(`the store postgres://seed:***@127.0.0.1:${port}/seed cannot be opened: `), error.message);
    assert.match(error.message, /ECONNREFUSED/);
    assert.doesNotMatch(error.message, /s3cret/);
    return true;
  });
  // The simulator's port is free again.
  const again = createServer();
  await new Promise<void>((resolve, reject) => {
    again.once('error', reject);
    again.listen(simulatorPort, '127.0.0.1', resolve);
  });
  await new Promise<void>((resolve) => again.close(() => resolve()));
});
