/**
 * CPU per streamed call with a paced upstream: Seed (every feature on, as in `npm run bench`) and
 * the minimal undici proxy in front of one simulator that sends each token `1 / tokens-per-second`
 * after the last, as a real model does, so every event reaches the proxy in a read of its own.
 * The overhead scenario's simulator answers at once, so a stream's ~27 events come in a few reads,
 * which puts the weight on a gateway's per-call work; here the per-event path (a read, its
 * decoding, a write) carries it, as in production.
 *
 *   node bin/run-ts.mjs bench/paced.ts [--tokens-per-second 500] [--connections 50]
 *       [--calls 2000] [--rounds 3] [--json]
 *
 * Each target is warmed with `--calls` calls, then the targets take turns for `--rounds` rounds of
 * `--calls` closed-loop calls each; each process's CPU (user + system, from /proc, 10 ms ticks) over
 * a round is divided by the calls and by the events the client received. Prints a line per round
 * and target, then the median CPU per call of each and Seed ÷ the proxy, round by round.
 */
import './lib/client-flags.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { countedCalls } from './lib/load.ts';
import { sampleProcess } from './lib/proc.ts';
import { median } from './lib/stats.ts';
import { SIMULATOR_HEADERS, startSeedServer, startSimulator, startUndiciProxy, type MeasuredServer } from './lib/targets.ts';
import { requestFor } from './scenarios/overhead.ts';
import { REPORTED_QUOTA } from './servers/simulator.ts';

const { values } = parseArgs({
  options: {
    'tokens-per-second': { type: 'string', default: '500' },
    connections: { type: 'string', default: '50' },
    calls: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '3' },
    json: { type: 'boolean', default: false },
  },
});
const tokensPerSecond = Number(values['tokens-per-second']);
const connections = Number(values.connections);
const calls = Number(values.calls);
const rounds = Number(values.rounds);
if (!Number.isFinite(tokensPerSecond) || tokensPerSecond <= 0) throw new Error('--tokens-per-second: expected a positive number');
for (const [name, value] of [['connections', connections], ['calls', calls], ['rounds', rounds]] as const) {
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name}: expected a whole number of at least 1`);
}

interface RoundReading {
  round: number;
  target: 'seed' | 'undici';
  cpuMicrosecondsPerCall: number;
  cpuMicrosecondsPerEvent: number;
  eventsPerCall: number;
  callsPerSecond: number;
}

/** `count` streamed calls, `connections` at a time; the process's CPU and the events the client got. */
async function serve(server: MeasuredServer, count: number): Promise<{ cpuMs: number; events: number; wallMs: number }> {
  const pool = new Pool(server.url, { connections, pipelining: 1 });
  const request = requestFor({ origin: server.url, headers: server.headers }, true);
  let events = 0;
  const before = sampleProcess(server.pid);
  const startedAt = performance.now();
  try {
    const onAnswer = (text: string) => (events += text.split('\n\n').length - 1);
    await countedCalls({ pool, request, count, concurrency: connections, name: server.name, onAnswer, describe: () => server.stderrTail() });
  } finally {
    await pool.close();
  }
  const wallMs = performance.now() - startedAt;
  const after = sampleProcess(server.pid);
  if (before === undefined || after === undefined) throw new Error(`${server.name} exited during the round`);
  return { cpuMs: after.cpuMs - before.cpuMs, events, wallMs };
}

const workDirectory = mkdtempSync(join(tmpdir(), 'seed-paced-'));
const readings: RoundReading[] = [];
try {
  const simulator = await startSimulator({
    env: { SEED_BENCH_SIMULATOR: JSON.stringify({ ...REPORTED_QUOTA, defaults: { ...REPORTED_QUOTA.defaults, tokensPerSecond } }) },
  });
  const servers: Array<['seed' | 'undici', MeasuredServer]> = [];
  try {
    servers.push(['seed', await startSeedServer({ simulatorUrl: simulator.url, workDirectory })]);
    servers.push(['undici', { ...(await startUndiciProxy({ simulatorUrl: simulator.url })), headers: { ...SIMULATOR_HEADERS } }]);
    for (const [, server] of servers) await serve(server, calls);
    for (let round = 1; round <= rounds; round += 1) {
      // A rotated order, so neither target always runs first after the other.
      const order = round % 2 === 1 ? servers : [...servers].reverse();
      for (const [target, server] of order) {
        const { cpuMs, events, wallMs } = await serve(server, calls);
        const reading: RoundReading = {
          round,
          target,
          cpuMicrosecondsPerCall: (cpuMs * 1000) / calls,
          cpuMicrosecondsPerEvent: (cpuMs * 1000) / events,
          eventsPerCall: events / calls,
          callsPerSecond: (calls * 1000) / wallMs,
        };
        readings.push(reading);
        if (!values.json) {
          console.error(
            `round ${round} ${target}: ${reading.cpuMicrosecondsPerCall.toFixed(0)} µs CPU per call, ${reading.cpuMicrosecondsPerEvent.toFixed(1)} per event, ` +
              `${reading.eventsPerCall.toFixed(1)} events per call, ${reading.callsPerSecond.toFixed(0)} calls/s`,
          );
        }
      }
    }
  } finally {
    await Promise.all(servers.map(([, server]) => server.stop()));
    await simulator.stop();
  }
} finally {
  rmSync(workDirectory, { recursive: true, force: true });
}

const of = (target: 'seed' | 'undici') => readings.filter((reading) => reading.target === target);
const ratios = of('seed').map((seed, index) => seed.cpuMicrosecondsPerCall / (of('undici')[index]?.cpuMicrosecondsPerCall ?? Number.NaN));
if (values.json) {
  console.log(JSON.stringify({ tokensPerSecond, connections, calls, rounds, readings, ratios }, null, 2));
} else {
  console.log(`\nPaced upstream: ${tokensPerSecond} tokens/s, ${connections} connections, ${calls} streamed calls per round, ${rounds} rounds\n`);
  console.log('| target | CPU µs per call (median) | CPU µs per event (median) | events per call |');
  console.log('|---|---:|---:|---:|');
  for (const target of ['seed', 'undici'] as const) {
    const rows = of(target);
    const perCall = median(rows.map((row) => row.cpuMicrosecondsPerCall));
    const perEvent = median(rows.map((row) => row.cpuMicrosecondsPerEvent));
    console.log(`| ${target === 'seed' ? 'Seed' : 'minimal undici proxy'} | ${perCall.toFixed(0)} | ${perEvent.toFixed(1)} | ${median(rows.map((row) => row.eventsPerCall)).toFixed(1)} |`);
  }
  console.log(`\nSeed ÷ undici proxy, CPU per call, by round: ${ratios.map((ratio) => `${ratio.toFixed(2)}×`).join(' ')}; median ${median(ratios).toFixed(2)}×`);
}
