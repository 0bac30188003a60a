/** The Node flags `npm start` runs the gateway with (src/node-flags.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nodeFlagsAdvice, SERVER_NODE_FLAGS } from '../src/node-flags.ts';

const NEW_SPACE_MIB = "const v8 = require('node:v8'); process.stdout.write(String(v8.getHeapSpaceStatistics().find((space) => space.space_name === 'new_space').space_size / 1048576));";

/**
 * Allocates 400 000 objects from one object literal and keeps them all (V8's pretenuring feedback
 * sees every one survive), then 50 000 more from the same literal, and prints by how much each
 * generation grew during the second batch: the young one when V8 allocates them young, the old
 * one when it has pretenured the literal.
 */
const PRETENURING_PROBE = `
const v8 = require('node:v8');
const used = (name) => v8.getHeapSpaceStatistics().find((space) => space.space_name === name).space_used_size;
function entry(i) { return { id: i, next: i + 1, payload: null }; }
const kept = [];
for (let i = 0; i < 400000; i++) kept.push(entry(i));
globalThis.gc({ type: 'minor' });
const fresh = new Array(50000);
const young = used('new_space'), old = used('old_space');
for (let i = 0; i < fresh.length; i++) fresh[i] = entry(i);
process.stdout.write(JSON.stringify({ youngGrowth: used('new_space') - young, oldGrowth: used('old_space') - old }));
`;

function generationGrowth(flags: readonly string[]): { youngGrowth: number; oldGrowth: number } {
  // `--single-threaded`: with V8's compilers and GC on helper threads, whether the loop's code is
  // optimized before or after V8 decides to pretenure the literal depends on timing, and Node's
  // default left the objects young in 3 of 40 runs (and once in CI); on one thread, in none of 67.
  const child = spawnSync(process.execPath, ['--expose-gc', '--single-threaded', ...flags, '-e', PRETENURING_PROBE], { encoding: 'utf8' });
  assert.equal(child.status, 0, child.stderr);
  return JSON.parse(child.stdout) as { youngGrowth: number; oldGrowth: number };
}

function newSpaceMiB(flags: readonly string[]): number {
  const child = spawnSync(process.execPath, [...flags, '-e', NEW_SPACE_MIB], { encoding: 'utf8' });
  assert.equal(child.status, 0, child.stderr);
  return Number(child.stdout);
}

test('npm start runs seed serve with the server flags', () => {
  const { scripts } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> };
  assert.equal(scripts['start'], `node ${SERVER_NODE_FLAGS.join(' ')} bin/seed.mjs serve`);
});

test('the flags give the process a 16 MB young generation from its start; without them it starts smaller', () => {
  assert.equal(newSpaceMiB(SERVER_NODE_FLAGS), 16);
  assert.ok(newSpaceMiB([]) < 16);
});

test('with the flags V8 keeps allocating a long-surviving literal young; without them it pretenures it', () => {
  // 50 000 objects of 3 fields are ~2.4 MB; the other generation grows by what the loop itself
  // allocates besides (compiled code, feedback: 0–170 KB seen), a small fraction of that.
  const withFlags = generationGrowth(SERVER_NODE_FLAGS);
  assert.ok(withFlags.youngGrowth > 2_000_000 && withFlags.oldGrowth < withFlags.youngGrowth / 4, JSON.stringify(withFlags));
  // Node's default: the literal's objects are born old (what the flag prevents in the gateway).
  const withoutFlag = generationGrowth(SERVER_NODE_FLAGS.filter((flag) => flag !== '--no-allocation-site-pretenuring'));
  assert.ok(withoutFlag.oldGrowth > 2_000_000 && withoutFlag.youngGrowth < withoutFlag.oldGrowth / 4, JSON.stringify(withoutFlag));
});

test('seed serve without the flags says which are missing and how to start it; with them it says nothing', () => {
  assert.equal(nodeFlagsAdvice([...SERVER_NODE_FLAGS, '--enable-source-maps']), null);
  const advice = nodeFlagsAdvice(['--max-semi-space-size=16']);
  assert.ok(advice?.includes('--min-semi-space-size=16'), advice ?? 'no advice');
  assert.ok(!advice?.startsWith('node runs without --min-semi-space-size=16 --max-semi-space-size=16'));
  assert.ok(advice?.includes(`node ${SERVER_NODE_FLAGS.join(' ')} bin/seed.mjs serve`));
  const pretenuring = nodeFlagsAdvice(['--min-semi-space-size=16', '--max-semi-space-size=16', '--no-memory-reducer']);
  assert.ok(pretenuring?.startsWith('node runs without --no-allocation-site-pretenuring: '), pretenuring ?? 'no advice');
  assert.ok(!pretenuring?.includes('young generation shrinks'), pretenuring ?? 'no advice');
  const reducer = nodeFlagsAdvice(SERVER_NODE_FLAGS.filter((flag) => flag !== '--no-memory-reducer'));
  assert.ok(reducer?.startsWith('node runs without --no-memory-reducer: an idle spell'), reducer ?? 'no advice');
});

test("the bench starts each build with its own npm start's flags", async () => {
  const { serverNodeFlagsOf } = await import('../bench/lib/targets.ts');
  assert.deepEqual(serverNodeFlagsOf(), [...SERVER_NODE_FLAGS]);
  const directory = mkdtempSync(join(tmpdir(), 'seed-flags-'));
  try {
    writeFileSync(join(directory, 'package.json'), JSON.stringify({ scripts: { start: 'node bin/seed.mjs serve' } }));
    assert.deepEqual(serverNodeFlagsOf(directory), []);
    writeFileSync(join(directory, 'package.json'), JSON.stringify({ scripts: { start: 'tsx src/cli/main.ts serve' } }));
    assert.throws(() => serverNodeFlagsOf(directory), /the start script is not/);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test('Node refuses the flags in NODE_OPTIONS, which is why they are on the command line', () => {
  for (const flag of ['--min-semi-space-size=16', '--no-memory-reducer', '--no-allocation-site-pretenuring']) {
    assert.ok(SERVER_NODE_FLAGS.includes(flag));
    const child = spawnSync(process.execPath, ['-e', '0'], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: flag } });
    assert.notEqual(child.status, 0, `${flag} was accepted in NODE_OPTIONS`);
    assert.match(child.stderr, /is not allowed in NODE_OPTIONS/);
  }
});

test("the bench's own Node servers run with Seed's npm start flags unless told to take Node's defaults", { skip: process.platform !== 'linux' && 'reads /proc' }, async () => {
  const { benchNodeFlags, startSimulator } = await import('../bench/lib/targets.ts');
  assert.deepEqual(benchNodeFlags(undefined), [...SERVER_NODE_FLAGS]);
  assert.deepEqual(benchNodeFlags('npm-start'), [...SERVER_NODE_FLAGS]);
  assert.deepEqual(benchNodeFlags('none'), []);
  assert.throws(() => benchNodeFlags('fast'), /expected npm-start or none/);
  // The simulator, the "direct" side of every added latency, is started with them.
  const simulator = await startSimulator();
  try {
    const commandLine = readFileSync(`/proc/${simulator.pid}/cmdline`, 'utf8').split('\0');
    for (const flag of SERVER_NODE_FLAGS) assert.ok(commandLine.includes(flag), `${flag} missing from ${commandLine.join(' ')}`);
  } finally {
    await simulator.stop();
  }
});
