/**
 * The ledger's journal on its own (src/ledger/journal.ts): whatever the order of appends,
 * settles and segment cuts, a process that dies leaves on disk every call it had not settled,
 * each read back as it was recorded, and no segment whose calls were all settled except the one
 * being appended to. The writer's use of it is tested in ledger-writer.test.ts, a real kill in
 * faults-shutdown.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { CallJournal, adoptJournalSegments } from '../src/ledger/journal.ts';
import { SpillDirectory, spillFileName } from '../src/ledger/spill.ts';
import type { CallRecord } from '../src/ledger/types.ts';
import { makeCall } from './helpers/backends.ts';
import { fuzzRuns } from './helpers/fuzz-runs.ts';

/** Text of every kind a call can carry: quotes, newlines, non-ASCII, lone surrogates. */
const text = fc.string({ maxLength: 12, unit: 'binary' });
const nullableText = fc.option(text, { nil: null });

const callArbitrary = fc.record({
  clientRequestId: nullableText,
  route: text,
  deployment: nullableText,
  purpose: text,
  teamId: nullableText,
  stream: fc.boolean(),
  usageReported: fc.boolean(),
  promptTokens: fc.nat({ max: 1_000_000 }),
  costUsd: fc.double({ min: 0, max: 100, noNaN: true }),
  latencyMs: fc.double({ min: 0, max: 600_000, noNaN: true }),
  ttftMs: fc.option(fc.double({ min: 0, max: 600_000, noNaN: true }), { nil: null }),
  metadata: fc.option(fc.dictionary(fc.string({ maxLength: 8 }), text, { maxKeys: 3 }), { nil: null }),
  payload: fc.option(fc.record({ request: fc.jsonValue({ maxDepth: 2 }), response: fc.jsonValue({ maxDepth: 2 }) }), { nil: null }),
});

type Step = { kind: 'append'; calls: Array<Partial<CallRecord>> } | { kind: 'settle'; pick: number[] };

const stepArbitrary: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant('append' as const), calls: fc.array(callArbitrary, { minLength: 1, maxLength: 6 }) }),
  fc.record({ kind: fc.constant('settle' as const), pick: fc.array(fc.nat(), { maxLength: 8 }) }),
);

function journalSegments(directory: string): string[] {
  return readdirSync(directory).filter((name) => name.startsWith('journal-'));
}

test('property: after any appends and settles, a journal that dies leaves every unsettled call on disk, read back as recorded, and no settled segment but the open one', async () => {
  let run = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(stepArbitrary, { minLength: 1, maxLength: 25 }), fc.integer({ min: 1, max: 3_000 }), async (steps, segmentBytes) => {
      run += 1;
      const directory = mkdtempSync(join(tmpdir(), 'seed-journal-'));
      try {
        let sequence = 0;
        const journal = new CallJournal({ directory, nextName: () => spillFileName((sequence += 1)), segmentBytes });
        const unsettled: CallRecord[] = [];
        let appended = 0;
        for (const step of steps) {
          if (step.kind === 'append') {
            for (const fields of step.calls) {
              const call = makeCall({ ...fields, id: `call_${run}_${String((appended += 1)).padStart(4, '0')}` });
              journal.append(call);
              unsettled.push(call);
            }
          } else {
            const settled: CallRecord[] = [];
            for (const index of step.pick) {
              if (unsettled.length === 0) break;
              settled.push(...unsettled.splice(index % unsettled.length, 1));
            }
            journal.settle(settled);
          }
          assert.equal(journal.unsettled, unsettled.length);
        }
        // Every segment left holds an unsettled call, but for the one being appended to.
        const segments = journalSegments(directory).length;
        assert.ok(segments <= unsettled.length + 1, `${segments} segments for ${unsettled.length} unsettled calls`);

        // The process dies here (no close). The next writer takes the segments over as spill files.
        adoptJournalSegments(directory, readdirSync(directory));
        const spill = await SpillDirectory.open({ directory });
        try {
          const read = new Map<string, CallRecord>();
          for (const file of await spill.seal()) {
            const report = await spill.read({
              file,
              batchSize: 100,
              onBatch: async (records) => {
                for (const record of records) read.set(record.id, record);
              },
            });
            assert.equal(report.corruptLines, 0, file);
          }
          // As a spill file (the record as a JSON object) would give it back: metadata and payload
          // are JSON in the store too.
          for (const call of unsettled) assert.deepEqual(read.get(call.id), JSON.parse(JSON.stringify(call)), `call ${call.id} as recorded`);
        } finally {
          await spill.close();
        }
      } finally {
        rmSync(directory, { recursive: true, force: true });
      }
    }),
    fuzzRuns(60),
  );
});

test('a closed journal keeps the segments with unsettled calls and deletes the rest', () => {
  const directory = mkdtempSync(join(tmpdir(), 'seed-journal-'));
  try {
    let sequence = 0;
    // Segments of one call each.
    const journal = new CallJournal({ directory, nextName: () => spillFileName((sequence += 1)), segmentBytes: 1 });
    const calls = Array.from({ length: 4 }, (_, index) => makeCall({ id: `closed_${index}` }));
    for (const call of calls) journal.append(call);
    assert.equal(journalSegments(directory).length, 4);
    journal.settle([calls[0]!, calls[2]!]);
    assert.equal(journalSegments(directory).length, 2);
    journal.close();
    assert.equal(journalSegments(directory).length, 2, 'the two with unsettled calls stay for the next start');
    // A late settle (a write that returned after the close) still deletes what it settles.
    journal.settle([calls[1]!]);
    assert.equal(journalSegments(directory).length, 1);
    assert.throws(() => journal.append(makeCall()), /closed/);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});
