/**
 * Streaming with a paced upstream: Seed (every feature on) and the minimal undici proxy in front
 * of one simulator that sends each token `1 / tokensPerSecond` after the last, as a real model
 * does, so every event reaches the proxy in a read of its own. The overhead scenario's simulator
 * answers at once, so a stream's ~27 events come in a few reads, which puts the weight on a
 * gateway's per-call work; here the per-event path (a read, its decoding, a write) carries it, as
 * in production. Each target is warmed with `calls` calls, then the targets take turns (the order
 * rotated each round) for `rounds` rounds of `calls` closed-loop calls; each process's CPU (user +
 * system, from /proc, 10 ms ticks) over a round is divided by the calls and by the events the
 * client received.
 */
import { Pool } from 'undici';
import { countedCalls } from '../lib/load.ts';
import { sampleProcess } from '../lib/proc.ts';
import { median } from '../lib/stats.ts';
import { SIMULATOR_HEADERS, startSeedServer, startSimulator, startUndiciProxy, type MeasuredServer } from '../lib/targets.ts';
import { REPORTED_QUOTA } from '../lib/simulator-quota.ts';
import { requestFor } from './overhead.ts';

export type PacedTarget = 'seed' | 'undici';

export interface PacedReading {
  round: number;
  target: PacedTarget;
  cpuMicrosecondsPerCall: number;
  cpuMicrosecondsPerEvent: number;
  eventsPerCall: number;
  callsPerSecond: number;
}

export interface PacedResult {
  tokensPerSecond: number;
  connections: number;
  calls: number;
  rounds: number;
  readings: PacedReading[];
  /** Seed ÷ the proxy, CPU per call, round by round. */
  ratios: number[];
}

/** `count` streamed calls, `connections` at a time; the process's CPU and the events the client got. */
async function serve(server: MeasuredServer, count: number, connections: number): Promise<{ cpuMs: number; events: number; wallMs: number }> {
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

export async function runPaced(input: {
  tokensPerSecond: number;
  connections: number;
  calls: number;
  rounds: number;
  workDirectory: string;
  log: (line: string) => void;
}): Promise<PacedResult> {
  const { tokensPerSecond, connections, calls, rounds } = input;
  const simulator = await startSimulator({
    name: 'paced-simulator',
    env: { SEED_BENCH_SIMULATOR: JSON.stringify({ ...REPORTED_QUOTA, defaults: { ...REPORTED_QUOTA.defaults, tokensPerSecond } }) },
  });
  const servers: Array<[PacedTarget, MeasuredServer]> = [];
  const readings: PacedReading[] = [];
  try {
    servers.push(['seed', await startSeedServer({ simulatorUrl: simulator.url, workDirectory: input.workDirectory, name: 'paced-seed' })]);
    servers.push(['undici', { ...(await startUndiciProxy({ simulatorUrl: simulator.url, name: 'paced-undici' })), headers: { ...SIMULATOR_HEADERS } }]);
    for (const [, server] of servers) await serve(server, calls, connections);
    for (let round = 1; round <= rounds; round += 1) {
      // A rotated order, so neither target always runs right after the other.
      const order = round % 2 === 1 ? servers : [...servers].reverse();
      for (const [target, server] of order) {
        const { cpuMs, events, wallMs } = await serve(server, calls, connections);
        const reading: PacedReading = {
          round,
          target,
          cpuMicrosecondsPerCall: (cpuMs * 1000) / calls,
          cpuMicrosecondsPerEvent: (cpuMs * 1000) / events,
          eventsPerCall: events / calls,
          callsPerSecond: (calls * 1000) / wallMs,
        };
        readings.push(reading);
        input.log(
          `paced round ${round} ${target}: ${reading.cpuMicrosecondsPerCall.toFixed(0)} µs CPU per call, ${reading.cpuMicrosecondsPerEvent.toFixed(1)} per event, ` +
            `${reading.eventsPerCall.toFixed(1)} events per call, ${reading.callsPerSecond.toFixed(0)} calls/s`,
        );
      }
    }
  } finally {
    await Promise.all(servers.map(([, server]) => server.stop()));
    await simulator.stop();
  }
  const of = (target: PacedTarget) => readings.filter((reading) => reading.target === target);
  const ratios = of('seed').map((seed, index) => seed.cpuMicrosecondsPerCall / (of('undici')[index]?.cpuMicrosecondsPerCall ?? Number.NaN));
  return { tokensPerSecond, connections, calls, rounds, readings, ratios };
}

/** Per target: median CPU per call and per event, and events per call, over the rounds. */
export function pacedSummary(result: PacedResult): Array<{ target: PacedTarget; perCall: number; perEvent: number; eventsPerCall: number }> {
  return (['seed', 'undici'] as const).map((target) => {
    const rows = result.readings.filter((reading) => reading.target === target);
    return {
      target,
      perCall: median(rows.map((row) => row.cpuMicrosecondsPerCall)),
      perEvent: median(rows.map((row) => row.cpuMicrosecondsPerEvent)),
      eventsPerCall: median(rows.map((row) => row.eventsPerCall)),
    };
  });
}
