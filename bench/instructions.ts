/**
 * Instructions per call, counted by valgrind: a measure of a gateway's work that does not move
 * with what else the machine is doing. Each target runs under `valgrind --tool=callgrind` (all
 * its threads: the event loop, the ledger's insert worker, V8's helpers), is warmed up with
 * instrumentation off, and then serves windows of `--requests` calls with it on; each window's
 * instruction count over its calls is one reading, and the median of the windows is reported.
 * The simulator and the load run natively, outside the count.
 *
 *   node bin/run-ts.mjs bench/instructions.ts [--targets seed,undici] [--modes json,stream]
 *       [--baseline GIT_REF] [--set PATH=VALUE ...] [--warm 45000] [--requests 1000] [--windows 5] [--functions N [--inclusive]] [--keep DIR] [--json]
 *
 * A window ends once the process is idle again, so that the ledger's last batch of the window,
 * which its insert worker writes after the calls have answered, is counted with it (without
 * that, windows counted one, two or three batches of 500 rows, ±7%).
 *
 * `--functions N` also lists, per target and mode, the N functions with the most instructions of
 * its last window (self cost per call), the JavaScript named through the map `--perf-basic-prof`
 * makes V8 write (`/tmp/perf-PID.map`): a profile that does not move with the machine.
 * `--inclusive` lists them by inclusive cost as well (a function and all it calls, as callgrind
 * follows calls and returns, JIT code's too), which tells what a step of the path costs in all:
 * the stream reader's `read` with the scanner and the Buffer calls under it, say. `--keep DIR`
 * keeps each target's last window (`TARGET-MODE.callgrind.out`) and V8's map of its JIT code
 * (`TARGET.perf.map`) there, for `callgrind_annotate --tree=caller` (who calls a C function).
 *
 * `--baseline` builds that ref in a temporary worktree (as `npm run bench -- --only ab` does) and
 * adds the target `baseline`, Seed from that build; the table then gives Seed ÷ baseline, which
 * resolves changes of about 1% where a timed A/B on this machine resolves about 10%: two builds of
 * the same code read 0.994× / 0.981× of medians (0.992× / 0.995× of the lowest windows), where
 * a window now and then carries a major GC or a late compilation (+5% to +33%).
 *
 * `--set PATH=VALUE` lays a setting over the config of every Seed counted (this build's and the
 * baseline's), as `npm run bench -- --only ab --set` does: `--set limits.store=redis --set
 * limits.url=redis://127.0.0.1:6379 --set limits.onUnavailable=closed` counts Seed's side of
 * limits in Redis (Redis's own work is another process's, not counted here).
 *
 * What it does not count: the kernel (system calls, the network stack), and time. Instructions
 * are not time: a cache miss or a system call costs far more than its count; the on-CPU profile
 * (bench/oncpu.ts) and the timed benchmark stay the judges of speed. Work that runs on a timer
 * rather than per call is left out of Seed's count: under valgrind a call takes ~50 times its
 * wall time, so a timer's work would be charged ~50 times over (and would still be compiling
 * while calls are counted). Seed runs with the keep-warm timer off, its key poll every 10 minutes
 * and the ledger's flush by batch (500 calls) rather than every 50 ms. The warm-up is long
 * (45 000 calls by default, ~3 minutes under valgrind) because Seed's code is still being
 * optimized at 20 000 calls; with 20 000, windows differed by up to 50%, with 45 000 by 1–3%.
 *
 * Needs valgrind (on Debian: `apt-get install -y valgrind`). Seed runs from dist/ (`npm run
 * build` first) with every feature on, as in `npm run bench`.
 */
import './lib/client-flags.ts';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Pool } from 'undici';
import { knownSettings, parsePerfMap, selfCostByFunction, takeLastDumpTotal, type PerfMapEntry } from './lib/callgrind.ts';
import { waitForQuiet } from './lib/proc.ts';
import { median } from './lib/stats.ts';
import { parseConfigSetting, SIMULATOR_HEADERS, startSeedServer, startUndiciProxy, type MeasuredServer } from './lib/targets.ts';
import { forEachTarget, serveCounted, targetsAndModes, wholeNumbers, type CountedTarget } from './lib/per-call.ts';
import { parseCommandLine } from './lib/command-line.ts';

const { values } = parseCommandLine(import.meta.filename, {
  options: {
    targets: { type: 'string', default: 'seed,undici' },
    modes: { type: 'string', default: 'json,stream' },
    baseline: { type: 'string' },
    set: { type: 'string', multiple: true },
    warm: { type: 'string', default: '45000' },
    requests: { type: 'string', default: '1000' },
    windows: { type: 'string', default: '5' },
    functions: { type: 'string', default: '0' },
    inclusive: { type: 'boolean', default: false },
    keep: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});
const { warm, requests, windows } = wholeNumbers({ warm: values.warm, requests: values.requests, windows: values.windows });
const functions = Number(values.functions);
if (!Number.isInteger(functions) || functions < 0) throw new Error('--functions: expected a whole number');
if (values.inclusive && functions === 0) throw new Error('--inclusive lists functions: give --functions N too');
if (values.keep !== undefined && functions === 0) throw new Error('--keep keeps the window --functions reads: give --functions N too');
const { targets, modes } = targetsAndModes(values);
const settings = (values.set ?? []).map((text) => {
  try {
    return parseConfigSetting(text);
  } catch (error) {
    throw new Error(`--set: ${(error as Error).message}`);
  }
});
for (const tool of ['valgrind', 'callgrind_control']) {
  if (spawnSync(tool, ['--version']).error) {
    console.error(`${tool} is not installed (Debian: apt-get install -y valgrind)`);
    process.exit(1);
  }
}

/** Calls in flight while warming and counting; the same for every target. */
const CONCURRENCY = 8;
/** What Seed's timers are set to, so that their work stays out of the count (see above). */
const QUIET_SEED = { keepWarmBytesPerSecond: 0, keyPollIntervalMs: 600_000, ledgerFlushIntervalMs: 600_000 };

interface Reading {
  target: CountedTarget;
  mode: string;
  /** Instructions per call, one per window. */
  perCall: number[];
  /** With `--functions`: the last window's self instructions per call of its costliest functions. */
  functions?: Array<[name: string, perCall: number]>;
  /** With `--inclusive`: the same by inclusive instructions per call. */
  inclusive?: Array<[name: string, perCall: number]>;
}

const readings: Reading[] = [];
await forEachTarget({
  targets,
  baseline: values.baseline,
  workPrefix: 'seed-instructions-',
  measure: async (target, { simulatorUrl, root, workDirectory }) => {
    readings.push(...(await measure({ target, simulatorUrl, root, workDirectory })));
  },
});
report();

/** One process of `target` under callgrind: warmed in every mode, then `windows` counted windows per mode, the modes taking turns. */
async function measure(input: { target: CountedTarget; simulatorUrl: string; root: string | undefined; workDirectory: string }): Promise<Reading[]> {
  const { target, simulatorUrl, root } = input;
  const directory = join(input.workDirectory, target);
  mkdirSync(directory, { recursive: true });
  const out = join(directory, 'callgrind.out');
  const wrapper = ['valgrind', '--tool=callgrind', '--instr-atstart=no', `--callgrind-out-file=${out}`];
  // Starting Node under valgrind takes ~10–30 s.
  // With --functions, V8 writes where it put each compiled function, so the JavaScript can be named.
  const nodeArguments = functions > 0 ? ['--perf-basic-prof'] : [];
  const server: MeasuredServer =
    target === 'undici'
      ? { ...(await startUndiciProxy({ simulatorUrl, wrapper, timeoutMs: 300_000, nodeArguments })), headers: { ...SIMULATOR_HEADERS } }
      : await startSeedServer({ simulatorUrl, workDirectory: directory, wrapper, timeoutMs: 300_000, name: target, nodeArguments, settings, ...(root ? { root } : {}), ...quietSettings(root) });
  const pool = new Pool(server.url, { connections: CONCURRENCY, pipelining: 1 });
  const callgrind = (...command: string[]) => execFileSync('callgrind_control', [...command, String(server.pid)], { stdio: 'ignore' });
  try {
    const startedAt = performance.now();
    const block = Math.min(5_000, Math.ceil(warm / modes.length));
    for (let done = 0; done < warm; ) {
      for (const mode of modes) {
        const count = Math.min(block, warm - done);
        if (count <= 0) break;
        await serveCounted({ pool, server, mode, count, concurrency: CONCURRENCY });
        done += count;
      }
    }
    console.error(`${target}: warmed with ${warm} calls in ${((performance.now() - startedAt) / 1000).toFixed(0)} s`);
    const perMode = new Map(modes.map((mode) => [mode, [] as number[]]));
    for (let window = 0; window < windows; window += 1) {
      for (const mode of modes) {
        callgrind('--zero');
        callgrind('--instr=on');
        await serveCounted({ pool, server, mode, count: requests, concurrency: CONCURRENCY });
        // The ledger's worker inserts the window's last batch after its calls have answered:
        // the window ends once the process is all but idle (what an idle Seed does meanwhile is
        // a few thousand instructions per call).
        if (!(await waitForQuiet([server.pid], { maxCores: 0.1, maxMs: 60_000 })).quiet) {
          throw new Error(`${server.name} did not go idle within 60 s of its window:\n${server.stderrTail()}`);
        }
        callgrind('--instr=off');
        callgrind('--dump');
        const last = functions > 0 && window === windows - 1 ? join(directory, `last-${mode}.out`) : undefined;
        const instructions = takeLastDumpTotal(directory, last);
        perMode.get(mode)?.push(instructions / requests);
        console.error(`${target} ${mode} window ${window + 1}/${windows}: ${(instructions / requests / 1000).toFixed(1)} k instructions per call`);
      }
    }
    if (values.keep !== undefined) {
      mkdirSync(values.keep, { recursive: true });
      for (const mode of modes) copyFileSync(join(directory, `last-${mode}.out`), join(values.keep, `${target}-${mode}.callgrind.out`));
      copyFileSync(`/tmp/perf-${server.pid}.map`, join(values.keep, `${target}.perf.map`));
    }
    return modes.map((mode) => ({
      target,
      mode,
      perCall: perMode.get(mode) ?? [],
      ...(functions > 0 ? { functions: costliest(join(directory, `last-${mode}.out`), server.pid, false) } : {}),
      ...(values.inclusive ? { inclusive: costliest(join(directory, `last-${mode}.out`), server.pid, true) } : {}),
    }));
  } finally {
    await pool.close();
    await server.stop(30_000);
    rmSync(`/tmp/perf-${server.pid}.map`, { force: true });
  }
}

/** The `--functions` costliest functions of a kept window, self (or inclusive) instructions per call. */
function costliest(dump: string, pid: number, inclusive: boolean): Array<[string, number]> {
  const annotated = spawnSync('callgrind_annotate', [`--inclusive=${inclusive ? 'yes' : 'no'}`, '--threshold=100', dump], {
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  });
  if (annotated.status !== 0) throw new Error(`callgrind_annotate failed: ${annotated.stderr.slice(0, 300)}`);
  let map: PerfMapEntry[] = [];
  try {
    map = parsePerfMap(readFileSync(`/tmp/perf-${pid}.map`, 'utf8'));
  } catch {
    console.error(`no perf map for ${pid}: JavaScript stays unnamed`);
  }
  return [...selfCostByFunction(annotated.stdout, map)]
    .sort((a, b) => b[1] - a[1])
    .slice(0, functions)
    .map(([name, cost]) => [name, cost / requests]);
}

/** Seed's quiet timers, each only where that build knows the setting (an older baseline may not). */
function quietSettings(root: string | undefined): Partial<typeof QUIET_SEED> {
  const schema = readFileSync(join(root ?? process.cwd(), 'src/config/schema.ts'), 'utf8');
  return knownSettings(QUIET_SEED, schema, (setting) => (setting === 'ledgerFlushIntervalMs' ? 'flushIntervalMs' : setting));
}

function report(): void {
  if (values.json) {
    console.log(JSON.stringify({ warm, requests, windows, concurrency: CONCURRENCY, readings }, null, 2));
    return;
  }
  const find = (target: CountedTarget, mode: string) => readings.find((reading) => reading.target === target && reading.mode === mode);
  const thousands = (value: number) => (value / 1000).toFixed(1);
  console.log(`\nInstructions per call (thousands), callgrind, every thread of the target; ${windows} windows of ${requests} calls after ${warm} warm-up calls, ${CONCURRENCY} in flight\n`);
  console.log('| target | mode | median | lowest–highest | spread |');
  console.log('|---|---|---:|---|---:|');
  for (const reading of readings) {
    const middle = median(reading.perCall);
    const low = Math.min(...reading.perCall);
    const high = Math.max(...reading.perCall);
    console.log(`| ${reading.target} | ${reading.mode} | ${thousands(middle)} | ${thousands(low)}–${thousands(high)} | ${(((high - low) / middle) * 100).toFixed(1)}% |`);
  }
  const ratios: string[] = [];
  for (const mode of modes) {
    const seed = find('seed', mode);
    for (const other of ['undici', 'baseline'] as const) {
      const against = find(other, mode);
      if (seed && against) {
        const ofMedians = median(seed.perCall) / median(against.perCall);
        const ofLowest = Math.min(...seed.perCall) / Math.min(...against.perCall);
        ratios.push(`| ${mode} | seed ÷ ${other} | ${ofMedians.toFixed(3)}× | ${ofLowest.toFixed(3)}× |`);
      }
    }
  }
  for (const reading of readings) {
    if (!reading.functions) continue;
    console.log(`\n${reading.target}, ${reading.mode}: self instructions per call (thousands) of the last window's costliest functions\n`);
    for (const [name, perCall] of reading.functions) console.log(`${thousands(perCall).padStart(8)}  ${name.slice(0, 150)}`);
    if (!reading.inclusive) continue;
    console.log(`\n${reading.target}, ${reading.mode}: inclusive instructions per call (thousands): each function with all it calls\n`);
    for (const [name, perCall] of reading.inclusive) console.log(`${thousands(perCall).padStart(8)}  ${name.slice(0, 150)}`);
  }
  // A window's excess is work that came once (a major GC, a late compilation): the lowest window is the steadiest reading of a change.
  if (ratios.length > 0) console.log(['\n| mode | ratio | of medians | of lowest windows |', '|---|---|---:|---:|', ...ratios].join('\n'));
}
