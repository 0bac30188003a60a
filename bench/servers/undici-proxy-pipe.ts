/**
 * The minimal undici proxy (undici-proxy.ts) with one difference: the answer is relayed with
 * `Readable#pipe` instead of `stream/promises`' `pipeline`. With undici's body, `pipeline`'s
 * end-of-stream check makes an `ERR_STREAM_PREMATURE_CLOSE` error, stack trace and all, on every
 * call, then ignores it (the body closes before it ends); `pipe` makes none. bench/proxy-relay.ts
 * measures what that costs the baseline.
 */
import { createServer } from 'node:http';
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
    .then((upstreamResponse) => {
      response.writeHead(upstreamResponse.statusCode, forwardable(upstreamResponse.headers));
      // `pipe` does not pass a source's error on: a broken upstream body ends the response.
      upstreamResponse.body.once('error', (error) => response.destroy(error));
      upstreamResponse.body.pipe(response);
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
