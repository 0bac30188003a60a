/**
 * The ledger's journal: every call record appended, synchronously, to a file in the spill
 * directory the moment the gateway records it, before the client has the end of its answer.
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

export class CallJournal {
  readonly #directory: string;
  readonly #segmentBytes: number;
  /** A new segment's name, from the spill directory's sequence (so the two never collide). */
  readonly #nextName: () => string;
  #active: Segment | null = null;
  /** Which segment holds each unsettled record. */
  readonly #segmentOf = new Map<CallRecord, Segment>();
  #closed = false;

  constructor(options: { directory: string; nextName: () => string; segmentBytes?: number }) {
    this.#directory = options.directory;
    this.#nextName = options.nextName;
    this.#segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
  }

  /**
   * Appends `record` as one JSON line with one `write`. Throws when the write fails; the record
   * is then not journaled (it is still the writer's to store). A write that was cut short (a
   * full disk) leaves a torn line, which a replay reports as unreadable; the segment is closed so
   * the next record does not join it.
   */
  append(record: CallRecord): void {
    if (this.#closed) throw new Error('the ledger journal is closed');
    const segment = this.#active ?? this.#open();
    const line = encodeCallValues(record) + '\n';
    let written: number;
    try {
      written = writeSync(segment.descriptor, line);
    } catch (error) {
      this.#retire(segment);
      throw error;
    }
    segment.bytes += written;
    // A line's bytes are its length when it is ASCII, as nearly every record is.
    if (written !== line.length && written < Buffer.byteLength(line)) {
      this.#retire(segment);
      throw new Error(`a journal write to ${segment.path} was cut short (${written} bytes written)`);
    }
    segment.unsettled += 1;
    this.#segmentOf.set(record, segment);
    if (segment.bytes >= this.#segmentBytes) this.#retire(segment);
  }

  /** `records` are stored or in a spill file: the journal no longer needs them. */
  settle(records: readonly CallRecord[]): void {
    for (const record of records) {
      const segment = this.#segmentOf.get(record);
      if (segment === undefined) continue;
      this.#segmentOf.delete(record);
      segment.unsettled -= 1;
      if (segment.full && segment.unsettled === 0) this.#remove(segment);
    }
  }

  /** Records journaled and not yet settled. */
  get unsettled(): number {
    return this.#segmentOf.size;
  }

  /**
   * Closes the journal. Segments with nothing unsettled are deleted; any other stays, and the
   * next writer on the directory replays it (a record the store refused and that no spill file
   * took is kept that way rather than lost).
   */
  close(): void {
    if (this.#closed) return;
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
