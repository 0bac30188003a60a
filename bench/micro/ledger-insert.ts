/**
 * Micro-benchmark of the ledger's SQLite insert (src/store/sqlite-call-insert.ts, what the insert
 * worker runs) with random call ids against time-ordered ones (src/ledger/call-id.ts): CPU µs
 * per row as the table grows. The `calls` table's primary key is the id, so a random id lands
 * on a random page of that index and time-ordered ids at its right edge.
 *
 *   node bin/run-ts.mjs bench/micro/ledger-insert.ts [--rows 200000] [--batch 150] [--segments 4] [--keys 1]
 *
 * `--keys N` spreads the calls over N virtual keys (and N/10 teams, up to 10 routes and 15
 * deployments): each of the table's (tenant or route, started_at) indexes then grows at up to N
 * places instead of one. 1, as in `npm run bench` (one key, one route, one deployment), shows the
 * id alone.
 * Each kind of id fills its own fresh SQLite file (WAL, the store's pragmas and migrations), in
 * batches of `--batch` rows, one transaction each, as the ledger writes them. The two files are
 * filled a segment at a time, alternating, so drift on a shared machine falls on both; the rows
 * of a batch are built before the clock starts. Only ratios within one run mean much.
 */
import { rmSync, statSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import BetterSqlite3 from 'better-sqlite3';
import { newCallId } from '../../src/ledger/call-id.ts';
import type { CallRecord } from '../../src/ledger/types.ts';
import { toCallValues, type CallColumnValue } from '../../src/store/call-rows.ts';
import { prepareSqliteInsert, type SqliteRowsInsert } from '../../src/store/sqlite-call-insert.ts';
import { configureSqliteConnection } from '../../src/store/sqlite-connection.ts';
import { openStore } from '../../src/store/index.ts';
import { format } from '../lib/stats.ts';
import { makeCall } from '../../test/helpers/backends.ts';
import { scratchDirectory } from '../lib/children.ts';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '200000' },
    batch: { type: 'string', default: '150' },
    segments: { type: 'string', default: '4' },
    keys: { type: 'string', default: '1' },
  },
});
const rows = Number(values.rows);
const batch = Number(values.batch);
const segments = Number(values.segments);
const keys = Number(values.keys);
for (const [name, value] of [['rows', rows], ['batch', batch], ['segments', segments], ['keys', keys]] as const) {
  if (!Number.isInteger(value) || value <= 0) throw new Error(`--${name}: expected a positive whole number`);
}
const segmentRows = Math.ceil(rows / segments / batch) * batch;

interface Kind {
  name: string;
  id: () => string;
  file: string;
  database: BetterSqlite3.Database;
  insert: SqliteRowsInsert;
  /** CPU µs per row, per segment. */
  perRow: number[];
}

/** A call of key `index % keys`, as the ledger stores it (the test suite's call, varied). */
function call(id: string, index: number): CallRecord {
  const route = `route_${index % Math.min(keys, 10)}`;
  return makeCall({
    id,
    startedAt: Date.now(),
    route,
    servedRoute: route,
    deployment: `deployment_${index % Math.min(keys, 15)}`,
    teamId: `team_${index % Math.ceil(keys / 10)}`,
    keyId: `key_${index % keys}`,
    stream: index % 2 === 0,
    promptTokens: 200 + (index % 1800),
    ttftMs: index % 2 === 0 ? 1.1 : null,
  });
}

const directory = scratchDirectory('seed-ledger-insert-');
try {
  const kinds: Kind[] = [];
  for (const [name, id] of [
    ['random (req_ + UUIDv4)', () => `req_${randomUUID().replaceAll('-', '')}`],
    ['time-ordered (newCallId)', () => newCallId()],
  ] as const) {
    const file = join(directory, `${kinds.length}.db`);
    // The store creates the file and runs the migrations; the insert then gets its own
    // connection, as the insert worker does.
    await (await openStore({ url: `sqlite:${file}` })).close();
    const database = new BetterSqlite3(file, { fileMustExist: true });
    configureSqliteConnection(database);
    kinds.push({ name, id, file, database, insert: prepareSqliteInsert(database), perRow: [] });
  }
  let index = 0;
  for (let segment = 0; segment < segments; segment += 1) {
    for (const kind of segment % 2 === 0 ? kinds : [...kinds].reverse()) {
      let cpuMicroseconds = 0;
      for (let done = 0; done < segmentRows; done += batch) {
        const values: CallColumnValue[][] = [];
        for (let row = 0; row < batch; row += 1) values.push(toCallValues({ dialect: 'sqlite', call: call(kind.id(), index + row) }));
        const before = process.cpuUsage();
        kind.insert(values);
        const spent = process.cpuUsage(before);
        cpuMicroseconds += spent.user + spent.system;
      }
      kind.perRow.push(cpuMicroseconds / segmentRows);
    }
    index += segmentRows;
  }
  const [random, ordered] = kinds as [Kind, Kind];
  console.log(`SQLite insert, CPU µs per row, batches of ${batch} rows, calls of ${keys} key(s) (${segments} segments of ${segmentRows} rows per kind)\n`);
  console.log(`| rows in the table | ${random.name} | ${ordered.name} | random ÷ time-ordered |`);
  console.log('|---|---|---|---|');
  for (let segment = 0; segment < segments; segment += 1) {
    const a = random.perRow[segment] as number;
    const b = ordered.perRow[segment] as number;
    console.log(`| ${format(segment * segmentRows)}–${format((segment + 1) * segmentRows)} | ${a.toFixed(2)} | ${b.toFixed(2)} | ${(a / b).toFixed(2)}× |`);
  }
  for (const kind of kinds) {
    kind.database.pragma('wal_checkpoint(TRUNCATE)');
    kind.database.close();
  }
  console.log(`\nfile size after a checkpoint: random ${format(statSync(random.file).size / 1_048_576, 1)} MiB, time-ordered ${format(statSync(ordered.file).size / 1_048_576, 1)} MiB`);
} finally {
  rmSync(directory, { recursive: true, force: true });
}
