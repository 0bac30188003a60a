/**
 * Fuzzes the dataset export formats (`seed datasets export --format`): samples whose fields
 * have any shape (messages of any role, `__proto__` and `constructor` included, content as
 * strings, parts or other JSON; completions, preference pairs, Alpaca fields, or none of them).
 *
 * The invariants:
 * - `formatRecord` returns a record or refuses with an `unprocessable_entity` SeedError naming
 *   the sample; never a runtime error;
 * - a record survives JSON: what is written to the file is the record (no function or
 *   `undefined` silently dropped, no prototype object in place of a string);
 * - each format's shape: OpenAI chat messages are the sample's messages plus the completion as
 *   an assistant message; ShareGPT turns and Alpaca fields are strings; DPO outputs are one
 *   assistant message each;
 * - through a store (SQLite and PostgreSQL), an imported file exports one line per sample, each
 *   line the format of the sample as the file held it (keys sorted: samples are canonical JSON),
 *   and the manifest counts and hashes them.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isSeedError } from '../src/errors.ts';
import { EXPORT_FORMATS, formatRecord, type ExportFormat } from '../src/datasets/formats.ts';
import { sha256 } from '../src/datasets/manifest.ts';
import type { JsonValue } from '../src/datasets/types.ts';
import { canonicalJson } from '../src/terms/canonical.ts';
import { testBackends } from './helpers/backends.ts';
import { fuzzRuns, prototypeName } from './helpers/fuzz-stack.ts';
import { datasetsPerSuite } from './datasets-fixtures.ts';

type Fields = Record<string, JsonValue>;

// Awaited before the first test is declared: tests declared after a later top-level await would not run.
const backends = await testBackends();

const anyText = fc.oneof(fc.string({ maxLength: 12, unit: 'binary' }), fc.constantFrom('', 'hi', 'ünï', '\u0000', '\u2028'));
const role = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('user', 'assistant', 'system', 'tool') },
  { weight: 2, arbitrary: fc.oneof(prototypeName, fc.constantFrom('human', 'gpt')) },
  { weight: 1, arbitrary: anyText },
);
const part = fc.oneof(
  fc.record({ type: fc.constant('text'), text: anyText }),
  fc.record({ type: fc.constant('image_url'), image_url: fc.record({ url: fc.constant('https://example.com/a.png') }) }),
  fc.jsonValue({ maxDepth: 1 }),
);
const content = fc.oneof(anyText, fc.array(part, { maxLength: 3 }), fc.jsonValue({ maxDepth: 1 }));
const chatMessage = fc.record({ role, content }, { requiredKeys: ['role'] });
const messageOrNot = fc.oneof({ weight: 6, arbitrary: chatMessage }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 1 }) });
const reply = fc.oneof(anyText, chatMessage, fc.jsonValue({ maxDepth: 1 }));
const fields: fc.Arbitrary<Fields> = fc
  .record(
    {
      messages: fc.oneof({ weight: 5, arbitrary: fc.array(messageOrNot, { maxLength: 4 }) }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 1 }) }),
      completion: reply,
      preferred: reply,
      non_preferred: reply,
      instruction: content,
      text: content,
      input: content,
      output: content,
      label: content,
      extra: fc.jsonValue({ maxDepth: 2 }),
    },
    { requiredKeys: [] },
  )
  .map((drawn) => JSON.parse(JSON.stringify(drawn)) as Fields)
  // An import needs one field; a line of only `id` is refused before export.
  .filter((drawn) => Object.keys(drawn).length > 0);

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** What each format must produce from `input`, checked on the record `formatRecord` made. */
function checkRecord(input: { format: ExportFormat; fields: Fields; record: JsonValue; context: string }): void {
  const { format, fields, record, context } = input;
  assert.deepStrictEqual(JSON.parse(JSON.stringify(record)), record, `${context}: the record does not survive JSON`);
  assert.ok(isObject(record), context);
  const asAssistant = (value: JsonValue | undefined) => (typeof value === 'string' ? { role: 'assistant', content: value } : value);
  switch (format) {
    case 'openai-chat': {
      const expected = fields.completion === undefined ? fields.messages : [...(fields.messages as JsonValue[]), asAssistant(fields.completion)];
      assert.deepStrictEqual(record.messages, expected, context);
      return;
    }
    case 'openai-dpo': {
      assert.deepStrictEqual(record.input, { messages: fields.messages }, context);
      assert.deepStrictEqual(record.preferred_output, [asAssistant(fields.preferred)], context);
      assert.deepStrictEqual(record.non_preferred_output, [asAssistant(fields.non_preferred)], context);
      return;
    }
    case 'sharegpt': {
      const turns = record.conversations;
      assert.ok(Array.isArray(turns), context);
      const expectedLength = (fields.messages as JsonValue[]).length + (fields.completion === undefined ? 0 : 1);
      assert.equal(turns.length, expectedLength, context);
      for (const turn of turns) {
        assert.ok(isObject(turn) && typeof turn.from === 'string' && typeof turn.value === 'string', `${context}: turn ${JSON.stringify(turn)}`);
      }
      return;
    }
    case 'alpaca':
      for (const name of ['instruction', 'input', 'output']) assert.equal(typeof record[name], 'string', `${context}: ${name}`);
      return;
  }
}

/** The record for `fields`, or null when the format refuses the sample (as it must: a SeedError naming it). */
function formatOrRefuse(input: { format: ExportFormat; fields: Fields; sampleId: string }): JsonValue | null {
  const context = `${input.format} ${JSON.stringify(input.fields).slice(0, 500)}`;
  let record: JsonValue;
  try {
    record = formatRecord(input).record;
  } catch (error) {
    assert.ok(isSeedError(error), `${context}: ${String(error)}`);
    assert.equal(error.code, 'unprocessable_entity', context);
    assert.ok(error.message.includes(JSON.stringify(input.sampleId)), `${context}: ${error.message}`);
    return null;
  }
  checkRecord({ format: input.format, fields: input.fields, record, context });
  return record;
}

test('every export format: a record that is what the format promises, or a clear refusal naming the sample', () => {
  let formatted = 0;
  fc.assert(
    fc.property(fields, fc.constantFrom(...EXPORT_FORMATS), (drawn, format) => {
      if (formatOrRefuse({ format, fields: drawn, sampleId: 's-1' }) !== null) formatted += 1;
    }),
    fuzzRuns(2_000),
  );
  assert.ok(formatted > 0, 'no sample was formatted: the generator only makes refusals');
});

for (const backend of backends) {
  describe(`dataset exports of imported files (${backend.name})`, { skip: backend.skip }, () => {
    const suite = datasetsPerSuite(backend);

    test('each line is the format of a sample as the file held it; the manifest counts and hashes the lines', async () => {
      let exported = 0;
      await fc.assert(
        fc.asyncProperty(fc.array(fields, { minLength: 1, maxLength: 4 }), fc.constantFrom(...EXPORT_FORMATS), async (samples, format) => {
          const datasets = suite.datasets();
          const name = suite.name('export');
          const text = samples.map((sample, index) => JSON.stringify({ ...sample, id: `s-${index}` })).join('\n');
          await datasets.importJsonl({ name, text, file: 'f.jsonl', actor: 'fuzz' });
          // A sample is kept as canonical JSON (keys sorted), so a format that writes a value as JSON text writes it so.
          const expected = samples.map((sample, index) =>
            formatOrRefuse({ format, fields: JSON.parse(canonicalJson(sample)) as Fields, sampleId: `s-${index}` }),
          );
          let result;
          try {
            result = await datasets.export({ dataset: name, purpose: 'train-competing', format, actor: 'fuzz' });
          } catch (error) {
            assert.ok(isSeedError(error) && error.code === 'unprocessable_entity', `${format} ${text.slice(0, 500)}: ${String(error)}`);
            assert.ok(expected.includes(null), `${format}: the export refused, though every sample formats: ${text.slice(0, 500)}`);
            return;
          }
          assert.ok(result.ok, `${format}: refused by the gate: ${JSON.stringify(result)}`);
          assert.ok(!expected.includes(null), `${format}: exported a sample the format refuses: ${text.slice(0, 500)}`);
          const lines = result.jsonl.split('\n');
          assert.equal(lines.pop(), '', 'the file ends with a newline');
          // Samples are stored in id order; the ids here sort as the lines do (s-0 … s-3).
          assert.deepStrictEqual(lines.map((line) => JSON.parse(line) as JsonValue), expected, `${format} ${text.slice(0, 500)}`);
          const records = result.manifest.records as { count: number; sha256: string; lines: { sampleId: string; sha256: string }[] };
          assert.equal(records.count, samples.length);
          assert.equal(records.sha256, sha256(result.jsonl));
          assert.deepStrictEqual(records.lines.map((line) => [line.sampleId, line.sha256]), lines.map((line, index) => [`s-${index}`, sha256(line)]));
          assert.equal(result.entry.details.recordsSha256, sha256(result.jsonl));
          exported += 1;
        }),
        fuzzRuns(40),
      );
      assert.ok(exported > 0, 'no export succeeded: the generator only makes refusals');
    });
  });
}
