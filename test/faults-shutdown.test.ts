/**
 * Shutting down under load, as a rolling deploy does it: `seed serve` gets SIGTERM while calls
 * are in flight. The calls finish (or, past `server.shutdownTimeoutMs`, end with `shutting_down`,
 * which their clients are told), every one is a ledger row, no new connection is taken, and the
 * process exits as soon as they are done: not after the keep-alive timeout, and not killed by its
 * supervisor with calls and records lost.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Agent } from 'undici';
import { callChat, type Observed } from './helpers/fuzz-calls.ts';
import { startSimulator } from '../src/simulator/index.ts';
import { startStack } from './helpers/stack.ts';
import { POSTGRES_URL, testBackends } from './helpers/backends.ts';
import { startTcpRelay } from './helpers/tcp-relay.ts';
import pg from 'pg';

const BIN = new URL('../bin/seed.mjs', import.meta.url).pathname;
const postgres = (await testBackends()).find((backend) => backend.name === 'postgres');

let simulator: Awaited<ReturnType<typeof startSimulator>>;
let directory: string;

before(async () => {
  simulator = await startSimulator({ port: 0 });
  directory = await mkdtemp(join(tmpdir(), 'seed-shutdown-'));
});
/** Every child started, so that a failed test leaves none running. */
const children: ChildProcess[] = [];
after(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await simulator.close();
  await rm(directory, { recursive: true, force: true });
});

interface Served {
  child: ChildProcess;
  url: string;
  database: string;
  exited: Promise<{ code: number | null; at: number }>;
  output: () => string;
}

/**
 * `seed serve` in a child process. Route `slow`'s calls are paced to last ~1.5 s (30 tokens at 20
 * a second, or `slowTokens`); route `fast`'s are answered at once. `crash` preloads
 * helpers/crash-on-signal.mjs: SIGUSR2 then throws (or rejects) outside any request.
 */
async function serve(
  name: string,
  shutdownTimeoutMs: number,
  options: { ledger?: string; slowTokens?: number; crash?: 'exception' | 'rejection'; storeUrl?: string } = {},
): Promise<Served> {
  const database = join(directory, `${name}.db`);
  const config = join(directory, `${name}.yaml`);
  await writeFile(
    config,
    `
server: { shutdownTimeoutMs: ${shutdownTimeoutMs} }
store: { url: "${options.storeUrl ?? `sqlite:${database}`}" }
ledger: { spillDirectory: "${join(directory, `${name}-spill`)}"${options.ledger ? `, ${options.ledger}` : ''} }
deployments:
  slow:
    provider: openai
    baseUrl: ${simulator.url}/v1
    model: slow
    apiKey: sk-test
    headers: { x-sim-fault: "slow-stream:20", x-sim-completion-tokens: "${options.slowTokens ?? 30}" }
  fast: { provider: openai, baseUrl: ${simulator.url}/v1, model: fast, apiKey: sk-test }
routes:
  slow: { deployments: [{ deployment: slow }] }
  fast: { deployments: [{ deployment: fast }] }
`,
  );
  const preload = options.crash ? ['--import', new URL('./helpers/crash-on-signal.mjs', import.meta.url).pathname] : [];
  const child = spawn(process.execPath, [...preload, BIN, 'serve', '--config', config, '--port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...(options.crash ? { SEED_TEST_CRASH: options.crash } : {}) },
  });
  children.push(child);
  let output = '';
  child.stdout?.on('data', (data) => (output += String(data)));
  child.stderr?.on('data', (data) => (output += String(data)));
  const exited = new Promise<{ code: number | null; at: number }>((resolve) => child.once('exit', (code) => resolve({ code, at: Date.now() })));
  const deadline = Date.now() + 60_000;
  let url: string | undefined;
  while (url === undefined) {
    url = /gateway listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1];
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`seed serve did not start:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { child, url, database, exited, output: () => output };
}

function rows(database: string): Array<{ id: string; status: string; error_code: string | null; stream: number }> {
  const opened = new BetterSqlite3(database, { readonly: true });
  try {
    return opened.prepare('select id, status, error_code, stream from calls').all() as Array<{ id: string; status: string; error_code: string | null; stream: number }>;
  } finally {
    opened.close();
  }
}

/** Whether a new TCP connection to `url` is refused. */
function refused(url: string): Promise<boolean> {
  const { port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

/**
 * Ten streamed and ten buffered calls, then SIGTERM once they are all under way. The client keeps
 * its connections open until the process has exited, as SDKs and load balancers do: a client that
 * closes them lets any server exit early.
 */
async function callsThenSignal(served: Served, signal: NodeJS.Signals = 'SIGTERM'): Promise<{ observed: Observed[]; signalledAt: number; refusedAfter: boolean }> {
  const dispatcher = new Agent({ connections: 32, keepAliveTimeout: 120_000, keepAliveMaxTimeout: 120_000 });
  try {
    const calls = Array.from({ length: 20 }, (_, index) =>
      callChat({ baseUrl: served.url, dispatcher, model: 'slow', stream: index % 2 === 0, timeoutMs: 30_000 }),
    );
    // Every call reached the upstream: all of them are in flight when the signal comes.
    const deadline = Date.now() + 10_000;
    while (simulator.stats().inFlight < 20) {
      if (Date.now() > deadline) throw new Error(`only ${simulator.stats().inFlight} calls reached the upstream`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const signalledAt = Date.now();
    served.child.kill(signal);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const refusedAfter = await refused(served.url);
    const observed = await Promise.all(calls);
    await served.exited;
    return { observed, signalledAt, refusedAfter };
  } finally {
    await dispatcher.close();
  }
}

test('SIGTERM with calls in flight: every call finishes and is a ledger row, no new connection is taken, and the process exits once they are done', async () => {
  const served = await serve('finish', 25_000);
  const { observed, signalledAt, refusedAfter } = await callsThenSignal(served);
  const exited = await served.exited;
  assert.equal(exited.code, 0, served.output());
  for (const call of observed) {
    assert.equal(call.status, 200, call.body.slice(-300));
    assert.equal(call.errorCode, null, call.body.slice(-300));
  }
  assert.ok(refusedAfter, 'a new connection after SIGTERM is refused');
  // The calls had ~1.5 s left; before the drain, the exit waited 65 s for the keep-alive timeout.
  const exitMs = exited.at - signalledAt;
  assert.ok(exitMs < 8_000, `exited ${exitMs} ms after SIGTERM`);
  const recorded = rows(served.database);
  assert.equal(recorded.length, 20, 'a ledger row for every call');
  for (const call of observed) assert.equal(recorded.find((row) => row.id === call.requestId)?.status, 'ok', call.requestId);
  assert.match(served.output(), /waiting up to 25000 ms for 20 call\(s\) in flight/);
  assert.match(served.output(), /every call in flight finished/);
});

test('a drain that runs out of time ends the calls left with shutting_down, tells each client, and records each', async () => {
  const served = await serve('cut', 300);
  const { observed, signalledAt } = await callsThenSignal(served);
  const exited = await served.exited;
  assert.equal(exited.code, 0, served.output());
  for (const call of observed) {
    assert.equal(call.errorCode, 'shutting_down', call.body.slice(-300));
    if (call.body.startsWith('data: ')) {
      // A stream had begun: it ends with the error event, and never with [DONE].
      assert.equal(call.status, 200);
      assert.ok(!call.body.includes('[DONE]'));
    } else assert.equal(call.status, 503, call.body);
  }
  assert.ok(observed.some((call) => call.status === 200) && observed.some((call) => call.status === 503), 'both kinds were cut');
  assert.ok(exited.at - signalledAt < 6_000, `exited ${exited.at - signalledAt} ms after SIGTERM`);
  const recorded = rows(served.database);
  assert.equal(recorded.length, 20, 'a ledger row for every call');
  for (const row of recorded) {
    assert.equal(row.status, 'error', row.id);
    assert.equal(row.error_code, 'shutting_down', row.id);
  }
  assert.match(served.output(), /20 call\(s\) still running after 300 ms were ended with shutting_down/);
});

for (const crash of ['exception', 'rejection'] as const) {
  const what = crash === 'exception' ? 'uncaught exception' : 'unhandled promise rejection';
  test(`an ${what} with calls in flight is logged with its stack, then the calls finish and are recorded, and the process exits 1`, async () => {
    // Node's default exits at once: every call in flight cut, none of them recorded.
    const served = await serve(`crash-${crash}`, 25_000, { crash });
    const { observed, signalledAt, refusedAfter } = await callsThenSignal(served, 'SIGUSR2');
    const exited = await served.exited;
    assert.equal(exited.code, 1, served.output());
    for (const call of observed) {
      assert.equal(call.status, 200, call.body.slice(-300));
      assert.equal(call.errorCode, null, call.body.slice(-300));
    }
    assert.ok(refusedAfter, 'a new connection after the fault is refused');
    assert.ok(exited.at - signalledAt < 8_000, `exited ${exited.at - signalledAt} ms after the fault`);
    const recorded = rows(served.database);
    assert.equal(recorded.length, 20, 'a ledger row for every call');
    for (const call of observed) assert.equal(recorded.find((row) => row.id === call.requestId)?.status, 'ok', call.requestId);
    assert.match(served.output(), new RegExp(`seed error ${what} Error: injected ${crash}\\n\\s+at `));
    assert.match(served.output(), new RegExp(`fatal ${crash === 'exception' ? 'uncaught exception' : 'unhandled rejection'}: shutting down`));
  });
}

/**
 * Five calls answered and held in the ledger's queue (it writes only at the close), and one long
 * stream in flight; then SIGTERM, and once the drain is waiting for the stream, `more`.
 */
async function heldThenSignals(name: string, more: (served: Served) => Promise<void>) {
  const served = await serve(name, 25_000, { ledger: 'flushIntervalMs: 600000, batchSize: 10000', slowTokens: 400 });
  const dispatcher = new Agent({ connections: 8 });
  try {
    const answered = await Promise.all(Array.from({ length: 5 }, () => callChat({ baseUrl: served.url, dispatcher, model: 'fast', stream: false })));
    for (const call of answered) assert.equal(call.status, 200, call.body);
    const slow = callChat({ baseUrl: served.url, dispatcher, model: 'slow', stream: true, timeoutMs: 60_000 }).catch((error: unknown) => error as Error);
    while (simulator.stats().inFlight < 1) await new Promise((resolve) => setTimeout(resolve, 10));
    const signalledAt = Date.now();
    served.child.kill('SIGTERM');
    await untilLogged(served, /waiting up to 25000 ms for 1 call\(s\) in flight/);
    await more(served);
    const exited = await served.exited;
    return { served, answered, slow: await slow, exited, exitMs: exited.at - signalledAt };
  } finally {
    await dispatcher.close();
  }
}

async function untilLogged(served: Served, pattern: RegExp): Promise<void> {
  while (!pattern.test(served.output())) {
    if (served.child.exitCode !== null) throw new Error(served.output());
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

test('a second SIGTERM while draining ends the calls in flight now: their clients are told, every call is recorded, and the process exits 1', async () => {
  const { served, answered, slow, exited, exitMs } = await heldThenSignals('twice', async (served) => {
    served.child.kill('SIGTERM');
  });
  assert.equal(exited.code, 1, served.output());
  // The stream had 20 s to go.
  assert.ok(exitMs < 5_000, `exited ${exitMs} ms after the first SIGTERM`);
  assert.ok(!(slow instanceof Error), `the stream in flight ended with an error event, not a broken connection: ${String(slow)}`);
  assert.equal(slow.errorCode, 'shutting_down', slow.body.slice(-300));
  assert.match(slow.body, /told to stop at once/);
  const stored = rows(served.database);
  assert.deepEqual(stored.map((row) => row.id).sort(), [...answered.map((call) => call.requestId), slow.requestId].sort());
  assert.equal(stored.find((row) => row.id === slow.requestId)?.error_code, 'shutting_down');
  assert.match(served.output(), /SIGTERM while shutting down: ending the calls in flight now/);
  assert.match(served.output(), /1 call\(s\) still running when told to stop at once, after \d+ ms were ended with shutting_down/);
});

test('a third SIGTERM, while the ledger cannot write, exits at once; the calls not yet stored go to the spill directory, and the next start stores them', async () => {
  let holder: BetterSqlite3.Database | undefined;
  try {
    const { served, answered, slow, exited } = await heldThenSignals('thrice', async (served) => {
      // Another process holds SQLite's write lock: the close's ledger write waits for it.
      holder = new BetterSqlite3(served.database);
      holder.exec('BEGIN EXCLUSIVE');
      served.child.kill('SIGTERM');
      await untilLogged(served, /were ended with shutting_down/);
      await new Promise((resolve) => setTimeout(resolve, 200));
      served.child.kill('SIGTERM');
    });
    assert.equal(exited.code, 1, served.output());
    holder?.exec('ROLLBACK');
    assert.ok(!(slow instanceof Error), String(slow));
    assert.equal(rows(served.database).length, 0, 'nothing was stored before the exit');

    const again = await serve('thrice', 25_000);
    const deadline = Date.now() + 10_000;
    while (rows(again.database).length < 6 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    const stored = rows(again.database);
    assert.deepEqual(stored.map((row) => row.id).sort(), [...answered.map((call) => call.requestId), slow.requestId].sort());
    assert.equal(stored.find((row) => row.id === slow.requestId)?.error_code, 'shutting_down');
    assert.match(
      served.output(),
      /SIGTERM while shutting down: exiting now; 6 ledger record\(s\) not yet stored were written to \S+thrice-spill \(replayed at the next start\)\n/,
    );
    again.child.kill('SIGTERM');
    assert.equal((await again.exited).code, 0, again.output());
  } finally {
    holder?.close();
  }
});

for (const journal of [true, false]) {
  test(`SIGKILL with answered calls still in the ledger's memory: ${journal ? 'the journal keeps every one, and the next start stores them' : 'without the journal they are lost'}`, async () => {
    const name = journal ? 'killed' : 'killed-unjournaled';
    // Nothing is written to the store before the kill: every answered call is only in memory.
    const ledger = `flushIntervalMs: 600000, batchSize: 10000, journal: ${journal}`;
    const served = await serve(name, 25_000, { ledger, slowTokens: 400 });
    const dispatcher = new Agent({ connections: 8 });
    let answered: Observed[];
    try {
      answered = await Promise.all(
        Array.from({ length: 6 }, (_, index) => callChat({ baseUrl: served.url, dispatcher, model: 'fast', stream: index % 2 === 0 })),
      );
      for (const call of answered) assert.equal(call.status, 200, call.body);
      // A stream in flight at the kill is cut: its client sees a broken stream, and it is not a call the gateway answered.
      const cut = callChat({ baseUrl: served.url, dispatcher, model: 'slow', stream: true, timeoutMs: 60_000 }).catch((error: unknown) => error as Error);
      while (simulator.stats().inFlight < 1) await new Promise((resolve) => setTimeout(resolve, 10));
      served.child.kill('SIGKILL');
      await served.exited;
      await cut;
    } finally {
      await dispatcher.close();
    }
    assert.equal(rows(served.database).length, 0, 'nothing was stored before the kill');

    const again = await serve(name, 25_000, { ledger: journal ? undefined : 'journal: false' });
    const expected = journal ? answered.map((call) => call.requestId).sort() : [];
    const deadline = Date.now() + 10_000;
    while (rows(again.database).length < expected.length && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    again.child.kill('SIGTERM');
    assert.equal((await again.exited).code, 0, again.output());
    assert.deepEqual(rows(again.database).map((row) => row.id).sort(), expected);
    if (journal) assert.match(again.output(), /ledger: 1 journal segment\(s\) left by a process that did not shut down \(killed\?\) are replayed/);
    else assert.doesNotMatch(again.output(), /journal segment/);
  });
}

test(
  'a PostgreSQL store that stops answering at shutdown (packets dropped, no reset): the watchdog exits after the drain and 10 s, spilling the calls not yet stored, and the next start stores them',
  { skip: postgres?.skip ?? 'no PostgreSQL backend', timeout: 60_000 },
  async () => {
    const database = await postgres!.createDatabase();
    const schema = database.storeOptions.schema!;
    const admin = new pg.Client({ connectionString: POSTGRES_URL });
    await admin.connect();
    await admin.query(`create schema ${schema}`);
    const target = new URL(POSTGRES_URL);
    const relay = await startTcpRelay({ host: target.hostname, port: Number(target.port || 5432) });
    target.port = String(relay.port);
    target.searchParams.set('options', `-c search_path=${schema}`);
    const storeUrl = target.toString();
    const dispatcher = new Agent({ connections: 8 });
    try {
      // A 0 ms drain: the watchdog gives the close 10 s, before the ledger's write would time out.
      const served = await serve('frozen', 0, { storeUrl, ledger: 'flushIntervalMs: 600000, batchSize: 10000, writeTimeoutMs: 60000' });
      const answered = await Promise.all(Array.from({ length: 5 }, () => callChat({ baseUrl: served.url, dispatcher, model: 'fast', stream: false })));
      for (const call of answered) assert.equal(call.status, 200, call.body);
      relay.freeze();
      const signalledAt = Date.now();
      served.child.kill('SIGTERM');
      const exited = await served.exited;
      const exitMs = exited.at - signalledAt;
      assert.equal(exited.code, 1, served.output());
      assert.ok(exitMs >= 10_000 && exitMs < 20_000, `exited ${exitMs} ms after SIGTERM`);
      // The calls reach the spill directory one of two ways: the ledger's write hangs on a pooled
      // connection and the watchdog spills its batch; or the pool's one warm connection is held
      // by a poll for key changes, the write's new connection times out, and the ledger spills
      // the batch itself before the watchdog fires.
      const spilledByWatchdog = /shutdown still running after 10000 ms: exiting now; (\d+) ledger record\(s\) not yet stored were written to \S+frozen-spill/.exec(served.output());
      assert.ok(spilledByWatchdog, served.output());
      if (spilledByWatchdog[1] !== '5') assert.match(served.output(), /ledger write failed/);

      relay.restore();
      const again = await serve('frozen', 0, { storeUrl });
      const stored = async () => (await admin.query<{ id: string }>(`select id from ${schema}.calls`)).rows.map((row) => row.id);
      const deadline = Date.now() + 15_000;
      while ((await stored()).length < 5 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
      assert.deepEqual((await stored()).sort(), answered.map((call) => call.requestId).sort());
      again.child.kill('SIGTERM');
      assert.equal((await again.exited).code, 0, again.output());
    } finally {
      await dispatcher.close();
      await relay.close();
      await admin.end();
      await database.dispose();
    }
  },
);

test('while draining, a request on a connection the client already had is served with Connection: close, and /healthz says draining', async () => {
  const stack = await startStack({
    config: (url) => `
deployments:
  slow: { provider: openai, baseUrl: ${url}/v1, model: slow, apiKey: sk-test, headers: { x-sim-fault: "slow-stream:20", x-sim-completion-tokens: "10" } }
routes:
  slow: { deployments: [{ deployment: slow }] }
`,
  });
  const { port } = new URL(stack.seed.url);
  const socket = connect(Number(port), '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  let received = '';
  socket.on('data', (data) => (received += String(data)));
  const ended = new Promise((resolve) => socket.once('close', resolve));
  const body = JSON.stringify({ model: 'slow', messages: [{ role: 'user', content: 'hi' }] });
  socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: seed\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  while (stack.simulator.stats().inFlight === 0) await new Promise((resolve) => setTimeout(resolve, 10));
  // The drain begins while the call (~0.5 s) is in flight; then a second request comes on the
  // same connection, pipelined behind it.
  const closed = stack.close();
  await new Promise((resolve) => setTimeout(resolve, 50));
  socket.write('GET /healthz HTTP/1.1\r\nHost: seed\r\n\r\n');
  await ended;
  await closed;
  const responses = received.split(/(?=HTTP\/1\.1 )/);
  assert.equal(responses.length, 2, received);
  assert.match(responses[0] as string, /^HTTP\/1\.1 200/);
  assert.match(responses[1] as string, /^HTTP\/1\.1 503/);
  assert.match(responses[1] as string, /connection: close/i);
  assert.match(responses[1] as string, /\{"status":"draining"\}/);
});

test('a client still dribbling its request headers does not hold the shutdown: its connection closes a moment after the calls are done', async () => {
  const stack = await startStack();
  const { port } = new URL(stack.seed.url);
  const socket = connect(Number(port), '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  const ended = new Promise((resolve) => socket.once('close', resolve));
  socket.on('error', () => undefined);
  // Headers begun, never finished: the server's headers timeout (30 s by default) is far off.
  socket.write('POST /v1/chat/completions HTTP/1.1\r\nHost: seed\r\nContent-Type: application/json\r\n');
  await new Promise((resolve) => setTimeout(resolve, 100));
  const started = Date.now();
  await stack.close();
  await ended;
  const closedMs = Date.now() - started;
  // No call in flight: the drain does not wait its 25 s for this connection, only a moment.
  assert.ok(closedMs < 5_000, `closed after ${closedMs} ms`);
});
