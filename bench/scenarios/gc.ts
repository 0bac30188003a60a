/**
 * Scenario 5 — garbage collection at a fixed open-loop rate. The tail latency a Node proxy adds
 * is mostly its GC pauses, so this counts them: Seed and the minimal undici proxy, each with
 * bench/servers/gc-observer.mjs preloaded, take the same open-loop load (non-streaming, then
 * streaming); the observer reports every pause during the measured phase.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startNodeServer, type ServerProcess } from '../lib/children.ts';
import { openLoop } from '../lib/load.ts';
import { median } from '../lib/stats.ts';
import { startSeedServer } from '../lib/targets.ts';
import { requestFor } from './overhead.ts';

const OBSERVER = resolve(import.meta.dirname, '..', 'servers', 'gc-observer.mjs');

export interface GcPhase {
  target: 'seed' | 'undici';
  stream: boolean;
  requests: number;
  latencyP99Ms: number;
  /** Scavenges (young-generation collections) per 1 000 requests. */
  scavengesPerThousand: number;
  scavengeMedianMs: number;
  scavengeMaxMs: number;
  /** Mark-compact (major) collections and incremental marking steps in the phase. */
  majorCollections: number;
  /** Share of the phase's wall time spent in GC pauses of any kind, in percent. */
  pausedPercent: number;
}

interface ObservedPauses {
  seconds: number;
  pauses: Array<{ kind: string; ms: number }>;
}

async function observe(input: { server: ServerProcess; file: string; run: () => Promise<{ requests: number; p99: number }> }) {
  rmSync(input.file, { force: true });
  process.kill(input.server.pid, 'SIGWINCH');
  const { requests, p99 } = await input.run();
  process.kill(input.server.pid, 'SIGWINCH');
  for (let waited = 0; !existsSync(input.file); waited += 50) {
    if (waited > 5_000) throw new Error(`${input.server.name}: the GC observer wrote nothing to ${input.file}`);
    await sleep(50);
  }
  return { requests, p99, observed: JSON.parse(readFileSync(input.file, 'utf8')) as ObservedPauses };
}

export async function runGc(input: { ratePerSecond: number; durationSeconds: number; workDirectory: string; log: (line: string) => void }): Promise<GcPhase[]> {
  const simulator = await startNodeServer({ name: 'simulator', script: 'bench/servers/simulator.ts' });
  const files = { seed: join(input.workDirectory, 'gc-seed.json'), undici: join(input.workDirectory, 'gc-undici.json') };
  const servers: Array<{ id: 'seed' | 'undici'; server: ServerProcess; headers: Record<string, string> }> = [];
  try {
    const seed = await startSeedServer({
      simulatorUrl: simulator.url,
      workDirectory: input.workDirectory,
      nodeArguments: ['--import', OBSERVER],
      env: { SEED_BENCH_GC_OUT: files.seed },
      name: 'seed (gc observed)',
    });
    servers.push({ id: 'seed', server: seed, headers: seed.headers });
    const undici = await startNodeServer({
      name: 'undici proxy (gc observed)',
      script: 'bench/servers/undici-proxy.ts',
      nodeArguments: ['--import', OBSERVER],
      env: { UPSTREAM: simulator.url, SEED_BENCH_GC_OUT: files.undici },
    });
    servers.push({ id: 'undici', server: undici, headers: { 'content-type': 'application/json' } });

    const count = Math.round(input.ratePerSecond * input.durationSeconds);
    const phases: GcPhase[] = [];
    for (const stream of [false, true]) {
      for (const { id, server, headers } of servers) {
        const request = requestFor({ origin: server.url, headers }, stream);
        await openLoop({ request, ratePerSecond: input.ratePerSecond, count: Math.min(count, 1_000) });
        const { requests, p99, observed } = await observe({
          server,
          file: files[id],
          run: async () => {
            const result = await openLoop({ request, ratePerSecond: input.ratePerSecond, count });
            return { requests: result.completed, p99: result.latencyP99Ms };
          },
        });
        const scavenges = observed.pauses.filter((pause) => pause.kind === 'minor').map((pause) => pause.ms);
        const phase: GcPhase = {
          target: id,
          stream,
          requests,
          latencyP99Ms: p99,
          scavengesPerThousand: requests > 0 ? (1_000 * scavenges.length) / requests : Number.NaN,
          scavengeMedianMs: median(scavenges),
          scavengeMaxMs: scavenges.length ? Math.max(...scavenges) : Number.NaN,
          majorCollections: observed.pauses.filter((pause) => pause.kind === 'major' || pause.kind === 'incremental').length,
          pausedPercent: (100 * observed.pauses.reduce((sum, pause) => sum + pause.ms, 0)) / 1_000 / observed.seconds,
        };
        phases.push(phase);
        input.log(
          `gc ${id.padEnd(6)} ${stream ? 'stream    ' : 'non-stream'} ${phase.scavengesPerThousand.toFixed(1)} scavenges/1000 req, ` +
            `median ${phase.scavengeMedianMs.toFixed(2)} ms, max ${phase.scavengeMaxMs.toFixed(2)} ms, paused ${phase.pausedPercent.toFixed(1)}%, p99 ${p99.toFixed(2)} ms`,
        );
      }
    }
    return phases;
  } finally {
    for (const { server } of servers) await server.stop();
    await simulator.stop();
  }
}
