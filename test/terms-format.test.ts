// `seed terms list` and `seed terms show ID` output.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TERMS_DISCLAIMER, formatTermsList, formatTermsProfile, loadTermsRegistry } from '../src/terms/index.ts';

const registry = loadTermsRegistry();

function rowOf(table: string, id: string): string[] {
  const row = table.split('\n').find((line) => line.startsWith(`${id} `));
  assert.ok(row, `row for ${id}`);
  return row.split(/\s{2,}/);
}

test('the list shows a row per profile with version, the applied verdicts and review state', () => {
  const table = formatTermsList({ profiles: registry.list() });
  assert.match(table.split('\n')[0] ?? '', /^ID\s+VERSION\s+SERVE\s+EVALUATE\s+TRAIN\s+TRAIN-COMPETING\s+REVIEW$/);
  for (const profile of registry.list()) rowOf(table, profile.id);
  assert.deepEqual(rowOf(table, 'openai'), ['openai', '2024-01-31', 'allowed', 'allowed', 'allowed', 'notAllowed', '-']);
  assert.deepEqual(rowOf(table, 'azure-openai'), [
    'azure-openai',
    '2023-09',
    'allowed',
    'notAllowed*',
    'notAllowed*',
    'notAllowed',
    'pending',
  ]);
  assert.match(table, /\* held back until an operator confirms/);
  assert.ok(table.includes(TERMS_DISCLAIMER));
  assert.match(TERMS_DISCLAIMER, /not legal advice/i);
});

test('the list shows a confirmed profile with its declared verdicts and no legend', () => {
  const confirmed = loadTermsRegistry({
    confirmed: [
      { id: 'azure-openai', version: '2023-09', by: 'jane', at: '2025-02-01' },
      { id: 'mistral-api', version: 'seed-1', by: 'jane', at: '2025-02-01' },
    ],
  });
  const table = formatTermsList({ profiles: confirmed.list() });
  assert.deepEqual(rowOf(table, 'azure-openai').slice(2), ['allowed', 'allowed', 'allowed', 'notAllowed', 'confirmed']);
  assert.doesNotMatch(table, /held back/);
});

test('show prints source, quote, every purpose with clause and obligations, and the disclaimer', () => {
  const text = formatTermsProfile({ profile: registry.require('llama-3.1') });
  assert.match(text, /^llama-3\.1 — Meta Llama 3\.1/);
  assert.match(text, /source\s+https:\/\/www\.llama\.com\/llama3_1\/license\//);
  assert.match(text, /paraphrase\s+The clause against improving/);
  assert.match(text, /train: constrained\n\s+clause\s+Llama 3\.1 Community License §1\.b\.i/);
  assert.match(text, /obligation\s+name-prefix: Llama/);
  assert.match(text, /obligation\s+attribution: Built with Llama/);
  assert.match(text, /mau-threshold \(700,000,000 monthly active users\)/);
  assert.ok(text.trimEnd().endsWith(TERMS_DISCLAIMER));
});

test('show explains a review profile, pending and confirmed', () => {
  const pending = formatTermsProfile({ profile: registry.require('azure-openai') });
  assert.match(pending, /review\s+pending/);
  assert.match(pending, /train: notAllowed \(pending review; declared allowed\)/);
  const confirmed = loadTermsRegistry({
    confirmed: [{ id: 'azure-openai', version: '2023-09', by: 'jane@acme.example', at: '2025-02-01', note: 'ticket 42' }],
  });
  const text = formatTermsProfile({ profile: confirmed.require('azure-openai') });
  assert.match(text, /review\s+confirmed by jane@acme\.example at 2025-02-01 \(ticket 42\)/);
  assert.match(text, /train: allowed\n/);
});

test('show says when a profile states no date', () => {
  assert.match(formatTermsProfile({ profile: registry.require('gemini-api') }), /date\s+not stated/);
});
