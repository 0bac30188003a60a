/** The bound on body nesting (src/gateway/http/body-depth.ts), at its edge. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertBodyDepth, MAX_BODY_DEPTH } from '../src/gateway/http/body-depth.ts';
import { SeedError } from '../src/errors.ts';

const nestedObjects = (levels: number) => JSON.parse(`${'{"a":'.repeat(levels - 1)}{}${'}'.repeat(levels - 1)}`) as unknown;
const nestedArrays = (levels: number) => JSON.parse(`${'['.repeat(levels)}${']'.repeat(levels)}`) as unknown;
const rejects = (value: unknown) =>
  assert.throws(() => assertBodyDepth(value), (error: unknown) => error instanceof SeedError && error.code === 'invalid_request');

test('a body nested exactly to the bound passes, one level more is invalid_request, for objects, arrays and both', () => {
  assert.equal(MAX_BODY_DEPTH, 128);
  for (const nested of [nestedObjects, nestedArrays]) {
    assert.doesNotThrow(() => assertBodyDepth(nested(MAX_BODY_DEPTH)));
    rejects(nested(MAX_BODY_DEPTH + 1));
  }
  // The depth is the deepest path, wherever it hides among siblings.
  assertBodyDepth({ model: 'm', messages: [{ role: 'user', content: 'hi' }], tools: [nestedObjects(MAX_BODY_DEPTH - 2)] });
  rejects({ model: 'm', messages: [{ role: 'user', content: 'hi' }], tools: [nestedObjects(MAX_BODY_DEPTH - 1)] });
  for (const scalar of [null, 1, 'text', true, undefined]) assert.doesNotThrow(() => assertBodyDepth(scalar));
});

test('a body nested far past the bound is rejected without overflowing the stack; nothing is left behind for the next one', () => {
  // A walk that went down every level would overflow on it; this one stops at the bound.
  rejects(nestedArrays(1_000_000));
  rejects(nestedObjects(200_000));
  rejects(nestedArrays(10_000));
  // A walk that kept the rejected body's pending values would carry their depth into this one.
  assert.doesNotThrow(() => assertBodyDepth({ a: [1, 2, { b: 'c' }] }));
  assert.doesNotThrow(() => assertBodyDepth(nestedObjects(MAX_BODY_DEPTH)));
});
