/**
 * CallAbort, the per-call signal (src/abort.ts): listeners run once, in order, at the first
 * abort; a late or removed one never runs; a throwing one neither stops the others nor is lost;
 * and undici, which takes it in place of an AbortSignal, aborts a request with it.
 */
import assert from 'node:assert/strict';
import { createServer, type ServerResponse } from 'node:http';
import { test } from 'node:test';
import { Agent, request } from 'undici';
import { CallAbort, type CallSignal } from '../src/abort.ts';
import { listenOnLoopback } from './helpers/loopback.ts';

test('listeners run once, in order, with the first reason; late and removed ones never run', () => {
  const call = new CallAbort();
  const ran: string[] = [];
  const removed = () => ran.push('removed');
  call.addEventListener('abort', () => ran.push(`first ${String(call.reason)}`));
  call.addEventListener('abort', removed);
  call.addEventListener('abort', () => ran.push('second'), { once: true });
  call.removeEventListener('abort', removed);
  assert.equal(call.aborted, false);
  assert.equal(call.reason, undefined);
  call.abort('gone');
  call.abort('again');
  call.addEventListener('abort', () => ran.push('late'));
  assert.equal(call.aborted, true);
  assert.equal(call.reason, 'gone');
  assert.deepEqual(ran, ['first gone', 'second']);
});

test('a listener that throws does not stop the others, and its error is raised, not lost', (t) => {
  const deferred: Array<() => void> = [];
  t.mock.method(process, 'nextTick', (callback: () => void) => deferred.push(callback));
  const call = new CallAbort();
  const ran: string[] = [];
  call.addEventListener('abort', () => {
    throw new Error('listener failed');
  });
  call.addEventListener('abort', () => ran.push('after'));
  call.abort('x');
  t.mock.restoreAll();
  assert.deepEqual(ran, ['after']);
  assert.equal(deferred.length, 1);
  assert.throws(() => deferred[0]?.(), /listener failed/);
});

test('an AbortSignal is a CallSignal, so callers may pass their own', () => {
  const signal: CallSignal = AbortSignal.abort('no');
  assert.equal(signal.aborted, true);
  assert.equal(signal.reason, 'no');
});

test('undici aborts a request whose CallAbort is aborted, before and after the headers', async () => {
  const open = new Set<ServerResponse>();
  const server = createServer((_request, response) => {
    open.add(response);
    if (_request.url === '/headers') {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.write('data: 1\n\n');
    }
    // /silent: never answers.
  });
  const origin = await listenOnLoopback(server);
  const agent = new Agent();
  try {
    const silent = new CallAbort();
    const pending = request(`${origin}/silent`, { dispatcher: agent, signal: silent as unknown as AbortSignal });
    setTimeout(() => silent.abort(new Error('client left')), 20);
    await assert.rejects(pending, /client left/);

    const streaming = new CallAbort();
    const response = await request(`${origin}/headers`, { dispatcher: agent, signal: streaming as unknown as AbortSignal });
    const failed = new Promise<unknown>((resolve) => response.body.once('error', resolve));
    response.body.resume();
    streaming.abort(new Error('client left mid-stream'));
    assert.match(String(await failed), /client left mid-stream/);
  } finally {
    for (const response of open) response.destroy();
    await agent.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
