/** bench/lib/proc.ts: what the benchmark reads of a process from /proc. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sampleProcess } from '../bench/lib/proc.ts';

test('a process sample counts the minor page faults of memory touched afresh', { skip: process.platform !== 'linux' && 'reads /proc' }, () => {
  const before = sampleProcess(process.pid);
  assert.ok(before !== undefined);
  // 32 MiB never touched before: at least one fault per 4 KiB page written.
  const fresh = Buffer.allocUnsafeSlow(32 * 1024 * 1024);
  fresh.fill(1);
  const after = sampleProcess(process.pid);
  assert.ok(after !== undefined);
  assert.ok(after.minorFaults - before.minorFaults >= 4_000, `${after.minorFaults - before.minorFaults} minor faults for 32 MiB`);
  assert.ok(after.cpuMs >= before.cpuMs && after.rssKiB > 0 && after.peakRssKiB >= after.rssKiB);
});

test('a process that is gone has no sample', () => {
  assert.equal(sampleProcess(2 ** 22 + 1), undefined);
});
