/**
 * One phase of `bench/redis-instructions.ts`: drives the Redis limit store of one build's
 * `src/` against a Redis under callgrind as the gateway's limiter does (each turn, ten calls'
 * reserves in one event-loop turn, then their ten finishes in the next), warms up, then counts
 * the measured turns' instructions, Redis's (`--count-redis PID`) or its own
 * (`--count-self`, when it runs under `valgrind --tool=callgrind --instr-atstart=no`). Prints
 * one JSON line: `{"instructionsPerCall": N}`.
 *
 *   node bin/run-ts.mjs bench/lib/redis-limits-driver.ts --source DIR --port 6390 --mode shared
 *       --turns 200 --warm 100 --dump-dir DIR (--count-redis PID | --count-self)
 *
 * `--dump-dir` is where the counted process's callgrind writes `callgrind.out.N`.
 */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { takeLastDumpTotal } from './callgrind.ts';
import { parseCommandLine } from './command-line.ts';
import { callParts, DRIVER_MODES, type DriverMode } from './redis-limits-calls.ts';
import type * as BucketsModule from '../../src/limits/buckets.ts';
import type * as RedisStoreModule from '../../src/limits/redis-store.ts';
import type { ReserveResult } from '../../src/limits/types.ts';

const { values } = parseCommandLine(import.meta.filename, {
  options: {
    source: { type: 'string' },
    port: { type: 'string', default: '6390' },
    mode: { type: 'string', default: 'shared' },
    turns: { type: 'string', default: '200' },
    warm: { type: 'string', default: '100' },
    'dump-dir': { type: 'string' },
    'count-redis': { type: 'string' },
    'count-self': { type: 'boolean', default: false },
  },
});
if (!values.source || !values['dump-dir']) throw new Error('--source and --dump-dir are required');
if ((values['count-redis'] === undefined) === !values['count-self']) throw new Error('give one of --count-redis PID and --count-self');
const mode = values.mode as DriverMode;
if (!DRIVER_MODES.includes(mode)) throw new Error(`--mode: one of ${DRIVER_MODES.join(', ')}`);
const turns = Number(values.turns);
const warm = Number(values.warm);
const dumpDirectory = values['dump-dir'];
const countedPid = values['count-self'] ? String(process.pid) : (values['count-redis'] as string);
const run = promisify(execFile);

const load = <T>(path: string): Promise<T> => import(pathToFileURL(resolve(values.source as string, path)).href) as Promise<T>;
const { RedisLimitStore, createRedisClient, waitForRedis } = await load<typeof RedisStoreModule>('limits/redis-store.ts');
const { bucketsFor } = await load<typeof BucketsModule>('limits/buckets.ts');

const client = createRedisClient({ url: `redis://127.0.0.1:${values.port}`, commandTimeoutMs: 120_000 });
await waitForRedis({ client, timeoutMs: 60_000 });
// The same keys in every phase: what a phase counts does not grow with what the phases before left.
await client.flushall();
const store = new RedisLimitStore({ client, keyPrefix: 'seed-bench:limits:' });
const calls = callParts(mode, bucketsFor);

async function turn(): Promise<void> {
  const results: ReserveResult[] = await Promise.all(
    calls.map(([caller, deployment]) =>
      store.reserve({
        parts: [
          { buckets: caller, tokens: 1234.5, usd: 0.0123 },
          { buckets: deployment, tokens: 1234.5, usd: 0.0123 },
        ],
        leaseMs: 60_000,
        report: 'headers',
      }),
    ),
  );
  for (const result of results) if (!result.admitted) throw new Error(`a call was refused by ${result.refusal.bucket.id}; the limits are meant to admit every call`);
  await Promise.all(results.map((result) => (result.admitted ? store.finish({ reservations: result.reservations, usage: { tokens: 1000, usd: 0.01 } }) : null)));
}

for (let index = 0; index < warm; index += 1) await turn();
// Each dump holds what ran since the one before (or since instrumentation began).
if (values['count-self']) await run('callgrind_control', ['-i', 'on', countedPid]);
else {
  await run('callgrind_control', ['-d', countedPid]);
  takeLastDumpTotal(dumpDirectory);
}
for (let index = 0; index < turns; index += 1) await turn();
await run('callgrind_control', ['-d', countedPid]);
console.log(JSON.stringify({ instructionsPerCall: takeLastDumpTotal(dumpDirectory) / (turns * calls.length) }));
await store.close();
