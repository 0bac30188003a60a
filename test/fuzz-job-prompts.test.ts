/**
 * Fuzzes the prompt files of `seed jobs generate` (parsePrompts): lines of any JSON, objects
 * with `id`, `messages`, `prompt` and `system` of every kind, and lines that are not JSON. The
 * invariant: the prompts the file holds, each with a unique id and a non-empty list of messages
 * with a string role, or an invalid_request that names the file and line — never another
 * error, before any call is made.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isSeedError } from '../src/errors.ts';
import { parsePrompts } from '../src/jobs/prompts.ts';
import { fuzzRuns } from './helpers/fuzz-stack.ts';

const anyValue = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom('', 'x'.repeat(513), 0, -1, 1.5, null, [], {}, '1'));
const message = fc.oneof(
  fc.record({ role: fc.constantFrom('user', 'system', 'assistant', ''), content: anyValue }, { requiredKeys: ['role'] }),
  anyValue,
);
const line = fc.oneof(
  fc.record(
    {
      id: fc.oneof(anyValue, fc.constantFrom('a', 'b', 1, '1', '2')),
      messages: fc.oneof(fc.array(message, { maxLength: 3 }), anyValue),
      prompt: fc.oneof(fc.string({ maxLength: 10 }), anyValue),
      system: fc.oneof(fc.string({ maxLength: 10 }), anyValue),
    },
    { requiredKeys: [] },
  ).map((object) => JSON.stringify(object)),
  anyValue.map((value) => JSON.stringify(value)),
  fc.string({ maxLength: 20 }),
  fc.constantFrom('', '  ', '{', '\r'),
);

test('prompt files of random lines: the prompts, or an error naming the line', () => {
  fc.assert(
    fc.property(fc.array(line, { maxLength: 6 }), (lines) => {
      const text = lines.join('\n');
      let items;
      try {
        items = parsePrompts(text, 'prompts.jsonl');
      } catch (error) {
        assert.ok(isSeedError(error), `${JSON.stringify(text)}: ${String(error)}`);
        assert.equal(error.code, 'invalid_request');
        assert.match(error.message, /^prompts\.jsonl(:\d+)?: /, error.message);
        return;
      }
      assert.ok(items.length > 0);
      assert.equal(new Set(items.map((item) => item.id)).size, items.length, 'ids are unique');
      for (const item of items) {
        assert.ok(item.id.length > 0 && item.id.length <= 512, item.id);
        assert.ok(item.messages.length > 0);
        for (const each of item.messages) assert.equal(typeof each.role, 'string');
      }
    }),
    fuzzRuns(2_000),
  );
});
