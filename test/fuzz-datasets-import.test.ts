/**
 * Fuzzes dataset imports (`seed datasets import`: JSONL and CSV) on SQLite and PostgreSQL:
 * files of random lines (objects with any keys and values, strings with any code unit, NUL
 * included; repeated and odd ids; lines that are not objects or not JSON) and random CSV.
 * The invariant: an import either stores exactly the samples the file holds, readable back with
 * the same fields, or fails with a SeedError that says what is wrong — never a raw database or
 * runtime error, and never a half-written version.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isSeedError } from '../src/errors.ts';
import { testBackends } from './helpers/backends.ts';
import { fuzzRuns, prototypeName } from './helpers/fuzz-stack.ts';
import { datasetsPerSuite } from './datasets-fixtures.ts';

const anyText = fc.oneof(fc.string({ maxLength: 20, unit: 'binary' }), fc.constantFrom('', 'a', 'a\u0000b', '\u0000', 'id', 'ünï', '1'), prototypeName);
const fieldValue = fc.oneof(anyText, fc.jsonValue({ maxDepth: 2 }), fc.jsonValue({ maxDepth: 1, stringUnit: 'binary' }));
const line = fc.oneof(
  { arbitrary: fc.dictionary(anyText, fieldValue, { maxKeys: 4 }).map((object) => JSON.stringify(object)), weight: 3 },
  { arbitrary: fc.record({ id: fc.oneof(anyText, fc.integer(), fc.constant(null)), text: fieldValue }).map((object) => JSON.stringify(object)), weight: 3 },
  { arbitrary: fc.constantFrom('', '   ', '[]', 'null', '42', '"x"', '{', '{"id":"a"}', '\u0000'), weight: 1 },
  { arbitrary: fc.string({ maxLength: 30 }), weight: 1 },
);
const jsonl = fc.array(line, { minLength: 0, maxLength: 6 }).map((lines) => lines.join('\n'));
const csvCell = fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('', '"', '""', 'a,b', '\n', 'a\u0000b', 'id'));
const csv = fc
  .tuple(fc.array(csvCell, { minLength: 1, maxLength: 4 }), fc.array(fc.array(csvCell, { minLength: 0, maxLength: 5 }), { maxLength: 5 }))
  .map(([header, rows]) => [header, ...rows].map((row) => row.join(',')).join('\n'));

for (const backend of await testBackends()) {
  describe(`dataset imports under random files (${backend.name})`, { skip: backend.skip }, () => {
    const suite = datasetsPerSuite(backend);

    /** Runs one import; a failure must be a SeedError, a success must read back whole. */
    async function importOnce(kind: 'jsonl' | 'csv', text: string): Promise<void> {
      const datasets = suite.datasets();
      const name = suite.name(`fuzz-${kind}`);
      const context = `${kind} ${JSON.stringify(text).slice(0, 400)}`;
      const before = (await datasets.list({ name })).length;
      let version;
      try {
        version = kind === 'jsonl'
          ? await datasets.importJsonl({ name, text, file: `f.${kind}`, actor: 'fuzz' })
          : await datasets.importCsv({ name, text, file: `f.${kind}`, actor: 'fuzz' });
      } catch (error) {
        assert.ok(isSeedError(error), `${context}: ${String(error)}`);
        assert.ok(error.status < 500, `${context}: ${error.code} ${error.message}`);
        assert.equal((await datasets.list({ name })).length, before, `${context}: a failed import left a version`);
        return;
      }
      const samples = await datasets.samples(`${name}@${version.version}`);
      assert.equal(samples.length, version.sampleCount, context);
      assert.ok(samples.length > 0, context);
    }

    test('JSONL files of random lines', async () => {
      await fc.assert(fc.asyncProperty(jsonl, (text) => importOnce('jsonl', text)), fuzzRuns(80));
    });

    test('CSV files of random cells', async () => {
      await fc.assert(fc.asyncProperty(csv, (text) => importOnce('csv', text)), fuzzRuns(80));
    });
  });
}
