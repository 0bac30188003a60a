/**
 * Micro-benchmark of SQLite's automatic WAL checkpoint in the ledger's insert (what the insert
 * worker runs, src/store/sqlite-call-insert.ts): the wall and CPU time of each transaction, with
 * `wal_autocheckpoint` at SQLite's default and at other settings, to see how often a checkpoint
 * lands in a transaction and what it costs there (the long transactions are those that ran one).
 *
 *   node bin/run-ts.mjs bench/micro/ledger-checkpoint.ts [--batch 25] [--batches 4000] [--pages 1000,10000,0]
 *
 * `--batch 25` is one flush of the ledger at 500 req/s (50 ms interval); `--pages 0` turns the
 * automatic checkpoint off (the WAL then grows without bound: a reference, not a setting to use).
 * Each setting fills its own fresh file (WAL, the store's pragmas and migrations).
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import BetterSqlite3 from 'better-sqlite3';
import { newCallId } from '../../src/ledger/call-id.ts';
import { toCallValues } from '../../src/store/call-rows.ts';
import { prepareSqliteInsert } from '../../src/store/sqlite-call-insert.ts';
import { configureSqliteConnection } from '../../src/store/sqlite-connection.ts';
import { openStore } from '../../src/store/index.ts';
import { format, median } from '../lib/stats.ts';
import { makeCall } from '../../test/helpers/backends.ts';
import { scratchDirectory } from '../lib/children.ts';

const { values } = parseArgs({
  options: {
    batch: { type: 'string', default: '25' },
    batches: { type: 'string', default: '4000' },
    pages: { type: 'string', default: '1000,10000,0' },
  },
});
const batch = Number(values.batch);
const batches = Number(values.batches);
const settings = values.pages.split(',').map(Number);
for (const [name, value] of [['batch', batch], ['batches', batches]] as const) {
  if (!Number.isInteger(value) || value <= 0) throw new Error(`--${name}: expected a positive whole number`);
}
if (settings.some((pages) => !Number.isInteger(pages) || pages < 0)) throw new Error('--pages: expected whole numbers of at least 0, comma-separated');

/** The value at quantile `q` of `values` (nearest rank). */
function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((left, right) => left - right);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

const sum = (values: readonly number[]) => values.reduce((total, value) => total + value, 0);
const SLOW_MS = 2;

const directory = scratchDirectory('seed-ledger-checkpoint-');
try {
  console.log(`SQLite ledger insert, ${format(batches)} transactions of ${batch} rows per setting of wal_autocheckpoint\n`);
  console.log(`| wal_autocheckpoint (pages) | CPU µs per row | wall ms per transaction: median / p99 / max | transactions over ${SLOW_MS} ms | their wall ms | their CPU ms |`);
  console.log('|---|---|---|---|---|---|');
  for (const pages of settings) {
    const file = join(directory, `${pages}.db`);
    await (await openStore({ url: `sqlite:${file}` })).close();
    const database = new BetterSqlite3(file, { fileMustExist: true });
    configureSqliteConnection(database);
    database.pragma(`wal_autocheckpoint = ${pages}`);
    const insert = prepareSqliteInsert(database);
    const cpuMs: number[] = [];
    const wallMs: number[] = [];
    for (let index = 0; index < batches; index += 1) {
      const rows = Array.from({ length: batch }, (_, row) =>
        toCallValues({ dialect: 'sqlite', call: makeCall({ id: newCallId(), startedAt: Date.now(), stream: row % 2 === 0, promptTokens: 200 + row }) }),
      );
      const cpuBefore = process.cpuUsage();
      const wallBefore = performance.now();
      insert(rows);
      wallMs.push(performance.now() - wallBefore);
      const cpu = process.cpuUsage(cpuBefore);
      cpuMs.push((cpu.user + cpu.system) / 1_000);
    }
    database.close();
    const slow = wallMs.flatMap((wall, index) => (wall > SLOW_MS ? [index] : []));
    console.log(
      `| ${pages === 0 ? '0 (off)' : format(pages)} | ${((1_000 * sum(cpuMs)) / (batch * batches)).toFixed(1)} | ` +
        `${median(wallMs).toFixed(2)} / ${quantile(wallMs, 0.99).toFixed(2)} / ${Math.max(...wallMs).toFixed(2)} | ` +
        `${slow.length} | ${sum(slow.map((index) => wallMs[index] as number)).toFixed(0)} | ${sum(slow.map((index) => cpuMs[index] as number)).toFixed(0)} |`,
    );
  }
} finally {
  rmSync(directory, { recursive: true, force: true });
}
