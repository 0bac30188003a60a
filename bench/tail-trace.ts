/**
 * Where Seed's slowest requests wait. An open-loop client (undici, like the bench's) tags every
 * request with `x-client-request-id`; Seed keeps that id in the ledger beside the call's start
 * (`started_at`, when its handler began the call), its time to the first streamed chunk and its
 * latency. Lined up on the wall clock, each request's time splits into: the client sending late,
 * before Seed's handler (the request waiting in the socket, the parser and the event loop), in
 * the handler (admission, routing and the upstream; for a stream, to the first chunk and then the
 * rest), and after the settle (writing the answer and the client reading it).
 *
 *   node bin/run-ts.mjs bench/tail-trace.ts [--slices 10] [--rate 500] [--json] [--gaps] [--pin]
 *
 * `--json` traces non-streaming calls (streamed ones by default). `--gaps` also runs Seed and the
 * simulator with bench/servers/gc-observer.mjs preloaded, as the gc scenario does, and lines the
 * slowest requests up with the gaps in each one's event loop (a 1 ms timer more than 2 ms late):
 * how long the gap was, and how much of it the main thread spent on a CPU (its GC pauses apart),
 * runnable but waiting for a CPU, or neither. A stall that is Seed's own work or GC shows on the
 * CPU; one where the host ran something else shows as waiting. The observer's timer costs each
 * process a wake-up a millisecond. `--pin` puts the load generator and the simulator on CPU 0
 * and Seed on the others (bench/lib/affinity.ts; bench/host-bursts.ts says why).
 *
 * Seed runs from dist/ (`npm run build` first) with every feature on, as in `npm run bench`, in
 * front of the simulator; each slice of 2 s starts once both are idle, as the paired tails do.
 * Seed's timestamps are whole milliseconds, so parts under ~1 ms are not resolved.
 */
import './lib/client-flags.ts';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openLoop, type OpenLoopSample } from './lib/load.ts';
import { waitForQuiet } from './lib/proc.ts';
import { percentile } from './lib/stats.ts';
import { startSeedServer, startSimulator } from './lib/targets.ts';
import { GC_OBSERVER, gapsDuring, readObserved, summarizeGapsDuring, wallGaps, type WallGap } from './scenarios/gc.ts';
import { requestFor, sliceOptions, TAIL_SLICE_SECONDS, warmUp, warmUpOpenLoop } from './scenarios/overhead.ts';
import { parseCommandLine } from './lib/command-line.ts';
import { pinLoadGenerator, pinProcess } from './lib/affinity.ts';
import { scratchDirectory } from './lib/children.ts';

const { values } = parseCommandLine(import.meta.filename, {
  options: {
    slices: { type: 'string', default: '10' },
    rate: { type: 'string', default: '500' },
    json: { type: 'boolean', default: false },
    gaps: { type: 'boolean', default: false },
    pin: { type: 'boolean', default: false },
  },
});
const layout = pinLoadGenerator(values.pin);
const traceGaps = values.gaps;
const { slices, rate, stream } = sliceOptions(values);

/** One request's time, split by stage (ms). */
interface Split {
  /** When the client scheduled it (wall clock, ms): with `total`, when it was in flight. */
  scheduledAt: number;
  total: number;
  sendLag: number;
  beforeHandler: number;
  toFirstChunk: number;
  afterFirstChunk: number;
  afterSettle: number;
}

const STAGES: ReadonlyArray<[keyof Split, string]> = [
  ['sendLag', 'client sending late'],
  ['beforeHandler', "before Seed's handler"],
  ['toFirstChunk', 'handler: to the first chunk (streams)'],
  ['afterFirstChunk', 'handler: the rest to the settle'],
  ['afterSettle', 'after the settle'],
];

const workDirectory = scratchDirectory('seed-tail-trace-');
try {
  /** With --gaps: each observed process's output file, and its gaps once read. */
  const observedFiles = { simulator: join(workDirectory, 'gaps-simulator.json'), seed: join(workDirectory, 'gaps-seed.json') };
  const observer = (file: string) => (traceGaps ? { nodeArguments: ['--import', GC_OBSERVER], env: { SEED_BENCH_GC_OUT: file } } : {});
  let gaps: { seed: WallGap[]; simulator: WallGap[] } | undefined;
  const simulator = await startSimulator({ name: 'simulator', ...observer(observedFiles.simulator) });
  if (layout) pinProcess(simulator.pid, layout.world);
  /** Every answered request, with the id it was tagged with; its times are on the wall clock, as the ledger's are. */
  const answered: Array<{ id: string; sample: OpenLoopSample }> = [];
  try {
    const seed = await startSeedServer({ simulatorUrl: simulator.url, workDirectory, ...observer(observedFiles.seed) });
    if (layout) pinProcess(seed.pid, layout.gateway);
    try {
      const target = { origin: seed.url, headers: seed.headers };
      await warmUp(target, stream, 50);
      await warmUpOpenLoop(target, stream, rate);
      const request = requestFor(target, stream);
      const count = Math.round(rate * TAIL_SLICE_SECONDS);
      // The observers measure from here to the last slice's end (the second signal writes it).
      const observed = [seed.pid, simulator.pid];
      if (traceGaps) for (const pid of observed) process.kill(pid, 'SIGWINCH');
      for (let index = 0; index < slices; index += 1) {
        await waitForQuiet([simulator.pid, seed.pid], { maxMs: 5_000 });
        const tag = (position: number) => `trace-${index}-${position}`;
        const result = await openLoop({ request, ratePerSecond: rate, count, keepSamples: true, headersFor: (position) => ({ 'x-client-request-id': tag(position) }) });
        for (const sample of result.samples ?? []) answered.push({ id: tag(sample.index), sample });
      }
      if (traceGaps) {
        for (const pid of observed) process.kill(pid, 'SIGWINCH');
        gaps = {
          seed: wallGaps(await readObserved(observedFiles.seed, 'seed')),
          simulator: wallGaps(await readObserved(observedFiles.simulator, 'simulator')),
        };
      }
    } finally {
      // Stopping flushes the ledger.
      await seed.stop(15_000);
    }
  } finally {
    await simulator.stop();
  }
  const database = new Database(join(workDirectory, 'seed-ledger.db'), { readonly: true, fileMustExist: true });
  const rows = database
    .prepare('select client_request_id as id, started_at as startedAt, latency_ms as latency, ttft_ms as ttft from calls where client_request_id is not null')
    .all() as Array<{ id: string; startedAt: number; latency: number; ttft: number | null }>;
  database.close();
  const ledger = new Map(rows.map((row) => [row.id, row]));
  const splits: Split[] = answered.flatMap(({ id, sample }) => {
    const row = ledger.get(id);
    if (!row) return [];
    const sentAt = sample.scheduledAt + sample.sendLagMs;
    const toFirstChunk = row.ttft ?? 0;
    return [
      {
        scheduledAt: sample.scheduledAt,
        total: sample.latencyMs,
        sendLag: sample.sendLagMs,
        beforeHandler: row.startedAt - sentAt,
        toFirstChunk,
        afterFirstChunk: row.latency - toFirstChunk,
        afterSettle: sample.scheduledAt + sample.latencyMs - (row.startedAt + row.latency),
      },
    ];
  });
  if (splits.length === 0) throw new Error('no request could be matched with a ledger row');
  const slowest = [...splits].sort((left, right) => right.total - left.total).slice(0, Math.ceil(splits.length / 100));
  const mean = (list: readonly Split[], key: keyof Split) => list.reduce((sum, split) => sum + split[key], 0) / list.length;
  console.log(
    `${stream ? 'Streaming' : 'Non-streaming'}, ${rate} req/s, ${slices} slices of ${TAIL_SLICE_SECONDS} s` +
      (layout ? ` (the load generator and the simulator on CPU ${layout.world}, Seed on CPU ${layout.gateway})` : '') +
      `: ${splits.length} of ${answered.length} answered ` +
      `requests matched with their ledger rows; p50 ${percentile(splits.map((split) => split.total), 0.5).toFixed(2)} ms, ` +
      `p99 ${percentile(splits.map((split) => split.total), 0.99).toFixed(2)} ms\n`,
  );
  console.log(`| stage | mean ms, every request | mean ms, slowest 1% (${slowest.length}) |`);
  console.log('|---|---|---|');
  for (const [key, label] of STAGES) console.log(`| ${label} | ${mean(splits, key).toFixed(2)} | ${mean(slowest, key).toFixed(2)} |`);
  console.log(`| total | ${mean(splits, 'total').toFixed(2)} | ${mean(slowest, 'total').toFixed(2)} |`);
  const asRequest = (split: Split) => ({ scheduledAt: split.scheduledAt, latencyMs: split.total });
  if (gaps !== undefined) {
    const observedGaps = gaps;
    console.log(`\nThe slowest 1% against each process's event-loop gaps (a 1 ms timer more than 2 ms late; the gaps any of them was in flight for, summed, ms):\n`);
    console.log('| process | slowest 1% in flight during a gap | gaps | their length | on a CPU | of which GC | waiting for a CPU | neither |');
    console.log('|---|---|---|---|---|---|---|---|');
    for (const [name, list] of [['Seed', observedGaps.seed], ['simulator', observedGaps.simulator]] as const) {
      const during = summarizeGapsDuring(slowest.map(asRequest), list);
      const cells = [during.ms, during.onCpuMs, during.gcMs, during.waitingMs, during.otherMs].map((value) => (Number.isNaN(value) ? '?' : value.toFixed(1)));
      console.log(`| ${name} | ${during.requests} of ${slowest.length} | ${during.gaps} | ${cells.join(' | ')} |`);
    }
  }
  /** The longest gap of `list` the request was in flight for, with its split. */
  const longestGap = (split: Split, list: readonly WallGap[]): string => {
    const during = gapsDuring(list, asRequest(split));
    if (during.length === 0) return 'none';
    const gap = during.reduce((longest, each) => (each.ms > longest.ms ? each : longest));
    const part = (value: number | null) => (value === null ? '?' : value.toFixed(1));
    return `${gap.ms.toFixed(1)} (CPU ${part(gap.onCpuMs)}, GC ${gap.gcMs.toFixed(1)}, waiting ${part(gap.waitingMs)})`;
  };
  console.log(
    '\nThe 10 slowest, ms (client late + before handler + [to first chunk + rest] + after settle = total' +
      (gaps ? "; the longest gap of Seed's event loop and of the simulator's the request was in flight for" : '') +
      '):',
  );
  for (const split of slowest.slice(0, 10)) {
    const stages = `${split.sendLag.toFixed(1)} + ${split.beforeHandler.toFixed(1)} + [${split.toFirstChunk} + ${split.afterFirstChunk}] + ${split.afterSettle.toFixed(1)} = ${split.total.toFixed(1)}`;
    console.log(`  ${stages}${gaps ? `; Seed ${longestGap(split, gaps.seed)}; simulator ${longestGap(split, gaps.simulator)}` : ''}`);
  }
} finally {
  rmSync(workDirectory, { recursive: true, force: true });
}
