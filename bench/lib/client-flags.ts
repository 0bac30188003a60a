/**
 * The load generator runs on the same V8 flags as the servers it measures (`benchNodeFlags()`:
 * Seed's `npm start` flags unless SEED_BENCH_NODE_FLAGS=none). Imported first by every bench
 * command that sends load; when the process was started without them, it runs the same command
 * again in a child with them and exits with the child's status.
 *
 * Why: the benchmark's client is a Node process too, and its own pauses are counted in every
 * latency it measures (from the scheduled send). On Node's defaults its young generation starts
 * small and is shrunk whenever it idles between slices; in scratch runs against Seed alone it
 * then ran a mark-compact in most slices (5–12 ms, V8's helper threads on both cores), and on
 * these flags none (docs/benchmark-log.md, 2026-12-05 (13:27–)). Every server here runs on them.
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { benchNodeFlags } from './targets.ts';
import { INTERRUPTING_SIGNALS, signalExitCode } from './children.ts';

const MARK = 'SEED_BENCH_CLIENT_FLAGS';
const RUN_TS = resolve(import.meta.dirname, '..', '..', 'bin', 'run-ts.mjs');

if (process.env[MARK] !== '1' && benchNodeFlags().some((flag) => !process.execArgv.includes(flag))) {
  // bin/run-ts.mjs left argv as [node, the script, …its arguments].
  const [, script, ...rest] = process.argv;
  const child = spawn(process.execPath, [...benchNodeFlags(), ...process.execArgv, RUN_TS, script as string, ...rest], {
    stdio: 'inherit',
    env: { ...process.env, [MARK]: '1' },
  });
  // A signal to this process alone (a `kill`, a CI timeout) goes on to the child, which ends what
  // it started (children.ts); this process ends as the child does.
  for (const signal of INTERRUPTING_SIGNALS) process.on(signal, () => child.kill(signal));
  const status = await new Promise<number>((resolveExit, rejectExit) => {
    child.once('error', rejectExit);
    child.once('exit', (code, signal) => resolveExit(code ?? (signal ? signalExitCode(signal) : 128)));
  });
  process.exit(status);
}
