/**
 * Scenario 4 — memory soak: one fresh Seed process serves `requests` requests in ten equal
 * chunks (alternating non-streaming and streaming) at fixed concurrency; RSS is read after each
 * chunk. Growth compares the end with the RSS after the first two chunks (the warm-up).
 */
import { startNodeServer } from '../lib/children.ts';
import { closedLoop } from '../lib/load.ts';
import { sampleProcess } from '../lib/proc.ts';
import { startSeedServer } from '../lib/targets.ts';
import { requestFor } from './overhead.ts';

export interface SoakResult {
  requests: number;
  completed: number;
  failures: number;
  seconds: number;
  rssAfterChunkMiB: number[];
  warmRssMiB: number;
  endRssMiB: number;
  peakRssMiB: number;
  growthPercent: number;
}

const CHUNKS = 10;

export async function runSoak(input: { requests: number; concurrency: number; workDirectory: string; log: (line: string) => void }): Promise<SoakResult> {
  const simulator = await startNodeServer({ name: 'simulator', script: 'bench/servers/simulator.ts' });
  const started = performance.now();
  try {
    const seed = await startSeedServer({ simulatorUrl: simulator.url, workDirectory: input.workDirectory, name: 'seed (soak)' });
    try {
      const target = { origin: seed.url, headers: seed.headers };
      const rssAfterChunkMiB: number[] = [];
      let completed = 0;
      let failures = 0;
      const perChunk = Math.ceil(input.requests / CHUNKS);
      for (let chunk = 0; chunk < CHUNKS; chunk += 1) {
        const result = await closedLoop({ request: requestFor(target, chunk % 2 === 1), connections: input.concurrency, amount: perChunk });
        completed += result.completed;
        failures += result.failures;
        const rss = (sampleProcess(seed.pid)?.rssKiB ?? Number.NaN) / 1024;
        rssAfterChunkMiB.push(rss);
        input.log(`soak chunk ${chunk + 1}/${CHUNKS}: ${completed} requests, ${result.requestsPerSecond.toFixed(0)} req/s, RSS ${rss.toFixed(1)} MiB`);
      }
      const warmRssMiB = rssAfterChunkMiB[1] ?? Number.NaN;
      const endRssMiB = rssAfterChunkMiB[CHUNKS - 1] ?? Number.NaN;
      return {
        requests: perChunk * CHUNKS,
        completed,
        failures,
        seconds: (performance.now() - started) / 1_000,
        rssAfterChunkMiB,
        warmRssMiB,
        endRssMiB,
        peakRssMiB: (sampleProcess(seed.pid)?.peakRssKiB ?? Number.NaN) / 1024,
        growthPercent: (100 * (endRssMiB - warmRssMiB)) / warmRssMiB,
      };
    } finally {
      await seed.stop();
    }
  } finally {
    await simulator.stop();
  }
}
