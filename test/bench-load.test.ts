import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { closedLoop } from '../bench/lib/load.ts';

test('a closed loop bounded by a request count times its rate to the last response, not to autocannon’s next 1 s sample', async () => {
  // Every answer after 5 ms: 200 requests over 10 connections take ~0.1 s (~2 000 req/s); timed
  // to autocannon's once-a-second sample they read 200 req/s or less.
  const server = createServer((request, response) => {
    request.resume();
    setTimeout(() => response.end('{}'), 5);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    const { port } = server.address() as AddressInfo;
    const result = await closedLoop({
      request: { origin: `http://127.0.0.1:${port}`, path: '/', headers: { 'content-type': 'application/json' }, body: '{}' },
      connections: 10,
      amount: 200,
    });
    assert.equal(result.completed, 200);
    assert.equal(result.failures, 0);
    assert.ok(result.requestsPerSecond > 500, `200 requests at 10 × 5 ms read as ${result.requestsPerSecond.toFixed(0)} req/s`);
    assert.ok(result.requestsPerSecond < 2_100, `faster than the server can answer: ${result.requestsPerSecond.toFixed(0)} req/s`);
  } finally {
    server.close();
  }
});
