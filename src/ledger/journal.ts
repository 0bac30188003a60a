/**
 * The ledger's journal: every call record appended to a file in the spill directory before the
 * client has the end of its answer.
 *
 * The calls recorded in one turn of the event loop are written together, with one `write` at the
 * end of the turn (`setImmediate`); `append` returns the promise of that write, and the gateway
 * holds the end of each answer until it settles. A `write` per call cost ~17% of the gateway's
 * CPU on a host whose system calls are slow (page-table isolation, 2.2 µs for a 1-byte `write`),
 * ~10% on one where they are not; under load a turn finishes several calls, so they share it.
 * An answer waits for the rest of its turn, no longer: at a low rate a turn holds one call.
 *
 * Records otherwise wait in memory for the next batch (`ledger.flushIntervalMs`), and a process
 * killed without warning (`SIGKILL`, the kernel's OOM killer, a container runtime's timeout) lost
 * them: the restart benchmark's kill lost 1–6 answered calls a run before the journal. A `write`
 * that has returned is in the kernel's page cache and survives the process; there is no fsync
 * per call, so a power loss or kernel crash can still take the last seconds (the store's own
 * commits are not fsync'd per batch either: SQLite runs with `synchronous = NORMAL`).
 *
 * The journal is cut into segments. A record is *settled* once the store or a spill file holds
 * it; a full segment whose records are all settled is deleted, so the journal holds about one
 * segment's worth in steady state. A process that dies leaves its segments behind; the next
 * writer on the directory (one at a time: the spill lock) takes them over as spill files, and
 * replays them. Replays skip the ids the store already has, so the records of a segment that
 * were stored before the crash cost a lookup, not a duplicate.
 *
 * A segment's first line names the `calls` columns (`{"journal":1,"columns":[…]}`); each later
 * line is one call's values in that order (`encodeCallValues`), a JSON array. Without the keys a line
 * costs half the encoding of the record as an object (the encoder scans every key as it does
 * every string value), and the header keeps old segments readable if the columns change.
 */
import { closeSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { CallRecord } from './types.ts';
import { CALL_COLUMNS, encodeCallValues, fromCallRow } from '../store/call-rows.ts';
import type { CallsTable } from '../store/schema.ts';

/** A journal segment's name: the same time, process and sequence as a spill file's, another prefix. */
const SEGMENT_PATTERN = /^journal-(\d{13}-\d+-\d+\.jsonl)$/;

const SEGMENT_HEADER = JSON.stringify({ journal: 1, columns: CALL_COLUMNS }) + '\n';

/** Default size at which a segment is closed and a new one started. */
export const DEFAULT_SEGMENT_BYTES = 4 * 1024 * 1024;

interface Segment {
  readonly path: string;
  readonly descriptor: number;
  /** Whether `descriptor` is still this segment's (a closed number may be reused by another file). */
  open: boolean;
  bytes: number;
  /** Records appended here and not yet settled. */
  unsettled: number;
  /** No more appends: deleted once `unsettled` reaches 0. */
  full: boolean;
}

/** The lines of one turn's calls, and the promise their `write` settles. */
interface Batch {
  lines: string;
  readonly records: CallRecord[];
  readonly written: Promise<void>;
  readonly resolve: () => void;
}

export interface CallJournalOptions {
  directory: string;
  /** A new segment's name, from the spill directory's sequence (so the two never collide). */
  nextName: () => string;
  segmentBytes?: number;
  /**
   * Told after each batch's `write`: how many calls it held, and the error when it failed (those
   * calls are then not journaled, and remain the writer's to store).
   */
  onWritten?: (records: number, error: unknown) => void;
}

export class CallJournal {
  readonly #directory: string;
  readonly #segmentBytes: number;
  readonly #nextName: () => string;
  readonly #onWritten: NonNullable<CallJournalOptions['onWritten']>;
  #active: Segment | null = null;
  /** The calls of this turn, not yet written. */
  #batch: Batch | null = null;
  /** Which segment holds each unsettled record. */
  readonly #segmentOf = new Map<CallRecord, Segment>();
  #closed = false;
  readonly #flushNow = () => this.flush();

  constructor(options: CallJournalOptions) {
    this.#directory = options.directory;
    this.#nextName = options.nextName;
    this.#segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    this.#onWritten = options.onWritten ?? (() => {});
  }

  /**
   * Adds `record` to this turn's batch, written as one JSON line per call with one `write` at the
   * end of the turn (or at `flush`). The promise settles once that write has returned, whether
   * or not it succeeded (a failure goes to `onWritten`), and never rejects: hold the answer on it.
   */
  append(record: CallRecord): Promise<void> {
    if (this.#closed) throw new Error('the ledger journal is closed');
    const line = encodeCallValues(record) + '\n';
    let batch = this.#batch;
    if (batch === null) {
      let resolve!: () => void;
      const written = new Promise<void>((resolvePromise) => (resolve = resolvePromise));
      batch = this.#batch = { lines: '', records: [], written, resolve };
      setImmediate(this.#flushNow);
    }
    batch.lines += line;
    batch.records.push(record);
    return batch.written;
  }

  /** Writes the calls appended since the last write, now. */
  flush(): void {
    const batch = this.#batch;
    if (batch === null) return;
    this.#batch = null;
    let failure: unknown = null;
    try {
      this.#write(batch);
    } catch (error) {
      failure = error;
    }
    try {
      this.#onWritten(batch.records.length, failure);
    } finally {
      batch.resolve();
    }
  }

  /**
   * One `write` of the batch's lines to the open segment. Throws when it fails: the batch is then
   * not journaled. A write cut short (a full disk) leaves a torn line, which a replay reports as
   * unreadable; the segment is closed so the next batch does not join it.
   */
  #write(batch: Batch): void {
    const segment = this.#active ?? this.#open();
    let written: number;
    try {
      written = writeSync(segment.descriptor, batch.lines);
    } catch (error) {
      this.#retire(segment);
      throw error;
    }
    segment.bytes += written;
    // The lines' bytes are their length when they are ASCII, as nearly every record is.
    if (written !== batch.lines.length && written < Buffer.byteLength(batch.lines)) {
      this.#retire(segment);
      throw new Error(`a journal write to ${segment.path} was cut short (${written} bytes written)`);
    }
    segment.unsettled += batch.records.length;
    for (const record of batch.records) this.#segmentOf.set(record, segment);
    if (segment.bytes >= this.#segmentBytes) this.#retire(segment);
  }

  /** `records` are stored or in a spill file: the journal no longer needs them. */
  settle(records: readonly CallRecord[]): void {
    // A call settled before the end of the turn it was recorded in: written first, then settled.
    this.flush();
    for (const record of records) {
      const segment = this.#segmentOf.get(record);
      if (segment === undefined) continue;
      this.#segmentOf.delete(record);
      segment.unsettled -= 1;
      if (segment.full && segment.unsettled === 0) this.#remove(segment);
    }
  }

  /** Records journaled, or waiting for the end of the turn to be, and not yet settled. */
  get unsettled(): number {
    return this.#segmentOf.size + (this.#batch?.records.length ?? 0);
  }

  /**
   * Closes the journal. Segments with nothing unsettled are deleted; any other stays, and the
   * next writer on the directory replays it (a record the store refused and that no spill file
   * took is kept that way rather than lost).
   */
  close(): void {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
    const active = this.#active;
    if (active !== null) this.#retire(active);
    // Segments still holding unsettled records: close their descriptors, keep their files.
    for (const segment of new Set(this.#segmentOf.values())) closeDescriptor(segment);
  }

  #open(): Segment {
    const path = join(this.#directory, `journal-${this.#nextName().replace(/^spill-/, '')}`);
    const descriptor = openSync(path, 'a');
    const segment: Segment = { path, descriptor, open: true, bytes: 0, unsettled: 0, full: false };
    try {
      segment.bytes = writeSync(descriptor, SEGMENT_HEADER);
    } catch (error) {
      this.#remove(segment);
      throw error;
    }
    this.#active = segment;
    return segment;
  }

  /** No more appends to `segment`; deleted now if nothing in it is unsettled. */
  #retire(segment: Segment): void {
    segment.full = true;
    if (this.#active === segment) this.#active = null;
    if (segment.unsettled === 0) this.#remove(segment);
  }

  #remove(segment: Segment): void {
    closeDescriptor(segment);
    rmSync(segment.path, { force: true });
  }
}

function closeDescriptor(segment: Segment): void {
  if (!segment.open) return;
  segment.open = false;
  closeSync(segment.descriptor);
}

/**
 * Renames the journal segments a previous process left in `directory` into spill files (same
 * time, process and sequence), so the writer replays them. Only for the holder of the spill lock:
 * a live writer's segments must not be taken. Returns how many were taken over.
 */
export function adoptJournalSegments(directory: string, names: readonly string[]): number {
  let adopted = 0;
  for (const name of names) {
    const match = SEGMENT_PATTERN.exec(name);
    if (match === null) continue;
    renameSync(join(directory, name), join(directory, `spill-${match[1]}`));
    adopted += 1;
  }
  return adopted;
}

/**
 * Reads the lines of a spill file, which may be an adopted journal segment: a header naming the
 * columns, then one array of values per call. The function returned takes each line's parsed
 * JSON and gives the call on it, `'header'` for a segment's header, or null for a line that is
 * neither (a torn line, another format).
 */
export function journalLineReader(): (value: unknown) => CallRecord | 'header' | null {
  let columns: Array<keyof CallsTable> | null = null;
  return (value) => {
    if (Array.isArray(value)) {
      if (columns === null) return null;
      const row: Record<string, unknown> = {};
      for (const [index, column] of columns.entries()) row[column] = value[index] ?? null;
      if (typeof row.id !== 'string') return null;
      return fromCallRow(row as unknown as Parameters<typeof fromCallRow>[0]);
    }
    const header = value as { journal?: unknown; columns?: unknown } | null;
    if (header !== null && typeof header === 'object' && header.journal === 1 && Array.isArray(header.columns)) {
      columns = header.columns as Array<keyof CallsTable>;
      return 'header';
    }
    return null;
  };
}
