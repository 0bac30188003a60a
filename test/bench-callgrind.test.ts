/** Reading callgrind's dumps and choosing the Seed settings a build knows (bench/instructions.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { knownSettings, takeLastDumpTotal } from '../bench/lib/callgrind.ts';

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
    assert.equal(takeLastDumpTotal(directory), 900);
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
