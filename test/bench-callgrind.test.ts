/** Reading callgrind's dumps and choosing the Seed settings a build knows (bench/instructions.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { knownSettings, parsePerfMap, selfCostByFunction, takeLastDumpTotal } from '../bench/lib/callgrind.ts';

const dump = (total: number) => `# callgrind format\nversion: 1\nevents: Ir\nsummary: 0\n\nfn=(1) main\n0 ${total}\n\ntotals: ${total}\n`;

test('the newest dump is the highest number, not the last name in order (.10 after .9), and is removed once read', () => {
  const directory = mkdtempSync(join(tmpdir(), 'seed-callgrind-'));
  try {
    writeFileSync(join(directory, 'callgrind.out'), '');
    writeFileSync(join(directory, 'callgrind.out.9'), dump(900));
    writeFileSync(join(directory, 'callgrind.out.10'), dump(1_000));
    writeFileSync(join(directory, 'callgrind.out.10.bak'), dump(5));
    assert.equal(takeLastDumpTotal(directory), 1_000);
    assert.equal(existsSync(join(directory, 'callgrind.out.10')), false);
    assert.equal(takeLastDumpTotal(directory, join(directory, 'kept.out')), 900);
    assert.equal(existsSync(join(directory, 'kept.out')), true, 'kept under the given name');
    assert.throws(() => takeLastDumpTotal(directory), /wrote no dump/);
    writeFileSync(join(directory, 'callgrind.out.11'), '# callgrind format\nsummary: 0\n');
    assert.throws(() => takeLastDumpTotal(directory), /no totals line/);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test('a setting is passed only to a build whose config schema has its key', () => {
  const wanted = { keepWarmBytesPerSecond: 0, keyPollIntervalMs: 600_000, ledgerFlushIntervalMs: 600_000 };
  const key = (setting: string) => (setting === 'ledgerFlushIntervalMs' ? 'flushIntervalMs' : setting);
  const newer = 'keepWarmBytesPerSecond: z.number(),\n    keyPollIntervalMs: z.number().default(250),\n    flushIntervalMs: z.number(),';
  assert.deepEqual(knownSettings(wanted, newer, key), wanted);
  // A build before keyPollIntervalMs; a name in a comment is not a key.
  const older = 'keepWarmBytesPerSecond: z.number(),\n    // keyPollIntervalMs comes later\n    flushIntervalMs: z.number(),';
  assert.deepEqual(knownSettings(wanted, older, key), { keepWarmBytesPerSecond: 0, ledgerFlushIntervalMs: 600_000 });
});

test('unnamed code is named through the perf map, the entry written last winning, and costs of one name are summed', () => {
  const map = parsePerfMap(
    [
      '1000 100 JS:*route file:///work/main/dist/routing/router.js:65:25',
      'not a map line',
      '2000 80 JS:~scan file:///work/main/dist/providers/openai-chunk-scan.js:10:3',
      // V8 freed the first code and put other code at the same place.
      '1000 40 JS:*isAt file:///work/main/dist/providers/openai-chunk-scan.js:136:7',
    ].join('\n'),
  );
  assert.equal(map.length, 3);
  const annotated = [
    '--------------------------------------------------------------------------------',
    'Ir                   file:function',
    '--------------------------------------------------------------------------------',
    '5,000 (50.0%)  ???:0x0000000000001010 [???]',
    '3,000 (30.0%)  ???:0x0000000000001050 [???]',
    "1,000 (10.0%)  ???:0x0000000000002000'2 [???]",
    '  600 ( 6.0%)  ???:Builtins_LoadIC [/usr/bin/node]',
    '  400 ( 4.0%)  ???:0x0000000000009999 [???]',
    '  100 ( 1.0%)  ???:0x0000000000001020 [???]',
  ].join('\n');
  const costs = selfCostByFunction(annotated, map);
  assert.deepEqual(Object.fromEntries(costs), {
    'JS:*isAt dist/providers/openai-chunk-scan.js:136:7': 5_100,
    'JS:*route dist/routing/router.js:65:25': 3_000,
    'JS:~scan dist/providers/openai-chunk-scan.js:10:3': 1_000,
    Builtins_LoadIC: 600,
    '(unnamed code)': 400,
  });
});
