/**
 * Scenario 6 — teacher jobs against a TPM ceiling (the item 5): how much of an upstream's
 * token quota a generation job gets to use, and how many 429s it costs, against a naive client.
 *
 * The simulator enforces a TPM ceiling the way Azure does (short fixed windows, prompt estimate +
 * max_tokens charged per request) and answers every call after a fixed latency. Two clients, one
 * after the other, each for the same time and with the same calls in flight:
 *
 * - **naive:** the official `openai` SDK straight at the upstream, a fixed number of workers each
 *   sending the next prompt as soon as the last one ended; the SDK's own retries (2, honouring
 *   `retry-after-ms` / `retry-after`) are all it does about 429s.
 * - **Seed job:** `runGenerateJob` (what `seed jobs generate` runs) through a Seed gateway whose
 *   deployment carries the provider's published TPM, at batch priority.
 *
 * Share of the ceiling = tokens the upstream admitted (its own count) ÷ what the ceiling allows in
 * the measured time; the upstream's 429 rate = refused ÷ received requests; the client-visible
 * 429s are what the client's code had to deal with.
 */
import OpenAI from 'openai';
import { join } from 'node:path';
import { readFileSync, writeFileSync } from 'node:fs';
import { type ServerProcess } from '../lib/children.ts';
import { startSeedServer, startSimulator } from '../lib/targets.ts';
import { runGenerateJob } from '../../src/jobs/index.ts';
import type { PromptItem } from '../../src/jobs/index.ts';

export interface JobsOptions {
  /** Measured seconds per client. */
  durationSeconds: number;
  /** Calls in flight, for both clients. */
  concurrency: number;
  workDirectory: string;
  log: (line: string) => void;
}

export interface JobsClientResult {
  client: 'naive' | 'seed';
  label: string;
  /** Prompts answered within the measured time. */
  completed: number;
  /** Prompts the client gave up on (retries exhausted or a non-retryable error). */
  failed: number;
  /** 429 responses the client's own code received (the SDK's retries included). */
  clientRateLimited: number;
  upstreamRequests: number;
  upstreamRateLimited: number;
  upstreamAdmittedTokens: number;
  /** upstreamAdmittedTokens ÷ (tpm × seconds / 60). */
  shareOfCeiling: number;
  seconds: number;
}

export interface JobsResult {
  tpm: number;
  tokenWindowMs: number;
  latencyMs: number;
  maxTokens: number;
  concurrency: number;
  durationSeconds: number;
  clients: JobsClientResult[];
}

const OPENAI_VERSION = (JSON.parse(readFileSync(new URL('../../node_modules/openai/package.json', import.meta.url), 'utf8')) as { version: string }).version;
const TPM = 60_000;
const TOKEN_WINDOW_MS = 2_000;
const LATENCY_MS = 100;
const MAX_TOKENS = 64;
const MODEL = 'gpt-4o-mini';

interface UpstreamStats {
  requests: number;
  rateLimited: number;
  admittedTokens: number;
}

async function upstreamStats(url: string): Promise<UpstreamStats> {
  const stats = (await (await fetch(`${url}/_sim/stats`)).json()) as UpstreamStats;
  return { requests: stats.requests, rateLimited: stats.rateLimited, admittedTokens: stats.admittedTokens };
}

function prompt(index: number): string {
  return `Write one short, true sentence about the number ${index}.`;
}

/** Waits until the upstream's current token window has ended, so both clients start on a fresh one. */
async function freshWindow(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, TOKEN_WINDOW_MS - (Date.now() % TOKEN_WINDOW_MS) + 5));
}

async function naive(input: { simulatorUrl: string; options: JobsOptions }): Promise<Omit<JobsClientResult, 'upstreamRequests' | 'upstreamRateLimited' | 'upstreamAdmittedTokens' | 'shareOfCeiling'> & { at: () => Promise<UpstreamStats> }> {
  let rateLimited = 0;
  const client = new OpenAI({
    baseURL: `${input.simulatorUrl}/v1`,
    apiKey: 'sk-bench-simulator',
    fetch: async (...request: Parameters<typeof fetch>) => {
      const response = await fetch(...request);
      if (response.status === 429) rateLimited += 1;
      return response;
    },
  });
  let next = 0;
  let completed = 0;
  let failed = 0;
  const deadline = performance.now() + input.options.durationSeconds * 1_000;
  let snapshot: Promise<UpstreamStats> | undefined;
  const worker = async () => {
    while (performance.now() < deadline) {
      const index = next++;
      try {
        await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: prompt(index) }], max_tokens: MAX_TOKENS });
        if (performance.now() <= deadline) completed += 1;
      } catch {
        if (performance.now() <= deadline) failed += 1;
      }
    }
  };
  const started = performance.now();
  const timer = setTimeout(() => (snapshot = upstreamStats(input.simulatorUrl)), input.options.durationSeconds * 1_000);
  await Promise.all(Array.from({ length: input.options.concurrency }, worker));
  clearTimeout(timer);
  const seconds = Math.min((performance.now() - started) / 1_000, input.options.durationSeconds);
  return { client: 'naive', label: `openai SDK ${OPENAI_VERSION} straight at the upstream, ${input.options.concurrency} workers, its default retries`, completed, failed, clientRateLimited: rateLimited, seconds, at: () => snapshot ?? upstreamStats(input.simulatorUrl) };
}

export async function runJobs(options: JobsOptions): Promise<JobsResult> {
  const simulator = await startSimulator({
    name: 'simulator (TPM ceiling)',
    env: { SEED_BENCH_SIMULATOR: JSON.stringify({ models: { [MODEL]: { latencyMs: LATENCY_MS, limits: { tpm: TPM, tokenWindowMs: TOKEN_WINDOW_MS } } } }) },
  });
  let seed: ServerProcess | undefined;
  const clients: JobsClientResult[] = [];
  try {
    const configFile = join(options.workDirectory, 'seed-jobs.yaml');
    writeFileSync(
      configFile,
      `
server: { host: 127.0.0.1, port: 0 }
store: { url: "sqlite:${join(options.workDirectory, 'seed-jobs.db')}" }
ledger: { spillDirectory: "${join(options.workDirectory, 'spill-jobs')}" }
limits: { store: memory }
deployments:
  teacher-upstream:
    provider: openai
    baseUrl: ${simulator.url}/v1
    model: ${MODEL}
    apiKey: sk-bench-simulator
    terms: openai
    # The provider's published quota, as an operator would enter it.
    limits: { tpm: ${TPM} }
routes:
  teacher: { deployments: [{ deployment: teacher-upstream }], timeoutMs: 120000 }
`,
    );
    seed = await startSeedServer({ simulatorUrl: simulator.url, workDirectory: options.workDirectory, configFile, name: 'seed (jobs)' });
    const seconds = options.durationSeconds;
    const ceiling = (TPM * seconds) / 60;
    const finish = (partial: Omit<JobsClientResult, 'upstreamRequests' | 'upstreamRateLimited' | 'upstreamAdmittedTokens' | 'shareOfCeiling'>, before: UpstreamStats, after: UpstreamStats): JobsClientResult => {
      const result = {
        ...partial,
        upstreamRequests: after.requests - before.requests,
        upstreamRateLimited: after.rateLimited - before.rateLimited,
        upstreamAdmittedTokens: after.admittedTokens - before.admittedTokens,
        shareOfCeiling: (after.admittedTokens - before.admittedTokens) / ceiling,
      };
      options.log(
        `jobs ${result.client.padEnd(5)} ${result.completed} prompts answered in ${seconds} s, ${result.failed} given up, ` +
          `${(100 * result.shareOfCeiling).toFixed(1)}% of the TPM ceiling, upstream 429s ${result.upstreamRateLimited} of ${result.upstreamRequests} requests, ` +
          `client-visible 429s ${result.clientRateLimited}`,
      );
      return result;
    };

    // Naive first, then Seed, each on a fresh token window; a pause between lets the windows the
    // first one used expire.
    await freshWindow();
    const naiveBefore = await upstreamStats(simulator.url);
    const naiveRun = await naive({ simulatorUrl: simulator.url, options });
    clients.push(finish(naiveRun, naiveBefore, await naiveRun.at()));

    await new Promise((resolve) => setTimeout(resolve, 2 * TOKEN_WINDOW_MS));
    await freshWindow();
    const items: PromptItem[] = Array.from({ length: 100_000 }, (_, index) => ({ id: String(index), messages: [{ role: 'user', content: prompt(index) }] }));
    const abort = new AbortController();
    let seedSnapshot: Promise<UpstreamStats> | undefined;
    const timer = setTimeout(() => {
      seedSnapshot = upstreamStats(simulator.url);
      abort.abort();
    }, seconds * 1_000);
    const seedBefore = await upstreamStats(simulator.url);
    let rateLimited = 0;
    const summary = await runGenerateJob({
      gateway: seed.url,
      route: 'teacher',
      purpose: 'train',
      items,
      jobId: 'bench-jobs',
      concurrency: options.concurrency,
      maxTokens: MAX_TOKENS,
      signal: abort.signal,
      onResult: () => undefined,
    });
    clearTimeout(timer);
    rateLimited = summary.rateLimited;
    clients.push(
      finish(
        {
          client: 'seed',
          label: `seed jobs generate through Seed (batch priority), ${options.concurrency} in flight`,
          completed: summary.succeeded,
          failed: summary.failed,
          clientRateLimited: rateLimited,
          seconds,
        },
        seedBefore,
        await (seedSnapshot ?? upstreamStats(simulator.url)),
      ),
    );
    return { tpm: TPM, tokenWindowMs: TOKEN_WINDOW_MS, latencyMs: LATENCY_MS, maxTokens: MAX_TOKENS, concurrency: options.concurrency, durationSeconds: seconds, clients };
  } finally {
    await seed?.stop();
    await simulator.stop();
  }
}
