/**
 * Promises Seed makes per call: its call path's asynchronous layers, counted. Every promise is an
 * allocation, and every one awaited a turn of the microtask queue (`processTicksAndRejections` in
 * a CPU profile); layers that wait for nothing cost that on every call. Seed runs from dist/
 * (`npm run build` first) with every feature on, as in `npm run bench`, preloaded with
 * bench/servers/promise-observer.mjs; after a warm-up it takes `--requests` calls per mode
 * (closed loop, 50 connections) and prints the promises created per call, the process's
 * background work (the key poll, the ledger's batches) included.
 *
 *   node bin/run-ts.mjs bench/promise-count.ts [--requests 5000] [--sites [--top 30]] [--baseline GIT_REF]
 *
 * `--sites` also lists where the promises of one call come from (the first frames of each
 * creation stack, per call): slow, but exact. `--baseline` builds that ref in a temporary
 * worktree (as `npm run bench -- --only ab` does) and counts its Seed too.
 */
import './lib/client-flags.ts';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { closedLoop } from './lib/load.ts';
import { startSeedServer, startSimulator } from './lib/targets.ts';
import { prepareBaseline, removeBaseline } from './scenarios/ab.ts';
import { requestFor } from './scenarios/overhead.ts';
import { parseCommandLine } from './lib/command-line.ts';
import { scratchDirectory } from './lib/children.ts';

const { values } = parseCommandLine(import.meta.filename, {
  options: {
    requests: { type: 'string', default: '5000' },
    sites: { type: 'boolean', default: false },
    top: { type: 'string', default: '30' },
    baseline: { type: 'string' },
  },
});
const requests = Number(values.requests);
const top = Number(values.top);
if (!Number.isInteger(requests) || requests < 1) throw new Error('--requests: expected a whole number of at least 1');
if (!Number.isInteger(top) || top < 1) throw new Error('--top: expected a whole number of at least 1');

interface Observed {
  promises: number;
  sites: Array<[string, number]>;
}

const MODES = ['non-streaming', 'streaming'] as const;
type Mode = (typeof MODES)[number];

interface Counted {
  perCall: Record<Mode, number>;
  sites: Record<Mode, Array<[string, number]>>;
}

/** Counts one build's promises per call in each mode (`root`: that build's checkout; this one by default). */
async function count(simulatorUrl: string, workDirectory: string, root: string | undefined): Promise<Counted> {
  const output = join(workDirectory, 'promises.json');
  const seed = await startSeedServer({
    simulatorUrl,
    workDirectory,
    ...(root === undefined ? {} : { root }),
    nodeArguments: ['--import', fileURLToPath(new URL('./servers/promise-observer.mjs', import.meta.url))],
    env: { SEED_BENCH_PROMISES_OUT: output, ...(values.sites ? { SEED_BENCH_PROMISE_SITES: '1' } : {}) },
  });
  /** What the observer has seen so far (and, with --sites, since the last reading). */
  const observe = async (): Promise<Observed> => {
    rmSync(output, { force: true });
    process.kill(seed.pid, 'SIGUSR2');
    for (let waited = 0; ; waited += 10) {
      // Written in one call; a reader that comes between its open and its write sees it empty.
      const text = existsSync(output) ? readFileSync(output, 'utf8') : '';
      if (text !== '') return JSON.parse(text) as Observed;
      if (waited > 5_000) throw new Error('the promise observer did not answer');
      await sleep(10);
    }
  };
  const counted: Counted = { perCall: { 'non-streaming': 0, streaming: 0 }, sites: { 'non-streaming': [], streaming: [] } };
  try {
    for (const mode of MODES) {
      const request = requestFor({ origin: seed.url, headers: seed.headers }, mode === 'streaming');
      await closedLoop({ request, connections: 50, amount: Math.min(requests, 2_000) });
      const before = await observe();
      const run = await closedLoop({ request, connections: 50, amount: requests });
      const after = await observe();
      if (run.failures > 0 || run.completed < requests) throw new Error(`${run.failures} failures, ${run.completed} of ${requests} answered`);
      counted.perCall[mode] = (after.promises - before.promises) / run.completed;
      counted.sites[mode] = after.sites.slice(0, top).map(([site, times]) => [site, times / run.completed]);
    }
  } finally {
    await seed.stop();
  }
  return counted;
}

const workDirectory = scratchDirectory('seed-promises-');
const baselineRoot = join(workDirectory, 'baseline-checkout');
try {
  if (values.baseline !== undefined) prepareBaseline(values.baseline, baselineRoot, (line) => console.error(line));
  const simulator = await startSimulator();
  try {
    const builds: Array<[string, Counted]> = [['this build', await count(simulator.url, workDirectory, undefined)]];
    if (values.baseline !== undefined) builds.push([`baseline ${values.baseline}`, await count(simulator.url, workDirectory, baselineRoot)]);
    console.log(`Promises created by Seed per call (${requests} calls per mode, 50 connections, every feature on)\n`);
    console.log(`| mode | ${builds.map(([name]) => name).join(' | ')} |`);
    console.log(`|---|${builds.map(() => '---:').join('|')}|`);
    for (const mode of MODES) console.log(`| ${mode} | ${builds.map(([, counted]) => counted.perCall[mode].toFixed(2)).join(' | ')} |`);
    if (values.sites) {
      for (const [name, counted] of builds) {
        for (const mode of MODES) {
          console.log(`\n${name}: where a ${mode} call's promises are made (per call; the first frames of each creation stack)\n`);
          for (const [site, perCall] of counted.sites[mode]) console.log(`  ${perCall.toFixed(2)}  ${site}`);
        }
      }
    }
  } finally {
    await simulator.stop();
  }
} finally {
  removeBaseline(baselineRoot);
  rmSync(workDirectory, { recursive: true, force: true });
}
