/**
 * The floor of a gateway that reads what it forwards: Fastify parses the request's JSON, an
 * undici Pool sends it re-serialized to `UPSTREAM` with keep-alive, and a JSON answer is read
 * whole and parsed (where a gateway finds the usage) before it is sent on with the upstream's
 * headers; an SSE answer is relayed chunk by chunk as it arrives. No auth, limits, routing or
 * ledger: anything Seed does beyond this is its features' cost. The minimal undici proxy pipes
 * both bodies as streams instead, which costs more per call than buffering a small body
 * (docs/benchmark-log.md, 2026-12-04 (06:49–), item 2).
 */
import Fastify from 'fastify';
import { Pool } from 'undici';
import { forwardable } from './forward-headers.ts';
import { announceReady, exitOnSignals } from './ready.ts';

const upstream = process.env['UPSTREAM'];
if (!upstream) throw new Error('UPSTREAM is required');

const pool = new Pool(upstream, { connections: 256, keepAliveTimeout: 30_000 });
/** The answer is sent again whole by Fastify, which sets its own length. */
const RESENT = new Set(['content-length']);

const app = Fastify({ logger: false, keepAliveTimeout: 30_000 });

app.post('/v1/chat/completions', async (request, reply) => {
  const answer = await pool.request({
    path: request.url,
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: request.headers.authorization ?? '' },
    body: JSON.stringify(request.body),
  });
  const headers = forwardable(answer.headers, RESENT);
  if (String(answer.headers['content-type']).startsWith('text/event-stream')) {
    reply.hijack();
    reply.raw.writeHead(answer.statusCode, headers);
    for await (const chunk of answer.body) reply.raw.write(chunk);
    reply.raw.end();
    return reply;
  }
  const text = await answer.body.text();
  // What a gateway does with every answer it accounts for: parse it.
  JSON.parse(text);
  return reply.status(answer.statusCode).headers(headers).send(text);
});

const url = await app.listen({ port: 0, host: '127.0.0.1' });
announceReady(url);
exitOnSignals(async () => {
  await app.close();
  await pool.close();
});
