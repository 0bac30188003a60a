/** keepYoungGenerationWarm (src/young-generation.ts): V8 keeps the spare semi-space through a quiet spell. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { keepYoungGenerationWarm } from '../src/young-generation.ts';
import { serverSchema } from '../src/config/schema.ts';

const run = promisify(execFile);
const root = new URL('..', import.meta.url).pathname;

/** Committed young generation (MiB) before and after a 6 s quiet spell, in a child with 1 MB semi-spaces. */
async function probe(bytesPerSecond: number): Promise<{ before: number; after: number }> {
  const { stdout } = await run(
    process.execPath,
    ['--min-semi-space-size=1', '--max-semi-space-size=1', '--no-memory-reducer', 'bin/run-ts.mjs', 'test/fixtures/young-generation-probe.ts', String(bytesPerSecond)],
    { cwd: root, encoding: 'utf8', timeout: 60_000 },
  );
  return JSON.parse(stdout) as { before: number; after: number };
}

test('after a quiet spell V8 releases a semi-space at the next scavenge; the keep-warm allocation stops it', async () => {
  const [without, withKeepWarm] = await Promise.all([probe(0), probe(2 * 1024 * 1024)]);
  // The control: if this fails, this Node's V8 no longer releases the semi-space after an idle
  // spell, and the keep-warm timer (server.keepWarmBytesPerSecond) has nothing left to prevent.
  assert.deepEqual(without, { before: 2, after: 1 }, `without keep-warm: ${JSON.stringify(without)}`);
  assert.deepEqual(withKeepWarm, { before: 2, after: 2 }, `with keep-warm: ${JSON.stringify(withKeepWarm)}`);
});

test('keepYoungGenerationWarm refuses a negative or non-numeric rate and a bad interval; its timer does not keep the process alive', () => {
  assert.throws(() => keepYoungGenerationWarm({ bytesPerSecond: -1 }), /bytesPerSecond must be a number of bytes ≥ 0, got -1/);
  assert.throws(() => keepYoungGenerationWarm({ bytesPerSecond: Number.NaN }), /got NaN/);
  assert.throws(() => keepYoungGenerationWarm({ bytesPerSecond: 1024, intervalMs: 0 }), /intervalMs must be a whole number ≥ 1, got 0/);
  keepYoungGenerationWarm({ bytesPerSecond: 0 }).stop();
  // The timer must not hold the process open: an unref'd timer is not an active resource.
  const timers = () => process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length;
  const before = timers();
  const on = keepYoungGenerationWarm({ bytesPerSecond: 1024 });
  assert.equal(timers(), before);
  on.stop();
});

test('server.keepWarmBytesPerSecond defaults to 2 MiB a second and accepts 0; a negative rate is a config error', () => {
  assert.equal(serverSchema.parse({}).keepWarmBytesPerSecond, 2 * 1024 * 1024);
  assert.equal(serverSchema.parse({ keepWarmBytesPerSecond: 0 }).keepWarmBytesPerSecond, 0);
  assert.equal(serverSchema.safeParse({ keepWarmBytesPerSecond: -5 }).success, false);
});
