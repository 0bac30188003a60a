/**
 * The benchmark's tail attribution (bench/scenarios/gc.ts): how the observers' gaps and pauses
 * are summed and how the slowest requests are lined up with them. The benchmark itself is not
 * part of `npm test`; these are its arithmetic, which the published explanation of the p99 rests on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attributeSlowest, summarizeObserved, type Observed } from '../bench/scenarios/gc.ts';

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
  const samples = Array.from({ length: 200 }, (_, index) => ({ scheduledAt: index * 10, sendLagMs: 0, latencyMs: 1 }));
  samples[50] = { scheduledAt: 500, sendLagMs: 3, latencyMs: 20 }; // sent late; in flight 500–520
  samples[120] = { scheduledAt: 1_200, sendLagMs: 0, latencyMs: 30 }; // in flight 1200–1230
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
