/**
 * The ledger's journal on its own (src/ledger/journal.ts): whatever the order of appends,
 * settles and segment cuts, a process that dies leaves on disk every call it had not settled,
 * each read back as it was recorded, and no segment whose calls were all settled except the one
 * being appended to. The writer's use of it is tested in ledger-writer.test.ts, a real kill in
 * faults-shutdown.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { CallJournal, adoptJournalSegments, journalLineReader } from '../src/ledger/journal.ts';
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
            // The calls of one step are appended in one turn: one batch, one write.
            const writes = new Set<Promise<void>>();
            for (const fields of step.calls) {
              const call = makeCall({ ...fields, id: `call_${run}_${String((appended += 1)).padStart(4, '0')}` });
              writes.add(journal.append(call));
              unsettled.push(call);
            }
            assert.equal(writes.size, 1, 'the calls of one turn share one write');
            await [...writes][0];
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

/** The lines of a journal segment after its header: the ids of the calls on it, in order. */
function segmentIds(directory: string, name: string): string[] {
  const lines = readFileSync(join(directory, name), 'utf8').split('\n').filter((line) => line !== '');
  const read = journalLineReader();
  assert.equal(read(JSON.parse(lines[0]!)), 'header');
  return lines.slice(1).map((line) => {
    const call = read(JSON.parse(line));
    assert.ok(call !== null && call !== 'header', line);
    return call.id;
  });
}

test('the calls of one turn are written together when the turn ends, and each append resolves once its line is on disk', async () => {
  const directory = mkdtempSync(join(tmpdir(), 'seed-journal-'));
  const written: Array<{ records: number; error: unknown }> = [];
  try {
    let sequence = 0;
    // A segment is cut after every write: each write's lines stay on a segment of their own.
    const journal = new CallJournal({
      directory,
      nextName: () => spillFileName((sequence += 1)),
      segmentBytes: 1,
      onWritten: (records, error) => written.push({ records, error }),
    });
    const first = Array.from({ length: 5 }, (_, index) => makeCall({ id: `turn1_${index}` }));
    const writes = first.map((call) => journal.append(call));
    assert.equal(new Set(writes).size, 1, 'one promise for the turn');
    assert.deepEqual(journalSegments(directory), [], 'nothing is written before the turn ends');
    assert.equal(journal.unsettled, 5, 'calls waiting for the write count as unsettled');
    let resolved = false;
    void writes[0]!.then(() => (resolved = true));
    await new Promise<void>((resolve) => setImmediate(resolve));
    await writes[0];
    assert.ok(resolved);
    assert.deepEqual(written, [{ records: 5, error: null }]);
    const segments = journalSegments(directory);
    assert.equal(segments.length, 1, 'five calls, one write');
    assert.deepEqual(segmentIds(directory, segments[0]!), first.map((call) => call.id));

    // The next turn's calls go in the next write (here a new segment, the first being full).
    const second = [makeCall({ id: 'turn2_0' }), makeCall({ id: 'turn2_1' })];
    await Promise.all(second.map((call) => journal.append(call)));
    assert.equal(journalSegments(directory).length, 2);
    assert.deepEqual(written.map((write) => write.records), [5, 2]);

    // Settling a call of the turn in progress writes the turn's calls first.
    const third = makeCall({ id: 'turn3_0' });
    const pending = journal.append(third);
    journal.settle([third]);
    await pending;
    assert.equal(journal.unsettled, 7);
    assert.equal(journalSegments(directory).length, 2, "the settled call's segment went with it");
    journal.close();
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test("a write that fails resolves the turn's appends all the same and is told with its count", async () => {
  const directory = mkdtempSync(join(tmpdir(), 'seed-journal-'));
  const written: Array<{ records: number; error: unknown }> = [];
  let sequence = 0;
  const journal = new CallJournal({ directory, nextName: () => spillFileName((sequence += 1)), onWritten: (records, error) => written.push({ records, error }) });
  // The directory is gone (a volume unmounted under the process): no segment can be opened.
  rmSync(directory, { recursive: true, force: true });
  await Promise.all([journal.append(makeCall({ id: 'lost_0' })), journal.append(makeCall({ id: 'lost_1' }))]);
  assert.equal(written.length, 1);
  assert.equal(written[0]?.records, 2);
  assert.match(String(written[0]?.error), /ENOENT/);
  assert.equal(journal.unsettled, 0, 'calls that were not written are not the journal\'s');
  journal.close();
});

test('a closed journal keeps the segments with unsettled calls and deletes the rest', async () => {
  const directory = mkdtempSync(join(tmpdir(), 'seed-journal-'));
  try {
    let sequence = 0;
    // Segments of one write each; one call a turn.
    const journal = new CallJournal({ directory, nextName: () => spillFileName((sequence += 1)), segmentBytes: 1 });
    const calls = Array.from({ length: 4 }, (_, index) => makeCall({ id: `closed_${index}` }));
    for (const call of calls) await journal.append(call);
    assert.equal(journalSegments(directory).length, 4);
    journal.settle([calls[0]!, calls[2]!]);
    assert.equal(journalSegments(directory).length, 2);
    // A call appended in the turn the journal closes in is written by the close.
    const last = makeCall({ id: 'closed_last' });
    void journal.append(last);
    journal.close();
    assert.equal(journalSegments(directory).length, 3, 'the three with unsettled calls stay for the next start');
    journal.settle([last]);
    assert.equal(journalSegments(directory).length, 2);
    // A late settle (a write that returned after the close) still deletes what it settles.
    journal.settle([calls[1]!]);
    assert.equal(journalSegments(directory).length, 1);
    assert.throws(() => journal.append(makeCall()), /closed/);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});
