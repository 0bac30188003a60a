/**
 * The restart scenario (bench/scenarios/restart.ts) counts a call as lost when its client got an
 * answer that is not in the ledger, so how it classifies what a client saw decides its numbers:
 * a whole stream, an error (a status, or an error event as the last frame), or a stream cut with
 * no answer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { streamedCall } from '../bench/scenarios/restart.ts';
import { restartSection } from '../bench/lib/report.ts';

const answers: Record<string, (response: ServerResponse) => void> = {
  whole(response) {
    response.writeHead(200, { 'content-type': 'text/event-stream', 'x-request-id': 'req_whole' });
    response.end('data: {"choices":[]}\n\ndata: [DONE]\n\n');
  },
  'error event'(response) {
    response.writeHead(200, { 'content-type': 'text/event-stream', 'x-request-id': 'req_event' });
    response.end('data: {"choices":[]}\n\ndata: {"error":{"code":"shutting_down","message":"bye"}}\n\n');
  },
  status(response) {
    response.writeHead(503, { 'content-type': 'application/json', 'x-request-id': 'req_status' });
    response.end('{"error":{"code":"shutting_down","message":"bye"}}');
  },
  cut(response) {
    response.writeHead(200, { 'content-type': 'text/event-stream', 'x-request-id': 'req_cut' });
    response.write('data: {"choices":[]}\n\n', () => response.socket?.destroy());
  },
  'ended early'(response) {
    response.writeHead(200, { 'content-type': 'text/event-stream', 'x-request-id': 'req_early' });
    response.end('data: {"choices":[]}\n\n');
  },
};

test('a streamed call is whole, an error with its code (by status or by last event), or broken, and keeps its request id', async () => {
  let next = '';
  const server = createServer((request, response) => {
    request.resume();
    request.on('end', () => answers[next]!(response));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const pool = new Pool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { connections: 1 });
  try {
    const seen: Record<string, unknown> = {};
    for (const name of Object.keys(answers)) {
      next = name;
      seen[name] = await streamedCall(pool);
    }
    assert.deepEqual(seen, {
      whole: { requestId: 'req_whole', kind: 'ok' },
      'error event': { requestId: 'req_event', kind: 'error', code: 'shutting_down' },
      status: { requestId: 'req_status', kind: 'error', code: 'shutting_down' },
      cut: { requestId: 'req_cut', kind: 'broken' },
      'ended early': { requestId: 'req_early', kind: 'broken' },
    });
  } finally {
    await pool.destroy();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

test('the restart section shows each variant: calls cut and how, exit, and the lost ones in bold', () => {
  const text = restartSection({
    ratePerSecond: 100,
    callsPerVariant: 1000,
    callSeconds: 1,
    readings: [
      {
        variant: 'cut',
        signal: 'SIGTERM',
        drainMs: 300,
        callsToA: 500,
        inFlightAtSignal: 99,
        ok: 430,
        errors: { shutting_down: 70 },
        broken: 0,
        exitMs: 507.4,
        exitCode: 0,
        spilledAtExit: null,
        answeredByA: 500,
        recordedOfAnswered: 500,
        lost: 0,
        brokenRecorded: 0,
        callsToB: 500,
        okB: 500,
        lostB: 0,
      },
    ],
  });
  assert.match(text, /\| cut \| SIGTERM \| 0\.3 s \| 99 \| 430 \| 70 `shutting_down` \| 0 \(0\) \| 507 ms \| 0 \| — \| \*\*0\*\* \/ 500 \| 500 \/ 500 \| \*\*0\*\* \|/);
  assert.match(text, /1000 streamed calls at 100\/s/);
});
