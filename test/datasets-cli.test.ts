/** CLI smoke tests: `node bin/seed.mjs …` against a temporary SQLite file. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../src/store/index.ts';
import { makeCall } from './helpers/backends.ts';

const BIN = new URL('../bin/seed.mjs', import.meta.url).pathname;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

describe('seed datasets / terms / audit (CLI)', () => {
  let directory: string;
  let url: string;
  const seed = (...args: string[]): Promise<Result> =>
    new Promise((resolve) => {
      execFile(process.execPath, [BIN, ...args], { cwd: directory, env: { ...process.env, SEED_STORE_URL: url, SEED_ACTOR: 'cli:test' }, timeout: 60_000 }, (error, stdout, stderr) => {
        resolve({ code: error === null ? 0 : Number(error.code ?? 1), stdout, stderr });
      });
    });

  before(async () => {
    directory = mkdtempSync(join(tmpdir(), 'seed-cli-'));
    url = `sqlite:${join(directory, 'seed.db')}`;
    const store = await openStore({ url });
    const payload = (content: string) => ({ request: { messages: [{ role: 'user', content }] }, response: { choices: [{ message: { role: 'assistant', content: `re: ${content}` } }] } });
    await store.insertCalls([
      makeCall({ id: 'call_openai_1', startedAt: Date.now() - 1000, route: 'chat', payload: payload('one'), termsProfile: 'openai' }),
      makeCall({ id: 'call_openai_2', startedAt: Date.now() - 900, route: 'chat', payload: payload('two'), termsProfile: 'openai' }),
      makeCall({ id: 'call_llama_1', startedAt: Date.now() - 800, route: 'chat', provider: 'openai-compatible', deployment: 'llama', payload: payload('three'), termsProfile: 'llama-3.1' }),
      makeCall({ id: 'call_old', startedAt: Date.now() - 30 * 86_400_000, route: 'chat', payload: payload('old'), termsProfile: 'openai' }),
    ]);
    await store.close();
    writeFileSync(join(directory, 'notes.jsonl'), '{"id":"n1","instruction":"say hi","output":"hi"}\n');
    writeFileSync(join(directory, 'notes.csv'), 'id,instruction,output\nc1,"say ""hi"", politely",hi\nc2,count,"1\n2"\n');
  });
  after(() => rmSync(directory, { recursive: true, force: true }));

  test('create, show, export (refused and accepted), purge, diff, audit log and verify', async () => {
    const created = await seed('datasets', 'create', 'chats', '--from-ledger', '--route', 'chat', '--since', '7d');
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /created chats@1 \(3 samples/);

    const imported = await seed('datasets', 'import', 'notes', 'notes.jsonl');
    assert.match(imported.stdout, /created notes@1 \(1 samples/);
    const csv = await seed('datasets', 'import', 'table', 'notes.csv', '--licence', 'deepseek-r1');
    assert.equal(csv.code, 0, csv.stderr);
    assert.match(csv.stdout, /created table@1 \(2 samples/);

    const shown = await seed('datasets', 'show', 'chats@1');
    assert.match(shown.stdout, /train-competing\s+refused\s+\(1 allowed, 2 forbidden\)/);
    assert.match(shown.stdout, /Not legal advice/);

    const refused = await seed('datasets', 'export', 'chats@1', '--purpose', 'train-competing', '--format', 'openai-chat', '--out', 'out');
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /refused: 2 of 3 samples/);
    assert.match(refused.stderr, /2 samples\s+openai@2024-01-31\s+Terms of Use 2023 §2\(c\)\(iii\)/);
    assert.match(refused.stderr, /call_openai_1, call_openai_2/);

    const accepted = await seed('datasets', 'export', 'chats@1', '--purpose', 'evaluate', '--format', 'sharegpt', '--out', 'out');
    assert.equal(accepted.code, 0, accepted.stderr);
    const records = readFileSync(join(directory, 'out', 'chats@1.sharegpt.jsonl'), 'utf8').trim().split('\n');
    assert.equal(records.length, 3);
    // Records follow sample ids: call_llama_1, call_openai_1, call_openai_2.
    assert.deepEqual(JSON.parse(records[1] ?? '{}'), { conversations: [{ from: 'human', value: 'one' }, { from: 'gpt', value: 're: one' }] });
    const manifest = JSON.parse(readFileSync(join(directory, 'out', 'manifest.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(manifest['purpose'], 'evaluate');
    assert.match(String(manifest['disclaimer']), /Not legal advice/);

    const dropped = await seed('datasets', 'export', 'chats', '--purpose', 'train-competing', '--format', 'openai-chat', '--out', 'out2', '--drop-violations');
    assert.equal(dropped.code, 0, dropped.stderr);
    assert.match(dropped.stdout, /dropped 2 samples: chats@1 → chats@2/);

    const purged = await seed('datasets', 'purge', '--source', 'provider=openai-compatible');
    assert.equal(purged.code, 0, purged.stderr);
    assert.match(purged.stdout, /chats@2 → chats@3: removed 1, kept 0: call_llama_1/);
    assert.match(purged.stdout, /notes@1: nothing descends/);

    const diff = await seed('datasets', 'diff', 'chats@1', 'chats@3');
    assert.match(diff.stdout, /chats@1 → chats@3: \+0 -3 ~0/);
    const list = await seed('datasets', 'list');
    // chats@1–3, notes@1 and the CSV import table@1 (purge leaves datasets it does not touch alone).
    assert.equal(list.stdout.trim().split('\n').length, 5);
    assert.match(list.stdout, /table@1/);

    const log = await seed('audit', 'log', '--action', 'dataset.purged');
    assert.match(log.stdout, /#\d+ .* cli:test {2}dataset\.purged {2}chats@3/);
    const verified = await seed('audit', 'verify');
    assert.equal(verified.code, 0, verified.stderr);
    assert.match(verified.stdout, /audit log ok: 9 entries/);
  });

  test('audit verify exits 1 naming the entry after a direct edit', async () => {
    const store = await openStore({ url });
    await store.db.withTables<{ audit_log: { seq: number; actor: string } }>().updateTable('audit_log').set({ actor: 'mallory' }).where('seq', '=', 2).execute();
    await store.close();
    const verified = await seed('audit', 'verify');
    assert.equal(verified.code, 1);
    assert.match(verified.stderr, /FAILED at entry #2/);
  });

  test('terms list and show print the profiles with the disclaimer; unknown ids exit 1', async () => {
    const list = await seed('terms', 'list');
    assert.equal(list.code, 0);
    assert.match(list.stdout, /^openai\s+2024-01-31\s+allowed\s+allowed\s+allowed\s+notAllowed/m);
    assert.match(list.stdout, /Not legal advice/);
    const shown = await seed('terms', 'show', 'llama-3.1');
    assert.match(shown.stdout, /Built with Llama/);
    const unknown = await seed('terms', 'show', 'nope');
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /unknown terms profile "nope"/);
  });
});
