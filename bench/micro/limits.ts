/**
 * Micro-benchmark of a call's limits as the gateway runs them: admission (estimate, one reserve
 * of the caller's key, team and org with the deployment's quota), the first attempt's
 * `reserveDeployment`, the `x-ratelimit-*` headers and the settle, on the in-memory store, with
 * the overhead benchmark's limits (rpm, tpm and usd/day on each scope, rpm/tpm on the
 * deployment: 11 buckets per call).
 *
 *   node bin/run-ts.mjs bench/micro/limits.ts [--baseline REF] [--rounds 9] [--milliseconds 300]
 *                                              [--in-flight 50] [--garbage 48]
 *
 * `--in-flight` calls are kept going at once, each settled a few calls after it was admitted,
 * and every call allocates `--garbage` KB of short-lived objects besides the limits' own: in
 * the server the limits' state competes with a call's other ~50 KB for the caches and the young
 * generation, which a tight loop hides (docs/benchmark-log.md, 2026-12-04 (03:14–), item 3: 6.7 µs per call in
 * a tight loop, ~40 in the server).
 *
 * With `--baseline`, the limits of another commit (its `src/`, extracted with `git archive`) are
 * measured in the same process, the two alternating round by round; the table gives each one's
 * median µs and bytes per call and the median of the per-round ratios. Bytes per call are read
 * from V8's heap statistics across each round (allocation without the garbage pad). The
 * machine is usually shared and noisy: only ratios within one run mean much.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { getHeapStatistics } from 'node:v8';
import { format, median } from '../lib/stats.ts';
import type * as AdmissionModule from '../../src/limits/admission.ts';
import type * as LimiterModule from '../../src/limits/limiter.ts';
import type * as MemoryStoreModule from '../../src/limits/memory-store.ts';
import type { Admission, AdmissionRequest, Caller } from '../../src/gateway/hooks.ts';
import type { Deployment, Route } from '../../src/routing/route-table.ts';
import type { LimitScope } from '../../src/limits/buckets.ts';
import { CallAbort } from '../../src/abort.ts';

const { values } = parseArgs({
  options: {
    baseline: { type: 'string' },
    rounds: { type: 'string', default: '9' },
    milliseconds: { type: 'string', default: '300' },
    'in-flight': { type: 'string', default: '50' },
    garbage: { type: 'string', default: '48' },
  },
});
const rounds = Number(values.rounds);
const roundMs = Number(values.milliseconds);
const inFlight = Number(values['in-flight']);
const garbageKb = Number(values.garbage);
for (const [name, value] of [['rounds', rounds], ['milliseconds', roundMs], ['in-flight', inFlight], ['garbage', garbageKb]] as const) {
  if (!Number.isInteger(value) || value < (name === 'garbage' ? 0 : 1)) throw new Error(`--${name} must be a whole number${name === 'garbage' ? '' : ' above 0'}`);
}

interface Version {
  readonly name: string;
  readonly admission: Admission;
  readonly deployment: Deployment;
}

/** Limits nothing in the run reaches, as in the overhead benchmark (bench/lib/targets.ts). */
const UNREACHED = Object.freeze({ rpm: 100_000_000, tpm: 100_000_000_000, usdPerDay: 1_000_000 });

async function loadVersion(name: string, source: string): Promise<Version> {
  const load = <T>(path: string): Promise<T> => import(pathToFileURL(join(source, path)).href) as Promise<T>;
  const { createLimitAdmission } = await load<typeof AdmissionModule>('limits/admission.ts');
  const { Limiter } = await load<typeof LimiterModule>('limits/limiter.ts');
  const { MemoryLimitStore } = await load<typeof MemoryStoreModule>('limits/memory-store.ts');
  const limiter = new Limiter({ store: new MemoryLimitStore(), onUnavailable: 'closed' });
  const deployment: Deployment = Object.freeze({
    name: 'sim-openai',
    provider: 'openai',
    baseUrl: 'http://127.0.0.1:1',
    model: 'gpt-4o-mini',
    apiKey: undefined,
    headers: {},
    region: 'eu',
    options: {},
    terms: undefined,
    limits: Object.freeze({ rpm: 100_000_000, tpm: 100_000_000_000 }),
    pricing: undefined,
    timeoutMs: undefined,
  });
  // A fixed price per token: the server prices with its cost model, which is not the limits' work.
  const price = ({ promptTokens, completionTokens }: { promptTokens: number; completionTokens: number }) =>
    promptTokens * 1.5e-7 + completionTokens * 6e-7;
  return { name, admission: createLimitAdmission({ limiter, price }), deployment };
}

function requestFor(deployment: Deployment): AdmissionRequest {
  const scopes: LimitScope[] = (['key', 'team', 'org'] as const).map((owner) => Object.freeze({ owner, id: `${owner}-1`, limits: UNREACHED }));
  const caller: Caller = Object.freeze({
    keyId: 'key-1',
    teamId: 'team-1',
    orgId: 'org-1',
    region: null,
    allowedRoutes: null,
    storePayloads: false,
    limits: Object.freeze(scopes),
  });
  const route: Route = Object.freeze({
    name: 'gpt-4o-mini',
    description: undefined,
    targets: Object.freeze([Object.freeze({ deployment, weight: 1 })]),
    fallbacks: [],
    retry: { maxAttempts: 1, initialDelayMs: 0, maxDelayMs: 0, maxRetryAfterMs: 0 },
    timeoutMs: 60_000,
    defaultMaxTokens: undefined,
    hidden: false,
  });
  return {
    caller,
    route,
    endpoint: 'chat.completions',
    // The overhead benchmark's request.
    body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hello' }], max_tokens: 32 },
    purpose: 'serve',
    priority: 'interactive',
    deadlineAt: Date.now() + 3_600_000,
    signal: new CallAbort(),
  };
}

/** Short-lived objects, about `garbageKb` KB per call, kept until the call settles as a call's state is. */
function garbage(): unknown[] {
  const objects: unknown[] = [];
  // ~64 bytes per object with its slot in the array.
  for (let index = 0; index < garbageKb * 16; index += 1) objects.push({ index, text: 'x', next: null });
  return objects;
}

const USAGE = Object.freeze({ promptTokens: 8, completionTokens: 24, cachedTokens: 0, costUsd: 1.6e-5 });

/**
 * Runs calls for about `milliseconds`, `inFlight` at a time: each admitted call settles once
 * `inFlight` newer ones have been admitted. Returns µs per call and heap bytes per call.
 */
async function measure(version: Version, request: AdmissionRequest, milliseconds: number): Promise<{ micros: number; bytes: number }> {
  const pending: Array<{ settle(usage: typeof USAGE): void; pad: unknown[] }> = [];
  let calls = 0;
  let limitsNanoseconds = 0;
  let allocated = 0;
  const until = performance.now() + milliseconds;
  while (performance.now() < until) {
    for (let batch = 0; batch < 100; batch += 1) {
      const pad = garbage();
      const heapBefore = heapUsed();
      const started = process.hrtime.bigint();
      const ticket = await version.admission.admit(request);
      await ticket.reserveDeployment?.(version.deployment);
      ticket.headers?.();
      pending.push({ settle: (usage) => ticket.settle(usage), pad });
      if (pending.length > inFlight) pending.shift()?.settle(USAGE);
      limitsNanoseconds += Number(process.hrtime.bigint() - started);
      const heapAfter = heapUsed();
      // A scavenge in between makes the difference negative: that call is left out of the bytes.
      if (heapAfter >= heapBefore) allocated += heapAfter - heapBefore;
      calls += 1;
    }
  }
  for (const call of pending.splice(0)) call.settle(USAGE);
  return { micros: limitsNanoseconds / calls / 1_000, bytes: allocated / calls };
}

/** V8's used heap, without `process.memoryUsage()`'s read of the RSS. */
function heapUsed(): number {
  return getHeapStatistics().used_heap_size;
}

const versions: Version[] = [];
let baselineDirectory: string | undefined;
if (values.baseline !== undefined) {
  // Inside the checkout, so the extracted sources resolve this checkout's node_modules.
  baselineDirectory = join(process.cwd(), '.scratch', `limits-baseline-${process.pid}`);
  mkdirSync(baselineDirectory, { recursive: true });
  const archive = execFileSync('git', ['archive', values.baseline, 'src'], { maxBuffer: 256 * 1024 * 1024 });
  execFileSync('tar', ['-x', '-C', baselineDirectory], { input: archive });
  versions.push(await loadVersion(`baseline (${values.baseline})`, join(baselineDirectory, 'src')));
}
versions.push(await loadVersion('current', join(process.cwd(), 'src')));

try {
  const requests = versions.map((version) => requestFor(version.deployment));
  console.log(`node ${process.version}, ${rounds} rounds of ~${roundMs} ms per version, ${inFlight} calls in flight, ${garbageKb} KB of other garbage per call\n`);
  // Warm-up: long enough for the optimizing compiler to settle on every version.
  for (const [index, version] of versions.entries()) await measure(version, requests[index] as AdmissionRequest, 2_000);
  const micros = versions.map((): number[] => []);
  const bytes = versions.map((): number[] => []);
  const ratios: number[] = [];
  for (let round = 0; round < rounds; round += 1) {
    // Alternate which version goes first, so drift in the machine's load does not favour one.
    const order = round % 2 === 0 ? versions.map((_, index) => index) : versions.map((_, index) => versions.length - 1 - index);
    const results: number[] = [];
    for (const index of order) {
      const result = await measure(versions[index] as Version, requests[index] as AdmissionRequest, roundMs);
      results[index] = result.micros;
      micros[index]?.push(result.micros);
      bytes[index]?.push(result.bytes);
    }
    if (versions.length > 1) ratios.push((results[1] as number) / (results[0] as number));
  }
  console.log(['version', 'µs per call', 'bytes per call'].join(' | '));
  console.log('---|---|---');
  versions.forEach((version, index) => console.log([version.name, format(median(micros[index] ?? []), 2), format(median(bytes[index] ?? []), 0)].join(' | ')));
  if (versions.length > 1) console.log(`\ncurrent ÷ baseline, µs per call: ${format(median(ratios), 3)} (median of ${rounds} rounds)`);
} finally {
  if (baselineDirectory !== undefined) rmSync(baselineDirectory, { recursive: true, force: true });
}
