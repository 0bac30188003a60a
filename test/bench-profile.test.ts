/**
 * The benchmark's profile summary and flame graph input (bench/lib/profile.ts), on a small
 * hand-made `.cpuprofile`: what the published profile tables and the `.folded` file rest on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { foldedStacks, summarizeProfile } from '../bench/lib/profile.ts';

const frame = (functionName: string, url = '', lineNumber = -1) => ({ functionName, url, lineNumber, scriptId: '0', columnNumber: 0 });

/** root → main → { handle (Seed's dist/) → parse;semi, undici's request }, and (idle). */
const PROFILE = {
  startTime: 1_000,
  endTime: 2_000,
  nodes: [
    { id: 1, callFrame: frame('(root)'), children: [2, 6] },
    { id: 2, callFrame: frame('main', 'file:///app/dist/main.js', 3), children: [3, 5] },
    { id: 3, callFrame: frame('handle', 'file:///app/dist/gateway/calls.js', 10), children: [4] },
    { id: 4, callFrame: frame('parse;semi', 'file:///app/node_modules/undici/lib/core/util.js', 41) },
    { id: 5, callFrame: frame('request', 'file:///app/node_modules/undici/lib/api/api-request.js', 7) },
    { id: 6, callFrame: frame('(idle)') },
  ],
  samples: [4, 5, 4, 4, 5, 6, 3, 4],
  timeDeltas: [0, 100, 100, 100, 200, 300, 400, 500],
};

function withProfile(run: (file: string) => void): void {
  const directory = mkdtempSync(join(tmpdir(), 'seed-profile-test-'));
  try {
    const file = join(directory, 'seed.cpuprofile');
    writeFileSync(file, JSON.stringify(PROFILE));
    run(file);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

test('folded stacks: one sorted line per stack, root first, time in µs, idle and samples before the window left out', () => {
  withProfile((file) => {
    // Timestamps of the samples: 1000, 1100, 1200, 1300, 1500, 1800, 2200, 2700; from 1200 on.
    // Each weighs its own delta, as in the summary; `;` in a name becomes `:`.
    const folded = foldedStacks(file, { fromMicroseconds: 1_200 });
    assert.equal(
      folded,
      'main dist/main.js;handle dist/gateway/calls.js 400\n' +
        'main dist/main.js;handle dist/gateway/calls.js;parse:semi undici/lib/core/util.js:42 700\n' +
        'main dist/main.js;request undici/lib/api/api-request.js:8 200\n',
    );
  });
});

test('folded stacks sum to the busy time the summary reports', () => {
  withProfile((file) => {
    const folded = foldedStacks(file);
    const totalMicroseconds = folded
      .trim()
      .split('\n')
      .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
    assert.equal(totalMicroseconds / 1_000, summarizeProfile(file).busyMs);
  });
});
