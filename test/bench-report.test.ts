/**
 * The report's header says which Node flags every process of the run had: a ratio between Node
 * processes on different V8 settings measures the settings as much as the code.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kernelMitigations } from '../bench/lib/machine.ts';
import { atLeastVerdict, pairedTailsSection, ratioAgainst, renderReport, restatedTargetRows, targetsTable, type RunReport } from '../bench/lib/report.ts';
import { medianInterval, quartiles } from '../bench/lib/stats.ts';
import type { OverheadResult, PhaseSummary, TargetSummary } from '../bench/scenarios/overhead.ts';
import type { PairedRatio, PairedTail } from '../bench/scenarios/overhead.ts';
import { SERVER_NODE_FLAGS } from '../src/node-flags.ts';

const machine = { cores: 2, cpuModel: 'test CPU', memoryGiB: 24, freeMemoryGiB: 20, node: 'v20.20.2', kernel: '6.1', loadAverage: '0.1' };
const base: RunReport = { command: 'npm run bench', date: '2026-12-05T00:00:00.000Z', machine, pending: [] };

test("the report names Seed's Node flags and the other processes'", () => {
  const rendered = renderReport({ ...base, nodeFlags: { seed: [...SERVER_NODE_FLAGS], others: [...SERVER_NODE_FLAGS] } });
  const line = rendered.split('\n').find((text) => text.startsWith('- Node flags:'));
  assert.ok(line, 'no Node flags line');
  assert.equal(line.split('`--no-allocation-site-pretenuring`').length, 3, line);
  assert.match(line, /the simulator, the Node proxies and Portkey `--min-semi-space-size=16`/);
});

test("a run on Node's defaults for the other processes, or one saved before the flags were recorded, says so", () => {
  const defaults = renderReport({ ...base, nodeFlags: { seed: [...SERVER_NODE_FLAGS], others: [] } });
  assert.match(defaults, /- Node flags: Seed `--min-semi-space-size=16`.*; the simulator, the Node proxies and Portkey Node's defaults/);
  const older = renderReport(base);
  assert.match(older, /- Node flags: Seed its `npm start` flags; the simulator, the Node proxies and Portkey Node's defaults/);
});

test('the machine section lists the kernel mitigations in force, read from one file per vulnerability', () => {
  const directory = mkdtempSync(join(tmpdir(), 'seed-vulnerabilities-'));
  try {
    writeFileSync(join(directory, 'tsa'), 'Mitigation: Clear CPU buffers: user/kernel boundary\n');
    writeFileSync(join(directory, 'meltdown'), 'Not affected\n');
    writeFileSync(join(directory, 'spectre_v2'), 'Mitigation: Retpolines; IBPB: conditional\n');
    writeFileSync(join(directory, 'mds'), 'Vulnerable; SMT disabled\n');
    const mitigations = kernelMitigations(directory);
    assert.deepEqual(mitigations, { spectre_v2: 'Retpolines; IBPB: conditional', tsa: 'Clear CPU buffers: user/kernel boundary' });
    const line = renderReport({ ...base, machine: { ...machine, mitigations } })
      .split('\n')
      .find((text) => text.startsWith('- kernel mitigations in force'));
    assert.ok(line, 'no mitigations line');
    assert.match(line, /spectre_v2: Retpolines; IBPB: conditional; tsa: Clear CPU buffers: user\/kernel boundary$/);
    assert.deepEqual(kernelMitigations(join(directory, 'missing')), {}, 'a kernel that reports nothing gives nothing');
    assert.equal(renderReport(base).includes('kernel mitigations'), false, 'a report saved without them has no line');
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

/** A paired ratio of `subject` ÷ `baseline` with median `median` (the other fields as the table does not read them). */
function pairedRatio(subject: 'seed' | 'undici', baseline: 'portkey' | 'undici', stream: boolean, median: number): PairedRatio {
  return { subject, baseline, stream, ratios: [median], median, lowerQuartile: median, upperQuartile: median };
}

/** A paired tail of `subject` against the simulator reached directly, with these pooled p99s. */
function pairedTail(subject: 'seed' | 'undici', stream: boolean, subjectP99Ms: number, baselineP99Ms: number): PairedTail {
  return {
    subject,
    baseline: 'direct',
    stream,
    ratePerSecond: 500,
    sliceSeconds: 2,
    pairs: 20,
    failures: 0,
    subjectP50Ms: 1,
    subjectP99Ms,
    baselineP50Ms: 1,
    baselineP99Ms,
    addedP99PerPair: [subjectP99Ms - baselineP99Ms],
  };
}

test('the p99 and Portkey targets restated against the proxy measured in the same run', () => {
  const rows = restatedTargetRows({
    paired: [
      pairedRatio('seed', 'portkey', false, 6.43),
      pairedRatio('undici', 'portkey', false, 7.83),
      pairedRatio('seed', 'portkey', true, 5.92),
      pairedRatio('undici', 'portkey', true, 7.43),
      pairedRatio('seed', 'undici', true, 0.66),
    ],
    pairedTails: [pairedTail('seed', false, 12.05, 5), pairedTail('undici', false, 7.48, 5), pairedTail('seed', true, 6.8, 6), pairedTail('undici', true, 6.5, 6)],
  });
  assert.deepEqual(
    rows.map(([target, , verdict]) => [target, verdict]),
    [
      ["Seed's added p99 within 1 ms of the minimal undici proxy's at 500 req/s (non-streaming)", '**not met**'],
      ['Seed ÷ Portkey ≥ 0.8× of the minimal undici proxy ÷ Portkey (non-streaming)', 'met'],
      ["Seed's added p99 within 1 ms of the minimal undici proxy's at 500 req/s (streaming)", 'met'],
      ['Seed ÷ Portkey ≥ 0.8× of the minimal undici proxy ÷ Portkey (streaming)', '**not met**'],
    ],
  );
  // 7.05 − 2.48 = 4.57 ms over; 6.43 ÷ 7.83 = 0.82; 5.92 ÷ 7.43 = 0.797, under 0.8.
  assert.match(rows[0]?.[1] ?? '', /Seed \+7\.05 ms, the proxy \+2\.48 ms: \+4\.57 ms/);
  assert.match(rows[1]?.[1] ?? '', /6\.43× against 7\.83×: 0\.82×/);
  assert.match(rows[3]?.[1] ?? '', /5\.92× against 7\.43×: 0\.797×/);
  // A run without the proxy's side (or without Portkey) restates nothing it cannot compare.
  assert.deepEqual(restatedTargetRows({ paired: [pairedRatio('seed', 'portkey', false, 6)], pairedTails: [pairedTail('seed', false, 9, 5)] }), []);
});

test('pinned paired tails are restated apart from the unpinned ones, whichever comes first', () => {
  const pinned = (tail: PairedTail): PairedTail => ({ ...tail, pinned: { world: '0', gateway: '1' } });
  const tails = [
    pinned(pairedTail('seed', false, 8.0, 6.5)),
    pinned(pairedTail('undici', false, 7.2, 6.5)),
    pairedTail('seed', false, 12.05, 5),
    pairedTail('undici', false, 7.48, 5),
  ];
  const rows = restatedTargetRows({ paired: [], pairedTails: tails });
  assert.deepEqual(
    rows.map(([target, measured, verdict]) => [target, measured?.replace(/;.*/, ''), verdict]),
    [
      ["Seed's added p99 within 1 ms of the minimal undici proxy's at 500 req/s (non-streaming)", 'Seed +7.05 ms, the proxy +2.48 ms: +4.57 ms', '**not met**'],
      [
        "Seed's added p99 within 1 ms of the minimal undici proxy's at 500 req/s (non-streaming), each on a CPU of its own",
        'Seed +1.50 ms, the proxy +0.70 ms: +0.80 ms',
        'met',
      ],
    ],
  );
});

test('the report shows the pinned tails in a table of their own, or why there are none', () => {
  const tail = { ...pairedTail('seed', true, 8.0, 6.5), pinned: { world: '0', gateway: '1' } };
  const lines = pairedTailsSection([pairedTail('seed', true, 12.05, 5), tail]);
  const headings = lines.filter((line) => line.startsWith('### '));
  assert.deepEqual(headings, ['### Added latency, paired (alternating open-loop slices at 500 req/s)', '### Added latency, paired, the proxy on a CPU of its own']);
  const pinnedPart = lines.slice(lines.indexOf(headings[1]!));
  assert.match(pinnedPart[1]!, /the load generator and the simulator on CPU 0 and the proxy on CPU 1/);
  assert.match(pinnedPart.join('\n'), /\| Seed \| streaming \| 1\.00 \| 1\.00 \| \+0\.00 \| 8\.00 \| 6\.50 \| \+1\.50 \|/);
  assert.doesNotMatch(lines.slice(0, lines.indexOf(headings[1]!)).join('\n'), /\| 8\.00 \| 6\.50 \|/, 'the pinned tail is not in the unpinned table');
  assert.match(pairedTailsSection([pairedTail('seed', true, 12.05, 5)], undefined, 'one CPU').at(-1)!, /not measured pinned in this run: one CPU\.$/);
});

test('a ratio judged against its goal keeps a third decimal only where two would round it onto the goal', () => {
  assert.equal(ratioAgainst(0.7979, 0.8), '0.798×', 'not "0.80×" beside "not met"');
  assert.equal(ratioAgainst(0.8049, 0.8), '0.805×', 'nor "0.80×" when it is met');
  assert.equal(ratioAgainst(0.8, 0.8), '0.80×');
  assert.equal(ratioAgainst(0.76, 0.8), '0.76×');
  assert.equal(ratioAgainst(6.43, 8), '6.43×');
  assert.equal(ratioAgainst(Number.NaN, 0.8), '—');
});

test('a throughput target is met, not met or not resolved by the 95% interval of its paired median', () => {
  const interval = { lower: 0.71, upper: 0.83, coverage: 0.96 };
  assert.equal(atLeastVerdict(0.798, interval, 0.8), '**not resolved** (under it by the median)');
  assert.equal(atLeastVerdict(0.81, interval, 0.8), '**not resolved** (at or above it by the median)');
  assert.equal(atLeastVerdict(0.85, { lower: 0.8, upper: 0.9, coverage: 0.96 }, 0.8), 'met', 'an interval that starts at the goal reaches it');
  assert.equal(atLeastVerdict(5.4, { lower: 4.9, upper: 6.4, coverage: 0.96 }, 8), '**not met**');
  assert.equal(atLeastVerdict(0.798, undefined, 0.8), '**not met**', 'without an interval, the median alone');
  assert.equal(atLeastVerdict(Number.NaN, undefined, 0.8), 'not measured');
});

test("the targets table gives the paired median's interval and judges the throughput targets on it", () => {
  const phase = (ratioToUndici: number, ratioToPortkey: number): PhaseSummary => ({
    rounds: [],
    requestsPerSecond: 5000,
    latencyP50Ms: 9,
    latencyP99Ms: 22,
    firstByteP50Ms: 1,
    cpuMicrosecondsPerRequest: 180,
    failures: 0,
    addedP50Ms: 1,
    addedP99Ms: 2,
    addedFirstByteP50Ms: 0.6,
    ratioToUndici,
    ratioToPortkey,
    sendLagP99Ms: 0,
  });
  const seed: TargetSummary = {
    id: 'seed',
    label: 'Seed',
    note: '',
    pid: undefined,
    peakRssMiB: 200,
    phases: { closed: phase(1.09, 6.8), 'closed-stream': phase(0.94, 6.8), open: phase(1, 1), 'open-stream': phase(1, 1) },
  };
  // The non-streaming ratios of the 19:35 run of 2026-12-07 (median 0.798, interval 0.71–0.83);
  // streaming ones all above the goal; and Seed ÷ Portkey all under 8.
  const spanning = [0.94, 0.83, 0.81, 0.71, 0.89, 0.63, 0.77, 0.61, 0.84, 0.96, 0.8, 0.75, 0.6, 0.83, 0.9, 0.56, 0.78, 0.82, 0.64, 0.795];
  const above = spanning.map((value) => value + 0.3);
  const paired = (baseline: 'undici' | 'portkey', stream: boolean, ratios: number[]) => ({
    subject: 'seed' as const,
    baseline,
    stream,
    ratios,
    ...quartiles(ratios),
  });
  const overhead = {
    options: { concurrency: 50, ratePerSecond: 500 },
    targets: [seed],
    paired: [paired('undici', false, spanning), paired('undici', true, above), paired('portkey', false, spanning.map((value) => value * 7)), paired('portkey', true, [6, 7])],
    skipped: [],
    simulatorPeakRssMiB: 50,
  } as unknown as OverheadResult;
  const rows = targetsTable({ ...base, overhead })
    .split('\n')
    .filter((line) => line.startsWith('| throughput'));
  assert.equal(rows.length, 4);
  const [nonStreaming, portkey, streaming, portkeyStreaming] = rows;
  assert.match(nonStreaming ?? '', /0\.798× paired \(95% interval of the median 0\.71×–0\.83×, quartiles/);
  assert.match(nonStreaming ?? '', /\*\*not resolved\*\* \(under it by the median\) \|$/);
  assert.match(streaming ?? '', /95% interval of the median 1\.01×–1\.13×.* met \|$/);
  assert.match(portkey ?? '', /\*\*not met\*\* \|$/);
  assert.doesNotMatch(portkeyStreaming ?? '', /interval/, 'two pairs give no interval');
  assert.match(portkeyStreaming ?? '', /\*\*not met\*\* \|$/, 'and are judged on their median');
  assert.deepEqual(medianInterval(spanning) && [medianInterval(spanning)?.lower, medianInterval(spanning)?.upper], [0.71, 0.83]);
});

