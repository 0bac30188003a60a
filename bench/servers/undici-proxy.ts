/**
 * The do-little Node baseline: node:http receives the request, an undici Pool forwards it to
 * `UPSTREAM` with keep-alive, and the response (JSON or SSE) is piped back as it arrives.
 * Anything a gateway does beyond this is its own cost.
 */
import { createServer } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { Pool } from 'undici';
import { forwardable } from './forward-headers.ts';
import { announceReady, exitOnSignals } from './ready.ts';

const upstream = process.env['UPSTREAM'];
if (!upstream) throw new Error('UPSTREAM is required');

const pool = new Pool(upstream, { connections: 256, keepAliveTimeout: 30_000 });

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
      await pipeline(upstreamResponse.body, response);
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
