/**
 * The load generator runs on the same V8 flags as the servers it measures (`benchNodeFlags()`:
 * Seed's `npm start` flags unless SEED_BENCH_NODE_FLAGS=none). Imported first by every bench
 * command that sends load; when the process was started without them, it runs the same command
 * again in a child with them and exits with the child's status.
 *
 * Why: the benchmark's client is a Node process too, and its own pauses are counted in every
 * latency it measures (from the scheduled send). On Node's defaults its young generation starts
 * small and is shrunk whenever it idles between slices, and in some runs its old generation then
 * grew ~5 MB a second under open-loop load: a mark-compact every 1–2 s, 5–12 ms each, with V8's
 * helper threads on both cores of this machine for up to 18 ms (`perf sched`, 2026-12-05
 * (13:27–) in bench/analysis.md). The requests in flight then stalled in whichever proxy was
 * being measured, and those stalls were most of Seed's added p99 at 500 req/s.
 */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { benchNodeFlags } from './targets.ts';

const MARK = 'SEED_BENCH_CLIENT_FLAGS';
const RUN_TS = resolve(import.meta.dirname, '..', '..', 'bin', 'run-ts.mjs');

/** The flags of `wanted` this process was not started with. */
export function missingFlags(wanted: readonly string[], execArgv: readonly string[] = process.execArgv): string[] {
  return wanted.filter((flag) => !execArgv.includes(flag));
}

const missing = missingFlags(benchNodeFlags());
if (missing.length > 0 && process.env[MARK] !== '1') {
  // bin/run-ts.mjs left argv as [node, the script, …its arguments].
  const [, script, ...rest] = process.argv;
  const child = spawnSync(process.execPath, [...benchNodeFlags(), ...process.execArgv, RUN_TS, script as string, ...rest], {
    stdio: 'inherit',
    env: { ...process.env, [MARK]: '1' },
  });
  if (child.error) throw child.error;
  process.exit(child.status ?? 1);
}
