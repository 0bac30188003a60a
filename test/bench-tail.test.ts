/**
 * The benchmark's tail attribution (bench/scenarios/gc.ts): how the observers' gaps and pauses
 * are summed, how the slowest requests are lined up with them, and how the bytes each scavenge
 * promoted are read from `--trace-gc-nvp` (bench/lib/gc-trace.ts). The benchmark itself is not
 * part of `npm test`; these are its arithmetic, which the published explanation of the p99 rests on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GcTraceLog, medianPromotedBytes, scavengesOf } from '../bench/lib/gc-trace.ts';
import { attributeSlowest, summarizeGapsDuring, summarizeObserved, wallGaps, type Observed } from '../bench/scenarios/gc.ts';

test('gaps are split into time on a CPU, waiting for one, and neither; GC counts only inside gaps', () => {
  const observed: Observed = {
    timeOrigin: 1_000_000,
    seconds: 2,
    pauses: [
      { kind: 'minor', at: 100, ms: 2 }, // entirely inside the first gap
      { kind: 'minor', at: 498, ms: 4 }, // half inside the second gap (500–510)
      { kind: 'major', at: 900, ms: 10 }, // outside every gap
    ],
    gaps: [
      { at: 99, ms: 5, onCpuMs: 4, waitingMs: 0.5 },
      { at: 500, ms: 10, onCpuMs: 1, waitingMs: 8 },
    ],
  };
  const summary = summarizeObserved(observed, 1_000);
  assert.equal(summary.gaps, 2);
  assert.equal(summary.gapMs, 15);
  assert.equal(summary.gapOnCpuMs, 5);
  assert.equal(summary.gapWaitingMs, 8.5);
  assert.equal(summary.gapOtherMs, 1.5);
  assert.equal(summary.gapGcMs, 4);
  assert.equal(summary.scavengesPerThousand, 2);
  assert.equal(summary.majorCollections, 1);
  assert.equal(summary.pausedPercent, (100 * 16) / 2_000);
});

test('without scheduler counters the split is unknown (NaN), not zero', () => {
  const summary = summarizeObserved({ timeOrigin: 0, seconds: 1, pauses: [], gaps: [{ at: 0, ms: 3, onCpuMs: null, waitingMs: null }] }, 10);
  assert.equal(summary.gapMs, 3);
  assert.ok(Number.isNaN(summary.gapOnCpuMs) && Number.isNaN(summary.gapWaitingMs) && Number.isNaN(summary.gapOtherMs));
});

test('the slowest 1% are lined up with late sends and with the gaps they were in flight for', () => {
  // 200 requests of 1 ms, one every 10 ms; two slow ones (the slowest 1%).
  const samples = Array.from({ length: 200 }, (_, index) => ({ index, scheduledAt: index * 10, sendLagMs: 0, latencyMs: 1 }));
  samples[50] = { index: 50, scheduledAt: 500, sendLagMs: 3, latencyMs: 20 }; // sent late; in flight 500–520
  samples[120] = { index: 120, scheduledAt: 1_200, sendLagMs: 0, latencyMs: 30 }; // in flight 1200–1230
  const proxyGaps = [{ from: 1_210, to: 1_215 }];
  const simulatorGaps = [{ from: 515, to: 519 }, { from: 5_000, to: 5_010 }];
  assert.deepEqual(attributeSlowest({ samples, proxyGaps, simulatorGaps }), {
    count: 2,
    sentLate: 1,
    overlapProxyGap: 1,
    overlapSimulatorGap: 1,
    unexplained: 0,
  });
  // A gap that ended before the request was scheduled does not explain it.
  assert.deepEqual(attributeSlowest({ samples, proxyGaps: [{ from: 1_190, to: 1_200 }], simulatorGaps: [] }), {
    count: 2,
    sentLate: 1,
    overlapProxyGap: 0,
    overlapSimulatorGap: 0,
    unexplained: 1,
  });
});

test('gaps go on the wall clock with the GC inside each; a set of requests sums the distinct gaps it was in flight for', () => {
  const observed: Observed = {
    timeOrigin: 1_000_000,
    seconds: 2,
    pauses: [
      { kind: 'minor', at: 101, ms: 2 }, // inside the first gap
      { kind: 'major', at: 495, ms: 10 }, // half inside the second (500–510)
    ],
    gaps: [
      { at: 100, ms: 5, onCpuMs: 4, waitingMs: 0.5 },
      { at: 500, ms: 10, onCpuMs: 1, waitingMs: 8 },
      { at: 900, ms: 3, onCpuMs: 0, waitingMs: 3 },
    ],
  };
  const gaps = wallGaps(observed);
  assert.deepEqual(gaps[0], { from: 1_000_100, to: 1_000_105, ms: 5, onCpuMs: 4, waitingMs: 0.5, gcMs: 2 });
  assert.equal(gaps[1]?.gcMs, 5);
  // Three requests: two in flight for the second gap (counted once), one for none of them.
  const requests = [
    { scheduledAt: 1_000_498, latencyMs: 4 },
    { scheduledAt: 1_000_505, latencyMs: 20 },
    { scheduledAt: 1_000_700, latencyMs: 100 },
  ];
  assert.deepEqual(summarizeGapsDuring(requests, gaps), { requests: 2, gaps: 1, ms: 10, onCpuMs: 1, gcMs: 5, waitingMs: 8, otherMs: 1 });
  // A request over two gaps sums both.
  const both = summarizeGapsDuring([{ scheduledAt: 1_000_000, latencyMs: 1_000 }], gaps);
  assert.deepEqual(both, { requests: 1, gaps: 3, ms: 18, onCpuMs: 5, gcMs: 7, waitingMs: 11.5, otherMs: 1.5 });
  // Without scheduler counters the split is unknown, not zero.
  const unknown = summarizeGapsDuring([{ scheduledAt: 0, latencyMs: 10 }], [{ from: 1, to: 4, ms: 3, onCpuMs: null, waitingMs: null, gcMs: 0 }]);
  assert.ok(Number.isNaN(unknown.onCpuMs) && Number.isNaN(unknown.waitingMs) && Number.isNaN(unknown.otherMs));
  assert.equal(unknown.ms, 3);
});

/** A line as `node --trace-gc-nvp` prints it (most fields left out; the parser reads the ones it needs). */
function nvpLine(isolate: string, kind: 's' | 'mc', promoted: number, pause: number): string {
  return `[4242:${isolate}]     1951 ms: pause=${pause} mutator=448.0 gc=${kind} reduce_memory=0 scavenge=1.2 total_size_before=66919208 promoted=${promoted} new_space_survived=${promoted + 1000}\n`;
}

test('--trace-gc-nvp: the main isolate\'s scavenges only, whole lines only', () => {
  const text =
    'Seed is listening\n' +
    nvpLine('0x41055350', 's', 1_012_336, 14.2) +
    nvpLine('0x7f80580', 's', 999_999, 9.9) + // the ledger's insert worker
    nvpLine('0x41055350', 'mc', 5_000, 20) + // a mark-compact, not a scavenge
    nvpLine('0x41055350', 's', 40_960, 1.5) +
    nvpLine('0x41055350', 's', 123, 2).slice(0, 90); // still being written
  const { isolate, scavenges } = scavengesOf(text);
  assert.equal(isolate, '0x41055350');
  assert.deepEqual(scavenges, [
    { promotedBytes: 1_012_336, pauseMs: 14.2 },
    { promotedBytes: 40_960, pauseMs: 1.5 },
  ]);
  assert.equal(medianPromotedBytes(scavenges), (1_012_336 + 40_960) / 2);
  assert.ok(Number.isNaN(medianPromotedBytes([])));
});

test('a growing --trace-gc-nvp log is read from the mark on, with the isolate learned from start-up', async () => {
  const directory = await mkdtemp(join(tmpdir(), 'seed-nvp-'));
  const file = join(directory, 'trace.log');
  writeFileSync(file, nvpLine('0x1', 's', 2_000_000, 9) + nvpLine('0x2', 's', 7, 1));
  const log = new GcTraceLog(file);
  log.mark();
  assert.deepEqual(log.since(), [], 'nothing after the mark yet');
  // After the mark the worker happens to print first: it must not be taken for the main thread.
  appendFileSync(file, nvpLine('0x2', 's', 8, 1) + nvpLine('0x1', 's', 30_000, 1.25) + nvpLine('0x1', 's', 50_000, 1.75));
  assert.deepEqual(log.since(), [
    { promotedBytes: 30_000, pauseMs: 1.25 },
    { promotedBytes: 50_000, pauseMs: 1.75 },
  ]);
  log.mark();
  assert.deepEqual(log.since(), []);
  assert.deepEqual(new GcTraceLog(join(directory, 'missing.log')).since(), [], 'no log yet: no scavenges');
  await rm(directory, { recursive: true, force: true });
});
