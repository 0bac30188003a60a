/**
 * The first seconds of load after an idle spell. A Seed process (`idled`) is warmed up as every
 * scenario warms one, then left idle for `--idle` seconds; a second process of the same build and
 * flags (`fresh`) is started and warmed up just then; the two then take turns in 1 s closed-loop
 * slices (50 connections), the idled one first. Per run it prints each slice's requests/s, CPU
 * per request and minor page faults, and the idled ÷ fresh ratio of each pair; the table at the
 * end gives the ratio of the first and the second pair over the runs.
 *
 *   node bin/run-ts.mjs bench/idle-burst.ts [--idle 80] [--runs 3] [--pairs 3] [--json]
 *   node bin/run-ts.mjs bench/idle-burst.ts --without=--no-memory-reducer
 *   node bin/run-ts.mjs bench/idle-burst.ts --keep-warm 0
 *
 * `--without=FLAG` (with `=`, since the flag starts with a dash) runs both processes on
 * `npm start`'s flags less that one (src/node-flags.ts), to see what it buys; `--keep-warm BYTES`
 * sets both processes' `server.keepWarmBytesPerSecond` (0: off; src/young-generation.ts). Why it matters: V8's memory reducer runs memory-reducing full GCs
 * once a process has idled ~8 s, and those throw away optimized code whose hidden classes no
 * live object uses (docs/configuration.md, docs/benchmark-log.md, 2026-12-05 (18:39–)).
 *
 * Seed runs from dist/ (`npm run build` first) with every feature on, as in `npm run bench`.
 */
import './lib/client-flags.ts';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { closedLoop } from './lib/load.ts';
import { sampleProcess } from './lib/proc.ts';
import { median } from './lib/stats.ts';
import { serverNodeFlagsOf, startSeedServer, startSimulator, type SeedServer } from './lib/targets.ts';
import { requestFor, warmUp } from './scenarios/overhead.ts';
import { parseCommandLine } from './lib/command-line.ts';
import { scratchDirectory } from './lib/children.ts';

const { values } = parseCommandLine(import.meta.filename, {
  options: {
    idle: { type: 'string', default: '80' },
    runs: { type: 'string', default: '3' },
    pairs: { type: 'string', default: '3' },
    without: { type: 'string' },
    'keep-warm': { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});
const idleSeconds = Number(values.idle);
const runs = Number(values.runs);
const pairs = Number(values.pairs);
for (const [name, value, least] of [['idle', idleSeconds, 0], ['runs', runs, 1], ['pairs', pairs, 1]] as const) {
  if (!Number.isInteger(value) || value < least) throw new Error(`--${name}: expected a whole number of at least ${least}, got ${value}`);
}
const stream = !values.json;
const flags = serverNodeFlagsOf();
if (values.without !== undefined && !flags.includes(values.without)) {
  throw new Error(`--without ${values.without}: not one of npm start's flags (${flags.join(' ')})`);
}
const nodeFlags = flags.filter((flag) => flag !== values.without);
const keepWarm = values['keep-warm'] === undefined ? undefined : Number(values['keep-warm']);
if (keepWarm !== undefined && !(Number.isInteger(keepWarm) && keepWarm >= 0)) {
  throw new Error(`--keep-warm: expected bytes per second (a whole number ≥ 0), got ${values['keep-warm']}`);
}

interface Slice {
  requestsPerSecond: number;
  cpuMicrosPerRequest: number;
  minorFaults: number;
}

async function slice(server: SeedServer): Promise<Slice> {
  const shape = { origin: server.url, headers: server.headers };
  const before = sampleProcess(server.pid);
  const load = await closedLoop({ request: requestFor(shape, stream), connections: 50, durationSeconds: 1 });
  const after = sampleProcess(server.pid);
  if (before === undefined || after === undefined) throw new Error(`${server.name} exited during its slice: ${server.stderrTail()}`);
  return {
    requestsPerSecond: load.requestsPerSecond,
    cpuMicrosPerRequest: load.completed > 0 ? ((after.cpuMs - before.cpuMs) * 1000) / load.completed : Number.NaN,
    minorFaults: after.minorFaults - before.minorFaults,
  };
}

async function warmed(simulatorUrl: string, directory: string, name: string): Promise<SeedServer> {
  mkdirSync(directory, { recursive: true });
  const server = await startSeedServer({ simulatorUrl, workDirectory: directory, name, nodeFlags, ...(keepWarm === undefined ? {} : { keepWarmBytesPerSecond: keepWarm }) });
  const shape = { origin: server.url, headers: server.headers };
  // Both modes, as every scenario warms a process.
  await warmUp(shape, false, 50);
  await warmUp(shape, true, 50);
  return server;
}

const describe = (each: Slice) => `${each.requestsPerSecond.toFixed(0)} req/s, ${each.cpuMicrosPerRequest.toFixed(0)} µs/req, ${each.minorFaults} minor faults`;
const ratiosByPair: number[][] = Array.from({ length: pairs }, () => []);
const workDirectory = scratchDirectory('seed-idle-burst-');
const simulator = await startSimulator();
try {
  for (let run = 0; run < runs; run += 1) {
    const idled = await warmed(simulator.url, join(workDirectory, `idled-${run}`), `idled-${run}`);
    try {
      await sleep(idleSeconds * 1000);
      const fresh = await warmed(simulator.url, join(workDirectory, `fresh-${run}`), `fresh-${run}`);
      try {
        for (let pair = 0; pair < pairs; pair += 1) {
          const first = await slice(idled);
          const second = await slice(fresh);
          const ratio = first.requestsPerSecond / second.requestsPerSecond;
          (ratiosByPair[pair] as number[]).push(ratio);
          console.error(`run ${run + 1}/${runs} pair ${pair + 1}: idled ${describe(first)}; fresh ${describe(second)}; idled ÷ fresh ${ratio.toFixed(2)}`);
        }
      } finally {
        await fresh.stop();
      }
    } finally {
      await idled.stop();
    }
  }
} finally {
  await simulator.stop();
  rmSync(workDirectory, { recursive: true, force: true });
}

console.log(
  `\nThroughput of a Seed idle for ${idleSeconds} s ÷ one warmed just before, ${stream ? 'streaming' : 'non-streaming'}, 1 s slices at 50 connections, ${runs} run(s); Node flags: ${nodeFlags.join(' ')}; server.keepWarmBytesPerSecond ${keepWarm ?? "Seed's default"}\n`,
);
console.log('| pair after the idle spell | median | every run |');
console.log('|---|---:|---|');
ratiosByPair.forEach((ratios, pair) => console.log(`| ${pair + 1} | ${median(ratios).toFixed(2)}× | ${ratios.map((ratio) => ratio.toFixed(2)).join(' ')} |`));
