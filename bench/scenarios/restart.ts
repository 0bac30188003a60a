/**
 * Restarting under load, as a rolling deploy does it. Two `seed serve` processes (A and B, each
 * with its own SQLite ledger and spill directory) run as `npm start` runs Seed, in front of one
 * simulator that paces its tokens so each streamed call lasts about `callSeconds`. An open-loop
 * client sends streamed calls at `ratePerSecond` to A; halfway through it signals A and sends
 * every later call to B, as a load balancer does once A leaves its endpoints. Each variant ends A
 * its own way:
 * - `drain`: SIGTERM with the default drain (`server.shutdownTimeoutMs` 25 s): calls finish.
 * - `cut`: SIGTERM with a 300 ms drain: the calls still running end with `shutting_down`.
 * - `twice`: SIGTERM, then SIGTERM again 300 ms later: A ends the calls still running at once, as
 *   at the drain's deadline, writes its ledger and exits 1.
 * - `kill`: SIGKILL (a supervisor's kill after its grace period, the OOM killer): the baseline of
 *   what a process that cannot shut down loses; the ledger's journal keeps the calls it answered.
 * - `kill-nojournal`: the same with `ledger.journal: false`: the calls of the ledger's last
 *   batch interval are lost with the process.
 * Then A is started once more on the same files (it replays its spill directory, as the next
 * start does) and stopped, and every call that reached A is looked up in A's ledger by its
 * request id: `lost` counts the calls a client got an answer for (a whole stream, or an error)
 * that are not rows. B's calls are checked the same way.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { Pool } from 'undici';
import { endWithBenchmark, stopper } from '../lib/children.ts';
import { serverNodeFlagsOf, startSimulator } from '../lib/targets.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');

export type RestartVariant = 'drain' | 'cut' | 'twice' | 'kill' | 'kill-nojournal';
export const RESTART_VARIANTS: readonly RestartVariant[] = ['drain', 'cut', 'twice', 'kill', 'kill-nojournal'];

export interface RestartReading {
  variant: RestartVariant;
  /** What A was sent, and `server.shutdownTimeoutMs`. */
  signal: string;
  drainMs: number;
  /** Calls sent to A, and those of them not finished when A was signalled. */
  callsToA: number;
  inFlightAtSignal: number;
  /** A's calls by what the client saw: a whole stream; an error (status or last event), by code; a broken stream or connection. */
  ok: number;
  errors: Record<string, number>;
  broken: number;
  /** From the signal until A's process had exited; its exit code (null when killed). */
  exitMs: number;
  exitCode: number | null;
  /** What A's log said it spilled when exiting at once. */
  spilledAtExit: number | null;
  /** A's calls answered (whole stream or error) and how many of those are ledger rows after A's next start. */
  answeredByA: number;
  recordedOfAnswered: number;
  lost: number;
  /** Broken calls that are rows all the same (A recorded them before it went). */
  brokenRecorded: number;
  callsToB: number;
  okB: number;
  lostB: number;
  error?: string;
}

export interface RestartResult {
  ratePerSecond: number;
  callsPerVariant: number;
  callSeconds: number;
  readings: RestartReading[];
}

interface SeedProcess {
  url: string;
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; at: number }>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
  stop: (graceMs?: number) => Promise<void>;
}

/** `seed serve` as `npm start` runs it, on an ephemeral port; resolves once it listens. */
async function serve(configFile: string): Promise<SeedProcess> {
  const child = endWithBenchmark(
    spawn(process.execPath, [...serverNodeFlagsOf(), 'bin/seed.mjs', 'serve', '--config', configFile, '--port', '0'], {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'pipe'],
    }),
  );
  let output = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => (output += chunk));
  const exited = new Promise<{ code: number | null; at: number }>((resolveExit) =>
    child.once('exit', (code) => resolveExit({ code, at: performance.now() })),
  );
  const deadline = Date.now() + 60_000;
  for (;;) {
    const url = /gateway listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1];
    if (url) return { url, child, output: () => output, exited, stop: stopper(child) };
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`seed serve did not start:\n${output.slice(-2_000)}`);
    }
    await sleep(50);
  }
}

function sleep(milliseconds: number): Promise<void> {
  return new Promise((resolveSleep) => setTimeout(resolveSleep, milliseconds));
}

function config(input: { simulatorUrl: string; directory: string; drainMs: number; journal: boolean; tokens: number; tokensPerSecond: number }): string {
  return `
server: { shutdownTimeoutMs: ${input.drainMs} }
store: { url: "sqlite:${join(input.directory, 'ledger.db')}" }
ledger: { spillDirectory: "${join(input.directory, 'spill')}", journal: ${input.journal} }
limits: { store: memory }
deployments:
  paced:
    provider: openai
    baseUrl: ${input.simulatorUrl}/v1
    model: gpt-4o-mini
    apiKey: sk-bench-simulator
    headers: { x-sim-fault: "slow-stream:${input.tokensPerSecond}", x-sim-completion-tokens: "${input.tokens}" }
    limits: { rpm: 100000000, tpm: 100000000000 }
routes:
  gpt-4o-mini: { deployments: [{ deployment: paced }] }
`;
}

function ledgerIds(directory: string): Set<string> {
  const database = new Database(join(directory, 'ledger.db'), { readonly: true, fileMustExist: true });
  try {
    return new Set((database.prepare('SELECT id FROM calls').all() as Array<{ id: string }>).map((row) => row.id));
  } finally {
    database.close();
  }
}

export interface StreamedOutcome {
  requestId: string | undefined;
  kind: 'ok' | 'error' | 'broken';
  code?: string;
}

const BODY = JSON.stringify({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'Say something.' }] });

/** One streamed call, classified by what its client saw. */
export async function streamedCall(pool: Pool): Promise<StreamedOutcome> {
  let requestId: string | undefined;
  try {
    const response = await pool.request({
      method: 'POST',
      path: '/v1/chat/completions',
      headers: { 'content-type': 'application/json' },
      body: BODY,
      headersTimeout: 60_000,
      bodyTimeout: 60_000,
    });
    const header = response.headers['x-request-id'];
    requestId = Array.isArray(header) ? header[0] : header;
    const text = await response.body.text();
    if (response.statusCode !== 200) {
      const code = (JSON.parse(text) as { error?: { code?: string } }).error?.code ?? `status ${response.statusCode}`;
      return { requestId, kind: 'error', code };
    }
    const trimmed = text.trimEnd();
    if (trimmed.endsWith('data: [DONE]')) return { requestId, kind: 'ok' };
    const last = trimmed.split('\n\n').at(-1) ?? '';
    try {
      const code = (JSON.parse(last.replace(/^data: /, '')) as { error?: { code?: string } }).error?.code;
      if (code) return { requestId, kind: 'error', code };
    } catch {
      // Not an error event: the stream stopped mid-way.
    }
    return { requestId, kind: 'broken' };
  } catch {
    return { requestId, kind: 'broken' };
  }
}

async function runVariant(input: {
  variant: RestartVariant;
  simulatorUrl: string;
  workDirectory: string;
  ratePerSecond: number;
  calls: number;
  tokens: number;
  tokensPerSecond: number;
  log: (line: string) => void;
}): Promise<RestartReading> {
  const { variant } = input;
  const drainMs = variant === 'cut' ? 300 : 25_000;
  const signal = { drain: 'SIGTERM', cut: 'SIGTERM', twice: 'SIGTERM ×2 (300 ms apart)', kill: 'SIGKILL', 'kill-nojournal': 'SIGKILL' }[variant];
  const killed = variant === 'kill' || variant === 'kill-nojournal';
  const directories = { a: join(input.workDirectory, `restart-${variant}-a`), b: join(input.workDirectory, `restart-${variant}-b`) };
  const files = { a: join(directories.a, 'seed.yaml'), b: join(directories.b, 'seed.yaml') };
  for (const side of ['a', 'b'] as const) {
    mkdirSync(directories[side], { recursive: true });
    // A's next start keeps the journal off too: it replays what A left, whichever way it was run.
    writeFileSync(files[side], config({ ...input, directory: directories[side], drainMs, journal: !(side === 'a' && variant === 'kill-nojournal') }));
  }
  const reading: RestartReading = {
    variant,
    signal,
    drainMs,
    callsToA: 0,
    inFlightAtSignal: 0,
    ok: 0,
    errors: {},
    broken: 0,
    exitMs: Number.NaN,
    exitCode: null,
    spilledAtExit: null,
    answeredByA: 0,
    recordedOfAnswered: 0,
    lost: 0,
    brokenRecorded: 0,
    callsToB: 0,
    okB: 0,
    lostB: 0,
  };
  const a = await serve(files.a);
  const b = await serve(files.b).catch(async (error: unknown) => {
    await a.stop();
    throw error;
  });
  const pools = { a: new Pool(a.url, { connections: 1_024 }), b: new Pool(b.url, { connections: 1_024 }) };
  try {
    const toA: Array<Promise<StreamedOutcome>> = [];
    const toB: Array<Promise<StreamedOutcome>> = [];
    let settledA = 0;
    let signalledAt = 0;
    const half = Math.floor(input.calls / 2);
    const startedAt = performance.now();
    for (let index = 0; index < input.calls; index += 1) {
      const due = startedAt + (index * 1_000) / input.ratePerSecond;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
      if (index === half) {
        reading.inFlightAtSignal = toA.length - settledA;
        signalledAt = performance.now();
        if (killed) a.child.kill('SIGKILL');
        else a.child.kill('SIGTERM');
        if (variant === 'twice') setTimeout(() => a.child.kill('SIGTERM'), 300);
      }
      if (index < half) {
        toA.push(
          streamedCall(pools.a).then((outcome) => {
            settledA += 1;
            return outcome;
          }),
        );
      } else toB.push(streamedCall(pools.b));
    }
    const outcomesA = await Promise.all(toA);
    const outcomesB = await Promise.all(toB);
    const exited = await Promise.race([a.exited, sleep(60_000).then(() => undefined)]);
    if (!exited) throw new Error(`A had not exited 60 s after ${signal}:\n${a.output().slice(-2_000)}`);
    reading.exitMs = exited.at - signalledAt;
    reading.exitCode = exited.code;
    const spilled = /exiting now; (\d+) ledger record\(s\)/.exec(a.output());
    reading.spilledAtExit = spilled ? Number(spilled[1]) : null;
    // A's next start replays its spill directory; the ledger is read once it has stopped again.
    await (await serve(files.a)).stop(40_000);
    await b.stop(40_000);
    const rowsA = ledgerIds(directories.a);
    const rowsB = ledgerIds(directories.b);
    reading.callsToA = outcomesA.length;
    for (const outcome of outcomesA) {
      const recorded = outcome.requestId !== undefined && rowsA.has(outcome.requestId);
      if (outcome.kind === 'broken') {
        reading.broken += 1;
        if (recorded) reading.brokenRecorded += 1;
        continue;
      }
      if (outcome.kind === 'ok') reading.ok += 1;
      else reading.errors[outcome.code ?? 'unknown'] = (reading.errors[outcome.code ?? 'unknown'] ?? 0) + 1;
      reading.answeredByA += 1;
      if (recorded) reading.recordedOfAnswered += 1;
    }
    reading.lost = reading.answeredByA - reading.recordedOfAnswered;
    reading.callsToB = outcomesB.length;
    for (const outcome of outcomesB) {
      if (outcome.kind === 'ok') reading.okB += 1;
      if (outcome.kind !== 'broken' && !(outcome.requestId !== undefined && rowsB.has(outcome.requestId))) reading.lostB += 1;
    }
    const errors = Object.entries(reading.errors).map(([code, count]) => `${count} ${code}`).join(', ');
    input.log(
      `restart ${variant}: ${reading.inFlightAtSignal} in flight at ${signal}; A: ${reading.ok} ok, ${errors || 'no errors'}, ${reading.broken} broken; ` +
        `exit after ${reading.exitMs.toFixed(0)} ms (code ${reading.exitCode}); lost ${reading.lost} of ${reading.answeredByA} answered; B lost ${reading.lostB}`,
    );
  } catch (error) {
    reading.error = String(error).slice(0, 400);
    input.log(`restart ${variant}: ${reading.error}`);
    a.child.kill('SIGKILL');
    b.child.kill('SIGKILL');
  } finally {
    await pools.a.destroy();
    await pools.b.destroy();
  }
  return reading;
}

export async function runRestart(input: {
  ratePerSecond: number;
  calls: number;
  workDirectory: string;
  log: (line: string) => void;
}): Promise<RestartResult> {
  // 40 tokens at 40 a second: calls of about a second, as short chat answers stream.
  const tokens = 40;
  const tokensPerSecond = 40;
  const simulator = await startSimulator();
  try {
    const readings: RestartReading[] = [];
    for (const variant of RESTART_VARIANTS) {
      readings.push(await runVariant({ ...input, variant, simulatorUrl: simulator.url, tokens, tokensPerSecond }));
    }
    return { ratePerSecond: input.ratePerSecond, callsPerVariant: input.calls, callSeconds: tokens / tokensPerSecond, readings };
  } finally {
    await simulator.stop();
  }
}
