/**
 * Where a gateway's CPU goes, counted on the CPU: Seed and the minimal undici proxy (or either
 * alone) under the same closed-loop load, one after the other in front of one simulator, each
 * recorded with `perf record -e cpu-clock -g` and started with `--perf-basic-prof` so that perf
 * names the JavaScript. Prints, per request: each thread's CPU (the event loop, the ledger's
 * insert worker, V8's helpers), then the event loop's CPU by owner area and by function, the
 * kernel and GC included, side by side.
 *
 *   node bin/run-ts.mjs bench/oncpu.ts [--json] [--seconds 10] [--targets seed,undici] [--top 30]
 *   node bin/run-ts.mjs bench/oncpu.ts --baseline GIT_REF --targets seed,baseline --rounds 4
 *   node bin/run-ts.mjs bench/oncpu.ts --targets seed --threads 'worker thread (JavaScript)'
 *   node bin/run-ts.mjs bench/oncpu.ts --targets seed --set limits.store=redis --set limits.url=redis://127.0.0.1:6379 --set limits.onUnavailable=closed
 *
 * `--baseline` builds that ref in a temporary worktree (as the A/B scenario does) and adds the
 * target `baseline`, Seed from that build. `--threads KIND` adds, for the other threads of that
 * kind (as the thread table names them), their functions by inclusive time: the ledger's insert
 * worker spends most of its time in native code (SQLite, V8's deserializer, the kernel). `--set PATH=VALUE`
 * lays a setting over every Seed's config (Seed and the baseline), as in the A/B scenario: limits
 * in Redis, say. `--rounds N` measures every target N times, each time
 * in a fresh process and in a rotated order (processes of one build differ for their whole life,
 * and the machine drifts), and pools the rounds; a line per round gives each target's event loop
 * CPU per request, and with Seed and the baseline, their ratio. A change of 2–3%, below what the
 * A/B scenario resolves, shows in the event loop's area or function it touched.
 *
 * Needs Linux `perf` (Debian: `apt-get install -y linux-perf`) and the right to record the
 * processes (root, or kernel.perf_event_paranoid ≤ 1). Seed runs from dist/ (`npm run build`
 * first) with every feature on, as in `npm run bench`; every process on the bench's Node flags.
 *
 * Why not `--cpu-prof`: V8's profiler samples the event loop on a timer, running or not, so on a
 * machine where processes wait for a CPU it charges the waiting to whatever was on the stack
 * (most often `writev`). Samples of `cpu-clock` are taken only on the CPU. When the event loop is
 * saturated, as in a closed loop, a proxy's throughput is the inverse of its event loop's CPU
 * per request, which is what this measures.
 */
import './lib/client-flags.ts';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { closedLoop } from './lib/load.ts';
import { inclusiveFrames, parsePerfScript, profileThread, samplesByThread, threadKind, type PerfSample, type ThreadProfile } from './lib/perf-script.ts';
import { parseConfigSetting, SIMULATOR_HEADERS, startSeedServer, startSimulator, startUndiciProxy } from './lib/targets.ts';
import { prepareBaseline, removeBaseline } from './scenarios/ab.ts';
import { requestFor, warmUp } from './scenarios/overhead.ts';
import { parseCommandLine } from './lib/command-line.ts';
import { endWithBenchmark, scratchDirectory } from './lib/children.ts';

const { values } = parseCommandLine(import.meta.filename, {
  options: {
    json: { type: 'boolean', default: false },
    seconds: { type: 'string', default: '10' },
    targets: { type: 'string', default: 'seed,undici' },
    top: { type: 'string', default: '30' },
    connections: { type: 'string', default: '50' },
    baseline: { type: 'string' },
    rounds: { type: 'string', default: '1' },
    threads: { type: 'string' },
    set: { type: 'string', multiple: true, default: [] },
  },
});
const settings = values.set.map(parseConfigSetting);
const seconds = Number(values.seconds);
const top = Number(values.top);
const connections = Number(values.connections);
const rounds = Number(values.rounds);
for (const [name, value] of [['seconds', seconds], ['top', top], ['connections', connections], ['rounds', rounds]] as const) {
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name}: expected a whole number of at least 1`);
}
const targets = values.targets.split(',').map((target) => target.trim());
for (const target of targets) {
  if (target !== 'seed' && target !== 'undici' && target !== 'baseline') throw new Error(`--targets: seed, undici or baseline, got ${target}`);
  if (target === 'baseline' && values.baseline === undefined) throw new Error('--targets baseline needs --baseline GIT_REF');
}
const stream = !values.json;
/** Samples per second per thread; odd, so it does not beat with timers. */
const FREQUENCY = 1999;

if (spawnSync('perf', ['--version']).status !== 0) {
  console.error('perf is not installed (Debian: apt-get install -y linux-perf)');
  process.exit(1);
}

interface Measured {
  target: string;
  requests: number;
  /** Samples of every thread, and the event loop's, pooled over the target's rounds. */
  threads: Map<string, number>;
  all: number;
  main: ThreadProfile;
  /** Inclusive samples per function on the threads of `--threads`' kind. */
  other: Map<string, number>;
  /** Event loop µs per request, per round. */
  perRound: number[];
}

const workDirectory = scratchDirectory('seed-oncpu-');
const measured = new Map<string, Measured>(targets.map((target) => [target, { target, requests: 0, threads: new Map(), all: 0, main: emptyProfile(), other: new Map(), perRound: [] }]));
try {
  const baselineRoot = join(workDirectory, 'baseline-checkout');
  if (values.baseline !== undefined) prepareBaseline(values.baseline, baselineRoot, (line) => console.error(line));
  const simulator = await startSimulator();
  try {
    for (let round = 0; round < rounds; round += 1) {
      // Rotated, so no target is always measured first or last.
      const order = targets.map((_, index) => targets[(index + round) % targets.length] as string);
      for (const target of order) {
        const entry = measured.get(target) as Measured;
        const one = await measure(target, simulator.url, target === 'baseline' ? baselineRoot : undefined, `${target}-${round}`);
        entry.requests += one.requests;
        entry.all += one.samples.length;
        const main = profileThread(one.samples, one.pid);
        mergeProfile(entry.main, main);
        entry.perRound.push(perRequestOf(main.samples, one.requests));
        const ofKind = new Set<number>();
        for (const { tid, samples } of samplesByThread(one.samples)) {
          if (tid === one.pid) continue;
          const kind = threadKind(one.samples, tid);
          entry.threads.set(kind, (entry.threads.get(kind) ?? 0) + samples);
          if (kind === values.threads) ofKind.add(tid);
        }
        for (const [fn, samples] of inclusiveFrames(one.samples, ofKind)) entry.other.set(fn, (entry.other.get(fn) ?? 0) + samples);
        console.error(`round ${round + 1}/${rounds} ${target}: ${one.requests} requests in ${seconds} s, event loop ${perRequestOf(main.samples, one.requests).toFixed(1)} µs/req`);
      }
    }
  } finally {
    await simulator.stop();
  }
} finally {
  removeBaseline(join(workDirectory, 'baseline-checkout'));
  rmSync(workDirectory, { recursive: true, force: true });
}

function emptyProfile(): ThreadProfile {
  return { tid: 0, samples: 0, kernel: 0, gc: 0, areas: new Map(), functions: new Map() };
}

function mergeProfile(into: ThreadProfile, from: ThreadProfile): void {
  into.samples += from.samples;
  into.kernel += from.kernel;
  into.gc += from.gc;
  for (const [area, samples] of from.areas) into.areas.set(area, (into.areas.get(area) ?? 0) + samples);
  for (const [fn, samples] of from.functions) into.functions.set(fn, (into.functions.get(fn) ?? 0) + samples);
}

function perRequestOf(samples: number, requests: number): number {
  return (samples * 1e6) / FREQUENCY / requests;
}

/** One fresh process of `target`, warmed up, then recorded under load for `seconds`. */
async function measure(target: string, simulatorUrl: string, root: string | undefined, name: string): Promise<{ requests: number; pid: number; samples: PerfSample[] }> {
  const directory = join(workDirectory, name);
  mkdirSync(directory, { recursive: true });
  const server =
    target === 'undici'
      ? { ...(await startUndiciProxy({ simulatorUrl, nodeArguments: ['--perf-basic-prof'] })), headers: { ...SIMULATOR_HEADERS } }
      : await startSeedServer({ simulatorUrl, workDirectory: directory, nodeArguments: ['--perf-basic-prof'], name, settings, ...(root ? { root } : {}) });
  try {
    const shape = { origin: server.url, headers: server.headers };
    await warmUp(shape, stream, connections);
    const data = join(directory, 'perf.data');
    const perf = endWithBenchmark(spawn('perf', ['record', '-e', 'cpu-clock', '-F', String(FREQUENCY), '-g', '-p', String(server.pid), '-o', data], { stdio: 'ignore' }));
    // perf finishes its file on SIGINT, then ends by that signal.
    const exited = new Promise<boolean>((resolve) => perf.once('exit', (code, signal) => resolve(code === 0 || signal === 'SIGINT')));
    // perf attaches within a few ms; the load starts after it.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const load = await closedLoop({ request: requestFor(shape, stream), connections, durationSeconds: seconds });
    perf.kill('SIGINT');
    if (!(await exited)) throw new Error(`perf record of ${target} failed (root, or kernel.perf_event_paranoid ≤ 1, is needed)`);
    const script = spawnSync('perf', ['script', '-i', data, '-F', 'comm,tid,ip,sym,dso'], { encoding: 'utf8', maxBuffer: 1 << 30 });
    if (script.status !== 0) throw new Error(`perf script failed: ${script.stderr.slice(0, 500)}`);
    return { requests: load.completed, pid: server.pid, samples: parsePerfScript(script.stdout) };
  } finally {
    await server.stop(15_000);
    rmSync(`/tmp/perf-${server.pid}.map`, { force: true });
  }
}

/** µs of CPU per request for `samples` samples of one target (pooled over its rounds). */
const perRequest = (entry: Measured, samples: number) => perRequestOf(samples, entry.requests);
const cell = (value: number) => value.toFixed(1);
const entries = [...measured.values()];
const header = (first: string) => {
  console.log(`| ${first} | ${entries.map((entry) => `${entry.target} µs/req`).join(' | ')} |`);
  console.log(`|---|${entries.map(() => '---:').join('|')}|`);
};

console.log(
  `\nOn-CPU time per request, ${stream ? 'streaming' : 'non-streaming'}, ${connections} connections, ${seconds} s per target and round, ${rounds} round(s) pooled (perf cpu-clock at ${FREQUENCY} Hz)\n`,
);
header('thread');
console.log(`| requests/s | ${entries.map((entry) => cell(entry.requests / seconds / rounds)).join(' | ')} |`);
console.log(`| event loop | ${entries.map((entry) => cell(perRequest(entry, entry.main.samples))).join(' | ')} |`);
console.log(`| event loop, share of the wall clock | ${entries.map((entry) => `${((100 * entry.main.samples) / FREQUENCY / seconds / rounds).toFixed(0)}%`).join(' | ')} |`);
const kinds = new Set(entries.flatMap((entry) => [...entry.threads.keys()]));
for (const kind of kinds) console.log(`| ${kind} | ${entries.map((entry) => cell(perRequest(entry, entry.threads.get(kind) ?? 0))).join(' | ')} |`);
console.log(`| all threads | ${entries.map((entry) => cell(perRequest(entry, entry.all))).join(' | ')} |`);

if (rounds > 1) {
  console.log('\nThe event loop per round (µs/req)\n');
  const seed = measured.get('seed');
  const baseline = measured.get('baseline');
  const ratio = seed !== undefined && baseline !== undefined;
  console.log(`| round | ${entries.map((entry) => entry.target).join(' | ')} |${ratio ? ' seed ÷ baseline |' : ''}`);
  console.log(`|---|${entries.map(() => '---:').join('|')}|${ratio ? '---:|' : ''}`);
  for (let round = 0; round < rounds; round += 1) {
    const ratioCell = ratio ? ` ${((seed.perRound[round] as number) / (baseline.perRound[round] as number)).toFixed(3)}× |` : '';
    console.log(`| ${round + 1} | ${entries.map((entry) => cell(entry.perRound[round] as number)).join(' | ')} |${ratioCell}`);
  }
}

console.log(`\nThe event loop by owner (the nearest JavaScript function on the stack; native code and the kernel count for it)\n`);
header('area');
const areas = new Map<string, number>();
for (const entry of entries) for (const [area, samples] of entry.main.areas) areas.set(area, Math.max(areas.get(area) ?? 0, perRequest(entry, samples)));
for (const [area] of [...areas.entries()].sort((left, right) => right[1] - left[1]).slice(0, top)) {
  console.log(`| ${area} | ${entries.map((entry) => cell(perRequest(entry, entry.main.areas.get(area) ?? 0))).join(' | ')} |`);
}
console.log(`| of which in the kernel | ${entries.map((entry) => cell(perRequest(entry, entry.main.kernel))).join(' | ')} |`);
console.log(`| of which in GC | ${entries.map((entry) => cell(perRequest(entry, entry.main.gc))).join(' | ')} |`);

for (const entry of entries) {
  console.log(`\n${entry.target}: the event loop's top functions (µs/req)\n`);
  for (const [fn, samples] of [...entry.main.functions.entries()].sort((left, right) => right[1] - left[1]).slice(0, top)) {
    console.log(`${cell(perRequest(entry, samples)).padStart(6)}  ${fn}`);
  }
}

if (values.threads !== undefined) {
  for (const entry of entries) {
    console.log(`\n${entry.target}: the functions of its threads of kind "${values.threads}", inclusive (µs/req)\n`);
    if (entry.other.size === 0) console.log('  (no such thread sampled)');
    for (const [fn, samples] of [...entry.other.entries()].sort((left, right) => right[1] - left[1]).slice(0, top)) {
      console.log(`${cell(perRequest(entry, samples)).padStart(6)}  ${fn.length > 140 ? `${fn.slice(0, 140)}…` : fn}`);
    }
  }
}
