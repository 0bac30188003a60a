/** The Node flags `npm start` runs the gateway with (src/node-flags.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { nodeFlagsAdvice, SERVER_NODE_FLAGS } from '../src/node-flags.ts';

const NEW_SPACE_MIB = "const v8 = require('node:v8'); process.stdout.write(String(v8.getHeapSpaceStatistics().find((space) => space.space_name === 'new_space').space_size / 1048576));";

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

test('seed serve without the flags says which are missing and how to start it; with them it says nothing', () => {
  assert.equal(nodeFlagsAdvice([...SERVER_NODE_FLAGS, '--enable-source-maps']), null);
  const advice = nodeFlagsAdvice(['--max-semi-space-size=16']);
  assert.ok(advice?.includes('--min-semi-space-size=16'), advice ?? 'no advice');
  assert.ok(!advice?.startsWith('node runs without --min-semi-space-size=16 --max-semi-space-size=16'));
  assert.ok(advice?.includes(`node ${SERVER_NODE_FLAGS.join(' ')} bin/seed.mjs serve`));
});
