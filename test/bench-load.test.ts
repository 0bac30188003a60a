import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { constants as perfConstants, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { test } from 'node:test';
import { listenOnLoopback } from './helpers/loopback.ts';
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { pairedOpenLoop } from '../bench/lib/alternate.ts';
import { clientGcOf, closedLoop, collectClientGarbage, countedCalls, openLoop } from '../bench/lib/load.ts';
import { Pool } from 'undici';
import { benchNodeFlags } from '../bench/lib/targets.ts';

test('a closed loop bounded by a request count times its rate to the last response, not to autocannon’s next 1 s sample', async () => {
  // Every answer after 5 ms: 200 requests over 10 connections take ~0.1 s (~2 000 req/s); timed
  // to autocannon's once-a-second sample they read 200 req/s or less.
  let firstRequestAt = Number.NaN;
  let lastAnswerAt = Number.NaN;
  const server = createServer((request, response) => {
    if (Number.isNaN(firstRequestAt)) firstRequestAt = performance.now();
    request.resume();
    setTimeout(() => response.end('{}', () => (lastAnswerAt = performance.now())), 5);
  });
  const origin = await listenOnLoopback(server);
  try {
    const result = await closedLoop({
      request: { origin, path: '/', headers: { 'content-type': 'application/json' }, body: '{}' },
      connections: 10,
      amount: 200,
    });
    assert.equal(result.completed, 200);
    assert.equal(result.failures, 0);
    // Timed near the span the server itself saw from the first request to the last answer,
    // whatever the machine's speed: the client's own start (autocannon connecting) may add some,
    // not the second to autocannon's next sample. A ratio of rates (0.7 of the server's) failed
    // when a busy machine delayed the start by 80 ms of a 185 ms span; a fixed floor of 250 req/s
    // failed on a host so congested that the server saw ~212. Timed to the sample, a run of less
    // than 0.7 s reads at least 1 s, above this bound.
    const servedSeconds = (lastAnswerAt - firstRequestAt) / 1_000;
    const timedSeconds = result.completed / result.requestsPerSecond;
    assert.ok(
      timedSeconds < servedSeconds + 0.3,
      `200 requests at 10 × 5 ms timed as ${timedSeconds.toFixed(3)} s; the server answered them in ${servedSeconds.toFixed(3)} s`,
    );
    assert.ok(result.requestsPerSecond < 2_100, `faster than the server can answer: ${result.requestsPerSecond.toFixed(0)} req/s`);
  } finally {
    server.close();
  }
});

test("an open loop counts the load generator's own GC, and a paired loop charges it to the side whose slice it fell in", async () => {
  // A major GC forced inside the load generator's process (the servers here share it) while the
  // subject's second slice runs: its pause delays every request in flight, as the client's own did.
  setFlagsFromString('--expose-gc');
  const collect = runInNewContext('gc') as () => void;
  let subjectRequests = 0;
  const servers = ['subject', 'baseline'].map((name) =>
    createServer((request, response) => {
      request.resume();
      if (name === 'subject' && (subjectRequests += 1) === 60) collect();
      response.end('{}');
    }),
  );
  const origins: string[] = [];
  for (const server of servers) {
    origins.push(await listenOnLoopback(server));
  }
  try {
    const request = (origin: string) => ({ origin, path: '/', headers: { 'content-type': 'application/json' }, body: '{}' });
    const measured = await pairedOpenLoop({ subject: request(origins[0]!), baseline: request(origins[1]!), ratePerSecond: 200, sliceSeconds: 0.25, pairs: 2 });
    assert.equal(subjectRequests, 100);
    assert.ok(measured.clientGc.subject.majors >= 1, `the forced major GC was not counted: ${JSON.stringify(measured.clientGc)}`);
    assert.ok(measured.clientGc.subject.pauseMs > 0);
    assert.ok(measured.clientGc.subject.maxPauseMs <= measured.clientGc.subject.pauseMs);
  } finally {
    for (const server of servers) server.close();
  }
});

test('client GC sums: majors by kind, every pause summed, the longest kept', () => {
  const entry = (kind: number, duration: number) => ({ detail: { kind }, duration }) as unknown as PerformanceEntry;
  assert.deepEqual(clientGcOf([]), { majors: 0, pauseMs: 0, maxPauseMs: 0 });
  const gc = clientGcOf([entry(perfConstants.NODE_PERFORMANCE_GC_MINOR, 1.5), entry(perfConstants.NODE_PERFORMANCE_GC_MAJOR, 7), entry(perfConstants.NODE_PERFORMANCE_GC_MAJOR, 3)]);
  assert.deepEqual(gc, { majors: 2, pauseMs: 11.5, maxPauseMs: 7 });
});

test("a bench command started without the servers' Node flags runs again with them, its arguments kept", () => {
  const root = resolve(import.meta.dirname, '..');
  const output = execFileSync(process.execPath, ['bin/run-ts.mjs', 'test/fixtures/bench/print-flags.ts', '--one', 'two'], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, SEED_BENCH_CLIENT_FLAGS: '', SEED_BENCH_NODE_FLAGS: '' },
  });
  const printed = output.trim().split('\n');
  assert.equal(printed.length, 1, `printed once, by the re-run only: ${output}`);
  const { execArgv, args } = JSON.parse(printed[0]!) as { execArgv: string[]; args: string[] };
  assert.ok(benchNodeFlags().length > 0);
  for (const flag of benchNodeFlags()) assert.ok(execArgv.includes(flag), `${flag} missing from ${execArgv.join(' ')}`);
  assert.deepEqual(args, ['--one', 'two']);
  // SEED_BENCH_NODE_FLAGS=none: the servers run on Node's defaults, and so does the client, as started.
  const none = JSON.parse(
    execFileSync(process.execPath, ['bin/run-ts.mjs', 'test/fixtures/bench/print-flags.ts'], { cwd: root, encoding: 'utf8', env: { ...process.env, SEED_BENCH_CLIENT_FLAGS: '', SEED_BENCH_NODE_FLAGS: 'none' } }),
  ) as { execArgv: string[] };
  for (const flag of benchNodeFlags('npm-start')) assert.ok(!none.execArgv.includes(flag));
});

test('every open loop starts with a full GC of the load generator, which its own count leaves out', async () => {
  const entries: PerformanceEntry[] = [];
  const observer = new PerformanceObserver((list) => entries.push(...list.getEntries()));
  observer.observe({ entryTypes: ['gc'] });
  collectClientGarbage();
  await new Promise((resolveLater) => setTimeout(resolveLater, 50));
  entries.push(...observer.takeRecords());
  observer.disconnect();
  assert.ok(clientGcOf(entries).majors >= 1, 'collectClientGarbage ran no major GC');

  const server = createServer((request, response) => {
    request.resume();
    response.end('{}');
  });
  const origin = await listenOnLoopback(server);
  try {
    const result = await openLoop({ request: { origin, path: '/', headers: {}, body: '{}' }, ratePerSecond: 200, count: 20 });
    assert.equal(result.completed, 20);
    assert.equal(result.clientGc.majors, 0, 'the collection before the loop was counted as the loop’s');
  } finally {
    server.close();
  }
});

test('counted calls: exactly the count, at most the concurrency in flight, every body read; a non-200 fails the run and says so', async () => {
  let inFlight = 0;
  let most = 0;
  let served = 0;
  const server = createServer((request, response) => {
    request.resume();
    inFlight += 1;
    most = Math.max(most, inFlight);
    served += 1;
    const status = request.headers['x-fail'] === 'yes' && served === 3 ? 503 : 200;
    setTimeout(() => {
      inFlight -= 1;
      response.writeHead(status).end(`answer ${served}`);
    }, 2);
  });
  const origin = await listenOnLoopback(server);
  const pool = new Pool(origin, { connections: 4 });
  try {
    const bodies: string[] = [];
    const request = { origin, path: '/', headers: { 'content-type': 'application/json' }, body: '{}' };
    await countedCalls({ pool, request, count: 25, concurrency: 4, name: 'plain', onAnswer: (text) => bodies.push(text) });
    assert.equal(served, 25);
    assert.equal(bodies.length, 25);
    assert.ok(bodies.every((body) => body.startsWith('answer ')));
    assert.ok(most <= 4, `${most} in flight`);
    served = 0;
    await assert.rejects(
      countedCalls({ pool, request: { ...request, headers: { ...request.headers, 'x-fail': 'yes' } }, count: 10, concurrency: 1, name: 'failing', describe: () => 'its stderr' }),
      /failing answered 503: answer 3\nits stderr/,
    );
  } finally {
    await pool.close();
    server.close();
  }
});
