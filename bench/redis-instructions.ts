/**
 * Redis's instructions per call for limits in Redis, counted by valgrind: what a call's reserve
 * and settle scripts cost the Redis server, a count that does not move with the machine's load
 * (two phases of one build agree within ~1% when the calls share their buckets). A
 * `redis-server` of its own runs under `valgrind --tool=callgrind` on `--port`; a driver
 * (`bench/lib/redis-limits-driver.ts`) runs the limit store of this checkout's `src/`, and of
 * `--baseline`'s, against it as the gateway's limiter does, ten calls a turn with every limit of
 * the benchmark set (rpm, tpm and usd/day on the key, team and org; rpm and tpm on the
 * deployment: 11 buckets a call), and counts the measured turns with `callgrind_control -d`.
 *
 *   node bin/run-ts.mjs bench/redis-instructions.ts [--baseline GIT_REF] [--modes shared,mixed,none]
 *       [--rounds 3] [--turns 200] [--warm 100] [--client [--client-warm 1000] [--client-turns 800]] [--port 6390] [--json]
 *
 * Modes, by how much a turn's ten calls share their buckets (the scripts read and write each
 * counter once a script, so sharing is what they save on): `shared`, one tenant's key, team and
 * org on one deployment (the benchmark's traffic); `mixed`, ten keys of one team and org on one
 * deployment (closer to production traffic); `none`, ten tenants each with its own key, team,
 * org and deployment (nothing to share). Every call is admitted: a refused call's path is not
 * counted.
 *
 * `--client` also counts the driver's own instructions (the gateway's side: the store's
 * arguments, ioredis's encoding, the reply's parse, the driver's promises) by running it under
 * callgrind too, counting `--client-turns` turns after `--client-warm` (V8 is still compiling the
 * store's code after 100 turns: the client's count read ~1.7× what it reads after 1 000; and over
 * 200 turns a major GC more or less moves a reading by up to ~10%, over 800 by ~3%). The builds take turns within each round and mode; the table gives each
 * build's median over the rounds and the median of the per-round ratios.
 *
 * Redis's count varies with its timers (`serverCron` runs on wall time, which valgrind slows
 * ~50×): more with more keys, so `none` reads within ~4% between phases and `shared` within ~1%.
 * Needs valgrind and Debian's `redis-server` (`apt-get install -y valgrind redis-server`).
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { parseCommandLine } from './lib/command-line.ts';
import { DRIVER_MODES, type DriverMode } from './lib/redis-limits-calls.ts';
import { wholeNumbers } from './lib/per-call.ts';
import { median } from './lib/stats.ts';
import { endWithBenchmark, scratchDirectory } from './lib/children.ts';

const { values } = parseCommandLine(import.meta.filename, {
  options: {
    baseline: { type: 'string' },
    modes: { type: 'string', default: DRIVER_MODES.join(',') },
    rounds: { type: 'string', default: '3' },
    turns: { type: 'string', default: '200' },
    warm: { type: 'string', default: '100' },
    client: { type: 'boolean', default: false },
    'client-warm': { type: 'string', default: '1000' },
    'client-turns': { type: 'string', default: '800' },
    port: { type: 'string', default: '6390' },
    json: { type: 'boolean', default: false },
  },
});
const modes = (values.modes ?? '').split(',').filter(Boolean) as DriverMode[];
for (const mode of modes) if (!DRIVER_MODES.includes(mode)) throw new Error(`--modes: ${mode} is not one of ${DRIVER_MODES.join(', ')}`);
const { rounds, turns, warm, 'client-warm': clientWarm, 'client-turns': clientTurns, port } = wholeNumbers({
  rounds: values.rounds,
  turns: values.turns,
  warm: values.warm,
  'client-warm': values['client-warm'],
  'client-turns': values['client-turns'],
  port: values.port,
});
for (const tool of ['valgrind', 'callgrind_control', 'redis-server']) {
  if (spawnSync(tool, ['--version']).error) {
    console.error(`${tool} is not installed (Debian: apt-get install -y valgrind redis-server)`);
    process.exit(1);
  }
}
const run = promisify(execFile);

const work = scratchDirectory('seed-redis-instructions-');
const builds: Array<{ name: string; source: string }> = [{ name: 'this', source: join(process.cwd(), 'src') }];
// Inside the checkout, so that the baseline's imports find this checkout's node_modules.
const baselineDirectory = join(process.cwd(), '.scratch', `redis-instructions-baseline-${process.pid}`);
if (values.baseline) {
  mkdirSync(baselineDirectory, { recursive: true });
  const archive = spawnSync('git', ['archive', values.baseline, 'src'], { maxBuffer: 256 * 1024 * 1024 });
  if (archive.status !== 0) throw new Error(`git archive ${values.baseline}: ${archive.stderr.toString()}`);
  spawnSync('tar', ['-x', '-C', baselineDirectory], { input: archive.stdout });
  builds.push({ name: `baseline (${values.baseline})`, source: join(baselineDirectory, 'src') });
}

const redisDumps = join(work, 'redis');
const clientDumps = join(work, 'client');
mkdirSync(redisDumps);
mkdirSync(clientDumps);
const redis = endWithBenchmark(
  spawn(
    'valgrind',
    ['--tool=callgrind', `--callgrind-out-file=${join(redisDumps, 'callgrind.out')}`, 'redis-server', '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  ),
);
const redisPid = String(redis.pid);

interface Reading {
  build: string;
  mode: DriverMode;
  redis: number[];
  client: number[];
}
const readings: Reading[] = [];
try {
  await waitForServer(port);
  for (let round = 1; round <= rounds; round += 1) {
    for (const mode of modes) {
      // The builds take turns, the first in each round another, so that neither always goes first.
      const order = round % 2 === 1 ? builds : [...builds].reverse();
      for (const build of order) {
        const reading = readingOf(build.name, mode);
        reading.redis.push(await phase(build.source, mode, ['--count-redis', redisPid]));
        if (values.client) reading.client.push(await phase(build.source, mode, ['--count-self'], true));
        const last = (list: number[]) => (list.length > 0 ? `${(list.at(-1)! / 1000).toFixed(1)} k` : '');
        console.error(`round ${round}/${rounds} ${mode} ${build.name}: Redis ${last(reading.redis)}${values.client ? `, client ${last(reading.client)}` : ''}`);
      }
    }
  }
} finally {
  redis.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
  rmSync(baselineDirectory, { recursive: true, force: true });
}
report();

function readingOf(build: string, mode: DriverMode): Reading {
  let reading = readings.find((candidate) => candidate.build === build && candidate.mode === mode);
  if (reading === undefined) {
    reading = { build, mode, redis: [], client: [] };
    readings.push(reading);
  }
  return reading;
}

/** One driver phase: its reading of instructions per call (Redis's, or its own under callgrind). */
async function phase(source: string, mode: DriverMode, count: string[], underCallgrind = false): Promise<number> {
  const driver = [
    'bin/run-ts.mjs',
    'bench/lib/redis-limits-driver.ts',
    '--source',
    source,
    '--port',
    String(port),
    '--mode',
    mode,
    '--turns',
    String(underCallgrind ? clientTurns : turns),
    '--warm',
    String(underCallgrind ? clientWarm : warm),
    '--dump-dir',
    underCallgrind ? clientDumps : redisDumps,
    ...count,
  ];
  const [command, args] = underCallgrind
    ? ['valgrind', ['--tool=callgrind', '--instr-atstart=no', `--callgrind-out-file=${join(clientDumps, 'callgrind.out')}`, process.execPath, ...driver]]
    : [process.execPath, driver];
  const { stdout } = await run(command, args as string[], { maxBuffer: 16 * 1024 * 1024 });
  const line = stdout.trim().split('\n').at(-1) ?? '';
  const { instructionsPerCall } = JSON.parse(line) as { instructionsPerCall: number };
  return instructionsPerCall;
}

async function waitForServer(onPort: number): Promise<void> {
  // Redis under valgrind takes a few seconds to start.
  const client = new Redis({ port: onPort, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => 200 });
  client.on('error', () => {});
  const deadline = Date.now() + 60_000;
  try {
    for (;;) {
      try {
        await client.connect();
        await client.ping();
        return;
      } catch (error) {
        if (Date.now() > deadline) throw new Error(`redis-server under valgrind did not answer on ${onPort} within 60 s`, { cause: error });
        client.disconnect();
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  } finally {
    client.disconnect();
  }
}

function report(): void {
  if (values.json) {
    console.log(JSON.stringify({ rounds, turns, warm, callsPerTurn: 10, readings }, null, 2));
    return;
  }
  const thousands = (list: number[]) => (list.length === 0 ? '–' : (median(list) / 1000).toFixed(1));
  const clientPhase = values.client ? ` (the client: ${clientTurns} after ${clientWarm})` : '';
  console.log(`\nInstructions per call (thousands), callgrind; ${rounds} round(s) of ${turns} turns of 10 calls after ${warm} warm-up turns${clientPhase}\n`);
  const sides: Array<['redis' | 'client', string]> = values.client ? [['redis', 'Redis'], ['client', 'client']] : [['redis', 'Redis']];
  console.log(`| mode | ${sides.flatMap(([, label]) => builds.map((build) => `${label}: ${build.name}`)).join(' | ')} |${builds.length > 1 ? sides.map(([, label]) => ` ${label}: this ÷ baseline |`).join('') : ''}`);
  console.log(`|---|${sides.flatMap(() => builds.map(() => '---:')).join('|')}|${builds.length > 1 ? sides.map(() => '---:|').join('') : ''}`);
  for (const mode of modes) {
    const cells: string[] = [];
    for (const [side] of sides) for (const build of builds) cells.push(thousands(readingOf(build.name, mode)[side]));
    if (builds.length > 1) {
      for (const [side] of sides) {
        const ours = readingOf(builds[0]!.name, mode)[side];
        const theirs = readingOf(builds[1]!.name, mode)[side];
        const ratios = ours.map((value, index) => value / (theirs[index] as number));
        cells.push(`${median(ratios).toFixed(3)}×`);
      }
    }
    console.log(`| ${mode} | ${cells.join(' | ')} |`);
  }
}
