/**
 * The spill directory: append-only JSON-lines files holding calls the store could not take.
 * Appends are serialized and fsync'd per batch; `seal()` closes the file being appended to so
 * a replay can read finished files while new spills go to a fresh one. A file is deleted only
 * after every record in it reached the store.
 */
import { createReadStream, appendFileSync, closeSync, fsyncSync, mkdirSync, openSync } from 'node:fs';
import { open, readdir, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { CallRecord } from './types.ts';
import { acquireSpillLock } from './spill-lock.ts';
import { adoptJournalSegments, CallJournal, journalLineReader, type CallJournalOptions } from './journal.ts';

const FILE_PATTERN = /^spill-\d{13}-\d+-\d+\.jsonl$/;
/** Calls the store refused row by row (see `reject`); never replayed. */
export const REJECTED_FILE = 'rejected.jsonl';

export interface SpillReadReport {
  /** Lines that were not a call record (e.g. the torn last line of a crashed run); skipped. */
  corruptLines: number;
}

export class SpillDirectory {
  readonly directory: string;
  #release: () => void;
  #active: { name: string; handle: FileHandle } | null = null;
  #sequence = 0;
  /** Serializes appends and seals so a replay never reads a file mid-write. */
  #chain: Promise<void> = Promise.resolve();
  #hasRecords: boolean;
  /** Journal segments a previous process left here, taken over as spill files when this one opened. */
  readonly adoptedJournalSegments: number;

  private constructor({ directory, release, hasRecords, adopted }: { directory: string; release: () => void; hasRecords: boolean; adopted: number }) {
    this.directory = directory;
    this.#release = release;
    this.#hasRecords = hasRecords;
    this.adoptedJournalSegments = adopted;
  }

  /**
   * Creates `directory` if needed and locks it for this process. Journal segments a previous
   * process left (see `CallJournal`) become spill files, to be replayed like any other.
   */
  static async open({ directory }: { directory: string }): Promise<SpillDirectory> {
    mkdirSync(directory, { recursive: true });
    const release = acquireSpillLock({ directory });
    try {
      const adopted = adoptJournalSegments(directory, await readdir(directory));
      const existing = (await readdir(directory)).filter((name) => FILE_PATTERN.test(name));
      return new SpillDirectory({ directory, release, hasRecords: existing.length > 0, adopted });
    } catch (error) {
      release();
      throw error;
    }
  }

  /** A journal whose segments live in this directory (named from the same sequence as its spill files). */
  journal(options: Pick<CallJournalOptions, 'segmentBytes' | 'onWritten'> = {}): CallJournal {
    return new CallJournal({ ...options, directory: this.directory, nextName: () => this.#nextName() });
  }

  /** Whether any spill file (from this run or an earlier one) may hold records. */
  get hasRecords(): boolean {
    return this.#hasRecords;
  }

  /** Appends `records` durably (written and fsync'd before the promise resolves). */
  append(records: readonly CallRecord[]): Promise<void> {
    return this.#serialized(async () => {
      if (records.length === 0) return;
      const active = this.#active ?? (await this.#createFile());
      await active.handle.write(records.map((record) => JSON.stringify(record) + '\n').join(''));
      await active.handle.datasync();
      this.#hasRecords = true;
    });
  }

  /**
   * Keeps `records` the store refused (each alone, while it took others) in `rejected.jsonl`,
   * a file replays never read: retrying them would fail again and hold the store's other calls
   * back. They stay for an operator: `seed ledger rejected` lists them and, once the cause is
   * fixed, `--retry` stores them. The writer counts them and reports each refusal.
   */
  reject(records: readonly CallRecord[]): Promise<void> {
    return this.#serialized(async () => {
      if (records.length === 0) return;
      const handle = await open(join(this.directory, REJECTED_FILE), 'a');
      try {
        await handle.write(records.map((record) => JSON.stringify(record) + '\n').join(''));
        await handle.datasync();
      } finally {
        await handle.close();
      }
    });
  }

  /**
   * Appends synchronously to a file of its own. Only for calls recorded after the writer
   * closed (late stragglers at shutdown), when no async work may be pending any more.
   */
  appendSync(records: readonly CallRecord[]): void {
    const path = join(this.directory, this.#nextName());
    appendFileSync(path, records.map((record) => JSON.stringify(record) + '\n').join(''));
    const descriptor = openSync(path, 'r');
    try {
      fsyncSync(descriptor);
    } finally {
      closeSync(descriptor);
    }
    this.#hasRecords = true;
  }

  /** Closes the file being appended to; the next append starts a new one. Returns the finished files, oldest first. */
  seal(): Promise<string[]> {
    return this.#serialized(async () => {
      await this.#closeActive();
      return (await readdir(this.directory)).filter((name) => FILE_PATTERN.test(name)).sort();
    });
  }

  /** Reads `file` in batches of at most `batchSize` records, awaiting `onBatch` for each. */
  async read({
    file,
    batchSize,
    onBatch,
  }: {
    file: string;
    batchSize: number;
    onBatch: (records: CallRecord[]) => Promise<void>;
  }): Promise<SpillReadReport> {
    const lines = createInterface({ input: createReadStream(join(this.directory, file), 'utf8'), crlfDelay: Infinity });
    let batch: CallRecord[] = [];
    let corruptLines = 0;
    const journalLine = journalLineReader();
    for await (const line of lines) {
      if (line.trim() === '') continue;
      const value = parseJson(line);
      const record = recordOf(value) ?? journalLine(value);
      if (record === 'header') continue;
      if (record === null) {
        corruptLines += 1;
        continue;
      }
      batch.push(record);
      if (batch.length >= batchSize) {
        await onBatch(batch);
        batch = [];
      }
    }
    if (batch.length > 0) await onBatch(batch);
    return { corruptLines };
  }

  /** Deletes a replayed file; afterwards `hasRecords` is false if no file is left. */
  async remove({ file }: { file: string }): Promise<void> {
    await rm(join(this.directory, file), { force: true });
    await this.#serialized(async () => {
      const left = (await readdir(this.directory)).filter((name) => FILE_PATTERN.test(name));
      this.#hasRecords = left.length > 0;
    });
  }

  /** Waits for pending appends, closes the active file and releases the lock. */
  async close(): Promise<void> {
    await this.#serialized(() => this.#closeActive());
    this.#release();
  }

  #serialized<T>(task: () => Promise<T>): Promise<T> {
    const result = this.#chain.then(task);
    this.#chain = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  async #createFile(): Promise<{ name: string; handle: FileHandle }> {
    const name = this.#nextName();
    const handle = await open(join(this.directory, name), 'a');
    // fsync the directory too, or a crash could lose the new file's name along with its data.
    const directoryHandle = await open(this.directory, 'r');
    try {
      await directoryHandle.sync();
    } finally {
      await directoryHandle.close();
    }
    this.#active = { name, handle };
    return this.#active;
  }

  async #closeActive(): Promise<void> {
    const active = this.#active;
    this.#active = null;
    if (active !== null) await active.handle.close();
  }

  #nextName(): string {
    this.#sequence += 1;
    return spillFileName(this.#sequence);
  }
}

/** A new spill file's name: creation time, process and a sequence number, so names sort oldest first and never collide. */
export function spillFileName(sequence: number): string {
  return `spill-${String(Date.now()).padStart(13, '0')}-${process.pid}-${sequence}.jsonl`;
}

/** One line of a spill (or rejected) file as a call record; null for a line that is not one. */
export function parseRecord(line: string): CallRecord | null {
  return recordOf(parseJson(line));
}

/** `value` as a call record, if it is one (an object with a string `id`). */
function recordOf(value: unknown): CallRecord | null {
  if (typeof value === 'object' && value !== null && !Array.isArray(value) && typeof (value as { id?: unknown }).id === 'string') {
    return value as CallRecord;
  }
  return null;
}

function parseJson(line: string): unknown {
  try {
    return JSON.parse(line) as unknown;
  } catch {
    // a torn line from a crash mid-append: reported by the caller as corrupt
    return undefined;
  }
}
