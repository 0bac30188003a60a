/**
 * The promotion scenario's arithmetic (bench/scenarios/promotion.ts): how a process's scavenges
 * are summarized, which processes count as in the high-promotion state, and what the report
 * says about them. The scenario itself runs in the benchmark, not in `npm test`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { highPromotionCount, summarizeScavenges, type PromotionResult } from '../bench/scenarios/promotion.ts';
import { promotionSection } from '../bench/lib/report.ts';

test("a process's scavenges are summarized by their medians, in KiB and ms", () => {
  const summary = summarizeScavenges([
    { promotedBytes: 1_100 * 1024, pauseMs: 7 },
    { promotedBytes: 20 * 1024, pauseMs: 1.5 },
    { promotedBytes: 1_090 * 1024, pauseMs: 6 },
  ]);
  assert.deepEqual(summary, { promotedKiBMedian: 1_090, scavengeMedianMs: 6, scavenges: 3 });
  const none = summarizeScavenges([]);
  assert.equal(none.scavenges, 0);
  assert.ok(Number.isNaN(none.promotedKiBMedian));
});

const measured = (promotedKiBMedian: number) => ({ promotedKiBMedian, scavengeMedianMs: 1, scavenges: 9, latencyP99Ms: 10, failures: 0 });

test('only processes above the threshold count as in the high-promotion state; one with no scavenge measured does not', () => {
  const variant = { processes: [measured(14), measured(1_089), measured(256), measured(257), measured(Number.NaN)] };
  assert.equal(highPromotionCount(variant), 2);
  assert.equal(highPromotionCount(variant, 1_000), 1);
});

test('the report gives each set of flags its count, medians with their range, and every process', () => {
  const result: PromotionResult = {
    ratePerSecond: 500,
    phaseSeconds: 5,
    phases: 3,
    highThresholdKiB: 256,
    variants: [
      { label: "`npm start`'s flags", flags: [], processes: [measured(14), measured(20), measured(18)] },
      {
        label: 'without `--no-allocation-site-pretenuring`',
        flags: [],
        processes: [measured(15), { ...measured(1_090), scavengeMedianMs: 7, latencyP99Ms: 30, failures: 2 }, measured(17)],
      },
    ],
  };
  const section = promotionSection(result);
  assert.ok(section.startsWith('## 7. The high-promotion state over fresh processes'));
  assert.ok(section.includes('3 fresh Seed processes'));
  const rows = section.split('\n').filter((line) => line.startsWith('| `npm start`') || line.startsWith('| without'));
  assert.equal(rows.length, 2);
  assert.ok(rows[0]?.includes('| 3 | 0 | 18 (14–20) | 1.00 (1.00–1.00) | 10.00 (10.00–10.00) | 0 | 14, 20, 18 |'), rows[0]);
  assert.ok(rows[1]?.includes('| 3 | 1 | 17 (15–1090) | 1.00 (1.00–7.00) | 10.00 (10.00–30.00) | 2 | 15, 1090, 17 |'), rows[1]);
});
