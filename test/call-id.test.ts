/** Call ids (src/ledger/call-id.ts): UUIDv7 layout, time-ordered, unique. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newCallId } from '../src/ledger/call-id.ts';

const UUID_V7_HEX = /^req_[0-9a-f]{12}7[0-9a-f]{3}[89ab][0-9a-f]{15}$/;

test('a call id is req_ and a UUIDv7 whose time is the given millisecond', () => {
  for (const now of [0, 1, 1_764_777_600_000, 2 ** 48 - 1]) {
    const id = newCallId(now);
    assert.match(id, UUID_V7_HEX);
    assert.equal(Number.parseInt(id.slice(4, 16), 16), now);
  }
  const made = Number.parseInt(newCallId().slice(4, 16), 16);
  assert.ok(Math.abs(made - Date.now()) < 1_000);
});

test('call ids sort by the millisecond they were made in', () => {
  const times = [1_700_000_000_000, 1_700_000_000_001, 1_700_000_000_255, 1_700_000_000_256, 1_700_000_065_536, 1_800_000_000_000];
  const ids = times.flatMap((now) => [newCallId(now), newCallId(now)]);
  const sorted = [...ids].sort();
  assert.deepEqual(
    sorted.map((id) => Number.parseInt(id.slice(4, 16), 16)),
    times.flatMap((now) => [now, now]),
  );
});

test('call ids made in the same millisecond are all different', () => {
  const ids = new Set<string>();
  for (let index = 0; index < 100_000; index += 1) ids.add(newCallId(1_700_000_000_000));
  assert.equal(ids.size, 100_000);
});

test('every random digit of a call id takes every value it may, and the variant digit only 8–b', () => {
  const seen = Array.from({ length: 19 }, () => new Set<string>());
  for (let index = 0; index < 2_000; index += 1) {
    const random = newCallId(1_700_000_000_000).slice(17);
    for (let digit = 0; digit < 19; digit += 1) seen[digit]!.add(random[digit]!);
  }
  seen.forEach((values, digit) => {
    if (digit === 3) assert.deepEqual([...values].sort(), ['8', '9', 'a', 'b'], 'the variant digit');
    else assert.equal(values.size, 16, `random digit ${digit} takes all 16 values`);
  });
});
