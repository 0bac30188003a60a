/**
 * The calls `bench/redis-instructions.ts` counts: each mode shares between a turn's ten calls
 * exactly what it says (the count it reports is only worth its label if so).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bucketsFor } from '../src/limits/buckets.ts';
import { callParts, DRIVER_MODES } from '../bench/lib/redis-limits-calls.ts';

/** The distinct bucket ids of each owner over a turn's calls. */
function distinct(mode: (typeof DRIVER_MODES)[number]): Record<string, number> {
  const ids = new Map<string, Set<string>>();
  for (const [caller, deployment] of callParts(mode, bucketsFor)) {
    for (const bucket of [...caller, ...deployment]) {
      const owner = bucket.id.split(':')[0] as string;
      const seen = ids.get(owner) ?? new Set<string>();
      seen.add(bucket.id);
      ids.set(owner, seen);
    }
  }
  return Object.fromEntries([...ids].map(([owner, seen]) => [owner, seen.size]));
}

test('each mode shares between its ten calls what it says, every call with the benchmark’s 11 buckets', () => {
  for (const mode of DRIVER_MODES) {
    const calls = callParts(mode, bucketsFor);
    assert.equal(calls.length, 10);
    for (const [caller, deployment] of calls) {
      assert.equal(caller.length + deployment.length, 11, `${mode}: rpm, tpm, usd/day on key, team, org; rpm, tpm on the deployment`);
      assert.ok(Object.isFrozen(caller) && Object.isFrozen(deployment), 'frozen, as the limiter keeps them');
    }
  }
  // Three buckets a key, team and org; two a deployment.
  assert.deepEqual(distinct('shared'), { key: 3, team: 3, org: 3, deployment: 2 });
  assert.deepEqual(distinct('mixed'), { key: 30, team: 3, org: 3, deployment: 2 });
  assert.deepEqual(distinct('none'), { key: 30, team: 30, org: 30, deployment: 20 });
  const [first, second] = callParts('shared', bucketsFor);
  assert.equal(first?.[0], second?.[0], 'shared: one caller bucket array for every call, as the limiter holds one per scope list');
});
