/** The options the per-call counters share (bench/instructions.ts, bench/syscalls.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { targetsAndModes, wholeNumbers } from '../bench/lib/per-call.ts';

test('targets and modes: a baseline ref adds the baseline target, which needs one; unknown names are refused', () => {
  assert.deepEqual(targetsAndModes({ targets: 'seed, undici', modes: 'json,stream' }), { targets: ['seed', 'undici'], modes: ['json', 'stream'] });
  assert.deepEqual(targetsAndModes({ targets: 'seed', modes: 'stream', baseline: 'HEAD~1' }), { targets: ['seed', 'baseline'], modes: ['stream'] });
  assert.deepEqual(targetsAndModes({ targets: 'baseline,seed', modes: 'json', baseline: 'v1' }).targets, ['baseline', 'seed']);
  assert.throws(() => targetsAndModes({ targets: 'seed,baseline', modes: 'json' }), /--targets baseline needs --baseline GIT_REF/);
  assert.throws(() => targetsAndModes({ targets: 'seed,nginx', modes: 'json' }), /--targets: seed, undici or baseline, got nginx/);
  assert.throws(() => targetsAndModes({ targets: 'seed', modes: 'json,sse' }), /--modes: json or stream, got sse/);
});

test('whole numbers: each option at least 1, or an error naming it', () => {
  assert.deepEqual(wholeNumbers({ warm: '20000', requests: '5' }), { warm: 20_000, requests: 5 });
  assert.throws(() => wholeNumbers({ warm: '20000', requests: '0' }), /--requests: expected a whole number of at least 1/);
  assert.throws(() => wholeNumbers({ windows: '2.5' }), /--windows:/);
  assert.throws(() => wholeNumbers({ top: 'many' }), /--top:/);
});
