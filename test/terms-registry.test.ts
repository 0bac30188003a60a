// Loading the registry: shipped defaults merged with the operator's `terms:` section.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { SeedError } from '../src/errors.ts';
import {
  TermsRegistryError,
  loadShippedProfiles,
  loadTermsRegistry,
  termsConfigSchema,
  verdictFor,
  type OperatorProfile,
  type TermsProfileData,
} from '../src/terms/index.ts';

const confirmedAzure = { id: 'azure-openai', version: '2023-09', by: 'jane@acme.example', at: '2025-02-01' };

function newProfile(overrides: Partial<TermsProfileData> = {}): TermsProfileData {
  const allowed = { verdict: 'allowed' as const, clause: 'Apache-2.0', reason: 'no output restriction', obligations: [] };
  return {
    id: 'acme-apache',
    version: '1',
    title: 'Apache-2.0 open weights',
    source: 'https://www.apache.org/licenses/LICENSE-2.0',
    date: '2004-01',
    quote: { kind: 'paraphrase', text: 'No restriction on outputs.' },
    review: false,
    purposes: { serve: allowed, evaluate: allowed, train: allowed, 'train-competing': allowed },
    ...overrides,
  };
}

function problemsOf(action: () => unknown): TermsRegistryError['problems'] {
  try {
    action();
  } catch (error) {
    assert.ok(error instanceof TermsRegistryError, String(error));
    return error.problems;
  }
  assert.fail('expected a TermsRegistryError');
}

test('the default registry holds every shipped profile in file order, frozen', () => {
  const registry = loadTermsRegistry();
  assert.deepEqual(
    registry.list().map((profile) => profile.id),
    loadShippedProfiles().map((profile) => profile.id),
  );
  assert.equal(registry.human.id, 'human');
  assert.deepEqual(registry.warnings, []);
  const openai = registry.require('openai');
  assert.equal(openai.origin, 'shipped');
  assert.equal(openai.confirmation, null);
  assert.ok(Object.isFrozen(openai) && Object.isFrozen(openai.purposes.train) && Object.isFrozen(registry.list()));
  assert.throws(() => {
    (openai as { version: string }).version = 'tampered';
  }, TypeError);
});

test('an unknown id is undefined from get and a not_found SeedError from require', () => {
  const registry = loadTermsRegistry();
  assert.equal(registry.get('nope'), undefined);
  assert.throws(
    () => registry.require('nope'),
    (error: unknown) => error instanceof SeedError && error.code === 'not_found' && /"nope".*openai/.test(error.message),
  );
});

test('azure-openai (review) blocks evaluation and training until confirmed, never serving', () => {
  const profile = loadTermsRegistry().require('azure-openai');
  assert.equal(verdictFor({ profile, purpose: 'serve' }).verdict, 'allowed');
  for (const purpose of ['evaluate', 'train', 'train-competing'] as const) {
    const result = verdictFor({ profile, purpose });
    assert.equal(result.verdict, 'notAllowed', purpose);
  }
  assert.equal(verdictFor({ profile, purpose: 'train' }).pendingReview, true);
});

test('once confirmed, azure-openai gets its declared verdicts and records who and when', () => {
  const registry = loadTermsRegistry({ confirmed: [{ ...confirmedAzure, note: 'legal ticket 42' }] });
  const profile = registry.require('azure-openai');
  assert.deepEqual(profile.confirmation, { by: 'jane@acme.example', at: '2025-02-01', note: 'legal ticket 42' });
  assert.equal(verdictFor({ profile, purpose: 'train' }).verdict, profile.purposes.train.verdict);
  assert.equal(verdictFor({ profile, purpose: 'train' }).verdict, 'allowed');
  assert.equal(verdictFor({ profile, purpose: 'evaluate' }).verdict, 'allowed');
  // confirming applies the declaration, which still forbids competing models
  assert.equal(verdictFor({ profile, purpose: 'train-competing' }).verdict, 'notAllowed');
  assert.equal(verdictFor({ profile, purpose: 'train-competing' }).pendingReview, false);
});

test('a confirmation of another version is not applied, and is reported as a warning', () => {
  const registry = loadTermsRegistry({ confirmed: [{ ...confirmedAzure, version: '2022-01' }] });
  const profile = registry.require('azure-openai');
  assert.equal(profile.confirmation, null);
  assert.equal(verdictFor({ profile, purpose: 'train' }).verdict, 'notAllowed');
  assert.equal(registry.warnings.length, 1);
  assert.match(registry.warnings[0] ?? '', /confirmed\[0\].*"2022-01".*"2023-09"/);
});

test('confirming a profile that needs no review is accepted with a warning', () => {
  const registry = loadTermsRegistry({ confirmed: [{ ...confirmedAzure, id: 'openai', version: '2024-01-31' }] });
  assert.match(registry.warnings[0] ?? '', /"openai" is not marked for review/);
});

test('confirming an unknown profile, or one twice, is an error with its path', () => {
  const problems = problemsOf(() =>
    loadTermsRegistry({ confirmed: [{ ...confirmedAzure, id: 'azure' }, confirmedAzure, confirmedAzure] }),
  );
  assert.deepEqual(
    problems.map((problem) => problem.path),
    [
      ['confirmed', 0, 'id'],
      ['confirmed', 2, 'id'],
    ],
  );
  assert.match(problems[0]?.message ?? '', /unknown terms profile "azure"/);
});

test('an operator override of a shipped profile keeps the fields it leaves out', () => {
  const override: OperatorProfile = {
    id: 'mistral-api',
    version: '2025-03-acme',
    review: false,
    purposes: {
      'train-competing': { verdict: 'allowed', clause: 'Acme–Mistral agreement §4', reason: 'negotiated', obligations: [] },
    },
  };
  const registry = loadTermsRegistry({ overrides: [override] });
  const profile = registry.require('mistral-api');
  const shipped = loadTermsRegistry().require('mistral-api');
  assert.equal(profile.origin, 'operator');
  assert.equal(profile.version, '2025-03-acme');
  assert.equal(profile.title, shipped.title);
  assert.deepEqual(profile.purposes.train, shipped.purposes.train);
  assert.equal(verdictFor({ profile, purpose: 'train' }).verdict, 'allowed');
  assert.equal(verdictFor({ profile, purpose: 'train-competing' }).clause, 'Acme–Mistral agreement §4');
  // the override replaces the profile in place, it does not add one
  assert.equal(registry.list().length, loadShippedProfiles().length);
});

test('an override that changes a shipped profile must state a new version', () => {
  const problems = problemsOf(() =>
    loadTermsRegistry({ overrides: [{ id: 'openai', version: '2024-01-31', title: 'OpenAI (Acme contract)' }] }),
  );
  assert.deepEqual(problems[0]?.path, ['profiles', 0, 'version']);
  assert.match(problems[0]?.message ?? '', /keeps its version "2024-01-31"; state a new version/);
});

test('an override identical to the shipped profile may keep its version', () => {
  const registry = loadTermsRegistry({ overrides: [{ id: 'openai', version: '2024-01-31' }] });
  assert.equal(registry.require('openai').origin, 'operator');
});

test('an override can be confirmed under its own version', () => {
  const registry = loadTermsRegistry({
    overrides: [{ id: 'azure-openai', version: '2025-acme' }],
    confirmed: [{ ...confirmedAzure, version: '2025-acme' }],
  });
  assert.equal(verdictFor({ profile: registry.require('azure-openai'), purpose: 'train' }).verdict, 'allowed');
});

test('an operator can add a complete new profile', () => {
  const registry = loadTermsRegistry({ overrides: [newProfile()] });
  assert.equal(registry.list().at(-1)?.id, 'acme-apache');
  assert.equal(registry.require('acme-apache').origin, 'operator');
});

test('a new profile with fields missing is rejected with every problem and its path', () => {
  const problems = problemsOf(() => loadTermsRegistry({ overrides: [{ id: 'acme-partial', version: '1', title: 'x' }] }));
  const paths = problems.map((problem) => problem.path.join('.'));
  for (const field of ['source', 'date', 'quote', 'review', 'purposes']) assert.ok(paths.includes(`profiles.0.${field}`), field);
  assert.match(problems[0]?.message ?? '', /a new profile needs every field/);
});

test('an override that breaks a verdict invariant is rejected at the purpose path', () => {
  const problems = problemsOf(() =>
    loadTermsRegistry({
      overrides: [
        {
          id: 'openai',
          version: 'acme',
          purposes: { train: { verdict: 'constrained', clause: 'x', reason: 'y', obligations: [] } },
        },
      ],
    }),
  );
  assert.deepEqual(problems[0]?.path, ['profiles', 0, 'purposes', 'train', 'obligations']);
});

test('an operator listing one id twice is an error', () => {
  const problems = problemsOf(() => loadTermsRegistry({ overrides: [newProfile(), newProfile({ version: '2' })] }));
  assert.deepEqual(problems[0]?.path, ['profiles', 1, 'id']);
});

test('the terms config section parses from YAML, with defaults', () => {
  assert.deepEqual(termsConfigSchema.parse({}), { profiles: [], confirmed: [] });
  const config = termsConfigSchema.parse(
    parse(`
profiles:
  - id: mistral-api
    version: 2025-03-acme
    review: false
confirmed:
  - id: azure-openai
    version: "2023-09"
    by: jane@acme.example
    at: 2025-02-01T10:00:00Z
`),
  );
  const registry = loadTermsRegistry({ overrides: config.profiles, confirmed: config.confirmed });
  assert.equal(registry.require('mistral-api').review, false);
  assert.equal(registry.require('azure-openai').confirmation?.at, '2025-02-01T10:00:00Z');
});

test('the terms config section rejects a profile without version and a confirmation without a date', () => {
  const result = termsConfigSchema.safeParse({
    profiles: [{ id: 'openai' }],
    confirmed: [{ id: 'azure-openai', version: '2023-09', by: 'jane', at: 'last tuesday' }],
  });
  assert.equal(result.success, false);
  const paths = result.error?.issues.map((issue) => issue.path.join('.'));
  assert.deepEqual(paths?.sort(), ['confirmed.0.at', 'profiles.0.version']);
});

test('the terms config section rejects unknown keys', () => {
  assert.equal(termsConfigSchema.safeParse({ confirm: [] }).success, false);
  assert.equal(termsConfigSchema.safeParse({ profiles: [{ id: 'openai', version: '2', colour: 'red' }] }).success, false);
});
