/**
 * Scenario "alloc" — bytes allocated per request, and where, for the buffered JSON proxy, Seed
 * without limits or virtual keys, and Seed as the overhead runs configure it. Each server runs
 * with bench/servers/alloc-observer.mjs (V8's sampling heap profiler, freed objects kept), is
 * warmed up, and is profiled over a fixed number of closed-loop requests per mode: once for what
 * it allocates, then once more for what of it no scavenge frees (what is promoted to the old generation).
 *
 * Unlike CPU time on a shared machine, what a call allocates hardly depends on what else the
 * machine does: two runs of the same build agree to a few percent, so a change of a few hundred
 * bytes per call shows here when its CPU effect is lost in the noise. Allocation is not the whole
 * cost (a scavenge's price is what survives it), but every byte is written once and then collected.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type ServerProcess } from '../lib/children.ts';
import { closedLoop } from '../lib/load.ts';
import { frameLabel } from '../lib/profile.ts';
import { OPEN_SEED, SIMULATOR_HEADERS, startSeedServer, type MeasuredServer, startSimulator, startBenchNodeServer } from '../lib/targets.ts';
import { requestFor, warmUp } from './overhead.ts';

const OBSERVER = resolve(import.meta.dirname, '..', 'servers', 'alloc-observer.mjs');

/** A node of V8's sampling heap profile (`HeapProfiler.stopSampling`). */
export interface HeapProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  /** Bytes allocated by this frame itself, estimated from the samples (V8 scales them). */
  selfSize: number;
  children: HeapProfileNode[];
}

export interface AllocationSite {
  site: string;
  bytesPerRequest: number;
}

export interface AllocMode {
  stream: boolean;
  requests: number;
  bytesPerRequest: number;
  /** Every site of this server, most bytes first. */
  sites: AllocationSite[];
  /**
   * Bytes per request no scavenge freed (a second profile over as many requests, samples of
   * objects a scavenge freed dropped, a scavenge forced at its end): what was promoted to the old
   * generation, or still alive at the end; what major GCs mark and free. Absent in older runs.
   */
  survived?: { requests: number; bytesPerRequest: number; sites: AllocationSite[] };
}

export interface AllocServerResult {
  id: 'buffered' | 'seed-open' | 'seed';
  label: string;
  modes: AllocMode[];
}

export interface AllocResult {
  requestsPerMode: number;
  concurrency: number;
  servers: AllocServerResult[];
  /** Seed's `server.keepWarmBytesPerSecond` in this scenario (absent in runs before it was set to 0 here). */
  seedKeepWarmBytesPerSecond?: number;
}

/**
 * The keep-warm timer (src/young-generation.ts) allocates 2 MiB a second whatever the load; over
 * a profile of a few seconds that read as 1.0–1.25 KiB more per call (the 22:27 run of
 * 2026-12-05). It is the process's allocation, not a call's, so the profiles run without it.
 */
const SEED_KEEP_WARM = 0;

/** Bytes per request by allocation site (frame), and in all, from a sampling heap profile's tree. */
export function allocationSites(head: HeapProfileNode, requests: number): { bytesPerRequest: number; sites: AllocationSite[] } {
  const bySite = new Map<string, number>();
  let total = 0;
  const pending = [head];
  for (let node = pending.pop(); node !== undefined; node = pending.pop()) {
    if (node.selfSize > 0) {
      const site = frameLabel(node.callFrame);
      bySite.set(site, (bySite.get(site) ?? 0) + node.selfSize);
      total += node.selfSize;
    }
    pending.push(...node.children);
  }
  const sites = [...bySite.entries()]
    .map(([site, bytes]) => ({ site, bytesPerRequest: bytes / requests }))
    .sort((left, right) => right.bytesPerRequest - left.bytesPerRequest);
  return { bytesPerRequest: total / requests, sites };
}

async function readProfile(file: string, server: ServerProcess): Promise<HeapProfileNode> {
  for (let waited = 0; !existsSync(file); waited += 100) {
    if (waited > 30_000) throw new Error(`${server.name}: the allocation observer wrote nothing to ${file}:\n${server.stderrTail()}`);
    await new Promise((resolveWait) => setTimeout(resolveWait, 100));
  }
  return (JSON.parse(readFileSync(file, 'utf8')) as { head: HeapProfileNode }).head;
}

export async function runAlloc(input: { requests: number; concurrency: number; workDirectory: string; log: (line: string) => void }): Promise<AllocResult> {
  const directory = join(input.workDirectory, 'alloc');
  mkdirSync(directory, { recursive: true });
  const started: ServerProcess[] = [];
  const servers: AllocServerResult[] = [];
  try {
    const simulator = await startSimulator();
    started.push(simulator);
    const profileFile = (id: string) => join(directory, `${id}.heapprofile`);
    // --expose-gc: the survived profile forces a scavenge before it is written (alloc-observer.mjs).
    const observed = (id: string) => ({ nodeArguments: ['--expose-gc', '--import', OBSERVER], env: { SEED_BENCH_ALLOC_OUT: profileFile(id) } });
    const candidates: Array<{ id: AllocServerResult['id']; label: string; start: () => Promise<MeasuredServer> }> = [
      {
        id: 'buffered',
        label: 'buffered JSON proxy (Fastify)',
        start: async () => {
          const server = await startBenchNodeServer({
            name: 'buffered-proxy (allocations observed)',
            script: 'bench/servers/buffered-proxy.ts',
            nodeArguments: observed('buffered').nodeArguments,
            env: { UPSTREAM: simulator.url, ...observed('buffered').env },
          });
          return { ...server, headers: { ...SIMULATOR_HEADERS } };
        },
      },
      {
        id: 'seed-open',
        label: 'Seed without limits or virtual keys',
        start: () =>
          startSeedServer({ simulatorUrl: simulator.url, workDirectory: join(directory, 'seed-open'), name: 'seed-open (allocations observed)', ...OPEN_SEED, keepWarmBytesPerSecond: SEED_KEEP_WARM, ...observed('seed-open') }),
      },
      {
        id: 'seed',
        label: 'Seed, every feature on (as in the overhead runs)',
        start: () => startSeedServer({ simulatorUrl: simulator.url, workDirectory: join(directory, 'seed'), name: 'seed (allocations observed)', keepWarmBytesPerSecond: SEED_KEEP_WARM, ...observed('seed') }),
      },
    ];
    for (const candidate of candidates) {
      if (candidate.id !== 'buffered') mkdirSync(join(directory, candidate.id), { recursive: true });
      const server = await candidate.start();
      started.push(server);
      const target = { origin: server.url, headers: server.headers };
      const modes: AllocMode[] = [];
      const profiled = async (stream: boolean, mode: 'allocated' | 'survived') => {
        const file = profileFile(candidate.id);
        rmSync(file, { force: true });
        writeFileSync(`${file}.mode`, mode);
        process.kill(server.pid, 'SIGUSR2');
        // The signal is handled between two turns of the server's event loop; a request or two
        // either side of the start does not move a per-request figure over thousands.
        await new Promise((resolveWait) => setTimeout(resolveWait, 200));
        const result = await closedLoop({ request: requestFor(target, stream), connections: input.concurrency, amount: input.requests });
        if (result.failures > 0) throw new Error(`${server.name}: ${result.failures} failed requests:\n${server.stderrTail()}`);
        process.kill(server.pid, 'SIGUSR2');
        return { requests: result.completed, ...allocationSites(await readProfile(file, server), result.completed) };
      };
      for (const stream of [false, true]) {
        await warmUp(target, stream, input.concurrency);
        const allocated = await profiled(stream, 'allocated');
        const survived = await profiled(stream, 'survived');
        modes.push({ stream, ...allocated, survived });
        input.log(
          `alloc ${candidate.id} ${stream ? 'stream' : 'non-stream'}: ${(allocated.bytesPerRequest / 1024).toFixed(1)} KiB per request over ${allocated.requests} requests, ` +
            `${(survived.bytesPerRequest / 1024).toFixed(2)} KiB of it freed by no scavenge`,
        );
      }
      servers.push({ id: candidate.id, label: candidate.label, modes });
      await server.stop();
    }
    return { requestsPerMode: input.requests, concurrency: input.concurrency, servers, seedKeepWarmBytesPerSecond: SEED_KEEP_WARM };
  } finally {
    for (const server of started.reverse()) await server.stop();
  }
}
