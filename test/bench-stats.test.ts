/**
 * The interval a throughput target is judged on: the median's distribution-free confidence
 * interval from order statistics, checked against the published table of its ranks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { medianInterval } from '../bench/lib/stats.ts';

const oneTo = (count: number) => Array.from({ length: count }, (_, index) => index + 1);

test("the median's 95% interval takes the order statistics the binomial table gives", () => {
  // Ranks (k-th smallest, k-th largest) of the 95% interval: n = 6 → 1, 10 → 2, 20 → 6, 40 → 14, 60 → 22.
  for (const [count, order] of [
    [6, 1],
    [10, 2],
    [20, 6],
    [40, 14],
    [60, 22],
  ] as const) {
    const interval = medianInterval(oneTo(count));
    assert.ok(interval, `${count} values give an interval`);
    assert.equal(interval.lower, order, `${count} values: lower`);
    assert.equal(interval.upper, count - order + 1, `${count} values: upper`);
    assert.ok(interval.coverage >= 0.95 && interval.coverage < 1, `${count} values: coverage ${interval.coverage}`);
  }
  // 20 values: 1 − 2 · P(B(20, ½) ≤ 5) = 1 − 2 · 21 700 / 1 048 576.
  assert.equal(medianInterval(oneTo(20))?.coverage, 1 - (2 * 21_700) / 1_048_576);
});

test('the interval is of the values in order, whatever order they came in, and ignores what is not a number', () => {
  const shuffled = [0.94, 0.83, 0.81, 0.71, 0.89, 0.63, 0.77, 0.61, 0.84, 0.96, 0.8, 0.75, 0.6, 0.83, 0.9, 0.56, 0.78, 0.82, 0.64, 0.8];
  const interval = medianInterval([...shuffled, Number.NaN]);
  assert.deepEqual([interval?.lower, interval?.upper], [0.71, 0.83]);
});

test('too few values for the confidence asked give no interval', () => {
  assert.equal(medianInterval(oneTo(5)), undefined);
  assert.equal(medianInterval([]), undefined);
  assert.ok(medianInterval(oneTo(5), 0.9), 'five values do for 90% (coverage 93.75%)');
});

test('a large sample does not underflow', () => {
  const interval = medianInterval(oneTo(2_000));
  assert.ok(interval && interval.lower > 950 && interval.upper < 1_051, JSON.stringify(interval));
});
