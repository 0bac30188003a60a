/**
 * Scenario 4 — memory soak: one fresh Seed process (auth, limits, ledger on) serves `requests`
 * requests in twenty equal chunks (alternating non-streaming and streaming) at fixed
 * concurrency; RSS is read after each chunk, once as it is and once after a forced full GC.
 * Growth compares the end with the RSS after the first two chunks (the warm-up), both after GC.
 * At the end every answered call must be a row in the ledger.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { closedLoop } from '../lib/load.ts';
import { sampleProcess } from '../lib/proc.ts';
import { startSeedServer, startSimulator } from '../lib/targets.ts';
import { requestFor } from './overhead.ts';

export interface SoakResult {
  requests: number;
  completed: number;
  failures: number;
  seconds: number;
  rssAfterChunkMiB: number[];
  /** RSS after each chunk once a full GC has run (SIGUSR2 to a child started with --expose-gc). */
  rssAfterGcMiB: number[];
  /** Rows in the ledger after Seed stopped (it flushes at shutdown); must equal `completed`. */
  ledgerRows: number;
  warmRssMiB: number;
  endRssMiB: number;
  peakRssMiB: number;
  growthPercent: number;
}

const CHUNKS = 20;

export async function runSoak(input: { requests: number; concurrency: number; workDirectory: string; log: (line: string) => void }): Promise<SoakResult> {
  const simulator = await startSimulator();
  const started = performance.now();
  try {
    // A directory of its own: the ledger file must hold this run's calls only.
    const workDirectory = join(input.workDirectory, 'soak');
    mkdirSync(workDirectory, { recursive: true });
    const seed = await startSeedServer({ simulatorUrl: simulator.url, workDirectory, name: 'seed (soak)', nodeArguments: ['--expose-gc'] });
    let ledgerRows = Number.NaN;
    try {
      const target = { origin: seed.url, headers: seed.headers };
      const rssAfterChunkMiB: number[] = [];
      const rssAfterGcMiB: number[] = [];
      let completed = 0;
      let failures = 0;
      const perChunk = Math.ceil(input.requests / CHUNKS);
      for (let chunk = 0; chunk < CHUNKS; chunk += 1) {
        const result = await closedLoop({ request: requestFor(target, chunk % 2 === 1), connections: input.concurrency, amount: perChunk });
        completed += result.completed;
        failures += result.failures;
        const rss = (sampleProcess(seed.pid)?.rssKiB ?? Number.NaN) / 1024;
        rssAfterChunkMiB.push(rss);
        process.kill(seed.pid, 'SIGUSR2');
        await new Promise((resolveWait) => setTimeout(resolveWait, 1_000));
        const rssAfterGc = (sampleProcess(seed.pid)?.rssKiB ?? Number.NaN) / 1024;
        rssAfterGcMiB.push(rssAfterGc);
        input.log(`soak chunk ${chunk + 1}/${CHUNKS}: ${completed} requests, ${result.requestsPerSecond.toFixed(0)} req/s, RSS ${rss.toFixed(1)} MiB (${rssAfterGc.toFixed(1)} after GC)`);
      }
      const warmRssMiB = rssAfterGcMiB[1] ?? Number.NaN;
      const endRssMiB = rssAfterGcMiB[CHUNKS - 1] ?? Number.NaN;
      const peakRssMiB = (sampleProcess(seed.pid)?.peakRssKiB ?? Number.NaN) / 1024;
      await seed.stop(60_000);
      const ledger = new Database(join(workDirectory, 'seed-ledger.db'), { readonly: true, fileMustExist: true });
      try {
        ledgerRows = (ledger.prepare('SELECT count(*) AS n FROM calls').get() as { n: number }).n;
      } finally {
        ledger.close();
      }
      input.log(`soak: ${ledgerRows} ledger rows for ${completed} answered calls`);
      return {
        requests: perChunk * CHUNKS,
        completed,
        failures,
        seconds: (performance.now() - started) / 1_000,
        rssAfterChunkMiB,
        rssAfterGcMiB,
        ledgerRows,
        warmRssMiB,
        endRssMiB,
        peakRssMiB,
        growthPercent: (100 * (endRssMiB - warmRssMiB)) / warmRssMiB,
      };
    } finally {
      await seed.stop();
    }
  } finally {
    await simulator.stop();
  }
}
