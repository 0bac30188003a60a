/**
 * Ledger usage benchmark: fills a store with synthetic calls (default 1 000 000 over 90 days)
 * and times a grouped 7-day usage query, printing the database's plan so index use is visible.
 *
 *   node --import tsx bench/ledger-usage.ts [--rows 1000000] [--backend sqlite|postgres|all]
 *
 * PostgreSQL runs when SEED_BENCH_POSTGRES_URL (or SEED_TEST_POSTGRES_URL, default
 * postgres://postgres@127.0.0.1:5432/test) answers; it uses a throwaway schema.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { sql } from 'kysely';
import { openStore, type OpenStoreOptions, type UsageQuery } from '../src/store/index.ts';
import type { CallRecord } from '../src/ledger/types.ts';
import { parseCommandLine } from './lib/command-line.ts';
import { scratchDirectory } from './lib/children.ts';

const DAY = 86_400_000;
const DAYS = 90;
const START = Date.UTC(2025, 0, 1);
const CHUNK = 10_000;

const { values } = parseCommandLine(import.meta.filename, {
  options: { rows: { type: 'string', default: '1000000' }, backend: { type: 'string', default: 'all' } },
});
const rows = Number(values.rows);
const postgresUrl = process.env['SEED_BENCH_POSTGRES_URL'] ?? process.env['SEED_TEST_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

function syntheticCall(index: number): CallRecord {
  const team = index % 20;
  const promptTokens = 200 + (index % 1800);
  return {
    id: `bench_${index}`,
    clientRequestId: null,
    startedAt: START + Math.floor(((index * 7919) % rows) * ((DAYS * DAY) / rows)),
    endpoint: 'chat.completions',
    route: `route_${index % 10}`,
    servedRoute: `route_${index % 10}`,
    deployment: `deployment_${index % 15}`,
    provider: index % 3 === 0 ? 'anthropic' : 'openai',
    model: index % 3 === 0 ? 'claude-sonnet-4' : 'gpt-4o',
    region: 'us',
    purpose: 'serve',
    termsProfile: null,
    termsVersion: null,
    orgId: `org_${team % 4}`,
    teamId: `team_${team}`,
    keyId: `key_${index % 200}`,
    status: index % 50 === 0 ? 'error' : 'ok',
    httpStatus: index % 50 === 0 ? 502 : 200,
    errorCode: index % 50 === 0 ? 'upstream_error' : null,
    stream: index % 2 === 0,
    attempts: 1,
    promptTokens,
    completionTokens: index % 700,
    cachedTokens: index % 4 === 0 ? Math.floor(promptTokens / 2) : 0,
    usageReported: true,
    costUsd: promptTokens * 2.5e-6 + (index % 700) * 1e-5,
    latencyMs: 100 + (index % 4000),
    ttftMs: null,
    metadata: null,
    payload: null,
  };
}

function median(samples: number[]): number {
  const sorted = [...samples].sort((left, right) => left - right);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

async function run({ name, options, cleanup }: { name: string; options: OpenStoreOptions; cleanup: () => Promise<void> }) {
  const store = await openStore(options);
  try {
    console.log(`\n== ${name}: inserting ${rows.toLocaleString('en')} calls (${CHUNK} per insertCalls) ==`);
    const insertStarted = performance.now();
    for (let start = 0; start < rows; start += CHUNK) {
      const batch = Array.from({ length: Math.min(CHUNK, rows - start) }, (_, offset) => syntheticCall(start + offset));
      await store.insertCalls(batch);
    }
    const insertSeconds = (performance.now() - insertStarted) / 1000;
    console.log(`inserted in ${insertSeconds.toFixed(1)} s (${Math.round(rows / insertSeconds).toLocaleString('en')} rows/s)`);
    await sql`analyze`.execute(store.db);

    const until = START + DAYS * DAY;
    const queries: Array<[string, UsageQuery]> = [
      ['7 days grouped by team, route, day', { groupBy: ['team', 'route', 'day'], since: until - 7 * DAY, until }],
      ['7 days of one team grouped by key, day', { groupBy: ['key', 'day'], since: until - 7 * DAY, until, teamId: 'team_3' }],
    ];
    for (const [label, query] of queries) {
      console.log(`\n-- ${label}`);
      for (const line of await store.explainUsage(query)) console.log(`   ${line}`);
      const timings: number[] = [];
      let groups = 0;
      let requests = 0;
      for (let run = 0; run < 5; run += 1) {
        const started = performance.now();
        const result = await store.usage(query);
        timings.push(performance.now() - started);
        groups = result.length;
        requests = result.reduce((sum, row) => sum + row.requests, 0);
      }
      console.log(`   ${groups} groups over ${requests.toLocaleString('en')} calls; median of 5 runs ${median(timings).toFixed(1)} ms (min ${Math.min(...timings).toFixed(1)}, max ${Math.max(...timings).toFixed(1)})`);
    }
  } finally {
    await store.close();
    await cleanup();
  }
}

if (values.backend === 'all' || values.backend === 'sqlite') {
  const directory = scratchDirectory('seed-bench-');
  await run({
    name: 'SQLite (file, WAL)',
    options: { url: `sqlite:${join(directory, 'seed.db')}` },
    cleanup: async () => rmSync(directory, { recursive: true, force: true }),
  });
}

if (values.backend === 'all' || values.backend === 'postgres') {
  const schema = `seed_bench_${randomBytes(4).toString('hex')}`;
  const options: OpenStoreOptions = { url: postgresUrl, schema };
  try {
    const probe = await openStore({ ...options, migrate: false });
    await probe.close();
  } catch (error) {
    console.log(`\n== PostgreSQL skipped: ${(error as Error).message} ==`);
    process.exit(0);
  }
  await run({
    name: 'PostgreSQL',
    options,
    cleanup: async () => {
      const store = await openStore({ url: postgresUrl, migrate: false });
      await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(store.db);
      await store.close();
    },
  });
}
