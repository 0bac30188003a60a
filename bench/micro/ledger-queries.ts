/**
 * What the `calls` table's route and deployment indexes buy the ledger's readers, against what they
 * cost its writer: the other side of the trade-off measured in docs/benchmark-log.md, 2026-12-06
 * (23:35–), item 4 (the insert, 15.4 µs a row with every index, 11.7 without these two).
 *
 *   node bin/run-ts.mjs bench/micro/ledger-queries.ts [--rows 1000000] [--days 7] [--runs 15] [--batch 250]
 *
 * Two SQLite files, each made by the store's migrations; from the second the indexes
 * `calls_route_started_at` and `calls_deployment_started_at` are dropped. Both are filled with the
 * same calls, spread evenly over `--days` days up to now, in batches of `--batch` rows (one
 * transaction each, as the ledger's insert worker writes them), alternating between the files, and
 * the insert's CPU per row is measured on each. The calls: five routes taking 50 / 30 / 15 / 4.9%
 * of the traffic and a rare one 0.1%; fourteen deployments and a rare one 0.1%; 100 keys in 10
 * teams. (A route with no calls is a filter on a retired or mistyped name.) Then each query runs `--runs` times on each file, alternating, through the store (what
 * `GET /v1/calls` and `GET /v1/usage` run), and its median wall time is reported. Last, the heavy
 * reports run on the store's main connection (`readWorker: false`) and on its read worker (the
 * default for a file), and the longest time the event loop went without turning while each ran is
 * reported: on the main connection that is the time no request is served. Run it on an idle
 * machine; only the ratios within one run mean much.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { newCallId } from '../../src/ledger/call-id.ts';
import type { CallRecord } from '../../src/ledger/types.ts';
import { toCallValues, type CallColumnValue } from '../../src/store/call-rows.ts';
import { openStore } from '../../src/store/index.ts';
import type { Store } from '../../src/store/store.ts';
import { prepareSqliteInsert, type SqliteRowsInsert } from '../../src/store/sqlite-call-insert.ts';
import { configureSqliteConnection } from '../../src/store/sqlite-connection.ts';
import { makeCall } from '../../test/helpers/backends.ts';
import { parseCommandLine } from '../lib/command-line.ts';
import { wholeNumbers } from '../lib/per-call.ts';
import { format, median } from '../lib/stats.ts';
import { scratchDirectory } from '../lib/children.ts';

const { values } = parseCommandLine(import.meta.filename, {
  options: {
    rows: { type: 'string', default: '1000000' },
    days: { type: 'string', default: '7' },
    runs: { type: 'string', default: '15' },
    batch: { type: 'string', default: '250' },
  },
});
const { rows, days, runs, batch } = wholeNumbers(values);

const DAY_MS = 86_400_000;
const RARE_ROUTE = 'route-rare';
const RARE_DEPLOYMENT = 'deployment-rare';
/** The dropped indexes, as src/store/migrations.ts names them. */
const ROUTE_AND_DEPLOYMENT_INDEXES = ['calls_route_started_at', 'calls_deployment_started_at'];

/** Call `index` of `rows`: its route, deployment and tenant follow the mix in the header comment. */
function call(index: number, startedAt: number): CallRecord {
  const slot = index % 1000;
  const route = slot === 0 ? RARE_ROUTE : slot < 500 ? 'route-a' : slot < 800 ? 'route-b' : slot < 950 ? 'route-c' : 'route-d';
  const deployment = slot === 500 ? RARE_DEPLOYMENT : `deployment-${index % 14}`;
  const key = index % 100;
  return makeCall({
    id: newCallId(startedAt),
    startedAt,
    route,
    servedRoute: route,
    deployment,
    keyId: `key-${key}`,
    teamId: `team-${key % 10}`,
    stream: index % 2 === 0,
    promptTokens: 100 + (index % 900),
  });
}

/** The longest time the event loop went without turning while `work` ran: a 1 ms timer's worst lateness, plus 1 ms. */
async function longestStall(work: () => Promise<unknown>): Promise<number> {
  let last = performance.now();
  let longest = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 1);
  try {
    last = performance.now();
    await work();
    longest = Math.max(longest, performance.now() - last);
  } finally {
    clearInterval(timer);
  }
  return longest;
}

interface Layout {
  name: string;
  file: string;
  database: BetterSqlite3.Database;
  insert: SqliteRowsInsert;
  insertCpuMicroseconds: number;
  store?: Store;
}

const directory = scratchDirectory('seed-ledger-queries-');
const layouts: Layout[] = [];
try {
  for (const [name, drop] of [
    ['every index (as migrated)', []],
    ['without the route and deployment indexes', ROUTE_AND_DEPLOYMENT_INDEXES],
  ] as const) {
    const file = join(directory, `${layouts.length}.db`);
    await (await openStore({ url: `sqlite:${file}` })).close();
    const database = new BetterSqlite3(file, { fileMustExist: true });
    configureSqliteConnection(database);
    for (const index of drop) database.exec(`drop index "${index}"`);
    layouts.push({ name, file, database, insert: prepareSqliteInsert(database), insertCpuMicroseconds: 0 });
  }

  const now = Date.now();
  const from = now - days * DAY_MS;
  const step = (days * DAY_MS) / rows;
  for (let done = 0; done < rows; done += batch) {
    const values: CallColumnValue[][] = [];
    for (let index = done; index < Math.min(done + batch, rows); index += 1) {
      values.push(toCallValues({ dialect: 'sqlite', call: call(index, Math.floor(from + index * step)) }));
    }
    const order = (done / batch) % 2 === 0 ? layouts : [...layouts].reverse();
    for (const layout of order) {
      const before = process.cpuUsage();
      layout.insert(values);
      const spent = process.cpuUsage(before);
      layout.insertCpuMicroseconds += spent.user + spent.system;
    }
  }
  for (const layout of layouts) {
    layout.database.pragma('wal_checkpoint(TRUNCATE)');
    layout.database.close();
    layout.store = await openStore({ url: `sqlite:${layout.file}` });
  }

  const hour = now - 3_600_000;
  const queries: Array<[label: string, run: (store: Store) => Promise<unknown>]> = [
    ['calls, newest 50, no filter', (store) => store.listCalls({ limit: 50 })],
    ['calls, newest 50 of a route with 50% of the traffic', (store) => store.listCalls({ limit: 50, filters: { route: 'route-a' } })],
    ['calls, newest 50 of a route with 0.1%', (store) => store.listCalls({ limit: 50, filters: { route: RARE_ROUTE } })],
    ['calls, newest 50 of a deployment with 0.1%', (store) => store.listCalls({ limit: 50, filters: { deployment: RARE_DEPLOYMENT } })],
    ['calls, newest 50 of a route with no calls', (store) => store.listCalls({ limit: 50, filters: { route: 'route-none' } })],
    ['calls of a route with 0.1%, last hour', (store) => store.listCalls({ limit: 1000, filters: { route: RARE_ROUTE, since: hour } })],
    ['calls of a deployment with 0.1%, last hour', (store) => store.listCalls({ limit: 1000, filters: { deployment: RARE_DEPLOYMENT, since: hour } })],
    ['usage by route, last 24 h', (store) => store.usage({ groupBy: ['route'], since: now - DAY_MS, until: now + 1 })],
    ['usage by deployment and day, one team, all days', (store) => store.usage({ groupBy: ['deployment', 'day'], since: from, until: now + 1, teamId: 'team-3' })],
  ];
  const timings = layouts.map(() => queries.map((): number[] => []));
  for (let run = 0; run < runs; run += 1) {
    for (const [queryIndex, [, query]] of queries.entries()) {
      const order = (run + queryIndex) % 2 === 0 ? [0, 1] : [1, 0];
      for (const layoutIndex of order) {
        const store = layouts[layoutIndex]?.store as Store;
        const started = performance.now();
        await query(store);
        timings[layoutIndex]?.[queryIndex]?.push(performance.now() - started);
      }
    }
  }

  const [withAll, without] = layouts as [Layout, Layout];
  console.log(`The ledger's calls table, ${format(rows)} rows over ${days} days (SQLite, WAL, the store's pragmas)\n`);
  console.log(`| | ${withAll.name} | ${without.name} | without ÷ with |`);
  console.log('|---|---:|---:|---:|');
  const insertWith = withAll.insertCpuMicroseconds / rows;
  const insertWithout = without.insertCpuMicroseconds / rows;
  console.log(`| insert, CPU µs a row (batches of ${batch}) | ${insertWith.toFixed(2)} | ${insertWithout.toFixed(2)} | ${(insertWithout / insertWith).toFixed(2)}× |`);
  for (const [queryIndex, [label]] of queries.entries()) {
    const a = median(timings[0]?.[queryIndex] ?? []);
    const b = median(timings[1]?.[queryIndex] ?? []);
    console.log(`| ${label}, ms (median of ${runs}) | ${a.toFixed(2)} | ${b.toFixed(2)} | ${(b / a).toFixed(2)}× |`);
  }

  // The same reports on the store's main connection (`readWorker: false`) against its read worker
  // (the default for a file): the longest the event loop went without turning while each ran.
  const onMain = await openStore({ url: `sqlite:${withAll.file}`, readWorker: false });
  const stalls: Array<[label: string, main: number[], worker: number[]]> = [];
  for (const [label, query] of queries.filter(([name]) => name.startsWith('usage') || name.includes('no calls'))) {
    const main: number[] = [];
    const worker: number[] = [];
    for (let run = 0; run < runs; run += 1) {
      for (const [store, into] of run % 2 === 0 ? ([[onMain, main], [withAll.store as Store, worker]] as const) : ([[withAll.store as Store, worker], [onMain, main]] as const)) {
        into.push(await longestStall(() => query(store)));
      }
    }
    stalls.push([label, main, worker]);
  }
  await onMain.close();
  console.log(`\nThe event loop while a report runs (every index): its longest stall, ms (median of ${runs})\n`);
  console.log('| report | on the main connection | on the read worker |');
  console.log('|---|---:|---:|');
  for (const [label, main, worker] of stalls) console.log(`| ${label} | ${median(main).toFixed(2)} | ${median(worker).toFixed(2)} |`);
  for (const layout of layouts) await layout.store?.close();
} finally {
  rmSync(directory, { recursive: true, force: true });
}
