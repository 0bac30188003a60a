// The shipped profiles file: it validates, lists every required provider, and says what the
// reference says on the facts that matter most.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  PURPOSES,
  SHIPPED_PROFILES_URL,
  loadShippedProfiles,
  parseProfilesFile,
  type TermsProfileData,
} from '../src/terms/index.ts';

const REQUIRED_IDS = [
  'openai',
  'azure-openai',
  'anthropic',
  'gemini-api',
  'gemma',
  'llama-2',
  'llama-3',
  'llama-3.1',
  'qwen',
  'deepseek-r1',
  'mistral-api',
  'in-house',
  'human',
];

function shipped(id: string): TermsProfileData {
  const profile = loadShippedProfiles().find((candidate) => candidate.id === id);
  assert.ok(profile, `shipped profile ${id}`);
  return profile;
}

test('the shipped file validates and contains every required profile', () => {
  const ids = loadShippedProfiles().map((profile) => profile.id);
  assert.deepEqual([...ids].sort(), [...REQUIRED_IDS].sort());
});

test('every shipped profile records a source, a version and a marked quote', () => {
  for (const profile of loadShippedProfiles()) {
    assert.ok(profile.source.length > 0, profile.id);
    assert.ok(profile.version.length > 0, profile.id);
    assert.ok(['quote', 'paraphrase'].includes(profile.quote.kind), profile.id);
    for (const purpose of PURPOSES) assert.ok(profile.purposes[purpose].clause.length > 0, `${profile.id} ${purpose}`);
  }
});

test('no shipped profile allows training a competing model more than training in general', () => {
  const rank = { notAllowed: 0, constrained: 1, allowed: 2 } as const;
  for (const profile of loadShippedProfiles()) {
    assert.ok(
      rank[profile.purposes['train-competing'].verdict] <= rank[profile.purposes.train.verdict],
      `${profile.id}: train-competing is more permissive than train`,
    );
  }
});

test('openai: train-competing is notAllowed by the 2023 §2(c)(iii) clause; other training is allowed', () => {
  const openai = shipped('openai');
  assert.equal(openai.purposes['train-competing'].verdict, 'notAllowed');
  assert.match(openai.purposes['train-competing'].clause, /2023 §2\(c\)\(iii\)/);
  assert.equal(openai.purposes.train.verdict, 'allowed');
  assert.equal(openai.review, false);
});

test('llama-3.1: train is constrained with the name-prefix and attribution obligations', () => {
  const train = shipped('llama-3.1').purposes.train;
  assert.equal(train.verdict, 'constrained');
  assert.match(train.clause, /§1\.b\.i/);
  assert.deepEqual(
    train.obligations.filter((obligation) => obligation.kind !== 'mau-threshold'),
    [
      { kind: 'name-prefix', text: 'Llama' },
      { kind: 'attribution', text: 'Built with Llama' },
    ],
  );
  assert.ok(
    train.obligations.some((obligation) => obligation.kind === 'mau-threshold' && obligation.monthlyActiveUsers === 700_000_000),
  );
});

test('llama-2 and llama-3: training is notAllowed and evaluation carries a use restriction', () => {
  for (const id of ['llama-2', 'llama-3']) {
    const profile = shipped(id);
    assert.equal(profile.purposes.train.verdict, 'notAllowed', id);
    assert.match(profile.purposes.train.clause, /§1\.b\.v/, id);
    assert.equal(profile.purposes.evaluate.verdict, 'constrained', id);
    assert.equal(profile.purposes.evaluate.obligations[0]?.kind, 'use-restriction', id);
  }
});

test('deepseek-r1: training (distillation) is allowed, competing or not', () => {
  const profile = shipped('deepseek-r1');
  assert.equal(profile.purposes.train.verdict, 'allowed');
  assert.equal(profile.purposes['train-competing'].verdict, 'allowed');
  assert.match(profile.quote.text, /distillation for training other LLMs/);
});

test('azure-openai and mistral-api are marked for review; the others are not', () => {
  const underReview = loadShippedProfiles()
    .filter((profile) => profile.review)
    .map((profile) => profile.id);
  assert.deepEqual(underReview.sort(), ['azure-openai', 'mistral-api']);
});

test('qwen: training requires "Built with Qwen" and the 100M MAU licence threshold', () => {
  const train = shipped('qwen').purposes.train;
  assert.equal(train.verdict, 'constrained');
  assert.ok(train.obligations.some((obligation) => obligation.kind === 'attribution' && /Built with Qwen/.test(obligation.text)));
  assert.ok(
    train.obligations.some((obligation) => obligation.kind === 'mau-threshold' && obligation.monthlyActiveUsers === 100_000_000),
  );
});

test('gemma: training carries the flow-down obligation of a Model Derivative', () => {
  const train = shipped('gemma').purposes.train;
  assert.equal(train.verdict, 'constrained');
  assert.match(train.clause, /§1\.1\(e\)/);
  assert.equal(train.obligations[0]?.kind, 'flow-down');
});

test('shipped profiles are frozen', () => {
  const openai = shipped('openai');
  assert.ok(Object.isFrozen(openai) && Object.isFrozen(openai.purposes.train));
});

test('a constrained verdict without obligations is rejected', () => {
  const text = readFileSync(SHIPPED_PROFILES_URL, 'utf8').replace(
    /(- id: openai[\s\S]*?train:\n\s+verdict: )allowed/,
    '$1constrained',
  );
  assert.throws(() => parseProfilesFile({ text, name: 'broken.yaml' }), /broken\.yaml[\s\S]*constrained verdict needs/);
});

test('an allowed verdict with obligations is rejected', () => {
  const text = readFileSync(SHIPPED_PROFILES_URL, 'utf8').replace(
    /(- id: qwen[\s\S]*?train:\n\s+verdict: )constrained/,
    '$1allowed',
  );
  assert.throws(() => parseProfilesFile({ text, name: 'broken.yaml' }), /only a constrained verdict has obligations/);
});

test('a profiles file that lists an id twice is rejected', () => {
  const text = readFileSync(SHIPPED_PROFILES_URL, 'utf8').replace('- id: anthropic', '- id: openai');
  assert.throws(() => parseProfilesFile({ text, name: 'twice.yaml' }), /twice\.yaml lists "openai" twice/);
});
