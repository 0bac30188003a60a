/**
 * Profiles Seed under closed-loop load (non-streaming, then streaming) with `node --cpu-prof`
 * on the Seed child, summarizes where its CPU goes, and writes the measured part as folded
 * stacks beside the profile, for a flame graph.
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { closedLoop } from '../lib/load.ts';
import { foldedStacks, summarizeProfile, type ProfileSummary } from '../lib/profile.ts';
import { startSeedServer, startSimulator } from '../lib/targets.ts';
import { requestFor, warmUp } from './overhead.ts';

export interface ProfileResult {
  file: string;
  /** The measured samples as folded stacks (flamegraph.pl, inferno, speedscope). */
  foldedFile?: string;
  requests: number;
  summary: ProfileSummary;
}

export async function runProfile(input: {
  durationSeconds: number;
  concurrency: number;
  workDirectory: string;
  log: (line: string) => void;
}): Promise<ProfileResult> {
  const directory = join(input.workDirectory, 'profile');
  mkdirSync(directory, { recursive: true });
  const simulator = await startSimulator();
  let requests = 0;
  let loadStart = 0;
  try {
    const seed = await startSeedServer({
      simulatorUrl: simulator.url,
      workDirectory: input.workDirectory,
      nodeArguments: ['--cpu-prof', `--cpu-prof-dir=${directory}`],
      name: 'seed (profiled)',
    });
    try {
      const target = { origin: seed.url, headers: seed.headers };
      // Warm up as the overhead runs do (a short warm-up profiles the JIT still compiling);
      // samples before `loadStart` are left out of the summary.
      for (const stream of [false, true]) await warmUp(target, stream, input.concurrency);
      loadStart = Number(process.hrtime.bigint() / 1_000n);
      for (const stream of [false, true]) {
        const result = await closedLoop({ request: requestFor(target, stream), connections: input.concurrency, durationSeconds: input.durationSeconds });
        requests += result.completed;
        input.log(`profile ${stream ? 'stream' : 'non-stream'}: ${result.requestsPerSecond.toFixed(0)} req/s`);
      }
    } finally {
      await seed.stop(15_000);
    }
  } finally {
    await simulator.stop();
  }
  const file = readdirSync(directory).find((name) => name.endsWith('.cpuprofile'));
  if (!file) throw new Error(`no .cpuprofile written in ${directory}`);
  const path = join(directory, file);
  const foldedFile = path.replace(/\.cpuprofile$/, '.folded');
  writeFileSync(foldedFile, foldedStacks(path, { fromMicroseconds: loadStart }));
  return { file: path, foldedFile, requests, summary: summarizeProfile(path, { fromMicroseconds: loadStart }) };
}
