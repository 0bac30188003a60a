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
import { pairedTailsSection, ratioAgainst, renderReport, restatedTargetRows, type RunReport } from '../bench/lib/report.ts';
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
