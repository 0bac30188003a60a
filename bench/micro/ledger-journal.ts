/**
 * Micro-benchmark of the ledger's journal (src/ledger/journal.ts): what it adds to each call on
 * the gateway's thread. Per call, in alternating rounds:
 * - `record as object`: `JSON.stringify` of the call record, the form spill files use;
 * - `line`: the journal's encoding of it (the column values as a JSON array);
 * - `append + settle`: the whole journal path, `CallJournal.append` (the encoding), the `write`
 *   of the turn's lines to a segment file (`flush`, which the end of the event loop's turn calls)
 *   and `settle`, in segments of the default size: with one call a turn (a gateway at a low rate)
 *   and with 8 (calls that end in the same turn under load share one `write`);
 * - `write only`: one `write` of a line's bytes to the same directory, the system call alone;
 * - `hand-off`: what posting a batch of 25 to the SQLite insert worker costs the gateway's thread
 *   (`postMessage` serializes on the sender; nothing receives here): the values encoded for
 *   SQLite and cloned. (Handing the worker the journal's text instead cost 0.26 µs a call here,
 *   but keeping each call's text until its batch cost the whole process more than that under
 *   load: docs/benchmark-log.md, 2026-12-06 (18:10–).)
 *
 *   node bin/run-ts.mjs bench/micro/ledger-journal.ts [--calls 20000] [--rounds 5] [--dir DIR]
 *
 * `--dir` is where the segments go (default: a temporary directory; give the disk the spill
 * directory lives on). The table gives medians over the rounds, CPU (user + system) per call.
 */
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CallJournal } from '../../src/ledger/journal.ts';
import { spillFileName } from '../../src/ledger/spill.ts';
import { MessageChannel } from 'node:worker_threads';
import { encodeCallValues, toCallValues } from '../../src/store/call-rows.ts';
import type { CallRecord } from '../../src/ledger/types.ts';
import { format, median } from '../lib/stats.ts';
import { makeCall } from '../../test/helpers/backends.ts';

const { values } = parseArgs({
  options: {
    calls: { type: 'string', default: '20000' },
    rounds: { type: 'string', default: '5' },
    dir: { type: 'string' },
  },
});
const calls = Number(values.calls);
const rounds = Number(values.rounds);
for (const [name, value] of [['calls', calls], ['rounds', rounds]] as const) {
  if (!Number.isInteger(value) || value <= 0) throw new Error(`--${name}: expected a positive whole number`);
}

const directory = mkdtempSync(join(values.dir ?? tmpdir(), 'seed-ledger-journal-'));
let sequence = 0;
const nextName = () => spillFileName((sequence += 1));

/** Records as the gateway makes them: one shape, ids and numbers varying. */
const records: CallRecord[] = Array.from({ length: calls }, (_, index) =>
  makeCall({ id: `call_${String(index).padStart(8, '0')}`, latencyMs: 100 + index / 7, promptTokens: 20 + (index % 50) }),
);
const lineBytes = Buffer.byteLength(encodeCallValues(records[0]!) + '\n');

/** Batches of 25, one flush of the ledger at 500 req/s. */
const BATCH = 25;
const channel = new MessageChannel();
channel.port1.unref();
channel.port2.unref();

type Variant = { name: string; run: () => void };
let sink = 0;
const variants: Variant[] = [
  {
    name: 'record as object (JSON.stringify)',
    run: () => {
      for (const record of records) sink += JSON.stringify(record).length;
    },
  },
  {
    name: 'line (column values as a JSON array)',
    run: () => {
      for (const record of records) sink += encodeCallValues(record).length;
    },
  },
  ...[1, 8].map((perTurn) => ({
    name: `append + settle (the journal), ${perTurn} call${perTurn === 1 ? '' : 's'} a turn`,
    run: () => {
      const journal = new CallJournal({ directory, nextName });
      for (let start = 0; start < records.length; start += perTurn) {
        const turn = records.slice(start, start + perTurn);
        // The promises are the answers' to wait on; the turn's end is `flush` here.
        for (const record of turn) void journal.append(record);
        journal.flush();
        journal.settle(turn);
      }
      journal.close();
    },
  })),
  {
    name: `write only (${lineBytes} bytes)`,
    run: () => {
      const bytes = Buffer.alloc(lineBytes, 0x61);
      const descriptor = openSync(join(directory, 'write-only'), 'a');
      try {
        for (let index = 0; index < records.length; index += 1) writeSync(descriptor, bytes);
      } finally {
        closeSync(descriptor);
        rmSync(join(directory, 'write-only'));
      }
    },
  },
  {
    name: 'hand-off: values encoded and cloned (25 a batch)',
    run: () => {
      for (let start = 0; start < records.length; start += BATCH) {
        const rows = records.slice(start, start + BATCH).map((call) => toCallValues({ dialect: 'sqlite', call }));
        channel.port1.postMessage({ type: 'insert', id: start, rows });
      }
    },
  },
];

function measure(run: () => void): { wallUs: number; cpuUs: number } {
  const cpu = process.cpuUsage();
  const started = performance.now();
  run();
  const wallUs = ((performance.now() - started) * 1_000) / calls;
  const used = process.cpuUsage(cpu);
  return { wallUs, cpuUs: (used.user + used.system) / calls };
}

try {
  // One unmeasured pass each, so every path is optimized before the rounds.
  for (const variant of variants) variant.run();
  const readings = new Map(variants.map((variant) => [variant.name, [] as Array<{ wallUs: number; cpuUs: number }>]));
  for (let round = 0; round < rounds; round += 1) {
    for (const variant of variants) readings.get(variant.name)!.push(measure(variant.run));
  }
  console.log(`The ledger's journal: µs per call, medians of ${rounds} rounds of ${format(calls)} calls (segments in ${directory})\n`);
  console.log('| path | wall µs per call | CPU µs per call | CPU, ÷ record as object |');
  console.log('|---|---:|---:|---:|');
  const objectCpu = median(readings.get(variants[0]!.name)!.map((reading) => reading.cpuUs));
  for (const variant of variants) {
    const taken = readings.get(variant.name)!;
    const cpu = median(taken.map((reading) => reading.cpuUs));
    console.log(`| ${variant.name} | ${format(median(taken.map((reading) => reading.wallUs)), 2)} | ${format(cpu, 2)} | ${format(cpu / objectCpu, 2)}× |`);
  }
  if (sink < 0) console.log(sink);
} finally {
  channel.port1.close();
  rmSync(directory, { recursive: true, force: true });
}
