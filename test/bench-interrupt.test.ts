/**
 * A bench command that is killed ends what it started: its child processes (servers, perf,
 * strace) and its scratch directories. Before, a `kill` of the command left its servers running
 * and a system-wide `perf sched record` writing into /tmp.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';

const ROOT = resolve(import.meta.dirname, '..');
const FIXTURE = resolve(ROOT, 'test/fixtures/bench/interrupted.ts');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Starts the fixture, waits for its line, signals the process it started with `signal`, and returns what it reported and how it ended. */
async function interrupted(signal: NodeJS.Signals, fixtureArguments: string[]) {
  const command = spawn(process.execPath, [resolve(ROOT, 'bin/run-ts.mjs'), FIXTURE, ...fixtureArguments], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  command.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const ended = new Promise<number | null>((resolveEnd) => command.once('exit', (code) => resolveEnd(code)));
  const line = await new Promise<string>((resolveLine, rejectLine) => {
    createInterface({ input: command.stdout }).once('line', resolveLine);
    void ended.then((code) => rejectLine(new Error(`the fixture ended (${code}) before it started its child:\n${stderr}`)));
  });
  const started = JSON.parse(line) as { pid: number; child: number; directory: string };
  assert.ok(alive(started.child) && existsSync(started.directory), 'the child runs and the directory exists before the signal');
  // What a broken cleanup leaves is ended here, so a failing test fails instead of hanging on
  // the pipes a leftover process holds.
  leftovers.push(() => {
    for (const pid of [started.pid, started.child]) if (alive(pid)) process.kill(pid, 'SIGKILL');
    rmSync(started.directory, { recursive: true, force: true });
    command.stdout.destroy();
    command.stderr.destroy();
  });
  command.kill(signal);
  const code = await Promise.race([ended, new Promise<'hung'>((resolveHung) => setTimeout(resolveHung, 15_000, 'hung').unref())]);
  return { started, code, stderr };
}

const leftovers: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of leftovers.splice(0)) cleanup();
});

test('a bench command ended by SIGTERM ends its children and removes its scratch directory', async () => {
  const { started, code, stderr } = await interrupted('SIGTERM', []);
  assert.equal(code, 143, stderr);
  assert.equal(alive(started.child), false, 'the child outlived the command');
  assert.equal(existsSync(started.directory), false, 'the scratch directory is left');
  assert.match(stderr, /SIGTERM: ending 1 child process\(es\) and removing 1 scratch directory/);
});

test("a signal to the command alone reaches the re-run that lib/client-flags.ts starts, which ends what it started", async () => {
  const { started, code, stderr } = await interrupted('SIGTERM', ['--client-flags']);
  assert.notEqual(started.pid, undefined);
  assert.equal(code, 143, stderr);
  assert.equal(alive(started.pid), false, 'the re-run outlived the command');
  assert.equal(alive(started.child), false, "the re-run's child outlived it");
  assert.equal(existsSync(started.directory), false);
});

test('SIGINT (Ctrl-C) ends them too, with its own status', async () => {
  const { started, code } = await interrupted('SIGINT', []);
  assert.equal(code, 130);
  assert.equal(alive(started.child), false);
  assert.equal(existsSync(started.directory), false);
});
