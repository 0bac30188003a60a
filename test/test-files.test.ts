/**
 * The test files themselves: a suite declared after a top-level `await` that has to wait (a
 * database check, say), once another suite or test of the same file has been declared, is never
 * run by node:test (the file's root test starts and ends in between) and nothing reports it.
 * test/tenants-auth.test.ts lost its 14 store tests that way; ledger-writer.test.ts only escaped
 * because its second await was of an already-settled promise. Every file finishes its top-level
 * awaits before it declares its first suite or test.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

const TOP_LEVEL_DECLARATION = /^(describe|test|suite|it)\(/;
/** A top-level statement that awaits: `await x`, `const y = await x`, `for (… of await x)`, `const z = [...(await x)]`. */
const TOP_LEVEL_AWAIT = /^(?:await\s|(?:const|let)\s[^=]+=\s*(?:\[\s*\.\.\.\s*)?\(?\s*await\s|for\s*\(.*\bof\s+await\s)/;

function lateAwaits(source: string): number[] {
  const lines = source.split('\n');
  const firstDeclaration = lines.findIndex((line) => TOP_LEVEL_DECLARATION.test(line));
  if (firstDeclaration === -1) return [];
  return lines.flatMap((line, index) => (index > firstDeclaration && TOP_LEVEL_AWAIT.test(line) ? [index + 1] : []));
}

test('no test file awaits at the top level after declaring a suite or test', () => {
  const directory = import.meta.dirname;
  const offenders = readdirSync(directory)
    .filter((name) => name.endsWith('.test.ts'))
    .flatMap((name) => lateAwaits(readFileSync(join(directory, name), 'utf8')).map((line) => `${name}:${line}`));
  assert.deepEqual(offenders, [], 'declare suites only after the top-level awaits (see this file)');
});

test('the check finds the pattern that hid the store suites of tenants-auth', () => {
  const late = ["describe('a', () => {});", '', 'for (const backend of await testBackends()) {', "  describe('b', () => {});", '}'].join('\n');
  assert.deepEqual(lateAwaits(late), [3]);
  const early = ['const backends = await testBackends();', "describe('a', () => {});", 'for (const backend of backends) {}'].join('\n');
  assert.deepEqual(lateAwaits(early), []);
  assert.deepEqual(lateAwaits(["test('x', async () => {", '  await thing();', '});', 'const y = [...(await more())];'].join('\n')), [4]);
});
