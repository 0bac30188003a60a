/**
 * Where a gateway's CPU goes, counted on the CPU: Seed and the minimal undici proxy (or either
 * alone) under the same closed-loop load, one after the other in front of one simulator, each
 * recorded with `perf record -e cpu-clock -g` and started with `--perf-basic-prof` so that perf
 * names the JavaScript. Prints, per request: each thread's CPU (the event loop, the ledger's
 * insert worker, V8's helpers), then the event loop's CPU by owner area and by function, the
 * kernel and GC included, side by side.
 *
 *   node bin/run-ts.mjs bench/oncpu.ts [--json] [--seconds 10] [--targets seed,undici] [--top 30]
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
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { closedLoop } from './lib/load.ts';
import { parsePerfScript, profileThread, samplesByThread, threadKind, type PerfSample, type ThreadProfile } from './lib/perf-script.ts';
import { SIMULATOR_HEADERS, startBenchNodeServer, startSeedServer, startSimulator } from './lib/targets.ts';
import { requestFor, warmUp } from './scenarios/overhead.ts';

const { values } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    seconds: { type: 'string', default: '10' },
    targets: { type: 'string', default: 'seed,undici' },
    top: { type: 'string', default: '30' },
    connections: { type: 'string', default: '50' },
  },
});
const seconds = Number(values.seconds);
const top = Number(values.top);
const connections = Number(values.connections);
for (const [name, value] of [['seconds', seconds], ['top', top], ['connections', connections]] as const) {
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name}: expected a whole number of at least 1`);
}
const targets = values.targets.split(',').map((target) => target.trim());
for (const target of targets) if (target !== 'seed' && target !== 'undici') throw new Error(`--targets: seed and undici only, got ${target}`);
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
  pid: number;
  samples: PerfSample[];
  main: ThreadProfile;
}

const workDirectory = mkdtempSync(join(tmpdir(), 'seed-oncpu-'));
const measured: Measured[] = [];
try {
  const simulator = await startSimulator();
  try {
    for (const target of targets) {
      const server =
        target === 'seed'
          ? await startSeedServer({ simulatorUrl: simulator.url, workDirectory, nodeArguments: ['--perf-basic-prof'], name: 'seed' })
          : {
              ...(await startBenchNodeServer({
                name: 'undici-proxy',
                script: 'bench/servers/undici-proxy.ts',
                env: { UPSTREAM: simulator.url },
                nodeArguments: ['--perf-basic-prof'],
              })),
              headers: { ...SIMULATOR_HEADERS },
            };
      try {
        const shape = { origin: server.url, headers: server.headers };
        await warmUp(shape, stream, connections);
        const data = join(workDirectory, `${target}.data`);
        const perf = spawn('perf', ['record', '-e', 'cpu-clock', '-F', String(FREQUENCY), '-g', '-p', String(server.pid), '-o', data], { stdio: 'ignore' });
        // perf finishes its file on SIGINT, then ends by that signal.
        const exited = new Promise<boolean>((resolve) => perf.once('exit', (code, signal) => resolve(code === 0 || signal === 'SIGINT')));
        // perf attaches within a few ms; the load starts after it.
        await new Promise((resolve) => setTimeout(resolve, 300));
        const load = await closedLoop({ request: requestFor(shape, stream), connections, durationSeconds: seconds });
        perf.kill('SIGINT');
        if (!(await exited)) throw new Error(`perf record of ${target} failed (root, or kernel.perf_event_paranoid ≤ 1, is needed)`);
        const script = spawnSync('perf', ['script', '-i', data, '-F', 'comm,tid,ip,sym,dso'], { encoding: 'utf8', maxBuffer: 1 << 30 });
        if (script.status !== 0) throw new Error(`perf script failed: ${script.stderr.slice(0, 500)}`);
        const samples = parsePerfScript(script.stdout);
        measured.push({ target, requests: load.completed, pid: server.pid, samples, main: profileThread(samples, server.pid) });
        console.error(`${target}: ${load.completed} requests in ${seconds} s (${load.requestsPerSecond.toFixed(0)} req/s), ${samples.length} samples`);
      } finally {
        await server.stop(15_000);
        try {
          unlinkSync(`/tmp/perf-${server.pid}.map`);
        } catch {
          // not written, or already gone
        }
      }
    }
  } finally {
    await simulator.stop();
  }
} finally {
  rmSync(workDirectory, { recursive: true, force: true });
}

/** µs of CPU per request for `samples` samples of one target. */
const perRequest = (entry: Measured, samples: number) => (samples * 1e6) / FREQUENCY / entry.requests;
const cell = (value: number) => value.toFixed(1);

console.log(`\nOn-CPU time per request, ${stream ? 'streaming' : 'non-streaming'}, ${connections} connections, ${seconds} s each (perf cpu-clock at ${FREQUENCY} Hz)\n`);
console.log(`| thread | ${measured.map((entry) => `${entry.target} µs/req`).join(' | ')} |`);
console.log(`|---|${measured.map(() => '---:').join('|')}|`);
console.log(`| requests/s | ${measured.map((entry) => cell(entry.requests / seconds)).join(' | ')} |`);
console.log(`| event loop | ${measured.map((entry) => cell(perRequest(entry, entry.main.samples))).join(' | ')} |`);
console.log(`| event loop, share of the wall clock | ${measured.map((entry) => `${((100 * entry.main.samples) / FREQUENCY / seconds).toFixed(0)}%`).join(' | ')} |`);
const kinds = new Set<string>();
const otherThreads = measured.map((entry) => {
  const byKind = new Map<string, number>();
  for (const { tid, samples } of samplesByThread(entry.samples)) {
    if (tid === entry.pid) continue;
    const kind = threadKind(entry.samples, tid);
    kinds.add(kind);
    byKind.set(kind, (byKind.get(kind) ?? 0) + samples);
  }
  return byKind;
});
for (const kind of kinds) console.log(`| ${kind} | ${measured.map((entry, index) => cell(perRequest(entry, otherThreads[index]?.get(kind) ?? 0))).join(' | ')} |`);
console.log(`| all threads | ${measured.map((entry) => cell(perRequest(entry, entry.samples.length))).join(' | ')} |`);

console.log(`\nThe event loop by owner (the nearest JavaScript function on the stack; native code and the kernel count for it)\n`);
console.log(`| area | ${measured.map((entry) => `${entry.target} µs/req`).join(' | ')} |`);
console.log(`|---|${measured.map(() => '---:').join('|')}|`);
const areas = new Map<string, number>();
for (const entry of measured) for (const [area, samples] of entry.main.areas) areas.set(area, Math.max(areas.get(area) ?? 0, perRequest(entry, samples)));
for (const [area] of [...areas.entries()].sort((left, right) => right[1] - left[1]).slice(0, top)) {
  console.log(`| ${area} | ${measured.map((entry) => cell(perRequest(entry, entry.main.areas.get(area) ?? 0))).join(' | ')} |`);
}
console.log(`| of which in the kernel | ${measured.map((entry) => cell(perRequest(entry, entry.main.kernel))).join(' | ')} |`);
console.log(`| of which in GC | ${measured.map((entry) => cell(perRequest(entry, entry.main.gc))).join(' | ')} |`);

for (const entry of measured) {
  console.log(`\n${entry.target}: the event loop's top functions (µs/req)\n`);
  for (const [fn, samples] of [...entry.main.functions.entries()].sort((left, right) => right[1] - left[1]).slice(0, top)) {
    console.log(`${cell(perRequest(entry, samples)).padStart(6)}  ${fn}`);
  }
}
