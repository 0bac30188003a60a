/** `seed ledger rejected`: listing and retrying the calls the store refused, through the real CLI. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LedgerWriter } from '../src/ledger/index.ts';
import { openStore } from '../src/store/index.ts';
import { makeCall } from './helpers/backends.ts';

const BIN = new URL('../bin/seed.mjs', import.meta.url).pathname;

let directory: string;
let spill: string;
let url: string;

const seed = (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
  new Promise((resolve) => {
    execFile(process.execPath, [BIN, 'ledger', 'rejected', '--spill-dir', spill, '--store', url, ...args], { cwd: directory, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : Number(error.code ?? 1), stdout, stderr });
    });
  });

const good = makeCall({ id: 'call_good' });
// better-sqlite3 cannot bind an object: the store refuses this call however often it is tried.
const bad = makeCall({ id: 'call_bad', route: { not: 'text' } as unknown as string });

before(() => {
  directory = mkdtempSync(join(tmpdir(), 'seed-ledger-cli-'));
  spill = join(directory, 'spill');
  mkdirSync(spill);
  url = `sqlite:${join(directory, 'seed.db')}`;
});
after(() => rmSync(directory, { recursive: true, force: true }));

test('with no rejected calls it says so', async () => {
  const listed = await seed();
  assert.equal(listed.code, 0, listed.stderr);
  assert.match(listed.stdout, /no rejected calls in .*rejected\.jsonl/);
});

test('lists the rejected calls; a retry stores what the store now takes and keeps the rest', async () => {
  writeFileSync(join(spill, 'rejected.jsonl'), `${JSON.stringify(good)}\n${JSON.stringify(bad)}\n{"torn\n`);
  const listed = await seed();
  assert.equal(listed.code, 0, listed.stderr);
  assert.match(listed.stdout, /2 rejected calls in .*rejected\.jsonl \(and 1 unreadable line\)/);
  assert.match(listed.stdout, /call_good/);
  assert.match(listed.stdout, /call_bad/);
  assert.match(listed.stdout, /seed ledger rejected --retry/);

  // While a gateway holds the spill directory, a retry is refused and changes nothing.
  const store = await openStore({ url });
  const gateway = await LedgerWriter.open({ store, spillDirectory: spill });
  try {
    const refused = await seed('--retry');
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /in use by process \d+: stop the gateway first/);
    assert.deepEqual(readdirSync(spill).filter((name) => name.endsWith('.jsonl')), ['rejected.jsonl']);
  } finally {
    await gateway.close();
  }

  const retried = await seed('--retry');
  assert.equal(retried.code, 1, 'a call refused again fails the command');
  assert.match(retried.stdout, /stored 1 of 2 rejected calls; 1 refused again, kept in .*rejected\.jsonl/);
  assert.ok((await store.getCall('call_good')) !== null, 'the call the store takes is in the ledger');
  assert.equal(await store.getCall('call_bad'), null);
  const kept = readFileSync(join(spill, 'rejected.jsonl'), 'utf8').trim().split('\n');
  assert.deepEqual(kept.map((line) => (JSON.parse(line) as { id: string }).id), ['call_bad']);
  assert.deepEqual(readdirSync(spill).filter((name) => name.startsWith('spill-')), [], 'no spill file is left behind');
  await store.close();
  assert.ok(existsSync(join(spill, 'rejected.jsonl')));
});
