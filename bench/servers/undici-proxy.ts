/**
 * The do-little Node baseline: node:http receives the request, an undici Pool forwards it to
 * `UPSTREAM` with keep-alive, and the response (JSON or SSE) is piped back as it arrives.
 * Anything a gateway does beyond this is its own cost.
 *
 * `RELAY` says how the answer is relayed: `pipe` (default, `Readable#pipe`) or `pipeline`
 * (`stream/promises`' `pipeline`, the baseline of every run before 2026-12-07). With undici's
 * body, `pipeline`'s end-of-stream check makes an `ERR_STREAM_PREMATURE_CLOSE` error, stack trace
 * and all, on every call, then ignores it (the body closes before it ends): ~30% of that proxy's
 * CPU, a cost no minimal proxy needs to pay, so it flattered every gateway measured against it.
 * bench/proxy-relay.ts measures the two against each other.
 */
import { createServer, type ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { Pool } from 'undici';
import { forwardable } from './forward-headers.ts';
import { announceReady, exitOnSignals } from './ready.ts';

const upstream = process.env['UPSTREAM'];
if (!upstream) throw new Error('UPSTREAM is required');
const relayMode = process.env['RELAY'] ?? 'pipe';
if (relayMode !== 'pipeline' && relayMode !== 'pipe') throw new Error(`RELAY: pipe or pipeline, got ${relayMode}`);

const pool = new Pool(upstream, { connections: 256, keepAliveTimeout: 30_000 });

type UpstreamBody = Awaited<ReturnType<Pool['request']>>['body'];

const relay: (body: UpstreamBody, response: ServerResponse) => Promise<void> | void =
  relayMode === 'pipe'
    ? (body, response) => {
        // `pipe` does not pass a source's error on: a broken upstream body ends the response.
        body.once('error', (error) => response.destroy(error));
        body.pipe(response);
      }
    : (body, response) => pipeline(body, response);

const server = createServer((request, response) => {
  pool
    .request({
      path: request.url ?? '/',
      method: (request.method ?? 'GET') as 'GET',
      headers: forwardable(request.headers),
      body: request.method === 'GET' || request.method === 'HEAD' ? null : request,
    })
    .then(async (upstreamResponse) => {
      response.writeHead(upstreamResponse.statusCode, forwardable(upstreamResponse.headers));
      await relay(upstreamResponse.body, response);
    })
    .catch((error: unknown) => {
      if (!response.headersSent) response.writeHead(502, { 'content-type': 'text/plain' });
      response.end(String(error));
    });
});
server.keepAliveTimeout = 30_000;

server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  announceReady(`http://127.0.0.1:${port}`);
});
exitOnSignals(async () => {
  server.close();
  await pool.close();
});
