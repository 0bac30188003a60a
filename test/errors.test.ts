import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ERROR_CODES, ERROR_SPECS, SeedError } from '../src/errors.ts';

const documentation = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');

test('every error code is documented in docs/errors.md with its status and type', () => {
  for (const code of ERROR_CODES) {
    const row = documentation.split('\n').find((line) => line.startsWith(`| \`${code}\` |`));
    assert.ok(row, `docs/errors.md has no row for ${code}`);
    const [, , status, type] = row.split('|').map((cell) => cell.trim());
    assert.equal(Number(status), ERROR_SPECS[code].status, `${code}: documented status`);
    assert.equal(type, ERROR_SPECS[code].type, `${code}: documented type`);
  }
});

test('docs/errors.md documents no code that does not exist', () => {
  const documented = [...documentation.matchAll(/^\| `([a-z_]+)` \|/gm)].map((match) => match[1]);
  assert.deepEqual([...documented].sort(), [...ERROR_CODES].sort());
});

test('every error code produces an OpenAI-format body and its one status', () => {
  for (const code of ERROR_CODES) {
    const error = new SeedError(code, `message for ${code}`, { param: 'messages[0]' });
    assert.equal(error.status, ERROR_SPECS[code].status);
    assert.deepEqual(error.toBody(), {
      error: { message: `message for ${code}`, type: ERROR_SPECS[code].type, code, param: 'messages[0]' },
    });
    assert.ok(error.status >= 400 && error.status < 600);
    if (code !== 'internal_error') assert.notEqual(error.status, 500, `${code} must not be a 500`);
  }
});

test('retry-after headers are derived from retryAfterMs', () => {
  const error = new SeedError('upstream_rate_limited', 'slow down', { retryAfterMs: 1_500 });
  assert.deepEqual(error.responseHeaders(), { 'retry-after': '2', 'retry-after-ms': '1500' });
});
