/**
 * The do-little Node baseline: node:http receives the request, an undici Pool forwards it to
 * `UPSTREAM` with keep-alive, and the response (JSON or SSE) is piped back as it arrives.
 * Anything a gateway does beyond this is its own cost.
 *
 * `RELAY` says how the answer is relayed: `pipeline` (default, what the benchmark's baseline has
 * always been: `stream/promises`' `pipeline`) or `pipe` (`Readable#pipe`). With undici's body,
 * `pipeline`'s end-of-stream check makes an `ERR_STREAM_PREMATURE_CLOSE` error, stack trace and
 * all, on every call, then ignores it (the body closes before it ends); `pipe` makes none.
 * bench/proxy-relay.ts measures what that costs the baseline.
 */
import { createServer, type ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { Pool } from 'undici';
import { forwardable } from './forward-headers.ts';
import { announceReady, exitOnSignals } from './ready.ts';

const upstream = process.env['UPSTREAM'];
if (!upstream) throw new Error('UPSTREAM is required');
const relayMode = process.env['RELAY'] ?? 'pipeline';
if (relayMode !== 'pipeline' && relayMode !== 'pipe') throw new Error(`RELAY: pipeline or pipe, got ${relayMode}`);

const pool = new Pool(upstream, { connections: 256, keepAliveTimeout: 30_000 });

type UpstreamBody = Awaited<ReturnType<Pool['request']>>['body'];

const relay: (body: UpstreamBody, response: ServerResponse) => Promise<void> | void =
  relayMode === 'pipeline'
    ? (body, response) => pipeline(body, response)
    : (body, response) => {
        // `pipe` does not pass a source's error on: a broken upstream body ends the response.
        body.once('error', (error) => response.destroy(error));
        body.pipe(response);
      };

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
