// The x-seed-purpose header, and the message a caller gets when no deployment's terms allow
// the purpose it declared.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SeedError } from '../src/errors.ts';
import {
  explainRefusal,
  loadTermsRegistry,
  parsePurpose,
  purposeNotAllowedError,
} from '../src/terms/index.ts';

const registry = loadTermsRegistry();

function invalidPurpose(pattern: RegExp) {
  return (error: unknown) =>
    error instanceof SeedError &&
    error.code === 'invalid_request' &&
    error.status === 400 &&
    error.param === 'x-seed-purpose' &&
    pattern.test(error.message);
}

test('no header means serve', () => {
  assert.equal(parsePurpose(undefined), 'serve');
  assert.equal(parsePurpose([]), 'serve');
});

test('the header is case-insensitive and trimmed', () => {
  assert.equal(parsePurpose('train'), 'train');
  assert.equal(parsePurpose('  Evaluate\t'), 'evaluate');
  assert.equal(parsePurpose('TRAIN-COMPETING'), 'train-competing');
  assert.equal(parsePurpose(['serve']), 'serve');
});

test('an unknown purpose is invalid_request naming the header and every valid purpose', () => {
  assert.throws(() => parsePurpose('training'), invalidPurpose(/serve, evaluate, train, train-competing; got "training"/));
  assert.throws(() => parsePurpose('train_competing'), invalidPurpose(/got "train_competing"/));
});

test('an empty or repeated header is invalid rather than a silent serve', () => {
  assert.throws(() => parsePurpose('   '), invalidPurpose(/got an empty value/));
  assert.throws(() => parsePurpose(['train', 'serve']), invalidPurpose(/sent 2 times/));
});

test('a refusal names the route, the purpose, and each forbidding deployment with its clause', () => {
  const message = explainRefusal({
    route: 'chat',
    purpose: 'train-competing',
    candidates: [
      { deployment: 'gpt-4o-east', profile: registry.require('openai') },
      { deployment: 'azure-west', profile: registry.require('azure-openai') },
    ],
  });
  assert.match(message, /route "chat"/);
  assert.match(message, /purpose "train-competing"/);
  assert.match(message, /deployment "gpt-4o-east" \(terms openai, version 2024-01-31\) is notAllowed by Terms of Use 2023 §2\(c\)\(iii\)/);
  assert.match(message, /deployment "azure-west" \(terms azure-openai, version 2023-09\)/);
});

test('a refusal for a review profile says it is pending review', () => {
  const message = explainRefusal({
    route: 'chat',
    purpose: 'train',
    candidates: [
      { deployment: 'mistral-large', profile: registry.require('mistral-api') },
      { deployment: 'r1', profile: registry.require('deepseek-r1') },
    ],
  });
  assert.match(message, /"mistral-large".*pending legal review.*terms\.confirmed/);
  assert.doesNotMatch(message, /"r1"/, 'a deployment that allows the purpose is not blamed');
});

test('purposeNotAllowedError is a 403 purpose_not_allowed with the explanation', () => {
  const error = purposeNotAllowedError({
    route: 'judge',
    purpose: 'train',
    candidates: [{ deployment: 'llama3-70b', profile: registry.require('llama-3') }],
  });
  assert.equal(error.code, 'purpose_not_allowed');
  assert.equal(error.status, 403);
  assert.equal(error.param, 'x-seed-purpose');
  assert.match(error.message, /route "judge".*"llama3-70b".*Llama 3 Community License §1\.b\.v/);
});
